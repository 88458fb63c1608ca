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
 * Pins are in pins.c and the publisher thread in publisher.c;
 * directory_internal.h says which thread owns what.
 */
#include "directory_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The directory object. */

double vd_dir_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* prefix + kind + name, e.g. "vectord:g:pin:" "docs". Caller frees. */
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

void vd_directory_stats_get(vd_directory *d, vd_directory_stats *out)
{
    out->up = vd_dir_state(d, NULL) == 1;
    out->errors = d->n_errors;
    out->heartbeats = d->n_heartbeats;
    out->pin_skipped = d->n_pin_skipped;
    out->pin_cache_hits = d->n_pin_hits;
    out->pin_conflicts = d->n_conflicts;
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

/* ------------------------------------------------------------------ */
/* Readers. */

static int cmp_index(const void *a, const void *b)
{
    return strcmp(((const vd_dir_index *)a)->name, ((const vd_dir_index *)b)->name);
}

static int cmp_worker(const void *a, const void *b)
{
    return strcmp(((const vd_dir_worker *)a)->id, ((const vd_dir_worker *)b)->id);
}

/* The field/value strings of an HGETALL reply. */
static vd_err hash_pairs(const vd_dir_reply *r, const char ***f, size_t **l, size_t *n)
{
    *n = vd_dir_reply_count(r);
    *f = calloc(*n ? *n : 1, sizeof **f);
    *l = calloc(*n ? *n : 1, sizeof **l);
    if (!*f || !*l) {
        free(*f);
        free(*l);
        return VD_ERR_NOMEM;
    }
    for (size_t i = 0; i < *n; i++) {
        const char *s = vd_dir_reply_str(vd_dir_reply_at(r, i), &(*l)[i]);
        (*f)[i] = s ? s : "";
    }
    return VD_OK;
}

static vd_err reader_fail(vd_directory *d, vd_error *err, const char *what, const char *why)
{
    return vd_error_set(err, VD_ERR_IO, "Redis at %s: %s: %s", d->where, what, why);
}

vd_err vd_directory_workers(vd_directory *d, vd_dir_worker **out, size_t *nout, vd_error *err)
{
    char why[256];
    size_t klen;
    if (!d->pc) return reader_fail(d, err, "not connected", "reconnect");
    char *zkey = vd_dir_key(d, "workers", "", 0, &klen);
    if (!zkey) return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
    const char *argv[4] = {"ZRANGE", zkey, "0", "-1"};
    size_t lens[4] = {6, klen, 1, 2};
    vd_dir_reply *ids;
    int rc = vd_dir_conn_run(&d->pc, 4, argv, lens, &ids, why, sizeof why);
    free(zkey);
    if (rc) return reader_fail(d, err, "ZRANGE workers", why);
    size_t n = vd_dir_reply_count(ids);
    vd_err erc = VD_OK;
    vd_dir_cmd *cmds = calloc(2 * n + 1, sizeof *cmds);
    char **keys = calloc(n + 1, sizeof *keys);
    const char **args = calloc(4 * n + 1, sizeof *args);
    size_t *alens = calloc(4 * n + 1, sizeof *alens);
    vd_dir_reply **rep = calloc(2 * n + 1, sizeof *rep);
    vd_dir_worker *ws = calloc(n + 1, sizeof *ws);
    size_t got = 0;
    if (!cmds || !keys || !args || !alens || !rep || !ws) {
        erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t idlen;
        const char *id = vd_dir_reply_str(vd_dir_reply_at(ids, i), &idlen);
        if (!(keys[i] = vd_dir_key(d, "worker:", id, idlen, &klen))) {
            erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
            goto out;
        }
        args[4 * i] = "HGETALL";
        alens[4 * i] = 7;
        args[4 * i + 1] = keys[i];
        alens[4 * i + 1] = klen;
        args[4 * i + 2] = "PTTL";
        alens[4 * i + 2] = 4;
        args[4 * i + 3] = keys[i];
        alens[4 * i + 3] = klen;
        cmds[2 * i] = (vd_dir_cmd){2, &args[4 * i], &alens[4 * i]};
        cmds[2 * i + 1] = (vd_dir_cmd){2, &args[4 * i + 2], &alens[4 * i + 2]};
    }
    if (n && vd_dir_conn_pipeline(&d->pc, cmds, 2 * n, rep, why, sizeof why)) {
        erc = reader_fail(d, err, "HGETALL worker", why);
        goto out;
    }
    for (size_t i = 0; i < n && !erc; i++) {
        const char **f;
        size_t *l, nf;
        if (vd_dir_reply_count(rep[2 * i]) == 0) continue; /* expired: the worker is gone */
        if ((erc = hash_pairs(rep[2 * i], &f, &l, &nf))) {
            vd_error_set(err, erc, "directory: out of memory");
            break;
        }
        vd_error derr;
        if (vd_dir_worker_decode(f, l, nf, &ws[got], &derr) == VD_OK) {
            if (!ws[got].id[0]) {
                size_t idlen;
                const char *id = vd_dir_reply_str(vd_dir_reply_at(ids, i), &idlen);
                vd_dir_field_copy(ws[got].id, sizeof ws[got].id, id, idlen);
            }
            ws[got].ttl_ms = vd_dir_reply_integer(rep[2 * i + 1], -1);
            got++;
        }
        free(f);
        free(l);
    }
    for (size_t k = 0; k < 2 * n; k++) vd_dir_reply_free(rep[k]);
out:
    vd_dir_reply_free(ids);
    for (size_t i = 0; keys && i < n; i++) free(keys[i]);
    free(keys);
    free(cmds);
    free(args);
    free(alens);
    free(rep);
    if (erc) {
        for (size_t i = 0; i < got; i++) vd_dir_worker_clear(&ws[i]);
        free(ws);
        return erc;
    }
    qsort(ws, got, sizeof *ws, cmp_worker);
    *out = ws;
    *nout = got;
    return VD_OK;
}

vd_err vd_directory_indexes(vd_directory *d, vd_dir_index **out, size_t *nout, vd_error *err)
{
    vd_dir_worker *ws = NULL;
    size_t nw = 0;
    vd_err erc = vd_directory_workers(d, &ws, &nw, err);
    if (erc) return erc;
    char why[256];
    size_t klen;
    char *skey = vd_dir_key(d, "indexes", "", 0, &klen);
    vd_dir_reply *names = NULL;
    if (!skey) {
        erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
        goto done_workers;
    }
    const char *argv[2] = {"SMEMBERS", skey};
    size_t lens[2] = {8, klen};
    int rc = vd_dir_conn_run(&d->pc, 2, argv, lens, &names, why, sizeof why);
    free(skey);
    if (rc) {
        erc = reader_fail(d, err, "SMEMBERS indexes", why);
        goto done_workers;
    }
    size_t n = vd_dir_reply_count(names);
    vd_dir_cmd *cmds = calloc(2 * n + 1, sizeof *cmds);
    char **keys = calloc(2 * n + 1, sizeof *keys);
    const char **args = calloc(4 * n + 1, sizeof *args);
    size_t *alens = calloc(4 * n + 1, sizeof *alens);
    vd_dir_reply **rep = calloc(2 * n + 1, sizeof *rep);
    vd_dir_index *xs = calloc(n + 1, sizeof *xs);
    size_t got = 0;
    int have_rep = 0;
    if (!cmds || !keys || !args || !alens || !rep || !xs) {
        erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t nmlen, l0, l1;
        const char *nm = vd_dir_reply_str(vd_dir_reply_at(names, i), &nmlen);
        keys[2 * i] = vd_dir_key(d, "index:", nm, nmlen, &l0);
        keys[2 * i + 1] = vd_dir_key(d, "pin:", nm, nmlen, &l1);
        if (!keys[2 * i] || !keys[2 * i + 1]) {
            erc = vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
            goto out;
        }
        args[4 * i] = "HGETALL";
        alens[4 * i] = 7;
        args[4 * i + 1] = keys[2 * i];
        alens[4 * i + 1] = l0;
        args[4 * i + 2] = "GET";
        alens[4 * i + 2] = 3;
        args[4 * i + 3] = keys[2 * i + 1];
        alens[4 * i + 3] = l1;
        cmds[2 * i] = (vd_dir_cmd){2, &args[4 * i], &alens[4 * i]};
        cmds[2 * i + 1] = (vd_dir_cmd){2, &args[4 * i + 2], &alens[4 * i + 2]};
    }
    if (n && vd_dir_conn_pipeline(&d->pc, cmds, 2 * n, rep, why, sizeof why)) {
        erc = reader_fail(d, err, "HGETALL index", why);
        goto out;
    }
    have_rep = 1;
    for (size_t i = 0; i < n && !erc; i++) {
        const char **f;
        size_t *l, nf;
        if (vd_dir_reply_count(rep[2 * i]) == 0) continue;
        if ((erc = hash_pairs(rep[2 * i], &f, &l, &nf))) {
            vd_error_set(err, erc, "directory: out of memory");
            break;
        }
        size_t nmlen;
        const char *nm = vd_dir_reply_str(vd_dir_reply_at(names, i), &nmlen);
        vd_error derr;
        if (vd_dir_index_decode(nm, nmlen, f, l, nf, &xs[got], &derr) == VD_OK) {
            int32_t pin = -1;
            if (vd_dir_pin_reply(rep[2 * i + 1], &pin)) pin = -1;
            xs[got].pinned = pin;
            for (size_t k = 0; k < nw; k++)
                if (strcmp(ws[k].id, xs[got].owner) == 0) xs[got].owner_alive = 1;
            got++;
        }
        free(f);
        free(l);
    }
out:
    for (size_t k = 0; have_rep && k < 2 * n; k++) vd_dir_reply_free(rep[k]);
    vd_dir_reply_free(names);
    for (size_t i = 0; keys && i < 2 * n; i++) free(keys[i]);
    free(keys);
    free(cmds);
    free(args);
    free(alens);
    free(rep);
    if (erc) {
        for (size_t i = 0; i < got; i++) vd_dir_index_clear(&xs[i]);
        free(xs);
    } else {
        qsort(xs, got, sizeof *xs, cmp_index);
        *out = xs;
        *nout = got;
    }
done_workers:
    for (size_t i = 0; i < nw; i++) vd_dir_worker_clear(&ws[i]);
    free(ws);
    return erc;
}
