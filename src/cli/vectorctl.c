/*
 * vectorctl.c - the command-line client of vectord.
 *
 *   vectorctl [-b BROKERS] [-X key=value]... [--timeout MS] [--json] COMMAND ...
 *
 * The commands and their options are the table `commands` near the end
 * (vectorctl --help prints it; vectorctl COMMAND --help one entry); args.c
 * parses them strictly: an unknown option, a missing value, a stray
 * argument or a number that is not one is a usage error (exit 2) that names
 * it, and every check runs before connecting.
 *
 * Brokers: -b, else -X kafka.bootstrap.servers, else $VECTORD_BROKERS, else
 * the address an embedded vectord wrote to ./var/vectord/bootstrap.
 *
 * Every request goes out with reply-to and correlation-id headers; vectorctl
 * waits for the reply (acks for commands), so its exit status tells a script
 * what happened: 0 ok, 1 an error reply, 2 usage, 3 timeout, 4 Kafka/IO.
 * Requests are JSON (content-type: application/json); replies come back in
 * the same type.
 *
 * add keeps at most --max-in-flight batches (and 4 MiB) unacknowledged, so
 * the worker is never far behind the producer: the embedded mode's mock
 * cluster keeps only the last 5 MiB of a partition.
 *
 * ls and status read the Redis directory (docs/directory.md), not Kafka:
 * --redis URL, else -X directory.redis_url, else $VECTORD_DIRECTORY_REDIS_URL;
 * keys under -X group.id (default vectord). Exit 4 when Redis is unreachable.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#include "cli/args.h"
#include "config/config.h"
#include "directory/directory.h"
#include "kafka/kafka.h"
#include "vectord/lhv1.h"
#include "vectord/version.h"

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

struct batch;
static void batch_delivered(struct batch *b, int32_t partition, int64_t offset);

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    ctl *c = opaque;
    struct batch *b = m->_private; /* an add batch, or NULL */
    if (b && !m->err) batch_delivered(b, m->partition, m->offset);
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

/* Sends body to topic keyed by index with a new correlation id (written to
 * corr) and the reply headers; msg_opaque comes back in the delivery
 * report. */
static void produce_body(ctl *c, const char *topic, const char *index, const char *body, size_t len,
                         char *corr, size_t corr_cap, void *msg_opaque)
{
    snprintf(corr, corr_cap, "%s-%" PRIu64, c->run_id, c->next_corr++);
    warm_topic(c, topic);
    rd_kafka_resp_err_t e;
    do {
        e = rd_kafka_producev(
            c->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(index, strlen(index)),
            RD_KAFKA_V_VALUE((void *)body, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_HEADER("reply-to", c->t_reply, -1),
            RD_KAFKA_V_HEADER("correlation-id", corr, -1),
            RD_KAFKA_V_HEADER("content-type", "application/json", -1), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(c->producer, 50);
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (e) die(EXIT_KAFKA, "produce to %s: %s", topic, rd_kafka_err2str(e));
    rd_kafka_poll(c->producer, 0);
}

/* Sends doc (consumed) to topic keyed by index; writes its correlation id. */
static void send_request(ctl *c, const char *topic, const char *index, json_t *doc, char *corr,
                         size_t corr_cap)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body) die(EXIT_KAFKA, "out of memory");
    produce_body(c, topic, index, body, strlen(body), corr, corr_cap, NULL);
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

/* ---- add: batches with a bounded window ---- */

/*
 * One add batch in flight. Its slot is reused once the worker has acked it
 * and its delivery report (partition, offset) is in: the report can come
 * after the ack when the producer has not been polled in between.
 */
typedef struct batch {
    char corr[64];
    size_t items, bytes;
    int32_t partition;
    int64_t offset;
    int used, delivered, acked;
} batch;

static void batch_delivered(batch *b, int32_t partition, int64_t offset)
{
    b->delivered = 1;
    b->partition = partition;
    b->offset = offset;
}

/* At most this many bytes of batches unacknowledged, whatever
 * --max-in-flight says: the embedded mode's mock cluster keeps only the
 * last 5 MiB of a partition (docs/worker.md), and a worker further behind
 * than that loses commands. One batch always goes. */
#define ADD_MAX_BYTES_IN_FLIGHT (4u << 20)

typedef struct add_run {
    ctl *c;
    batch *slots;
    size_t nslots;
    size_t sent_items, sent_batches, acked_items, acked_batches, failed;
    double t0, progress; /* start; the last ack (or delivery with --no-wait) */
} add_run;

static int slot_busy(const add_run *r, const batch *b)
{
    return b->used && !(b->delivered && (b->acked || r->c->no_wait));
}

static size_t busy_count(const add_run *r, size_t *bytes)
{
    size_t n = 0, by = 0;
    for (size_t i = 0; i < r->nslots; i++)
        if (slot_busy(r, &r->slots[i])) {
            n++;
            by += r->slots[i].bytes;
        }
    if (bytes) *bytes = by;
    return n;
}

/* Reads what has come back within wait_ms: delivery reports, and acks
 * matched to the window's correlation ids. */
static void add_poll(add_run *r, int wait_ms)
{
    ctl *c = r->c;
    size_t before = 0;
    for (size_t i = 0; i < r->nslots; i++) before += r->slots[i].delivered;
    rd_kafka_poll(c->producer, c->no_wait ? wait_ms : 0);
    if (c->delivery_failures)
        die(EXIT_KAFKA, "%zu batches were not delivered to Kafka", c->delivery_failures);
    if (c->no_wait) {
        size_t after = 0;
        for (size_t i = 0; i < r->nslots; i++) after += r->slots[i].delivered;
        if (after != before) r->progress = now_s();
        return;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->consumer, wait_ms);
    if (!m) return;
    char corr[128];
    if (!m->err && vd_kafka_header_str(m, "correlation-id", corr, sizeof corr)) {
        for (size_t i = 0; i < r->nslots; i++) {
            batch *b = &r->slots[i];
            if (!b->used || b->acked || strcmp(b->corr, corr) != 0) continue;
            json_error_t je;
            json_t *doc = json_loadb(m->payload, m->len, 0, &je);
            if (!doc) die(EXIT_KAFKA, "unreadable reply: %s", je.text);
            b->acked = 1;
            r->acked_batches++;
            r->progress = now_s();
            if (reply_failed(doc))
                r->failed++;
            else
                r->acked_items += b->items;
            json_decref(doc);
            break;
        }
    }
    rd_kafka_message_destroy(m);
}

static int cmp_batch(const void *a, const void *b)
{
    const batch *x = *(batch *const *)a, *y = *(batch *const *)b;
    if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* The worker (or Kafka, with --no-wait) has not answered for the timeout:
 * say what is outstanding and where it is in the log, then exit 3. */
static void fell_behind(add_run *r, const char *index)
{
    ctl *c = r->c;
    batch **out = calloc(r->nslots, sizeof *out);
    size_t n = 0, items = 0, undelivered = 0;
    for (size_t i = 0; i < r->nslots; i++)
        if (slot_busy(r, &r->slots[i])) {
            items += r->slots[i].items;
            if (r->slots[i].delivered)
                out[n++] = &r->slots[i];
            else
                undelivered++;
        }
    qsort(out, n, sizeof *out, cmp_batch);
    /* "partition 0 offsets 0-3,7; partition 2 offsets 12" */
    char where[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof where - 64;) {
        size_t j = i;
        while (j + 1 < n && out[j + 1]->partition == out[i]->partition &&
               out[j + 1]->offset == out[j]->offset + 1)
            j++;
        if (i == 0 || out[i - 1]->partition != out[i]->partition)
            len += (size_t)snprintf(where + len, sizeof where - len,
                                    "%spartition %" PRId32 " offsets ", i ? "; " : "",
                                    out[i]->partition);
        else
            len += (size_t)snprintf(where + len, sizeof where - len, ",");
        len += (size_t)snprintf(where + len, sizeof where - len, "%" PRId64, out[i]->offset);
        if (j > i)
            len += (size_t)snprintf(where + len, sizeof where - len, "-%" PRId64, out[j]->offset);
        i = j + 1;
    }
    if (undelivered && len < sizeof where - 64)
        snprintf(where + len, sizeof where - len, "%s%zu not yet in Kafka", len ? "; " : "",
                 undelivered);
    free(out);
    if (c->no_wait)
        die(EXIT_TIMEOUT, "add: Kafka took none of %zu batches within %d ms (%zu items)",
            undelivered, c->timeout_ms, items);
    die(EXIT_TIMEOUT,
        "add: vectord fell behind: no ack within %d ms; %zu batches unacknowledged (%zu items) "
        "in %s: %s; %zu of %zu items sent were acknowledged. Is a worker running and assigned "
        "the partition of \"%s\"? (vectorctl status shows lag; a longer --timeout waits more)",
        c->timeout_ms, busy_count(r, NULL), items, c->t_cmd, where, r->acked_items, r->sent_items,
        index);
}

static void draw_progress(const add_run *r, const vec_file *vf, int final)
{
    double secs = now_s() - r->t0;
    char pct[32] = "";
    if (vf->size && vf->f != stdin && !final)
        snprintf(pct, sizeof pct, " (%.0f%% of the file)",
                 100.0 * (double)ftello(vf->f) / (double)vf->size);
    fprintf(stderr, "\r%zu items sent%s, %zu acked, %.0f items/s, %zu batches in flight   %s",
            r->sent_items, pct, r->c->no_wait ? r->sent_items : r->acked_items,
            (double)(r->c->no_wait ? r->sent_items : r->acked_items) / (secs > 0 ? secs : 1),
            busy_count(r, NULL), final ? "\n" : "");
}

/*
 * Sends the file in batches of `batch` items, never more than max_in_flight
 * batches (nor ADD_MAX_BYTES_IN_FLIGHT bytes) without an ack: the worker
 * stays within a bounded distance of the producer, and the exit status
 * says whether every batch was applied.
 */
static int cmd_add(ctl *c, const char *index, vec_file *vf, const char *path, size_t batch_items,
                   size_t max_in_flight)
{
    add_run r = {.c = c, .nslots = max_in_flight};
    r.slots = calloc(max_in_flight, sizeof *r.slots);
    if (!r.slots) die(EXIT_KAFKA, "out of memory");
    int tty = isatty(2);
    r.t0 = r.progress = now_s();
    double last_draw = 0;
    json_t *item;
    for (;;) {
        json_t *items = json_array();
        while (json_array_size(items) < batch_items && (item = vf_next(vf, path)))
            json_array_append_new(items, item);
        size_t n = json_array_size(items);
        if (!n) {
            json_decref(items);
            break;
        }
        json_t *doc = json_pack("{s:s, s:s, s:o}", "op", "add", "index", index, "items", items);
        /* Rows of .fvecs/.bvecs are float32, which 9 significant digits
         * round-trip: half the bytes of %.17g. NDJSON numbers go as read. */
        char *body =
            json_dumps(doc, vf->kind == 'n' ? JSON_COMPACT : JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(doc);
        if (!body) die(EXIT_KAFKA, "out of memory");
        size_t len = strlen(body), inflight_bytes;
        /* Wait for room in the window. */
        batch *slot = NULL;
        for (;;) {
            size_t busy = busy_count(&r, &inflight_bytes);
            if (busy == 0 || (busy < r.nslots && inflight_bytes + len <= ADD_MAX_BYTES_IN_FLIGHT)) {
                for (size_t i = 0; i < r.nslots && !slot; i++)
                    if (!slot_busy(&r, &r.slots[i])) slot = &r.slots[i];
                if (busy == 0) r.progress = now_s(); /* nothing was owed until now */
                break;
            }
            if (now_s() - r.progress > c->timeout_ms / 1000.0) {
                if (tty) fputc('\n', stderr);
                fell_behind(&r, index);
            }
            add_poll(&r, 50);
            if (tty && now_s() - last_draw > 0.2) {
                last_draw = now_s();
                draw_progress(&r, vf, 0);
            }
        }
        memset(slot, 0, sizeof *slot);
        slot->used = 1;
        slot->items = n;
        slot->bytes = len;
        produce_body(c, c->t_cmd, index, body, len, slot->corr, sizeof slot->corr, slot);
        free(body);
        r.sent_batches++;
        r.sent_items += n;
        add_poll(&r, 0);
        if (tty && now_s() - last_draw > 0.2) {
            last_draw = now_s();
            draw_progress(&r, vf, 0);
        }
    }
    if (vf->f != stdin) fclose(vf->f);
    free(vf->line);
    /* The rest of the window. */
    while (busy_count(&r, NULL)) {
        if (now_s() - r.progress > c->timeout_ms / 1000.0) {
            if (tty) fputc('\n', stderr);
            fell_behind(&r, index);
        }
        add_poll(&r, 50);
        if (tty && now_s() - last_draw > 0.2) {
            last_draw = now_s();
            draw_progress(&r, vf, 0);
        }
    }
    if (c->no_wait) {
        flush_or_die(c);
        r.acked_items = r.sent_items;
        r.acked_batches = r.sent_batches;
    }
    if (tty) draw_progress(&r, vf, 1);
    double secs = now_s() - r.t0;
    if (c->json_out)
        printf("{\"items\":%zu,\"batches\":%zu,\"acked\":%zu,\"failed\":%zu,\"seconds\":%.3f}\n",
               r.sent_items, r.sent_batches, r.acked_batches, r.failed, secs);
    else
        printf("added %zu items in %zu batches to %s in %.2f s (%.0f items/s)%s\n", r.acked_items,
               r.sent_batches, index, secs, (double)r.acked_items / (secs > 0 ? secs : 1),
               r.failed ? ", some batches failed" : "");
    free(r.slots);
    return r.failed ? EXIT_ERR_REPLY : 0;
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

/* One search (vector, consumed), or one per row of the open queries file. */
static int cmd_search(ctl *c, const char *index, json_t *vector, vec_file *queries,
                      const char *queries_path, int64_t k, int64_t ef, int64_t min_offset)
{
    int rc = 0;
    json_t *base = json_pack("{s:s, s:s, s:I}", "op", "search", "index", index, "k", (json_int_t)k);
    if (ef > 0) json_object_set_new(base, "ef", json_integer(ef));
    if (min_offset >= 0) json_object_set_new(base, "min_offset", json_integer(min_offset));
    if (vector) {
        json_object_set_new(base, "vector", vector);
        json_t *reply = roundtrip(c, c->t_search, index, base);
        if (reply_failed(reply))
            rc = EXIT_ERR_REPLY;
        else
            print_hits(c, reply);
        json_decref(reply);
        return rc;
    }
    json_t *item;
    for (size_t q = 0; (item = vf_next(queries, queries_path)); q++) {
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
    if (queries->f != stdin) fclose(queries->f);
    free(queries->line);
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
 * record (or N alike), value from stdin, as is. partition < 0: the
 * murmur2_random partitioner's choice. headers: "name=value", checked. */
static int cmd_produce(ctl *c, const char *topic, const char *key, const char **headers,
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
            if (!value) die(EXIT_KAFKA, "out of memory");
        }
        memcpy(value + len, chunk, n);
        len += n;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (size_t i = 0; i < nheaders; i++) {
        const char *eq = strchr(headers[i], '=');
        rd_kafka_header_add(h, headers[i], eq - headers[i], eq + 1, -1);
    }
    warm_topic(c, topic);
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
static int cmd_consume(ctl *c, const char *topic, int64_t count)
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
    int64_t seen = 0;
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

/* ---- the command line ---- */

enum {
    G_TIMEOUT = VC_OPT_END + 1,
    G_JSON,
    G_REPLY_TOPIC,
    G_NO_WAIT,
    G_REDIS,
    G_HELP,
    G_VERSION,
};

static const struct option global_opts[] = {{"timeout", required_argument, NULL, G_TIMEOUT},
                                            {"json", no_argument, NULL, G_JSON},
                                            {"reply-topic", required_argument, NULL, G_REPLY_TOPIC},
                                            {"no-wait", no_argument, NULL, G_NO_WAIT},
                                            {"redis", required_argument, NULL, G_REDIS},
                                            {"help", no_argument, NULL, G_HELP},
                                            {"version", no_argument, NULL, G_VERSION},
                                            {NULL, 0, NULL, 0}};

#define OPT(name, arg, id)                                                                         \
    {                                                                                              \
        name, arg, NULL, id                                                                        \
    }
#define OPT_END                                                                                    \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }
static const struct option create_opts[] = {
    OPT("dim", required_argument, VC_OPT_DIM),
    OPT("m", required_argument, VC_OPT_M),
    OPT("ef-construction", required_argument, VC_OPT_EF_CONSTRUCTION),
    OPT("ef-search", required_argument, VC_OPT_EF_SEARCH),
    OPT("distance", required_argument, VC_OPT_DISTANCE),
    OPT("if-not-exists", no_argument, VC_OPT_IF_NOT_EXISTS),
    OPT_END};
static const struct option add_opts[] = {
    OPT("batch", required_argument, VC_OPT_BATCH),
    OPT("max-in-flight", required_argument, VC_OPT_MAX_IN_FLIGHT), OPT_END};
static const struct option drop_opts[] = {OPT("if-exists", no_argument, VC_OPT_IF_EXISTS), OPT_END};
static const struct option search_opts[] = {OPT("vector", required_argument, VC_OPT_VECTOR),
                                            OPT("queries", required_argument, VC_OPT_QUERIES),
                                            OPT("k", required_argument, VC_OPT_K),
                                            OPT("ef", required_argument, VC_OPT_EF),
                                            OPT("min-offset", required_argument, VC_OPT_MIN_OFFSET),
                                            OPT_END};
static const struct option produce_opts[] = {OPT("header", required_argument, VC_OPT_HEADER),
                                             OPT("partition", required_argument, VC_OPT_PARTITION),
                                             OPT("count", required_argument, VC_OPT_COUNT),
                                             OPT_END};
static const struct option consume_opts[] = {OPT("count", required_argument, VC_OPT_COUNT),
                                             OPT_END};
static const struct option no_opts[] = {OPT_END};

static const vc_cmd commands[] = {
    {"create", "INDEX --dim N [OPTIONS]", "create an index",
     "  --dim N                  vector dimension (required)\n"
     "  --m N                    links per node (default 16)\n"
     "  --ef-construction N      beam width while inserting (default 200)\n"
     "  --ef-search N            the index's default search beam width (default 64)\n"
     "  --distance D             cosine (default), euclidean or dot (also l2, ip)\n"
     "  --if-not-exists          succeed if the index exists already\n",
     create_opts, 1, 1, "INDEX"},
    {"add", "INDEX FILE [OPTIONS]", "add vectors; progress and rate on a TTY",
     "  FILE                     NDJSON {\"id\",\"vector\",\"metadata\"} lines, or .fvecs or\n"
     "                           .bvecs (ids are row numbers); - reads stdin\n"
     "  --batch N                items per command (default 500)\n"
     "  --max-in-flight N        batches sent and not yet acknowledged, at most (default 8;\n"
     "                           also at most 4 MiB); no ack for --timeout: exit 3, naming\n"
     "                           the unacknowledged batches and their offsets\n",
     add_opts, 2, 2, "INDEX FILE"},
    {"delete", "INDEX ID...", "delete vectors by id", "", no_opts, 2, -1, "INDEX ID..."},
    {"drop", "INDEX [--if-exists]", "drop an index",
     "  --if-exists              succeed if there is no such index\n", drop_opts, 1, 1, "INDEX"},
    {"search", "INDEX (--vector '[...]' | --queries FILE) [OPTIONS]", "nearest neighbours",
     "  --vector JSON            one query vector, a JSON array\n"
     "  --queries FILE           one query per row (NDJSON, .fvecs, .bvecs; - for stdin)\n"
     "  --k N                    neighbours per query (default 10)\n"
     "  --ef N                   beam width (default: the index's ef_search)\n"
     "  --min-offset O           answer once the index has applied command offset O\n",
     search_opts, 1, 1, "INDEX"},
    {"info", "INDEX", "an index's parameters, length and offsets", "", no_opts, 1, 1, "INDEX"},
    {"inspect", "FILE.lhv1", "offline: verify a checkpoint file and print its envelope", "",
     no_opts, 1, 1, "FILE"},
    {"produce", "TOPIC KEY [OPTIONS]", "a raw record to TOPIC, value from stdin, as is",
     "  --header NAME=VALUE      a record header (repeatable)\n"
     "  --partition N            this partition, not the partitioner's choice\n"
     "  --count N                N records alike (default 1)\n",
     produce_opts, 2, 2, "TOPIC KEY"},
    {"consume", "TOPIC [--count N]", "raw records from the beginning, as JSON lines",
     "  (value, or value_base64 when it is not UTF-8), until --count records or --timeout\n"
     "  --count N                stop after N records (exit 3 if fewer came)\n",
     consume_opts, 1, 1, "TOPIC"},
    {"ls", "", "every index in the fleet (the Redis directory)", "", no_opts, 0, 0, ""},
    {"status", "", "workers, partitions and lag (the Redis directory)", "", no_opts, 0, 0, ""},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fputs("usage: vectorctl [-b BROKERS] [-X key=value]... [--timeout MS] [--json]\n"
          "                 [--reply-topic T] [--no-wait] [--redis URL] COMMAND [ARGS]...\n"
          "  -b BROKERS         Kafka bootstrap servers; else -X kafka.bootstrap.servers,\n"
          "                     $VECTORD_BROKERS, or the address an embedded vectord wrote\n"
          "                     to ./var/vectord/bootstrap\n"
          "  -X key=value       a configuration key (kafka.* keys go to librdkafka)\n"
          "  --timeout MS       wait this long for Kafka and for each reply (default 30000)\n"
          "  --json             print replies as JSON\n"
          "  --reply-topic T    replies come back on T (default vectord.replies)\n"
          "  --no-wait          return once Kafka has a command, without waiting for vectord\n"
          "  --redis URL        the Redis directory for ls and status; else\n"
          "                     -X directory.redis_url or $VECTORD_DIRECTORY_REDIS_URL\n"
          "  -h, --help         this text;  --version  the version\n",
          f);
    fputs("commands: vectorctl COMMAND --help shows a command's options\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const vc_cmd *c = &commands[i];
        char head[96];
        snprintf(head, sizeof head, "%s %s", c->name, c->synopsis);
        if (strlen(head) > 34)
            fprintf(f, "  %s\n  %-34s %s\n", head, "", c->summary);
        else
            fprintf(f, "  %-34s %s\n", head, c->summary);
    }
    fputs("exit status: 0 ok, 1 error reply, 2 usage, 3 timeout, 4 Kafka/IO\n", f);
}

static const vc_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

/* Brokers: -b, else -X kafka.bootstrap.servers, else $VECTORD_BROKERS,
 * else what an embedded vectord in this directory wrote (buf). */
static void find_brokers(ctl *c, char *buf, size_t cap)
{
    if (!c->brokers) c->brokers = vd_config_kafka(c->cfg, "bootstrap.servers");
    if (!c->brokers) c->brokers = getenv("VECTORD_BROKERS");
    if (!c->brokers) {
        FILE *f = fopen(vd_config_str(c->cfg, "embedded.bootstrap.file"), "r");
        if (f && fgets(buf, (int)cap, f)) {
            buf[strcspn(buf, "\r\n")] = '\0';
            c->brokers = buf;
        }
        if (f) fclose(f);
    }
    if (!c->brokers)
        die(EXIT_USAGE, "no brokers: pass -b HOST:PORT, set VECTORD_BROKERS, or run vectord in "
                        "embedded mode from this directory (it writes ./var/vectord/bootstrap)");
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
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "+:b:X:h", global_opts, NULL)) != -1) {
        switch (o) {
        case 'b':
            c.brokers = optarg;
            break;
        case 'X':
            if (vd_config_set_kv(cfg, optarg, "-X", &err)) die(EXIT_USAGE, "%s", err.msg);
            break;
        case G_TIMEOUT:
            c.timeout_ms = (int)vc_int(NULL, "--timeout", optarg, 1, INT32_MAX);
            break;
        case G_REPLY_TOPIC:
            c.t_reply = optarg;
            break;
        case G_REDIS:
            redis_url = optarg;
            break;
        case G_JSON:
            c.json_out = 1;
            break;
        case G_NO_WAIT:
            c.no_wait = 1;
            break;
        case 'h':
        case G_HELP:
            usage(stdout);
            vd_config_free(cfg);
            return 0;
        case G_VERSION:
            printf("vectorctl %s\n", VECTORD_VERSION);
            vd_config_free(cfg);
            return 0;
        default:
            vc_opt_error(NULL, o, argv, global_opts, NULL, NULL);
        }
    }
    if (optind >= argc) die(EXIT_USAGE, "no command (vectorctl --help lists them)");
    const char *name = argv[optind];
    const vc_cmd *spec = find_command(name);
    if (!spec) die(EXIT_USAGE, "unknown command '%s' (vectorctl --help lists them)", name);
    vc_args a;
    vc_args_parse(spec, argc - optind, argv + optind, global_opts, &a);
    const char *p0 = a.npos > 0 ? a.pos[0] : NULL, *p1 = a.npos > 1 ? a.pos[1] : NULL;

    /* Everything is checked before connecting: a usage error never waits. */
    if (!strcmp(name, "inspect")) {
        vd_config_free(cfg);
        return cmd_inspect(p0);
    }
    if (!strcmp(name, "ls") || !strcmp(name, "status")) {
        int rc = !strcmp(name, "ls") ? cmd_ls(&c, redis_url) : cmd_status(&c, redis_url);
        vd_config_free(cfg);
        return rc;
    }
    json_t *request = NULL, *vector = NULL;
    vec_file vf = {0};
    int64_t n1 = 0, n2 = 0, n3 = 0;
    if (!strcmp(name, "create")) {
        const char *dist = vc_arg(&a, VC_OPT_DISTANCE) ?: "cosine";
        vd_distance d;
        if (!vc_arg(&a, VC_OPT_DIM)) die(EXIT_USAGE, "create: --dim N is required");
        if (vd_distance_parse(dist, strlen(dist), &d, &err))
            die(EXIT_USAGE, "create: --distance: '%s' is not one of cosine, euclidean, dot", dist);
        request = json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:b}", "op", "create", "index", p0, "dimension",
            (json_int_t)vc_int(name, "--dim", vc_arg(&a, VC_OPT_DIM), 1, INT32_MAX), "m",
            (json_int_t)vc_int_or(name, "--m", vc_arg(&a, VC_OPT_M), 16, 1, INT32_MAX),
            "ef_construction",
            (json_int_t)vc_int_or(name, "--ef-construction", vc_arg(&a, VC_OPT_EF_CONSTRUCTION),
                                  200, 1, INT32_MAX),
            "ef_search",
            (json_int_t)vc_int_or(name, "--ef-search", vc_arg(&a, VC_OPT_EF_SEARCH), 64, 1,
                                  INT32_MAX),
            "distance", dist, "if_not_exists", vc_arg(&a, VC_OPT_IF_NOT_EXISTS) != NULL);
    } else if (!strcmp(name, "add")) {
        n1 = vc_int_or(name, "--batch", vc_arg(&a, VC_OPT_BATCH), 500, 1, 1000000);
        n2 = vc_int_or(name, "--max-in-flight", vc_arg(&a, VC_OPT_MAX_IN_FLIGHT), 8, 1, 1024);
        vf_open(&vf, p1);
    } else if (!strcmp(name, "delete")) {
        json_t *ids = json_array();
        for (size_t i = 1; i < a.npos; i++) json_array_append_new(ids, json_string(a.pos[i]));
        request = json_pack("{s:s, s:s, s:o}", "op", "delete", "index", p0, "ids", ids);
    } else if (!strcmp(name, "drop")) {
        request = json_pack("{s:s, s:s, s:b}", "op", "drop", "index", p0, "if_exists",
                            vc_arg(&a, VC_OPT_IF_EXISTS) != NULL);
    } else if (!strcmp(name, "info")) {
        request = json_pack("{s:s, s:s}", "op", "info", "index", p0);
    } else if (!strcmp(name, "search")) {
        const char *v = vc_arg(&a, VC_OPT_VECTOR), *q = vc_arg(&a, VC_OPT_QUERIES);
        if (!v == !q) die(EXIT_USAGE, "search: one of --vector '[...]' or --queries FILE");
        n1 = vc_int_or(name, "--k", vc_arg(&a, VC_OPT_K), 10, 1, INT32_MAX);
        n2 = vc_int_or(name, "--ef", vc_arg(&a, VC_OPT_EF), 0, 1, INT32_MAX);
        n3 = vc_int_or(name, "--min-offset", vc_arg(&a, VC_OPT_MIN_OFFSET), -1, 0, INT64_MAX);
        if (v) {
            json_error_t je;
            vector = json_loads(v, JSON_DECODE_ANY, &je);
            if (!json_is_array(vector))
                die(EXIT_USAGE, "search: --vector: '%s' is not a JSON array%s%s", v,
                    vector ? "" : ": ", vector ? "" : je.text);
        } else {
            vf_open(&vf, q);
        }
    } else if (!strcmp(name, "produce")) {
        for (size_t i = 0; i < a.nheaders; i++)
            if (!strchr(a.headers[i], '='))
                die(EXIT_USAGE, "produce: --header: '%s' is not NAME=VALUE", a.headers[i]);
        n1 = vc_int_or(name, "--partition", vc_arg(&a, VC_OPT_PARTITION), -1, 0, INT32_MAX);
        n2 = vc_int_or(name, "--count", vc_arg(&a, VC_OPT_COUNT), 1, 1, INT64_MAX);
    } else if (!strcmp(name, "consume")) {
        n1 = vc_int_or(name, "--count", vc_arg(&a, VC_OPT_COUNT), -1, 1, INT64_MAX);
    }

    char embedded[256];
    find_brokers(&c, embedded, sizeof embedded);
    c.t_cmd = vd_config_str(cfg, "topic.commands");
    c.t_search = vd_config_str(cfg, "topic.search");
    ctl_connect(&c);
    int rc = 0;
    if (!strcmp(name, "produce"))
        rc = cmd_produce(&c, p0, p1, a.headers, a.nheaders, (int32_t)n1, n2);
    else if (!strcmp(name, "consume"))
        rc = cmd_consume(&c, p0, n1);
    else if (!strcmp(name, "add"))
        rc = cmd_add(&c, p0, &vf, p1, (size_t)n1, (size_t)n2);
    else if (!strcmp(name, "search"))
        rc = cmd_search(&c, p0, vector, &vf, vc_arg(&a, VC_OPT_QUERIES), n1, n2, n3);
    else
        rc = print_reply(&c,
                         roundtrip(&c, !strcmp(name, "info") ? c.t_search : c.t_cmd, p0, request));
    rd_kafka_flush(c.producer, 5000);
    rd_kafka_consumer_close(c.consumer);
    rd_kafka_destroy(c.consumer);
    rd_kafka_destroy(c.producer);
    vd_config_free(cfg);
    free(a.pos);
    free(a.headers);
    return rc;
}
