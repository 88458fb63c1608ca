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
    struct vd_search_job *next;
} job;

/* Search or info m for partition p, once p is ready: the reply built in
 * wr. Returns the builder's or the index's error (err says why). */
static vd_err answer(vd_partition *p, const vd_request *req, vd_writer *wr, vd_error *err)
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
                              .applied_offset = e->last,
                              .checkpointed_offset = e->file_offset};
        rc = vd_reply_info(wr, &info);
    } else {
        vd_results res;
        vd_results_init(&res);
        rc = vd_index_search(e->ix, req->vector, req->vector_len, req->k, req->ef, &res, err);
        if (!rc)
            rc = vd_reply_search(wr, e->name, strlen(e->name), p->applied, &res,
                                 req->include_metadata);
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

static void handle_search(vd_worker *w, rd_kafka_message_t *m)
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
        rc = vd_error_set(&err, VD_ERR_UNAVAILABLE, "partition %d unknown", (int)m->partition);
        goto fail;
    }
    vd_partition *p = &w->parts[m->partition];
    double ready_timeout = vd_config_int(w->cfg, "search.ready.timeout.ms") / 1000.0;
    double min_timeout = vd_config_int(w->cfg, "search.min.offset.timeout.ms") / 1000.0;
    vd_part_state state;
    if (!vd_partition_wait(p, -1, vd_mono_s() + ready_timeout, &state)) {
        rc = vd_error_set(&err, VD_ERR_UNAVAILABLE, "partition %d is %s; retry shortly",
                          (int)m->partition,
                          state == VD_PART_REFUSED ? "refused (see the worker log)"
                                                   : "not ready (loading or replaying)");
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
    if ((rc = answer(p, req, wr, &err))) {
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

static void *search_thread(void *arg)
{
    vd_worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->qmu);
        while (!w->qhead && !w->qstop) pthread_cond_wait(&w->qcond, &w->qmu);
        job *j = w->qhead;
        if (j) {
            w->qhead = j->next;
            if (!w->qhead) w->qtail = NULL;
        }
        pthread_mutex_unlock(&w->qmu);
        if (!j) return NULL; /* stopping and drained */
        handle_search(w, j->m);
        rd_kafka_message_destroy(j->m);
        free(j);
    }
}

vd_err vd_search_start(vd_worker *w, vd_error *err)
{
    int n = (int)vd_config_int(w->cfg, "search.threads");
    if (!(w->threads = calloc((size_t)n, sizeof *w->threads)))
        return vd_error_set(err, VD_ERR_NOMEM, "search pool: out of memory");
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, search_thread, w))
            return vd_error_set(err, VD_ERR_NOMEM, "search pool: cannot start thread %d", i);
        w->nthreads++;
    }
    return VD_OK;
}

void vd_search_stop(vd_worker *w)
{
    pthread_mutex_lock(&w->qmu);
    w->qstop = 1;
    pthread_cond_broadcast(&w->qcond);
    pthread_mutex_unlock(&w->qmu);
    for (int i = 0; i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
    w->nthreads = 0;
}

void vd_search_enqueue(vd_worker *w, rd_kafka_message_t *m)
{
    if (m->partition >= 0 && m->partition < w->nparts)
        w->parts[m->partition].search_next = m->offset + 1;
    job *j = malloc(sizeof *j);
    if (!j) {
        rd_kafka_message_destroy(m);
        return;
    }
    j->m = m;
    j->next = NULL;
    pthread_mutex_lock(&w->qmu);
    if (w->qtail)
        w->qtail->next = j;
    else
        w->qhead = j;
    w->qtail = j;
    pthread_cond_signal(&w->qcond);
    pthread_mutex_unlock(&w->qmu);
}

void vd_search_commit(vd_worker *w)
{
    static const double every = 1.0;
    if (vd_mono_s() - w->search_commit_at < every || w->fenced) return;
    w->search_commit_at = vd_mono_s();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int32_t i = 0; i < w->nparts; i++) {
        if (w->parts[i].search_next < 0) continue;
        rd_kafka_topic_partition_list_add(l, w->t_search, i)->offset = w->parts[i].search_next;
        w->parts[i].search_next = -1;
    }
    if (l->cnt) rd_kafka_commit(w->consumer, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}
