/*
 * worker.c - the vectord worker (see worker.h, docs/worker.md and
 * docs/checkpoints.md).
 *
 * Threads:
 * - the poll thread owns the consumer: it applies commands in offset order,
 *   runs the rebalance callback (load checkpoints on assign, checkpoint and
 *   commit on revoke) and the checkpoint policy;
 * - search threads take search/info requests from a queue and answer them
 *   in parallel with the apply loop (each index has its own rwlock);
 * - librdkafka's own threads deliver produced replies and DLQ records.
 *
 * A partition's state (`part`) lives for the worker's lifetime and is reset
 * on revoke, so a search thread never holds a pointer to freed memory; its
 * registry of indexes is guarded by the part's rwlock (searches and adds
 * read-lock it, create/drop/revoke write-lock it).
 */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "directory/directory.h"
#include "http/http.h"
#include "kafka/kafka.h"
#include "manifest.h"
#include "store/store.h"
#include "vectord/index.h"
#include "lhv1/lhv1_position.h"
#include "vectord/version.h"

/* ------------------------------------------------------------------ */
/* Types. */

typedef struct entry {
    char *name;
    vd_index *ix;
    int64_t complete;    /* from the checkpoint: commands at or below are in it */
    int64_t file_offset; /* offset in the envelope of its newest durable file */
    int64_t last;        /* last command applied to it */
    int dirty;           /* applied commands not yet in a durable file */
} entry;

enum { P_UNASSIGNED = 0, P_LOADING, P_REPLAYING, P_READY, P_REFUSED };

enum { LOAD_OK, LOAD_AGAIN, LOAD_REFUSED };

struct vd_worker;

/* Work for the store thread: a checkpoint to write or a partition to load.
 * The poll thread submits it and later collects it once done; a task
 * nobody will collect is cancelled, and the store thread frees it (without
 * running it, when it has not started). */
typedef struct task {
    void (*run)(struct vd_worker *w, struct task *t);
    void (*free)(struct task *t);
    int done;      /* under st_mu */
    int cancelled; /* under st_mu */
    struct task *next;
} task;

/* A checkpoint in flight: what the poll thread snapshotted (serialised
 * files, the manifest, the drops), written by the store thread. */
typedef struct ckfile {
    char *name, *key;
    uint8_t *buf;
    size_t len;
    int64_t offset; /* the file's Kafka offset: the index's last command at the snapshot */
    int ok;         /* written */
} ckfile;

typedef struct ckjob {
    task t; /* first: a ckjob is a task */
    struct part *p;
    const char *why;
    ckfile *files;
    size_t nfiles, bytes;
    char *mkey, *manifest;
    size_t mlen;
    char **dropped; /* deleted after the manifest */
    size_t ndropped;
    int64_t applied; /* the manifest's offset: commit applied + 1 */
    size_t pending;  /* commands it makes durable */
    double t0;
    vd_err rc;
    vd_error err;
} ckjob;

/* A load in flight: partition id's watermarks, manifest and index files,
 * read and decoded by the store thread; the poll thread installs the
 * indexes and moves the consumer to start (ld_finish). */
typedef struct ldindex {
    char *name;
    vd_index *ix;
    int64_t complete, file_offset;
} ldindex;

typedef struct ldjob {
    task t; /* first: an ldjob is a task */
    int32_t id;
    int result;     /* LOAD_OK, LOAD_AGAIN or LOAD_REFUSED */
    int64_t lo, hi; /* the commands partition's watermarks */
    int64_t start;  /* LOAD_OK: from the manifest; RD_KAFKA_OFFSET_STORED: none */
    int64_t manifest_offset;
    int rebase; /* embedded mode: indexes kept, offsets forgotten */
    ldindex *ix;
    size_t n;
    double t0;
    vd_error err;
} ldjob;

typedef struct part {
    int32_t id;
    ckjob *ck; /* checkpoint in flight (poll thread's) */
    ldjob *ld; /* load in flight (poll thread's) */
    int state;
    pthread_rwlock_t lock; /* registry */
    pthread_mutex_t mu;    /* state, applied; with cond for waiting searches */
    pthread_cond_t cond;
    entry *e;
    size_t n, cap;
    char **dropped; /* names whose files go after the next manifest */
    size_t ndropped;
    int64_t applied;     /* last command offset consumed (applied or rejected) */
    int64_t quiet_until; /* offsets at or below already had their acks/DLQ records */
    int64_t ready_at;    /* high watermark seen at assignment */
    int64_t committed;   /* last offset committed + 1 */
    int64_t manifest_offset;
    size_t pending;
    int64_t search_next; /* next search offset to commit (-1: none) */
    double last_checkpoint;
    double retry_at, backoff;
    int64_t assigned_committed; /* the group's offset at assignment */
    int load_again;             /* to load (again) at retry_at: assigned, or the store failed */
    int seek_pending;           /* loaded; the consumer still has to seek to seek_to */
    int64_t seek_to, seek_hi;
    char refused_why[512];
} part;

typedef struct job {
    rd_kafka_message_t *m;
    struct job *next;
} job;

struct vd_worker {
    const vd_config *cfg;
    const vd_logger *lg;
    char worker_id[128];
    char cluster_id[128];
    const char *t_cmd, *t_search, *t_dlq;
    vd_limits limits;
    size_t max_message;
    vd_kafka_mock *mock;
    char *bootstrap;
    rd_kafka_t *consumer, *producer;
    vd_store *store;
    part *parts;
    int32_t nparts;
    volatile int fenced; /* the group moved on without us: write nothing more */
    double search_commit_at;
    /* search pool */
    pthread_t *threads;
    int nthreads;
    /* the store thread: writes checkpoints and loads partitions off the
     * poll thread */
    pthread_t st_thread;
    int st_running, st_stop;
    pthread_mutex_t st_mu;
    pthread_cond_t st_cond;
    task *st_head, *st_tail;
    /* reply topics already looked up (warm_topic) */
    pthread_mutex_t warm_mu;
    char *warm[64];
    int nwarm;
    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    job *qhead, *qtail;
    int qstop;
    /* counters for /metrics; search threads bump some of them */
    atomic_uint_fast64_t n_applied, n_rejected, n_searches, n_searches_expired, n_checkpoints,
        n_checkpoint_failures, n_replies_failed, n_load_failures;
    atomic_uint_fast64_t rejected_by[VD_ERR__COUNT];
    atomic_int assigned_once;
    vd_http *http;
    /* the Redis directory (NULL when off); poll thread only */
    vd_directory *dir;
    double dir_next;
    int64_t started_ms;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define LOG(w, lvl, ev, ...) vd_log((w)->lg, lvl, ev, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Registry of one partition. */

static entry *reg_find(part *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->e[i].name) == len && memcmp(p->e[i].name, name, len) == 0) return &p->e[i];
    return NULL;
}

static entry *reg_add(part *p, const char *name, size_t len, vd_index *ix)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) return NULL;
        p->e = e;
        p->cap = cap;
    }
    char *copy = strndup(name, len);
    if (!copy) return NULL;
    p->e[p->n] = (entry){copy, ix, -1, -1, -1, 0};
    return &p->e[p->n++];
}

static void reg_remove(part *p, entry *e)
{
    size_t i = (size_t)(e - p->e);
    vd_index_free(e->ix);
    free(e->name);
    memmove(p->e + i, p->e + i + 1, (p->n - i - 1) * sizeof *p->e);
    p->n--;
}

static void part_reset(part *p)
{
    pthread_rwlock_wrlock(&p->lock);
    while (p->n) reg_remove(p, &p->e[p->n - 1]);
    for (size_t i = 0; i < p->ndropped; i++) free(p->dropped[i]);
    free(p->dropped);
    p->dropped = NULL;
    p->ndropped = 0;
    pthread_rwlock_unlock(&p->lock);
    pthread_mutex_lock(&p->mu);
    p->state = P_UNASSIGNED;
    p->applied = p->quiet_until = p->ready_at = p->manifest_offset = -1;
    p->committed = -1;
    p->search_next = -1;
    p->pending = 0;
    p->backoff = 0;
    p->retry_at = 0;
    p->load_again = p->seek_pending = 0;
    p->refused_why[0] = '\0';
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------ */
/* Producing replies and DLQ records. */

/* Copies the request's reply headers; returns 0 when it asked for no reply. */
typedef struct reply_to {
    char topic[256];
    int32_t partition;
    char corr[256];
    size_t corr_len;
    const char *corr_name;
    vd_content_type ct;
} reply_to;

static int reply_target(rd_kafka_message_t *m, reply_to *r)
{
    size_t n;
    const char *v;
    r->partition = RD_KAFKA_PARTITION_UA;
    r->corr_len = 0;
    r->corr_name = "correlation-id";
    v = vd_kafka_header(m, "content-type", &n);
    r->ct = vd_content_type_parse(v, v ? n : 0);
    if (!vd_kafka_header_str(m, "reply-to", r->topic, sizeof r->topic) &&
        !vd_kafka_header_str(m, "kafka_replyTopic", r->topic, sizeof r->topic))
        return 0;
    if ((v = vd_kafka_header(m, "correlation-id", &n)) ||
        ((v = vd_kafka_header(m, "kafka_correlationId", &n)) &&
         (r->corr_name = "kafka_correlationId"))) {
        r->corr_len = n < sizeof r->corr ? n : sizeof r->corr;
        memcpy(r->corr, v, r->corr_len);
    }
    if ((v = vd_kafka_header(m, "kafka_replyPartition", &n))) {
        /* Spring sends a 4-byte big-endian int. */
        if (n == 4)
            r->partition = (int32_t)((uint32_t)(uint8_t)v[0] << 24 | (uint32_t)(uint8_t)v[1] << 16 |
                                     (uint32_t)(uint8_t)v[2] << 8 | (uint8_t)v[3]);
    }
    return r->topic[0] != '\0';
}

/* Looks a topic up before the first record to it, which would otherwise
 * wait up to 1 s for librdkafka's topic scan (a client's first search
 * answered a second late). The first 64 topics are remembered; after that,
 * no more lookups. */
static void warm_topic(vd_worker *w, const char *topic)
{
    pthread_mutex_lock(&w->warm_mu);
    int known = w->nwarm == (int)(sizeof w->warm / sizeof w->warm[0]);
    for (int i = 0; !known && i < w->nwarm; i++) known = strcmp(w->warm[i], topic) == 0;
    pthread_mutex_unlock(&w->warm_mu);
    if (known) return;
    vd_kafka_topic_warm(w->producer, topic, 2000);
    pthread_mutex_lock(&w->warm_mu);
    int dup = 0;
    for (int i = 0; i < w->nwarm; i++) dup |= strcmp(w->warm[i], topic) == 0;
    if (!dup && w->nwarm < (int)(sizeof w->warm / sizeof w->warm[0]) &&
        (w->warm[w->nwarm] = strdup(topic)))
        w->nwarm++;
    pthread_mutex_unlock(&w->warm_mu);
}

static void send_reply(vd_worker *w, const reply_to *r, const char *key, size_t key_len,
                       uint8_t *body, size_t len)
{
    warm_topic(w, r->topic);
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    if (r->corr_len) rd_kafka_header_add(h, r->corr_name, -1, r->corr, (ssize_t)r->corr_len);
    rd_kafka_header_add(h, "content-type", -1, vd_content_type_name(r->ct), -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        w->producer, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_PARTITION(r->partition),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(body, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h);
        free(body);
        w->n_replies_failed++;
        LOG(w, VD_LOG_WARN, "reply_failed", VD_LS("topic", r->topic),
            VD_LS("error", rd_kafka_err2str(e)));
    }
}

/* A writer for one reply in the request's content type, or NULL. */
static vd_writer *reply_writer(const reply_to *r)
{
    vd_writer *wr = NULL;
    return vd_writer_new(&wr, r->ct) == VD_OK ? wr : NULL;
}

/* Sends what wr holds when rc (the reply builder's result) is VD_OK. */
static void send_built(vd_worker *w, const reply_to *r, const char *key, size_t key_len,
                       vd_writer *wr, vd_err rc)
{
    uint8_t *body;
    size_t len;
    if (!rc && vd_writer_take(wr, &body, &len, NULL) == VD_OK)
        send_reply(w, r, key, key_len, body, len);
    else
        LOG(w, VD_LOG_ERROR, "reply_encode_failed", VD_LS("topic", r->topic));
    vd_writer_free(wr);
}

static void reply_error(vd_worker *w, const reply_to *r, const char *key, size_t key_len,
                        vd_err code, const char *msg)
{
    vd_writer *wr = reply_writer(r);
    if (wr) send_built(w, r, key, key_len, wr, vd_reply_error(wr, code, msg));
}

/* Sends a rejected command to the DLQ with its reason, and acks the error. */
static void reject(vd_worker *w, part *p, rd_kafka_message_t *m, vd_err code, const char *msg)
{
    w->n_rejected++;
    if ((unsigned)code < VD_ERR__COUNT) w->rejected_by[code]++;
    char part_s[16], off_s[24];
    snprintf(part_s, sizeof part_s, "%" PRId32, m->partition);
    snprintf(off_s, sizeof off_s, "%" PRId64, m->offset);
    LOG(w, VD_LOG_WARN, "command_rejected", VD_LI("partition", m->partition),
        VD_LI("offset", m->offset), VD_LS("code", vd_err_code(code)), VD_LS("message", msg));
    if (m->offset <= p->quiet_until) return; /* already sent before a restart */
    rd_kafka_headers_t *orig = NULL, *h;
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(5);
    rd_kafka_header_add(h, "error-code", -1, vd_err_code(code), -1);
    rd_kafka_header_add(h, "error-message", -1, msg, -1);
    rd_kafka_header_add(h, "source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "source-partition", -1, part_s, -1);
    rd_kafka_header_add(h, "source-offset", -1, off_s, -1);
    warm_topic(w, w->t_dlq);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        w->producer, RD_KAFKA_V_TOPIC(w->t_dlq), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h);
        LOG(w, VD_LOG_ERROR, "dlq_failed", VD_LS("error", rd_kafka_err2str(e)));
    }
    reply_to r;
    if (reply_target(m, &r)) reply_error(w, &r, m->key, m->key_len, code, msg);
}

/* ------------------------------------------------------------------ */
/* Pins in the directory (poll thread; docs/directory.md). */

static void reject_wrong_partition(vd_worker *w, part *p, rd_kafka_message_t *m,
                                   const vd_request *req, int32_t owner)
{
    char msg[VD_ERROR_MSG_MAX];
    snprintf(msg, sizeof msg,
             "index \"%.*s\" is pinned to partition %d (directory), this record arrived on "
             "partition %d: its producer does not partition by murmur2 of the key",
             (int)(req->index_len > 80 ? 80 : req->index_len), req->index, (int)owner,
             (int)m->partition);
    reject(w, p, m, VD_ERR_WRONG_PARTITION, msg);
}

/* 1 when the command may go on, 0 when it was rejected as wrong_partition.
 * Redis down or off: no check (today's behaviour; the directory counts it). */
static int pin_ok(vd_worker *w, part *p, rd_kafka_message_t *m, const vd_request *req)
{
    int32_t owner;
    if (!w->dir || vd_directory_pin_get(w->dir, req->index, req->index_len, &owner) || owner < 0 ||
        owner == m->partition)
        return 1;
    reject_wrong_partition(w, p, m, req, owner);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Applying commands (poll thread). */

static void ack(vd_worker *w, part *p, rd_kafka_message_t *m, const vd_ack *a)
{
    reply_to r;
    if (m->offset <= p->quiet_until || !reply_target(m, &r)) return;
    vd_writer *wr = reply_writer(&r);
    if (wr) send_built(w, &r, m->key, m->key_len, wr, vd_reply_ack(wr, a));
}

static int same_params(const vd_index_params *a, const vd_index_params *b)
{
    return a->dimension == b->dimension && a->m == b->m &&
           a->ef_construction == b->ef_construction && a->ef_search == b->ef_search &&
           a->distance == b->distance;
}

static void mark_applied(part *p, entry *e, int64_t offset)
{
    if (e) {
        e->last = offset;
        e->dirty = 1;
    }
    p->pending++;
}

static void apply_command(vd_worker *w, part *p, rd_kafka_message_t *m)
{
    vd_error err = {0};
    vd_request *req = NULL;
    reply_to r;
    if (m->len > w->max_message) {
        snprintf(err.msg, sizeof err.msg, "message of %zu bytes exceeds limits.max.message.bytes",
                 m->len);
        reject(w, p, m, VD_ERR_LIMIT, err.msg);
        return;
    }
    reply_target(m, &r);
    vd_err rc = vd_request_decode(m->payload, m->len, r.ct, &w->limits, &req, &err);
    if (rc) {
        reject(w, p, m, rc, err.msg);
        return;
    }
    if (!vd_op_is_command(req->op)) {
        snprintf(err.msg, sizeof err.msg, "op: \"%s\" belongs on the search topic, not %s",
                 vd_op_name(req->op), w->t_cmd);
        reject(w, p, m, VD_ERR_UNKNOWN_OP, err.msg);
        goto out;
    }
    if (m->key_len != req->index_len || memcmp(m->key, req->index, req->index_len) != 0) {
        snprintf(err.msg, sizeof err.msg,
                 "key: the record key must equal the body's index \"%.*s\" (producers must key "
                 "by index name)",
                 (int)(req->index_len > 100 ? 100 : req->index_len), req->index);
        reject(w, p, m, VD_ERR_KEY_MISMATCH, err.msg);
        goto out;
    }
    entry *e = reg_find(p, req->index, req->index_len);
    if (e && m->offset <= e->complete) goto out; /* already in its checkpoint */
    if (!pin_ok(w, p, m, req)) goto out;
    vd_ack a = {.op = req->op,
                .index = req->index,
                .index_len = req->index_len,
                .partition = m->partition,
                .offset = m->offset};
    switch (req->op) {
    case VD_OP_CREATE:
        if (e) {
            if (!req->if_not_exists || !same_params(vd_index_params_get(e->ix), &req->params)) {
                snprintf(err.msg, sizeof err.msg, "index \"%s\" already exists%s", e->name,
                         req->if_not_exists ? " with different params" : "");
                reject(w, p, m, VD_ERR_ALREADY_EXISTS, err.msg);
                goto out;
            }
            a.created = 0;
            break;
        }
        vd_index *ix;
        if ((rc = vd_index_new(&ix, req->index, req->index_len, &req->params, &w->limits, &err))) {
            reject(w, p, m, rc, err.msg);
            goto out;
        }
        int32_t owner;
        if (w->dir &&
            !vd_directory_pin_claim(w->dir, req->index, req->index_len, m->partition, &owner) &&
            owner != m->partition) {
            vd_index_free(ix);
            reject_wrong_partition(w, p, m, req, owner);
            goto out;
        }
        pthread_rwlock_wrlock(&p->lock);
        e = reg_add(p, req->index, req->index_len, ix);
        /* Dropped and created again before a checkpoint: the new index's
         * file replaces the old one under the same key, which must not be
         * deleted after the next manifest. */
        for (size_t i = 0; e && i < p->ndropped; i++) {
            if (strcmp(p->dropped[i], e->name) != 0) continue;
            free(p->dropped[i]);
            p->dropped[i--] = p->dropped[--p->ndropped];
        }
        pthread_rwlock_unlock(&p->lock);
        if (!e) {
            vd_index_free(ix);
            reject(w, p, m, VD_ERR_NOMEM, "out of memory creating the index");
            goto out;
        }
        a.created = 1;
        break;
    case VD_OP_DROP:
        if (!e) {
            if (req->if_exists) {
                a.dropped = 0;
                break;
            }
            goto not_found;
        }
        pthread_rwlock_wrlock(&p->lock);
        char **d = realloc(p->dropped, (p->ndropped + 1) * sizeof *d);
        if (d) {
            p->dropped = d;
            if ((p->dropped[p->ndropped] = strdup(e->name))) p->ndropped++;
        }
        reg_remove(p, e);
        pthread_rwlock_unlock(&p->lock);
        if (w->dir) vd_directory_unpin(w->dir, req->index, req->index_len, m->partition);
        e = NULL;
        a.dropped = 1;
        break;
    case VD_OP_ADD:
        if (!e) goto not_found;
        if ((rc = vd_index_add(e->ix, req->items, req->n_items, &err))) {
            reject(w, p, m, rc, err.msg);
            goto out;
        }
        a.count = req->n_items;
        break;
    case VD_OP_DELETE:
        if (!e) goto not_found;
        if ((rc = vd_index_delete(e->ix, req->ids, req->id_lens, req->n_ids, &a.deleted, &a.unknown,
                                  &err))) {
            reject(w, p, m, rc, err.msg);
            goto out;
        }
        break;
    default:
        break;
    }
    mark_applied(p, e, m->offset);
    w->n_applied++;
    ack(w, p, m, &a);
    goto out;
not_found:
    snprintf(err.msg, sizeof err.msg, "index \"%.*s\" not found in partition %d",
             (int)(req->index_len > 100 ? 100 : req->index_len), req->index, (int)m->partition);
    reject(w, p, m, VD_ERR_NOT_FOUND, err.msg);
out:
    vd_request_free(req);
}

/* Records that offset was consumed; flips the partition to ready at the
 * high watermark seen at assignment. */
static void advance(part *p, int64_t offset)
{
    pthread_mutex_lock(&p->mu);
    p->applied = offset;
    if (p->state == P_REPLAYING && p->applied + 1 >= p->ready_at) p->state = P_READY;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------ */
/* Checkpoints (poll thread). */

/* After a failed checkpoint or load: the next attempt on p waits
 * checkpoint.retry.backoff.ms, doubling up to .max.ms, with +-25% jitter. */
static void schedule_retry(vd_worker *w, part *p)
{
    double base = vd_config_int(w->cfg, "checkpoint.retry.backoff.ms") / 1000.0;
    double max = vd_config_int(w->cfg, "checkpoint.retry.backoff.max.ms") / 1000.0;
    p->backoff = p->backoff ? p->backoff * 2 : base;
    if (p->backoff > max) p->backoff = max;
    p->retry_at = now_s() + p->backoff * (0.75 + 0.5 * (double)rand() / RAND_MAX);
}

/* A checkpoint of p failed: counted, logged, tried again after the backoff. */
static void ck_failed(vd_worker *w, part *p, const char *why, const char *msg)
{
    w->n_checkpoint_failures++;
    schedule_retry(w, p);
    LOG(w, VD_LOG_ERROR, "checkpoint_failed", VD_LI("partition", p->id), VD_LS("why", why),
        VD_LS("error", msg), VD_LD("retry_in_s", p->backoff));
}

static void ckjob_free(task *t)
{
    ckjob *j = (ckjob *)t;
    if (!j) return;
    for (size_t i = 0; i < j->nfiles; i++) {
        free(j->files[i].name);
        free(j->files[i].key);
        free(j->files[i].buf);
    }
    free(j->files);
    free(j->mkey);
    free(j->manifest);
    for (size_t i = 0; i < j->ndropped; i++) free(j->dropped[i]);
    free(j->dropped);
    free(j);
}

/* Store thread: the files, then the manifest, then the drops' files. */
static void ck_write(vd_worker *w, task *t)
{
    ckjob *j = (ckjob *)t;
    vd_err rc = VD_OK;
    for (size_t i = 0; !rc && i < j->nfiles; i++) {
        ckfile *f = &j->files[i];
        rc = vd_store_put(w->store, f->key, f->buf, f->len, &j->err);
        f->ok = !rc;
        free(f->buf); /* the file is in the store, or will be written again */
        f->buf = NULL;
    }
    /* The group may have moved on while this job waited its turn: a zombie
     * must not write the manifest, nor delete files the new owner uses. */
    if (!rc && rd_kafka_assignment_lost(w->consumer))
        rc = vd_error_set(&j->err, VD_ERR_UNAVAILABLE, "assignment lost: not writing");
    if (!rc) rc = vd_store_put(w->store, j->mkey, j->manifest, j->mlen, &j->err);
    for (size_t i = 0; !rc && i < j->ndropped; i++) {
        char *key = vd_store_index_key(j->dropped[i], strlen(j->dropped[i]));
        vd_error derr;
        if (key && vd_store_del(w->store, key, &derr))
            LOG(w, VD_LOG_WARN, "drop_delete_failed", VD_LS("key", key), VD_LS("error", derr.msg));
        free(key);
    }
    j->rc = rc;
}

/*
 * Poll thread: what a checkpoint of p writes, taken now: every dirty
 * index serialised, the manifest (each index complete through p->applied),
 * the drops. Returns NULL with *rc VD_OK when there is nothing to do or
 * the partition must not write, else NULL with an error, or the job.
 */
static ckjob *ck_snapshot(vd_worker *w, part *p, const char *why, vd_err *rc, vd_error *err)
{
    *rc = VD_OK;
    /* Only a partition that is applying has anything to write: a loading
     * or refused one must leave its manifest and offsets alone. */
    if (w->fenced || (p->state != P_REPLAYING && p->state != P_READY)) return NULL;
    if (p->pending == 0 && p->committed == p->applied + 1) return NULL;
    if (rd_kafka_assignment_lost(w->consumer)) {
        w->fenced = 1;
        *rc = vd_error_set(err, VD_ERR_UNAVAILABLE, "assignment lost: not writing");
        return NULL;
    }
    ckjob *j = calloc(1, sizeof *j);
    if (!j) goto nomem;
    j->t.run = ck_write;
    j->t.free = ckjob_free;
    j->p = p;
    j->why = why;
    j->t0 = now_s();
    j->applied = p->applied;
    j->pending = p->pending;
    vd_manifest mf;
    vd_manifest_init(&mf, w->t_cmd, p->id);
    mf.offset = p->applied;
    snprintf(mf.worker, sizeof mf.worker, "%s", w->worker_id);
    snprintf(mf.cluster_id, sizeof mf.cluster_id, "%s", w->cluster_id);
    pthread_rwlock_rdlock(&p->lock);
    if (p->n && !(j->files = calloc(p->n, sizeof *j->files))) *rc = VD_ERR_NOMEM;
    for (size_t i = 0; !*rc && i < p->n; i++) {
        entry *e = &p->e[i];
        int64_t fo = e->file_offset;
        if (e->dirty) {
            ckfile *f = &j->files[j->nfiles++];
            vd_lhv1_kafka k = {.partition = p->id, .offset = e->last};
            snprintf(k.topic, sizeof k.topic, "%s", w->t_cmd);
            f->offset = fo = e->last;
            f->name = strdup(e->name);
            f->key = vd_store_index_key(e->name, strlen(e->name));
            *rc = f->name && f->key ? vd_lhv1_write_buf_pos(e->ix, &k, &f->buf, &f->len, err)
                                    : VD_ERR_NOMEM;
            j->bytes += f->len;
        }
        if (!*rc) *rc = vd_manifest_set(&mf, e->name, fo, p->applied > fo ? p->applied : fo, err);
    }
    pthread_rwlock_unlock(&p->lock);
    if (!*rc && !(j->mkey = vd_manifest_key(w->t_cmd, p->id))) *rc = VD_ERR_NOMEM;
    if (!*rc) *rc = vd_manifest_encode(&mf, &j->manifest, &j->mlen, err);
    vd_manifest_clear(&mf);
    if (*rc) {
        if (*rc == VD_ERR_NOMEM) vd_error_set(err, VD_ERR_NOMEM, "checkpoint: out of memory");
        ckjob_free(&j->t);
        return NULL;
    }
    /* The drops go with the job; a failed job gives them back. */
    j->dropped = p->dropped;
    j->ndropped = p->ndropped;
    p->dropped = NULL;
    p->ndropped = 0;
    return j;
nomem:
    *rc = vd_error_set(err, VD_ERR_NOMEM, "checkpoint: out of memory");
    return NULL;
}

static void *st_thread(void *arg)
{
    vd_worker *w = arg;
    pthread_mutex_lock(&w->st_mu);
    for (;;) {
        while (!w->st_head && !w->st_stop) pthread_cond_wait(&w->st_cond, &w->st_mu);
        if (!w->st_head) break;
        task *t = w->st_head;
        w->st_head = t->next;
        if (!w->st_head) w->st_tail = NULL;
        if (!t->cancelled) {
            pthread_mutex_unlock(&w->st_mu);
            t->run(w, t);
            pthread_mutex_lock(&w->st_mu);
        }
        t->done = 1;
        if (t->cancelled)
            t->free(t);
        else
            pthread_cond_broadcast(&w->st_cond);
    }
    pthread_mutex_unlock(&w->st_mu);
    return NULL;
}

static void st_submit(vd_worker *w, task *t)
{
    pthread_mutex_lock(&w->st_mu);
    if (w->st_tail)
        w->st_tail->next = t;
    else
        w->st_head = t;
    w->st_tail = t;
    pthread_cond_broadcast(&w->st_cond);
    pthread_mutex_unlock(&w->st_mu);
}

/* Whether t is done; wait: block until it is. */
static int st_done(vd_worker *w, task *t, int wait)
{
    pthread_mutex_lock(&w->st_mu);
    while (wait && !t->done) pthread_cond_wait(&w->st_cond, &w->st_mu);
    int done = t->done;
    pthread_mutex_unlock(&w->st_mu);
    return done;
}

/* Store thread: whether t was given up (a load stops early). */
static int st_cancelled(vd_worker *w, task *t)
{
    pthread_mutex_lock(&w->st_mu);
    int c = t->cancelled;
    pthread_mutex_unlock(&w->st_mu);
    return c;
}

/* Gives t up: freed now when done, else by the store thread. */
static void st_cancel(vd_worker *w, task *t)
{
    pthread_mutex_lock(&w->st_mu);
    int done = t->done;
    t->cancelled = 1;
    pthread_mutex_unlock(&w->st_mu);
    if (done) t->free(t);
}

static void ck_submit(vd_worker *w, part *p, ckjob *j)
{
    p->ck = j;
    st_submit(w, &j->t);
}

static int ck_done(vd_worker *w, part *p, int wait)
{
    return st_done(w, &p->ck->t, wait);
}

/*
 * Poll thread, once p's job is done: on success the written indexes are
 * clean up to their file's offset and applied + 1 is committed (invariant
 * 2: nothing is committed before all of it is durable); on failure the
 * drops come back and the next attempt waits the backoff.
 */
static vd_err ck_finish(vd_worker *w, part *p, vd_error *err)
{
    ckjob *j = p->ck;
    p->ck = NULL;
    pthread_rwlock_wrlock(&p->lock);
    for (size_t i = 0; i < j->nfiles; i++) {
        if (!j->files[i].ok) continue;
        entry *e = reg_find(p, j->files[i].name, strlen(j->files[i].name));
        if (!e) continue; /* dropped meanwhile */
        e->file_offset = j->files[i].offset;
        e->dirty = e->last != j->files[i].offset;
    }
    vd_err rc = j->rc;
    if (rc) {
        /* Give the drops back, but not a name created again meanwhile:
         * its new file must not be deleted. */
        for (size_t i = 0; i < j->ndropped; i++) {
            char **d = realloc(p->dropped, (p->ndropped + 1) * sizeof *d);
            if (!d) break;
            p->dropped = d;
            if (!reg_find(p, j->dropped[i], strlen(j->dropped[i]))) {
                p->dropped[p->ndropped++] = j->dropped[i];
                j->dropped[i] = NULL;
            }
        }
    }
    pthread_rwlock_unlock(&p->lock);
    if (rc) {
        vd_error_set(err, rc, "%s", j->err.msg);
        ck_failed(w, p, j->why, j->err.msg);
        ckjob_free(&j->t);
        return rc;
    }
    if (w->fenced) {
        ckjob_free(&j->t);
        return vd_error_set(err, VD_ERR_UNAVAILABLE, "fenced: not committing");
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->t_cmd, p->id)->offset = j->applied + 1;
    rd_kafka_resp_err_t ke = rd_kafka_commit(w->consumer, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (ke == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || ke == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
        ke == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID) {
        w->fenced = 1;
        LOG(w, VD_LOG_ERROR, "fenced", VD_LI("partition", p->id),
            VD_LS("error", rd_kafka_err2str(ke)));
        ckjob_free(&j->t);
        return vd_error_set(err, VD_ERR_UNAVAILABLE, "commit refused: %s", rd_kafka_err2str(ke));
    }
    if (ke) {
        LOG(w, VD_LOG_WARN, "commit_failed", VD_LI("partition", p->id),
            VD_LS("error", rd_kafka_err2str(ke)));
    } else {
        pthread_mutex_lock(&p->mu);
        p->committed = j->applied + 1;
        pthread_mutex_unlock(&p->mu);
    }
    w->n_checkpoints++;
    p->pending -= j->pending < p->pending ? j->pending : p->pending;
    p->backoff = 0;
    p->last_checkpoint = now_s();
    LOG(w, VD_LOG_INFO, "checkpoint", VD_LI("partition", p->id), VD_LS("why", j->why),
        VD_LI("offset", j->applied), VD_LI("files", j->nfiles), VD_LI("bytes", j->bytes),
        VD_LD("seconds", now_s() - j->t0));
    ckjob_free(&j->t);
    return VD_OK;
}

/* Waits for p's checkpoint in flight, if any, and settles it. */
static void ck_settle(vd_worker *w, part *p)
{
    if (!p->ck) return;
    ck_done(w, p, 1);
    vd_error err;
    ck_finish(w, p, &err);
}

/* Waits for p's checkpoint in flight, if any, and drops it without a
 * commit: the partition is no longer ours (its files are a zombie's, which
 * loading tolerates). */
static void ck_discard(vd_worker *w, part *p)
{
    if (!p->ck) return;
    ck_done(w, p, 1);
    ckjob_free(&p->ck->t);
    p->ck = NULL;
}

/*
 * A checkpoint of p now, waiting for it (revoke, shutdown): the one in
 * flight is settled first. Returns its result.
 */
static vd_err checkpoint(vd_worker *w, part *p, const char *why, vd_error *err)
{
    vd_error local = {0};
    if (!err) err = &local;
    ck_settle(w, p);
    vd_err rc;
    ckjob *j = ck_snapshot(w, p, why, &rc, err);
    if (!j) {
        if (rc) ck_failed(w, p, why, err->msg);
        return rc;
    }
    ck_submit(w, p, j);
    ck_done(w, p, 1);
    return ck_finish(w, p, err);
}

/* Searches are answered at most once: their offsets are committed as
 * consumed, once a second, asynchronously. */
static void commit_searches(vd_worker *w)
{
    static const double every = 1.0;
    if (now_s() - w->search_commit_at < every || w->fenced) return;
    w->search_commit_at = now_s();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int32_t i = 0; i < w->nparts; i++) {
        if (w->parts[i].search_next < 0) continue;
        rd_kafka_topic_partition_list_add(l, w->t_search, i)->offset = w->parts[i].search_next;
        w->parts[i].search_next = -1;
    }
    if (l->cnt) rd_kafka_commit(w->consumer, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

/* The policy (poll thread): settles finished checkpoints and starts new
 * ones, at most one in flight per partition; the store thread writes them
 * while the poll thread goes on applying and fetching searches. */
static void checkpoint_policy(vd_worker *w)
{
    commit_searches(w);
    double t = now_s(), interval = vd_config_int(w->cfg, "checkpoint.interval.ms") / 1000.0;
    size_t max_pending = (size_t)vd_config_int(w->cfg, "checkpoint.max.pending");
    for (int32_t i = 0; i < w->nparts; i++) {
        part *p = &w->parts[i];
        if (p->ck) {
            if (ck_done(w, p, 0)) ck_finish(w, p, NULL);
            continue;
        }
        if ((p->state != P_REPLAYING && p->state != P_READY) || p->pending == 0 || t < p->retry_at)
            continue;
        const char *why = p->pending >= max_pending            ? "pending"
                          : t - p->last_checkpoint >= interval ? "interval"
                                                               : NULL;
        if (!why) continue;
        vd_error err;
        vd_err rc;
        ckjob *j = ck_snapshot(w, p, why, &rc, &err);
        if (j) {
            ck_submit(w, p, j);
        } else if (rc) {
            ck_failed(w, p, why, err.msg);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Assignment: load checkpoints on the store thread, decide where replay
 * starts, move the consumer there.
 *
 * An assigned commands partition is paused and loading: its watermarks,
 * manifest and index files are read and decoded by the store thread
 * (ld_load), so neither the rebalance callback nor the poll loop waits for
 * the store and the partitions already loaded keep applying and answering.
 * Once loaded, the poll thread installs the indexes (ld_finish), seeks to
 * the start offset and resumes (poll_loads). A store error leaves the
 * partition loading and paused, and the load is tried again after the
 * backoff. */

/* Loading p failed on the store or the log: counted, logged, tried again
 * after the backoff. */
static void load_failed(vd_worker *w, part *p, const char *msg)
{
    w->n_load_failures++;
    schedule_retry(w, p);
    LOG(w, VD_LOG_ERROR, "partition_load_failed", VD_LI("partition", p->id), VD_LS("error", msg),
        VD_LD("retry_in_s", p->backoff));
}

static void ldjob_free(task *t)
{
    ldjob *j = (ldjob *)t;
    for (size_t i = 0; i < j->n; i++) {
        free(j->ix[i].name);
        vd_index_free(j->ix[i].ix);
    }
    free(j->ix);
    free(j);
}

/* Store thread: partition j->id's watermarks, manifest and files. Sets
 * j->result: LOAD_OK with j->start the offset the manifest says replay
 * starts at (RD_KAFKA_OFFSET_STORED when there is no manifest);
 * LOAD_AGAIN when the store or the log failed (unreachable, an error
 * answer, a timeout); LOAD_REFUSED when the partition must be refused (a
 * corrupt file, another cluster's offsets). */
static void ld_load(vd_worker *w, task *t)
{
    ldjob *j = (ldjob *)t;
    vd_error *err = &j->err;
    j->result = LOAD_AGAIN;
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
    if (st_cancelled(w, t)) return;
    char *key = vd_manifest_key(w->t_cmd, j->id);
    uint8_t *buf = NULL;
    size_t len = 0;
    vd_err rc = key ? vd_store_get(w->store, key, &buf, &len, err) : VD_ERR_NOMEM;
    free(key);
    if (rc == VD_ERR_NOT_FOUND) {
        LOG(w, VD_LOG_INFO, "partition_fresh", VD_LI("partition", j->id));
        j->start = RD_KAFKA_OFFSET_STORED;
        j->result = LOAD_OK;
        return;
    }
    vd_manifest mf;
    vd_manifest_init(&mf, w->t_cmd, j->id);
    if (!rc) rc = vd_manifest_decode(buf, len, &mf, err);
    free(buf);
    if (!rc && (w->mock || (mf.cluster_id[0] && strcmp(mf.cluster_id, w->cluster_id) != 0))) {
        if (w->mock) {
            /* The embedded cluster is new at every start (and the mock's id
             * is not): keep the indexes, apply the new log on top of them. */
            j->rebase = 1;
            LOG(w, VD_LOG_WARN, "embedded_rebase", VD_LI("partition", j->id),
                VD_LS("old_cluster", mf.cluster_id), VD_LI("old_offset", mf.offset));
            mf.offset = -1;
        } else {
            rc = vd_error_set(err, VD_ERR_UNAVAILABLE,
                              "the manifest's offsets refer to Kafka cluster %s, this is %s",
                              mf.cluster_id, w->cluster_id);
        }
    }
    int64_t *complete = NULL;
    if (!rc && mf.n &&
        (!(complete = calloc(mf.n, sizeof *complete)) || !(j->ix = calloc(mf.n, sizeof *j->ix))))
        rc = VD_ERR_NOMEM;
    for (size_t i = 0; !rc && i < mf.n; i++) {
        if (st_cancelled(w, t)) {
            rc = vd_error_set(err, VD_ERR_IO, "load abandoned");
            break;
        }
        vd_manifest_entry *me = &mf.entries[i];
        char *ikey = vd_store_index_key(me->name, strlen(me->name));
        ldindex *li = &j->ix[j->n];
        vd_lhv1_kafka k;
        rc = ikey ? vd_store_get(w->store, ikey, &buf, &len, err) : VD_ERR_NOMEM;
        free(ikey);
        if (!rc) {
            rc = vd_lhv1_read_pos(buf, len, &w->limits, &li->ix, &k, err);
            free(buf);
        }
        if (rc) break;
        j->n++;
        if (!(li->name = strdup(me->name))) {
            rc = VD_ERR_NOMEM;
            break;
        }
        complete[i] = li->complete = j->rebase ? -1 : vd_manifest_complete(me, k.offset);
        li->file_offset = j->rebase ? -1 : k.offset;
        if (!j->rebase && k.offset < me->file_offset)
            LOG(w, VD_LOG_WARN, "stale_checkpoint", VD_LI("partition", j->id),
                VD_LS("index", me->name), VD_LI("file_offset", k.offset),
                VD_LI("expected", me->file_offset));
    }
    if (!rc) {
        j->result = LOAD_OK;
        j->start = vd_manifest_start(&mf, complete);
        j->manifest_offset = mf.offset;
        LOG(w, VD_LOG_INFO, "partition_loaded", VD_LI("partition", j->id), VD_LI("indexes", mf.n),
            VD_LI("manifest_offset", mf.offset), VD_LI("start", j->start),
            VD_LD("seconds", now_s() - j->t0));
    } else if (rc == VD_ERR_IO || rc == VD_ERR_TIMEOUT || rc == VD_ERR_NOMEM) {
        /* The store or the moment, not the data: keep the partition and
         * try again. */
        j->result = LOAD_AGAIN;
    } else {
        j->result = LOAD_REFUSED;
    }
    if (rc && !err->msg[0]) vd_error_set(err, rc, "%s", vd_strerror(rc));
    free(complete);
    vd_manifest_clear(&mf);
}

static void ld_submit(vd_worker *w, part *p)
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
    j->t0 = now_s();
    p->ld = j;
    p->load_again = 0;
    st_submit(w, &j->t);
}

/* Gives up p's load in flight, if any (p is revoked or assigned again). */
static void ld_cancel(vd_worker *w, part *p)
{
    if (!p->ld) return;
    st_cancel(w, &p->ld->t);
    p->ld = NULL;
}

static void set_state(part *p, int state)
{
    pthread_mutex_lock(&p->mu);
    p->state = state;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* Poll thread, once p's load is done: the indexes go into p's registry and
 * the start offset is worked out (seek_to, seek_hi); or the load is
 * scheduled again, or p is refused. */
static void ld_finish(vd_worker *w, part *p)
{
    ldjob *j = p->ld;
    p->ld = NULL;
    if (j->result == LOAD_OK) {
        pthread_rwlock_wrlock(&p->lock);
        for (size_t i = 0; i < j->n; i++) {
            ldindex *li = &j->ix[i];
            entry *e = reg_add(p, li->name, strlen(li->name), li->ix);
            if (!e) {
                while (p->n) reg_remove(p, &p->e[p->n - 1]);
                p->pending = 0;
                j->result = LOAD_AGAIN;
                vd_error_set(&j->err, VD_ERR_NOMEM, "loading checkpoints: out of memory");
                break;
            }
            li->ix = NULL; /* the registry's now */
            e->complete = e->last = li->complete;
            e->file_offset = li->file_offset;
            e->dirty = j->rebase; /* rewrite it against this cluster's offsets */
            p->pending += (size_t)j->rebase;
        }
        pthread_rwlock_unlock(&p->lock);
    }
    if (j->result == LOAD_AGAIN) {
        p->load_again = 1;
        load_failed(w, p, j->err.msg);
    } else if (j->result == LOAD_REFUSED) {
        snprintf(p->refused_why, sizeof p->refused_why, "loading checkpoints: %s", j->err.msg);
        LOG(w, VD_LOG_ERROR, "partition_refused", VD_LI("partition", p->id),
            VD_LS("reason", p->refused_why));
        set_state(p, P_REFUSED);
    } else {
        int64_t start = j->start, committed = p->assigned_committed;
        if (start == RD_KAFKA_OFFSET_STORED) {
            /* No manifest: a brand-new group starts at the beginning; a
             * committed offset without a manifest means the store lost its
             * objects. */
            if (committed >= 0)
                LOG(w, VD_LOG_WARN, "manifest_missing", VD_LI("partition", p->id),
                    VD_LI("committed", committed));
            start = committed >= 0 ? committed : j->lo;
        } else {
            p->manifest_offset = p->quiet_until = j->manifest_offset;
        }
        p->seek_to = start;
        p->seek_hi = j->hi;
        p->seek_pending = 1;
        p->backoff = 0;
        p->retry_at = 0;
    }
    ldjob_free(&j->t);
}

/* p replays from start (where the consumer fetches from) up to hi. */
static void activate_partition(vd_worker *w, part *p, int64_t start, int64_t hi)
{
    pthread_mutex_lock(&p->mu);
    p->ready_at = hi;
    p->applied = start - 1;
    p->committed = p->assigned_committed;
    p->last_checkpoint = now_s();
    p->state = start >= hi ? P_READY : P_REPLAYING;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    LOG(w, VD_LOG_INFO, "assigned", VD_LI("partition", p->id), VD_LI("start", start),
        VD_LI("high_watermark", hi), VD_LI("replay", hi > start ? hi - start : 0),
        VD_LS("state", p->state == P_READY ? "ready" : "replaying"));
}

/* Pauses (pause 1) or resumes commands partition id in the consumer. */
static void pause_partition(vd_worker *w, int32_t id, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->t_cmd, id);
    if (pause)
        rd_kafka_pause_partitions(w->consumer, l);
    else
        rd_kafka_resume_partitions(w->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_assign(vd_worker *w, rd_kafka_topic_partition_list_t *parts)
{
    /* Committed offsets of everything assigned, in one request. */
    rd_kafka_resp_err_t ce = rd_kafka_committed(w->consumer, parts, 10000);
    if (ce) LOG(w, VD_LOG_WARN, "committed_offsets_unknown", VD_LS("error", rd_kafka_err2str(ce)));
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->partition < 0 || tp->partition >= w->nparts) continue;
        if (strcmp(tp->topic, w->t_search) == 0) {
            /* Pick up requests sent while no one owned the partition; stale
             * ones are dropped by age (search.max.age.ms) when handled. */
            if (ce || tp->offset < 0) tp->offset = RD_KAFKA_OFFSET_BEGINNING;
            continue;
        }
        part *p = &w->parts[tp->partition];
        ck_discard(w, p);
        ld_cancel(w, p);
        part_reset(p);
        p->assigned_committed = ce ? RD_KAFKA_OFFSET_INVALID : tp->offset;
        set_state(p, P_LOADING);
        ld_submit(w, p);
        /* Paused below; poll_loads() seeks to the start once loaded. The
         * offset assigned meanwhile is a concrete one, the high watermark:
         * with RD_KAFKA_OFFSET_END, librdkafka 2.0 answers a seek made while
         * its END lookup is in flight by looking END up again afterwards,
         * which moves the partition past the commands it was sent back to
         * (seen in store_faults: a command skipped). Without the watermark,
         * the committed offset, else 0: still concrete. (Paused, nothing is
         * fetched there; an out-of-range error meanwhile is ignored while
         * the partition loads.) */
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(w->producer, w->t_cmd, p->id, &lo, &hi, 10000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
            tp->offset = hi;
        else
            tp->offset = p->assigned_committed >= 0 ? p->assigned_committed : 0;
    }
    rd_kafka_assign(w->consumer, parts);
    /* Nothing is fetched until the partition is loaded and moved to its
     * start. (A pause of ours also outlives a revoke in librdkafka: every
     * partition is resumed explicitly once loaded.) */
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (strcmp(tp->topic, w->t_cmd) == 0 && tp->partition >= 0 && tp->partition < w->nparts)
            pause_partition(w, tp->partition, 1);
    }
}

/* Poll thread: collects finished loads, starts those due (again), and
 * moves each loaded partition to its start offset, activates and resumes
 * it; a failed seek is tried again 0.2 s later. Returns whether a load is
 * in flight or due, so the poll loop can look again soon. */
static int poll_loads(vd_worker *w)
{
    double t = now_s();
    int busy = 0;
    for (int32_t i = 0; i < w->nparts; i++) {
        part *p = &w->parts[i];
        if (p->ld) {
            if (!st_done(w, &p->ld->t, 0)) {
                busy = 1;
                continue;
            }
            ld_finish(w, p);
        }
        if (p->load_again) {
            busy = 1;
            if (t >= p->retry_at) ld_submit(w, p);
            continue;
        }
        if (!p->seek_pending || t < p->retry_at) {
            busy |= p->seek_pending;
            continue;
        }
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, w->t_cmd, p->id)->offset = p->seek_to;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(w->consumer, l, 10000);
        rd_kafka_resp_err_t pe = l->elems[0].err;
        if (e || pe) {
            LOG(w, VD_LOG_WARN, "seek_failed", VD_LI("partition", p->id),
                VD_LS("error", e ? rd_kafka_error_string(e) : rd_kafka_err2str(pe)));
            if (e) rd_kafka_error_destroy(e);
            rd_kafka_topic_partition_list_destroy(l);
            p->retry_at = now_s() + 0.2;
            busy = 1;
            continue;
        }
        rd_kafka_topic_partition_list_destroy(l);
        p->seek_pending = 0;
        activate_partition(w, p, p->seek_to, p->seek_hi);
        pause_partition(w, p->id, 0);
    }
    return busy;
}

static void on_revoke(vd_worker *w, rd_kafka_topic_partition_list_t *parts)
{
    int lost = rd_kafka_assignment_lost(w->consumer);
    /* Loads first: the checkpoints below must not queue behind them. */
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (strcmp(tp->topic, w->t_cmd) == 0 && tp->partition >= 0 && tp->partition < w->nparts)
            ld_cancel(w, &w->parts[tp->partition]);
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (strcmp(tp->topic, w->t_cmd) != 0 || tp->partition < 0 || tp->partition >= w->nparts)
            continue;
        part *p = &w->parts[tp->partition];
        if (!lost) {
            vd_error err;
            if (checkpoint(w, p, "revoke", &err))
                LOG(w, VD_LOG_WARN, "revoke_checkpoint_failed", VD_LI("partition", p->id),
                    VD_LS("error", err.msg));
        }
        ck_discard(w, p);
        part_reset(p);
        LOG(w, VD_LOG_INFO, "revoked", VD_LI("partition", p->id), VD_LI("lost", lost));
    }
    rd_kafka_assign(w->consumer, NULL);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    vd_worker *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        w->fenced = 0; /* a new generation: we own what we were given */
        w->assigned_once = 1;
        on_assign(w, parts);
        /* Back to the poll loop now rather than after the poll's timeout
         * (nothing is fetched until the loads are in). */
        rd_kafka_yield(rk);
    } else {
        on_revoke(w, parts);
    }
}

/* ------------------------------------------------------------------ */
/* Searches (pool threads). */

static int wait_until(part *p, int64_t want_offset, double deadline, int *state)
{
    /* Returns 1 when the partition is ready (and applied >= want_offset). */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->state == P_READY && p->applied >= want_offset) break;
        if (p->state == P_UNASSIGNED || p->state == P_REFUSED || now_s() >= deadline) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double left = deadline - now_s();
        if (left > 0.1) left = 0.1;
        ts.tv_nsec += (long)(left * 1e9);
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    }
    int ok = p->state == P_READY && p->applied >= want_offset;
    *state = p->state;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void handle_search(vd_worker *w, rd_kafka_message_t *m)
{
    reply_to r;
    vd_error err = {0};
    if (!reply_target(m, &r)) {
        LOG(w, VD_LOG_DEBUG, "search_without_reply_to", VD_LI("partition", m->partition),
            VD_LI("offset", m->offset));
        return;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t age = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000 - ts;
    if (ts >= 0 && age > vd_config_int(w->cfg, "search.max.age.ms")) {
        w->n_searches_expired++;
        LOG(w, VD_LOG_DEBUG, "search_expired", VD_LI("partition", m->partition),
            VD_LI("offset", m->offset), VD_LI("age_ms", age));
        return;
    }
    w->n_searches++;
    vd_request *req = NULL;
    vd_err rc = m->len > w->max_message
                    ? VD_ERR_LIMIT
                    : vd_request_decode(m->payload, m->len, r.ct, &w->limits, &req, &err);
    if (rc == VD_ERR_LIMIT && !req && !err.msg[0])
        snprintf(err.msg, sizeof err.msg, "message exceeds limits.max.message.bytes");
    if (!rc && vd_op_is_command(req->op)) {
        rc = VD_ERR_UNKNOWN_OP;
        snprintf(err.msg, sizeof err.msg, "op: \"%s\" belongs on the commands topic %s",
                 vd_op_name(req->op), w->t_cmd);
    }
    if (rc) goto fail;
    if (m->partition < 0 || m->partition >= w->nparts) {
        rc = vd_error_set(&err, VD_ERR_UNAVAILABLE, "partition %d unknown", (int)m->partition);
        goto fail;
    }
    part *p = &w->parts[m->partition];
    double ready_timeout = vd_config_int(w->cfg, "search.ready.timeout.ms") / 1000.0;
    double min_timeout = vd_config_int(w->cfg, "search.min.offset.timeout.ms") / 1000.0;
    int state;
    if (!wait_until(p, -1, now_s() + ready_timeout, &state)) {
        rc = vd_error_set(&err, VD_ERR_UNAVAILABLE, "partition %d is %s; retry shortly",
                          (int)m->partition,
                          state == P_REFUSED ? "refused (see the worker log)"
                                             : "not ready (loading or replaying)");
        goto fail;
    }
    if (req->min_offset >= 0 && !wait_until(p, req->min_offset, now_s() + min_timeout, &state)) {
        rc = vd_error_set(&err, VD_ERR_TIMEOUT,
                          "min_offset %" PRId64 " not applied within search.min.offset.timeout.ms",
                          req->min_offset);
        goto fail;
    }
    pthread_rwlock_rdlock(&p->lock);
    entry *e = reg_find(p, req->index, req->index_len);
    if (!e) {
        pthread_rwlock_unlock(&p->lock);
        rc = vd_error_set(&err, VD_ERR_NOT_FOUND, "index \"%.*s\" not found in partition %d",
                          (int)(req->index_len > 100 ? 100 : req->index_len), req->index,
                          (int)m->partition);
        goto fail;
    }
    vd_writer *wr = reply_writer(&r);
    if (!wr) {
        pthread_rwlock_unlock(&p->lock);
        rc = vd_error_set(&err, VD_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (req->op == VD_OP_INFO) {
        vd_index_stats st;
        vd_index_stats_get(e->ix, &st);
        vd_info_reply info = {.index = e->name,
                              .index_len = strlen(e->name),
                              .partition = p->id,
                              .params = *vd_index_params_get(e->ix),
                              .length = st.live,
                              .deleted = st.deleted,
                              .applied_offset = e->last,
                              .checkpointed_offset = e->file_offset};
        rc = vd_reply_info(wr, &info);
    } else {
        vd_results res;
        vd_results_init(&res);
        rc = vd_index_search(e->ix, req->vector, req->vector_len, req->k, req->ef, &res, &err);
        if (!rc)
            rc = vd_reply_search(wr, e->name, strlen(e->name), p->applied, &res,
                                 req->include_metadata);
        vd_results_free(&res);
    }
    pthread_rwlock_unlock(&p->lock);
    if (rc) {
        vd_writer_free(wr);
        goto fail;
    }
    send_built(w, &r, m->key, m->key_len, wr, VD_OK);
    vd_request_free(req);
    return;
fail:
    reply_error(w, &r, m->key, m->key_len, rc, err.msg[0] ? err.msg : vd_strerror(rc));
    vd_request_free(req);
}

static void *search_thread(void *arg)
{
    vd_worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->qmu);
        while (!w->qhead && !w->qstop) pthread_cond_wait(&w->qcond, &w->qmu);
        job *j = w->qhead;
        if (j) {
            w->qhead = j->next;
            if (!w->qhead) w->qtail = NULL;
        }
        pthread_mutex_unlock(&w->qmu);
        if (!j) return NULL; /* stopping and drained */
        handle_search(w, j->m);
        rd_kafka_message_destroy(j->m);
        free(j);
    }
}

static void enqueue_search(vd_worker *w, rd_kafka_message_t *m)
{
    job *j = malloc(sizeof *j);
    if (!j) {
        rd_kafka_message_destroy(m);
        return;
    }
    j->m = m;
    j->next = NULL;
    pthread_mutex_lock(&w->qmu);
    if (w->qtail)
        w->qtail->next = j;
    else
        w->qhead = j;
    w->qtail = j;
    pthread_cond_signal(&w->qcond);
    pthread_mutex_unlock(&w->qmu);
}

/* ------------------------------------------------------------------ */
/* Setup and the poll loop. */

static int32_t partition_count(rd_kafka_t *rk, const char *topic, vd_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int32_t n = -1;
    if (e) {
        vd_error_set(err, VD_ERR_IO, "metadata for topic %s: %s", topic, rd_kafka_err2str(e));
    } else if (md->topic_cnt != 1 || md->topics[0].err) {
        vd_error_set(err, VD_ERR_CONFIG,
                     "topic %s: %s (create it, with as many partitions as "
                     "the other vectord topics)",
                     topic, md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "missing");
    } else {
        n = md->topics[0].partition_cnt;
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    vd_worker *w = rd_kafka_opaque(rk);
    vd_log(w->lg,
           level <= 3   ? VD_LOG_ERROR
           : level <= 4 ? VD_LOG_WARN
                        : VD_LOG_DEBUG,
           "librdkafka", VD_LS("facility", fac), VD_LS("message", buf));
}

/* ------------------------------------------------------------------ */
/* /metrics and /readyz (the HTTP thread). */

static const char *const state_names[] = {"unassigned", "loading", "replaying", "ready", "refused"};

/* A Prometheus label value: backslash, quote and newline escaped. */
static void put_label(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

static void metrics(void *ctx, FILE *out)
{
    vd_worker *w = ctx;
    struct {
        const char *name, *help;
        atomic_uint_fast64_t *v;
    } counters[] = {
        {"vectord_commands_applied_total", "Commands applied to an index.", &w->n_applied},
        {"vectord_commands_rejected_total", "Commands sent to the DLQ.", &w->n_rejected},
        {"vectord_searches_total", "Search and info requests answered.", &w->n_searches},
        {"vectord_searches_expired_total",
         "Search requests dropped as older than "
         "search.max.age.ms.",
         &w->n_searches_expired},
        {"vectord_checkpoints_total", "Partition checkpoints written and committed.",
         &w->n_checkpoints},
        {"vectord_checkpoint_failures_total", "Checkpoint attempts that failed (retried).",
         &w->n_checkpoint_failures},
        {"vectord_partition_load_failures_total",
         "Attempts to load a partition's checkpoints that failed on a store error (retried).",
         &w->n_load_failures},
        {"vectord_replies_failed_total", "Replies that could not be produced.",
         &w->n_replies_failed},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIuFAST64 "\n", counters[i].name,
                counters[i].help, counters[i].name, counters[i].name, atomic_load(counters[i].v));
    fputs("# HELP vectord_commands_rejected_by_code_total Commands sent to the DLQ, by error "
          "code.\n# TYPE vectord_commands_rejected_by_code_total counter\n",
          out);
    for (int c = 1; c < VD_ERR__COUNT; c++)
        if (atomic_load(&w->rejected_by[c]))
            fprintf(out, "vectord_commands_rejected_by_code_total{code=\"%s\"} %" PRIuFAST64 "\n",
                    vd_err_code((vd_err)c), atomic_load(&w->rejected_by[c]));
    fprintf(out,
            "# HELP vectord_fenced 1 when the group fenced this worker (it writes nothing).\n"
            "# TYPE vectord_fenced gauge\nvectord_fenced %d\n",
            w->fenced);
    fputs("# HELP vectord_partition_state Commands partitions owned, by state.\n"
          "# TYPE vectord_partition_state gauge\n"
          "# HELP vectord_partition_refused 1 when a partition is refused (e.g. retention).\n"
          "# TYPE vectord_partition_refused gauge\n"
          "# HELP vectord_partition_applied_offset Last command offset applied.\n"
          "# TYPE vectord_partition_applied_offset gauge\n"
          "# HELP vectord_partition_lag Commands in the log not yet applied.\n"
          "# TYPE vectord_partition_lag gauge\n"
          "# HELP vectord_partition_pending Applied commands not yet in a checkpoint.\n"
          "# TYPE vectord_partition_pending gauge\n"
          "# HELP vectord_partition_committed_offset Offset committed to the group (the next "
          "command to replay).\n"
          "# TYPE vectord_partition_committed_offset gauge\n",
          out);
    for (int32_t i = 0; i < w->nparts; i++) {
        part *p = &w->parts[i];
        pthread_mutex_lock(&p->mu);
        int state = p->state;
        int64_t applied = p->applied;
        size_t pending = p->pending;
        int64_t committed = p->committed;
        pthread_mutex_unlock(&p->mu);
        if (state == P_UNASSIGNED) continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(w->consumer, w->t_cmd, i, &lo, &hi);
        fprintf(out, "vectord_partition_state{partition=\"%d\",state=\"%s\"} 1\n", (int)i,
                state_names[state]);
        fprintf(out, "vectord_partition_refused{partition=\"%d\"} %d\n", (int)i,
                state == P_REFUSED);
        fprintf(out, "vectord_partition_applied_offset{partition=\"%d\"} %" PRId64 "\n", (int)i,
                applied);
        if (hi >= 0)
            fprintf(out, "vectord_partition_lag{partition=\"%d\"} %" PRId64 "\n", (int)i,
                    hi - applied - 1 > 0 ? hi - applied - 1 : 0);
        fprintf(out, "vectord_partition_pending{partition=\"%d\"} %zu\n", (int)i, pending);
        fprintf(out, "vectord_partition_committed_offset{partition=\"%d\"} %" PRId64 "\n", (int)i,
                committed);
    }
    fputs("# HELP vectord_index_items Live items per index.\n# TYPE vectord_index_items gauge\n"
          "# HELP vectord_index_deleted Tombstones awaiting repair per index.\n"
          "# TYPE vectord_index_deleted gauge\n"
          "# HELP vectord_index_bytes Memory the index has allocated.\n"
          "# TYPE vectord_index_bytes gauge\n",
          out);
    for (int32_t i = 0; i < w->nparts; i++) {
        part *p = &w->parts[i];
        pthread_rwlock_rdlock(&p->lock);
        for (size_t j = 0; j < p->n; j++) {
            vd_index_stats st;
            vd_index_stats_get(p->e[j].ix, &st);
            const char *names[] = {"vectord_index_items", "vectord_index_deleted",
                                   "vectord_index_bytes"};
            size_t vals[] = {st.live, st.deleted, st.mem_bytes};
            for (int k = 0; k < 3; k++) {
                fprintf(out, "%s{index=\"", names[k]);
                put_label(out, p->e[j].name);
                fprintf(out, "\",partition=\"%d\"} %zu\n", (int)i, vals[k]);
            }
        }
        pthread_rwlock_unlock(&p->lock);
    }
    if (w->dir) {
        vd_directory_stats ds;
        vd_directory_stats_get(w->dir, &ds);
        fprintf(out,
                "# HELP vectord_directory_up 1 when the last exchange with the Redis directory "
                "succeeded.\n# TYPE vectord_directory_up gauge\nvectord_directory_up %d\n"
                "# HELP vectord_directory_pin_conflicts Owned indexes whose pin names another "
                "partition.\n# TYPE vectord_directory_pin_conflicts gauge\n"
                "vectord_directory_pin_conflicts %" PRIu64 "\n",
                ds.up, ds.pin_conflicts);
        const struct {
            const char *name, *help;
            uint64_t v;
        } dc[] = {
            {"vectord_directory_errors_total", "Failed connects and commands to Redis.", ds.errors},
            {"vectord_directory_heartbeats_total", "Heartbeats written to Redis.", ds.heartbeats},
            {"vectord_directory_pin_checks_skipped_total",
             "Commands applied without the pin check because Redis was down.", ds.pin_skipped},
            {"vectord_directory_pin_cache_hits_total", "Pin checks answered from the cache.",
             ds.pin_cache_hits},
        };
        for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++)
            fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", dc[i].name,
                    dc[i].help, dc[i].name, dc[i].name, dc[i].v);
    }
}

static int ready(void *ctx, FILE *out)
{
    vd_worker *w = ctx;
    int ok = atomic_load(&w->assigned_once) && !w->fenced;
    if (!atomic_load(&w->assigned_once)) fputs("no partition assignment yet\n", out);
    if (w->fenced) fputs("fenced by the consumer group\n", out);
    for (int32_t i = 0; i < w->nparts; i++) {
        pthread_mutex_lock(&w->parts[i].mu);
        int state = w->parts[i].state;
        pthread_mutex_unlock(&w->parts[i].mu);
        if (state == P_UNASSIGNED || state == P_READY) continue;
        ok = 0;
        fprintf(out, "partition %d: %s\n", (int)i, state_names[state]);
    }
    return ok;
}

/* The store.* keys as the store's options (strings stay owned by cfg). */
static void store_options(const vd_config *cfg, vd_store_options *o)
{
    vd_store_options_init(o);
    o->token = vd_config_str(cfg, "store.token");
    o->s3_endpoint = vd_config_str(cfg, "store.s3.endpoint");
    o->s3_region = vd_config_str(cfg, "store.s3.region");
    o->s3_addressing = vd_config_str(cfg, "store.s3.addressing");
    o->connect_timeout_ms = vd_config_int(cfg, "store.connect.timeout.ms");
    o->request_timeout_ms = vd_config_int(cfg, "store.request.timeout.ms");
    o->retries = (int)vd_config_int(cfg, "store.retries");
    o->retry_backoff_ms = vd_config_int(cfg, "store.retry.backoff.ms");
    o->retry_backoff_max_ms = vd_config_int(cfg, "store.retry.backoff.max.ms");
}

/* Hands the directory a snapshot of the partitions and indexes, once per
 * directory.heartbeat.interval.ms (or now). No Redis I/O here. */
static void directory_tick(vd_worker *w, int now)
{
    if (!w->dir || (!now && now_s() < w->dir_next)) return;
    w->dir_next = now_s() + vd_config_int(w->cfg, "directory.heartbeat.interval.ms") / 1000.0;
    vd_dir_snapshot s;
    memset(&s, 0, sizeof s);
    vd_dir_worker *hb = &s.worker;
    snprintf(hb->id, sizeof hb->id, "%s", w->worker_id);
    gethostname(hb->host, sizeof hb->host - 1);
    snprintf(hb->version, sizeof hb->version, "%s", VECTORD_VERSION);
    hb->pid = (long)getpid();
    hb->started_ms = w->started_ms;
    hb->partition_count = w->nparts;
    size_t nidx = 0;
    hb->parts = calloc((size_t)w->nparts + 1, sizeof *hb->parts);
    for (int32_t i = 0; hb->parts && i < w->nparts; i++) {
        part *p = &w->parts[i];
        pthread_mutex_lock(&p->mu);
        int state = p->state;
        int64_t applied = p->applied;
        pthread_mutex_unlock(&p->mu);
        if (state == P_UNASSIGNED) continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(w->consumer, w->t_cmd, i, &lo, &hi);
        vd_dir_partition *dp = &hb->parts[hb->nparts++];
        dp->id = i;
        snprintf(dp->state, sizeof dp->state, "%s", state_names[state]);
        dp->applied = applied;
        dp->lag = hi < 0 ? -1 : hi - applied - 1 > 0 ? hi - applied - 1 : 0;
        if (dp->lag > 0) hb->lag += dp->lag;
        if (state == P_REPLAYING || state == P_READY) nidx += p->n;
    }
    s.indexes = calloc(nidx + 1, sizeof *s.indexes);
    for (int32_t i = 0; s.indexes && i < w->nparts; i++) {
        part *p = &w->parts[i];
        if (p->state != P_REPLAYING && p->state != P_READY) continue;
        pthread_rwlock_rdlock(&p->lock);
        for (size_t j = 0; j < p->n && s.n < nidx; j++) {
            entry *e = &p->e[j];
            vd_dir_index *x = &s.indexes[s.n];
            vd_index_stats st;
            vd_index_stats_get(e->ix, &st);
            if (!(x->name = strdup(e->name))) break;
            x->partition = i;
            snprintf(x->owner, sizeof x->owner, "%s", w->worker_id);
            x->params = *vd_index_params_get(e->ix);
            x->length = st.live;
            x->deleted = st.deleted;
            x->applied_offset = e->last;
            x->checkpointed_offset = e->file_offset;
            s.n++;
        }
        pthread_rwlock_unlock(&p->lock);
    }
    vd_directory_publish(w->dir, &s);
}

vd_err vd_worker_new(vd_worker **out, const vd_config *cfg, const vd_logger *lg, vd_error *err)
{
    vd_worker *w = calloc(1, sizeof *w);
    if (!w) return vd_error_set(err, VD_ERR_NOMEM, "worker: out of memory");
    w->cfg = cfg;
    w->lg = lg;
    w->t_cmd = vd_config_str(cfg, "topic.commands");
    w->t_search = vd_config_str(cfg, "topic.search");
    w->t_dlq = vd_config_str(cfg, "topic.dlq");
    pthread_mutex_init(&w->qmu, NULL);
    pthread_mutex_init(&w->warm_mu, NULL);
    pthread_mutex_init(&w->st_mu, NULL);
    pthread_cond_init(&w->st_cond, NULL);
    pthread_cond_init(&w->qcond, NULL);
    const char *wid = vd_config_str(cfg, "worker.id");
    if (*wid) {
        snprintf(w->worker_id, sizeof w->worker_id, "%s", wid);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(w->worker_id, sizeof w->worker_id, "%s-%ld", host, (long)getpid());
    }
    vd_limits_init(&w->limits);
    w->limits.max_dimension = (uint32_t)vd_config_int(cfg, "limits.max.dimension");
    w->limits.max_batch = (uint32_t)vd_config_int(cfg, "limits.max.batch");
    w->limits.max_id_len = (uint32_t)vd_config_int(cfg, "limits.max.id.bytes");
    w->limits.max_metadata = (uint32_t)vd_config_int(cfg, "limits.max.metadata.bytes");
    w->limits.repair_threshold = vd_config_double(cfg, "index.repair.threshold");
    w->max_message = (size_t)vd_config_int(cfg, "limits.max.message.bytes");

    vd_err rc;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    w->started_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
    const char *redis_url = vd_config_str(cfg, "directory.redis_url");
    if (*redis_url) {
        vd_directory_opts o = {
            .url = redis_url,
            .group = vd_config_str(cfg, "group.id"),
            .worker_id = w->worker_id,
            .timeout_ms = (int)vd_config_int(cfg, "directory.timeout.ms"),
            .heartbeat_ms = (int)vd_config_int(cfg, "directory.heartbeat.interval.ms"),
            .ttl_ms = (int)vd_config_int(cfg, "directory.ttl.ms"),
            .backoff_max_ms = (int)vd_config_int(cfg, "directory.retry.backoff.max.ms"),
            .pin_cache_ms = (int)vd_config_int(cfg, "directory.pin.cache.ms"),
            .lg = lg,
        };
        if ((rc = vd_directory_open(&w->dir, &o, err))) goto fail;
    }
    const char *bootstrap = vd_config_kafka(cfg, "bootstrap.servers");
    if (!bootstrap || !*bootstrap) {
        const char *topics[] = {w->t_cmd, w->t_search, w->t_dlq, "vectord.replies", NULL};
        if ((rc = vd_kafka_mock_start(&w->mock, topics,
                                      (int)vd_config_int(cfg, "embedded.partitions"), &bootstrap,
                                      err)))
            goto fail;
        LOG(w, VD_LOG_INFO, "embedded_cluster", VD_LS("bootstrap", bootstrap),
            VD_LI("partitions", vd_config_int(cfg, "embedded.partitions")));
    }
    if (!(w->bootstrap = strdup(bootstrap))) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "worker: out of memory");
        goto fail;
    }
    vd_store_options so;
    store_options(cfg, &so);
    const char *url = vd_config_str(cfg, "store.url");
    if (strncmp(url, "http", 4) == 0 || strncmp(url, "s3://", 5) == 0) {
        /* The checkpoint at revoke is waited for inside the rebalance
         * callback: the longest store call, retries included, must end
         * before the group gives up on this member. */
        const char *mpi = vd_kafka_conf_get(cfg, VD_KAFKA_CONSUMER, "max.poll.interval.ms");
        double poll_ms = mpi ? atof(mpi) : 300000;
        double call_ms = (double)(so.retries + 1) * (double)so.request_timeout_ms +
                         (double)so.retries * (double)so.retry_backoff_max_ms;
        if (call_ms >= poll_ms) {
            rc = vd_error_set(err, VD_ERR_CONFIG,
                              "store.request.timeout.ms x (store.retries + 1) + backoff = %.0f ms "
                              "must stay below kafka.max.poll.interval.ms (%.0f ms): the "
                              "checkpoint at a revoke waits for the store",
                              call_ms, poll_ms);
            goto fail;
        }
    }
    if ((rc = vd_store_open(&w->store, vd_config_str(cfg, "store.url"), &so, err))) goto fail;
    if (pthread_create(&w->st_thread, NULL, st_thread, w)) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "worker: cannot start the store thread");
        goto fail;
    }
    w->st_running = 1;

    char errstr[512];
    const char *pdefaults[] = {"partitioner",        "murmur2_random", "linger.ms", "1",
                               "enable.idempotence", "false",          NULL};
    rd_kafka_conf_t *pc;
    if ((rc = vd_kafka_conf(cfg, VD_KAFKA_PRODUCER, pdefaults, w->bootstrap, &pc, err))) goto fail;
    rd_kafka_conf_set_opaque(pc, w);
    rd_kafka_conf_set_log_cb(pc, kafka_log_cb);
    if (!(w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr))) {
        rc = vd_error_set(err, VD_ERR_CONFIG, "producer: %s", errstr);
        goto fail;
    }
    const char *gi = vd_config_str(cfg, "group.instance.id");
    const char *cdefaults[] = {"group.id",
                               vd_config_str(cfg, "group.id"),
                               "partition.assignment.strategy",
                               "range",
                               "enable.auto.commit",
                               "false",
                               "enable.auto.offset.store",
                               "false",
                               "auto.offset.reset",
                               "error",
                               "enable.partition.eof",
                               "false",
                               *gi ? "group.instance.id" : NULL,
                               gi,
                               NULL};
    rd_kafka_conf_t *cc;
    if ((rc = vd_kafka_conf(cfg, VD_KAFKA_CONSUMER, cdefaults, w->bootstrap, &cc, err))) goto fail;
    rd_kafka_conf_set_opaque(cc, w);
    rd_kafka_conf_set_log_cb(cc, kafka_log_cb);
    rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
    if (!(w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr))) {
        rc = vd_error_set(err, VD_ERR_CONFIG, "consumer: %s", errstr);
        goto fail;
    }
    rd_kafka_poll_set_consumer(w->consumer);

    int32_t nc = partition_count(w->consumer, w->t_cmd, err);
    int32_t ns = nc < 0 ? -1 : partition_count(w->consumer, w->t_search, err);
    if (nc < 0 || ns < 0) {
        rc = err ? err->code : VD_ERR_CONFIG;
        goto fail;
    }
    if (nc != ns) {
        rc = vd_error_set(err, VD_ERR_CONFIG,
                          "topics %s (%d partitions) and %s (%d partitions) must have the same "
                          "partition count: searches are routed to the worker that owns the "
                          "same partition of the commands topic",
                          w->t_cmd, (int)nc, w->t_search, (int)ns);
        goto fail;
    }
    w->nparts = nc;
    char *cid = rd_kafka_clusterid(w->consumer, 10000);
    snprintf(w->cluster_id, sizeof w->cluster_id, "%s", cid ? cid : "");
    if (cid) rd_kafka_mem_free(w->consumer, cid);
    if (!(w->parts = calloc((size_t)nc, sizeof *w->parts))) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "worker: out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < nc; i++) {
        part *p = &w->parts[i];
        p->id = i;
        pthread_rwlock_init(&p->lock, NULL);
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cond, NULL);
        part_reset(p);
    }
    w->nthreads = (int)vd_config_int(cfg, "search.threads");
    w->threads = calloc((size_t)w->nthreads, sizeof *w->threads);
    for (int i = 0; w->threads && i < w->nthreads; i++)
        pthread_create(&w->threads[i], NULL, search_thread, w);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(sub, w->t_cmd, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(sub, w->t_search, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t ke = rd_kafka_subscribe(w->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (ke) {
        rc = vd_error_set(err, VD_ERR_IO, "subscribe: %s", rd_kafka_err2str(ke));
        goto fail;
    }
    const char *listen = vd_config_str(cfg, "http.listen");
    if (*listen) {
        vd_http_handlers hh = {w, metrics, ready};
        if ((rc = vd_http_start(&w->http, listen, &hh, err))) goto fail;
        LOG(w, VD_LOG_INFO, "http", VD_LS("listen", listen), VD_LI("port", vd_http_port(w->http)));
    }
    LOG(w, VD_LOG_INFO, "started", VD_LS("worker", w->worker_id), VD_LS("bootstrap", w->bootstrap),
        VD_LS("group", vd_config_str(cfg, "group.id")), VD_LI("partitions", nc),
        VD_LS("store", vd_config_str(cfg, "store.url")));
    *out = w;
    return VD_OK;
fail:
    vd_worker_free(w);
    return rc;
}

const char *vd_worker_bootstrap(const vd_worker *w)
{
    return w->bootstrap;
}

static void handle_message(vd_worker *w, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && m->rkt &&
            strcmp(rd_kafka_topic_name(m->rkt), w->t_cmd) == 0 && m->partition >= 0 &&
            m->partition < w->nparts &&
            (w->parts[m->partition].state == P_REPLAYING ||
             w->parts[m->partition].state == P_READY) &&
            m->offset == w->parts[m->partition].applied + 1) {
            /* (Only for the offset the partition needs next: an error left
             * from the placeholder offset it was assigned at while loading
             * is not about its log.) */
            /* Invariant 5: the log no longer holds what the checkpoints need. */
            part *p = &w->parts[m->partition];
            pthread_mutex_lock(&p->mu);
            p->state = P_REFUSED;
            snprintf(p->refused_why, sizeof p->refused_why,
                     "offset %" PRId64 " is no longer in the log (retention): %s", p->applied + 1,
                     rd_kafka_message_errstr(m));
            pthread_cond_broadcast(&p->cond);
            pthread_mutex_unlock(&p->mu);
            LOG(w, VD_LOG_ERROR, "partition_refused", VD_LI("partition", p->id),
                VD_LS("reason", p->refused_why));
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            LOG(w, VD_LOG_WARN, "consumer_error", VD_LS("error", rd_kafka_message_errstr(m)));
        }
        rd_kafka_message_destroy(m);
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (strcmp(topic, w->t_search) == 0) {
        if (m->partition >= 0 && m->partition < w->nparts)
            w->parts[m->partition].search_next = m->offset + 1;
        enqueue_search(w, m);
        return;
    }
    if (m->partition >= 0 && m->partition < w->nparts) {
        part *p = &w->parts[m->partition];
        if (p->state == P_REPLAYING || p->state == P_READY) {
            if (m->offset > p->applied) {
                apply_command(w, p, m);
                advance(p, m->offset);
            }
        }
    }
    rd_kafka_message_destroy(m);
}

vd_err vd_worker_run(vd_worker *w, volatile sig_atomic_t *stop, vd_error *err)
{
    int loading = 0;
    while (!*stop) {
        /* While partitions load, look at them every 10 ms: one loaded is
         * moved to its start without waiting out a quiet poll. */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, loading ? 10 : 100);
        if (m) handle_message(w, m);
        rd_kafka_poll(w->producer, 0);
        checkpoint_policy(w);
        directory_tick(w, 0);
        loading = poll_loads(w);
    }
    LOG(w, VD_LOG_INFO, "stopping", VD_LS("worker", w->worker_id));
    /* Finish in-flight searches, then checkpoint and commit everything. */
    pthread_mutex_lock(&w->qmu);
    w->qstop = 1;
    pthread_cond_broadcast(&w->qcond);
    pthread_mutex_unlock(&w->qmu);
    for (int i = 0; w->threads && i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
    w->nthreads = 0;
    vd_err rc = VD_OK;
    /* Loads first: the checkpoints below must not queue behind them. */
    for (int32_t i = 0; i < w->nparts; i++) ld_cancel(w, &w->parts[i]);
    for (int32_t i = 0; i < w->nparts; i++)
        if (checkpoint(w, &w->parts[i], "shutdown", err)) rc = err ? err->code : VD_ERR_IO;
    directory_tick(w, 1); /* the directory's last write has the final offsets */
    rd_kafka_consumer_close(w->consumer);
    rd_kafka_flush(w->producer, 10000);
    LOG(w, VD_LOG_INFO, "stopped", VD_LI("applied", w->n_applied), VD_LI("rejected", w->n_rejected),
        VD_LI("searches", w->n_searches), VD_LI("checkpoints", w->n_checkpoints));
    return rc;
}

void vd_worker_free(vd_worker *w)
{
    if (!w) return;
    vd_http_stop(w->http);      /* first: it reads the partitions */
    vd_directory_close(w->dir); /* writes the last snapshot, removes the heartbeat */
    w->dir = NULL;
    if (w->nthreads) {
        pthread_mutex_lock(&w->qmu);
        w->qstop = 1;
        pthread_cond_broadcast(&w->qcond);
        pthread_mutex_unlock(&w->qmu);
        for (int i = 0; w->threads && i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
    }
    free(w->threads);
    for (int32_t i = 0; w->parts && i < w->nparts; i++) ld_cancel(w, &w->parts[i]);
    for (int32_t i = 0; w->parts && i < w->nparts; i++) ck_discard(w, &w->parts[i]);
    if (w->st_running) {
        pthread_mutex_lock(&w->st_mu);
        w->st_stop = 1;
        pthread_cond_broadcast(&w->st_cond);
        pthread_mutex_unlock(&w->st_mu);
        pthread_join(w->st_thread, NULL);
    }
    if (w->consumer) rd_kafka_destroy(w->consumer);
    if (w->producer) rd_kafka_destroy(w->producer);
    for (int32_t i = 0; w->parts && i < w->nparts; i++) {
        part_reset(&w->parts[i]);
        free(w->parts[i].e);
        pthread_rwlock_destroy(&w->parts[i].lock);
        pthread_mutex_destroy(&w->parts[i].mu);
        pthread_cond_destroy(&w->parts[i].cond);
    }
    free(w->parts);
    vd_store_close(w->store);
    vd_kafka_mock_stop(w->mock);
    free(w->bootstrap);
    pthread_mutex_destroy(&w->qmu);
    pthread_cond_destroy(&w->qcond);
    for (int i = 0; i < w->nwarm; i++) free(w->warm[i]);
    pthread_mutex_destroy(&w->warm_mu);
    pthread_mutex_destroy(&w->st_mu);
    pthread_cond_destroy(&w->st_cond);
    free(w);
}
