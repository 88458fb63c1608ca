/*
 * test_http.c - the HTTP endpoint of src/http/ with fake handlers: the
 * routes and their status codes, and that /healthz and /readyz answer
 * while a /metrics request is still being written (a slow scrape must not
 * fail the liveness probe; docs/worker.md, "HTTP endpoints").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "http/http.h"
#include "http_get.h"

/* Handlers whose /metrics can be held until the test releases it. */
typedef struct fake {
    atomic_int hold;    /* 1: /metrics waits for release */
    atomic_int entered; /* /metrics requests that reached the handler */
    atomic_int ready;
    pthread_mutex_t mu;
    pthread_cond_t cond;
} fake;

static void fake_metrics(void *ctx, FILE *out)
{
    fake *f = ctx;
    atomic_fetch_add(&f->entered, 1);
    pthread_mutex_lock(&f->mu);
    while (atomic_load(&f->hold)) pthread_cond_wait(&f->cond, &f->mu);
    pthread_mutex_unlock(&f->mu);
    fputs("fake_metric 1\n", out);
}

static int fake_ready(void *ctx, FILE *out)
{
    fake *f = ctx;
    if (!atomic_load(&f->ready)) fputs("partition 0: loading\n", out);
    return atomic_load(&f->ready);
}

static void release(fake *f)
{
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->hold, 0);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

typedef struct fixture {
    fake f;
    vd_http *s;
    int port;
} fixture;

static int setup(void **state)
{
    fixture *x = calloc(1, sizeof *x);
    pthread_mutex_init(&x->f.mu, NULL);
    pthread_cond_init(&x->f.cond, NULL);
    vd_http_handlers h = {&x->f, fake_metrics, fake_ready};
    vd_error err = {0};
    if (vd_http_start(&x->s, "127.0.0.1:0", &h, &err) != VD_OK) {
        fprintf(stderr, "vd_http_start: %s\n", err.msg);
        free(x);
        return -1;
    }
    x->port = vd_http_port(x->s);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fixture *x = *state;
    release(&x->f);
    vd_http_stop(x->s);
    pthread_mutex_destroy(&x->f.mu);
    pthread_cond_destroy(&x->f.cond);
    free(x);
    return 0;
}

static void test_routes(void **state)
{
    fixture *x = *state;
    http_answer a;
    http_get(x->port, "/healthz", 2000, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ok\n");
    http_get(x->port, "/metrics", 2000, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "fake_metric 1\n");
    http_get(x->port, "/readyz", 2000, &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.body, "partition 0: loading\nnot ready\n");
    atomic_store(&x->f.ready, 1);
    http_get(x->port, "/readyz", 2000, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ready\n");
    http_get(x->port, "/nope", 2000, &a);
    assert_int_equal(a.status, 404);
    assert_non_null(strstr(a.body, "/healthz"));
}

typedef struct scrape {
    int port;
    http_answer a;
} scrape;

static void *scrape_main(void *arg)
{
    scrape *s = arg;
    http_get(s->port, "/metrics", 10000, &s->a);
    return NULL;
}

/* /healthz and /readyz while a /metrics request is stuck in its handler. */
static void test_probes_not_queued_behind_metrics(void **state)
{
    fixture *x = *state;
    atomic_store(&x->f.ready, 1);
    atomic_store(&x->f.hold, 1);
    scrape s = {.port = x->port};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, scrape_main, &s), 0);
    double t0 = http_now_ms();
    while (!atomic_load(&x->f.entered) && http_now_ms() - t0 < 5000) usleep(1000);
    assert_int_equal(atomic_load(&x->f.entered), 1);

    http_answer health, ready;
    http_get(x->port, "/healthz", 500, &health);
    http_get(x->port, "/readyz", 500, &ready);
    release(&x->f); /* before asserting: the scrape must not outlive the test */
    pthread_join(t, NULL);

    printf("/healthz: %d in %.0f ms, /readyz: %d in %.0f ms (a /metrics held meanwhile)\n",
           health.status, health.ms, ready.status, ready.ms);
    assert_int_equal(health.status, 200);
    assert_int_equal(ready.status, 200);
    assert_int_equal(s.a.status, 200); /* and the slow scrape completes */
    assert_string_equal(s.a.body, "fake_metric 1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes_not_queued_behind_metrics, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
