/*
 * worker.h - the vectord worker: one Kafka consumer in the group, the
 * per-partition apply loop for commands, a pool answering searches, and
 * the checkpointer that writes LHV1 files and manifests before it commits
 * (docs/worker.md, docs/checkpoints.md).
 */
#ifndef VD_WORKER_WORKER_H
#define VD_WORKER_WORKER_H

#include <signal.h>

#include "common/log.h"
#include "config/config.h"
#include "common/service_error.h"

typedef struct vd_worker vd_worker;

/*
 * Creates a worker from cfg (kept by reference: it must outlive the
 * worker). With no kafka.bootstrap.servers it starts the embedded mock
 * cluster. Connects, checks the topics (both exist, same partition
 * count) and subscribes. Errors: VD_ERR_CONFIG, VD_ERR_IO, VD_ERR_NOMEM,
 * each with a message that says what to fix.
 */
vd_err vd_worker_new(vd_worker **out, const vd_config *cfg, const vd_logger *lg, vd_error *err);

/* The bootstrap address in use (the mock cluster's in embedded mode). */
const char *vd_worker_bootstrap(const vd_worker *w);

/*
 * Runs until *stop becomes non-zero, then shuts down in order: stop
 * fetching, finish in-flight searches, checkpoint, commit, close the
 * consumer, flush the producer. Returns VD_OK or the error that stopped it.
 */
vd_err vd_worker_run(vd_worker *w, volatile sig_atomic_t *stop, vd_error *err);

/* Frees the worker. NULL is accepted. */
void vd_worker_free(vd_worker *w);

#endif
