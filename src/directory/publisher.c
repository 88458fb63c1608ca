/*
 * publisher.c - the directory's own thread (worker only): it writes the
 * heartbeat, the index entries and the unpins from what the poll thread
 * handed over (vd_directory_publish, vd_directory_unpin), once per
 * directory.heartbeat.interval.ms, on its own connection (bc). It alone
 * reconnects while Redis is down, with the backoff of vd_dir_mark_down;
 * after a reconnect it writes every entry again, since the new connection
 * may be to an empty Redis.
 *
 * Each write is a Lua script (EVAL, so a restarted Redis needs no SCRIPT
 * LOAD), atomic: writing an entry only while the pin is ours (claiming it
 * when free), deleting an entry and pin only while they are ours, and
 * replacing the heartbeat with its TTL. One round is one pipeline.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

int vd_dir_publisher_start(vd_directory *d)
{
    if (pthread_create(&d->thread, NULL, publisher, d)) return -1;
    d->has_thread = 1;
    return 0;
}

void vd_dir_publisher_stop(vd_directory *d)
{
    if (d->has_thread) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        d->has_thread = 0;
    }
    vd_dir_conn_close(d->bc);
    d->bc = NULL;
    vd_dir_unpins_free(&d->recent);
    vd_dir_snapshot_clear(&d->cur);
    clear_written(d);
}
