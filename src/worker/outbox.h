/*
 * outbox.h - everything the worker produces: replies to searches, acks of
 * commands, error replies, and rejected commands to the DLQ
 * (schemas/messages.md). One place, so the reply-topic policy and the
 * delivery rules live together.
 *
 * Threads: any (the poll thread acks and rejects, search threads reply);
 * the producer is thread-safe and the topic cache has its own lock.
 */
#ifndef VD_WORKER_OUTBOX_H
#define VD_WORKER_OUTBOX_H

#include "codec/codec.h"
#include "worker/worker_internal.h"

/* Initialises o for producer (borrowed; may be NULL and set in
 * o->producer before the first record) and the DLQ topic t_dlq (borrowed:
 * it must outlive o). Never fails. */
void vd_outbox_init(vd_outbox *o, rd_kafka_t *producer, const char *t_dlq, const vd_logger *lg);

/* Frees the topic cache. */
void vd_outbox_clear(vd_outbox *o);

/* Where a request wants its reply: its reply headers, copied. */
typedef struct vd_reply_to {
    char topic[256];
    int32_t partition; /* RD_KAFKA_PARTITION_UA unless kafka_replyPartition */
    char corr[256];
    size_t corr_len;
    const char *corr_name; /* the correlation header's name, echoed */
    vd_content_type ct;    /* the request's content type */
} vd_reply_to;

/*
 * Reads m's reply-to (or kafka_replyTopic), correlation-id (or
 * kafka_correlationId), kafka_replyPartition and content-type headers into
 * *r. Returns 1 when m asked for a reply, else 0 (r->ct is set either way).
 */
int vd_outbox_target(rd_kafka_message_t *m, vd_reply_to *r);

/* A writer for one reply in r's content type, or NULL (out of memory).
 * The caller passes it to vd_outbox_send, which frees it. */
vd_writer *vd_outbox_writer(const vd_reply_to *r);

/*
 * Sends what wr holds to r's topic, keyed by key[0..key_len), when rc (the
 * reply builder's result) is VD_OK; else logs that the reply could not be
 * encoded. Frees wr.
 */
void vd_outbox_send(vd_outbox *o, const vd_reply_to *r, const char *key, size_t key_len,
                    vd_writer *wr, vd_err rc);

/* An error reply {status: "error", error: {code, message}} to r. */
void vd_outbox_reply_error(vd_outbox *o, const vd_reply_to *r, const char *key, size_t key_len,
                           vd_err code, const char *msg);

/* The ack of applied command m, when m asked for a reply and quiet is 0
 * (quiet: the ack was sent before a restart). */
void vd_outbox_ack(vd_outbox *o, rd_kafka_message_t *m, const vd_ack *a, int quiet);

/*
 * Rejected command m: counted by code, logged, and unless quiet copied to
 * the DLQ with its key, value and headers plus error-code, error-message,
 * source-topic, -partition and -offset, and answered with the error when it
 * asked for a reply.
 */
void vd_outbox_reject(vd_outbox *o, rd_kafka_message_t *m, vd_err code, const char *msg, int quiet);

#endif
