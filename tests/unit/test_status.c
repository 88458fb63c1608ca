/*
 * test_status.c - /metrics and /readyz of src/worker/status.c, served by
 * the real HTTP endpoint over a worker built by hand (no Kafka): the
 * exposition text, and that the three endpoints answer while an index's
 * write lock is held, as it is for the whole of a long add batch or a
 * repair (docs/worker.md, "HTTP endpoints"); and the readers of the
 * partition's offsets (/metrics, /readyz, info and search answers) on
 * their own threads while commands are applied, for ThreadSanitizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec/codec.h"
#include "http/http.h"
#include "http_get.h"
#include "index/index_internal.h" /* the index's lock, to hold it as a writer does */
#include "worker/apply.h"
#include "worker/partition.h"
#include "worker/rebalance.h"
#include "worker/search.h"
#include "worker/status.h"

#define LIMIT_MS 500

typedef struct fixture {
    vd_worker w;
    vd_limits limits;
    vd_index *ix; /* "docs" in partition 0 */
    vd_http *s;
    int port;
} fixture;

static void add(vd_index *ix, const char *id, float x, float y)
{
    float v[2] = {x, y};
    vd_item it = {.id = id, .id_len = strlen(id), .vector = v, .vector_len = 2};
    vd_error err = {0};
    assert_int_equal(vd_index_add(ix, &it, 1, &err), VD_OK);
}

/* Partition 0 ready with "docs" (2 live items, 1 tombstone), partition 1
 * unassigned; the HTTP endpoint on a free port. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    vd_worker *w = &f->w;
    w->t_cmd = "vectord.commands";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr); /* no broker: quiet */
    if (!(w->consumer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) return -1;
    w->nparts = 2;
    w->parts = calloc(2, sizeof *w->parts);
    for (int32_t i = 0; i < 2; i++) vd_partition_init(&w->parts[i], i);
    atomic_store(&w->assigned_once, 1);

    vd_limits_init(&f->limits);
    f->limits.repair_threshold = 0.9; /* keep the tombstone */
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = 2;
    vd_error err = {0};
    if (vd_index_new(&f->ix, "docs", 4, &p, &f->limits, &err)) return -1;
    add(f->ix, "a", 1, 0);
    add(f->ix, "b", 0, 1);
    add(f->ix, "c", 1, 1);
    const char *id = "c";
    size_t len = 1;
    if (vd_index_delete(f->ix, &id, &len, 1, NULL, NULL, &err)) return -1;
    vd_partition *p0 = &w->parts[0];
    pthread_rwlock_wrlock(&p0->lock);
    vd_partition_add(p0, "docs", 4, f->ix);
    pthread_rwlock_unlock(&p0->lock);
    vd_partition_activate(p0, 5, 5); /* applied 4, ready */

    vd_http_handlers h = {w, vd_status_metrics, vd_status_ready};
    if (vd_http_start(&f->s, "127.0.0.1:0", &h, &err)) return -1;
    f->port = vd_http_port(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vd_http_stop(f->s);
    for (int32_t i = 0; i < f->w.nparts; i++) vd_partition_destroy(&f->w.parts[i]);
    free(f->w.parts);
    rd_kafka_destroy(f->w.consumer);
    free(f);
    return 0;
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line)) fail_msg("\"%s\" is missing from:\n%s", line, text);
}

static void test_metrics_text(void **state)
{
    fixture *f = *state;
    http_answer a;
    http_get(f->port, "/metrics", 2000, &a);
    assert_int_equal(a.status, 200);
    assert_has(a.body, "# TYPE vectord_commands_applied_total counter\n"
                       "vectord_commands_applied_total 0\n");
    assert_has(a.body, "vectord_fenced 0\n");
    assert_has(a.body, "vectord_partition_state{partition=\"0\",state=\"ready\"} 1\n");
    assert_has(a.body, "vectord_partition_applied_offset{partition=\"0\"} 4\n");
    assert_has(a.body, "vectord_index_items{index=\"docs\",partition=\"0\"} 2\n");
    assert_has(a.body, "vectord_index_deleted{index=\"docs\",partition=\"0\"} 1\n");
    assert_has(a.body, "vectord_index_bytes{index=\"docs\",partition=\"0\"} ");
    assert_null(strstr(a.body, "partition=\"1\"")); /* unassigned: not listed */

    /* The gauges follow each completed write. */
    add(f->ix, "d", 2, 1);
    http_get(f->port, "/metrics", 2000, &a);
    assert_has(a.body, "vectord_index_items{index=\"docs\",partition=\"0\"} 3\n");

    http_get(f->port, "/readyz", 2000, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ready\n");
    vd_partition_set_state(&f->w.parts[1], VD_PART_LOADING);
    http_get(f->port, "/readyz", 2000, &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.body, "partition 1: loading\nnot ready\n");
}

/* An index's write lock is held for a whole add batch or repair. */
static void test_answers_while_index_written(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/healthz", "/readyz", "/metrics", "/healthz"};
    http_answer a[4];
    pthread_rwlock_wrlock(&f->ix->lock);
    for (int i = 0; i < 4; i++) http_get(f->port, paths[i], LIMIT_MS, &a[i]);
    pthread_rwlock_unlock(&f->ix->lock); /* before asserting, so teardown can stop the server */
    for (int i = 0; i < 4; i++)
        printf("%s: status %d in %.0f ms, the index write-locked\n", paths[i], a[i].status,
               a[i].ms);
    for (int i = 0; i < 4; i++) {
        if (a[i].status != 200)
            fail_msg("%s: no answer within %d ms while the index is write-locked", paths[i],
                     LIMIT_MS);
    }
    /* As of the last completed write. */
    assert_has(a[2].body, "vectord_index_items{index=\"docs\",partition=\"0\"} 2\n");
    assert_has(a[2].body, "vectord_index_deleted{index=\"docs\",partition=\"0\"} 1\n");
}

/* The registry's write lock (create, drop, load, revoke): the probes do
 * not take it. */
static void test_probes_while_registry_written(void **state)
{
    fixture *f = *state;
    http_answer h, r;
    pthread_rwlock_wrlock(&f->w.parts[0].lock);
    http_get(f->port, "/healthz", LIMIT_MS, &h);
    http_get(f->port, "/readyz", LIMIT_MS, &r);
    pthread_rwlock_unlock(&f->w.parts[0].lock);
    assert_int_equal(h.status, 200);
    assert_int_equal(r.status, 200);
}

/* ------------------------------------------------------------------ */
/* Readers against the poll thread. */

typedef struct reader {
    fixture *f;
    atomic_int stop;
    atomic_long rounds;
    atomic_int failures; /* cmocka's asserts are for the test's own thread */
} reader;

static vd_request *decode(const fixture *f, const char *json)
{
    vd_request *req = NULL;
    vd_error err = {0};
    return vd_request_decode(json, strlen(json), VD_CT_JSON, &f->limits, &req, &err) ? NULL : req;
}

/* What the HTTP threads and a search thread read, over and over: /metrics,
 * /readyz, an info and a search answer of partition 0. */
static void *read_status(void *arg)
{
    reader *r = arg;
    vd_worker *w = &r->f->w;
    FILE *null = fopen("/dev/null", "w");
    vd_request *info = decode(r->f, "{\"op\":\"info\",\"index\":\"docs\"}");
    vd_request *search =
        decode(r->f, "{\"op\":\"search\",\"index\":\"docs\",\"vector\":[1,0],\"k\":2}");
    vd_writer *wr = NULL;
    if (!null || !info || !search || vd_writer_new(&wr, VD_CT_JSON)) r->failures++;
    while (!r->failures && !atomic_load(&r->stop)) {
        vd_error err = {0};
        vd_status_metrics(w, null);
        vd_status_ready(w, null);
        vd_writer_reset(wr);
        if (vd_search_answer(&w->parts[0], info, wr, &err)) r->failures++;
        vd_writer_reset(wr);
        if (vd_search_answer(&w->parts[0], search, wr, &err)) r->failures++;
        r->rounds++;
    }
    vd_writer_free(wr);
    vd_request_free(info);
    vd_request_free(search);
    if (null) fclose(null);
    return NULL;
}

/* The last offset an info answer of partition 0's "docs" reports. */
static int64_t info_applied(fixture *f)
{
    vd_request *info = decode(f, "{\"op\":\"info\",\"index\":\"docs\"}");
    vd_writer *wr;
    vd_error err = {0};
    assert_non_null(info);
    assert_int_equal(vd_writer_new(&wr, VD_CT_JSON), VD_OK);
    assert_int_equal(vd_search_answer(&f->w.parts[0], info, wr, &err), VD_OK);
    size_t len;
    const char *body = (const char *)vd_writer_data(wr, &len);
    const char *at = strstr(body, "\"applied_offset\":");
    assert_non_null(at);
    int64_t off = strtoll(at + strlen("\"applied_offset\":"), NULL, 10);
    vd_writer_free(wr);
    vd_request_free(info);
    return off;
}

/*
 * The fields the poll thread writes and other threads read (issue 9:
 * e->last, p->applied, p->pending, fenced), written here as the poll
 * thread writes them - commands applied and consumed, an assignment -
 * while one thread reads them as /metrics, /readyz and the search threads
 * do. Whatever the build, the readers see the final values; under
 * ThreadSanitizer (VD_TSAN) a field written without the synchronisation
 * its readers rely on is reported as a data race and fails the test.
 */
static void test_readers_while_applying(void **state)
{
    fixture *f = *state;
    vd_worker *w = &f->w;
    vd_partition *p0 = &w->parts[0];
    vd_apply_rules rules = {&f->limits, 4096, w->t_cmd, NULL};
    rd_kafka_topic_partition_list_t *none = rd_kafka_topic_partition_list_new(0);
    reader r = {.f = f};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_status, &r), 0);
    while (!r.rounds && !r.failures) sched_yield(); /* both sides running */
    enum { N = 1000, FIRST = 5 };
    int acked = 0;
    for (int i = 0; i < N; i++) {
        char json[128];
        snprintf(json, sizeof json,
                 "{\"op\":\"add\",\"index\":\"docs\",\"items\":[{\"id\":\"w%d\","
                 "\"vector\":[%d,1]}]}",
                 i, i);
        vd_command c = {.key = "docs",
                        .key_len = 4,
                        .value = json,
                        .len = strlen(json),
                        .ct = VD_CT_JSON,
                        .partition = 0,
                        .offset = FIRST + i};
        vd_apply_outcome o;
        vd_apply_command(&rules, p0, &c, &o);
        acked += o.kind == VD_APPLY_ACK;
        vd_partition_advance(p0, c.offset);
        /* A new generation (of nothing): the rebalance callback clears fenced. */
        vd_rebalance_cb(w->consumer, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, none, w);
    }
    r.stop = 1;
    pthread_join(t, NULL);
    rd_kafka_topic_partition_list_destroy(none);
    printf("%d commands applied while the readers went round %ld times\n", acked, (long)r.rounds);
    assert_int_equal(r.failures, 0);
    assert_int_equal(acked, N);

    assert_int_equal(info_applied(f), FIRST + N - 1);
    http_answer a;
    http_get(f->port, "/metrics", 2000, &a);
    char line[128];
    snprintf(line, sizeof line, "vectord_partition_applied_offset{partition=\"0\"} %d\n",
             FIRST + N - 1);
    assert_has(a.body, line);
    snprintf(line, sizeof line, "vectord_partition_pending{partition=\"0\"} %d\n", N);
    assert_has(a.body, line);
    assert_has(a.body, "vectord_fenced 0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_while_index_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes_while_registry_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_while_applying, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
