/*
 * search.c - the search queue and pool (see search.h, docs/worker.md).
 */
#include "worker/search.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "common/clock.h"
#include "worker/outbox.h"
#include "worker/partition.h"

typedef struct vd_search_job {
    rd_kafka_message_t *m;
    double queued_at, deadline; /* deadline: search.ready.timeout.ms after queued_at */
    struct vd_search_job *next;
} job;

/* Upper bounds of the queue-wait histogram's buckets, in seconds. */
static const double wait_bounds[VD_SEARCH_WAIT_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1,
                                                           0.5,   1,     5,    30};

vd_err vd_search_answer(vd_partition *p, const vd_request *req, vd_writer *wr, vd_error *err)
{
    pthread_rwlock_rdlock(&p->lock);
    vd_entry *e = vd_partition_find(p, req->index, req->index_len);
    vd_err rc;
    if (!e) {
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "index \"%.*s\" not found in partition %d",
                          (int)(req->index_len > 100 ? 100 : req->index_len), req->index,
                          (int)p->id);
    } else if (req->op == VD_OP_INFO) {
        vd_index_stats st;
        vd_index_stats_get(e->ix, &st);
        vd_info_reply info = {.index = e->name,
                              .index_len = strlen(e->name),
                              .partition = p->id,
                              .params = *vd_index_params_get(e->ix),
                              .length = st.live,
                              .deleted = st.deleted,
                              .applied_offset =
                                  atomic_load_explicit(&e->last, memory_order_relaxed),
                              .checkpointed_offset = e->file_offset};
        rc = vd_reply_info(wr, &info);
    } else {
        /* Before the search, acquire: the release in vd_partition_advance
         * follows the command's change to the index, so the hits hold
         * every command up to the offset the reply names. */
        int64_t applied = atomic_load_explicit(&p->applied, memory_order_acquire);
        vd_results res;
        vd_results_init(&res);
        rc = vd_index_search(e->ix, req->vector, req->vector_len, req->k, req->ef, &res, err);
        if (!rc)
            rc =
                vd_reply_search(wr, e->name, strlen(e->name), applied, &res, req->include_metadata);
        vd_results_free(&res);
    }
    pthread_rwlock_unlock(&p->lock);
    return rc;
}

/* Whether m is older than search.max.age.ms (by its timestamp). */
static int expired(vd_worker *w, rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t age = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000 - ts;
    if (ts < 0 || age <= vd_config_int(w->cfg, "search.max.age.ms")) return 0;
    w->n_searches_expired++;
    VD_WLOG(w, VD_LOG_DEBUG, "search_expired", VD_LI("partition", m->partition),
            VD_LI("offset", m->offset), VD_LI("age_ms", age));
    return 1;
}

/* Answers m; a partition not ready by ready_deadline gets `unavailable`. */
static void handle_search(vd_worker *w, rd_kafka_message_t *m, double ready_deadline)
{
    vd_reply_to r;
    vd_error err = {0};
    if (!vd_outbox_target(m, &r)) {
        VD_WLOG(w, VD_LOG_DEBUG, "search_without_reply_to", VD_LI("partition", m->partition),
                VD_LI("offset", m->offset));
        return;
    }
    if (expired(w, m)) return;
    w->n_searches++;
    vd_request *req = NULL;
    vd_err rc = m->len > w->max_message
                    ? VD_ERR_LIMIT
                    : vd_request_decode(m->payload, m->len, r.ct, &w->limits, &req, &err);
    if (rc == VD_ERR_LIMIT && !req && !err.msg[0])
        snprintf(err.msg, sizeof err.msg, "message exceeds limits.max.message.bytes");
    if (!rc && vd_op_is_command(req->op)) {
        rc = VD_ERR_UNKNOWN_OP;
        snprintf(err.msg, sizeof err.msg, "op: \"%s\" belongs on the commands topic %s",
                 vd_op_name(req->op), w->t_cmd);
    }
    if (rc) goto fail;
    if (m->partition < 0 || m->partition >= w->nparts) {
        rc = vd_error_set(&err, VD_ERR_UNAVAILABLE,
                          "partition %d was added after this worker started with %d: it is "
                          "not served until the worker restarts",
                          (int)m->partition, (int)w->nparts);
        goto fail;
    }
    vd_partition *p = &w->parts[m->partition];
    double min_timeout = vd_config_int(w->cfg, "search.min.offset.timeout.ms") / 1000.0;
    vd_part_state state;
    if (!vd_partition_wait(p, -1, ready_deadline, &state)) {
        char why[sizeof p->refused_why];
        vd_partition_refused_why(p, why, sizeof why);
        if (state == VD_PART_REFUSED)
            rc = vd_error_set(&err, VD_ERR_UNAVAILABLE, "partition %d is refused: %.180s",
                              (int)m->partition, *why ? why : "see the worker log");
        else
            rc = vd_error_set(&err, VD_ERR_UNAVAILABLE,
                              "partition %d is not ready (loading or replaying); retry shortly",
                              (int)m->partition);
        goto fail;
    }
    if (req->min_offset >= 0 &&
        !vd_partition_wait(p, req->min_offset, vd_mono_s() + min_timeout, &state)) {
        rc = vd_error_set(&err, VD_ERR_TIMEOUT,
                          "min_offset %" PRId64 " not applied within search.min.offset.timeout.ms",
                          req->min_offset);
        goto fail;
    }
    vd_writer *wr = vd_outbox_writer(&r);
    if (!wr) {
        rc = vd_error_set(&err, VD_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = vd_search_answer(p, req, wr, &err))) {
        vd_writer_free(wr);
        goto fail;
    }
    vd_outbox_send(&w->out, &r, m->key, m->key_len, wr, VD_OK);
    vd_request_free(req);
    return;
fail:
    vd_outbox_reply_error(&w->out, &r, m->key, m->key_len, rc,
                          err.msg[0] ? err.msg : vd_strerror(rc));
    vd_request_free(req);
}

/* ------------------------------------------------------------------ */
/* The pool. Under pool->mu unless said otherwise. */

/* Whether job j of partition i may be taken now: its partition is ready,
 * or will not become so for it (unassigned, refused, its deadline passed,
 * the pool stopping). A job of a loading partition waits in its queue,
 * not in a thread, so the ready partitions' searches go on. */
static int takeable(vd_worker *w, int32_t i, const job *j, double now)
{
    vd_search_pool *pool = &w->search;
    if (pool->stop || now >= j->deadline) return 1;
    vd_partition *p = &w->parts[i];
    pthread_mutex_lock(&p->mu);
    vd_part_state st = p->state;
    pthread_mutex_unlock(&p->mu);
    return st == VD_PART_READY || st == VD_PART_UNASSIGNED || st == VD_PART_REFUSED;
}

/* The next takeable job, partitions in turn; *partition is set. NULL when
 * none is (*queued: whether any job waits). */
static job *take(vd_worker *w, double now, int32_t *partition, int *queued)
{
    vd_search_pool *pool = &w->search;
    *queued = 0;
    for (int32_t k = 0; k < pool->nq; k++) {
        int32_t i = (pool->next + k) % pool->nq;
        vd_search_queue *q = &pool->q[i];
        if (!q->head) continue;
        *queued = 1;
        if (!takeable(w, i, q->head, now)) continue;
        job *j = q->head;
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        q->n--;
        pool->next = (i + 1) % pool->nq;
        *partition = i;
        return j;
    }
    return NULL;
}

static void inflight_remove(vd_search_queue *q, int64_t offset)
{
    for (size_t i = 0; i < q->ninflight; i++) {
        if (q->inflight[i] != offset) continue;
        memmove(q->inflight + i, q->inflight + i + 1, (q->ninflight - i - 1) * sizeof *q->inflight);
        q->ninflight--;
        return;
    }
}

static void record_wait(vd_search_pool *pool, double waited)
{
    int b = 0;
    while (b < VD_SEARCH_WAIT_BUCKETS && waited > wait_bounds[b]) b++;
    if (b < VD_SEARCH_WAIT_BUCKETS) pool->wait_le[b]++;
    pool->wait_count++;
    pool->wait_sum_us += (uint_fast64_t)(waited * 1e6);
}

static void *search_thread(void *arg)
{
    vd_worker *w = arg;
    vd_search_pool *pool = &w->search;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        double now = vd_mono_s();
        int32_t i;
        int queued;
        job *j = take(w, now, &i, &queued);
        if (!j) {
            if (!queued && pool->stop) break; /* stopping and drained */
            if (!queued) {
                pthread_cond_wait(&pool->cond, &pool->mu);
            } else {
                /* Jobs of partitions still loading: look again soon. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 20 * 1000000L;
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&pool->cond, &pool->mu, &ts);
            }
            continue;
        }
        int stopping = pool->stop;
        pthread_mutex_unlock(&pool->mu);
        record_wait(pool, now - j->queued_at);
        handle_search(w, j->m, stopping ? now : j->deadline);
        int64_t offset = j->m->offset;
        rd_kafka_message_destroy(j->m);
        free(j);
        pthread_mutex_lock(&pool->mu);
        inflight_remove(&pool->q[i], offset);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

vd_err vd_search_start(vd_worker *w, vd_error *err)
{
    vd_search_pool *pool = &w->search;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->max = (size_t)vd_config_int(w->cfg, "search.queue.max");
    pool->ready_timeout_s = vd_config_int(w->cfg, "search.ready.timeout.ms") / 1000.0;
    if (!(pool->q = calloc((size_t)w->nparts, sizeof *pool->q)))
        return vd_error_set(err, VD_ERR_NOMEM, "search pool: out of memory");
    pool->nq = w->nparts;
    for (int32_t i = 0; i < pool->nq; i++) pool->q[i].enq_next = pool->q[i].committed = -1;
    int n = (int)vd_config_int(w->cfg, "search.threads");
    if (!(pool->threads = calloc((size_t)n, sizeof *pool->threads)))
        return vd_error_set(err, VD_ERR_NOMEM, "search pool: out of memory");
    for (int i = 0; i < n; i++) {
        if (pthread_create(&pool->threads[i], NULL, search_thread, w))
            return vd_error_set(err, VD_ERR_NOMEM, "search pool: cannot start thread %d", i);
        pool->nthreads++;
    }
    return VD_OK;
}

void vd_search_stop(vd_worker *w)
{
    vd_search_pool *pool = &w->search;
    if (!pool->q) return; /* never started */
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->nthreads; i++) pthread_join(pool->threads[i], NULL);
    pool->nthreads = 0;
}

void vd_search_free(vd_worker *w)
{
    vd_search_pool *pool = &w->search;
    if (!pool->q) return;
    for (int32_t i = 0; i < pool->nq; i++) {
        vd_search_queue *q = &pool->q[i];
        while (q->head) {
            job *j = q->head;
            q->head = j->next;
            rd_kafka_message_destroy(j->m);
            free(j);
        }
        free(q->inflight);
    }
    free(pool->q);
    free(pool->threads);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cond);
    memset(pool, 0, sizeof *pool);
}

/* Pauses (pause 1) or resumes search partition id in the consumer. */
static void pause_search(vd_worker *w, int32_t id, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->t_search, id);
    if (pause)
        rd_kafka_pause_partitions(w->consumer, l);
    else
        rd_kafka_resume_partitions(w->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    VD_WLOG(w, pause ? VD_LOG_WARN : VD_LOG_INFO, pause ? "search_paused" : "search_resumed",
            VD_LI("partition", id), VD_LI("queue_max", w->search.max));
}

void vd_search_enqueue(vd_worker *w, rd_kafka_message_t *m)
{
    vd_search_pool *pool = &w->search;
    double now = vd_mono_s();
    if (m->partition < 0 || m->partition >= pool->nq) {
        handle_search(w, m, now); /* answered `unavailable` at once */
        rd_kafka_message_destroy(m);
        return;
    }
    job *j = malloc(sizeof *j);
    if (!j) {
        VD_WLOG(w, VD_LOG_ERROR, "search_dropped", VD_LI("partition", m->partition),
                VD_LI("offset", m->offset), VD_LS("error", "out of memory"));
        rd_kafka_message_destroy(m);
        return;
    }
    *j = (job){.m = m, .queued_at = now, .deadline = now + pool->ready_timeout_s};
    int pause = 0;
    pthread_mutex_lock(&pool->mu);
    vd_search_queue *q = &pool->q[m->partition];
    if (q->ninflight == q->capinflight) {
        size_t cap = q->capinflight ? q->capinflight * 2 : 64;
        int64_t *in = realloc(q->inflight, cap * sizeof *in);
        if (in) {
            q->inflight = in;
            q->capinflight = cap;
        }
    }
    if (q->ninflight < q->capinflight) q->inflight[q->ninflight++] = m->offset;
    q->enq_next = m->offset + 1;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
    if (q->n >= pool->max && !q->paused) pause = q->paused = 1;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->mu);
    /* Backpressure in Kafka, not in memory: the partition's records stay
     * in the log until the queue has room again (vd_search_poll). */
    if (pause) pause_search(w, m->partition, 1);
}

void vd_search_assigned(vd_worker *w, int32_t id)
{
    vd_search_pool *pool = &w->search;
    if (id < 0 || id >= pool->nq) return;
    pthread_mutex_lock(&pool->mu);
    vd_search_queue *q = &pool->q[id];
    q->enq_next = q->committed = -1;
    int was_paused = q->paused;
    q->paused = 0;
    pthread_mutex_unlock(&pool->mu);
    /* A pause outlives a revoke in librdkafka. */
    if (was_paused) pause_search(w, id, 0);
}

void vd_search_poll(vd_worker *w)
{
    vd_search_pool *pool = &w->search;
    static const double every = 1.0;
    int commit = vd_mono_s() - w->search_commit_at >= every &&
                 !atomic_load_explicit(&w->fenced, memory_order_relaxed);
    rd_kafka_topic_partition_list_t *l = commit ? rd_kafka_topic_partition_list_new(4) : NULL;
    for (int32_t i = 0; i < pool->nq; i++) {
        pthread_mutex_lock(&pool->mu);
        vd_search_queue *q = &pool->q[i];
        int resume = q->paused && q->n <= pool->max / 2;
        if (resume) q->paused = 0;
        /* Committed only once answered (or dropped): the oldest offset in
         * flight, else past the last one queued. */
        int64_t next = q->enq_next;
        for (size_t k = 0; k < q->ninflight; k++)
            if (q->inflight[k] < next) next = q->inflight[k];
        if (l && next >= 0 && next > q->committed) {
            rd_kafka_topic_partition_list_add(l, w->t_search, i)->offset = next;
            q->committed = next;
        }
        pthread_mutex_unlock(&pool->mu);
        if (resume) pause_search(w, i, 0);
    }
    if (!l) return;
    w->search_commit_at = vd_mono_s();
    if (l->cnt) rd_kafka_commit(w->consumer, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}
