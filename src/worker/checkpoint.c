/*
 * checkpoint.c - snapshot, write, finish and policy of a partition's
 * checkpoints (see checkpoint.h and docs/checkpoints.md).
 */
#include "worker/checkpoint.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "store/store.h"
#include "lhv1/lhv1_position.h"
#include "worker/manifest.h"
#include "worker/outbox.h"
#include "worker/partition.h"
#include "worker/taskq.h"

/* One index file of a checkpoint in flight. */
typedef struct ckfile {
    char *name;
    uint64_t uid;   /* the incarnation snapshotted (vd_entry.uid) */
    int64_t offset; /* the file's Kafka offset: the index's last command when serialised */
    int ok;         /* written */
} ckfile;

/* A checkpoint in flight: what the poll thread snapshotted (which indexes
 * are dirty, the clean ones' entries), serialised and written by the store
 * thread. */
typedef struct vd_ckjob {
    vd_task t; /* first: a job is a task */
    vd_partition *p;
    const char *why;
    ckfile *files;
    size_t nfiles;
    size_t bytes, largest; /* written, and the largest file (the job's memory) */
    vd_manifest mf;        /* the clean indexes at the snapshot; the store thread adds the rest */
    char **legacy;         /* keys of older layouts, deleted after the manifest */
    size_t nlegacy;
    int rebased;     /* the first manifest after an embedded rebase */
    int64_t applied; /* the manifest's offset: commit applied + 1 */
    size_t pending;  /* commands it makes durable */
    int held;        /* not submitted yet: a DLQ record up to applied is unacknowledged */
    size_t deleted;  /* garbage objects deleted after the manifest */
    double t0;
    vd_err rc;
    vd_error err;
} ckjob;

/* A checkpoint of p failed: counted, logged, tried again after the backoff. */
static void ck_failed(vd_worker *w, vd_partition *p, const char *why, const char *msg)
{
    w->n_checkpoint_failures++;
    vd_worker_retry_later(w, p);
    VD_WLOG(w, VD_LOG_ERROR, "checkpoint_failed", VD_LI("partition", p->id), VD_LS("why", why),
            VD_LS("error", msg), VD_LD("retry_in_s", p->backoff));
}

static void ckjob_free(vd_task *t)
{
    ckjob *j = (ckjob *)t;
    if (!j) return;
    for (size_t i = 0; i < j->nfiles; i++) free(j->files[i].name);
    free(j->files);
    vd_manifest_clear(&j->mf);
    for (size_t i = 0; i < j->nlegacy; i++) free(j->legacy[i]);
    free(j->legacy);
    free(j);
}

/*
 * Store thread: f's index serialised, with the offset of the last command
 * it holds, under p's apply_mu (the poll thread applies nothing to p
 * meanwhile: the bytes and the offset belong together; searches go on).
 * The file may hold commands after the snapshot: its offset says so, and
 * the index counts as complete through it. An index dropped (or dropped
 * and created again) since the snapshot fails the job: the next one writes
 * what is there then. *buf is malloc'd, the caller frees it.
 */
static vd_err ck_serialise(vd_worker *w, ckjob *j, ckfile *f, uint8_t **buf, size_t *len)
{
    vd_partition *p = j->p;
    vd_err rc;
    pthread_mutex_lock(&p->apply_mu);
    pthread_rwlock_rdlock(&p->lock);
    vd_entry *e = vd_partition_find(p, f->name, strlen(f->name));
    if (!e || e->uid != f->uid) {
        rc = vd_error_set(&j->err, VD_ERR_UNAVAILABLE,
                          "index \"%.100s\" was dropped during the checkpoint", f->name);
    } else {
        /* apply_mu orders it: relaxed. */
        int64_t last = atomic_load_explicit(&e->last, memory_order_relaxed);
        vd_lhv1_kafka k = {.partition = p->id, .offset = last};
        snprintf(k.topic, sizeof k.topic, "%s", w->t_cmd);
        f->offset = last;
        rc = vd_lhv1_write_buf_pos(e->ix, &k, buf, len, &j->err);
    }
    pthread_rwlock_unlock(&p->lock);
    pthread_mutex_unlock(&p->apply_mu);
    return rc;
}

/* Store thread: deletes key, logging a failure (garbage only stays). */
static void ck_delete(vd_worker *w, ckjob *j, const char *key, const char *what)
{
    vd_error derr;
    if (vd_store_del(w->store, key, &derr))
        VD_WLOG(w, VD_LOG_WARN, "garbage_delete_failed", VD_LI("partition", j->p->id),
                VD_LS("what", what), VD_LS("error", derr.msg));
    else
        j->deleted++;
}

/*
 * Store thread, once the manifest through j->applied is written: the
 * partition's manifests and files no manifest that may still be read can
 * name (vd_manifest_garbage, vd_manifest_file_garbage), whoever wrote them:
 * older manifests, superseded files, the files of dropped indexes, and
 * what a zombie left. A failure leaves garbage, which the next checkpoint
 * sweeps.
 */
static void ck_sweep(vd_worker *w, ckjob *j)
{
    int32_t id = j->p->id;
    char **keys = NULL;
    size_t n = 0;
    vd_error err;
    char *pre = vd_manifest_prefix(w->t_cmd, id);
    if (pre && !vd_store_list(w->store, pre, &keys, &n, &err)) {
        for (size_t i = 0; i < n; i++) {
            int64_t off;
            if (vd_manifest_key_parse(pre, keys[i], &off) &&
                vd_manifest_garbage(j->applied, off, j->rebased))
                ck_delete(w, j, keys[i], "manifest");
        }
        vd_store_keys_free(keys, n);
    }
    free(pre);
    pre = vd_store_checkpoint_prefix(w->t_cmd, id);
    char **stems = calloc(j->mf.n ? j->mf.n : 1, sizeof *stems);
    int ok = pre && stems;
    for (size_t i = 0; ok && i < j->mf.n; i++) {
        const char *name = j->mf.entries[i].name;
        ok = (stems[i] = vd_store_checkpoint_stem(w->t_cmd, id, name, strlen(name))) != NULL;
    }
    if (ok && !vd_store_list(w->store, pre, &keys, &n, &err)) {
        for (size_t i = 0; i < n; i++) {
            size_t stem_len;
            int64_t off, ref = -2;
            if (!vd_store_checkpoint_key_parse(keys[i], &stem_len, &off)) continue;
            for (size_t e = 0; e < j->mf.n; e++)
                if (strlen(stems[e]) == stem_len && !memcmp(stems[e], keys[i], stem_len))
                    ref = j->mf.entries[e].file_offset;
            if (vd_manifest_file_garbage(j->applied, ref, off, j->rebased))
                ck_delete(w, j, keys[i], "index file");
        }
        vd_store_keys_free(keys, n);
    }
    for (size_t i = 0; stems && i < j->mf.n; i++) free(stems[i]);
    free(stems);
    free(pre);
}

/* Store thread: each dirty index serialised and written in turn (one
 * file in memory at a time), then the manifest, then the garbage. */
static void ck_write(void *ctx, vd_task *t)
{
    vd_worker *w = ctx;
    ckjob *j = (ckjob *)t;
    vd_err rc = VD_OK;
    for (size_t i = 0; !rc && i < j->nfiles; i++) {
        ckfile *f = &j->files[i];
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = ck_serialise(w, j, f, &buf, &len);
        char *key =
            rc ? NULL
               : vd_store_checkpoint_key(w->t_cmd, j->p->id, f->name, strlen(f->name), f->offset);
        if (!rc && !key) rc = vd_error_set(&j->err, VD_ERR_NOMEM, "checkpoint: out of memory");
        if (!rc) rc = vd_store_put(w->store, key, buf, len, &j->err);
        free(key);
        free(buf);
        f->ok = !rc;
        j->bytes += len;
        if (len > j->largest) j->largest = len;
        if (!rc)
            rc = vd_manifest_set(&j->mf, f->name, f->offset,
                                 j->applied > f->offset ? j->applied : f->offset, &j->err);
    }
    /* The group may have moved on while this job waited its turn: a zombie
     * stops here. (One that passes this check just before it is fenced
     * can still write: the keys make that harmless, docs/checkpoints.md.) */
    if (!rc && rd_kafka_assignment_lost(w->consumer))
        rc = vd_error_set(&j->err, VD_ERR_UNAVAILABLE, "assignment lost: not writing");
    char *manifest = NULL, *mkey = NULL;
    size_t mlen = 0;
    if (!rc) rc = vd_manifest_encode(&j->mf, &manifest, &mlen, &j->err);
    if (!rc && !(mkey = vd_manifest_key(w->t_cmd, j->p->id, j->applied)))
        rc = vd_error_set(&j->err, VD_ERR_NOMEM, "checkpoint: out of memory");
    if (!rc) rc = vd_store_put(w->store, mkey, manifest, mlen, &j->err);
    free(manifest);
    free(mkey);
    if (!rc) ck_sweep(w, j);
    /* The objects of older layouts (migrated files, the old manifest): the
     * manifest above replaces them. */
    for (size_t i = 0; !rc && i < j->nlegacy; i++) ck_delete(w, j, j->legacy[i], "older layout");
    j->rc = rc;
}

/*
 * Poll thread: what a checkpoint of p writes, taken now: which indexes are
 * dirty, the manifest of the clean ones (each complete through
 * p->applied), the old layouts' keys. Returns NULL with *rc VD_OK when
 * there is nothing to do or the partition must not write, else NULL with
 * an error, or the job.
 */
static ckjob *ck_snapshot(vd_worker *w, vd_partition *p, const char *why, vd_err *rc, vd_error *err)
{
    *rc = VD_OK;
    /* Only a partition that is applying has anything to write: a loading
     * or refused one must leave its manifest and offsets alone. */
    if (atomic_load_explicit(&w->fenced, memory_order_relaxed) ||
        (p->state != VD_PART_REPLAYING && p->state != VD_PART_READY))
        return NULL;
    size_t pending = atomic_load_explicit(&p->pending, memory_order_relaxed);
    int64_t applied = vd_partition_applied(p);
    if (applied < 0 || (pending == 0 && p->committed == applied + 1)) return NULL;
    if (rd_kafka_assignment_lost(w->consumer)) {
        atomic_store_explicit(&w->fenced, 1, memory_order_relaxed);
        *rc = vd_error_set(err, VD_ERR_UNAVAILABLE, "assignment lost: not writing");
        return NULL;
    }
    ckjob *j = calloc(1, sizeof *j);
    if (!j) {
        *rc = vd_error_set(err, VD_ERR_NOMEM, "checkpoint: out of memory");
        return NULL;
    }
    j->t.run = ck_write;
    j->t.free = ckjob_free;
    j->p = p;
    j->why = why;
    j->t0 = vd_mono_s();
    j->applied = applied;
    j->pending = pending;
    j->rebased = p->rebased;
    vd_manifest *mf = &j->mf;
    vd_manifest_init(mf, w->t_cmd, p->id);
    mf->offset = applied;
    snprintf(mf->worker, sizeof mf->worker, "%s", w->worker_id);
    snprintf(mf->cluster_id, sizeof mf->cluster_id, "%s", w->cluster_id);
    pthread_rwlock_rdlock(&p->lock);
    if (p->n && !(j->files = calloc(p->n, sizeof *j->files))) *rc = VD_ERR_NOMEM;
    for (size_t i = 0; !*rc && i < p->n; i++) {
        vd_entry *e = &p->e[i];
        int64_t fo = e->file_offset;
        if (e->dirty || fo < 0) {
            ckfile *f = &j->files[j->nfiles++];
            f->uid = e->uid;
            if (!(f->name = strdup(e->name))) *rc = VD_ERR_NOMEM;
        } else {
            *rc = vd_manifest_set(mf, e->name, fo, applied > fo ? applied : fo, err);
        }
    }
    pthread_rwlock_unlock(&p->lock);
    if (*rc) {
        if (*rc == VD_ERR_NOMEM) vd_error_set(err, VD_ERR_NOMEM, "checkpoint: out of memory");
        ckjob_free(&j->t);
        return NULL;
    }
    /* The old layouts' keys go with the job; a failed job gives them back. */
    j->legacy = p->legacy;
    j->nlegacy = p->nlegacy;
    p->legacy = NULL;
    p->nlegacy = 0;
    return j;
}

/* How long a revoke or shutdown checkpoint waits for the broker to
 * acknowledge the DLQ records it covers before it gives up (no commit:
 * the next owner replays them). */
static const double dlq_wait_s = 10.0;

/* Whether every DLQ record of p's commands up to applied is acknowledged
 * (the manifest and the commit may then cover them: a replay does not
 * send them again). */
static int dlq_clear(vd_worker *w, vd_partition *p, int64_t applied)
{
    return vd_outbox_dlq_oldest(&w->out, p->id) > applied;
}

/* Starts j: to the store thread now, or held until the DLQ records it
 * covers are acknowledged (vd_checkpoint_policy looks again). */
static void ck_start(vd_worker *w, vd_partition *p, ckjob *j)
{
    p->ck = j;
    j->held = !dlq_clear(w, p, j->applied);
    if (!j->held) vd_taskq_submit(w->store_q, &j->t);
}

/* Poll thread: waits for p's job. A held job waits for its DLQ records,
 * serving the producer's delivery reports, at most dlq_wait_s; if they are
 * still not acknowledged it fails without being written. */
static void ck_wait(vd_worker *w, vd_partition *p)
{
    ckjob *j = p->ck;
    double deadline = vd_mono_s() + dlq_wait_s;
    while (j->held && !dlq_clear(w, p, j->applied) && vd_mono_s() < deadline) {
        rd_kafka_poll(w->producer, 50);
        vd_outbox_poll(&w->out);
    }
    if (j->held && !dlq_clear(w, p, j->applied)) {
        j->rc = vd_error_set(&j->err, VD_ERR_UNAVAILABLE,
                             "DLQ records up to offset %" PRId64 " not acknowledged by the broker "
                             "within %.0f s",
                             j->applied, dlq_wait_s);
        return;
    }
    if (j->held) {
        j->held = 0;
        vd_taskq_submit(w->store_q, &j->t);
    }
    vd_taskq_done(w->store_q, &j->t, 1);
}

/* A failed job's old-layout keys go back to p. Under p's wrlock. */
static void ck_give_back(vd_partition *p, ckjob *j)
{
    char **l = realloc(p->legacy, (p->nlegacy + j->nlegacy + 1) * sizeof *l);
    if (!l) return;
    p->legacy = l;
    for (size_t i = 0; i < j->nlegacy; i++) p->legacy[p->nlegacy++] = j->legacy[i];
    j->nlegacy = 0;
}

/* Commits applied + 1 of p's commands partition. */
static vd_err ck_commit(vd_worker *w, vd_partition *p, ckjob *j, vd_error *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->t_cmd, p->id)->offset = j->applied + 1;
    rd_kafka_resp_err_t ke = rd_kafka_commit(w->consumer, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (ke == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || ke == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
        ke == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID) {
        atomic_store_explicit(&w->fenced, 1, memory_order_relaxed);
        VD_WLOG(w, VD_LOG_ERROR, "fenced", VD_LI("partition", p->id),
                VD_LS("error", rd_kafka_err2str(ke)));
        return vd_error_set(err, VD_ERR_UNAVAILABLE, "commit refused: %s", rd_kafka_err2str(ke));
    }
    if (ke) {
        VD_WLOG(w, VD_LOG_WARN, "commit_failed", VD_LI("partition", p->id),
                VD_LS("error", rd_kafka_err2str(ke)));
    } else {
        pthread_mutex_lock(&p->mu);
        p->committed = j->applied + 1;
        pthread_mutex_unlock(&p->mu);
    }
    return VD_OK;
}

/*
 * Poll thread, once p's job is done: on success the written indexes are
 * clean up to their file's offset and applied + 1 is committed (invariant
 * 2: nothing is committed before all of it is durable); on failure the
 * drops come back and the next attempt waits the backoff.
 */
static vd_err ck_finish(vd_worker *w, vd_partition *p, vd_error *err)
{
    ckjob *j = p->ck;
    p->ck = NULL;
    pthread_rwlock_wrlock(&p->lock);
    for (size_t i = 0; i < j->nfiles; i++) {
        if (!j->files[i].ok) continue;
        vd_entry *e = vd_partition_find(p, j->files[i].name, strlen(j->files[i].name));
        if (!e || e->uid != j->files[i].uid) continue; /* dropped meanwhile */
        e->file_offset = j->files[i].offset;
        e->dirty = atomic_load_explicit(&e->last, memory_order_relaxed) != j->files[i].offset;
    }
    vd_err rc = j->rc;
    if (rc)
        ck_give_back(p, j);
    else if (j->rebased)
        p->rebased = 0;
    pthread_rwlock_unlock(&p->lock);
    if (rc) {
        vd_error_set(err, rc, "%s", j->err.msg);
        ck_failed(w, p, j->why, j->err.msg);
    } else if (atomic_load_explicit(&w->fenced, memory_order_relaxed)) {
        rc = vd_error_set(err, VD_ERR_UNAVAILABLE, "fenced: not committing");
    } else if (!(rc = ck_commit(w, p, j, err))) {
        w->n_checkpoints++;
        /* Only the poll thread writes it: no update is lost between the
         * load and the store. */
        size_t pending = atomic_load_explicit(&p->pending, memory_order_relaxed);
        atomic_store_explicit(&p->pending, pending - (j->pending < pending ? j->pending : pending),
                              memory_order_relaxed);
        p->backoff = 0;
        p->last_checkpoint = vd_mono_s();
        VD_WLOG(w, VD_LOG_INFO, "checkpoint", VD_LI("partition", p->id), VD_LS("why", j->why),
                VD_LI("offset", j->applied), VD_LI("files", j->nfiles), VD_LI("bytes", j->bytes),
                VD_LI("largest_file", j->largest), VD_LI("garbage_deleted", j->deleted),
                VD_LD("seconds", vd_mono_s() - j->t0));
    }
    ckjob_free(&j->t);
    return rc;
}

void vd_checkpoint_discard(vd_worker *w, vd_partition *p)
{
    /* Commands parked while the job serialised: never applied, never
     * committed; the next owner consumes them again. */
    for (size_t i = 0; i < p->nparked; i++) rd_kafka_message_destroy(p->parked[i]);
    free(p->parked);
    p->parked = NULL;
    p->nparked = p->capparked = 0;
    if (!p->ck) return;
    if (!p->ck->held) vd_taskq_done(w->store_q, &p->ck->t, 1);
    ckjob_free(&p->ck->t);
    p->ck = NULL;
}

vd_err vd_checkpoint_now(vd_worker *w, vd_partition *p, const char *why, vd_error *err)
{
    vd_error local = {0};
    if (!err) err = &local;
    if (p->ck) { /* settle the one in flight */
        vd_error settled;
        ck_wait(w, p);
        ck_finish(w, p, &settled);
    }
    vd_err rc;
    ckjob *j = ck_snapshot(w, p, why, &rc, err);
    if (!j) {
        if (rc) ck_failed(w, p, why, err->msg);
        return rc;
    }
    ck_start(w, p, j);
    ck_wait(w, p);
    return ck_finish(w, p, err);
}

void vd_checkpoint_policy(vd_worker *w)
{
    double t = vd_mono_s(), interval = vd_config_int(w->cfg, "checkpoint.interval.ms") / 1000.0;
    size_t max_pending = (size_t)vd_config_int(w->cfg, "checkpoint.max.pending");
    for (int32_t i = 0; i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        if (p->ck) {
            if (p->ck->held) {
                if (dlq_clear(w, p, p->ck->applied)) {
                    p->ck->held = 0;
                    vd_taskq_submit(w->store_q, &p->ck->t);
                }
            } else if (vd_taskq_done(w->store_q, &p->ck->t, 0)) {
                ck_finish(w, p, NULL);
            }
            continue;
        }
        size_t pending = atomic_load_explicit(&p->pending, memory_order_relaxed);
        if ((p->state != VD_PART_REPLAYING && p->state != VD_PART_READY) || pending == 0 ||
            t < p->retry_at)
            continue;
        const char *why = pending >= max_pending               ? "pending"
                          : t - p->last_checkpoint >= interval ? "interval"
                                                               : NULL;
        if (!why) continue;
        vd_error err;
        vd_err rc;
        ckjob *j = ck_snapshot(w, p, why, &rc, &err);
        if (j)
            ck_start(w, p, j);
        else if (rc)
            ck_failed(w, p, why, err.msg);
    }
}
