/*
 * worker.c - the vectord worker: setup, the poll loop, the dispatch of
 * each record, shutdown (see worker.h). The rest of src/worker/ holds the
 * parts, and docs/architecture.md shows how a command and a search travel
 * through them:
 *   partition.c   the registry and state machine of a commands partition
 *   apply.c       the command rules (pure: an outcome, no Kafka)
 *   outbox.c      replies, acks and the DLQ
 *   checkpoint.c  snapshot, write, finish, policy; then commit
 *   load.c        checkpoints loaded at assignment, replay start
 *   rebalance.c   the assign and revoke callbacks
 *   search.c      the search queue and pool
 *   status.c      /metrics, /readyz, the directory snapshot
 *   taskq.c       the store thread's queue
 *   manifest.c    the per-partition manifest and replay rules (pure)
 * The threads and the locks are described in worker_internal.h.
 */
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "directory/directory.h"
#include "http/http.h"
#include "kafka/kafka.h"
#include "store/store.h"
#include "worker/apply.h"
#include "worker/checkpoint.h"
#include "worker/load.h"
#include "worker/outbox.h"
#include "worker/partition.h"
#include "worker/rebalance.h"
#include "worker/search.h"
#include "worker/status.h"
#include "worker/taskq.h"
#include "worker/worker_internal.h"

void vd_worker_retry_later(vd_worker *w, vd_partition *p)
{
    double base = vd_config_int(w->cfg, "checkpoint.retry.backoff.ms") / 1000.0;
    double max = vd_config_int(w->cfg, "checkpoint.retry.backoff.max.ms") / 1000.0;
    vd_partition_backoff(p, vd_mono_s(), base, max, (double)rand() / RAND_MAX);
}

/* ------------------------------------------------------------------ */
/* Setup. */

static int32_t partition_count(rd_kafka_t *rk, const char *topic, vd_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int32_t n = -1;
    if (e) {
        vd_error_set(err, VD_ERR_IO, "metadata for topic %s: %s", topic, rd_kafka_err2str(e));
    } else if (md->topic_cnt != 1 || md->topics[0].err) {
        vd_error_set(err, VD_ERR_CONFIG,
                     "topic %s: %s (create it, with as many partitions as "
                     "the other vectord topics)",
                     topic, md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "missing");
    } else {
        n = md->topics[0].partition_cnt;
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    vd_worker *w = rd_kafka_opaque(rk);
    vd_log(w->lg,
           level <= 3   ? VD_LOG_ERROR
           : level <= 4 ? VD_LOG_WARN
                        : VD_LOG_DEBUG,
           "librdkafka", VD_LS("facility", fac), VD_LS("message", buf));
}

/* The store.* keys as the store's options (strings stay owned by cfg). */
static void store_options(const vd_config *cfg, vd_store_options *o)
{
    vd_store_options_init(o);
    o->token = vd_config_str(cfg, "store.token");
    o->s3_endpoint = vd_config_str(cfg, "store.s3.endpoint");
    o->s3_region = vd_config_str(cfg, "store.s3.region");
    o->s3_addressing = vd_config_str(cfg, "store.s3.addressing");
    o->connect_timeout_ms = vd_config_int(cfg, "store.connect.timeout.ms");
    o->request_timeout_ms = vd_config_int(cfg, "store.request.timeout.ms");
    o->retries = (int)vd_config_int(cfg, "store.retries");
    o->retry_backoff_ms = vd_config_int(cfg, "store.retry.backoff.ms");
    o->retry_backoff_max_ms = vd_config_int(cfg, "store.retry.backoff.max.ms");
}

/* The worker's identity and limits from cfg. */
static void worker_settings(vd_worker *w, const vd_config *cfg)
{
    w->t_cmd = vd_config_str(cfg, "topic.commands");
    w->t_search = vd_config_str(cfg, "topic.search");
    w->t_dlq = vd_config_str(cfg, "topic.dlq");
    const char *wid = vd_config_str(cfg, "worker.id");
    if (*wid) {
        snprintf(w->worker_id, sizeof w->worker_id, "%s", wid);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(w->worker_id, sizeof w->worker_id, "%s-%ld", host, (long)getpid());
    }
    vd_limits_init(&w->limits);
    w->limits.max_dimension = (uint32_t)vd_config_int(cfg, "limits.max.dimension");
    w->limits.max_batch = (uint32_t)vd_config_int(cfg, "limits.max.batch");
    w->limits.max_id_len = (uint32_t)vd_config_int(cfg, "limits.max.id.bytes");
    w->limits.max_metadata = (uint32_t)vd_config_int(cfg, "limits.max.metadata.bytes");
    w->limits.repair_threshold = vd_config_double(cfg, "index.repair.threshold");
    w->max_message = (size_t)vd_config_int(cfg, "limits.max.message.bytes");
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    w->started_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
}

static vd_err open_directory(vd_worker *w, const vd_config *cfg, vd_error *err)
{
    const char *redis_url = vd_config_str(cfg, "directory.redis_url");
    if (!*redis_url) return VD_OK;
    vd_directory_opts o = {
        .url = redis_url,
        .group = vd_config_str(cfg, "group.id"),
        .worker_id = w->worker_id,
        .timeout_ms = (int)vd_config_int(cfg, "directory.timeout.ms"),
        .heartbeat_ms = (int)vd_config_int(cfg, "directory.heartbeat.interval.ms"),
        .ttl_ms = (int)vd_config_int(cfg, "directory.ttl.ms"),
        .backoff_max_ms = (int)vd_config_int(cfg, "directory.retry.backoff.max.ms"),
        .pin_cache_ms = (int)vd_config_int(cfg, "directory.pin.cache.ms"),
        .lg = w->lg,
    };
    return vd_directory_open(&w->dir, &o, err);
}

/* The store, after checking that its longest call fits in a revoke. */
static vd_err open_store(vd_worker *w, const vd_config *cfg, vd_error *err)
{
    vd_store_options so;
    store_options(cfg, &so);
    const char *url = vd_config_str(cfg, "store.url");
    if (strncmp(url, "http", 4) == 0 || strncmp(url, "s3://", 5) == 0) {
        /* The checkpoint at revoke is waited for inside the rebalance
         * callback: the longest store call, retries included, must end
         * before the group gives up on this member. */
        const char *mpi = vd_kafka_conf_get(cfg, VD_KAFKA_CONSUMER, "max.poll.interval.ms");
        double poll_ms = mpi ? atof(mpi) : 300000;
        double call_ms = (double)(so.retries + 1) * (double)so.request_timeout_ms +
                         (double)so.retries * (double)so.retry_backoff_max_ms;
        if (call_ms >= poll_ms)
            return vd_error_set(err, VD_ERR_CONFIG,
                                "store.request.timeout.ms x (store.retries + 1) + backoff = %.0f "
                                "ms must stay below kafka.max.poll.interval.ms (%.0f ms): the "
                                "checkpoint at a revoke waits for the store",
                                call_ms, poll_ms);
    }
    return vd_store_open(&w->store, url, &so, err);
}

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    vd_worker *w = opaque;
    vd_outbox_delivered(rk, m, &w->out);
}

/* The headroom a DLQ record needs over the message it copies: the error
 * headers and the record's framing. */
enum { DLQ_OVERHEAD = 65536 };

/*
 * The producer's message.max.bytes: large enough for the DLQ copy of any
 * accepted message (limits.max.message.bytes plus the error headers), and
 * at least librdkafka's default. A smaller one set by the user is refused:
 * rejected commands would otherwise never reach the DLQ.
 */
static vd_err producer_max_bytes(const vd_config *cfg, size_t max_message, char *buf, size_t cap,
                                 vd_error *err)
{
    double need = (double)max_message + DLQ_OVERHEAD, top = 1e9;
    if (need > top)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "limits.max.message.bytes (%zu) + %d bytes of DLQ headers exceeds the "
                            "largest record librdkafka produces (kafka.producer.message.max.bytes "
                            "<= 1000000000)",
                            max_message, DLQ_OVERHEAD);
    const char *set = vd_kafka_conf_get(cfg, VD_KAFKA_PRODUCER, "message.max.bytes");
    if (set && atof(set) < need)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "kafka.producer.message.max.bytes (%s) must be at least "
                            "limits.max.message.bytes (%zu) + %d: a rejected command is copied to "
                            "the DLQ whole",
                            set, max_message, DLQ_OVERHEAD);
    double v = need + 1048576 > top ? top : need + 1048576;
    snprintf(buf, cap, "%.0f", v < 1000000 ? 1000000 : v);
    return VD_OK;
}

/* The producer (replies, acks, DLQ) and the consumer (both topics, range
 * assignor, manual commits, auto.offset.reset=error). */
static vd_err open_clients(vd_worker *w, const vd_config *cfg, vd_error *err)
{
    char errstr[512], max_bytes[32];
    vd_err rc;
    if ((rc = producer_max_bytes(cfg, w->max_message, max_bytes, sizeof max_bytes, err))) return rc;
    /* Never create a topic: a reply-to naming a topic that does not exist
     * gets nothing (the delivery fails and is counted). */
    const char *pdefaults[] = {"partitioner",
                               "murmur2_random",
                               "linger.ms",
                               "1",
                               "enable.idempotence",
                               "false",
                               "allow.auto.create.topics",
                               "false",
                               "message.max.bytes",
                               max_bytes,
                               NULL};
    rd_kafka_conf_t *pc;
    if ((rc = vd_kafka_conf(cfg, VD_KAFKA_PRODUCER, pdefaults, w->bootstrap, &pc, err))) return rc;
    rd_kafka_conf_set_opaque(pc, w);
    rd_kafka_conf_set_log_cb(pc, kafka_log_cb);
    rd_kafka_conf_set_dr_msg_cb(pc, delivered);
    if (!(w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr)))
        return vd_error_set(err, VD_ERR_CONFIG, "producer: %s", errstr);
    const char *gi = vd_config_str(cfg, "group.instance.id");
    const char *cdefaults[] = {"group.id",
                               vd_config_str(cfg, "group.id"),
                               "partition.assignment.strategy",
                               "range",
                               "enable.auto.commit",
                               "false",
                               "enable.auto.offset.store",
                               "false",
                               "auto.offset.reset",
                               "error",
                               "enable.partition.eof",
                               "false",
                               *gi ? "group.instance.id" : NULL,
                               gi,
                               NULL};
    rd_kafka_conf_t *cc;
    if ((rc = vd_kafka_conf(cfg, VD_KAFKA_CONSUMER, cdefaults, w->bootstrap, &cc, err))) return rc;
    rd_kafka_conf_set_opaque(cc, w);
    rd_kafka_conf_set_log_cb(cc, kafka_log_cb);
    rd_kafka_conf_set_rebalance_cb(cc, vd_rebalance_cb);
    if (!(w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr)))
        return vd_error_set(err, VD_ERR_CONFIG, "consumer: %s", errstr);
    rd_kafka_poll_set_consumer(w->consumer);
    return VD_OK;
}

/* The partitions of the (co-partitioned) topics, one vd_partition each. */
static vd_err open_partitions(vd_worker *w, vd_error *err)
{
    int32_t nc = partition_count(w->consumer, w->t_cmd, err);
    int32_t ns = nc < 0 ? -1 : partition_count(w->consumer, w->t_search, err);
    if (nc < 0 || ns < 0) return err ? err->code : VD_ERR_CONFIG;
    if (nc != ns)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "topics %s (%d partitions) and %s (%d partitions) must have the same "
                            "partition count: searches are routed to the worker that owns the "
                            "same partition of the commands topic",
                            w->t_cmd, (int)nc, w->t_search, (int)ns);
    char *cid = rd_kafka_clusterid(w->consumer, 10000);
    snprintf(w->cluster_id, sizeof w->cluster_id, "%s", cid ? cid : "");
    if (cid) rd_kafka_mem_free(w->consumer, cid);
    if (!(w->parts = calloc((size_t)nc, sizeof *w->parts)))
        return vd_error_set(err, VD_ERR_NOMEM, "worker: out of memory");
    w->nparts = nc;
    for (int32_t i = 0; i < nc; i++) vd_partition_init(&w->parts[i], i);
    return VD_OK;
}

vd_err vd_worker_new(vd_worker **out, const vd_config *cfg, const vd_logger *lg, vd_error *err)
{
    vd_worker *w = calloc(1, sizeof *w);
    if (!w) return vd_error_set(err, VD_ERR_NOMEM, "worker: out of memory");
    w->cfg = cfg;
    w->lg = lg;
    worker_settings(w, cfg);

    vd_err rc;
    if ((rc = open_directory(w, cfg, err))) goto fail;
    const char *bootstrap = vd_config_kafka(cfg, "bootstrap.servers");
    if (!bootstrap || !*bootstrap) {
        const char *topics[] = {w->t_cmd, w->t_search, w->t_dlq, "vectord.replies", NULL};
        if ((rc = vd_kafka_mock_start(&w->mock, topics,
                                      (int)vd_config_int(cfg, "embedded.partitions"), &bootstrap,
                                      err)))
            goto fail;
        VD_WLOG(w, VD_LOG_INFO, "embedded_cluster", VD_LS("bootstrap", bootstrap),
                VD_LI("partitions", vd_config_int(cfg, "embedded.partitions")));
    }
    if (!(w->bootstrap = strdup(bootstrap))) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "worker: out of memory");
        goto fail;
    }
    if ((rc = open_store(w, cfg, err))) goto fail;
    if ((rc = vd_taskq_new(&w->store_q, w, err))) goto fail;
    if ((rc = open_clients(w, cfg, err))) goto fail;
    if ((rc = open_partitions(w, err))) goto fail;
    vd_outbox_opts oo = {
        .producer = w->producer,
        .lg = lg,
        .own = {w->t_cmd, w->t_search, w->t_dlq},
        .allow = vd_config_str(cfg, "reply.topics.allow"),
        .partitions = w->nparts,
        .retry_max_s = vd_config_int(cfg, "checkpoint.retry.backoff.max.ms") / 1000.0,
    };
    if ((rc = vd_outbox_open(&w->out, &oo, err))) goto fail;
    if ((rc = vd_search_start(w, err))) goto fail;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(sub, w->t_cmd, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(sub, w->t_search, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t ke = rd_kafka_subscribe(w->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (ke) {
        rc = vd_error_set(err, VD_ERR_IO, "subscribe: %s", rd_kafka_err2str(ke));
        goto fail;
    }
    const char *listen = vd_config_str(cfg, "http.listen");
    if (*listen) {
        vd_http_handlers hh = {w, vd_status_metrics, vd_status_ready};
        if ((rc = vd_http_start(&w->http, listen, &hh, err))) goto fail;
        VD_WLOG(w, VD_LOG_INFO, "http", VD_LS("listen", listen),
                VD_LI("port", vd_http_port(w->http)));
    }
    VD_WLOG(w, VD_LOG_INFO, "started", VD_LS("worker", w->worker_id),
            VD_LS("bootstrap", w->bootstrap), VD_LS("group", vd_config_str(cfg, "group.id")),
            VD_LI("partitions", w->nparts), VD_LS("store", vd_config_str(cfg, "store.url")));
    *out = w;
    return VD_OK;
fail:
    vd_worker_free(w);
    return rc;
}

const char *vd_worker_bootstrap(const vd_worker *w)
{
    return w->bootstrap;
}

/* ------------------------------------------------------------------ */
/* The dispatch (poll thread). */

/* The directory's pins as the apply rules' table. */
static vd_err pin_get(void *ctx, const char *name, size_t len, int32_t *owner)
{
    return vd_directory_pin_get(ctx, name, len, owner);
}

static vd_err pin_claim(void *ctx, const char *name, size_t len, int32_t partition, int32_t *owner)
{
    return vd_directory_pin_claim(ctx, name, len, partition, owner);
}

static void pin_drop(void *ctx, const char *name, size_t len, int32_t partition)
{
    vd_directory_unpin(ctx, name, len, partition);
}

/*
 * p stops at command m, which could be neither applied nor rejected
 * (VD_APPLY_FATAL: out of memory). Loudly: an error log with the reason,
 * p refused (/readyz, vectord_partition_refused, searches answered
 * `unavailable` with the reason), counted. p is paused in the consumer and
 * nothing of it is checkpointed or committed any more, so m and what
 * follows wait in Kafka for a restart or the next owner. No reply and no
 * DLQ record: m was not rejected, its ack comes when it is applied.
 */
static void stop_partition(vd_worker *w, vd_partition *p, rd_kafka_message_t *m,
                           const vd_error *err)
{
    char why[sizeof p->refused_why];
    snprintf(why, sizeof why,
             "command at offset %" PRId64 " could not be applied (%s: %s); stopped there, "
             "uncommitted: a restart or the next owner replays it from the checkpoints",
             m->offset, vd_err_code(err->code), err->msg);
    vd_partition_stop(p, why);
    vd_load_pause(w, p->id, 1);
    w->n_apply_fatal++;
    VD_WLOG(w, VD_LOG_ERROR, "partition_refused", VD_LI("partition", p->id),
            VD_LI("offset", m->offset), VD_LS("error", vd_err_code(err->code)),
            VD_LS("reason", why), VD_LI("committed", p->committed));
}

/* Command m, at an offset p has not consumed yet: the rules decide, the
 * outbox tells the producer (an ack, or the DLQ and an error reply).
 * Returns the outcome's kind. */
static vd_apply_kind apply_record(vd_worker *w, vd_partition *p, rd_kafka_message_t *m)
{
    vd_pins pins = {w->dir, pin_get, pin_claim, pin_drop};
    vd_apply_rules rules = {&w->limits, w->max_message, w->t_cmd, w->dir ? &pins : NULL};
    size_t n;
    const char *ct = vd_kafka_header(m, "content-type", &n);
    vd_command c = {.key = m->key,
                    .key_len = m->key_len,
                    .value = m->payload,
                    .len = m->len,
                    .ct = vd_content_type_parse(ct, ct ? n : 0),
                    .partition = m->partition,
                    .offset = m->offset};
    vd_apply_outcome o;
    vd_apply_command(&rules, p, &c, &o);
    int quiet = m->offset <= p->quiet_until; /* answered before a restart */
    if (o.kind == VD_APPLY_ACK) {
        w->n_applied++;
        vd_outbox_ack(&w->out, m, &o.ack, quiet);
    } else if (o.kind == VD_APPLY_REJECT) {
        vd_outbox_reject(&w->out, m, o.err.code, o.err.msg, quiet);
    } else if (o.kind == VD_APPLY_FATAL) {
        stop_partition(w, p, m, &o.err);
    }
    return o.kind;
}

/* Command m of p, when p is applying and has not consumed m yet; the
 * offset is consumed unless the command stopped the partition. The
 * caller holds p->apply_mu. */
static void apply_if_new(vd_worker *w, vd_partition *p, rd_kafka_message_t *m)
{
    if ((p->state == VD_PART_REPLAYING || p->state == VD_PART_READY) &&
        m->offset > vd_partition_applied(p) && apply_record(w, p, m) != VD_APPLY_FATAL)
        vd_partition_advance(p, m->offset);
}

/* A consumer error: the log no longer holds what p needs (invariant 5),
 * or something to log. */
static void consumer_error(vd_worker *w, rd_kafka_message_t *m)
{
    vd_partition *p = NULL;
    if (m->rkt && strcmp(rd_kafka_topic_name(m->rkt), w->t_cmd) == 0 && m->partition >= 0 &&
        m->partition < w->nparts)
        p = &w->parts[m->partition];
    /* Only for the offset the partition needs next: an error left from the
     * placeholder offset it was assigned at while loading is not about its
     * log. */
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && p &&
        (p->state == VD_PART_REPLAYING || p->state == VD_PART_READY) &&
        m->offset == vd_partition_applied(p) + 1) {
        char why[sizeof p->refused_why];
        snprintf(why, sizeof why, "offset %" PRId64 " is no longer in the log (retention): %s",
                 vd_partition_applied(p) + 1, rd_kafka_message_errstr(m));
        vd_partition_refuse(p, why);
        VD_WLOG(w, VD_LOG_ERROR, "partition_refused", VD_LI("partition", p->id),
                VD_LS("reason", why));
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        VD_WLOG(w, VD_LOG_WARN, "consumer_error", VD_LS("error", rd_kafka_message_errstr(m)));
    }
}

/* Keeps m for p until the store thread releases p's apply_mu; the first
 * one pauses p, so nothing more of it is fetched meanwhile (a resume
 * fetches from after the last record returned). Returns 0 when out of
 * memory. */
static int park_record(vd_worker *w, vd_partition *p, rd_kafka_message_t *m)
{
    if (p->nparked == p->capparked) {
        size_t cap = p->capparked ? 2 * p->capparked : 4;
        rd_kafka_message_t **h = realloc(p->parked, cap * sizeof *h);
        if (!h) return 0;
        p->parked = h;
        p->capparked = cap;
    }
    if (!p->nparked) vd_load_pause(w, p->id, 1);
    p->parked[p->nparked++] = m;
    w->n_parked++;
    return 1;
}

static void handle_message(vd_worker *w, rd_kafka_message_t *m)
{
    if (m->err) {
        consumer_error(w, m);
    } else if (strcmp(rd_kafka_topic_name(m->rkt), w->t_search) == 0) {
        vd_search_enqueue(w, m);
        return; /* the pool's now */
    } else if (m->partition >= 0 && m->partition < w->nparts) {
        vd_partition *p = &w->parts[m->partition];
        /* The store thread is serialising one of p's indexes: m waits
         * (and p is paused), so the poll thread never blocks on it. */
        if (p->nparked || pthread_mutex_trylock(&p->apply_mu) != 0) {
            if (park_record(w, p, m)) return;
            pthread_mutex_lock(&p->apply_mu); /* out of memory: wait instead */
        }
        apply_if_new(w, p, m);
        pthread_mutex_unlock(&p->apply_mu);
    }
    rd_kafka_message_destroy(m);
}

/* Applies the commands parked for partitions whose apply_mu is free again,
 * in order, and resumes them. Returns 1 while any stay parked. */
static int release_parked(vd_worker *w)
{
    int busy = 0;
    for (int32_t i = 0; i < w->nparts; i++) {
        vd_partition *p = &w->parts[i];
        if (!p->nparked) continue;
        if (pthread_mutex_trylock(&p->apply_mu) != 0) {
            busy = 1;
            continue;
        }
        for (size_t k = 0; k < p->nparked; k++) {
            rd_kafka_message_t *m = p->parked[k];
            apply_if_new(w, p, m);
            rd_kafka_message_destroy(m);
        }
        p->nparked = 0;
        pthread_mutex_unlock(&p->apply_mu);
        /* A partition stopped meanwhile (stop_partition) stays paused. */
        if (p->state != VD_PART_REFUSED) vd_load_pause(w, p->id, 0);
    }
    return busy;
}

vd_err vd_worker_run(vd_worker *w, volatile sig_atomic_t *stop, vd_error *err)
{
    int loading = 0;
    while (!*stop) {
        /* While partitions load, look at them every 10 ms: one loaded is
         * moved to its start without waiting out a quiet poll. */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, loading ? 10 : 100);
        if (m) handle_message(w, m);
        int parked = release_parked(w);
        rd_kafka_poll(w->producer, 0);
        vd_outbox_poll(&w->out);
        vd_search_poll(w);
        vd_checkpoint_policy(w);
        vd_status_directory_tick(w, 0);
        loading = vd_load_poll(w) | parked;
    }
    VD_WLOG(w, VD_LOG_INFO, "stopping", VD_LS("worker", w->worker_id));
    /* Finish in-flight searches, then checkpoint and commit everything. */
    vd_search_stop(w);
    vd_err rc = VD_OK;
    /* Loads first: the checkpoints below must not queue behind them. */
    for (int32_t i = 0; i < w->nparts; i++) vd_load_cancel(w, &w->parts[i]);
    for (int32_t i = 0; i < w->nparts; i++)
        if (vd_checkpoint_now(w, &w->parts[i], "shutdown", err)) rc = err ? err->code : VD_ERR_IO;
    vd_status_directory_tick(w, 1); /* the directory's last write has the final offsets */
    rd_kafka_consumer_close(w->consumer);
    rd_kafka_flush(w->producer, 10000);
    VD_WLOG(w, VD_LOG_INFO, "stopped", VD_LI("applied", w->n_applied),
            VD_LI("rejected", w->out.n_rejected), VD_LI("searches", w->n_searches),
            VD_LI("checkpoints", w->n_checkpoints));
    return rc;
}

void vd_worker_free(vd_worker *w)
{
    if (!w) return;
    vd_http_stop(w->http);      /* first: it reads the partitions */
    vd_directory_close(w->dir); /* writes the last snapshot, removes the heartbeat */
    w->dir = NULL;
    vd_search_stop(w);
    vd_search_free(w);
    for (int32_t i = 0; i < w->nparts; i++) vd_load_cancel(w, &w->parts[i]);
    for (int32_t i = 0; i < w->nparts; i++) vd_checkpoint_discard(w, &w->parts[i]);
    vd_taskq_free(w->store_q);
    if (w->consumer) rd_kafka_destroy(w->consumer);
    if (w->producer) rd_kafka_destroy(w->producer);
    for (int32_t i = 0; i < w->nparts; i++) vd_partition_destroy(&w->parts[i]);
    free(w->parts);
    vd_store_close(w->store);
    vd_kafka_mock_stop(w->mock);
    free(w->bootstrap);
    vd_outbox_close(&w->out);
    free(w);
}
