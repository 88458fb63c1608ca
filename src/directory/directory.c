/*
 * directory.c - the Redis fleet directory (see directory.h and
 * docs/directory.md). It talks to Redis through conn.h only.
 *
 * Design note. Two blocking connections, one per thread, each with
 * directory.timeout.ms as connect and command timeout: `pc` belongs to the
 * poll thread (pin look-ups and claims) or to a reader (vectorctl); `bc`
 * to the publisher thread (heartbeats, index entries, unpins). One shared
 * state says whether Redis is up. Any failure marks it down (logged once)
 * and bumps a generation number, which makes the poll thread drop its
 * connection; while it is down the poll thread does no I/O at all, and only
 * the publisher tries again, with a doubling backoff. When the publisher
 * gets through, the state is up again and the poll thread redials on its
 * next look-up.
 *
 * Pins are in pins.c, the publisher thread in publisher.c, the readers in
 * fleet.c; directory_internal.h says which thread owns what.
 */
#include "directory_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double vd_dir_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *vd_dir_key(const vd_directory *d, const char *kind, const char *name, size_t len,
                 size_t *out_len)
{
    size_t kl = strlen(kind);
    char *k = malloc(d->prefix_len + kl + len + 1);
    if (!k) return NULL;
    memcpy(k, d->prefix, d->prefix_len);
    memcpy(k + d->prefix_len, kind, kl);
    if (len) memcpy(k + d->prefix_len + kl, name, len);
    k[d->prefix_len + kl + len] = '\0';
    *out_len = d->prefix_len + kl + len;
    return k;
}

void vd_dir_mark_down(vd_directory *d, const char *why)
{
    d->n_errors++;
    pthread_mutex_lock(&d->st_mu);
    if (d->state != 0)
        vd_log(d->lg, VD_LOG_WARN, "directory_down", VD_LS("redis", d->where), VD_LS("error", why),
               VD_LS("effect", "pin checks skipped; retrying"));
    d->state = 0;
    d->gen++;
    double max = d->backoff_max_ms / 1000.0;
    d->backoff = d->backoff ? d->backoff * 2 : 0.2;
    if (d->backoff > max) d->backoff = max;
    d->retry_at = vd_dir_mono_s() + d->backoff;
    pthread_mutex_unlock(&d->st_mu);
}

void vd_dir_mark_up(vd_directory *d)
{
    pthread_mutex_lock(&d->st_mu);
    if (d->state != 1) vd_log(d->lg, VD_LOG_INFO, "directory_up", VD_LS("redis", d->where));
    d->state = 1;
    d->backoff = 0;
    pthread_mutex_unlock(&d->st_mu);
}

int vd_dir_state(vd_directory *d, double *retry_at)
{
    pthread_mutex_lock(&d->st_mu);
    int s = d->state;
    if (retry_at) *retry_at = d->retry_at;
    pthread_mutex_unlock(&d->st_mu);
    return s;
}

static vd_err init_common(vd_directory **out, const vd_directory_opts *o, vd_error *err)
{
    vd_redis_url u;
    vd_err rc = vd_redis_url_parse(o->url, &u, err);
    if (rc) return rc;
    if (o->timeout_ms < 1)
        return vd_error_set(err, VD_ERR_CONFIG, "directory.timeout.ms: must be positive");
    vd_directory *d = calloc(1, sizeof *d);
    if (!d) return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
    d->url = u;
    vd_redis_url_where(&u, d->where, sizeof d->where);
    const char *group = o->group && *o->group ? o->group : "vectord";
    d->prefix_len = strlen("vectord:") + strlen(group) + 1;
    d->prefix = malloc(d->prefix_len + 1);
    if (d->prefix) snprintf(d->prefix, d->prefix_len + 1, "vectord:%s:", group);
    d->worker_id = o->worker_id ? strdup(o->worker_id) : NULL;
    d->timeout_ms = o->timeout_ms;
    d->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : 1000;
    d->ttl_ms = o->ttl_ms > 0 ? o->ttl_ms : 10000;
    d->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 5000;
    d->pin_cache_ms = o->pin_cache_ms >= 0 ? o->pin_cache_ms : 0;
    d->lg = o->lg;
    d->state = -1;
    pthread_mutex_init(&d->st_mu, NULL);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cond, NULL);
    if (!d->prefix || (o->worker_id && !d->worker_id)) {
        vd_directory_close(d);
        return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
    }
    *out = d;
    return VD_OK;
}

vd_err vd_directory_connect(vd_directory **out, const vd_directory_opts *opts, vd_error *err)
{
    vd_directory *d;
    vd_err rc = init_common(&d, opts, err);
    if (rc) return rc;
    char why[256];
    if (!(d->pc = vd_dir_conn_open(&d->url, d->timeout_ms, why, sizeof why))) {
        rc = vd_error_set(err, VD_ERR_IO, "directory.redis_url: Redis at %s: %s", d->where, why);
        vd_directory_close(d);
        return rc;
    }
    d->state = 1;
    *out = d;
    return VD_OK;
}

vd_err vd_directory_open(vd_directory **out, const vd_directory_opts *opts, vd_error *err)
{
    if (!opts->worker_id || !*opts->worker_id)
        return vd_error_set(err, VD_ERR_CONFIG, "worker.id: a worker needs an id");
    if (opts->heartbeat_ms < 1)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "directory.heartbeat.interval.ms: must be positive");
    if (opts->ttl_ms <= opts->heartbeat_ms)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "directory.ttl.ms: %d must be greater than "
                            "directory.heartbeat.interval.ms (%d), or heartbeats expire between "
                            "two writes",
                            opts->ttl_ms, opts->heartbeat_ms);
    vd_directory *d;
    vd_err rc = init_common(&d, opts, err);
    if (rc) return rc;
    if (vd_dir_publisher_start(d)) {
        vd_directory_close(d);
        return vd_error_set(err, VD_ERR_NOMEM, "directory: cannot start its thread");
    }
    *out = d;
    return VD_OK;
}

void vd_directory_close(vd_directory *d)
{
    if (!d) return;
    vd_dir_publisher_stop(d);
    vd_dir_conn_close(d->pc);
    vd_dir_pins_clear(d);
    vd_dir_unpins_free(&d->unpins);
    vd_dir_snapshot_clear(&d->snap);
    pthread_mutex_destroy(&d->st_mu);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cond);
    free(d->prefix);
    free(d->worker_id);
    free(d);
}

void vd_directory_stats_get(vd_directory *d, vd_directory_stats *out)
{
    out->up = vd_dir_state(d, NULL) == 1;
    out->errors = d->n_errors;
    out->heartbeats = d->n_heartbeats;
    out->pin_skipped = d->n_pin_skipped;
    out->pin_cache_hits = d->n_pin_hits;
    out->pin_conflicts = d->n_conflicts;
}
