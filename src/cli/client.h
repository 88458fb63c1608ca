/*
 * client.h - vectorctl's side of Kafka: one producer and one consumer on
 * the reply topic (every partition, from its end), requests with reply-to
 * and correlation-id headers, and the wait for their replies.
 *
 * Every function here exits the process (vc_die) on a Kafka failure: it
 * serves a one-shot command-line program, whose exit status is the result.
 */
#ifndef VD_CLI_CLIENT_H
#define VD_CLI_CLIENT_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct ctl {
    const char *brokers;
    const char *t_cmd, *t_search, *t_reply;
    char warm[256]; /* the topic the producer last looked up */
    int timeout_ms;
    int json_out;
    int no_wait; /* return once Kafka has the command; do not wait for vectord */
    size_t delivery_failures;
    const vd_config *cfg;
    rd_kafka_t *producer, *consumer;
    char run_id[32];
    uint64_t next_corr;
} ctl;

/* What the delivery report said about one record: the msg_opaque of
 * vc_produce_body, filled in when the producer is polled. */
typedef struct vc_delivery {
    int delivered;
    int32_t partition;
    int64_t offset;
} vc_delivery;

/* Seconds on the monotonic clock. */
double vc_now(void);

/* Creates the producer and the consumer for c->brokers and assigns every
 * partition of the reply topic from its end; exits 4 if Kafka or the reply
 * topic is not there within c->timeout_ms. */
void vc_connect(ctl *c);

/* Looks topic up once before the first record to it. */
void vc_warm_topic(ctl *c, const char *topic);

/* Sends body (copied) to topic keyed by index with the reply headers and a
 * new correlation id, written to corr; delivery (may be NULL) is filled in
 * by the delivery report. */
void vc_produce_body(ctl *c, const char *topic, const char *index, const char *body, size_t len,
                     char *corr, size_t corr_cap, vc_delivery *delivery);

/* Sends doc (consumed) as JSON; writes its correlation id. */
void vc_send_request(ctl *c, const char *topic, const char *index, json_t *doc, char *corr,
                     size_t corr_cap);

/* Sends doc (consumed) and returns its reply (the caller's reference), or
 * with --no-wait a made-up {"status":"ok","sent":true} once Kafka has it;
 * exits 3 if no reply comes within c->timeout_ms. */
json_t *vc_roundtrip(ctl *c, const char *topic, const char *index, json_t *doc);

/* 0 if reply says ok; else prints its error to stderr and returns 1. */
int vc_reply_failed(json_t *reply);

/* Prints reply (consumed) and returns the exit status it means. */
int vc_print_reply(ctl *c, json_t *reply);

/* --no-wait: every produced record must reach Kafka (acks=all), else exit. */
void vc_flush_or_die(ctl *c);

#endif
