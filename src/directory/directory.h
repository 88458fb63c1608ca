/*
 * directory.h - the fleet directory in Redis (optional; docs/directory.md).
 *
 * A fleet view, not a source of truth: each worker publishes a heartbeat
 * (its partitions and their lag) under a key with a TTL, and one entry per
 * index it owns (partition, owner, params, length, offsets). `create` pins
 * an index name to the partition it arrived on, so a command for that name
 * on another partition (a producer with another partitioner) can be
 * rejected as `wrong_partition`. vectorctl `ls` and `status` read it.
 *
 * Redis must never block or break the worker. Every call has a short
 * timeout (directory.timeout.ms); after a failure the directory is "down"
 * and calls from the poll thread return VD_ERR_UNAVAILABLE at once, without
 * I/O, until the publisher thread has reconnected (with backoff up to
 * directory.retry.backoff.max.ms). `directory_down` / `directory_up` are
 * logged once per transition. Heartbeats, index entries and unpins are
 * written by the directory's own thread from the last snapshot handed over
 * with vd_directory_publish(); the poll thread only does pin look-ups
 * (cached) and claims.
 *
 * Every hiredis call of vectord is in directory.c (hiredis 0.14.1, the
 * blocking API, one connection per thread). Redis 4.0 or newer.
 */
#ifndef VD_DIRECTORY_DIRECTORY_H
#define VD_DIRECTORY_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "common/service_error.h"
#include "vectord/index.h"

/* ---- Redis URLs ---- */

/*
 * A parsed directory.redis_url:
 *   redis://[[user]:password@]host[:port][/db]   (port 6379, db 0 by default;
 *                                                 host may be [IPv6])
 *   unix:///path/to/redis.sock[?db=N]
 * Percent-escapes in user and password are decoded.
 */
typedef struct vd_redis_url {
    char host[256];     /* empty for a unix socket */
    int port;           /* 0 for a unix socket */
    char path[256];     /* the unix socket, or empty */
    char user[128];     /* empty: AUTH with the password alone (or no AUTH) */
    char password[256]; /* empty: no AUTH */
    int db;
} vd_redis_url;

/*
 * Parses url into *out. Errors: VD_ERR_CONFIG with a message that starts
 * with "directory.redis_url: " and never contains the password.
 */
vd_err vd_redis_url_parse(const char *url, vd_redis_url *out, vd_error *err);

/* Writes "host:port" or the socket path (never the password) into buf. */
void vd_redis_url_where(const vd_redis_url *u, char *buf, size_t cap);

/* ---- What the directory holds ---- */

/* One index entry: `vectord:<group>:index:<name>`. */
typedef struct vd_dir_index {
    char *name; /* owned by the struct that holds it (freed by the _free below) */
    int32_t partition;
    char owner[128]; /* worker id */
    vd_index_params params;
    uint64_t length, deleted;
    int64_t applied_offset;      /* last command applied to it, -1 none */
    int64_t checkpointed_offset; /* offset of its newest durable checkpoint, -1 none */
    int64_t updated_ms;          /* unix ms when the owner last wrote it */
    /* Filled by vd_directory_indexes only: */
    int32_t pinned;  /* partition of its pin, -1 none */
    int owner_alive; /* the owner's heartbeat has not expired */
} vd_dir_index;

/* One partition in a heartbeat. */
typedef struct vd_dir_partition {
    int32_t id;
    char state[16];  /* loading, replaying, ready, refused */
    int64_t applied; /* last command offset consumed, -1 none */
    int64_t lag;     /* commands in the log not yet applied, -1 unknown */
} vd_dir_partition;

/* One heartbeat: `vectord:<group>:worker:<id>`, expiring after directory.ttl.ms. */
typedef struct vd_dir_worker {
    char id[128];
    char host[128];
    char version[32];
    long pid;
    int64_t started_ms, updated_ms; /* unix ms */
    int32_t partition_count;        /* partitions of the commands topic */
    vd_dir_partition *parts;        /* owned; the partitions assigned to it */
    size_t nparts;
    int64_t lag; /* sum of the known lags */
    /* Filled by vd_directory_workers only: */
    int64_t ttl_ms; /* time left before the heartbeat expires */
} vd_dir_worker;

/* What a worker hands to the publisher: its heartbeat and its indexes. */
typedef struct vd_dir_snapshot {
    vd_dir_worker worker;
    vd_dir_index *indexes; /* owned */
    size_t n;
} vd_dir_snapshot;

/* Frees what the struct owns (not the struct). NULL is accepted. */
void vd_dir_snapshot_clear(vd_dir_snapshot *s);
void vd_dir_worker_clear(vd_dir_worker *w);
void vd_dir_index_clear(vd_dir_index *ix);

/*
 * The Redis hash fields of an index entry or a heartbeat, for the
 * publisher and the readers (exposed for the unit tests). Encoding fills f
 * with up to VD_DIR_MAX_FIELDS name/value pairs: names are static strings,
 * values live in f->buf (vd_dir_fields_value). Decoding reads name/value
 * pairs back; unknown names are ignored, missing ones keep their defaults
 * (offsets -1), and a malformed number is VD_ERR_DECODE naming the field.
 * Errors: VD_ERR_NOMEM, VD_ERR_DECODE. vd_dir_fields_clear frees f->buf.
 */
#define VD_DIR_MAX_FIELDS 32
typedef struct vd_dir_fields {
    const char *name[VD_DIR_MAX_FIELDS];
    size_t off[VD_DIR_MAX_FIELDS], len[VD_DIR_MAX_FIELDS];
    size_t n;
    char *buf;
    size_t used, cap;
} vd_dir_fields;

const char *vd_dir_fields_value(const vd_dir_fields *f, size_t i);
void vd_dir_fields_clear(vd_dir_fields *f);

vd_err vd_dir_index_encode(const vd_dir_index *ix, vd_dir_fields *f, vd_error *err);
vd_err vd_dir_worker_encode(const vd_dir_worker *w, vd_dir_fields *f, vd_error *err);
/* ix->name becomes a copy of name (freed by vd_dir_index_clear). */
vd_err vd_dir_index_decode(const char *name, size_t name_len, const char *const *fields,
                           const size_t *lens, size_t nfields, vd_dir_index *ix, vd_error *err);
/* w->parts is allocated (freed by vd_dir_worker_clear). */
vd_err vd_dir_worker_decode(const char *const *fields, const size_t *lens, size_t nfields,
                            vd_dir_worker *w, vd_error *err);

/* ---- The directory ---- */

typedef struct vd_directory vd_directory;

typedef struct vd_directory_opts {
    const char *url;       /* directory.redis_url */
    const char *group;     /* group.id: keys are vectord:<group>:... */
    const char *worker_id; /* NULL for a reader (vectorctl): no publisher thread */
    int timeout_ms;        /* connect and each command */
    int heartbeat_ms;      /* publisher period */
    int ttl_ms;            /* heartbeat key expiry */
    int backoff_max_ms;    /* longest wait between reconnect attempts */
    int pin_cache_ms;      /* how long a pin read from Redis is trusted */
    const vd_logger *lg;   /* may be NULL */
} vd_directory_opts;

/*
 * For a worker: parses the URL and starts the publisher thread. Redis need
 * not be up (the thread keeps trying). opts' strings are copied.
 * Errors: VD_ERR_CONFIG (bad URL, naming directory.redis_url; ttl not above
 * the heartbeat period, naming directory.ttl.ms), VD_ERR_NOMEM.
 */
vd_err vd_directory_open(vd_directory **out, const vd_directory_opts *opts, vd_error *err);

/*
 * For a reader (opts->worker_id ignored): parses the URL and connects now.
 * Errors: VD_ERR_CONFIG, VD_ERR_IO (Redis unreachable, AUTH or SELECT
 * refused: the message says which), VD_ERR_NOMEM.
 */
vd_err vd_directory_connect(vd_directory **out, const vd_directory_opts *opts, vd_error *err);

/*
 * Stops the publisher (a worker's last snapshot is written and its
 * heartbeat deleted, each within the timeout when Redis answers), closes
 * the connections and frees. NULL is accepted.
 */
void vd_directory_close(vd_directory *d);

/*
 * Hands the worker's current state to the publisher, which writes it at
 * its next tick (heartbeat every time; an index entry when it changed,
 * after a reconnect, or once per TTL). Takes ownership of what *snap holds
 * and clears *snap. Never does I/O.
 */
void vd_directory_publish(vd_directory *d, vd_dir_snapshot *snap);

/*
 * The partition name is pinned to: *owner = the partition, or -1 when it
 * is not pinned. Answers from the cache when it can (a pin read within
 * directory.pin.cache.ms). Poll thread only. Errors: VD_ERR_UNAVAILABLE
 * when Redis is down or did not answer in time (the caller goes on without
 * the check; counted in the stats).
 */
vd_err vd_directory_pin_get(vd_directory *d, const char *name, size_t len, int32_t *owner);

/*
 * Pins name to partition unless it is pinned already, atomically;
 * *owner = the partition it is pinned to afterwards (== partition when
 * this call pinned it or it was already pinned here). Cancels a pending
 * unpin of name. Poll thread only. Errors: VD_ERR_UNAVAILABLE as above.
 */
vd_err vd_directory_pin_claim(vd_directory *d, const char *name, size_t len, int32_t partition,
                              int32_t *owner);

/*
 * The index was dropped from partition: its pin (when it points at
 * partition) and its entry are deleted by the publisher, retried until
 * Redis answers. Never does I/O.
 */
void vd_directory_unpin(vd_directory *d, const char *name, size_t len, int32_t partition);

/* Counters for /metrics. */
typedef struct vd_directory_stats {
    int up;                  /* 1 when the last exchange with Redis succeeded */
    uint64_t errors;         /* failed connects and commands */
    uint64_t heartbeats;     /* heartbeats written */
    uint64_t pin_skipped;    /* pin checks skipped because Redis was down */
    uint64_t pin_cache_hits; /* pin checks answered from the cache */
    uint64_t pin_conflicts;  /* owned indexes whose pin names another partition */
} vd_directory_stats;

void vd_directory_stats_get(vd_directory *d, vd_directory_stats *out);

/*
 * Readers (vectorctl). Every index entry, sorted by name, with its pin and
 * whether its owner is alive; every live heartbeat, sorted by id. *out is
 * the caller's: free each element with vd_dir_*_clear, then the array.
 * Errors: VD_ERR_IO (Redis failed; the message says how), VD_ERR_NOMEM.
 */
vd_err vd_directory_indexes(vd_directory *d, vd_dir_index **out, size_t *n, vd_error *err);
vd_err vd_directory_workers(vd_directory *d, vd_dir_worker **out, size_t *n, vd_error *err);

#endif
