/*
 * kafka_bench.c - vectord over Kafka, measured (vectord-kbench):
 *
 *   vectord-kbench -b BROKERS ingest --base F.fvecs --index NAME [--batch 500] [--limit N]
 *       creates NAME, sends every row as msgpack add batches (float32 bin
 *       vectors) with reply-to, waits for every ack: vectors/s end to end.
 *   vectord-kbench -b BROKERS search --index NAME --queries F.fvecs [--clients 1]
 *       [--seconds 10] [--k 10] [--topic vectord.search]
 *       closed-loop clients, one request in flight each: p50/p99 latency, rps.
 *   vectord-kbench -b BROKERS echo-server --topic T
 *       answers every record of T with its value on its reply-to topic: the
 *       same Kafka round trip as a search, with no work (the baseline).
 *
 * One JSON object per line on stdout. Replies come back on vectord.replies
 * (override with --reply-topic); a dispatcher thread hands each one to the
 * client waiting on its correlation id.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/writer.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vectord-kbench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i < argc - 1; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static float *read_fvecs(const char *path, size_t limit, size_t *rows, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    float *data = NULL;
    size_t cap = 0;
    int32_t d;
    *rows = *dim = 0;
    while ((!limit || *rows < limit) && fread(&d, 4, 1, f) == 1) {
        if (d <= 0 || (*dim && (size_t)d != *dim)) die("%s: bad dimension", path);
        *dim = (size_t)d;
        if (*rows == cap) {
            cap = cap ? cap * 2 : 1024;
            data = realloc(data, cap * *dim * sizeof *data);
        }
        if (fread(data + *rows * *dim, 4, *dim, f) != *dim) die("%s: truncated", path);
        (*rows)++;
    }
    fclose(f);
    return data;
}

/* ---- a client: producer, reply dispatcher, waiting slots ---- */

#define MAX_WAIT 4096

typedef struct slot {
    char corr[48];
    int used, done;
    double sent, rtt;
    int ok;
} slot;

typedef struct client {
    rd_kafka_t *p, *c;
    const char *reply_topic;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    slot slots[MAX_WAIT];
    volatile int stop;
    pthread_t dispatcher;
    uint64_t seq;
} client;

static void *dispatch(void *arg)
{
    client *cl = arg;
    while (!cl->stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->c, 50);
        if (!m) continue;
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t n;
        if (!m->err && !rd_kafka_message_headers(m, &h) &&
            !rd_kafka_header_get_last(h, "correlation-id", &v, &n) && n < 48) {
            double t = now_s();
            pthread_mutex_lock(&cl->mu);
            for (int i = 0; i < MAX_WAIT; i++) {
                slot *s = &cl->slots[i];
                if (s->used && !s->done && strlen(s->corr) == n && !memcmp(s->corr, v, n)) {
                    s->done = 1;
                    s->rtt = t - s->sent;
                    /* An error reply contains "error"; msgpack or JSON alike. */
                    s->ok = !memmem(m->payload, m->len, "error", 5);
                    pthread_cond_broadcast(&cl->cond);
                    break;
                }
            }
            pthread_mutex_unlock(&cl->mu);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void client_open(client *cl, const char *brokers, const char *reply_topic)
{
    char errstr[512];
    memset(cl, 0, sizeof *cl);
    cl->reply_topic = reply_topic;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cond, NULL);
    rd_kafka_conf_t *pc = rd_kafka_conf_new(), *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", brokers, NULL, 0);
    rd_kafka_conf_set(pc, "partitioner", "murmur2_random", NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "0", NULL, 0);
    rd_kafka_conf_set(cc, "bootstrap.servers", brokers, NULL, 0);
    rd_kafka_conf_set(cc, "group.id", "vectord-kbench", NULL, 0);
    rd_kafka_conf_set(cc, "fetch.wait.max.ms", "5", NULL, 0);
    rd_kafka_conf_set(cc, "enable.auto.commit", "false", NULL, 0);
    if (!(cl->p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr))) die("%s", errstr);
    if (!(cl->c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr))) die("%s", errstr);
    rd_kafka_poll_set_consumer(cl->c);
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(cl->c, reply_topic, 0, &lo, &hi, 10000))
        die("reply topic %s (partition 0) not reachable", reply_topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, reply_topic, 0)->offset = hi;
    rd_kafka_assign(cl->c, l);
    rd_kafka_topic_partition_list_destroy(l);
    pthread_create(&cl->dispatcher, NULL, dispatch, cl);
}

static void client_close(client *cl)
{
    cl->stop = 1;
    pthread_join(cl->dispatcher, NULL);
    rd_kafka_flush(cl->p, 5000);
    rd_kafka_consumer_close(cl->c);
    rd_kafka_destroy(cl->c);
    rd_kafka_destroy(cl->p);
}

/* Sends body to topic keyed by key; returns the slot waiting for the reply. */
static int client_send(client *cl, const char *topic, const char *key, const void *body, size_t len)
{
    pthread_mutex_lock(&cl->mu);
    int i;
    for (;;) {
        for (i = 0; i < MAX_WAIT && cl->slots[i].used; i++) {
        }
        if (i < MAX_WAIT) break;
        pthread_cond_wait(&cl->cond, &cl->mu);
    }
    slot *s = &cl->slots[i];
    memset(s, 0, sizeof *s);
    s->used = 1;
    snprintf(s->corr, sizeof s->corr, "kb-%ld-%" PRIu64, (long)getpid(), cl->seq++);
    s->sent = now_s();
    pthread_mutex_unlock(&cl->mu);
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(cl->p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE((void *)body, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_HEADER("reply-to", cl->reply_topic, -1),
                                  RD_KAFKA_V_HEADER("correlation-id", s->corr, -1),
                                  RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(cl->p, 10);
    if (e) die("produce: %s", rd_kafka_err2str(e));
    rd_kafka_poll(cl->p, 0);
    return i;
}

/* Waits for slot i's reply; returns its round trip in seconds, -1 on timeout. */
static double client_wait(client *cl, int i, double timeout, int *ok)
{
    double deadline = now_s() + timeout, rtt = -1;
    pthread_mutex_lock(&cl->mu);
    while (!cl->slots[i].done && now_s() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&cl->cond, &cl->mu, &ts);
    }
    if (cl->slots[i].done) {
        rtt = cl->slots[i].rtt;
        if (ok) *ok = cl->slots[i].ok;
    }
    cl->slots[i].used = 0;
    pthread_cond_broadcast(&cl->cond);
    pthread_mutex_unlock(&cl->mu);
    return rtt;
}

/* ---- msgpack bodies through the codec's writer ---- */

static uint8_t *take(vd_writer *w, size_t *len)
{
    uint8_t *buf;
    if (vd_writer_take(w, &buf, len, NULL)) die("out of memory");
    return buf;
}

/* ---- ingest ---- */

static int cmd_ingest(int argc, char **argv, client *cl)
{
    const char *base = opt(argc, argv, "--base", NULL), *index = opt(argc, argv, "--index", NULL);
    const char *topic = opt(argc, argv, "--topic", "vectord.commands");
    size_t batch = (size_t)atoi(opt(argc, argv, "--batch", "500"));
    size_t limit = (size_t)atoll(opt(argc, argv, "--limit", "0")), rows, dim;
    if (!base || !index) die("ingest needs --base F.fvecs --index NAME");
    float *data = read_fvecs(base, limit, &rows, &dim);
    vd_writer *w;
    vd_writer_new(&w, VD_CT_MSGPACK);
    size_t len;
    vd_writer_map_begin(w, 5);
    vd_writer_key(w, "op");
    vd_writer_cstr(w, "create");
    vd_writer_key(w, "index");
    vd_writer_cstr(w, index);
    vd_writer_key(w, "dimension");
    vd_writer_uint(w, dim);
    vd_writer_key(w, "distance");
    vd_writer_cstr(w, opt(argc, argv, "--metric", "euclidean"));
    vd_writer_key(w, "if_not_exists");
    vd_writer_bool(w, 1);
    vd_writer_map_end(w);
    uint8_t *body = take(w, &len);
    int ok = 0;
    if (client_wait(cl, client_send(cl, topic, index, body, len), 60, &ok) < 0 || !ok)
        die("create of %s was not acknowledged", index);
    free(body);
    size_t nb = (rows + batch - 1) / batch;
    int *pending = malloc(nb * sizeof *pending);
    double t0 = now_s();
    char id[32];
    for (size_t b = 0; b < nb; b++) {
        size_t from = b * batch, n = rows - from < batch ? rows - from : batch;
        vd_writer_map_begin(w, 3);
        vd_writer_key(w, "op");
        vd_writer_cstr(w, "add");
        vd_writer_key(w, "index");
        vd_writer_cstr(w, index);
        vd_writer_key(w, "items");
        vd_writer_array_begin(w, (uint32_t)n);
        for (size_t r = from; r < from + n; r++) {
            vd_writer_map_begin(w, 2);
            vd_writer_key(w, "id");
            int il = snprintf(id, sizeof id, "%zu", r);
            vd_writer_str(w, id, (size_t)il);
            vd_writer_key(w, "vector");
            vd_writer_bin(w, data + r * dim, dim * sizeof(float));
            vd_writer_map_end(w);
        }
        vd_writer_array_end(w);
        vd_writer_map_end(w);
        body = take(w, &len);
        pending[b] = client_send(cl, topic, index, body, len);
        free(body);
    }
    size_t failed = 0;
    for (size_t b = 0; b < nb; b++) {
        if (client_wait(cl, pending[b], 600, &ok) < 0) die("batch %zu was not acknowledged", b);
        failed += !ok;
    }
    double secs = now_s() - t0;
    printf("{\"ingest_s\":%.3f,\"vectors\":%zu,\"dim\":%zu,\"batch\":%zu,\"vectors_per_s\":%.0f,"
           "\"failed_batches\":%zu}\n",
           secs, rows, dim, batch, rows / secs, failed);
    vd_writer_free(w);
    free(pending);
    free(data);
    return failed ? 1 : 0;
}

/* ---- search / echo latency ---- */

typedef struct load {
    client *cl;
    const char *topic, *index;
    uint8_t **bodies;
    size_t *lens, nq;
    double until;
    double *rtts;
    size_t n, cap, errors;
} load;

static void *load_thread(void *arg)
{
    load *ld = arg;
    for (size_t q = 0; now_s() < ld->until; q++) {
        int ok = 0;
        size_t i = q % ld->nq;
        double rtt = client_wait(
            ld->cl, client_send(ld->cl, ld->topic, ld->index, ld->bodies[i], ld->lens[i]), 10, &ok);
        if (rtt < 0 || !ok) {
            ld->errors++;
            continue;
        }
        if (ld->n == ld->cap) {
            ld->cap = ld->cap ? ld->cap * 2 : 1024;
            ld->rtts = realloc(ld->rtts, ld->cap * sizeof *ld->rtts);
        }
        ld->rtts[ld->n++] = rtt;
    }
    return NULL;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_search(int argc, char **argv, client *cl, int echo)
{
    const char *index = opt(argc, argv, "--index", "bench");
    const char *topic = opt(argc, argv, "--topic", echo ? "vectord.echo" : "vectord.search");
    const char *queries = opt(argc, argv, "--queries", NULL);
    int clients = atoi(opt(argc, argv, "--clients", "1"));
    double seconds = atof(opt(argc, argv, "--seconds", "10"));
    if (!queries) die("search needs --queries F.fvecs");
    size_t nq, dim;
    float *q = read_fvecs(queries, 1000, &nq, &dim);
    uint8_t **bodies = malloc(nq * sizeof *bodies);
    size_t *lens = malloc(nq * sizeof *lens);
    vd_writer *w;
    vd_writer_new(&w, VD_CT_MSGPACK);
    for (size_t i = 0; i < nq; i++) {
        vd_writer_map_begin(w, 4);
        vd_writer_key(w, "op");
        vd_writer_cstr(w, "search");
        vd_writer_key(w, "index");
        vd_writer_cstr(w, index);
        vd_writer_key(w, "k");
        vd_writer_uint(w, (uint64_t)atoi(opt(argc, argv, "--k", "10")));
        vd_writer_key(w, "vector");
        vd_writer_bin(w, q + i * dim, dim * sizeof(float));
        vd_writer_map_end(w);
        bodies[i] = take(w, &lens[i]);
    }
    /* Warm up: connections, the worker's caches. */
    load warm = {cl, topic, index, bodies, lens, nq, now_s() + 1, NULL, 0, 0, 0};
    load_thread(&warm);
    free(warm.rtts);
    load *ld = calloc((size_t)clients, sizeof *ld);
    pthread_t *tid = malloc((size_t)clients * sizeof *tid);
    double t0 = now_s();
    for (int c = 0; c < clients; c++) {
        ld[c] = (load){cl, topic, index, bodies, lens, nq, t0 + seconds, NULL, 0, 0, 0};
        pthread_create(&tid[c], NULL, load_thread, &ld[c]);
    }
    size_t total = 0, errors = 0;
    for (int c = 0; c < clients; c++) {
        pthread_join(tid[c], NULL);
        total += ld[c].n;
        errors += ld[c].errors;
    }
    double elapsed = now_s() - t0;
    double *all = malloc((total ? total : 1) * sizeof *all);
    for (int c = 0, k = 0; c < clients; c++)
        for (size_t i = 0; i < ld[c].n; i++) all[k++] = ld[c].rtts[i];
    qsort(all, total, sizeof *all, dcmp);
    printf("{\"mode\":\"%s\",\"clients\":%d,\"requests\":%zu,\"errors\":%zu,\"rps\":%.0f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           echo ? "echo" : "search", clients, total, errors, total / elapsed,
           total ? all[total / 2] * 1e3 : -1.0, total ? all[total * 99 / 100] * 1e3 : -1.0);
    for (int c = 0; c < clients; c++) free(ld[c].rtts);
    for (size_t i = 0; i < nq; i++) free(bodies[i]);
    free(all);
    free(ld);
    free(tid);
    free(bodies);
    free(lens);
    free(q);
    vd_writer_free(w);
    return errors ? 1 : 0;
}

/* ---- the echo server: a worker that does no work ---- */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int cmd_echo_server(int argc, char **argv, const char *brokers)
{
    const char *topic = opt(argc, argv, "--topic", "vectord.echo");
    char errstr[512];
    rd_kafka_conf_t *pc = rd_kafka_conf_new(), *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", brokers, NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "1", NULL, 0);
    rd_kafka_conf_set(cc, "bootstrap.servers", brokers, NULL, 0);
    rd_kafka_conf_set(cc, "group.id", "vectord-echo", NULL, 0);
    rd_kafka_conf_set(cc, "auto.offset.reset", "latest", NULL, 0);
    rd_kafka_conf_set(cc, "fetch.wait.max.ms", "5", NULL, 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    if (!p || !c) die("%s", errstr);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop_flag) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        rd_kafka_poll(p, 0);
        if (!m) continue;
        rd_kafka_headers_t *h = NULL;
        const void *rt, *corr;
        size_t rtn, corrn;
        if (!m->err && !rd_kafka_message_headers(m, &h) &&
            !rd_kafka_header_get_last(h, "reply-to", &rt, &rtn) &&
            !rd_kafka_header_get_last(h, "correlation-id", &corr, &corrn)) {
            char rtopic[256];
            snprintf(rtopic, sizeof rtopic, "%.*s", (int)rtn, (const char *)rt);
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(rtopic), RD_KAFKA_V_VALUE(m->payload, m->len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADER("correlation-id", corr, (ssize_t)corrn),
                              RD_KAFKA_V_END);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_flush(p, 5000);
    rd_kafka_destroy(p);
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = opt(argc, argv, "-b", NULL);
    const char *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            i++;
            continue;
        }
        cmd = argv[i];
        break;
    }
    if (!brokers || !cmd)
        die("usage: vectord-kbench -b BROKERS ingest|search|echo|echo-server ...");
    if (!strcmp(cmd, "echo-server")) return cmd_echo_server(argc, argv, brokers);
    client cl;
    client_open(&cl, brokers, opt(argc, argv, "--reply-topic", "vectord.replies"));
    int rc;
    if (!strcmp(cmd, "ingest"))
        rc = cmd_ingest(argc, argv, &cl);
    else if (!strcmp(cmd, "search"))
        rc = cmd_search(argc, argv, &cl, 0);
    else if (!strcmp(cmd, "echo"))
        rc = cmd_search(argc, argv, &cl, 1);
    else
        die("unknown command %s", cmd);
    client_close(&cl);
    return rc;
}
