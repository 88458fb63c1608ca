/*
 * fleet.c - vectorctl ls and status: the Redis directory (docs/directory.md),
 * not Kafka. Exit 4 when Redis is unreachable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "directory/directory.h"

static vd_directory *dir_connect(const ctl *c, const char *url)
{
    if (!url) url = vd_config_str(c->cfg, "directory.redis_url");
    if (!*url) url = getenv("VECTORD_DIRECTORY_REDIS_URL");
    if (!url || !*url)
        vc_die(VC_EXIT_USAGE, NULL,
               "no directory: pass --redis redis://HOST:PORT, -X directory.redis_url=..., "
               "or set VECTORD_DIRECTORY_REDIS_URL");
    vd_directory_opts o = {
        .url = url, .group = vd_config_str(c->cfg, "group.id"), .timeout_ms = c->timeout_ms};
    vd_directory *d;
    vd_error err;
    vd_err rc = vd_directory_connect(&d, &o, &err);
    if (rc) vc_die(rc == VD_ERR_CONFIG ? VC_EXIT_USAGE : VC_EXIT_KAFKA, NULL, "%s", err.msg);
    return d;
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "3.2s", "5m", "2h" ago; "-" for no time. */
static const char *ago(int64_t ms, char *buf, size_t cap)
{
    if (ms <= 0) return "-";
    double s = (double)(unix_ms() - ms) / 1000.0;
    if (s < 0) s = 0;
    if (s < 60)
        snprintf(buf, cap, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%.0fm", s / 60);
    else
        snprintf(buf, cap, "%.0fh", s / 3600);
    return buf;
}

static void print_json(json_t *doc)
{
    char *t = json_dumps(doc, JSON_COMPACT);
    puts(t ? t : "null");
    free(t);
    json_decref(doc);
}

int vc_cmd_ls(ctl *c, const char *url)
{
    vd_directory *d = dir_connect(c, url);
    vd_dir_index *xs;
    size_t n;
    vd_error err;
    if (vd_directory_indexes(d, &xs, &n, &err)) vc_die(VC_EXIT_KAFKA, NULL, "%s", err.msg);
    json_t *arr = c->json_out ? json_array() : NULL;
    if (!c->json_out)
        printf("%-24s %4s %-20s %5s %-9s %10s %10s %12s %8s %s\n", "INDEX", "PART", "OWNER", "DIM",
               "DISTANCE", "LENGTH", "APPLIED", "CHECKPOINTED", "UPDATED", "NOTE");
    for (size_t i = 0; i < n; i++) {
        vd_dir_index *x = &xs[i];
        if (c->json_out) {
            json_t *o = json_pack(
                "{s:s, s:i, s:s, s:b, s:i, s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I}", "name",
                x->name, "partition", (int)x->partition, "owner", x->owner, "owner_alive",
                x->owner_alive, "dimension", (int)x->params.dimension, "m", (int)x->params.m,
                "ef_construction", (int)x->params.ef_construction, "ef_search",
                (int)x->params.ef_search, "distance", vd_distance_name(x->params.distance),
                "length", (json_int_t)x->length, "deleted", (json_int_t)x->deleted,
                "applied_offset", (json_int_t)x->applied_offset, "checkpointed_offset",
                (json_int_t)x->checkpointed_offset, "updated_ms", (json_int_t)x->updated_ms);
            json_object_set_new(o, "pinned_partition",
                                x->pinned >= 0 ? json_integer(x->pinned) : json_null());
            json_array_append_new(arr, o);
        } else {
            char when[32], note[96] = "";
            if (!x->owner_alive) snprintf(note, sizeof note, "owner gone");
            if (x->pinned < 0)
                snprintf(note + strlen(note), sizeof note - strlen(note), "%snot pinned",
                         *note ? ", " : "");
            else if (x->pinned != x->partition)
                snprintf(note + strlen(note), sizeof note - strlen(note), "%spinned to %d",
                         *note ? ", " : "", (int)x->pinned);
            printf("%-24s %4d %-20s %5u %-9s %10" PRIu64 " %10" PRId64 " %12" PRId64 " %8s %s\n",
                   x->name, (int)x->partition, x->owner, x->params.dimension,
                   vd_distance_name(x->params.distance), x->length, x->applied_offset,
                   x->checkpointed_offset, ago(x->updated_ms, when, sizeof when), note);
        }
        vd_dir_index_clear(x);
    }
    free(xs);
    if (c->json_out) print_json(json_pack("{s:o}", "indexes", arr));
    vd_directory_close(d);
    return 0;
}

int vc_cmd_status(ctl *c, const char *url)
{
    vd_directory *d = dir_connect(c, url);
    vd_dir_worker *ws;
    size_t n;
    vd_error err;
    if (vd_directory_workers(d, &ws, &n, &err)) vc_die(VC_EXIT_KAFKA, NULL, "%s", err.msg);
    int32_t nparts = 0;
    for (size_t i = 0; i < n; i++)
        if (ws[i].partition_count > nparts) nparts = ws[i].partition_count;
    json_t *jw = json_array(), *jp = json_array(), *unowned = json_array();
    if (!c->json_out)
        printf("%-24s %-16s %8s %-16s %8s %10s\n", "WORKER", "HOST", "PID", "PARTITIONS", "LAG",
               "HEARTBEAT");
    for (size_t i = 0; i < n; i++) {
        vd_dir_worker *w = &ws[i];
        char list[256] = "", when[32];
        json_t *parts = json_array();
        for (size_t k = 0; k < w->nparts; k++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%d", k ? "," : "", (int)w->parts[k].id);
            json_array_append_new(parts, json_pack("{s:i, s:s, s:I, s:I}", "partition",
                                                   (int)w->parts[k].id, "state", w->parts[k].state,
                                                   "applied", (json_int_t)w->parts[k].applied,
                                                   "lag", (json_int_t)w->parts[k].lag));
        }
        if (c->json_out)
            json_array_append_new(
                jw,
                json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:I, s:o}", "id", w->id, "host",
                          w->host, "version", w->version, "pid", (json_int_t)w->pid, "started_ms",
                          (json_int_t)w->started_ms, "updated_ms", (json_int_t)w->updated_ms,
                          "ttl_ms", (json_int_t)w->ttl_ms, "partition_count",
                          (int)w->partition_count, "lag", (json_int_t)w->lag, "partitions", parts));
        else {
            json_decref(parts);
            printf("%-24s %-16s %8ld %-16s %8" PRId64 " %10s\n", w->id, w->host, w->pid,
                   *list ? list : "-", w->lag, ago(w->updated_ms, when, sizeof when));
        }
    }
    if (!c->json_out)
        printf("\n%-9s %-24s %-10s %10s %8s\n", "PARTITION", "OWNER", "STATE", "APPLIED", "LAG");
    int32_t owned = 0;
    for (int32_t p = 0; p < nparts; p++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < ws[i].nparts; k++) {
                vd_dir_partition *dp = &ws[i].parts[k];
                if (dp->id != p) continue;
                found++;
                if (c->json_out)
                    json_array_append_new(
                        jp, json_pack("{s:i, s:s, s:s, s:I, s:I}", "partition", (int)p, "owner",
                                      ws[i].id, "state", dp->state, "applied",
                                      (json_int_t)dp->applied, "lag", (json_int_t)dp->lag));
                else
                    printf("%-9d %-24s %-10s %10" PRId64 " %8" PRId64 "%s\n", (int)p, ws[i].id,
                           dp->state, dp->applied, dp->lag,
                           found > 1 ? "  (two owners: a rebalance is in progress)" : "");
            }
        if (found) owned++;
        if (!found) {
            json_array_append_new(unowned, json_integer(p));
            if (!c->json_out)
                printf("%-9d %-24s %-10s %10s %8s\n", (int)p, "-", "unowned", "-", "-");
        }
    }
    if (c->json_out)
        print_json(json_pack("{s:o, s:o, s:i, s:i, s:o}", "workers", jw, "partitions", jp,
                             "partition_count", (int)nparts, "owned", (int)owned, "unowned",
                             unowned));
    else {
        json_decref(jw);
        json_decref(jp);
        json_decref(unowned);
        printf("\n%zu worker%s; %d of %d partitions owned\n", n, n == 1 ? "" : "s", (int)owned,
               (int)nparts);
    }
    for (size_t i = 0; i < n; i++) vd_dir_worker_clear(&ws[i]);
    free(ws);
    vd_directory_close(d);
    return 0;
}
