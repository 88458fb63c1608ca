/*
 * load.c - a partition's checkpoints loaded at assignment (see load.h and
 * docs/checkpoints.md).
 */
#include "worker/load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "store/store.h"
#include "lhv1/lhv1_position.h"
#include "worker/manifest.h"
#include "worker/partition.h"
#include "worker/taskq.h"

/* ------------------------------------------------------------------ */
/* The decisions. */

vd_load_result vd_load_classify(vd_err rc)
{
    if (rc == VD_OK) return VD_LOAD_OK;
    /* The store or the moment, not the data: keep the partition and try
     * again. */
    if (rc == VD_ERR_IO || rc == VD_ERR_TIMEOUT || rc == VD_ERR_NOMEM) return VD_LOAD_AGAIN;
    return VD_LOAD_REFUSED;
}

vd_err vd_load_check_cluster(const char *manifest_cluster, const char *cluster, int embedded,
                             int *rebase, vd_error *err)
{
    *rebase = 0;
    if (embedded) {
        /* The embedded cluster is new at every start (and the mock's id is
         * not): keep the indexes, apply the new log on top of them. */
        *rebase = 1;
        return VD_OK;
    }
    if (manifest_cluster[0] && strcmp(manifest_cluster, cluster) != 0)
        return vd_error_set(err, VD_ERR_UNAVAILABLE,
                            "the manifest's offsets refer to Kafka cluster %s, this is %s",
                            manifest_cluster, cluster);
    return VD_OK;
}

int64_t vd_load_start(int has_manifest, int64_t manifest_start, int64_t committed, int64_t lo,
                      int *manifest_missing)
{
    *manifest_missing = 0;
    if (has_manifest) return manifest_start;
    if (committed < 0) return lo;
    *manifest_missing = 1;
    return committed;
}

/* ------------------------------------------------------------------ */
/* The job. */

/* One index read by a load. */
typedef struct ldindex {
    char *name;
    vd_index *ix;
    int64_t complete, file_offset;
    char *legacy_key; /* read from the key before partitions: write it anew */
} ldindex;

/* A load in flight: partition id's watermarks, manifest and index files,
 * read and decoded by the store thread; the poll thread installs the
 * indexes and moves the consumer to start (ld_finish). */
typedef struct vd_ldjob {
    vd_task t; /* first: a job is a task */
    int32_t id;
    vd_load_result result;
    int64_t lo, hi;   /* the commands partition's watermarks */
    int has_manifest; /* VD_LOAD_OK: a manifest was found, start is its */
    int64_t start;
    int64_t manifest_offset;
    int rebase;            /* embedded mode: indexes kept, offsets forgotten */
    char *legacy_manifest; /* read from the older layout's key: deleted after
                              the next manifest */
    ldindex *ix;
    size_t n;
    double t0;
    vd_error err;
} ldjob;

/* Loading p failed on the store or the log: counted, logged, tried again
 * after the backoff. */
static void load_failed(vd_worker *w, vd_partition *p, const char *msg)
{
    w->n_load_failures++;
    vd_worker_retry_later(w, p);
    VD_WLOG(w, VD_LOG_ERROR, "partition_load_failed", VD_LI("partition", p->id),
            VD_LS("error", msg), VD_LD("retry_in_s", p->backoff));
}

static void ldjob_free(vd_task *t)
{
    ldjob *j = (ldjob *)t;
    for (size_t i = 0; i < j->n; i++) {
        free(j->ix[i].name);
        free(j->ix[i].legacy_key);
        vd_index_free(j->ix[i].ix);
    }
    free(j->ix);
    free(j->legacy_manifest);
    free(j);
}

/* Store thread: the file of entry me. A manifest named by offset names
 * files by offset; one at the older layout's single key names files at
 * their unversioned key or, before that, at the Go service's key
 * (*legacy_key then set: it is rewritten and the old object deleted). */
static vd_err ld_get(vd_worker *w, ldjob *j, const vd_manifest_entry *me, uint8_t **buf,
                     size_t *len, char **legacy_key)
{
    size_t n = strlen(me->name);
    if (!j->legacy_manifest) {
        if (me->file_offset < 0)
            return vd_error_set(&j->err, VD_ERR_CORRUPT,
                                "manifest: index \"%.100s\" has no file_offset", me->name);
        char *key = vd_store_checkpoint_key(w->t_cmd, j->id, me->name, n, me->file_offset);
        vd_err rc = key ? vd_store_get(w->store, key, buf, len, &j->err) : VD_ERR_NOMEM;
        free(key);
        return rc;
    }
    char *keys[2] = {vd_store_unversioned_key(w->t_cmd, j->id, me->name, n),
                     vd_store_legacy_key(me->name, n)};
    vd_err rc = keys[0] && keys[1] ? VD_ERR_NOT_FOUND : VD_ERR_NOMEM;
    vd_error err2;
    for (int i = 0; rc == VD_ERR_NOT_FOUND && i < 2; i++) {
        rc = vd_store_get(w->store, keys[i], buf, len, i ? &err2 : &j->err);
        if (!rc) {
            *legacy_key = keys[i];
            keys[i] = NULL;
        }
    }
    /* Not found at either: j->err holds the first key's message (the
     * second GET wrote err2). */
    free(keys[0]);
    free(keys[1]);
    return rc;
}

/* Store thread: the key of the newest manifest of partition j->id in
 * *key (NULL when there is none: then the older layout's single key is
 * tried). Errors: the store's. */
static vd_err ld_newest_manifest(vd_worker *w, ldjob *j, char **key)
{
    *key = NULL;
    char *pre = vd_manifest_prefix(w->t_cmd, j->id);
    char **keys = NULL;
    size_t n = 0;
    vd_err rc = pre ? vd_store_list(w->store, pre, &keys, &n, &j->err) : VD_ERR_NOMEM;
    int64_t best = -1;
    for (size_t i = 0; !rc && i < n; i++) {
        int64_t off;
        if (vd_manifest_key_parse(pre, keys[i], &off) && off > best) {
            best = off;
            free(*key);
            if (!(*key = strdup(keys[i]))) rc = VD_ERR_NOMEM;
        }
    }
    vd_store_keys_free(keys, n);
    free(pre);
    if (rc) {
        free(*key);
        *key = NULL;
    }
    return rc;
}

/* Store thread: reads and decodes the index files mf lists into j->ix,
 * with how far each is complete in complete[]. A file whose envelope names
 * another topic or partition is not installed: its index is complete
 * through nothing, so replay rebuilds it from the log. */
static vd_err ld_files(vd_worker *w, ldjob *j, const vd_manifest *mf, int64_t *complete)
{
    vd_error *err = &j->err;
    vd_err rc = VD_OK;
    for (size_t i = 0; !rc && i < mf->n; i++) {
        if (vd_taskq_cancelled(w->store_q, &j->t))
            return vd_error_set(err, VD_ERR_IO, "load abandoned");
        const vd_manifest_entry *me = &mf->entries[i];
        ldindex *li = &j->ix[j->n];
        vd_lhv1_kafka k;
        uint8_t *buf = NULL;
        size_t len = 0;
        char *legacy_key = NULL;
        rc = ld_get(w, j, me, &buf, &len, &legacy_key);
        if (!rc) {
            rc = vd_lhv1_read_pos(buf, len, &w->limits, &li->ix, &k, err);
            free(buf);
        }
        if (rc) {
            free(legacy_key);
            break;
        }
        if (strcmp(k.topic, w->t_cmd) != 0 || k.partition != j->id) {
            w->n_checkpoint_foreign++;
            VD_WLOG(w, VD_LOG_ERROR, "checkpoint_foreign", VD_LI("partition", j->id),
                    VD_LS("index", me->name), VD_LS("file_topic", k.topic),
                    VD_LI("file_partition", k.partition),
                    VD_LS("then", "not installed: the index is replayed from the log"));
            vd_index_free(li->ix);
            li->ix = NULL;
            free(legacy_key);
            complete[i] = -1;
            continue;
        }
        j->n++;
        li->legacy_key = legacy_key;
        if (!(li->name = strdup(me->name))) return VD_ERR_NOMEM;
        complete[i] = li->complete = j->rebase ? -1 : vd_manifest_complete(me, k.offset);
        li->file_offset = j->rebase ? -1 : k.offset;
        if (legacy_key) {
            w->n_checkpoint_migrated++;
            VD_WLOG(w, VD_LOG_INFO, "checkpoint_migrated", VD_LI("partition", j->id),
                    VD_LS("index", me->name), VD_LS("from", legacy_key));
        }
        if (!j->rebase && k.offset < me->file_offset)
            VD_WLOG(w, VD_LOG_WARN, "stale_checkpoint", VD_LI("partition", j->id),
                    VD_LS("index", me->name), VD_LI("file_offset", k.offset),
                    VD_LI("expected", me->file_offset));
    }
    return rc;
}

/* Store thread: partition j->id's watermarks, manifest and files; the
 * outcome in j->result (vd_load_classify) and, when OK, j->start. */
static void ld_load(void *ctx, vd_task *t)
{
    vd_worker *w = ctx;
    ldjob *j = (ldjob *)t;
    vd_error *err = &j->err;
    j->result = VD_LOAD_AGAIN;
    /* Without the log's bounds neither the start nor readiness is known.
     * Asked through the producer: on the consumer's connection the request
     * would wait behind the broker's answer to a long-polling fetch (up to
     * fetch.wait.max.ms) for the partitions already loaded. */
    rd_kafka_resp_err_t ke =
        rd_kafka_query_watermark_offsets(w->producer, w->t_cmd, j->id, &j->lo, &j->hi, 10000);
    if (ke) {
        vd_error_set(err, VD_ERR_UNAVAILABLE, "watermarks: %s", rd_kafka_err2str(ke));
        return;
    }
    if (vd_taskq_cancelled(w->store_q, t)) return;
    char *key = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    vd_err rc = ld_newest_manifest(w, j, &key);
    if (!rc && !key) {
        j->legacy_manifest = vd_manifest_legacy_key(w->t_cmd, j->id);
        rc = j->legacy_manifest ? vd_store_get(w->store, j->legacy_manifest, &buf, &len, err)
                                : VD_ERR_NOMEM;
    } else if (!rc) {
        rc = vd_store_get(w->store, key, &buf, &len, err);
    }
    free(key);
    if (rc == VD_ERR_NOT_FOUND) {
        free(j->legacy_manifest); /* no older layout to move either */
        j->legacy_manifest = NULL;
        VD_WLOG(w, VD_LOG_INFO, "partition_fresh", VD_LI("partition", j->id));
        j->result = VD_LOAD_OK;
        return;
    }
    vd_manifest mf;
    vd_manifest_init(&mf, w->t_cmd, j->id);
    if (!rc) rc = vd_manifest_decode(buf, len, &mf, err);
    free(buf);
    if (!rc)
        rc = vd_load_check_cluster(mf.cluster_id, w->cluster_id, w->mock != NULL, &j->rebase, err);
    if (!rc && j->rebase) {
        VD_WLOG(w, VD_LOG_WARN, "embedded_rebase", VD_LI("partition", j->id),
                VD_LS("old_cluster", mf.cluster_id), VD_LI("old_offset", mf.offset));
        mf.offset = -1;
    }
    int64_t *complete = NULL;
    if (!rc && mf.n &&
        (!(complete = calloc(mf.n, sizeof *complete)) || !(j->ix = calloc(mf.n, sizeof *j->ix))))
        rc = VD_ERR_NOMEM;
    if (!rc) rc = ld_files(w, j, &mf, complete);
    j->result = vd_load_classify(rc);
    if (!rc) {
        j->has_manifest = 1;
        j->start = vd_manifest_start(&mf, complete);
        j->manifest_offset = mf.offset;
        VD_WLOG(w, VD_LOG_INFO, "partition_loaded", VD_LI("partition", j->id),
                VD_LI("indexes", mf.n), VD_LI("manifest_offset", mf.offset),
                VD_LI("start", j->start), VD_LD("seconds", vd_mono_s() - j->t0));
    }
    if (rc && !err->msg[0]) vd_error_set(err, rc, "%s", vd_strerror(rc));
    free(complete);
    vd_manifest_clear(&mf);
}

void vd_load_submit(vd_worker *w, vd_partition *p)
{
    ldjob *j = calloc(1, sizeof *j);
    if (!j) {
        p->load_again = 1;
        load_failed(w, p, "out of memory");
        return;
    }
    j->t.run = ld_load;
    j->t.free = ldjob_free;
    j->id = p->id;
    j->t0 = vd_mono_s();
    p->ld = j;
    p->load_again = 0;
    vd_taskq_submit(w->store_q, &j->t);
}

void vd_load_cancel(vd_worker *w, vd_partition *p)
{
    if (!p->ld) return;
    vd_taskq_cancel(w->store_q, &p->ld->t);
    p->ld = NULL;
}

/* Puts the loaded indexes into p's registry. Out of memory: none of them
 * stays, and the load is tried again. */
static void ld_install(vd_partition *p, ldjob *j)
{
    pthread_rwlock_wrlock(&p->lock);
    p->rebased = j->rebase; /* the first manifest sweeps the other cluster's */
    for (size_t i = 0; i < j->n; i++) {
        ldindex *li = &j->ix[i];
        vd_entry *e = vd_partition_add(p, li->name, strlen(li->name), li->ix);
        if (!e) {
            while (p->n) vd_partition_remove(p, &p->e[p->n - 1]);
            atomic_store_explicit(&p->pending, 0, memory_order_relaxed);
            j->result = VD_LOAD_AGAIN;
            vd_error_set(&j->err, VD_ERR_NOMEM, "loading checkpoints: out of memory");
            break;
        }
        li->ix = NULL; /* the registry's now */
        e->complete = li->complete;
        atomic_store_explicit(&e->last, li->complete, memory_order_relaxed);
        e->file_offset = li->file_offset;
        /* Rewritten at the next checkpoint: against this cluster's offsets
         * (rebase), or under its new key (migrated; the old key is deleted
         * after that checkpoint's manifest). */
        int rewrite = j->rebase || li->legacy_key;
        e->dirty = rewrite;
        atomic_fetch_add_explicit(&p->pending, (size_t)rewrite, memory_order_relaxed);
        char **l = li->legacy_key ? realloc(p->legacy, (p->nlegacy + 1) * sizeof *l) : NULL;
        if (l) {
            p->legacy = l;
            p->legacy[p->nlegacy++] = li->legacy_key;
            li->legacy_key = NULL;
        }
    }
    char **l = j->legacy_manifest && j->result == VD_LOAD_OK
                   ? realloc(p->legacy, (p->nlegacy + 1) * sizeof *l)
                   : NULL;
    if (l) {
        p->legacy = l;
        p->legacy[p->nlegacy++] = j->legacy_manifest;
        j->legacy_manifest = NULL;
        /* A manifest at the new key soon, even with nothing to apply. */
        atomic_fetch_add_explicit(&p->pending, 1, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&p->lock);
}

/* Poll thread, once p's load is done: the indexes go into p's registry and
 * the start offset is worked out (seek_to, seek_hi); or the load is
 * scheduled again, or p is refused. */
static void ld_finish(vd_worker *w, vd_partition *p)
{
    ldjob *j = p->ld;
    p->ld = NULL;
    if (j->result == VD_LOAD_OK) ld_install(p, j);
    if (j->result == VD_LOAD_AGAIN) {
        p->load_again = 1;
        load_failed(w, p, j->err.msg);
    } else if (j->result == VD_LOAD_REFUSED) {
        char why[sizeof p->refused_why];
        snprintf(why, sizeof why, "loading checkpoints: %s", j->err.msg);
        vd_partition_refuse(p, why);
        VD_WLOG(w, VD_LOG_ERROR, "partition_refused", VD_LI("partition", p->id),
                VD_LS("reason", why));
    } else {
        int missing;
        int64_t start =
            vd_load_start(j->has_manifest, j->start, p->assigned_committed, j->lo, &missing);
        if (missing)
            VD_WLOG(w, VD_LOG_WARN, "manifest_missing", VD_LI("partition", p->id),
                    VD_LI("committed", p->assigned_committed));
        if (j->has_manifest) p->manifest_offset = p->quiet_until = j->manifest_offset;
        p->seek_to = start;
        p->seek_hi = j->hi;
        p->seek_pending = 1;
        p->backoff = 0;
        p->retry_at = 0;
    }
    ldjob_free(&j->t);
}

void vd_load_pause(vd_worker *w, int32_t id, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->t_cmd, id);
    if (pause)
        rd_kafka_pause_partitions(w->consumer, l);
    else
        rd_kafka_resume_partitions(w->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* p is loaded: the consumer moves to its start, p replays from there (or
 * is ready) and resumes. Returns 0, or -1 when the seek failed (tried
 * again 0.2 s later). */
static int ld_activate(vd_worker *w, vd_partition *p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->t_cmd, p->id)->offset = p->seek_to;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(w->consumer, l, 10000);
    rd_kafka_resp_err_t pe = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (e || pe) {
        VD_WLOG(w, VD_LOG_WARN, "seek_failed", VD_LI("partition", p->id),
                VD_LS("error", e ? rd_kafka_error_string(e) : rd_kafka_err2str(pe)));
        if (e) rd_kafka_error_destroy(e);
        p->retry_at = vd_mono_s() + 0.2;
        return -1;
    }
    p->seek_pending = 0;
    vd_partition_activate(p, p->seek_to, p->seek_hi);
    VD_WLOG(w, VD_LOG_INFO, "assigned", VD_LI("partition", p->id), VD_LI("start", p->seek_to),
            VD_LI("high_watermark", p->seek_hi),
            VD_LI("replay", p->seek_hi > p->seek_to ? p->seek_hi - p->seek_to : 0),
            VD_LS("state", p->state == VD_PART_READY ? "ready" : "replaying"));
    vd_load_pause(w, p->id, 0);
    return 0;
}

int vd_load_poll(vd_worker *w)
{
    double t = vd_mono_s();
    int busy = 0;
    for (int32_t i = 0; i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        if (p->ld) {
            if (!vd_taskq_done(w->store_q, &p->ld->t, 0)) {
                busy = 1;
                continue;
            }
            ld_finish(w, p);
        }
        if (p->load_again) {
            busy = 1;
            if (t >= p->retry_at) vd_load_submit(w, p);
            continue;
        }
        if (!p->seek_pending || t < p->retry_at) {
            busy |= p->seek_pending;
            continue;
        }
        if (ld_activate(w, p)) busy = 1;
    }
    return busy;
}
