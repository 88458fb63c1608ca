/*
 * outbox.h - everything the worker produces: replies to searches, acks of
 * commands, error replies, and rejected commands to the DLQ
 * (schemas/messages.md). One place for the reply-topic policy and the
 * delivery rules:
 *
 * - Replies never go to the worker's own commands, search or DLQ topics
 *   (an ack of a `drop` produced to the commands topic would decode as a
 *   `drop`), and, with reply.topics.allow, only to topics under one of its
 *   prefixes. A refused reply is logged and counted, never produced.
 * - The producer never creates topics (allow.auto.create.topics=false).
 * - A new reply topic is looked up on the outbox's own thread, so an
 *   unknown topic never stalls the thread that replies.
 * - DLQ records are tracked until the broker acknowledges them: a
 *   partition's checkpoint may not cover a rejected command whose DLQ
 *   record is not acknowledged (vd_outbox_dlq_oldest). A record the broker
 *   refuses as too large is produced again without its value (header
 *   `value-omitted`); any other failure is retried with backoff.
 *
 * Threads: replies from any thread (the producer is thread-safe and the
 * topic cache has its own lock). The DLQ functions, vd_outbox_poll and
 * vd_outbox_delivered are the poll thread's: delivery reports are served
 * by rd_kafka_poll/flush on the producer, which only the poll thread
 * calls.
 */
#ifndef VD_WORKER_OUTBOX_H
#define VD_WORKER_OUTBOX_H

#include "codec/codec.h"
#include "worker/worker_internal.h"

typedef struct vd_outbox_opts {
    rd_kafka_t *producer; /* borrowed */
    const vd_logger *lg;
    const char *own[3]; /* the commands, search and DLQ topics (borrowed) */
    const char *allow;  /* reply.topics.allow: comma-separated prefixes ("": any) */
    int32_t partitions; /* of the commands topic: DLQ tracking per partition */
    double retry_max_s; /* the longest delay between DLQ retries */
} vd_outbox_opts;

/*
 * Opens the outbox o (zeroed by the caller) on the worker's producer,
 * whose delivery reports must reach vd_outbox_delivered.
 * Errors: VD_ERR_CONFIG (reply.topics.allow has an empty prefix),
 * VD_ERR_NOMEM.
 */
vd_err vd_outbox_open(vd_outbox *o, const vd_outbox_opts *opts, vd_error *err);

/* Frees what o holds. o may be zeroed and never opened. */
void vd_outbox_close(vd_outbox *o);

/* Why a reply to topic would be refused. */
typedef enum vd_reply_policy {
    VD_REPLY_ALLOWED = 0,
    VD_REPLY_OWN_TOPIC,   /* the worker's commands, search or DLQ topic */
    VD_REPLY_NOT_ALLOWED, /* outside reply.topics.allow */
    VD_REPLY__COUNT
} vd_reply_policy;

/* The policy for a reply to topic (pure). */
vd_reply_policy vd_outbox_policy(const vd_outbox *o, const char *topic);

/* "allowed", "own_topic", "not_allowed" (the metric's label). */
const char *vd_reply_policy_name(vd_reply_policy p);

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
 * reply builder's result) is VD_OK and the policy allows the topic; else
 * logs why not. Frees wr.
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
 * source-topic, -partition and -offset (tracked until acknowledged), and
 * answered with the error when it asked for a reply. Poll thread.
 */
void vd_outbox_reject(vd_outbox *o, rd_kafka_message_t *m, vd_err code, const char *msg, int quiet);

/* Poll thread: the smallest source offset of partition whose DLQ record
 * is not acknowledged yet, or INT64_MAX when none is. */
int64_t vd_outbox_dlq_oldest(const vd_outbox *o, int32_t partition);

/* Poll thread: forgets partition's DLQ records in flight (it was revoked:
 * the next owner replays them); late reports about them are ignored. */
void vd_outbox_dlq_forget(vd_outbox *o, int32_t partition);

/* Poll thread: produces the DLQ retries that are due. */
void vd_outbox_poll(vd_outbox *o);

/* What the producer's delivery report callback (rd_kafka_conf_set_dr_msg_cb)
 * calls for every record, with the outbox as opaque. */
void vd_outbox_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

#endif
