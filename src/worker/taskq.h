/*
 * taskq.h - a queue of tasks run one at a time, in submission order, by
 * one thread of its own. It knows nothing of the worker: the worker's
 * store thread is one (checkpoints and loads, so that neither the poll
 * thread nor the rebalance callback waits for the store).
 *
 * A task is a struct the caller embeds first in its own job struct. The
 * submitter collects it once done (vd_taskq_done) and frees it itself; a
 * task nobody will collect is cancelled (vd_taskq_cancel): if it has not
 * started it never runs, and the queue's thread frees it; if it is
 * running it may look at vd_taskq_cancelled to stop early.
 *
 * Threads: submit, done, cancel and free from one owning thread (the poll
 * thread); run and cancelled on the queue's thread.
 */
#ifndef VD_WORKER_TASKQ_H
#define VD_WORKER_TASKQ_H

#include "vectord/error.h"

typedef struct vd_taskq vd_taskq;

typedef struct vd_task {
    /* Runs on the queue's thread; ctx is the queue's (vd_taskq_new). */
    void (*run)(void *ctx, struct vd_task *t);
    /* Frees the task (called by the queue for a cancelled task). */
    void (*free)(struct vd_task *t);
    /* The queue's, under its lock. */
    int done, cancelled, detached;
    struct vd_task *next;
} vd_task;

/* Starts a queue whose tasks run with ctx. Errors: VD_ERR_NOMEM (memory or
 * the thread). *out is untouched on failure. */
vd_err vd_taskq_new(vd_taskq **out, void *ctx, vd_error *err);

/* Runs what is queued and not cancelled, then stops the thread and frees
 * the queue. Tasks that are neither done nor cancelled must not be
 * submitted afterwards. NULL is accepted. */
void vd_taskq_free(vd_taskq *q);

/* Queues t (run and free set by the caller; the rest is the queue's). */
void vd_taskq_submit(vd_taskq *q, vd_task *t);

/* Queues t for a run nobody collects: the queue frees it once it ran
 * (or at vd_taskq_free). The caller must not touch t afterwards. */
void vd_taskq_submit_detached(vd_taskq *q, vd_task *t);

/* Whether t has run (or was skipped after a cancel); wait: block until so. */
int vd_taskq_done(vd_taskq *q, vd_task *t, int wait);

/* Gives t up: freed now when done, else by the queue once it is. The
 * caller must not touch t afterwards. */
void vd_taskq_cancel(vd_taskq *q, vd_task *t);

/* For a running task: whether it was given up (it may stop early). */
int vd_taskq_cancelled(vd_taskq *q, vd_task *t);

#endif
