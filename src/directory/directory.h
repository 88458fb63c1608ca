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
 * Every hiredis call of vectord is in conn.c (hiredis 0.14.1, the
 * blocking API, one connection per thread). Redis 4.0 or newer. The
 * records and their encoding are in fields.h; which file does what, and
 * which thread owns which state, is in directory_internal.h.
 */
#ifndef VD_DIRECTORY_DIRECTORY_H
#define VD_DIRECTORY_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "fields.h"
#include "common/service_error.h"

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
 * the connections and frees. The thread that opened d, once no other call
 * on d runs. NULL is accepted.
 */
void vd_directory_close(vd_directory *d);

/*
 * Hands the worker's current state to the publisher, which writes it at
 * its next tick (heartbeat every time; an index entry when it changed,
 * after a reconnect, or once per TTL). Takes ownership of what *snap holds
 * and clears *snap. Poll thread; never does I/O.
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
 * Redis answers. Poll thread; never does I/O.
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

/* Fills *out. Any thread (the /metrics handler): the counters are atomic. */
void vd_directory_stats_get(vd_directory *d, vd_directory_stats *out);

/*
 * Readers (vectorctl), on a directory from vd_directory_connect, from the
 * thread that connected it. Every index entry, sorted by name, with its
 * pin and whether its owner is alive; every live heartbeat, sorted by id.
 * *out is the caller's: free each element with vd_dir_*_clear, then the
 * array. Errors: VD_ERR_IO (Redis failed; the message says how; the
 * connection is closed and later calls fail too), VD_ERR_NOMEM.
 */
vd_err vd_directory_indexes(vd_directory *d, vd_dir_index **out, size_t *n, vd_error *err);
vd_err vd_directory_workers(vd_directory *d, vd_dir_worker **out, size_t *n, vd_error *err);

#endif
