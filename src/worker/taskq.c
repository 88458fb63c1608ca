/*
 * taskq.c - one thread running queued tasks in order (see taskq.h).
 */
#include "worker/taskq.h"

#include <pthread.h>
#include <stdlib.h>

struct vd_taskq {
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* a task queued, a task done, or stop */
    vd_task *head, *tail;
    int stop;
};

static void *loop(void *arg)
{
    vd_taskq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop) pthread_cond_wait(&q->cond, &q->mu);
        if (!q->head) break;
        vd_task *t = q->head;
        q->head = t->next;
        if (!q->head) q->tail = NULL;
        if (!t->cancelled) {
            pthread_mutex_unlock(&q->mu);
            t->run(q->ctx, t);
            pthread_mutex_lock(&q->mu);
        }
        t->done = 1;
        if (t->cancelled || t->detached)
            t->free(t);
        else
            pthread_cond_broadcast(&q->cond);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

vd_err vd_taskq_new(vd_taskq **out, void *ctx, vd_error *err)
{
    vd_taskq *q = calloc(1, sizeof *q);
    if (!q) return vd_error_set(err, VD_ERR_NOMEM, "task queue: out of memory");
    q->ctx = ctx;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    if (pthread_create(&q->thread, NULL, loop, q)) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cond);
        free(q);
        return vd_error_set(err, VD_ERR_NOMEM, "task queue: cannot start its thread");
    }
    *out = q;
    return VD_OK;
}

void vd_taskq_free(vd_taskq *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
    free(q);
}

static void submit(vd_taskq *q, vd_task *t, int detached)
{
    pthread_mutex_lock(&q->mu);
    t->done = t->cancelled = 0;
    t->detached = detached;
    t->next = NULL;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

void vd_taskq_submit(vd_taskq *q, vd_task *t)
{
    submit(q, t, 0);
}

void vd_taskq_submit_detached(vd_taskq *q, vd_task *t)
{
    submit(q, t, 1);
}

int vd_taskq_done(vd_taskq *q, vd_task *t, int wait)
{
    pthread_mutex_lock(&q->mu);
    while (wait && !t->done) pthread_cond_wait(&q->cond, &q->mu);
    int done = t->done;
    pthread_mutex_unlock(&q->mu);
    return done;
}

int vd_taskq_cancelled(vd_taskq *q, vd_task *t)
{
    pthread_mutex_lock(&q->mu);
    int c = t->cancelled;
    pthread_mutex_unlock(&q->mu);
    return c;
}

void vd_taskq_cancel(vd_taskq *q, vd_task *t)
{
    pthread_mutex_lock(&q->mu);
    int done = t->done;
    t->cancelled = 1;
    pthread_mutex_unlock(&q->mu);
    if (done) t->free(t);
}
