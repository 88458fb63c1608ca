/*
 * outbox.c - replies, acks and the DLQ (see outbox.h).
 *
 * Design note: a produced record's msg_opaque says what it is, so the
 * delivery report needs no allocation per record: NULL for a reply, or the
 * DLQ tag (bit 0 set) with its attempt and the partition's epoch; a DLQ
 * record's source partition and offset are read back from its own
 * source-partition / source-offset headers.
 */
#include "worker/outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "kafka/kafka.h"
#include "worker/taskq.h"

/* A DLQ record to produce again (poll thread). Owns its copies. */
typedef struct vd_dlq_retry {
    struct vd_dlq_retry *next;
    int32_t partition;
    int64_t offset;
    uint32_t epoch;
    int attempts;
    double due;
    char *key;
    size_t key_len;
    void *value; /* NULL when omitted */
    size_t len;
    rd_kafka_headers_t *h;
} dlq_retry;

/* The msg_opaque of the reply_too_large error sent in place of a reply. */
#define FALLBACK_TAG ((void *)(uintptr_t)2u)

/* A DLQ record's msg_opaque: bit 0 set, its attempt in bits 1-7, the
 * partition's epoch above. */
#define DLQ_TAG(epoch, attempt)                                                                    \
    ((void *)(uintptr_t)(((uintptr_t)(epoch) << 8) | ((uintptr_t)((attempt)&0x7f) << 1) | 1u))

static void retry_free(dlq_retry *r)
{
    if (!r) return;
    free(r->key);
    free(r->value);
    if (r->h) rd_kafka_headers_destroy(r->h);
    free(r);
}

/* ------------------------------------------------------------------ */
/* Opening, the policy. */

static vd_err parse_allow(vd_outbox *o, const char *list, vd_error *err)
{
    if (!list || !*list) return VD_OK;
    size_t n = 1;
    for (const char *c = list; *c; c++) n += *c == ',';
    if (!(o->allow = calloc(n, sizeof *o->allow)))
        return vd_error_set(err, VD_ERR_NOMEM, "outbox: out of memory");
    const char *s = list;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(s, ',');
        if (!end) end = s + strlen(s);
        const char *a = s, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (a == b)
            return vd_error_set(err, VD_ERR_CONFIG,
                                "reply.topics.allow: prefix %zu is empty (a comma-separated list "
                                "of topic-name prefixes)",
                                i + 1);
        if (!(o->allow[o->nallow] = strndup(a, (size_t)(b - a))))
            return vd_error_set(err, VD_ERR_NOMEM, "outbox: out of memory");
        o->nallow++;
        s = *end ? end + 1 : end;
    }
    return VD_OK;
}

vd_err vd_outbox_open(vd_outbox *o, const vd_outbox_opts *opts, vd_error *err)
{
    o->producer = opts->producer;
    o->lg = opts->lg;
    memcpy(o->own, opts->own, sizeof o->own);
    o->retry_max_s = opts->retry_max_s;
    pthread_mutex_init(&o->warm_mu, NULL);
    o->open = 1;
    vd_err rc;
    if ((rc = parse_allow(o, opts->allow, err))) return rc;
    if (opts->partitions > 0 && !(o->dlq = calloc((size_t)opts->partitions, sizeof *o->dlq)))
        return vd_error_set(err, VD_ERR_NOMEM, "outbox: out of memory");
    o->nparts = opts->partitions;
    return vd_taskq_new(&o->warmer, o, err);
}

void vd_outbox_close(vd_outbox *o)
{
    if (!o->open) return;
    o->closing = 1;
    vd_taskq_free(o->warmer); /* first: its tasks use the producer */
    for (size_t i = 0; i < o->nallow; i++) free(o->allow[i]);
    free(o->allow);
    for (int32_t i = 0; i < o->nparts; i++) free(o->dlq[i].offs);
    free(o->dlq);
    while (o->retries) {
        dlq_retry *r = o->retries;
        o->retries = r->next;
        retry_free(r);
    }
    for (int i = 0; i < o->nwarm; i++) free(o->warm[i]);
    pthread_mutex_destroy(&o->warm_mu);
    memset(o, 0, sizeof *o);
}

vd_reply_policy vd_outbox_policy(const vd_outbox *o, const char *topic)
{
    for (size_t i = 0; i < sizeof o->own / sizeof o->own[0]; i++)
        if (o->own[i] && strcmp(o->own[i], topic) == 0) return VD_REPLY_OWN_TOPIC;
    if (!o->nallow) return VD_REPLY_ALLOWED;
    for (size_t i = 0; i < o->nallow; i++)
        if (strncmp(topic, o->allow[i], strlen(o->allow[i])) == 0) return VD_REPLY_ALLOWED;
    return VD_REPLY_NOT_ALLOWED;
}

const char *vd_reply_policy_name(vd_reply_policy p)
{
    static const char *const names[] = {"allowed", "own_topic", "not_allowed"};
    return (unsigned)p < VD_REPLY__COUNT ? names[p] : "unknown";
}

/* ------------------------------------------------------------------ */
/* Replies. */

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

typedef struct warm_task {
    vd_task t; /* first */
    vd_outbox *o;
    char topic[256];
} warm_task;

static void warm_run(void *ctx, vd_task *t)
{
    vd_outbox *o = ctx;
    if (!o->closing) vd_kafka_topic_warm(o->producer, ((warm_task *)t)->topic, 2000);
}

static void warm_free(vd_task *t)
{
    free(t);
}

/* Has topic looked up, on the outbox's thread, before the first record to
 * it, which would otherwise wait up to 1 s for librdkafka's topic scan (a
 * client's first search answered a second late). The record is produced
 * at once meanwhile: it leaves as soon as the topic is known. The first 64
 * topics are remembered; after that, no more look-ups. Never blocks. */
static void warm_topic(vd_outbox *o, const char *topic)
{
    enum { cap = sizeof o->warm / sizeof o->warm[0] };
    pthread_mutex_lock(&o->warm_mu);
    int known = o->nwarm == cap;
    for (int i = 0; !known && i < o->nwarm; i++) known = strcmp(o->warm[i], topic) == 0;
    warm_task *t = NULL;
    if (!known && (o->warm[o->nwarm] = strdup(topic)) && (t = calloc(1, sizeof *t))) {
        o->nwarm++;
        t->t.run = warm_run;
        t->t.free = warm_free;
        t->o = o;
        snprintf(t->topic, sizeof t->topic, "%s", topic);
    } else if (!known) {
        free(o->warm[o->nwarm]);
    }
    pthread_mutex_unlock(&o->warm_mu);
    if (t) vd_taskq_submit_detached(o->warmer, &t->t);
}

static void too_large(vd_outbox *o, const char *topic, int32_t partition, const char *key,
                      size_t key_len, const char *corr_name, const void *corr, size_t corr_len,
                      vd_content_type ct, size_t len, rd_kafka_resp_err_t e);

static void send_reply(vd_outbox *o, const vd_reply_to *r, const char *key, size_t key_len,
                       uint8_t *body, size_t len)
{
    vd_reply_policy pol = vd_outbox_policy(o, r->topic);
    if (pol != VD_REPLY_ALLOWED) {
        free(body);
        o->n_replies_refused[pol]++;
        vd_log(o->lg, VD_LOG_WARN, "reply_refused", VD_LS("topic", r->topic),
               VD_LS("reason", vd_reply_policy_name(pol)));
        return;
    }
    warm_topic(o, r->topic);
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    if (r->corr_len) rd_kafka_header_add(h, r->corr_name, -1, r->corr, (ssize_t)r->corr_len);
    rd_kafka_header_add(h, "content-type", -1, vd_content_type_name(r->ct), -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        o->producer, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_PARTITION(r->partition),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(body, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (!e) return;
    rd_kafka_headers_destroy(h);
    free(body);
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        too_large(o, r->topic, r->partition, key, key_len, r->corr_name, r->corr, r->corr_len,
                  r->ct, len, e);
        return;
    }
    o->n_replies_failed++;
    vd_log(o->lg, VD_LOG_WARN, "reply_failed", VD_LS("topic", r->topic),
           VD_LS("error", rd_kafka_err2str(e)));
}

/* A reply of len bytes was refused as too large (e): a small
 * reply_too_large error goes in its place, once (its own failure is only
 * counted). */
static void too_large(vd_outbox *o, const char *topic, int32_t partition, const char *key,
                      size_t key_len, const char *corr_name, const void *corr, size_t corr_len,
                      vd_content_type ct, size_t len, rd_kafka_resp_err_t e)
{
    o->n_replies_too_large++;
    vd_log(o->lg, VD_LOG_WARN, "reply_too_large", VD_LS("topic", topic), VD_LI("bytes", len),
           VD_LS("error", rd_kafka_err2str(e)));
    char msg[256];
    snprintf(msg, sizeof msg,
             "the reply (%zu bytes) is larger than topic %.60s or the producer accepts: ask for "
             "fewer hits or no metadata",
             len, topic);
    vd_writer *wr = NULL;
    uint8_t *body;
    size_t blen;
    if (vd_writer_new(&wr, ct) || vd_reply_error(wr, VD_ERR_REPLY_TOO_LARGE, msg) ||
        vd_writer_take(wr, &body, &blen, NULL)) {
        vd_writer_free(wr);
        return;
    }
    vd_writer_free(wr);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    if (corr_len) rd_kafka_header_add(h, corr_name, -1, corr, (ssize_t)corr_len);
    rd_kafka_header_add(h, "content-type", -1, vd_content_type_name(ct), -1);
    if (rd_kafka_producev(o->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(body, blen),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_HEADERS(h),
                          RD_KAFKA_V_OPAQUE(FALLBACK_TAG), RD_KAFKA_V_END)) {
        rd_kafka_headers_destroy(h);
        free(body);
        o->n_replies_failed++;
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

/* ------------------------------------------------------------------ */
/* The DLQ. */

static vd_dlq_track *track_of(const vd_outbox *o, int32_t partition)
{
    return partition >= 0 && partition < o->nparts ? &o->dlq[partition] : NULL;
}

static void track_add(vd_outbox *o, int32_t partition, int64_t offset)
{
    vd_dlq_track *t = track_of(o, partition);
    if (!t) return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        int64_t *offs = realloc(t->offs, cap * sizeof *offs);
        if (!offs) return; /* untracked: the gate cannot hold for it */
        t->offs = offs;
        t->cap = cap;
    }
    t->offs[t->n++] = offset;
}

static void track_done(vd_outbox *o, int32_t partition, int64_t offset)
{
    vd_dlq_track *t = track_of(o, partition);
    for (size_t i = 0; t && i < t->n; i++) {
        if (t->offs[i] != offset) continue;
        memmove(t->offs + i, t->offs + i + 1, (t->n - i - 1) * sizeof *t->offs);
        t->n--;
        return;
    }
}

int64_t vd_outbox_dlq_oldest(const vd_outbox *o, int32_t partition)
{
    const vd_dlq_track *t = track_of(o, partition);
    return t && t->n ? t->offs[0] : INT64_MAX;
}

void vd_outbox_dlq_forget(vd_outbox *o, int32_t partition)
{
    vd_dlq_track *t = track_of(o, partition);
    if (!t) return;
    t->epoch++;
    t->n = 0;
    for (dlq_retry **pr = &o->retries; *pr;) {
        dlq_retry *r = *pr;
        if (r->partition == partition) {
            *pr = r->next;
            retry_free(r);
        } else {
            pr = &r->next;
        }
    }
}

/* Produces a DLQ record (value NULL: omitted); takes h. Returns the
 * producer's error (h then still the caller's). */
static rd_kafka_resp_err_t dlq_produce(vd_outbox *o, const void *key, size_t key_len,
                                       const void *value, size_t len, rd_kafka_headers_t *h,
                                       uint32_t epoch, int attempt)
{
    return rd_kafka_producev(o->producer, RD_KAFKA_V_TOPIC(o->own[2]), RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE((void *)value, len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                             RD_KAFKA_V_OPAQUE(DLQ_TAG(epoch, attempt)), RD_KAFKA_V_END);
}

/* A DLQ record of partition/offset failed with e: produced again later,
 * without its value when the broker or the producer found it too large.
 * Takes h. */
static void dlq_failed(vd_outbox *o, int32_t partition, int64_t offset, uint32_t epoch,
                       int attempts, const void *key, size_t key_len, const void *value, size_t len,
                       rd_kafka_headers_t *h, rd_kafka_resp_err_t e)
{
    o->n_dlq_failures++;
    int too_large =
        e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
    dlq_retry *r = calloc(1, sizeof *r);
    if (r) {
        r->partition = partition;
        r->offset = offset;
        r->epoch = epoch;
        r->attempts = attempts + 1;
        r->h = h;
        h = NULL;
        double backoff = 0.1 * (double)(1 << (r->attempts < 10 ? r->attempts : 10));
        if (backoff > o->retry_max_s) backoff = o->retry_max_s;
        r->due = vd_mono_s() + (too_large && value ? 0 : backoff);
        if (too_large && value) {
            char note[96];
            snprintf(note, sizeof note, "%zu bytes: too large for the DLQ topic (%s)", len,
                     rd_kafka_err2name(e));
            rd_kafka_header_add(r->h, "value-omitted", -1, note, -1);
            value = NULL;
            len = 0;
        }
        if ((key_len && !(r->key = malloc(key_len))) || (len && !(r->value = malloc(len)))) {
            retry_free(r);
            r = NULL;
        } else {
            if (key_len) memcpy(r->key, key, key_len);
            if (len) memcpy(r->value, value, len);
            r->key_len = key_len;
            r->len = len;
            r->next = o->retries;
            o->retries = r;
        }
    }
    if (h) rd_kafka_headers_destroy(h);
    vd_log(o->lg, VD_LOG_ERROR, "dlq_failed", VD_LI("partition", partition),
           VD_LI("offset", offset), VD_LI("attempt", attempts + 1),
           VD_LS("error", rd_kafka_err2str(e)),
           VD_LS("then", !r          ? "out of memory: not retried, the partition stays uncommitted"
                         : too_large ? "produced again without its value"
                                     : "retried"));
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
    warm_topic(o, o->own[2]);
    vd_dlq_track *t = track_of(o, m->partition);
    uint32_t epoch = t ? t->epoch : 0;
    track_add(o, m->partition, m->offset);
    rd_kafka_resp_err_t e = dlq_produce(o, m->key, m->key_len, m->payload, m->len, h, epoch, 0);
    if (e)
        dlq_failed(o, m->partition, m->offset, epoch, 0, m->key, m->key_len, m->payload, m->len, h,
                   e);
    vd_reply_to r;
    if (vd_outbox_target(m, &r)) vd_outbox_reply_error(o, &r, m->key, m->key_len, code, msg);
}

void vd_outbox_poll(vd_outbox *o)
{
    double now = vd_mono_s();
    dlq_retry *due = NULL;
    for (dlq_retry **pr = &o->retries; *pr;) {
        dlq_retry *r = *pr;
        if (r->due <= now) {
            *pr = r->next;
            r->next = due;
            due = r;
        } else {
            pr = &r->next;
        }
    }
    while (due) {
        dlq_retry *r = due;
        due = r->next;
        vd_dlq_track *t = track_of(o, r->partition);
        if (t && t->epoch == r->epoch) {
            rd_kafka_resp_err_t e =
                dlq_produce(o, r->key, r->key_len, r->value, r->len, r->h, r->epoch, r->attempts);
            if (e)
                dlq_failed(o, r->partition, r->offset, r->epoch, r->attempts, r->key, r->key_len,
                           r->value, r->len, r->h, e);
            r->h = NULL; /* the producer's, or the new retry's */
        }
        retry_free(r);
    }
}

/* The int in header name of h, or -1. */
static int64_t header_int(rd_kafka_headers_t *h, const char *name)
{
    const void *v;
    size_t n;
    char buf[24];
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) || n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

void vd_outbox_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    vd_outbox *o = opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    rd_kafka_headers_t *h = NULL;
    if (!(tag & 1u)) { /* a reply */
        if (!m->err) return;
        if ((m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
             m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) &&
            tag != (uintptr_t)FALLBACK_TAG) {
            const void *corr = NULL, *ct = NULL;
            size_t corr_len = 0, ct_len = 0;
            const char *corr_name = "correlation-id";
            rd_kafka_message_headers(m, &h);
            if (h && rd_kafka_header_get_last(h, corr_name, &corr, &corr_len) &&
                !rd_kafka_header_get_last(h, "kafka_correlationId", &corr, &corr_len))
                corr_name = "kafka_correlationId";
            if (h) rd_kafka_header_get_last(h, "content-type", &ct, &ct_len);
            too_large(o, rd_kafka_topic_name(m->rkt), m->partition, m->key, m->key_len, corr_name,
                      corr, corr ? corr_len : 0, vd_content_type_parse(ct, ct ? ct_len : 0), m->len,
                      m->err);
            return;
        }
        o->n_replies_failed++;
        vd_log(o->lg, VD_LOG_WARN, "reply_failed", VD_LS("topic", rd_kafka_topic_name(m->rkt)),
               VD_LS("error", rd_kafka_err2str(m->err)));
        return;
    }
    rd_kafka_message_headers(m, &h);
    int32_t partition = (int32_t)header_int(h, "source-partition");
    int64_t offset = header_int(h, "source-offset");
    uint32_t epoch = (uint32_t)(tag >> 8);
    int attempt = (int)((tag >> 1) & 0x7f);
    vd_dlq_track *t = track_of(o, partition);
    if (!t || t->epoch != epoch) return; /* forgotten: the next owner replays it */
    if (!m->err) {
        track_done(o, partition, offset);
        return;
    }
    dlq_failed(o, partition, offset, epoch, attempt, m->key, m->key_len, m->payload, m->len,
               h ? rd_kafka_headers_copy(h) : rd_kafka_headers_new(0), m->err);
}
