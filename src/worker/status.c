/*
 * status.c - /metrics, /readyz and the directory snapshot (see status.h).
 *
 * The HTTP handlers never wait for an index: its gauges come from
 * vd_index_stats_get, which reads what the last write published and takes
 * no lock, so an add batch or a repair (which holds the index's write lock
 * throughout) delays neither endpoint. What they do wait for, each held
 * only briefly by its writers:
 * - a partition's mutex (state, offsets): the poll thread holds it for a
 *   few stores (partition.c, ck_commit); searches release it while they
 *   wait on the condition variable;
 * - /metrics only: a partition's registry read lock, to walk the entries.
 *   The poll thread holds the write lock to add or remove an entry, and a
 *   removal (drop, revoke, a failed load) frees the index meanwhile: about
 *   0.1 s per million items. /readyz does not take it.
 * - the directory's state mutex and counters (vd_directory_stats_get).
 */
#include "worker/status.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "directory/directory.h"
#include "vectord/version.h"
#include "worker/outbox.h"
#include "worker/partition.h"

/* A Prometheus label value: backslash, quote and newline escaped. */
static void put_label(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

static void counters(vd_worker *w, FILE *out)
{
    struct {
        const char *name, *help;
        atomic_uint_fast64_t *v;
    } c[] = {
        {"vectord_commands_applied_total", "Commands applied to an index.", &w->n_applied},
        {"vectord_commands_rejected_total", "Commands sent to the DLQ.", &w->out.n_rejected},
        {"vectord_partition_stops_total",
         "Commands that could be neither applied nor rejected (out of memory): their partition "
         "was refused there, uncommitted.",
         &w->n_apply_fatal},
        {"vectord_searches_total", "Search and info requests answered.", &w->n_searches},
        {"vectord_searches_expired_total",
         "Search requests dropped as older than "
         "search.max.age.ms.",
         &w->n_searches_expired},
        {"vectord_checkpoints_total", "Partition checkpoints written and committed.",
         &w->n_checkpoints},
        {"vectord_checkpoint_failures_total", "Checkpoint attempts that failed (retried).",
         &w->n_checkpoint_failures},
        {"vectord_checkpoint_foreign_total",
         "Checkpoint files not installed because their envelope names another topic or "
         "partition (the index is replayed from the log).",
         &w->n_checkpoint_foreign},
        {"vectord_commands_parked_total",
         "Commands that waited (their partition paused) while the store thread serialised an "
         "index of their partition for a checkpoint.",
         &w->n_parked},
        {"vectord_checkpoint_migrated_total",
         "Checkpoint files loaded from the key before partitions were in it (rewritten under "
         "the new key at the next checkpoint).",
         &w->n_checkpoint_migrated},
        {"vectord_partition_load_failures_total",
         "Attempts to load a partition's checkpoints that failed on a store error (retried).",
         &w->n_load_failures},
        {"vectord_replies_failed_total",
         "Replies and acks that could not be produced or delivered.", &w->out.n_replies_failed},
        {"vectord_replies_too_large_total",
         "Replies refused as too large for their topic or the producer; a reply_too_large "
         "error was sent in their place.",
         &w->out.n_replies_too_large},
        {"vectord_dlq_failures_total",
         "DLQ records the producer or the broker refused (each is produced again; its "
         "partition does not commit past it meanwhile).",
         &w->out.n_dlq_failures},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIuFAST64 "\n", c[i].name, c[i].help,
                c[i].name, c[i].name, atomic_load(c[i].v));
    fputs("# HELP vectord_commands_rejected_by_code_total Commands sent to the DLQ, by error "
          "code.\n# TYPE vectord_commands_rejected_by_code_total counter\n",
          out);
    for (int code = 1; code < VD_ERR__COUNT; code++)
        if (atomic_load(&w->out.rejected_by[code]))
            fprintf(out, "vectord_commands_rejected_by_code_total{code=\"%s\"} %" PRIuFAST64 "\n",
                    vd_err_code((vd_err)code), atomic_load(&w->out.rejected_by[code]));
    fputs("# HELP vectord_replies_refused_total Replies and acks not produced because of their "
          "topic: own_topic (the worker's commands, search or DLQ topic), not_allowed (outside "
          "reply.topics.allow).\n# TYPE vectord_replies_refused_total counter\n",
          out);
    for (int r = VD_REPLY_OWN_TOPIC; r < VD_REPLY__COUNT; r++)
        fprintf(out, "vectord_replies_refused_total{reason=\"%s\"} %" PRIuFAST64 "\n",
                vd_reply_policy_name((vd_reply_policy)r),
                atomic_load(&w->out.n_replies_refused[r]));
    fprintf(out,
            "# HELP vectord_partitions_unserved Commands partitions assigned to this worker but "
            "added to the topics after it started: not served until it restarts.\n"
            "# TYPE vectord_partitions_unserved gauge\nvectord_partitions_unserved %d\n",
            atomic_load(&w->unserved));
    fprintf(out,
            "# HELP vectord_fenced 1 when the group fenced this worker (it writes nothing).\n"
            "# TYPE vectord_fenced gauge\nvectord_fenced %d\n",
            atomic_load_explicit(&w->fenced, memory_order_relaxed));
}

static void partition_gauges(vd_worker *w, FILE *out)
{
    fputs("# HELP vectord_partition_state Commands partitions owned, by state.\n"
          "# TYPE vectord_partition_state gauge\n"
          "# HELP vectord_partition_refused 1 when a partition is refused (e.g. retention).\n"
          "# TYPE vectord_partition_refused gauge\n"
          "# HELP vectord_partition_applied_offset Last command offset applied.\n"
          "# TYPE vectord_partition_applied_offset gauge\n"
          "# HELP vectord_partition_lag Commands in the log not yet applied.\n"
          "# TYPE vectord_partition_lag gauge\n"
          "# HELP vectord_partition_pending Applied commands not yet in a checkpoint.\n"
          "# TYPE vectord_partition_pending gauge\n"
          "# HELP vectord_partition_committed_offset Offset committed to the group (the next "
          "command to replay).\n"
          "# TYPE vectord_partition_committed_offset gauge\n",
          out);
    for (int32_t i = 0; i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        pthread_mutex_lock(&p->mu);
        vd_part_state state = p->state;
        int64_t applied = vd_partition_applied(p);
        size_t pending = atomic_load_explicit(&p->pending, memory_order_relaxed);
        int64_t committed = p->committed;
        pthread_mutex_unlock(&p->mu);
        if (state == VD_PART_UNASSIGNED) continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(w->consumer, w->t_cmd, i, &lo, &hi);
        fprintf(out, "vectord_partition_state{partition=\"%d\",state=\"%s\"} 1\n", (int)i,
                vd_part_state_name(state));
        fprintf(out, "vectord_partition_refused{partition=\"%d\"} %d\n", (int)i,
                state == VD_PART_REFUSED);
        fprintf(out, "vectord_partition_applied_offset{partition=\"%d\"} %" PRId64 "\n", (int)i,
                applied);
        if (hi >= 0)
            fprintf(out, "vectord_partition_lag{partition=\"%d\"} %" PRId64 "\n", (int)i,
                    hi - applied - 1 > 0 ? hi - applied - 1 : 0);
        fprintf(out, "vectord_partition_pending{partition=\"%d\"} %zu\n", (int)i, pending);
        fprintf(out, "vectord_partition_committed_offset{partition=\"%d\"} %" PRId64 "\n", (int)i,
                committed);
    }
}

/* Under the registry's read lock; vd_index_stats_get takes no lock. */
static void search_metrics(vd_worker *w, FILE *out)
{
    static const char *const bounds[VD_SEARCH_WAIT_BUCKETS] = {
        "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "30"};
    vd_search_pool *pool = &w->search;
    fputs("# HELP vectord_search_queue_depth Search requests queued, not yet taken, per "
          "partition.\n# TYPE vectord_search_queue_depth gauge\n"
          "# HELP vectord_search_partition_paused 1 when the partition's search queue is full "
          "and the partition paused in the consumer.\n"
          "# TYPE vectord_search_partition_paused gauge\n",
          out);
    for (int32_t i = 0; pool->q && i < pool->nq; i++) {
        pthread_mutex_lock(&pool->mu);
        size_t n = pool->q[i].n;
        int paused = pool->q[i].paused;
        pthread_mutex_unlock(&pool->mu);
        fprintf(out, "vectord_search_queue_depth{partition=\"%d\"} %zu\n", (int)i, n);
        fprintf(out, "vectord_search_partition_paused{partition=\"%d\"} %d\n", (int)i, paused);
    }
    fputs("# HELP vectord_search_wait_seconds Time a search request waited in its queue.\n"
          "# TYPE vectord_search_wait_seconds histogram\n",
          out);
    uint_fast64_t cum = 0;
    for (int b = 0; b < VD_SEARCH_WAIT_BUCKETS; b++) {
        cum += atomic_load(&pool->wait_le[b]);
        fprintf(out, "vectord_search_wait_seconds_bucket{le=\"%s\"} %" PRIuFAST64 "\n", bounds[b],
                cum);
    }
    uint_fast64_t count = atomic_load(&pool->wait_count);
    fprintf(out,
            "vectord_search_wait_seconds_bucket{le=\"+Inf\"} %" PRIuFAST64 "\n"
            "vectord_search_wait_seconds_sum %.6f\nvectord_search_wait_seconds_count %" PRIuFAST64
            "\n",
            count, (double)atomic_load(&pool->wait_sum_us) / 1e6, count);
}

static void index_gauges(vd_worker *w, FILE *out)
{
    fputs("# HELP vectord_index_items Live items per index.\n# TYPE vectord_index_items gauge\n"
          "# HELP vectord_index_deleted Tombstones awaiting repair per index.\n"
          "# TYPE vectord_index_deleted gauge\n"
          "# HELP vectord_index_bytes Memory the index has allocated.\n"
          "# TYPE vectord_index_bytes gauge\n",
          out);
    for (int32_t i = 0; i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        pthread_rwlock_rdlock(&p->lock);
        for (size_t j = 0; j < p->n; j++) {
            vd_index_stats st;
            vd_index_stats_get(p->e[j].ix, &st);
            const char *names[] = {"vectord_index_items", "vectord_index_deleted",
                                   "vectord_index_bytes"};
            size_t vals[] = {st.live, st.deleted, st.mem_bytes};
            for (int k = 0; k < 3; k++) {
                fprintf(out, "%s{index=\"", names[k]);
                put_label(out, p->e[j].name);
                fprintf(out, "\",partition=\"%d\"} %zu\n", (int)i, vals[k]);
            }
        }
        pthread_rwlock_unlock(&p->lock);
    }
}

static void directory_metrics(vd_worker *w, FILE *out)
{
    if (!w->dir) return;
    vd_directory_stats ds;
    vd_directory_stats_get(w->dir, &ds);
    fprintf(out,
            "# HELP vectord_directory_up 1 when the last exchange with the Redis directory "
            "succeeded.\n# TYPE vectord_directory_up gauge\nvectord_directory_up %d\n"
            "# HELP vectord_directory_pin_conflicts Owned indexes whose pin names another "
            "partition.\n# TYPE vectord_directory_pin_conflicts gauge\n"
            "vectord_directory_pin_conflicts %" PRIu64 "\n",
            ds.up, ds.pin_conflicts);
    const struct {
        const char *name, *help;
        uint64_t v;
    } dc[] = {
        {"vectord_directory_errors_total", "Failed connects and commands to Redis.", ds.errors},
        {"vectord_directory_heartbeats_total", "Heartbeats written to Redis.", ds.heartbeats},
        {"vectord_directory_pin_checks_skipped_total",
         "Commands applied without the pin check because Redis was down.", ds.pin_skipped},
        {"vectord_directory_pin_cache_hits_total", "Pin checks answered from the cache.",
         ds.pin_cache_hits},
    };
    for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++)
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", dc[i].name, dc[i].help,
                dc[i].name, dc[i].name, dc[i].v);
}

void vd_status_metrics(void *ctx, FILE *out)
{
    vd_worker *w = ctx;
    counters(w, out);
    partition_gauges(w, out);
    search_metrics(w, out);
    index_gauges(w, out);
    directory_metrics(w, out);
}

int vd_status_ready(void *ctx, FILE *out)
{
    vd_worker *w = ctx;
    int fenced = atomic_load_explicit(&w->fenced, memory_order_relaxed);
    int ok = atomic_load(&w->assigned_once) && !fenced;
    if (!atomic_load(&w->assigned_once)) fputs("no partition assignment yet\n", out);
    if (fenced) fputs("fenced by the consumer group\n", out);
    if (atomic_load(&w->unserved)) {
        ok = 0;
        fprintf(out,
                "%d assigned partition(s) were added after start (started with %d): restart to "
                "serve them\n",
                atomic_load(&w->unserved), (int)w->nparts);
    }
    for (int32_t i = 0; i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        pthread_mutex_lock(&p->mu);
        vd_part_state state = p->state;
        pthread_mutex_unlock(&p->mu);
        if (state == VD_PART_UNASSIGNED || state == VD_PART_READY) continue;
        ok = 0;
        char why[sizeof p->refused_why];
        vd_partition_refused_why(p, why, sizeof why);
        fprintf(out, "partition %d: %s%s%s\n", (int)i, vd_part_state_name(state), *why ? ": " : "",
                why);
    }
    return ok;
}

/* The heartbeat's part of the snapshot: the worker and its partitions.
 * Returns how many indexes the applying partitions hold. */
static size_t snapshot_worker(vd_worker *w, vd_dir_worker *hb)
{
    snprintf(hb->id, sizeof hb->id, "%s", w->worker_id);
    gethostname(hb->host, sizeof hb->host - 1);
    snprintf(hb->version, sizeof hb->version, "%s", VECTORD_VERSION);
    hb->pid = (long)getpid();
    hb->started_ms = w->started_ms;
    hb->partition_count = w->nparts;
    size_t nidx = 0;
    hb->parts = calloc((size_t)w->nparts + 1, sizeof *hb->parts);
    for (int32_t i = 0; hb->parts && i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        pthread_mutex_lock(&p->mu);
        vd_part_state state = p->state;
        int64_t applied = vd_partition_applied(p);
        pthread_mutex_unlock(&p->mu);
        if (state == VD_PART_UNASSIGNED) continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(w->consumer, w->t_cmd, i, &lo, &hi);
        vd_dir_partition *dp = &hb->parts[hb->nparts++];
        dp->id = i;
        snprintf(dp->state, sizeof dp->state, "%s", vd_part_state_name(state));
        dp->applied = applied;
        dp->lag = hi < 0 ? -1 : hi - applied - 1 > 0 ? hi - applied - 1 : 0;
        if (dp->lag > 0) hb->lag += dp->lag;
        if (state == VD_PART_REPLAYING || state == VD_PART_READY) nidx += p->n;
    }
    return nidx;
}

/* One directory entry per index of the applying partitions (at most n). */
static void snapshot_indexes(vd_worker *w, vd_dir_snapshot *s, size_t nidx)
{
    s->indexes = calloc(nidx + 1, sizeof *s->indexes);
    for (int32_t i = 0; s->indexes && i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        if (p->state != VD_PART_REPLAYING && p->state != VD_PART_READY) continue;
        pthread_rwlock_rdlock(&p->lock);
        for (size_t j = 0; j < p->n && s->n < nidx; j++) {
            vd_entry *e = &p->e[j];
            vd_dir_index *x = &s->indexes[s->n];
            vd_index_stats st;
            vd_index_stats_get(e->ix, &st);
            if (!(x->name = strdup(e->name))) break;
            x->partition = i;
            snprintf(x->owner, sizeof x->owner, "%s", w->worker_id);
            x->params = *vd_index_params_get(e->ix);
            x->length = st.live;
            x->deleted = st.deleted;
            x->applied_offset = atomic_load_explicit(&e->last, memory_order_relaxed);
            x->checkpointed_offset = e->file_offset;
            s->n++;
        }
        pthread_rwlock_unlock(&p->lock);
    }
}

void vd_status_directory_tick(vd_worker *w, int now)
{
    if (!w->dir || (!now && vd_mono_s() < w->dir_next)) return;
    w->dir_next = vd_mono_s() + vd_config_int(w->cfg, "directory.heartbeat.interval.ms") / 1000.0;
    vd_dir_snapshot s;
    memset(&s, 0, sizeof s);
    size_t nidx = snapshot_worker(w, &s.worker);
    snapshot_indexes(w, &s, nidx);
    vd_directory_publish(w->dir, &s);
}
