/*
 * commands.h - vectorctl's commands that are more than one request and its
 * reply. Each returns the exit status (args.h) or exits itself; the
 * arguments are checked by the caller (vectorctl.c) before connecting.
 */
#ifndef VD_CLI_COMMANDS_H
#define VD_CLI_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/vecfile.h"

/* add.c: where the items of an add come from. */
typedef struct vc_source {
    /* Appends up to max items {"id","vector"[,"metadata"]} to items;
     * returns how many (0: the end). */
    size_t (*fill)(void *ctx, json_t *items, size_t max);
    /* How far through its input, 0..1; < 0 unknown. May be NULL. */
    double (*fraction)(void *ctx);
    /* Called after each batch is handed to the producer. May be NULL. */
    void (*after_send)(void *ctx, size_t sent_items);
    void *ctx;
    int float32;       /* vectors are float32: sent with 9 significant digits */
    size_t total;      /* items in all, when known: the TTY shows a bar */
    const char *label; /* before the bar */
} vc_source;

typedef struct vc_add_result {
    size_t sent_items, sent_batches, acked_items, acked_batches, failed;
    double seconds;
} vc_add_result;

/* add.c: src in add commands of batch_items to index, at most max_in_flight
 * batches (and 4 MiB) unacknowledged; progress on stderr when a TTY.
 * Exits 3 when the worker falls behind (no ack for --timeout). */
void vc_add_stream(ctl *c, const char *index, vc_source *src, size_t batch_items,
                   size_t max_in_flight, vc_add_result *res);

/* add.c: the open file vf (closed here) in batches of batch_items, at most
 * max_in_flight batches (and 4 MiB) unacknowledged. */
int vc_cmd_add(ctl *c, const char *index, vec_file *vf, const char *path, size_t batch_items,
               size_t max_in_flight);

/* search.c: vector (consumed), or each row of the open file queries. k >= 1;
 * ef 0 and min_offset -1: not sent. */
int vc_cmd_search(ctl *c, const char *index, json_t *vector, vec_file *queries,
                  const char *queries_path, int64_t k, int64_t ef, int64_t min_offset);

/* raw.c: count records alike (headers "NAME=VALUE"), value from stdin; to
 * partition, or the partitioner's choice when < 0. */
int vc_cmd_produce(ctl *c, const char *topic, const char *key, const char **headers,
                   size_t nheaders, int32_t partition, int64_t count);

/* raw.c: records from the beginning as JSON lines, count of them (< 0: until
 * the timeout). */
int vc_cmd_consume(ctl *c, const char *topic, int64_t count);

/* import.c: the Go service's index files (docs/vectorctl.md, "import");
 * argv as parsed for the import command. Checks its arguments before it
 * calls connect (dry runs never do). */
int vc_cmd_import(ctl *c, const vc_args *a, void (*connect)(ctl *));

/* fleet.c: the Redis directory at url (NULL: -X directory.redis_url, then
 * $VECTORD_DIRECTORY_REDIS_URL). */
int vc_cmd_ls(ctl *c, const char *url);
int vc_cmd_status(ctl *c, const char *url);

#endif
