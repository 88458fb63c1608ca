/*
 * directory_internal.h - the layout of vd_directory and the functions its
 * files share; nothing outside src/directory/ includes this.
 *
 *   directory.c   open, connect, close; the up/down state; key names; stats
 *   pins.c        the poll thread: pin cache, look-ups, claims; the unpin queue
 *   publisher.c   the publisher thread: heartbeats, index entries, unpins
 *   fleet.c       the readers behind `vectorctl ls` and `status`
 *   conn.c        the Redis connection (the only file that includes hiredis)
 *   fields.c      the records as hash fields (pure)
 *   url.c         directory.redis_url (pure)
 *
 * Threads. A worker's directory is used by two: the poll thread (pin
 * look-ups, claims, unpin and publish hand-overs) and the publisher thread
 * that open starts. A reader (vectorctl) is used by its one thread and
 * starts none. The fields of vd_directory are grouped below by the thread
 * that owns them or the lock that guards them.
 */
#ifndef VD_DIRECTORY_INTERNAL_H
#define VD_DIRECTORY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "directory.h"
#include "url.h"

/* One cached pin (pins.c): a chain of a hash bucket. */
typedef struct vd_dir_pin_slot {
    char *name; /* owned, len bytes */
    size_t len;
    int32_t owner;  /* the partition it is pinned to */
    double expires; /* vd_dir_mono_s() after which Redis is asked again */
    struct vd_dir_pin_slot *next;
} vd_dir_pin_slot;

#define VD_DIR_PIN_BUCKETS 1024

/* A dropped index whose pin and entry are to be deleted. */
typedef struct vd_dir_unpin {
    char *name; /* owned, len bytes */
    size_t len;
    int32_t partition;
    uint64_t seq; /* vd_directory.seq when the drop was reported */
} vd_dir_unpin;

typedef struct vd_dir_unpin_list {
    vd_dir_unpin *v;
    size_t n, cap;
} vd_dir_unpin_list;

/* What the publisher last wrote for one index. */
typedef struct vd_dir_written {
    vd_dir_index ix; /* ix.name owned */
    double at;       /* vd_dir_mono_s() of the write */
    int conflict;    /* the pin names another partition */
} vd_dir_written;

struct vd_directory {
    /* Set by open or connect, read-only afterwards: any thread. */
    vd_redis_url url;
    char where[300]; /* vd_redis_url_where: for logs and messages */
    char *prefix;    /* "vectord:<group>:" */
    size_t prefix_len;
    char *worker_id; /* NULL for a reader */
    int timeout_ms, heartbeat_ms, ttl_ms, backoff_max_ms, pin_cache_ms;
    const vd_logger *lg;

    /* Whether Redis is up (directory.c), under st_mu. gen is atomic so that
     * each thread can see without the lock that its connection predates a
     * failure. */
    pthread_mutex_t st_mu;
    int state;       /* -1 not yet known, 0 down, 1 up */
    atomic_uint gen; /* bumped by every failure */
    double retry_at, backoff;

    /* The poll thread's, or a reader's (pins.c, fleet.c): no lock. */
    vd_dir_conn *pc;
    unsigned pc_gen; /* gen when pc was dialled */
    vd_dir_pin_slot *pins[VD_DIR_PIN_BUCKETS];
    size_t npins;

    /* Handed from the poll thread to the publisher, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled by close */
    int stop;
    uint64_t seq;         /* orders snapshots and drops as they came */
    vd_dir_snapshot snap; /* the newest snapshot not yet taken */
    uint64_t snap_seq;
    int have_snap;
    vd_dir_unpin_list unpins; /* drops not yet taken */

    /* The publisher thread itself: set by open, joined by close. */
    pthread_t thread;
    int has_thread;

    /* The publisher thread's (publisher.c): no lock. */
    vd_dir_conn *bc;
    unsigned bc_gen;     /* gen when bc was dialled */
    vd_dir_snapshot cur; /* the snapshot it writes from */
    uint64_t cur_seq;
    vd_dir_unpin_list recent; /* drops done, kept until a newer snapshot */
    vd_dir_written *wr;
    size_t nwr;

    /* For vd_directory_stats_get: atomic, bumped by either thread. */
    atomic_uint_fast64_t n_errors, n_heartbeats, n_pin_skipped, n_pin_hits, n_conflicts;
};

/* ---- directory.c ---- */

/* CLOCK_MONOTONIC in seconds. */
double vd_dir_mono_s(void);

/*
 * The key prefix + kind + name[0..len), e.g. "vectord:g:" "pin:" "docs";
 * *out_len its length. Returns a malloc'd string (caller frees), or NULL
 * when out of memory.
 */
char *vd_dir_key(const vd_directory *d, const char *kind, const char *name, size_t len,
                 size_t *out_len);

/*
 * A connect or command failed (why: the reason, logged, never the
 * password): counts the error, marks Redis down (directory_down is logged
 * on the transition), bumps gen so that both threads redial, and sets when
 * the publisher may try again (a doubling backoff up to
 * directory.retry.backoff.max.ms). Either thread.
 */
void vd_dir_mark_down(vd_directory *d, const char *why);

/* A command succeeded: Redis is up (directory_up is logged on the
 * transition) and the backoff restarts. Either thread. */
void vd_dir_mark_up(vd_directory *d);

/* The state (-1 not yet known, 0 down, 1 up) and, when retry_at is not
 * NULL, when the publisher may try again. Either thread. */
int vd_dir_state(vd_directory *d, double *retry_at);

/* ---- pins.c ---- */

/* Empties the pin cache. Poll thread, or close. */
void vd_dir_pins_clear(vd_directory *d);

/*
 * Reads the answer to GET of a pin or to a script that returns the pin:
 * *owner = the partition, or -1 for nil. Returns 0, or -1 (*owner
 * untouched) when the answer is neither nil nor a partition number.
 */
int vd_dir_pin_reply(const vd_dir_reply *r, int32_t *owner);

/* Appends a copy of name[0..len) to l. Returns 0, or -1 when out of
 * memory (l unchanged). The caller holds whatever lock guards l. */
int vd_dir_unpins_push(vd_dir_unpin_list *l, const char *name, size_t len, int32_t partition,
                       uint64_t seq);

/* Frees what l holds and empties it. */
void vd_dir_unpins_free(vd_dir_unpin_list *l);

/* ---- publisher.c ---- */

/* Starts the publisher thread (worker only). Returns 0, or -1 when the
 * thread cannot be created. */
int vd_dir_publisher_start(vd_directory *d);

/*
 * Stops the publisher thread when it runs: it writes the last snapshot and
 * deletes the heartbeat (each within the timeout when Redis is up), then
 * exits. Then frees what the thread owned (bc, cur, recent, wr). The
 * caller's thread, from close.
 */
void vd_dir_publisher_stop(vd_directory *d);

#endif
