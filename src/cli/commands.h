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

#include "cli/client.h"
#include "cli/vecfile.h"

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

/* fleet.c: the Redis directory at url (NULL: -X directory.redis_url, then
 * $VECTORD_DIRECTORY_REDIS_URL). */
int vc_cmd_ls(ctl *c, const char *url);
int vc_cmd_status(ctl *c, const char *url);

#endif
