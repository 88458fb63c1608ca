/*
 * Kafka smoke test: librdkafka (the one vectord links) against the real broker
 * started by deploy/kafka/kafka.sh. Run it through run.sh.
 *
 *   smoke BOOTSTRAP TOPIC GROUP [COUNT]
 *
 * TOPIC must exist (run.sh creates it with 3 partitions). The test:
 *  1. checks our murmur2 port against values computed by Kafka's Java
 *     Utils.murmur2 (so "same partitioner as Java" means something);
 *  2. produces COUNT (1000) keyed messages with partitioner=murmur2_random,
 *     idempotence on and a header per message, and checks every delivery
 *     landed on the partition the Java client would pick for its key, and
 *     that the partitions' watermark offsets agree;
 *  3. consumes them back in consumer group GROUP with
 *     partition.assignment.strategy=range, checks key/value/header/partition
 *     of each and that all COUNT arrived exactly once, commits synchronously
 *     and reads the committed offsets back;
 *  4. joins the group again with a new consumer and checks that it resumes
 *     at the committed offsets (receives nothing).
 * Prints one line per check and a closing "N passed, N failed" line; exits
 * non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define NKEYS 37
#define MAXPART 64

static int g_passed, g_failed;

static void check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (ok)
        g_passed++;
    else
        g_failed++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Kafka's org.apache.kafka.common.utils.Utils.murmur2 (Java client default
 * partitioner for keyed records), in uint32 arithmetic. */
static int32_t murmur2(const void *key, size_t len) {
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        uint32_t k = (uint32_t)d[i * 4] | ((uint32_t)d[i * 4 + 1] << 8) |
                     ((uint32_t)d[i * 4 + 2] << 16) | ((uint32_t)d[i * 4 + 3] << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t t = len & ~(size_t)3;
    switch (len % 4) {
    case 3: h ^= (uint32_t)d[t + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)d[t + 1] << 8;  /* fall through */
    case 1: h ^= (uint32_t)d[t]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

static int32_t java_partition(const char *key, int nparts) {
    return (int32_t)(((uint32_t)murmur2(key, strlen(key)) & 0x7fffffffu) % (uint32_t)nparts);
}

static void key_of(int i, char *buf, size_t n) { snprintf(buf, n, "index-%d", i % NKEYS); }

/* ------------------------------------------------------------- produce -- */

struct delivery {
    int count;
    int32_t *partition; /* per message, -1 until delivered */
    int errors;
    char first_error[256];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    struct delivery *dv = opaque;
    intptr_t i = (intptr_t)m->_private;
    if (m->err) {
        if (!dv->errors++)
            snprintf(dv->first_error, sizeof dv->first_error, "%s", rd_kafka_err2str(m->err));
        return;
    }
    if (i >= 0 && i < dv->count)
        dv->partition[i] = m->partition;
}

static rd_kafka_conf_t *base_conf(const char *bootstrap) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "conf: %s\n", err);
        exit(2);
    }
    return c;
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "conf %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

static int topic_partitions(rd_kafka_t *rk, const char *topic) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (!e && md->topic_cnt == 1 && !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    else
        fprintf(stderr, "metadata for %s: %s\n", topic,
                rd_kafka_err2str(e ? e : md->topics[0].err));
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

static int produce(const char *bootstrap, const char *topic, int count, int *nparts_out,
                   int per_part[MAXPART]) {
    char err[512];
    struct delivery dv = {.count = count, .partition = malloc(sizeof(int32_t) * count)};
    for (int i = 0; i < count; i++)
        dv.partition[i] = -1;

    rd_kafka_conf_t *c = base_conf(bootstrap);
    conf_set(c, "partitioner", "murmur2_random");
    conf_set(c, "enable.idempotence", "true");
    conf_set(c, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_opaque(c, &dv);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "producer: %s\n", err);
        exit(2);
    }

    int nparts = topic_partitions(rk, topic);
    *nparts_out = nparts;
    check(nparts >= 2 && nparts <= MAXPART, "topic %s has %d partitions", topic, nparts);
    if (nparts < 1 || nparts > MAXPART) {
        rd_kafka_destroy(rk);
        free(dv.partition);
        return -1;
    }

    double t0 = now_s();
    for (int i = 0; i < count; i++) {
        char key[32], val[64], seq[16];
        key_of(i, key, sizeof key);
        int vlen = snprintf(val, sizeof val, "message %d for %s", i, key);
        snprintf(seq, sizeof seq, "%d", i);
        rd_kafka_resp_err_t e;
        do {
            e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(val, (size_t)vlen),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_HEADER("seq", seq, -1),
                                  RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 100);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (e) {
            fprintf(stderr, "produce %d: %s\n", i, rd_kafka_err2str(e));
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t fe = rd_kafka_flush(rk, 30000);
    double dt = now_s() - t0;

    int delivered = 0, wrong = 0;
    memset(per_part, 0, sizeof(int) * MAXPART);
    for (int i = 0; i < count; i++) {
        if (dv.partition[i] < 0)
            continue;
        delivered++;
        per_part[dv.partition[i]]++;
        char key[32];
        key_of(i, key, sizeof key);
        if (dv.partition[i] != java_partition(key, nparts))
            wrong++;
    }
    check(!fe && delivered == count && dv.errors == 0,
          "produced %d/%d keyed messages in %.2fs (flush: %s, delivery errors: %d%s%s)", delivered,
          count, dt, rd_kafka_err2str(fe), dv.errors, dv.errors ? ", first: " : "",
          dv.first_error);
    check(wrong == 0, "murmur2_random put every key on the Java client's partition (%d mismatches)",
          wrong);
    int used = 0;
    for (int p = 0; p < nparts; p++)
        used += per_part[p] > 0;
    check(used == nparts, "messages spread over %d/%d partitions", used, nparts);

    /* ListOffsets: the end offsets a worker reads at assignment. */
    int wm_ok = 1;
    for (int p = 0; p < nparts; p++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t we = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (we || lo != 0 || hi != per_part[p]) {
            fprintf(stderr, "watermarks of partition %d: %s lo=%" PRId64 " hi=%" PRId64 "\n", p,
                    rd_kafka_err2str(we), lo, hi);
            wm_ok = 0;
        }
    }
    check(wm_ok, "watermark offsets (ListOffsets) match what was delivered");

    rd_kafka_destroy(rk);
    free(dv.partition);
    return delivered;
}

/* ------------------------------------------------------------- consume -- */

struct group_state {
    int assigned;
    char protocol[32];
};

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct group_state *gs = opaque;
    snprintf(gs->protocol, sizeof gs->protocol, "%s", rd_kafka_rebalance_protocol(rk));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        gs->assigned = parts->cnt;
        rd_kafka_assign(rk, parts);
    } else {
        gs->assigned = 0;
        rd_kafka_assign(rk, NULL);
    }
}

static rd_kafka_t *new_consumer(const char *bootstrap, const char *topic, const char *group,
                                struct group_state *gs) {
    char err[512];
    rd_kafka_conf_t *c = base_conf(bootstrap);
    conf_set(c, "group.id", group);
    conf_set(c, "partition.assignment.strategy", "range");
    conf_set(c, "auto.offset.reset", "earliest");
    conf_set(c, "enable.auto.commit", "false");
    conf_set(c, "session.timeout.ms", "6000");
    rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    rd_kafka_conf_set_opaque(c, gs);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "consumer: %s\n", err);
        exit(2);
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        fprintf(stderr, "subscribe: %s\n", rd_kafka_err2str(e));
        exit(2);
    }
    return rk;
}

static int consume(const char *bootstrap, const char *topic, const char *group, int count,
                   int nparts, const int per_part[MAXPART]) {
    struct group_state gs = {0};
    rd_kafka_t *rk = new_consumer(bootstrap, topic, group, &gs);
    unsigned char *seen = calloc((size_t)count, 1);
    int got = 0, dups = 0, bad = 0, errors = 0;
    double t0 = now_s(), deadline = t0 + 60;

    while (got < count && now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
                errors++;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        rd_kafka_headers_t *hdrs = NULL;
        const void *hv = NULL;
        size_t hlen = 0;
        int i = -1;
        if (!rd_kafka_message_headers(m, &hdrs) &&
            !rd_kafka_header_get_last(hdrs, "seq", &hv, &hlen) && hlen < 16) {
            char tmp[16];
            memcpy(tmp, hv, hlen);
            tmp[hlen] = 0;
            i = atoi(tmp);
        }
        if (i < 0 || i >= count) {
            bad++;
        } else {
            char key[32], val[64];
            key_of(i, key, sizeof key);
            int vlen = snprintf(val, sizeof val, "message %d for %s", i, key);
            if (m->key_len != strlen(key) || memcmp(m->key, key, m->key_len) ||
                m->len != (size_t)vlen || memcmp(m->payload, val, m->len) ||
                m->partition != java_partition(key, nparts))
                bad++;
            if (seen[i])
                dups++;
            else
                got++;
            seen[i] = 1;
        }
        rd_kafka_message_destroy(m);
    }
    double dt = now_s() - t0;
    check(strcmp(gs.protocol, "EAGER") == 0 && gs.assigned == nparts,
          "group %s: range assignment gave the single member all %d partitions (protocol %s)",
          group, gs.assigned, gs.protocol);
    check(got == count && dups == 0 && bad == 0 && errors == 0,
          "consumed %d/%d messages in %.2fs (duplicates %d, mismatched %d, errors %d)", got, count,
          dt, dups, bad, errors);

    rd_kafka_resp_err_t ce = rd_kafka_commit(rk, NULL, 0 /* sync */);
    check(!ce, "synchronous commit: %s", rd_kafka_err2str(ce));

    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p);
    rd_kafka_resp_err_t qe = rd_kafka_committed(rk, parts, 10000);
    int match = !qe;
    int64_t total = 0;
    for (int p = 0; p < parts->cnt; p++) {
        int64_t off = parts->elems[p].offset;
        printf("      partition %d: %d messages, committed offset %" PRId64 "\n",
               parts->elems[p].partition, per_part[parts->elems[p].partition], off);
        if (parts->elems[p].err || off != per_part[parts->elems[p].partition])
            match = 0;
        if (off > 0)
            total += off;
    }
    check(match && total == count, "committed offsets read back sum to %" PRId64 " (%s)", total,
          rd_kafka_err2str(qe));
    rd_kafka_topic_partition_list_destroy(parts);

    rd_kafka_resp_err_t xe = rd_kafka_consumer_close(rk);
    check(!xe, "consumer close (leave group): %s", rd_kafka_err2str(xe));
    rd_kafka_destroy(rk);
    free(seen);
    return got;
}

/* A new member of the same group starts at the committed offsets. */
static void resume(const char *bootstrap, const char *topic, const char *group, int nparts) {
    struct group_state gs = {0};
    rd_kafka_t *rk = new_consumer(bootstrap, topic, group, &gs);
    double deadline = now_s() + 30, quiet_until = 0;
    int extra = 0;
    while (now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m) {
            if (!m->err)
                extra++;
            rd_kafka_message_destroy(m);
        }
        if (gs.assigned == nparts && quiet_until == 0)
            quiet_until = now_s() + 2; /* assigned: give fetches 2 s */
        if (quiet_until && now_s() > quiet_until)
            break;
    }
    check(gs.assigned == nparts && extra == 0,
          "a new member of %s resumed at the committed offsets (%d partitions, %d re-delivered)",
          group, gs.assigned, extra);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BOOTSTRAP TOPIC GROUP [COUNT]\n", argv[0]);
        return 2;
    }
    const char *bootstrap = argv[1], *topic = argv[2], *group = argv[3];
    int count = argc > 4 ? atoi(argv[4]) : 1000;
    if (count < 1)
        count = 1000;
    printf("librdkafka %s, bootstrap %s, topic %s, group %s\n", rd_kafka_version_str(),
           bootstrap, topic, group);

    /* Values printed by Kafka 3.9's Java Utils.murmur2 for these keys. */
    static const struct {
        const char *s;
        int32_t h;
    } vec[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
        {"index-0", 1809536871},
    };
    int vok = 1;
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
        vok &= murmur2(vec[i].s, strlen(vec[i].s)) == vec[i].h;
    check(vok, "murmur2 port matches Java Utils.murmur2 test vectors");

    int nparts = 0, per_part[MAXPART];
    if (produce(bootstrap, topic, count, &nparts, per_part) == count) {
        if (consume(bootstrap, topic, group, count, nparts, per_part) == count)
            resume(bootstrap, topic, group, nparts);
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
