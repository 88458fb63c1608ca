/*
 * outbox.c - replies, acks and the DLQ (see outbox.h). Produced records
 * are fire and forget today: librdkafka retries them, and a failure to
 * enqueue is counted and logged.
 */
#include "worker/outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka.h"

void vd_outbox_init(vd_outbox *o, rd_kafka_t *producer, const char *t_dlq, const vd_logger *lg)
{
    memset(o, 0, sizeof *o);
    o->producer = producer;
    o->t_dlq = t_dlq;
    o->lg = lg;
    pthread_mutex_init(&o->warm_mu, NULL);
}

void vd_outbox_clear(vd_outbox *o)
{
    for (int i = 0; i < o->nwarm; i++) free(o->warm[i]);
    o->nwarm = 0;
    pthread_mutex_destroy(&o->warm_mu);
}

int vd_outbox_target(rd_kafka_message_t *m, vd_reply_to *r)
{
    size_t n;
    const char *v;
    r->topic[0] = '\0';
    r->partition = RD_KAFKA_PARTITION_UA;
    r->corr_len = 0;
    r->corr_name = "correlation-id";
    v = vd_kafka_header(m, "content-type", &n);
    r->ct = vd_content_type_parse(v, v ? n : 0);
    if (!vd_kafka_header_str(m, "reply-to", r->topic, sizeof r->topic) &&
        !vd_kafka_header_str(m, "kafka_replyTopic", r->topic, sizeof r->topic))
        return 0;
    if ((v = vd_kafka_header(m, "correlation-id", &n)) ||
        ((v = vd_kafka_header(m, "kafka_correlationId", &n)) &&
         (r->corr_name = "kafka_correlationId"))) {
        r->corr_len = n < sizeof r->corr ? n : sizeof r->corr;
        memcpy(r->corr, v, r->corr_len);
    }
    if ((v = vd_kafka_header(m, "kafka_replyPartition", &n))) {
        /* Spring sends a 4-byte big-endian int. */
        if (n == 4)
            r->partition = (int32_t)((uint32_t)(uint8_t)v[0] << 24 | (uint32_t)(uint8_t)v[1] << 16 |
                                     (uint32_t)(uint8_t)v[2] << 8 | (uint8_t)v[3]);
    }
    return r->topic[0] != '\0';
}

/* Looks a topic up before the first record to it, which would otherwise
 * wait up to 1 s for librdkafka's topic scan (a client's first search
 * answered a second late). The first 64 topics are remembered; after that,
 * no more lookups. */
static void warm_topic(vd_outbox *o, const char *topic)
{
    enum { cap = sizeof o->warm / sizeof o->warm[0] };
    pthread_mutex_lock(&o->warm_mu);
    int known = o->nwarm == cap;
    for (int i = 0; !known && i < o->nwarm; i++) known = strcmp(o->warm[i], topic) == 0;
    pthread_mutex_unlock(&o->warm_mu);
    if (known) return;
    vd_kafka_topic_warm(o->producer, topic, 2000);
    pthread_mutex_lock(&o->warm_mu);
    int dup = 0;
    for (int i = 0; i < o->nwarm; i++) dup |= strcmp(o->warm[i], topic) == 0;
    if (!dup && o->nwarm < cap && (o->warm[o->nwarm] = strdup(topic))) o->nwarm++;
    pthread_mutex_unlock(&o->warm_mu);
}

static void send_reply(vd_outbox *o, const vd_reply_to *r, const char *key, size_t key_len,
                       uint8_t *body, size_t len)
{
    warm_topic(o, r->topic);
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    if (r->corr_len) rd_kafka_header_add(h, r->corr_name, -1, r->corr, (ssize_t)r->corr_len);
    rd_kafka_header_add(h, "content-type", -1, vd_content_type_name(r->ct), -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        o->producer, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_PARTITION(r->partition),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(body, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h);
        free(body);
        o->n_replies_failed++;
        vd_log(o->lg, VD_LOG_WARN, "reply_failed", VD_LS("topic", r->topic),
               VD_LS("error", rd_kafka_err2str(e)));
    }
}

vd_writer *vd_outbox_writer(const vd_reply_to *r)
{
    vd_writer *wr = NULL;
    return vd_writer_new(&wr, r->ct) == VD_OK ? wr : NULL;
}

void vd_outbox_send(vd_outbox *o, const vd_reply_to *r, const char *key, size_t key_len,
                    vd_writer *wr, vd_err rc)
{
    uint8_t *body;
    size_t len;
    if (!rc && vd_writer_take(wr, &body, &len, NULL) == VD_OK)
        send_reply(o, r, key, key_len, body, len);
    else
        vd_log(o->lg, VD_LOG_ERROR, "reply_encode_failed", VD_LS("topic", r->topic));
    vd_writer_free(wr);
}

void vd_outbox_reply_error(vd_outbox *o, const vd_reply_to *r, const char *key, size_t key_len,
                           vd_err code, const char *msg)
{
    vd_writer *wr = vd_outbox_writer(r);
    if (wr) vd_outbox_send(o, r, key, key_len, wr, vd_reply_error(wr, code, msg));
}

void vd_outbox_ack(vd_outbox *o, rd_kafka_message_t *m, const vd_ack *a, int quiet)
{
    vd_reply_to r;
    if (quiet || !vd_outbox_target(m, &r)) return;
    vd_writer *wr = vd_outbox_writer(&r);
    if (wr) vd_outbox_send(o, &r, m->key, m->key_len, wr, vd_reply_ack(wr, a));
}

void vd_outbox_reject(vd_outbox *o, rd_kafka_message_t *m, vd_err code, const char *msg, int quiet)
{
    o->n_rejected++;
    if ((unsigned)code < VD_ERR__COUNT) o->rejected_by[code]++;
    char part_s[16], off_s[24];
    snprintf(part_s, sizeof part_s, "%" PRId32, m->partition);
    snprintf(off_s, sizeof off_s, "%" PRId64, m->offset);
    vd_log(o->lg, VD_LOG_WARN, "command_rejected", VD_LI("partition", m->partition),
           VD_LI("offset", m->offset), VD_LS("code", vd_err_code(code)), VD_LS("message", msg));
    if (quiet) return; /* already sent before a restart */
    rd_kafka_headers_t *orig = NULL, *h;
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(5);
    rd_kafka_header_add(h, "error-code", -1, vd_err_code(code), -1);
    rd_kafka_header_add(h, "error-message", -1, msg, -1);
    rd_kafka_header_add(h, "source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "source-partition", -1, part_s, -1);
    rd_kafka_header_add(h, "source-offset", -1, off_s, -1);
    warm_topic(o, o->t_dlq);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        o->producer, RD_KAFKA_V_TOPIC(o->t_dlq), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h);
        vd_log(o->lg, VD_LOG_ERROR, "dlq_failed", VD_LS("error", rd_kafka_err2str(e)));
    }
    vd_reply_to r;
    if (vd_outbox_target(m, &r)) vd_outbox_reply_error(o, &r, m->key, m->key_len, code, msg);
}
