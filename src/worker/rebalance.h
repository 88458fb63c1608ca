/*
 * rebalance.h - the consumer's rebalance callback: on assign, every
 * commands partition is reset, paused and its load submitted (load.h); on
 * revoke, loads are cancelled and each partition checkpointed and
 * committed (checkpoint.h) before it is reset. Both run on the poll
 * thread, inside rd_kafka_consumer_poll.
 */
#ifndef VD_WORKER_REBALANCE_H
#define VD_WORKER_REBALANCE_H

#include "worker/worker_internal.h"

/* The rebalance callback to set on the consumer's conf; opaque is the
 * worker. */
void vd_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *parts, void *opaque);

#endif
