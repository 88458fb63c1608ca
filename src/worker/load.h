/*
 * load.h - loading a partition at assignment: its checkpoints are read on
 * the store thread, then the poll thread installs the indexes, moves the
 * consumer to the start offset and resumes (docs/checkpoints.md).
 *
 * The steps, each in load.c:
 *   submit (poll thread)   the partition is loading and paused; a job goes
 *                          to the store thread;
 *   load (store thread)    the log's watermarks, the manifest, each index
 *                          file read and decoded; the outcome is decided by
 *                          the pure rules below;
 *   finish (poll thread)   the indexes go into the registry and the start
 *                          offset is fixed, or a retry is scheduled, or the
 *                          partition is refused;
 *   activate (poll thread) seek to the start, replaying or ready, resume.
 * A store error leaves the partition loading and paused, and the load is
 * tried again after the backoff; partitions already loaded keep applying
 * and answering meanwhile.
 */
#ifndef VD_WORKER_LOAD_H
#define VD_WORKER_LOAD_H

#include "worker/worker_internal.h"

/* ---- The decisions (pure; tests/unit/test_load.c) ---- */

typedef enum vd_load_result {
    VD_LOAD_OK,
    VD_LOAD_AGAIN,  /* the store or the moment failed: retry after the backoff */
    VD_LOAD_REFUSED /* the data cannot be trusted: refuse the partition */
} vd_load_result;

/* What a load that failed with rc means: VD_LOAD_AGAIN for io_error,
 * timeout and out_of_memory, VD_LOAD_REFUSED for anything else (a corrupt
 * or unsupported file, another cluster's offsets); VD_LOAD_OK for VD_OK. */
vd_load_result vd_load_classify(vd_err rc);

/*
 * Whether a manifest written against Kafka cluster manifest_cluster ("":
 * unknown, an older manifest) may be used by a worker on cluster. Returns
 * VD_OK with *rebase 0 when it may; in embedded mode (a new mock cluster at
 * every start) VD_OK with *rebase 1: keep the indexes, forget their offsets
 * and apply the new log on top. Errors: VD_ERR_UNAVAILABLE naming both
 * clusters.
 */
vd_err vd_load_check_cluster(const char *manifest_cluster, const char *cluster, int embedded,
                             int *rebase, vd_error *err);

/*
 * The offset replay starts at. With a manifest: manifest_start (what
 * vd_manifest_start gave). Without one: a brand-new group starts at the
 * log's start lo; a committed offset (>= 0) without a manifest means the
 * store lost its objects: replay starts at committed and *manifest_missing
 * is set to 1 (else 0), for a warning.
 */
int64_t vd_load_start(int has_manifest, int64_t manifest_start, int64_t committed, int64_t lo,
                      int *manifest_missing);

/* ---- The steps (poll thread) ---- */

/* Queues a load of p (p is loading). Out of memory: scheduled again. */
void vd_load_submit(vd_worker *w, vd_partition *p);

/* Gives up p's load in flight, if any (p is revoked or assigned again). */
void vd_load_cancel(vd_worker *w, vd_partition *p);

/*
 * Collects finished loads, starts those due (again), and moves each loaded
 * partition to its start offset, activates and resumes it; a failed seek
 * is tried again 0.2 s later. Returns whether a load is in flight or due,
 * so the poll loop can look again soon.
 */
int vd_load_poll(vd_worker *w);

/* Pauses (pause 1) or resumes commands partition id in the consumer. */
void vd_load_pause(vd_worker *w, int32_t id, int pause);

#endif
