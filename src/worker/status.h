/*
 * status.h - what the worker tells the outside about itself: /metrics
 * (Prometheus text) and /readyz for the HTTP thread, and the snapshot of
 * partitions and indexes handed to the Redis directory (docs/worker.md,
 * docs/directory.md).
 */
#ifndef VD_WORKER_STATUS_H
#define VD_WORKER_STATUS_H

#include <stdio.h>

#include "worker/worker_internal.h"

/* HTTP threads (several at once): the Prometheus text of w's counters and
 * gauges to out. Never waits for an index's writer; waits for a partition's
 * registry only while an entry is added or removed (status.c). */
void vd_status_metrics(void *w, FILE *out);

/* HTTP threads (several at once): 1 when w has an assignment, is not
 * fenced and every owned partition is ready; else 0, with one line per
 * reason to out. Takes only the partitions' mutexes, held briefly by their
 * writers: no index or registry lock. */
int vd_status_ready(void *w, FILE *out);

/* Poll thread: hands the directory a snapshot of the partitions and
 * indexes, once per directory.heartbeat.interval.ms (or now, when now is
 * set). No Redis I/O here. No-op without a directory. */
void vd_status_directory_tick(vd_worker *w, int now);

#endif
