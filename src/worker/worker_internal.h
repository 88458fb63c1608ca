/*
 * worker_internal.h - the worker's state, shared by the files of
 * src/worker/ and by nothing else (docs/architecture.md draws the whole).
 *
 * Three structs: the worker (one per process), a partition of the commands
 * topic (vd_partition, one per partition for the worker's lifetime: a
 * revoke resets it, it is never freed while threads run, so a search
 * thread never holds a pointer to freed memory) and an index entry of a
 * partition's registry (vd_entry).
 *
 * The threads, and what each may touch:
 * - the poll thread (vd_worker_run): the consumer, the rebalance callback,
 *   applying commands, the checkpoint policy, collecting loads, the
 *   directory snapshot. It is the only writer of partition state.
 * - the store thread (a vd_taskq): runs checkpoint and load jobs; it reads
 *   only what the job carries, plus the store and the consumer's
 *   assignment_lost flag.
 * - search threads (search.c): read a partition's registry under its
 *   rwlock and wait on its mutex for readiness.
 * - the HTTP thread (status.c): /metrics and /readyz read under the same
 *   locks, and the counters.
 * - librdkafka's own threads deliver what the outbox produced.
 *
 * Fields are grouped below by the thread or lock that guards them. A field
 * that another thread reads without its writer's lock is a C11 atomic, and
 * its comment gives the memory order and why: relaxed where only the value
 * is read, release/acquire where the store publishes other data.
 * VD_TSAN builds check this (tests/unit/test_status.c drives the readers
 * against the writers).
 */
#ifndef VD_WORKER_WORKER_INTERNAL_H
#define VD_WORKER_WORKER_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "config/config.h"
#include "common/service_error.h"
#include "vectord/index.h"

struct vd_store;
struct vd_directory;
struct vd_http;
struct vd_kafka_mock;
struct vd_taskq;
struct vd_ckjob;
struct vd_ldjob;
struct vd_search_job;

/* One index of a partition. name and ix are set when the entry is added
 * and never change; the rest belongs to the poll thread. */
typedef struct vd_entry {
    char *name;
    vd_index *ix;
    uint64_t uid;         /* this incarnation of the name (a drop and a create
                             again make another) */
    int64_t complete;     /* from the checkpoint: commands at or below are in it */
    int64_t file_offset;  /* offset in the envelope of its newest durable file;
                             written under the partition's wrlock (info reads it) */
    _Atomic int64_t last; /* last command applied to it: stored by the poll thread
                             as each command is applied, under apply_mu but not
                             the wrlock, which info holds only as a reader;
                             relaxed both ways, a value shown, it publishes
                             nothing (the index has its own lock; the store
                             thread reads it under apply_mu) */
    int dirty;            /* applied commands not yet in a durable file */
} vd_entry;

/* A partition's life: assigned -> loading -> replaying -> ready, back to
 * unassigned at a revoke; refused when its checkpoints or its log cannot
 * be trusted (a corrupt file, retention, another cluster). */
typedef enum vd_part_state {
    VD_PART_UNASSIGNED = 0,
    VD_PART_LOADING,
    VD_PART_REPLAYING,
    VD_PART_READY,
    VD_PART_REFUSED,
    VD_PART__COUNT
} vd_part_state;

typedef struct vd_partition {
    int32_t id; /* fixed */

    /* The registry: the entries (array and count) are written by the poll
     * thread under the wrlock; search threads, the HTTP thread and the
     * directory snapshot read them under the rdlock. */
    pthread_rwlock_t lock;
    vd_entry *e;
    size_t n, cap;

    /* Held by the poll thread while it applies a command of the
     * partition, and by the store thread while it serialises one of its
     * indexes: a file's bytes and its offset (e->last) belong together.
     * The poll thread only ever try-locks it (checkpoint.c). */
    pthread_mutex_t apply_mu;

    /* Written by the poll thread under mu, which it alone may skip to
     * read them; others read under mu. cond is broadcast on every change,
     * for searches waiting for readiness or an offset. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    vd_part_state state;
    /* Last command offset consumed (applied or rejected). Stored under mu
     * with release, after the command changed its index; search replies
     * load it without mu, with acquire, before searching, so the results
     * hold every command up to the offset they name. Under mu, or on the
     * poll thread, relaxed loads (vd_partition_applied). */
    _Atomic int64_t applied;
    int64_t committed; /* last offset committed + 1 */
    char refused_why[512];

    /* Written by the poll thread alone, read by /metrics too: relaxed, a
     * count shown, it publishes nothing; mu is not needed for it. */
    atomic_size_t pending; /* commands applied since the last durable checkpoint */

    /* The poll thread's alone. */
    char **legacy; /* keys of the layouts before this one (migrated files,
                      the old manifest), deleted after the next manifest */
    size_t nlegacy;
    uint64_t uids; /* the last vd_entry.uid given */
    int rebased;   /* embedded mode: loaded another cluster's offsets, and
                      no manifest written since */
    /* Commands parked because they arrived while the store thread held
     * apply_mu: applied in order once it is free, the partition paused
     * meanwhile (worker.c). */
    rd_kafka_message_t **parked;
    size_t nparked, capparked;
    int64_t quiet_until;        /* offsets at or below already had their acks/DLQ records */
    int64_t ready_at;           /* high watermark seen at assignment */
    int64_t manifest_offset;    /* the loaded manifest's offset */
    int64_t assigned_committed; /* the group's offset at assignment */
    double last_checkpoint;
    double retry_at, backoff; /* the next checkpoint or load attempt */
    struct vd_ckjob *ck;      /* checkpoint in flight */
    struct vd_ldjob *ld;      /* load in flight */
    int load_again;           /* to load (again) at retry_at: assigned, or the store failed */
    int seek_pending;         /* loaded; the consumer still has to seek to seek_to */
    int64_t seek_to, seek_hi;
} vd_partition;

/* The DLQ records of one commands partition not yet acknowledged by the
 * broker (outbox.c; poll thread): their source offsets, increasing. */
typedef struct vd_dlq_track {
    int64_t *offs;
    size_t n, cap;
    uint32_t epoch; /* bumped when the partition is forgotten */
} vd_dlq_track;

/* The reply side of the worker (outbox.c): one producer for replies, acks
 * and DLQ records, the reply-topic policy, and the DLQ bookkeeping. */
typedef struct vd_outbox {
    /* Set by vd_outbox_open, read-only afterwards (any thread). */
    int open;
    rd_kafka_t *producer; /* the worker's */
    const vd_logger *lg;
    const char *own[3]; /* never replied to: commands, search, DLQ */
    char **allow;       /* reply.topics.allow prefixes (none: any) */
    size_t nallow;
    double retry_max_s;
    /* Reply topics looked up or being looked up (warm_mu), and the thread
     * that looks them up. */
    pthread_mutex_t warm_mu;
    char *warm[64];
    int nwarm;
    struct vd_taskq *warmer;
    atomic_int closing; /* the warmer skips what is left */
    /* The poll thread's: DLQ records in flight per commands partition, and
     * the ones to produce again. */
    vd_dlq_track *dlq;
    int32_t nparts;
    struct vd_dlq_retry *retries;
    /* Counters for /metrics. */
    atomic_uint_fast64_t n_rejected, n_replies_failed, n_replies_too_large, n_dlq_failures;
    atomic_uint_fast64_t n_replies_refused[3]; /* by vd_reply_policy, 0 unused */
    atomic_uint_fast64_t rejected_by[VD_ERR__COUNT];
} vd_outbox;

/* One search partition's queue (search.c), under the pool's mu. */
typedef struct vd_search_queue {
    struct vd_search_job *head, *tail;
    size_t n;          /* queued, not taken yet */
    int64_t *inflight; /* offsets queued or being answered, increasing */
    size_t ninflight, capinflight;
    int64_t enq_next;  /* last offset queued + 1 (-1: none since assignment) */
    int64_t committed; /* last search offset committed (-1: none) */
    int paused;        /* paused in the consumer: the queue is full */
} vd_search_queue;

#define VD_SEARCH_WAIT_BUCKETS 9

/* The search pool (search.c): per-partition queues, taken round robin,
 * bounded by search.queue.max each (then the partition is paused in the
 * consumer: backpressure stays in Kafka). */
typedef struct vd_search_pool {
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu; /* guards everything below but the histogram */
    pthread_cond_t cond;
    vd_search_queue *q; /* one per partition */
    int32_t nq, next;
    size_t max;
    double ready_timeout_s;
    int stop;
    /* Time from queued to taken, a Prometheus histogram (atomics). */
    atomic_uint_fast64_t wait_le[VD_SEARCH_WAIT_BUCKETS], wait_count, wait_sum_us;
} vd_search_pool;

typedef struct vd_worker {
    /* Set by vd_worker_new, read-only afterwards (any thread). */
    const vd_config *cfg;
    const vd_logger *lg;
    char worker_id[128];
    char cluster_id[128];
    const char *t_cmd, *t_search, *t_dlq;
    vd_limits limits;
    size_t max_message;
    struct vd_kafka_mock *mock;
    char *bootstrap;
    rd_kafka_t *consumer, *producer;
    struct vd_store *store;
    vd_partition *parts;
    int32_t nparts;
    struct vd_http *http;
    struct vd_directory *dir; /* NULL when off; its own locking */
    int64_t started_ms;

    /* The group moved on without us: write nothing more. Written by the
     * poll thread (a refused commit, a lost assignment, cleared at the
     * next assignment), read by it and by /metrics and /readyz: relaxed,
     * a flag on its own, it publishes nothing. */
    atomic_int fenced;

    /* The poll thread's. */
    double search_commit_at;
    double dir_next;

    /* The store thread: writes checkpoints and loads partitions. */
    struct vd_taskq *store_q;

    /* The search pool (search.c). */
    vd_search_pool search;

    vd_outbox out;

    /* Counters for /metrics (atomics: any thread bumps them). */
    atomic_uint_fast64_t n_applied, n_searches, n_searches_expired, n_checkpoints,
        n_checkpoint_failures, n_load_failures, n_checkpoint_foreign, n_checkpoint_migrated,
        n_parked, n_apply_fatal;
    atomic_int assigned_once;
    /* Partitions assigned now that were added to the topics after start
     * (>= nparts): not served until a restart (rebalance.c). */
    atomic_int unserved;
} vd_worker;

#define VD_WLOG(w, lvl, ev, ...) vd_log((w)->lg, lvl, ev, __VA_ARGS__)

/* After a failed checkpoint or load of p: counted by the caller; the next
 * attempt waits checkpoint.retry.backoff.ms, doubling up to .max.ms, with
 * +-25% jitter (p->retry_at, p->backoff). Poll thread. */
void vd_worker_retry_later(vd_worker *w, vd_partition *p);

#endif
