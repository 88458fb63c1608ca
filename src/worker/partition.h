/*
 * partition.h - a commands partition: its registry of indexes and its
 * state machine (unassigned, loading, replaying, ready, refused). No
 * Kafka, no store: the rules here are what every other worker file relies
 * on, so they are testable alone (tests/unit/test_apply.c).
 *
 * Threads: every function that changes a partition is for the poll thread
 * only; vd_partition_wait is for search threads. The locks are described
 * in worker_internal.h.
 */
#ifndef VD_WORKER_PARTITION_H
#define VD_WORKER_PARTITION_H

#include "worker/worker_internal.h"

/* Initialises p as partition id, unassigned and empty. Never fails. */
void vd_partition_init(vd_partition *p, int32_t id);

/* Frees everything p owns (entries, indexes, locks). p must not be used
 * by any thread afterwards. */
void vd_partition_destroy(vd_partition *p);

/* Back to unassigned: every index freed, offsets forgotten, waiting
 * searches woken (they then answer `unavailable`). */
void vd_partition_reset(vd_partition *p);

/* The entry named name[0..len) or NULL. Callers hold p->lock (either
 * mode), or are the poll thread. */
vd_entry *vd_partition_find(vd_partition *p, const char *name, size_t len);

/*
 * Adds an entry for name that takes ownership of ix, with offsets -1 and
 * clean. The caller holds p->lock for writing. Returns the entry, or NULL
 * when out of memory (ix then still the caller's).
 */
vd_entry *vd_partition_add(vd_partition *p, const char *name, size_t len, vd_index *ix);

/* Removes e and frees its index. The caller holds p->lock for writing. */
void vd_partition_remove(vd_partition *p, vd_entry *e);

/* p's last consumed offset, for the poll thread (its only writer) and for
 * holders of p->mu: a relaxed load. Others load it with acquire
 * (worker_internal.h). */
static inline int64_t vd_partition_applied(vd_partition *p)
{
    return atomic_load_explicit(&p->applied, memory_order_relaxed);
}

/* Sets p's state and wakes its waiters. */
void vd_partition_set_state(vd_partition *p, vd_part_state state);

/* Records that offset was consumed; flips a replaying partition to ready
 * once it reaches the high watermark seen at assignment. */
void vd_partition_advance(vd_partition *p, int64_t offset);

/* p replays from start (where the consumer fetches from) up to hi: ready
 * at once when start >= hi, else replaying. */
void vd_partition_activate(vd_partition *p, int64_t start, int64_t hi);

/* Refuses p for the reason why (kept for /readyz and replies). */
void vd_partition_refuse(vd_partition *p, const char *why);

/*
 * Stops p at a command it could neither apply nor reject (VD_APPLY_FATAL,
 * apply.h): p is refused for why, and its indexes are freed (out of
 * memory: the memory goes back to the other partitions). A refused
 * partition applies, checkpoints and commits nothing more, so the command
 * and all after it stay in the log, uncommitted, for a restart or the next
 * owner, which reload the checkpoints and replay them. The caller does not
 * record the command as consumed. Poll thread.
 */
void vd_partition_stop(vd_partition *p, const char *why);

/* Copies the reason p is refused ("" when it is not) into buf. Any thread. */
void vd_partition_refused_why(vd_partition *p, char *buf, size_t cap);

/*
 * Search threads: waits until p is ready and has applied want_offset, at
 * most until deadline (vd_mono_s() seconds) or until it is unassigned
 * or refused. Returns 1 when ready, else 0; *state is the state seen last.
 */
int vd_partition_wait(vd_partition *p, int64_t want_offset, double deadline, vd_part_state *state);

/*
 * After a failed checkpoint or load: the next attempt waits base seconds,
 * doubling up to max, with +-25% jitter; sets p->backoff and p->retry_at
 * (now + the jittered backoff). jitter is a number in [0, 1].
 */
void vd_partition_backoff(vd_partition *p, double now, double base, double max, double jitter);

/* "unassigned", "loading", "replaying", "ready", "refused". */
const char *vd_part_state_name(vd_part_state s);

#endif
