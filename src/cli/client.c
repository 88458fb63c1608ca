/*
 * client.c - vectorctl's Kafka plumbing (see client.h).
 */
#include "cli/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "kafka/kafka.h"

double vc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    ctl *c = opaque;
    vc_delivery *d = m->_private;
    if (d && !m->err) {
        d->delivered = 1;
        d->partition = m->partition;
        d->offset = m->offset;
    }
    if (m->err) {
        c->delivery_failures++;
        fprintf(stderr, "vectorctl: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

void vc_connect(ctl *c)
{
    char errstr[512];
    vd_error err;
    rd_kafka_conf_t *pc, *cc;
    const char *pdef[] = {"partitioner", "murmur2_random", "linger.ms", "2", "acks", "all", NULL};
    const char *cdef[] = {
        "enable.auto.commit", "false", "enable.partition.eof", "false", "group.id",
        "vectorctl",          NULL};
    if (vd_kafka_conf(c->cfg, VD_KAFKA_PRODUCER, pdef, c->brokers, &pc, &err) ||
        vd_kafka_conf(c->cfg, VD_KAFKA_CONSUMER, cdef, c->brokers, &cc, &err))
        vc_die(VC_EXIT_USAGE, NULL, "%s", err.msg);
    rd_kafka_conf_set(pc, "log_level", "3", NULL, 0);
    rd_kafka_conf_set(cc, "log_level", "3", NULL, 0);
    rd_kafka_conf_set_opaque(pc, c);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    if (!(c->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr)))
        vc_die(VC_EXIT_KAFKA, NULL, "producer: %s", errstr);
    if (!(c->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr)))
        vc_die(VC_EXIT_KAFKA, NULL, "consumer: %s", errstr);
    rd_kafka_poll_set_consumer(c->consumer);
    /* Listen on every partition of the reply topic from its current end. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->consumer, c->t_reply, NULL);
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->consumer, 0, rkt, &md, c->timeout_ms);
    if (e)
        vc_die(VC_EXIT_KAFKA, NULL, "cannot reach Kafka at %s: %s", c->brokers,
               rd_kafka_err2str(e));
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0)
        vc_die(VC_EXIT_KAFKA, NULL,
               "reply topic %s does not exist: create it, or name another with "
               "--reply-topic",
               c->t_reply);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(c->consumer, c->t_reply, i, &lo, &hi, c->timeout_ms))
            vc_die(VC_EXIT_KAFKA, NULL, "reply topic %s: cannot read offsets", c->t_reply);
        rd_kafka_topic_partition_list_add(l, c->t_reply, i)->offset = hi;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(c->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    snprintf(c->run_id, sizeof c->run_id, "%lx-%lx", (long)getpid(), (long)time(NULL));
}

/* Looks topic up once before the first record to it: without it that
 * record waits for librdkafka's 1 s topic scan. */
void vc_warm_topic(ctl *c, const char *topic)
{
    if (strcmp(c->warm, topic) == 0) return;
    vd_kafka_topic_warm(c->producer, topic, c->timeout_ms);
    snprintf(c->warm, sizeof c->warm, "%s", topic);
}

/* Sends body to topic keyed by index with a new correlation id (written to
 * corr) and the reply headers; msg_opaque comes back in the delivery
 * report. */
void vc_produce_body(ctl *c, const char *topic, const char *index, const char *body, size_t len,
                     char *corr, size_t corr_cap, vc_delivery *delivery)
{
    snprintf(corr, corr_cap, "%s-%" PRIu64, c->run_id, c->next_corr++);
    vc_warm_topic(c, topic);
    rd_kafka_resp_err_t e;
    do {
        e = rd_kafka_producev(
            c->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(index, strlen(index)),
            RD_KAFKA_V_VALUE((void *)body, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(delivery), RD_KAFKA_V_HEADER("reply-to", c->t_reply, -1),
            RD_KAFKA_V_HEADER("correlation-id", corr, -1),
            RD_KAFKA_V_HEADER("content-type", "application/json", -1), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(c->producer, 50);
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (e) vc_die(VC_EXIT_KAFKA, NULL, "produce to %s: %s", topic, rd_kafka_err2str(e));
    rd_kafka_poll(c->producer, 0);
}

/* Sends doc (consumed) to topic keyed by index; writes its correlation id. */
void vc_send_request(ctl *c, const char *topic, const char *index, json_t *doc, char *corr,
                     size_t corr_cap)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
    vc_produce_body(c, topic, index, body, strlen(body), corr, corr_cap, NULL);
    free(body);
}

/*
 * Waits for replies to the n correlation ids in corrs (each NUL-terminated);
 * calls on_reply for each as it arrives. Returns the number not answered
 * before the deadline.
 */
typedef void (*reply_fn)(void *ctx, size_t which, json_t *reply);

static size_t await_replies(ctl *c, char **corrs, size_t n, double deadline, reply_fn fn, void *ctx)
{
    size_t left = n;
    char *done = calloc(n ? n : 1, 1);
    while (left && vc_now() < deadline) {
        rd_kafka_poll(c->producer, 0);
        if (c->delivery_failures)
            vc_die(VC_EXIT_KAFKA, NULL, "%zu requests were not delivered to Kafka",
                   c->delivery_failures);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->consumer, 50);
        if (!m) continue;
        char corr[128];
        if (!m->err && vd_kafka_header_str(m, "correlation-id", corr, sizeof corr)) {
            for (size_t i = 0; i < n; i++) {
                if (done[i] || strcmp(corrs[i], corr) != 0) continue;
                json_error_t je;
                json_t *doc = json_loadb(m->payload, m->len, 0, &je);
                if (!doc) vc_die(VC_EXIT_KAFKA, NULL, "unreadable reply: %s", je.text);
                done[i] = 1;
                left--;
                fn(ctx, i, doc);
                json_decref(doc);
                break;
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(done);
    return left;
}

int vc_reply_failed(json_t *reply)
{
    const char *status = json_string_value(json_object_get(reply, "status"));
    if (status && strcmp(status, "ok") == 0) return 0;
    json_t *e = json_object_get(reply, "error");
    fprintf(stderr, "vectorctl: error %s: %s\n",
            json_string_value(json_object_get(e, "code")) ?: "?",
            json_string_value(json_object_get(e, "message")) ?: "(no message)");
    return 1;
}

/* ---- one request, one reply ---- */

typedef struct single {
    json_t *reply;
} single;

static void keep_reply(void *ctx, size_t which, json_t *reply)
{
    (void)which;
    ((single *)ctx)->reply = json_incref(reply);
}

/* --no-wait: every produced command must reach Kafka (acks=all). */
void vc_flush_or_die(ctl *c)
{
    if (rd_kafka_flush(c->producer, c->timeout_ms) || rd_kafka_outq_len(c->producer))
        vc_die(VC_EXIT_TIMEOUT, NULL, "Kafka did not take the commands within %d ms",
               c->timeout_ms);
    if (c->delivery_failures)
        vc_die(VC_EXIT_KAFKA, NULL, "%zu commands were not delivered to Kafka",
               c->delivery_failures);
}

json_t *vc_roundtrip(ctl *c, const char *topic, const char *index, json_t *doc)
{
    char corr[128], *corrs[1] = {corr};
    single s = {NULL};
    vc_send_request(c, topic, index, doc, corr, sizeof corr);
    if (c->no_wait) {
        vc_flush_or_die(c);
        return json_pack("{s:s, s:b}", "status", "ok", "sent", 1);
    }
    if (await_replies(c, corrs, 1, vc_now() + c->timeout_ms / 1000.0, keep_reply, &s))
        vc_die(VC_EXIT_TIMEOUT, NULL,
               "no reply from vectord within %d ms (is a worker running and "
               "assigned the partition of \"%s\"?)",
               c->timeout_ms, index);
    return s.reply;
}

int vc_print_reply(ctl *c, json_t *reply)
{
    int failed = vc_reply_failed(reply);
    if (c->json_out || !failed) {
        char *text = json_dumps(reply, JSON_COMPACT);
        if (c->json_out || !failed) puts(text);
        free(text);
    }
    json_decref(reply);
    return failed ? VC_EXIT_ERR_REPLY : 0;
}
