/*
 * add.c - vectorctl add: a file of vectors in batches, through a bounded
 * window of unacknowledged batches (docs/vectorctl.md, "add").
 *
 * Each batch is one add command with its own correlation id. A batch holds
 * a slot of the window from its send until the worker's ack (with
 * --no-wait: until Kafka's delivery report); the next batch waits for a
 * free slot. If nothing comes back for --timeout while batches are
 * outstanding, the worker has fallen behind: exit 3, naming the batches
 * and their offsets.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "kafka/kafka.h"

/*
 * One add batch in flight. Its slot is reused once the worker has acked it
 * and its delivery report (partition, offset) is in: the report can come
 * after the ack when the producer has not been polled in between.
 */
typedef struct batch {
    char corr[64];
    size_t items, bytes;
    vc_delivery dr; /* partition and offset, once Kafka has it */
    int used, acked;
} batch;

/* At most this many bytes of batches unacknowledged, whatever
 * --max-in-flight says: the embedded mode's mock cluster keeps only the
 * last 5 MiB of a partition (docs/worker.md), and a worker further behind
 * than that loses commands. One batch always goes. */
#define ADD_MAX_BYTES_IN_FLIGHT (4u << 20)

typedef struct add_run {
    ctl *c;
    batch *slots;
    size_t nslots;
    size_t sent_items, sent_batches, acked_items, acked_batches, failed;
    double t0, progress; /* start; the last ack (or delivery with --no-wait) */
} add_run;

static int slot_busy(const add_run *r, const batch *b)
{
    return b->used && !(b->dr.delivered && (b->acked || r->c->no_wait));
}

static size_t busy_count(const add_run *r, size_t *bytes)
{
    size_t n = 0, by = 0;
    for (size_t i = 0; i < r->nslots; i++)
        if (slot_busy(r, &r->slots[i])) {
            n++;
            by += r->slots[i].bytes;
        }
    if (bytes) *bytes = by;
    return n;
}

/* Reads what has come back within wait_ms: delivery reports, and acks
 * matched to the window's correlation ids. */
static void add_poll(add_run *r, int wait_ms)
{
    ctl *c = r->c;
    size_t before = 0;
    for (size_t i = 0; i < r->nslots; i++) before += r->slots[i].dr.delivered;
    rd_kafka_poll(c->producer, c->no_wait ? wait_ms : 0);
    if (c->delivery_failures)
        vc_die(VC_EXIT_KAFKA, NULL, "%zu batches were not delivered to Kafka",
               c->delivery_failures);
    if (c->no_wait) {
        size_t after = 0;
        for (size_t i = 0; i < r->nslots; i++) after += r->slots[i].dr.delivered;
        if (after != before) r->progress = vc_now();
        return;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->consumer, wait_ms);
    if (!m) return;
    char corr[128];
    if (!m->err && vd_kafka_header_str(m, "correlation-id", corr, sizeof corr)) {
        for (size_t i = 0; i < r->nslots; i++) {
            batch *b = &r->slots[i];
            if (!b->used || b->acked || strcmp(b->corr, corr) != 0) continue;
            json_error_t je;
            json_t *doc = json_loadb(m->payload, m->len, 0, &je);
            if (!doc) vc_die(VC_EXIT_KAFKA, NULL, "unreadable reply: %s", je.text);
            b->acked = 1;
            r->acked_batches++;
            r->progress = vc_now();
            if (vc_reply_failed(doc))
                r->failed++;
            else
                r->acked_items += b->items;
            json_decref(doc);
            break;
        }
    }
    rd_kafka_message_destroy(m);
}

static int cmp_batch(const void *a, const void *b)
{
    const batch *x = *(batch *const *)a, *y = *(batch *const *)b;
    if (x->dr.partition != y->dr.partition) return x->dr.partition < y->dr.partition ? -1 : 1;
    return (x->dr.offset > y->dr.offset) - (x->dr.offset < y->dr.offset);
}

/* The worker (or Kafka, with --no-wait) has not answered for the timeout:
 * say what is outstanding and where it is in the log, then exit 3. */
static void fell_behind(add_run *r, const char *index)
{
    ctl *c = r->c;
    batch **out = calloc(r->nslots, sizeof *out);
    size_t n = 0, items = 0, undelivered = 0;
    for (size_t i = 0; i < r->nslots; i++)
        if (slot_busy(r, &r->slots[i])) {
            items += r->slots[i].items;
            if (r->slots[i].dr.delivered)
                out[n++] = &r->slots[i];
            else
                undelivered++;
        }
    qsort(out, n, sizeof *out, cmp_batch);
    /* "partition 0 offsets 0-3,7; partition 2 offsets 12" */
    char where[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof where - 64;) {
        size_t j = i;
        while (j + 1 < n && out[j + 1]->dr.partition == out[i]->dr.partition &&
               out[j + 1]->dr.offset == out[j]->dr.offset + 1)
            j++;
        if (i == 0 || out[i - 1]->dr.partition != out[i]->dr.partition)
            len += (size_t)snprintf(where + len, sizeof where - len,
                                    "%spartition %" PRId32 " offsets ", i ? "; " : "",
                                    out[i]->dr.partition);
        else
            len += (size_t)snprintf(where + len, sizeof where - len, ",");
        len += (size_t)snprintf(where + len, sizeof where - len, "%" PRId64, out[i]->dr.offset);
        if (j > i)
            len +=
                (size_t)snprintf(where + len, sizeof where - len, "-%" PRId64, out[j]->dr.offset);
        i = j + 1;
    }
    if (undelivered && len < sizeof where - 64)
        snprintf(where + len, sizeof where - len, "%s%zu not yet in Kafka", len ? "; " : "",
                 undelivered);
    free(out);
    if (c->no_wait)
        vc_die(VC_EXIT_TIMEOUT, NULL,
               "add: Kafka took none of %zu batches within %d ms (%zu items)", undelivered,
               c->timeout_ms, items);
    vc_die(VC_EXIT_TIMEOUT, NULL,
           "add: vectord fell behind: no ack within %d ms; %zu batches unacknowledged (%zu items) "
           "in %s: %s; %zu of %zu items sent were acknowledged. Is a worker running and assigned "
           "the partition of \"%s\"? (vectorctl status shows lag; a longer --timeout waits more)",
           c->timeout_ms, busy_count(r, NULL), items, c->t_cmd, where, r->acked_items,
           r->sent_items, index);
}

static void draw_progress(const add_run *r, const vc_source *src, int final)
{
    double secs = vc_now() - r->t0;
    size_t done = r->c->no_wait ? r->sent_items : r->acked_items;
    double rate = (double)done / (secs > 0 ? secs : 1);
    if (src->total) {
        /* A bar over what is acknowledged (what is applied). */
        char bar[33];
        size_t w = sizeof bar - 1, fill = done >= src->total ? w : done * w / src->total;
        memset(bar, '#', fill);
        memset(bar + fill, '.', w - fill);
        bar[w] = '\0';
        fprintf(stderr, "\r%s [%s] %3.0f%% %zu/%zu, %.0f items/s, %zu batches in flight   %s",
                src->label ? src->label : "", bar, 100.0 * (double)done / (double)src->total, done,
                src->total, rate, busy_count(r, NULL), final ? "\n" : "");
        return;
    }
    char pct[32] = "";
    double frac = src->fraction && !final ? src->fraction(src->ctx) : -1;
    if (frac >= 0) snprintf(pct, sizeof pct, " (%.0f%% of the file)", 100.0 * frac);
    fprintf(stderr, "\r%zu items sent%s, %zu acked, %.0f items/s, %zu batches in flight   %s",
            r->sent_items, pct, done, rate, busy_count(r, NULL), final ? "\n" : "");
}

/* Redraws the progress line on a terminal, at most every 0.2 s. */
static void redraw(const add_run *r, const vc_source *src, int tty, double *last_draw)
{
    if (!tty || vc_now() - *last_draw <= 0.2) return;
    *last_draw = vc_now();
    draw_progress(r, src, 0);
}

/* Serves acks for up to 50 ms; exits through fell_behind when none came
 * within the client timeout. */
static void wait_for_acks(add_run *r, const char *index, const vc_source *src, int tty,
                          double *last_draw)
{
    if (vc_now() - r->progress > r->c->timeout_ms / 1000.0) {
        if (tty) fputc('\n', stderr);
        fell_behind(r, index);
    }
    add_poll(r, 50);
    redraw(r, src, tty, last_draw);
}

/*
 * Sends src in batches of `batch` items, never more than max_in_flight
 * batches (nor ADD_MAX_BYTES_IN_FLIGHT bytes) without an ack: the worker
 * stays within a bounded distance of the producer, and the result says
 * whether every batch was applied.
 */
void vc_add_stream(ctl *c, const char *index, vc_source *src, size_t batch_items,
                   size_t max_in_flight, vc_add_result *res)
{
    add_run r = {.c = c, .nslots = max_in_flight};
    r.slots = calloc(max_in_flight, sizeof *r.slots);
    if (!r.slots) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
    int tty = isatty(2);
    r.t0 = r.progress = vc_now();
    double last_draw = 0;
    for (;;) {
        json_t *items = json_array();
        size_t n = src->fill(src->ctx, items, batch_items);
        if (!n) {
            json_decref(items);
            break;
        }
        json_t *doc = json_pack("{s:s, s:s, s:o}", "op", "add", "index", index, "items", items);
        /* float32 vectors: 9 significant digits round-trip, half the
         * bytes of %.17g. NDJSON numbers go as read. */
        char *body =
            json_dumps(doc, src->float32 ? JSON_COMPACT | JSON_REAL_PRECISION(9) : JSON_COMPACT);
        json_decref(doc);
        if (!body) vc_die(VC_EXIT_KAFKA, NULL, "out of memory");
        size_t len = strlen(body), inflight_bytes;
        /* Wait for room in the window. */
        batch *slot = NULL;
        for (;;) {
            size_t busy = busy_count(&r, &inflight_bytes);
            if (busy == 0 || (busy < r.nslots && inflight_bytes + len <= ADD_MAX_BYTES_IN_FLIGHT)) {
                for (size_t i = 0; i < r.nslots && !slot; i++)
                    if (!slot_busy(&r, &r.slots[i])) slot = &r.slots[i];
                if (busy == 0) r.progress = vc_now(); /* nothing was owed until now */
                break;
            }
            wait_for_acks(&r, index, src, tty, &last_draw);
        }
        memset(slot, 0, sizeof *slot);
        slot->used = 1;
        slot->items = n;
        slot->bytes = len;
        vc_produce_body(c, c->t_cmd, index, body, len, slot->corr, sizeof slot->corr, &slot->dr);
        free(body);
        r.sent_batches++;
        r.sent_items += n;
        if (src->after_send) src->after_send(src->ctx, r.sent_items);
        add_poll(&r, 0);
        redraw(&r, src, tty, &last_draw);
    }
    /* The rest of the window. */
    while (busy_count(&r, NULL)) {
        wait_for_acks(&r, index, src, tty, &last_draw);
    }
    if (c->no_wait) {
        vc_flush_or_die(c);
        r.acked_items = r.sent_items;
        r.acked_batches = r.sent_batches;
    }
    if (tty) draw_progress(&r, src, 1);
    res->sent_items = r.sent_items;
    res->sent_batches = r.sent_batches;
    res->acked_items = r.acked_items;
    res->acked_batches = r.acked_batches;
    res->failed = r.failed;
    res->seconds = vc_now() - r.t0;
    free(r.slots);
}

/* vectorctl add: a vec_file as a source. */
typedef struct file_src {
    vec_file *vf;
    const char *path;
} file_src;

static size_t file_fill(void *ctx, json_t *items, size_t max)
{
    file_src *f = ctx;
    json_t *item;
    size_t n = 0;
    while (n < max && (item = vc_vecfile_next(f->vf, f->path))) {
        json_array_append_new(items, item);
        n++;
    }
    return n;
}

static double file_fraction(void *ctx)
{
    file_src *f = ctx;
    if (!f->vf->size || f->vf->f == stdin) return -1;
    return (double)ftello(f->vf->f) / (double)f->vf->size;
}

int vc_cmd_add(ctl *c, const char *index, vec_file *vf, const char *path, size_t batch_items,
               size_t max_in_flight)
{
    file_src fs = {vf, path};
    vc_source src = {
        .fill = file_fill, .fraction = file_fraction, .ctx = &fs, .float32 = vf->kind != 'n'};
    vc_add_result r;
    vc_add_stream(c, index, &src, batch_items, max_in_flight, &r);
    if (vf->f != stdin) fclose(vf->f);
    free(vf->line);
    double secs = r.seconds;
    if (c->json_out)
        printf("{\"items\":%zu,\"batches\":%zu,\"acked\":%zu,\"failed\":%zu,\"seconds\":%.3f}\n",
               r.sent_items, r.sent_batches, r.acked_batches, r.failed, secs);
    else
        printf("added %zu items in %zu batches to %s in %.2f s (%.0f items/s)%s\n", r.acked_items,
               r.sent_batches, index, secs, (double)r.acked_items / (secs > 0 ? secs : 1),
               r.failed ? ", some batches failed" : "");
    return r.failed ? VC_EXIT_ERR_REPLY : 0;
}
