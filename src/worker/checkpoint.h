/*
 * checkpoint.h - writing a partition's checkpoints, then committing
 * (docs/checkpoints.md, invariant 2: nothing is committed before all of it
 * is durable).
 *
 * A checkpoint goes in four steps, each in checkpoint.c:
 *   snapshot (poll thread)  which indexes are dirty, the manifest entries
 *                           of the clean ones, the old layouts' keys;
 *   write (store thread)    each dirty index serialised (under the
 *                           partition's apply_mu: commands of the
 *                           partition wait, held, see vd_worker_run) and
 *                           written in turn, one in memory at a time; then
 *                           the manifest under its offset; then the
 *                           garbage no readable manifest names;
 *   finish (poll thread)    written indexes marked clean, applied + 1
 *                           committed; on failure the old layouts' keys
 *                           come back and a retry is scheduled after the
 *                           backoff;
 *   policy (poll thread)    when to start one: checkpoint.max.pending
 *                           commands or checkpoint.interval.ms, at most one
 *                           in flight per partition.
 * Revoke and shutdown checkpoint synchronously (vd_checkpoint_now).
 */
#ifndef VD_WORKER_CHECKPOINT_H
#define VD_WORKER_CHECKPOINT_H

#include "worker/worker_internal.h"

/* Poll thread, every loop: settles finished checkpoints and starts the
 * ones the policy calls for. */
void vd_checkpoint_policy(vd_worker *w);

/*
 * Poll thread: a checkpoint of p now, waited for (revoke, shutdown), after
 * settling the one in flight. VD_OK also when there is nothing to write or
 * the partition must not write (loading, refused, fenced). Errors: what the
 * store returned, VD_ERR_UNAVAILABLE when fenced or the assignment is
 * lost, VD_ERR_NOMEM. err may be NULL.
 */
vd_err vd_checkpoint_now(vd_worker *w, vd_partition *p, const char *why, vd_error *err);

/* Poll thread: waits for p's checkpoint in flight, if any, and drops it
 * without a commit: the partition is no longer ours (its files are a
 * zombie's, which loading tolerates). The commands held for p are dropped
 * too, unapplied. */
void vd_checkpoint_discard(vd_worker *w, vd_partition *p);

#endif
