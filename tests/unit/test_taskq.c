/*
 * test_taskq.c - the store thread's task queue (src/worker/taskq.c):
 * order, waiting, cancel before and during a run, and shutdown that runs
 * what is queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "worker/taskq.h"

typedef struct ctx {
    pthread_mutex_t mu;
    int order[64];
    int n;
    atomic_int freed;
    /* A gate that holds a task until opened. */
    atomic_int gate_open, in_gate;
} ctx;

typedef struct job {
    vd_task t;
    int id;
    int gated; /* waits at the gate */
    ctx *c;    /* for job_free_counted */
} job;

static void job_run(void *c_, vd_task *t)
{
    ctx *c = c_;
    job *j = (job *)t;
    if (j->gated) {
        c->in_gate = 1;
        while (!c->gate_open) usleep(1000);
    }
    pthread_mutex_lock(&c->mu);
    c->order[c->n++] = j->id;
    pthread_mutex_unlock(&c->mu);
}

static void job_free(vd_task *t)
{
    free(t);
}

static void job_free_counted(vd_task *t)
{
    ((job *)t)->c->freed++;
    free(t);
}

static job *job_new(ctx *c, int id, int gated, void (*freefn)(vd_task *))
{
    job *j = calloc(1, sizeof *j);
    j->c = c;
    j->t.run = job_run;
    j->t.free = freefn;
    j->id = id;
    j->gated = gated;
    return j;
}

static void test_order_and_wait(void **state)
{
    (void)state;
    ctx c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    vd_taskq *q;
    assert_int_equal(vd_taskq_new(&q, &c, NULL), VD_OK);
    job *jobs[10];
    for (int i = 0; i < 10; i++) vd_taskq_submit(q, &(jobs[i] = job_new(&c, i, 0, job_free))->t);
    assert_int_equal(vd_taskq_done(q, &jobs[9]->t, 1), 1);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(vd_taskq_done(q, &jobs[i]->t, 0), 1);
        assert_int_equal(c.order[i], i); /* submission order */
        free(jobs[i]);
    }
    vd_taskq_free(q);
}

static void test_cancel(void **state)
{
    (void)state;
    ctx c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    vd_taskq *q;
    assert_int_equal(vd_taskq_new(&q, &c, NULL), VD_OK);
    job *gate = job_new(&c, 1, 1, job_free_counted);
    job *queued = job_new(&c, 2, 0, job_free_counted);
    job *after = job_new(&c, 3, 0, job_free);
    vd_taskq_submit(q, &gate->t);
    vd_taskq_submit(q, &queued->t);
    vd_taskq_submit(q, &after->t);
    while (!c.in_gate) usleep(1000);
    /* Cancelled while running: it sees it, finishes, and the queue frees
     * it. Cancelled before it started: it never runs. */
    vd_taskq_cancel(q, &gate->t);
    assert_int_equal(vd_taskq_cancelled(q, &gate->t), 1);
    vd_taskq_cancel(q, &queued->t);
    assert_int_equal(c.freed, 0); /* neither is done yet */
    c.gate_open = 1;
    assert_int_equal(vd_taskq_done(q, &after->t, 1), 1);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.order[0], 1);
    assert_int_equal(c.order[1], 3); /* 2 was skipped */
    assert_int_equal(c.freed, 2);
    /* Cancelled once done: freed at once by the canceller. */
    job *done = job_new(&c, 4, 0, job_free_counted);
    vd_taskq_submit(q, &done->t);
    vd_taskq_done(q, &done->t, 1);
    vd_taskq_cancel(q, &done->t);
    assert_int_equal(c.freed, 3);
    free(after);
    vd_taskq_free(q);
}

static void test_shutdown_runs_queue(void **state)
{
    (void)state;
    ctx c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    vd_taskq *q;
    assert_int_equal(vd_taskq_new(&q, &c, NULL), VD_OK);
    job *gate = job_new(&c, 1, 1, job_free);
    job *rest[5];
    vd_taskq_submit(q, &gate->t);
    for (int i = 0; i < 5; i++)
        vd_taskq_submit(q, &(rest[i] = job_new(&c, 10 + i, 0, job_free))->t);
    vd_taskq_cancel(q, &rest[2]->t); /* freed by the queue, never run */
    rest[2] = NULL;
    while (!c.in_gate) usleep(1000);
    c.gate_open = 1;
    vd_taskq_free(q); /* runs what is queued, then stops */
    assert_int_equal(c.n, 5);
    assert_int_equal(c.order[0], 1);
    assert_int_equal(c.order[1], 10);
    assert_int_equal(c.order[2], 11);
    assert_int_equal(c.order[3], 13);
    assert_int_equal(c.order[4], 14);
    free(gate);
    for (int i = 0; i < 5; i++) free(rest[i]);
    vd_taskq_free(NULL);
}

/* Detached tasks run in order and are freed by the queue. */
static void test_detached(void **state)
{
    (void)state;
    ctx c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    vd_taskq *q;
    assert_int_equal(vd_taskq_new(&q, &c, NULL), VD_OK);
    for (int i = 0; i < 4; i++)
        vd_taskq_submit_detached(q, &job_new(&c, i, 0, job_free_counted)->t);
    vd_taskq_free(q);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.order[3], 3);
    assert_int_equal(c.freed, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_wait),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_shutdown_runs_queue),
        cmocka_unit_test(test_detached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
