/*
 * rebalance.c - assign and revoke (see rebalance.h, docs/checkpoints.md).
 */
#include "worker/rebalance.h"

#include <string.h>

#include "worker/checkpoint.h"
#include "worker/load.h"
#include "worker/outbox.h"
#include "worker/partition.h"
#include "worker/search.h"

/* The commands partition tp names, or NULL (the search topic, or a
 * partition beyond the count seen at start). */
static vd_partition *commands_partition(vd_worker *w, const rd_kafka_topic_partition_t *tp)
{
    if (strcmp(tp->topic, w->t_cmd) != 0 || tp->partition < 0 || tp->partition >= w->nparts)
        return NULL;
    return &w->parts[tp->partition];
}

/*
 * Partitions added to the topics after this worker started (the range
 * assignor still co-partitions them) are not served: the partition table
 * is sized at start. They are refused loudly instead of consumed and
 * ignored: logged, counted (vectord_partitions_unserved), /readyz fails
 * naming them, and the commands partitions are paused, so their records
 * stay in Kafka, uncommitted, for a restarted worker.
 */
static void refuse_added(vd_worker *w, rd_kafka_topic_partition_list_t *parts)
{
    int unserved = 0;
    rd_kafka_topic_partition_list_t *pause = rd_kafka_topic_partition_list_new(4);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->partition < w->nparts) continue;
        if (strcmp(tp->topic, w->t_cmd) == 0) {
            unserved++;
            rd_kafka_topic_partition_list_add(pause, tp->topic, tp->partition);
        }
        VD_WLOG(w, VD_LOG_ERROR, "partition_unserved", VD_LS("topic", tp->topic),
                VD_LI("partition", tp->partition), VD_LI("partitions_at_start", w->nparts),
                VD_LS("then", "added after this worker started: restart it to serve the partition "
                              "(its commands stay in Kafka, uncommitted)"));
    }
    if (pause->cnt) rd_kafka_pause_partitions(w->consumer, pause);
    rd_kafka_topic_partition_list_destroy(pause);
    w->unserved = unserved;
}

static void on_assign(vd_worker *w, rd_kafka_topic_partition_list_t *parts)
{
    /* Committed offsets of everything assigned, in one request. */
    rd_kafka_resp_err_t ce = rd_kafka_committed(w->consumer, parts, 10000);
    if (ce)
        VD_WLOG(w, VD_LOG_WARN, "committed_offsets_unknown", VD_LS("error", rd_kafka_err2str(ce)));
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (strcmp(tp->topic, w->t_search) == 0) {
            /* Pick up requests sent while no one owned the partition; stale
             * ones are dropped by age (search.max.age.ms) when handled (a
             * partition added after start too: they get `unavailable`). */
            if (ce || tp->offset < 0) tp->offset = RD_KAFKA_OFFSET_BEGINNING;
            continue;
        }
        if (tp->partition < 0 || tp->partition >= w->nparts) continue; /* refuse_added */
        vd_partition *p = &w->parts[tp->partition];
        vd_checkpoint_discard(w, p);
        vd_load_cancel(w, p);
        vd_partition_reset(p);
        vd_outbox_dlq_forget(&w->out, p->id);
        p->assigned_committed = ce ? RD_KAFKA_OFFSET_INVALID : tp->offset;
        vd_partition_set_state(p, VD_PART_LOADING);
        vd_load_submit(w, p);
        /* Paused below; vd_load_poll() seeks to the start once loaded. The
         * offset assigned meanwhile is a concrete one, the high watermark:
         * with RD_KAFKA_OFFSET_END, librdkafka 2.0 answers a seek made while
         * its END lookup is in flight by looking END up again afterwards,
         * which moves the partition past the commands it was sent back to
         * (seen in store_faults: a command skipped). Without the watermark,
         * the committed offset, else 0: still concrete. (Paused, nothing is
         * fetched there; an out-of-range error meanwhile is ignored while
         * the partition loads.) */
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(w->producer, w->t_cmd, p->id, &lo, &hi, 10000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
            tp->offset = hi;
        else
            tp->offset = p->assigned_committed >= 0 ? p->assigned_committed : 0;
    }
    rd_kafka_assign(w->consumer, parts);
    refuse_added(w, parts);
    for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, w->t_search) == 0)
            vd_search_assigned(w, parts->elems[i].partition);
    /* Nothing is fetched until the partition is loaded and moved to its
     * start. (A pause of ours also outlives a revoke in librdkafka: every
     * partition is resumed explicitly once loaded.) */
    for (int i = 0; i < parts->cnt; i++) {
        vd_partition *p = commands_partition(w, &parts->elems[i]);
        if (p) vd_load_pause(w, p->id, 1);
    }
}

static void on_revoke(vd_worker *w, rd_kafka_topic_partition_list_t *parts)
{
    int lost = rd_kafka_assignment_lost(w->consumer);
    /* Loads first: the checkpoints below must not queue behind them. */
    for (int i = 0; i < parts->cnt; i++) {
        vd_partition *p = commands_partition(w, &parts->elems[i]);
        if (p) vd_load_cancel(w, p);
    }
    for (int i = 0; i < parts->cnt; i++) {
        vd_partition *p = commands_partition(w, &parts->elems[i]);
        if (!p) continue;
        if (!lost) {
            vd_error err;
            if (vd_checkpoint_now(w, p, "revoke", &err))
                VD_WLOG(w, VD_LOG_WARN, "revoke_checkpoint_failed", VD_LI("partition", p->id),
                        VD_LS("error", err.msg));
        }
        vd_checkpoint_discard(w, p);
        vd_partition_reset(p);
        vd_outbox_dlq_forget(&w->out, p->id);
        VD_WLOG(w, VD_LOG_INFO, "revoked", VD_LI("partition", p->id), VD_LI("lost", lost));
    }
    rd_kafka_assign(w->consumer, NULL);
    w->unserved = 0;
}

void vd_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    vd_worker *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* A new generation: we own what we were given. */
        atomic_store_explicit(&w->fenced, 0, memory_order_relaxed);
        w->assigned_once = 1;
        on_assign(w, parts);
        /* Back to the poll loop now rather than after the poll's timeout
         * (nothing is fetched until the loads are in). */
        rd_kafka_yield(rk);
    } else {
        on_revoke(w, parts);
    }
}
