/*
 * vectorctl.c - the command-line client of vectord.
 *
 *   vectorctl [-b BROKERS] [-X key=value]... [--timeout MS] [--json] COMMAND ...
 *
 * Brokers: -b, else -X kafka.bootstrap.servers, else $VECTORD_BROKERS, else
 * the address an embedded vectord wrote to ./var/vectord/bootstrap.
 *
 *   create INDEX --dim N [--m 16] [--ef-construction 200] [--ef-search 64]
 *                [--distance cosine|euclidean|dot] [--if-not-exists]
 *   add INDEX FILE [--batch 500]   FILE: NDJSON {"id","vector","metadata"} lines,
 *                                  or .fvecs/.bvecs (ids are row numbers); "-" = stdin
 *   delete INDEX ID...
 *   drop INDEX [--if-exists]
 *   search INDEX (--vector '[...]' | --queries FILE) [--k 10] [--ef N] [--min-offset O]
 *   info INDEX
 *   inspect FILE.lhv1              offline: verify a checkpoint and print its envelope
 *   produce TOPIC KEY [--header name=value]... [--partition N] [--count N]
 *                                  a raw record, value from stdin
 *   ls                             every index in the fleet (Redis directory)
 *   status                         workers, partitions, lag (Redis directory)
 *   consume TOPIC [--count N]      raw records from the beginning, as JSON lines
 *                                  (value, or value_base64 when it is not UTF-8)
 *
 * Every request goes out with reply-to and correlation-id headers; vectorctl
 * waits for the reply (acks for commands), so its exit status tells a script
 * what happened: 0 ok, 1 an error reply, 2 usage, 3 timeout, 4 Kafka/IO.
 * Requests are JSON (content-type: application/json); replies come back in
 * the same type.
 *
 * ls and status read the Redis directory (docs/directory.md), not Kafka:
 * --redis URL, else -X directory.redis_url, else $VECTORD_DIRECTORY_REDIS_URL;
 * keys under -X group.id (default vectord). Exit 4 when Redis is unreachable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "directory/directory.h"
#include "kafka/kafka.h"
#include "vectord/lhv1.h"

enum { EXIT_ERR_REPLY = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3, EXIT_KAFKA = 4 };

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vectorctl: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

/* ---- Kafka plumbing ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    ctl *c = opaque;
    if (m->err) {
        c->delivery_failures++;
        fprintf(stderr, "vectorctl: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

static void ctl_connect(ctl *c)
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
        die(EXIT_USAGE, "%s", err.msg);
    rd_kafka_conf_set(pc, "log_level", "3", NULL, 0);
    rd_kafka_conf_set(cc, "log_level", "3", NULL, 0);
    rd_kafka_conf_set_opaque(pc, c);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    if (!(c->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr)))
        die(EXIT_KAFKA, "producer: %s", errstr);
    if (!(c->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr)))
        die(EXIT_KAFKA, "consumer: %s", errstr);
    rd_kafka_poll_set_consumer(c->consumer);
    /* Listen on every partition of the reply topic from its current end. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->consumer, c->t_reply, NULL);
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->consumer, 0, rkt, &md, c->timeout_ms);
    if (e) die(EXIT_KAFKA, "cannot reach Kafka at %s: %s", c->brokers, rd_kafka_err2str(e));
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0)
        die(EXIT_KAFKA,
            "reply topic %s does not exist: create it, or name another with "
            "--reply-topic",
            c->t_reply);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(c->consumer, c->t_reply, i, &lo, &hi, c->timeout_ms))
            die(EXIT_KAFKA, "reply topic %s: cannot read offsets", c->t_reply);
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
static void warm_topic(ctl *c, const char *topic)
{
    if (strcmp(c->warm, topic) == 0) return;
    vd_kafka_topic_warm(c->producer, topic, c->timeout_ms);
    snprintf(c->warm, sizeof c->warm, "%s", topic);
}

/* Sends doc (consumed) to topic keyed by index; writes its correlation id. */
static void send_request(ctl *c, const char *topic, const char *index, json_t *doc, char *corr,
                         size_t corr_cap)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body) die(EXIT_KAFKA, "out of memory");
    snprintf(corr, corr_cap, "%s-%" PRIu64, c->run_id, c->next_corr++);
    warm_topic(c, topic);
    rd_kafka_resp_err_t e;
    do {
        e = rd_kafka_producev(
            c->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(index, strlen(index)),
            RD_KAFKA_V_VALUE(body, strlen(body)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("reply-to", c->t_reply, -1),
            RD_KAFKA_V_HEADER("correlation-id", corr, -1),
            RD_KAFKA_V_HEADER("content-type", "application/json", -1), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(c->producer, 50);
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    free(body);
    if (e) die(EXIT_KAFKA, "produce to %s: %s", topic, rd_kafka_err2str(e));
    rd_kafka_poll(c->producer, 0);
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
    while (left && now_s() < deadline) {
        rd_kafka_poll(c->producer, 0);
        if (c->delivery_failures)
            die(EXIT_KAFKA, "%zu requests were not delivered to Kafka", c->delivery_failures);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->consumer, 50);
        if (!m) continue;
        char corr[128];
        if (!m->err && vd_kafka_header_str(m, "correlation-id", corr, sizeof corr)) {
            for (size_t i = 0; i < n; i++) {
                if (done[i] || strcmp(corrs[i], corr) != 0) continue;
                json_error_t je;
                json_t *doc = json_loadb(m->payload, m->len, 0, &je);
                if (!doc) die(EXIT_KAFKA, "unreadable reply: %s", je.text);
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

static int reply_failed(json_t *reply)
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
static void flush_or_die(ctl *c)
{
    if (rd_kafka_flush(c->producer, c->timeout_ms) || rd_kafka_outq_len(c->producer))
        die(EXIT_TIMEOUT, "Kafka did not take the commands within %d ms", c->timeout_ms);
    if (c->delivery_failures)
        die(EXIT_KAFKA, "%zu commands were not delivered to Kafka", c->delivery_failures);
}

static json_t *roundtrip(ctl *c, const char *topic, const char *index, json_t *doc)
{
    char corr[128], *corrs[1] = {corr};
    single s = {NULL};
    send_request(c, topic, index, doc, corr, sizeof corr);
    if (c->no_wait) {
        flush_or_die(c);
        return json_pack("{s:s, s:b}", "status", "ok", "sent", 1);
    }
    if (await_replies(c, corrs, 1, now_s() + c->timeout_ms / 1000.0, keep_reply, &s))
        die(EXIT_TIMEOUT,
            "no reply from vectord within %d ms (is a worker running and "
            "assigned the partition of \"%s\"?)",
            c->timeout_ms, index);
    return s.reply;
}

static int print_reply(ctl *c, json_t *reply)
{
    int failed = reply_failed(reply);
    if (c->json_out || !failed) {
        char *text = json_dumps(reply, JSON_COMPACT);
        if (c->json_out || !failed) puts(text);
        free(text);
    }
    json_decref(reply);
    return failed ? EXIT_ERR_REPLY : 0;
}

/* ---- vectors from files ---- */

static json_t *vector_json(const float *v, size_t dim)
{
    json_t *a = json_array();
    for (size_t i = 0; i < dim; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

typedef struct vec_file {
    FILE *f;
    int kind; /* 'n' ndjson, 'f' fvecs, 'b' bvecs */
    size_t row;
    char *line;
    size_t cap;
    off_t size;
} vec_file;

static void vf_open(vec_file *vf, const char *path)
{
    memset(vf, 0, sizeof *vf);
    size_t n = strlen(path);
    vf->kind = n > 6 && !strcmp(path + n - 6, ".fvecs")   ? 'f'
               : n > 6 && !strcmp(path + n - 6, ".bvecs") ? 'b'
                                                          : 'n';
    vf->f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!vf->f) die(EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (vf->f != stdin && !fstat(fileno(vf->f), &st)) vf->size = st.st_size;
}

/* Next item as {"id","vector"[,"metadata"]}, or NULL at the end. */
static json_t *vf_next(vec_file *vf, const char *path)
{
    if (vf->kind == 'n') {
        for (;;) {
            if (getline(&vf->line, &vf->cap, vf->f) < 0) return NULL;
            vf->row++;
            char *s = vf->line;
            while (*s == ' ' || *s == '\t') s++;
            if (*s == '\n' || !*s) continue;
            json_error_t je;
            json_t *doc = json_loads(s, 0, &je);
            if (!json_is_object(doc))
                die(EXIT_USAGE, "%s:%zu: not a JSON object: %s", path, vf->row, je.text);
            if (!json_is_string(json_object_get(doc, "id")))
                die(EXIT_USAGE, "%s:%zu: \"id\" must be a string", path, vf->row);
            if (!json_is_array(json_object_get(doc, "vector")))
                die(EXIT_USAGE, "%s:%zu: \"vector\" must be an array of numbers", path, vf->row);
            return doc;
        }
    }
    int32_t dim;
    if (fread(&dim, 4, 1, vf->f) != 1) return NULL;
    if (dim <= 0 || dim > 1 << 20)
        die(EXIT_USAGE, "%s: bad dimension %d at row %zu", path, dim, vf->row);
    float *v = malloc((size_t)dim * sizeof *v);
    if (vf->kind == 'f') {
        if (fread(v, 4, (size_t)dim, vf->f) != (size_t)dim) die(EXIT_USAGE, "%s: truncated", path);
    } else {
        unsigned char *b = malloc((size_t)dim);
        if (fread(b, 1, (size_t)dim, vf->f) != (size_t)dim) die(EXIT_USAGE, "%s: truncated", path);
        for (int32_t i = 0; i < dim; i++) v[i] = b[i];
        free(b);
    }
    char id[32];
    snprintf(id, sizeof id, "%zu", vf->row++);
    json_t *doc = json_pack("{s:s, s:o}", "id", id, "vector", vector_json(v, (size_t)dim));
    free(v);
    return doc;
}

/* ---- commands ---- */

typedef struct add_state {
    size_t acked, items_acked, failed;
    size_t *batch_items;
} add_state;

static void add_reply(void *ctx, size_t which, json_t *reply)
{
    add_state *s = ctx;
    s->acked++;
    if (reply_failed(reply))
        s->failed++;
    else
        s->items_acked += s->batch_items[which];
}

static int cmd_add(ctl *c, const char *index, const char *path, size_t batch)
{
    vec_file vf;
    vf_open(&vf, path);
    int tty = isatty(2);
    size_t nbatches = 0, cap = 0, sent_items = 0;
    char **corrs = NULL;
    add_state st = {0, 0, 0, NULL};
    double t0 = now_s(), last_draw = 0;
    json_t *item;
    do {
        json_t *items = json_array();
        while (json_array_size(items) < batch && (item = vf_next(&vf, path)))
            json_array_append_new(items, item);
        size_t n = json_array_size(items);
        if (!n) {
            json_decref(items);
            break;
        }
        if (nbatches == cap) {
            cap = cap ? cap * 2 : 64;
            corrs = realloc(corrs, cap * sizeof *corrs);
            st.batch_items = realloc(st.batch_items, cap * sizeof *st.batch_items);
        }
        corrs[nbatches] = malloc(128);
        st.batch_items[nbatches] = n;
        json_t *doc = json_pack("{s:s, s:s, s:o}", "op", "add", "index", index, "items", items);
        send_request(c, c->t_cmd, index, doc, corrs[nbatches], 128);
        nbatches++;
        sent_items += n;
        if (tty && now_s() - last_draw > 0.2) {
            last_draw = now_s();
            if (vf.size && vf.f != stdin)
                fprintf(stderr, "\r%zu items sent (%.0f%% of file), %zu acked, %.0f items/s  ",
                        sent_items, 100.0 * (double)ftello(vf.f) / (double)vf.size, st.items_acked,
                        sent_items / (now_s() - t0));
            else
                fprintf(stderr, "\r%zu items sent  ", sent_items);
        }
    } while (1);
    if (vf.f != stdin) fclose(vf.f);
    free(vf.line);
    size_t left = 0;
    if (c->no_wait) {
        flush_or_die(c);
        st.items_acked = sent_items;
    } else {
        left = await_replies(c, corrs, nbatches, now_s() + c->timeout_ms / 1000.0, add_reply, &st);
    }
    if (tty) fputc('\n', stderr);
    double secs = now_s() - t0;
    if (c->json_out)
        printf("{\"items\":%zu,\"batches\":%zu,\"acked\":%zu,\"failed\":%zu,\"seconds\":%.3f}\n",
               sent_items, nbatches, st.acked, st.failed, secs);
    else
        printf("added %zu items in %zu batches to %s in %.2f s (%.0f items/s)%s\n", st.items_acked,
               nbatches, index, secs, st.items_acked / (secs > 0 ? secs : 1),
               st.failed ? ", some batches failed" : "");
    for (size_t i = 0; i < nbatches; i++) free(corrs[i]);
    free(corrs);
    free(st.batch_items);
    if (left)
        die(EXIT_TIMEOUT, "%zu of %zu batches were not acknowledged within %d ms", left, nbatches,
            c->timeout_ms);
    return st.failed ? EXIT_ERR_REPLY : 0;
}

static void print_hits(ctl *c, json_t *reply)
{
    if (c->json_out) {
        char *t = json_dumps(reply, JSON_COMPACT);
        puts(t);
        free(t);
        return;
    }
    json_t *hits = json_object_get(reply, "hits"), *h;
    size_t i;
    printf("%-4s %-32s %-12s %s\n", "rank", "id", "distance", "metadata");
    json_array_foreach(hits, i, h)
    {
        json_t *md = json_object_get(h, "metadata");
        char *mds = md ? json_dumps(md, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        printf("%-4zu %-32s %-12.6g %s\n", i + 1, json_string_value(json_object_get(h, "id")),
               json_number_value(json_object_get(h, "distance")), mds ? mds : "");
        free(mds);
    }
}

static int cmd_search(ctl *c, const char *index, const char *vector, const char *queries, int k,
                      int ef, long long min_offset)
{
    int rc = 0;
    json_t *base = json_pack("{s:s, s:s, s:i}", "op", "search", "index", index, "k", k);
    if (ef > 0) json_object_set_new(base, "ef", json_integer(ef));
    if (min_offset >= 0) json_object_set_new(base, "min_offset", json_integer(min_offset));
    if (vector) {
        json_error_t je;
        json_t *v = json_loads(vector, 0, &je);
        if (!json_is_array(v)) die(EXIT_USAGE, "--vector: expected a JSON array: %s", je.text);
        json_object_set_new(base, "vector", v);
        json_t *reply = roundtrip(c, c->t_search, index, base);
        if (reply_failed(reply))
            rc = EXIT_ERR_REPLY;
        else
            print_hits(c, reply);
        json_decref(reply);
        return rc;
    }
    vec_file vf;
    vf_open(&vf, queries);
    json_t *item;
    for (size_t q = 0; (item = vf_next(&vf, queries)); q++) {
        json_t *doc = json_deep_copy(base);
        json_object_set(doc, "vector", json_object_get(item, "vector"));
        json_decref(item);
        json_t *reply = roundtrip(c, c->t_search, index, doc);
        if (!c->json_out) printf("query %zu\n", q);
        if (reply_failed(reply))
            rc = EXIT_ERR_REPLY;
        else
            print_hits(c, reply);
        json_decref(reply);
    }
    json_decref(base);
    if (vf.f != stdin) fclose(vf.f);
    free(vf.line);
    return rc;
}

static int cmd_inspect(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    void *map = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (map == MAP_FAILED) die(EXIT_KAFKA, "mmap %s: %s", path, strerror(errno));
    char *env = NULL;
    vd_error err;
    vd_err rc = vd_lhv1_verify(map ? map : "", (size_t)st.st_size, &env, &err);
    if (rc) {
        fprintf(stderr, "vectorctl: %s: %s (%s)\n", path, err.msg, vd_err_code(rc));
        return EXIT_ERR_REPLY;
    }
    printf("%s: LHV1, %lld bytes, checksum ok\n%s\n", path, (long long)st.st_size, env);
    free(env);
    if (map) munmap(map, (size_t)st.st_size);
    return 0;
}

/* produce TOPIC KEY [--header k=v]... [--partition N] [--count N]: one
 * record (or N alike), value from stdin, as is. */
static int cmd_produce(ctl *c, const char *topic, const char *key, int argc, char **argv, int from)
{
    int32_t partition = RD_KAFKA_PARTITION_UA; /* the murmur2_random partitioner's choice */
    long count = 1;
    char *value = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            value = realloc(value, cap);
            if (!value) die(EXIT_KAFKA, "out of memory");
        }
        memcpy(value + len, chunk, n);
        len += n;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (int i = from; i < argc - 1; i++) {
        if (!strcmp(argv[i], "--partition")) {
            char *end;
            long pn = strtol(argv[++i], &end, 10);
            if (*end || pn < 0 || pn > INT32_MAX)
                die(EXIT_USAGE, "--partition %s: expected N >= 0", argv[i]);
            partition = (int32_t)pn;
            continue;
        }
        if (!strcmp(argv[i], "--count")) {
            char *end;
            count = strtol(argv[++i], &end, 10);
            if (*end || count < 1) die(EXIT_USAGE, "--count %s: expected N >= 1", argv[i]);
            continue;
        }
        if (strcmp(argv[i], "--header")) continue;
        const char *kv = argv[++i], *eq = strchr(kv, '=');
        if (!eq) die(EXIT_USAGE, "--header %s: expected name=value", kv);
        rd_kafka_header_add(h, kv, eq - kv, eq + 1, -1);
    }
    warm_topic(c, topic);
    for (long i = 0; i < count; i++) {
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
            die(EXIT_KAFKA, "produce to %s: %s", topic, rd_kafka_err2str(e));
        }
    }
    rd_kafka_headers_destroy(h);
    free(value);
    flush_or_die(c);
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
static int cmd_consume(ctl *c, const char *topic, long count)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->consumer, topic, NULL);
    if (rd_kafka_metadata(c->consumer, 0, rkt, &md, c->timeout_ms) || md->topic_cnt != 1 ||
        md->topics[0].err)
        die(EXIT_KAFKA, "topic %s not found", topic);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(c->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    double deadline = now_s() + c->timeout_ms / 1000.0;
    long seen = 0;
    while ((count < 0 || seen < count) && now_s() < deadline) {
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
    return count >= 0 && seen < count ? EXIT_TIMEOUT : 0;
}

/* ---- the Redis directory: ls, status ---- */

static vd_directory *dir_connect(const ctl *c, const char *url)
{
    if (!url) url = vd_config_str(c->cfg, "directory.redis_url");
    if (!*url) url = getenv("VECTORD_DIRECTORY_REDIS_URL");
    if (!url || !*url)
        die(EXIT_USAGE, "no directory: pass --redis redis://HOST:PORT, -X directory.redis_url=..., "
                        "or set VECTORD_DIRECTORY_REDIS_URL");
    vd_directory_opts o = {
        .url = url, .group = vd_config_str(c->cfg, "group.id"), .timeout_ms = c->timeout_ms};
    vd_directory *d;
    vd_error err;
    vd_err rc = vd_directory_connect(&d, &o, &err);
    if (rc) die(rc == VD_ERR_CONFIG ? EXIT_USAGE : EXIT_KAFKA, "%s", err.msg);
    return d;
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "3.2s", "5m", "2h" ago; "-" for no time. */
static const char *ago(int64_t ms, char *buf, size_t cap)
{
    if (ms <= 0) return "-";
    double s = (double)(unix_ms() - ms) / 1000.0;
    if (s < 0) s = 0;
    if (s < 60)
        snprintf(buf, cap, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%.0fm", s / 60);
    else
        snprintf(buf, cap, "%.0fh", s / 3600);
    return buf;
}

static void print_json(json_t *doc)
{
    char *t = json_dumps(doc, JSON_COMPACT);
    puts(t ? t : "null");
    free(t);
    json_decref(doc);
}

static int cmd_ls(ctl *c, const char *url)
{
    vd_directory *d = dir_connect(c, url);
    vd_dir_index *xs;
    size_t n;
    vd_error err;
    if (vd_directory_indexes(d, &xs, &n, &err)) die(EXIT_KAFKA, "%s", err.msg);
    json_t *arr = c->json_out ? json_array() : NULL;
    if (!c->json_out)
        printf("%-24s %4s %-20s %5s %-9s %10s %10s %12s %8s %s\n", "INDEX", "PART", "OWNER", "DIM",
               "DISTANCE", "LENGTH", "APPLIED", "CHECKPOINTED", "UPDATED", "NOTE");
    for (size_t i = 0; i < n; i++) {
        vd_dir_index *x = &xs[i];
        if (c->json_out) {
            json_t *o = json_pack(
                "{s:s, s:i, s:s, s:b, s:i, s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I}", "name",
                x->name, "partition", (int)x->partition, "owner", x->owner, "owner_alive",
                x->owner_alive, "dimension", (int)x->params.dimension, "m", (int)x->params.m,
                "ef_construction", (int)x->params.ef_construction, "ef_search",
                (int)x->params.ef_search, "distance", vd_distance_name(x->params.distance),
                "length", (json_int_t)x->length, "deleted", (json_int_t)x->deleted,
                "applied_offset", (json_int_t)x->applied_offset, "checkpointed_offset",
                (json_int_t)x->checkpointed_offset, "updated_ms", (json_int_t)x->updated_ms);
            json_object_set_new(o, "pinned_partition",
                                x->pinned >= 0 ? json_integer(x->pinned) : json_null());
            json_array_append_new(arr, o);
        } else {
            char when[32], note[96] = "";
            if (!x->owner_alive) snprintf(note, sizeof note, "owner gone");
            if (x->pinned < 0)
                snprintf(note + strlen(note), sizeof note - strlen(note), "%snot pinned",
                         *note ? ", " : "");
            else if (x->pinned != x->partition)
                snprintf(note + strlen(note), sizeof note - strlen(note), "%spinned to %d",
                         *note ? ", " : "", (int)x->pinned);
            printf("%-24s %4d %-20s %5u %-9s %10" PRIu64 " %10" PRId64 " %12" PRId64 " %8s %s\n",
                   x->name, (int)x->partition, x->owner, x->params.dimension,
                   vd_distance_name(x->params.distance), x->length, x->applied_offset,
                   x->checkpointed_offset, ago(x->updated_ms, when, sizeof when), note);
        }
        vd_dir_index_clear(x);
    }
    free(xs);
    if (c->json_out) print_json(json_pack("{s:o}", "indexes", arr));
    vd_directory_close(d);
    return 0;
}

static int cmd_status(ctl *c, const char *url)
{
    vd_directory *d = dir_connect(c, url);
    vd_dir_worker *ws;
    size_t n;
    vd_error err;
    if (vd_directory_workers(d, &ws, &n, &err)) die(EXIT_KAFKA, "%s", err.msg);
    int32_t nparts = 0;
    for (size_t i = 0; i < n; i++)
        if (ws[i].partition_count > nparts) nparts = ws[i].partition_count;
    json_t *jw = json_array(), *jp = json_array(), *unowned = json_array();
    if (!c->json_out)
        printf("%-24s %-16s %8s %-16s %8s %10s\n", "WORKER", "HOST", "PID", "PARTITIONS", "LAG",
               "HEARTBEAT");
    for (size_t i = 0; i < n; i++) {
        vd_dir_worker *w = &ws[i];
        char list[256] = "", when[32];
        json_t *parts = json_array();
        for (size_t k = 0; k < w->nparts; k++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%d", k ? "," : "", (int)w->parts[k].id);
            json_array_append_new(parts, json_pack("{s:i, s:s, s:I, s:I}", "partition",
                                                   (int)w->parts[k].id, "state", w->parts[k].state,
                                                   "applied", (json_int_t)w->parts[k].applied,
                                                   "lag", (json_int_t)w->parts[k].lag));
        }
        if (c->json_out)
            json_array_append_new(
                jw,
                json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:I, s:o}", "id", w->id, "host",
                          w->host, "version", w->version, "pid", (json_int_t)w->pid, "started_ms",
                          (json_int_t)w->started_ms, "updated_ms", (json_int_t)w->updated_ms,
                          "ttl_ms", (json_int_t)w->ttl_ms, "partition_count",
                          (int)w->partition_count, "lag", (json_int_t)w->lag, "partitions", parts));
        else {
            json_decref(parts);
            printf("%-24s %-16s %8ld %-16s %8" PRId64 " %10s\n", w->id, w->host, w->pid,
                   *list ? list : "-", w->lag, ago(w->updated_ms, when, sizeof when));
        }
    }
    if (!c->json_out)
        printf("\n%-9s %-24s %-10s %10s %8s\n", "PARTITION", "OWNER", "STATE", "APPLIED", "LAG");
    int32_t owned = 0;
    for (int32_t p = 0; p < nparts; p++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < ws[i].nparts; k++) {
                vd_dir_partition *dp = &ws[i].parts[k];
                if (dp->id != p) continue;
                found++;
                if (c->json_out)
                    json_array_append_new(
                        jp, json_pack("{s:i, s:s, s:s, s:I, s:I}", "partition", (int)p, "owner",
                                      ws[i].id, "state", dp->state, "applied",
                                      (json_int_t)dp->applied, "lag", (json_int_t)dp->lag));
                else
                    printf("%-9d %-24s %-10s %10" PRId64 " %8" PRId64 "%s\n", (int)p, ws[i].id,
                           dp->state, dp->applied, dp->lag,
                           found > 1 ? "  (two owners: a rebalance is in progress)" : "");
            }
        if (found) owned++;
        if (!found) {
            json_array_append_new(unowned, json_integer(p));
            if (!c->json_out)
                printf("%-9d %-24s %-10s %10s %8s\n", (int)p, "-", "unowned", "-", "-");
        }
    }
    if (c->json_out)
        print_json(json_pack("{s:o, s:o, s:i, s:i, s:o}", "workers", jw, "partitions", jp,
                             "partition_count", (int)nparts, "owned", (int)owned, "unowned",
                             unowned));
    else {
        json_decref(jw);
        json_decref(jp);
        json_decref(unowned);
        printf("\n%zu worker%s; %d of %d partitions owned\n", n, n == 1 ? "" : "s", (int)owned,
               (int)nparts);
    }
    for (size_t i = 0; i < n; i++) vd_dir_worker_clear(&ws[i]);
    free(ws);
    vd_directory_close(d);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: vectorctl [-b BROKERS] [-X key=value]... [--timeout MS] [--json]\n"
          "                 [--reply-topic T] [--no-wait] [--redis URL] COMMAND ...\n"
          "  --no-wait: return once Kafka has a command, without waiting for vectord\n"
          "  create INDEX --dim N [--m 16] [--ef-construction 200] [--ef-search 64]\n"
          "               [--distance cosine|euclidean|dot] [--if-not-exists]\n"
          "  add INDEX FILE [--batch 500]      NDJSON, .fvecs or .bvecs; - for stdin\n"
          "  delete INDEX ID...\n"
          "  drop INDEX [--if-exists]\n"
          "  search INDEX (--vector '[..]' | --queries FILE) [--k 10] [--ef N] [--min-offset O]\n"
          "  info INDEX\n"
          "  inspect FILE.lhv1\n"
          "  produce TOPIC KEY [--header name=value]... [--partition N] [--count N]\n"
          "                                 value from stdin, as is (N records alike)\n"
          "  consume TOPIC [--count N]                    from the beginning, JSON lines\n"
          "  ls                        every index in the fleet (the Redis directory)\n"
          "  status                    workers, partitions and lag (the Redis directory)\n"
          "exit status: 0 ok, 1 error reply, 2 usage, 3 timeout, 4 Kafka/IO\n",
          f);
}

/* Value of option name in argv[from..], or def. */
static const char *opt(int argc, char **argv, int from, const char *name, const char *def)
{
    for (int i = from; i < argc - 1; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static int flag(int argc, char **argv, int from, const char *name)
{
    for (int i = from; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    ctl c = {0};
    vd_config *cfg;
    vd_error err;
    if (vd_config_new(&cfg, &err)) die(EXIT_KAFKA, "%s", err.msg);
    c.cfg = cfg;
    c.timeout_ms = 30000;
    c.t_reply = "vectord.replies";
    const char *redis_url = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            c.brokers = argv[++i];
        else if (!strcmp(argv[i], "-X") && i + 1 < argc) {
            if (vd_config_set_kv(cfg, argv[++i], "-X", &err)) die(EXIT_USAGE, "%s", err.msg);
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            c.timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reply-topic") && i + 1 < argc)
            c.t_reply = argv[++i];
        else if (!strcmp(argv[i], "--redis") && i + 1 < argc)
            redis_url = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            c.json_out = 1;
        else if (!strcmp(argv[i], "--no-wait"))
            c.no_wait = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i++];
    if (!strcmp(cmd, "inspect")) {
        if (i >= argc) die(EXIT_USAGE, "inspect needs a file");
        vd_config_free(cfg);
        return cmd_inspect(argv[i]);
    }
    if (!strcmp(cmd, "ls") || !strcmp(cmd, "status")) {
        int rc = !strcmp(cmd, "ls") ? cmd_ls(&c, redis_url) : cmd_status(&c, redis_url);
        vd_config_free(cfg);
        return rc;
    }
    if (i >= argc) die(EXIT_USAGE, "%s needs an index name or a topic", cmd);
    const char *index = argv[i++];
    if (!c.brokers) c.brokers = vd_config_kafka(cfg, "bootstrap.servers");
    if (!c.brokers) c.brokers = getenv("VECTORD_BROKERS");
    char embedded[256];
    if (!c.brokers) {
        /* A vectord in embedded mode in this directory leaves its address here. */
        FILE *f = fopen(vd_config_str(cfg, "embedded.bootstrap.file"), "r");
        if (f && fgets(embedded, sizeof embedded, f)) {
            embedded[strcspn(embedded, "\r\n")] = '\0';
            c.brokers = embedded;
        }
        if (f) fclose(f);
    }
    if (!c.brokers)
        die(EXIT_USAGE, "no brokers: pass -b HOST:PORT, set VECTORD_BROKERS, or run vectord in "
                        "embedded mode from this directory (it writes ./var/vectord/bootstrap)");
    c.t_cmd = vd_config_str(cfg, "topic.commands");
    c.t_search = vd_config_str(cfg, "topic.search");
    ctl_connect(&c);
    int rc = 0;
    if (!strcmp(cmd, "produce")) {
        if (i >= argc) die(EXIT_USAGE, "produce needs TOPIC KEY");
        rc = cmd_produce(&c, index, argv[i], argc, argv, i + 1);
    } else if (!strcmp(cmd, "consume")) {
        rc = cmd_consume(&c, index, atol(opt(argc, argv, i, "--count", "-1")));
    } else if (!strcmp(cmd, "create")) {
        const char *dim = opt(argc, argv, i, "--dim", NULL);
        if (!dim) die(EXIT_USAGE, "create needs --dim N");
        json_t *doc =
            json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:s, s:b}", "op", "create", "index", index,
                      "dimension", atoi(dim), "m", atoi(opt(argc, argv, i, "--m", "16")),
                      "ef_construction", atoi(opt(argc, argv, i, "--ef-construction", "200")),
                      "ef_search", atoi(opt(argc, argv, i, "--ef-search", "64")), "distance",
                      opt(argc, argv, i, "--distance", "cosine"), "if_not_exists",
                      flag(argc, argv, i, "--if-not-exists"));
        rc = print_reply(&c, roundtrip(&c, c.t_cmd, index, doc));
    } else if (!strcmp(cmd, "add")) {
        if (i >= argc) die(EXIT_USAGE, "add needs a file (NDJSON, .fvecs, .bvecs or -)");
        rc = cmd_add(&c, index, argv[i], (size_t)atoi(opt(argc, argv, i + 1, "--batch", "500")));
    } else if (!strcmp(cmd, "delete")) {
        json_t *ids = json_array();
        for (; i < argc; i++) json_array_append_new(ids, json_string(argv[i]));
        if (!json_array_size(ids)) die(EXIT_USAGE, "delete needs ids");
        json_t *doc = json_pack("{s:s, s:s, s:o}", "op", "delete", "index", index, "ids", ids);
        rc = print_reply(&c, roundtrip(&c, c.t_cmd, index, doc));
    } else if (!strcmp(cmd, "drop")) {
        json_t *doc = json_pack("{s:s, s:s, s:b}", "op", "drop", "index", index, "if_exists",
                                flag(argc, argv, i, "--if-exists"));
        rc = print_reply(&c, roundtrip(&c, c.t_cmd, index, doc));
    } else if (!strcmp(cmd, "search")) {
        const char *vec = opt(argc, argv, i, "--vector", NULL),
                   *q = opt(argc, argv, i, "--queries", NULL);
        if (!vec == !q) die(EXIT_USAGE, "search needs one of --vector '[...]' or --queries FILE");
        rc = cmd_search(&c, index, vec, q, atoi(opt(argc, argv, i, "--k", "10")),
                        atoi(opt(argc, argv, i, "--ef", "0")),
                        atoll(opt(argc, argv, i, "--min-offset", "-1")));
    } else if (!strcmp(cmd, "info")) {
        json_t *doc = json_pack("{s:s, s:s}", "op", "info", "index", index);
        rc = print_reply(&c, roundtrip(&c, c.t_search, index, doc));
    } else {
        usage(stderr);
        rc = EXIT_USAGE;
    }
    rd_kafka_flush(c.producer, 5000);
    rd_kafka_consumer_close(c.consumer);
    rd_kafka_destroy(c.consumer);
    rd_kafka_destroy(c.producer);
    vd_config_free(cfg);
    return rc;
}
