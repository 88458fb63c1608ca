/*
 * raw.c - vectorctl produce and consume: records as they are, for tests and
 * for looking at the topics (a misrouted command, the DLQ, the replies).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"

/* produce TOPIC KEY [--header k=v]... [--partition N] [--count N]: one
 * record (or N alike), value from stdin, as is. partition < 0: the
 * murmur2_random partitioner's choice. headers: "name=value", checked. */
int vc_cmd_produce(ctl *c, const char *topic, const char *key, const char **headers,
                   size_t nheaders, int32_t partition, int64_t count)
{
    if (partition < 0) partition = RD_KAFKA_PARTITION_UA;
    char *value = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            value = realloc(value, cap);
            if (!value) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
        }
        memcpy(value + len, chunk, n);
        len += n;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (size_t i = 0; i < nheaders; i++) {
        const char *eq = strchr(headers[i], '=');
        rd_kafka_header_add(h, headers[i], eq - headers[i], eq + 1, -1);
    }
    vc_warm_topic(c, topic);
    for (int64_t i = 0; i < count; i++) {
        rd_kafka_headers_t *hi = rd_kafka_headers_copy(h);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(
                    c->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                    RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(value, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hi),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(c->producer, 50);
        if (e) {
            rd_kafka_headers_destroy(hi);
            vc_die(VC_EXIT_KAFKA, NULL, "produce to %s: %s", topic, rd_kafka_err2str(e));
        }
    }
    rd_kafka_headers_destroy(h);
    free(value);
    vc_flush_or_die(c);
    return 0;
}

/* Prints s[0..n) as a JSON string. */
static void put_json_str(const char *s, size_t n)
{
    json_t *j = json_stringn_nocheck(s ? s : "", s ? n : 0);
    char *t = json_dumps(j, JSON_ENCODE_ANY);
    fputs(t ? t : "null", stdout);
    free(t);
    json_decref(j);
}

static void put_base64(const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    putchar('"');
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        putchar(tab[v >> 18 & 63]);
        putchar(tab[v >> 12 & 63]);
        putchar(i + 1 < n ? tab[v >> 6 & 63] : '=');
        putchar(i + 2 < n ? tab[v & 63] : '=');
    }
    putchar('"');
}

/* consume TOPIC [--count N]: records from the beginning, one JSON line each
 * with partition, offset, key, value (text) and headers. */
int vc_cmd_consume(ctl *c, const char *topic, int64_t count)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->consumer, topic, NULL);
    if (rd_kafka_metadata(c->consumer, 0, rkt, &md, c->timeout_ms) || md->topic_cnt != 1 ||
        md->topics[0].err)
        vc_die(VC_EXIT_KAFKA, NULL, "topic %s not found", topic);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(c->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    double deadline = vc_now() + c->timeout_ms / 1000.0;
    int64_t seen = 0;
    while ((count < 0 || seen < count) && vc_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->consumer, 100);
        if (!m) continue;
        if (!m->err) {
            printf("{\"partition\":%d,\"offset\":%" PRId64 ",\"key\":", (int)m->partition,
                   m->offset);
            put_json_str(m->key, m->key_len);
            json_t *v = json_stringn(m->payload ? m->payload : "", m->len);
            if (v) {
                printf(",\"value\":");
                put_json_str(m->payload, m->len);
            } else {
                /* Not text (msgpack): base64, so the line stays JSON. */
                printf(",\"value_base64\":");
                put_base64(m->payload, m->len);
            }
            json_decref(v);
            printf(",\"headers\":{");
            rd_kafka_headers_t *h = NULL;
            rd_kafka_message_headers(m, &h);
            const char *name;
            const void *val;
            size_t vlen;
            for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &val, &vlen); i++) {
                if (i) putchar(',');
                put_json_str(name, strlen(name));
                putchar(':');
                put_json_str(val, vlen);
            }
            printf("}}\n");
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    return count >= 0 && seen < count ? VC_EXIT_TIMEOUT : 0;
}
