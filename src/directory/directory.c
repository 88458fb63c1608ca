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
 * Multi-key updates are Lua scripts (EVAL, so a restarted Redis needs no
 * SCRIPT LOAD), each atomic: claiming a pin, writing an entry only while
 * the pin is ours, deleting an entry and pin only while they are ours.
 *
 * Ordering of drops and snapshots: the worker publishes snapshots now and
 * then, and reports drops as they happen. Each gets a sequence number; a
 * snapshot older than a drop must not bring the dropped entry back, so the
 * publisher keeps each drop until it has seen a newer snapshot and filters
 * the older ones with it.
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

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

void vd_directory_publish(vd_directory *d, vd_dir_snapshot *snap)
{
    pthread_mutex_lock(&d->mu);
    vd_dir_snapshot_clear(&d->snap);
    d->snap = *snap;
    d->snap_seq = ++d->seq;
    d->have_snap = 1;
    pthread_mutex_unlock(&d->mu);
    memset(snap, 0, sizeof *snap);
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

/* ------------------------------------------------------------------ */
/* The publisher thread. */

/* Deletes the pin and entry of a dropped index, each only while it is
 * still the partition's. KEYS: pin, entry, set; ARGV: partition, name. */
static const char unpin_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end "
    "local p = redis.call('HGET', KEYS[2], 'partition') "
    "if (not p) or p == ARGV[1] then redis.call('DEL', KEYS[2]) "
    "redis.call('SREM', KEYS[3], ARGV[2]) end "
    "return 1";

/* Claims the pin and, while it is the partition's, rewrites the entry.
 * KEYS: pin, entry, set; ARGV: partition, name, field, value, ... */
static const char entry_lua[] = "local v = redis.call('GET', KEYS[1]) "
                                "if not v then redis.call('SET', KEYS[1], ARGV[1]) v = ARGV[1] end "
                                "if v == ARGV[1] then redis.call('DEL', KEYS[2]) "
                                "redis.call('HSET', KEYS[2], unpack(ARGV, 3)) "
                                "redis.call('SADD', KEYS[3], ARGV[2]) end "
                                "return v";

/* Rewrites the heartbeat hash with its TTL and indexes it in the workers
 * zset (score: unix ms); members silent for 10 TTLs are pruned.
 * KEYS: worker hash, zset; ARGV: ttl ms, now ms, id, field, value, ... */
static const char heartbeat_lua[] =
    "redis.call('DEL', KEYS[1]) "
    "redis.call('HSET', KEYS[1], unpack(ARGV, 4)) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[1]) "
    "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[2]) - 10 * tonumber(ARGV[1])) "
    "return 1";

/* Builds an EVAL of script with 3 keys (entry, pin, set for name) or the
 * heartbeat's keys, plus args and the fields f. */
typedef struct evalbuf {
    const char **argv;
    size_t *lens;
    int argc;
    char *keys[3];
} evalbuf;

static void eval_free(evalbuf *e)
{
    free(e->argv);
    free(e->lens);
    for (int i = 0; i < 3; i++) free(e->keys[i]);
    memset(e, 0, sizeof *e);
}

static int eval_init(evalbuf *e, const char *script, size_t script_len, int nkeys, int nargs)
{
    memset(e, 0, sizeof *e);
    int cap = 3 + nkeys + nargs;
    e->argv = calloc((size_t)cap, sizeof *e->argv);
    e->lens = calloc((size_t)cap, sizeof *e->lens);
    if (!e->argv || !e->lens) return -1;
    static const char nk[][2] = {"0", "1", "2", "3"};
    e->argv[0] = "EVAL";
    e->lens[0] = 4;
    e->argv[1] = script;
    e->lens[1] = script_len;
    e->argv[2] = nk[nkeys];
    e->lens[2] = 1;
    e->argc = 3;
    return 0;
}

static void eval_arg(evalbuf *e, const char *s, size_t len)
{
    e->argv[e->argc] = s;
    e->lens[e->argc++] = len;
}

static void eval_fields(evalbuf *e, const vd_dir_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        eval_arg(e, f->name[i], strlen(f->name[i]));
        eval_arg(e, vd_dir_fields_value(f, i), f->len[i]);
    }
}

/* The three keys of an index name: pin, entry, set. */
static int name_keys(vd_directory *d, evalbuf *e, const char *name, size_t len)
{
    size_t l0, l1, l2;
    e->keys[0] = vd_dir_key(d, "pin:", name, len, &l0);
    e->keys[1] = vd_dir_key(d, "index:", name, len, &l1);
    e->keys[2] = vd_dir_key(d, "indexes", "", 0, &l2);
    if (!e->keys[0] || !e->keys[1] || !e->keys[2]) return -1;
    eval_arg(e, e->keys[0], l0);
    eval_arg(e, e->keys[1], l1);
    eval_arg(e, e->keys[2], l2);
    return 0;
}

static int same_entry(const vd_dir_index *a, const vd_dir_index *b)
{
    return a->partition == b->partition && strcmp(a->owner, b->owner) == 0 &&
           a->params.dimension == b->params.dimension && a->params.m == b->params.m &&
           a->params.ef_construction == b->params.ef_construction &&
           a->params.ef_search == b->params.ef_search && a->params.distance == b->params.distance &&
           a->length == b->length && a->deleted == b->deleted &&
           a->applied_offset == b->applied_offset &&
           a->checkpointed_offset == b->checkpointed_offset;
}

static vd_dir_written *find_written(vd_directory *d, const char *name)
{
    for (size_t i = 0; i < d->nwr; i++)
        if (strcmp(d->wr[i].ix.name, name) == 0) return &d->wr[i];
    return NULL;
}

static void forget_written(vd_directory *d, const char *name, size_t len)
{
    for (size_t i = 0; i < d->nwr; i++)
        if (strlen(d->wr[i].ix.name) == len && memcmp(d->wr[i].ix.name, name, len) == 0) {
            vd_dir_index_clear(&d->wr[i].ix);
            d->wr[i] = d->wr[--d->nwr];
            return;
        }
}

static void clear_written(vd_directory *d)
{
    for (size_t i = 0; i < d->nwr; i++) vd_dir_index_clear(&d->wr[i].ix);
    free(d->wr);
    d->wr = NULL;
    d->nwr = 0;
}

/* Was ix dropped after the snapshot it comes from was taken? */
static int dropped_since(const vd_directory *d, const vd_dir_index *ix, const vd_dir_unpin_list *l)
{
    size_t len = strlen(ix->name);
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].seq > d->cur_seq && l->v[i].partition == ix->partition && l->v[i].len == len &&
            memcmp(l->v[i].name, ix->name, len) == 0)
            return 1;
    return 0;
}

/* One round of writes: unpins, the heartbeat, changed entries. 0 when
 * Redis took all of it. */
static int publish_round(vd_directory *d, vd_dir_unpin_list *todo, int final)
{
    char why[256];
    if (!d->bc || d->bc_gen != atomic_load(&d->gen)) {
        vd_dir_conn_close(d->bc);
        if (!(d->bc = vd_dir_conn_open(&d->url, d->timeout_ms, why, sizeof why))) {
            vd_dir_mark_down(d, why);
            return -1;
        }
        d->bc_gen = atomic_load(&d->gen);
        clear_written(d); /* a new connection may be a new Redis: write everything */
    }
    /* Commands: unpins, then the heartbeat, then entries to write. */
    size_t max = todo->n + 1 + d->cur.n, n = 0;
    vd_dir_cmd *cmds = calloc(max ? max : 1, sizeof *cmds);
    evalbuf *eb = calloc(max ? max : 1, sizeof *eb);
    vd_dir_fields *fb = calloc(max ? max : 1, sizeof *fb);
    size_t *which = calloc(max ? max : 1, sizeof *which); /* index in cur, for entries */
    vd_dir_reply **rep = calloc(max ? max : 1, sizeof *rep);
    char(*part)[16] = calloc(max ? max : 1, sizeof *part);
    int rc = -1;
    if (!cmds || !eb || !fb || !which || !rep || !part) goto out;
    for (size_t i = 0; i < todo->n; i++, n++) {
        vd_dir_unpin *u = &todo->v[i];
        snprintf(part[n], sizeof part[n], "%" PRId32, u->partition);
        if (eval_init(&eb[n], unpin_lua, sizeof unpin_lua - 1, 3, 2) ||
            name_keys(d, &eb[n], u->name, u->len))
            goto out;
        eval_arg(&eb[n], part[n], strlen(part[n]));
        eval_arg(&eb[n], u->name, u->len);
        cmds[n] = (vd_dir_cmd){eb[n].argc, eb[n].argv, eb[n].lens};
    }
    size_t hb = n;
    int64_t now = unix_ms();
    char ttl[24], nowbuf[24];
    snprintf(ttl, sizeof ttl, "%d", d->ttl_ms);
    snprintf(nowbuf, sizeof nowbuf, "%" PRId64, now);
    if (!final && d->cur.worker.id[0]) {
        d->cur.worker.updated_ms = now;
        if (vd_dir_worker_encode(&d->cur.worker, &fb[n], NULL) ||
            eval_init(&eb[n], heartbeat_lua, sizeof heartbeat_lua - 1, 2, 3 + 2 * (int)fb[n].n))
            goto out;
        size_t l0, l1;
        eb[n].keys[0] = vd_dir_key(d, "worker:", d->worker_id, strlen(d->worker_id), &l0);
        eb[n].keys[1] = vd_dir_key(d, "workers", "", 0, &l1);
        if (!eb[n].keys[0] || !eb[n].keys[1]) goto out;
        eval_arg(&eb[n], eb[n].keys[0], l0);
        eval_arg(&eb[n], eb[n].keys[1], l1);
        eval_arg(&eb[n], ttl, strlen(ttl));
        eval_arg(&eb[n], nowbuf, strlen(nowbuf));
        eval_arg(&eb[n], d->worker_id, strlen(d->worker_id));
        eval_fields(&eb[n], &fb[n]);
        cmds[n] = (vd_dir_cmd){eb[n].argc, eb[n].argv, eb[n].lens};
        n++;
    }
    size_t first_entry = n;
    double t = vd_dir_mono_s();
    for (size_t i = 0; i < d->cur.n; i++) {
        vd_dir_index *ix = &d->cur.indexes[i];
        if (dropped_since(d, ix, todo) || dropped_since(d, ix, &d->recent)) continue;
        vd_dir_written *w = find_written(d, ix->name);
        if (!final && w && same_entry(&w->ix, ix) && t - w->at < d->ttl_ms / 1000.0) continue;
        if (final && w && same_entry(&w->ix, ix)) continue;
        ix->updated_ms = now;
        snprintf(part[n], sizeof part[n], "%" PRId32, ix->partition);
        if (vd_dir_index_encode(ix, &fb[n], NULL) ||
            eval_init(&eb[n], entry_lua, sizeof entry_lua - 1, 3, 2 + 2 * (int)fb[n].n) ||
            name_keys(d, &eb[n], ix->name, strlen(ix->name)))
            goto out;
        eval_arg(&eb[n], part[n], strlen(part[n]));
        eval_arg(&eb[n], ix->name, strlen(ix->name));
        eval_fields(&eb[n], &fb[n]);
        cmds[n] = (vd_dir_cmd){eb[n].argc, eb[n].argv, eb[n].lens};
        which[n] = i;
        n++;
    }
    if (n && vd_dir_conn_pipeline(&d->bc, cmds, n, rep, why, sizeof why)) {
        vd_dir_mark_down(d, why);
        goto out;
    }
    vd_dir_mark_up(d);
    if (!final && hb < first_entry) d->n_heartbeats++;
    for (size_t k = first_entry; k < n; k++) {
        vd_dir_index *ix = &d->cur.indexes[which[k]];
        int32_t owner = -1;
        vd_dir_pin_reply(rep[k], &owner);
        vd_dir_written *w = find_written(d, ix->name);
        if (!w) {
            vd_dir_written *v = realloc(d->wr, (d->nwr + 1) * sizeof *v);
            if (!v) continue;
            d->wr = v;
            w = &d->wr[d->nwr++];
            memset(w, 0, sizeof *w);
            if (!(w->ix.name = strdup(ix->name))) {
                d->nwr--;
                continue;
            }
        }
        char *keep = w->ix.name;
        w->ix = *ix;
        w->ix.name = keep;
        w->at = t;
        int conflict = owner >= 0 && owner != ix->partition;
        if (conflict && !w->conflict)
            vd_log(d->lg, VD_LOG_WARN, "pin_conflict", VD_LS("index", ix->name),
                   VD_LI("partition", ix->partition), VD_LI("pinned_to", owner),
                   VD_LS("meaning", "the same index name lives on two partitions: producers with "
                                    "different partitioners"));
        if (conflict != w->conflict) {
            if (conflict)
                d->n_conflicts++;
            else
                d->n_conflicts--;
        }
        w->conflict = conflict;
        if (conflict) w->at = 0; /* check again next round */
    }
    rc = 0;
out:
    for (size_t k = 0; rep && k < n; k++)
        if (rep[k] && rc == 0) vd_dir_reply_free(rep[k]);
    for (size_t k = 0; eb && fb && k < max; k++) {
        eval_free(&eb[k]);
        vd_dir_fields_clear(&fb[k]);
    }
    free(cmds);
    free(eb);
    free(fb);
    free(which);
    free(rep);
    free(part);
    return rc;
}

/* Removes the heartbeat: the worker leaves the fleet cleanly. */
static void delete_heartbeat(vd_directory *d)
{
    if (!d->bc || vd_dir_state(d, NULL) != 1) return;
    size_t l0, l1;
    char *k0 = vd_dir_key(d, "worker:", d->worker_id, strlen(d->worker_id), &l0);
    char *k1 = vd_dir_key(d, "workers", "", 0, &l1), why[256];
    if (k0 && k1) {
        const char *a0[2] = {"DEL", k0}, *a1[3] = {"ZREM", k1, d->worker_id};
        size_t s0[2] = {3, l0}, s1[3] = {4, l1, strlen(d->worker_id)};
        vd_dir_cmd c[2] = {{2, a0, s0}, {3, a1, s1}};
        vd_dir_reply *r[2];
        if (vd_dir_conn_pipeline(&d->bc, c, 2, r, why, sizeof why) == 0) {
            vd_dir_reply_free(r[0]);
            vd_dir_reply_free(r[1]);
        }
    }
    free(k0);
    free(k1);
}

static void *publisher(void *arg)
{
    vd_directory *d = arg;
    double next = 0;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        double retry_at;
        int state = vd_dir_state(d, &retry_at);
        double wake = state == 0 && retry_at > next ? retry_at : next;
        while (!d->stop && vd_dir_mono_s() < wake) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double left = wake - vd_dir_mono_s();
            if (left > 0.5) left = 0.5;
            if (left < 0) left = 0;
            ts.tv_sec += (time_t)left;
            ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&d->cond, &d->mu, &ts);
        }
        int final = d->stop;
        if (d->have_snap) {
            vd_dir_snapshot_clear(&d->cur);
            d->cur = d->snap;
            d->cur_seq = d->snap_seq;
            memset(&d->snap, 0, sizeof d->snap);
            d->have_snap = 0;
        }
        vd_dir_unpin_list todo = d->unpins;
        memset(&d->unpins, 0, sizeof d->unpins);
        pthread_mutex_unlock(&d->mu);

        /* Drops already applied are kept only while the current snapshot
         * is older than them. */
        for (size_t i = 0; i < d->recent.n; i++)
            if (d->recent.v[i].seq < d->cur_seq) {
                free(d->recent.v[i].name);
                d->recent.v[i--] = d->recent.v[--d->recent.n];
            }
        /* At exit a down Redis gets no more waiting. */
        int ok = !(final && vd_dir_state(d, NULL) == 0) && publish_round(d, &todo, final) == 0;
        if (final) {
            if (ok) delete_heartbeat(d);
            vd_dir_unpins_free(&todo);
            return NULL;
        }
        pthread_mutex_lock(&d->mu);
        if (ok) {
            for (size_t i = 0; i < todo.n; i++) {
                forget_written(d, todo.v[i].name, todo.v[i].len);
                vd_dir_unpins_push(&d->recent, todo.v[i].name, todo.v[i].len, todo.v[i].partition,
                                   todo.v[i].seq);
            }
            vd_dir_unpins_free(&todo);
        } else {
            /* Not done: put them back in front of newer ones. */
            for (size_t i = 0; i < d->unpins.n; i++)
                vd_dir_unpins_push(&todo, d->unpins.v[i].name, d->unpins.v[i].len,
                                   d->unpins.v[i].partition, d->unpins.v[i].seq);
            vd_dir_unpins_free(&d->unpins);
            d->unpins = todo;
        }
        next = vd_dir_mono_s() + d->heartbeat_ms / 1000.0;
    }
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
    if (pthread_create(&d->thread, NULL, publisher, d)) {
        vd_directory_close(d);
        return vd_error_set(err, VD_ERR_NOMEM, "directory: cannot start its thread");
    }
    d->has_thread = 1;
    *out = d;
    return VD_OK;
}

void vd_directory_close(vd_directory *d)
{
    if (!d) return;
    if (d->has_thread) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    vd_dir_conn_close(d->pc);
    vd_dir_conn_close(d->bc);
    vd_dir_pins_clear(d);
    vd_dir_unpins_free(&d->unpins);
    vd_dir_unpins_free(&d->recent);
    vd_dir_snapshot_clear(&d->snap);
    vd_dir_snapshot_clear(&d->cur);
    clear_written(d);
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
