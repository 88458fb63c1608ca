/*
 * search.h - the search pool: the poll thread queues each record of the
 * search topic in its partition's queue; search.threads threads answer
 * them in parallel with the apply loop (each partition's registry has its
 * own rwlock, each index its own), taking the partitions in turn.
 *
 * - A request for a partition still loading stays in its queue, not in a
 *   thread, until the partition is ready or search.ready.timeout.ms has
 *   passed (`unavailable`): ready partitions are never starved by one
 *   that loads.
 * - A queue holds at most search.queue.max requests; then the partition is
 *   paused in the consumer and resumed when the queue is half empty, so
 *   a flood waits in Kafka, not in memory.
 * - A search offset is committed only once the request is answered or
 *   dropped.
 * - A search waits, bounded, for its min_offset (read-your-writes), then
 *   replies through the outbox.
 */
#ifndef VD_WORKER_SEARCH_H
#define VD_WORKER_SEARCH_H

#include "codec/codec.h"
#include "worker/worker_internal.h"

/* Starts search.threads threads, with one queue per partition. Errors:
 * VD_ERR_NOMEM. */
vd_err vd_search_start(vd_worker *w, vd_error *err);

/* Answers what is queued (partitions not ready get `unavailable` at
 * once), then stops and joins the threads. Idempotent; safe on a pool
 * never started. */
void vd_search_stop(vd_worker *w);

/* Frees the pool (after vd_search_stop). */
void vd_search_free(vd_worker *w);

/* Poll thread: queues m (the pool owns it now) in its partition's queue;
 * a full queue (search.queue.max) pauses the partition in the consumer. */
void vd_search_enqueue(vd_worker *w, rd_kafka_message_t *m);

/* Search threads (and tests): the reply to req, a search or info request
 * for an index of p, built in wr; the caller waited for p to be ready.
 * Takes p's registry read lock and the index's. Returns the builder's or
 * the index's error (err says why): VD_ERR_NOT_FOUND for an unknown
 * index, the index's search errors. */
vd_err vd_search_answer(vd_partition *p, const vd_request *req, vd_writer *wr, vd_error *err);

/* Poll thread: search partition id was assigned (again): its commit
 * bookkeeping starts over and a pause left from before is lifted. */
void vd_search_assigned(vd_worker *w, int32_t id);

/* Poll thread, every loop: resumes paused partitions whose queue drained
 * to half, and, once a second, commits each partition's search offsets up
 * to the oldest request not yet answered. */
void vd_search_poll(vd_worker *w);

#endif
