/*
 * search.h - the search pool: the poll thread queues each record of the
 * search topic; search.threads threads answer them in parallel with the
 * apply loop (each partition's registry has its own rwlock, each index
 * its own). A search waits, bounded, for its partition to be ready and
 * for its min_offset (read-your-writes), then replies through the outbox.
 */
#ifndef VD_WORKER_SEARCH_H
#define VD_WORKER_SEARCH_H

#include "worker/worker_internal.h"

/* Starts search.threads threads. Errors: VD_ERR_NOMEM. */
vd_err vd_search_start(vd_worker *w, vd_error *err);

/* Answers what is queued, then stops and joins the threads. Idempotent. */
void vd_search_stop(vd_worker *w);

/* Poll thread: queues m (the queue owns it now) and remembers its offset
 * for the next search commit. */
void vd_search_enqueue(vd_worker *w, rd_kafka_message_t *m);

/* Poll thread: commits the search offsets consumed, once a second,
 * asynchronously (searches are answered at most once). */
void vd_search_commit(vd_worker *w);

#endif
