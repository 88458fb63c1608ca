/*
 * manifest.h - the per-partition checkpoint manifest and the replay rules
 * of docs/checkpoints.md: which indexes live in a commands partition,
 * through which offset each is complete, and where replay must start.
 * Pure logic and JSON, no I/O: the worker reads and writes the bytes.
 */
#ifndef VD_WORKER_MANIFEST_H
#define VD_WORKER_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/service_error.h"

typedef struct vd_manifest_entry {
    char *name;          /* index name (UTF-8, not escaped) */
    int64_t file_offset; /* envelope offset of its LHV1 file (-1: none in this log) */
    int64_t complete;    /* the index is complete through this offset */
} vd_manifest_entry;

typedef struct vd_manifest {
    char topic[256];
    int32_t partition;
    int64_t offset; /* the partition is complete through this offset (-1: nothing yet) */
    char worker[128];
    char cluster_id[128];       /* Kafka cluster the offsets refer to ("" unknown) */
    int32_t generation;         /* written -1: librdkafka 2.0.2 has no getter for it */
    vd_manifest_entry *entries; /* sorted by name */
    size_t n, cap;
} vd_manifest;

/* Initialises an empty manifest for topic/partition (offset -1). */
void vd_manifest_init(vd_manifest *m, const char *topic, int32_t partition);

/* Frees the entries; m can be re-initialised. */
void vd_manifest_clear(vd_manifest *m);

/* Adds or updates the entry for name. Errors: VD_ERR_NOMEM. */
vd_err vd_manifest_set(vd_manifest *m, const char *name, int64_t file_offset, int64_t complete,
                       vd_error *err);

/* Removes the entry for name (no-op when absent). */
void vd_manifest_remove(vd_manifest *m, const char *name);

/* The entry for name, or NULL. */
vd_manifest_entry *vd_manifest_find(const vd_manifest *m, const char *name);

/* JSON text of m in *out (malloc'd, caller frees). Errors: VD_ERR_NOMEM. */
vd_err vd_manifest_encode(const vd_manifest *m, char **out, size_t *len, vd_error *err);

/*
 * Parses a manifest into m (which must be initialised; previous entries are
 * dropped). Errors: VD_ERR_CORRUPT naming what is wrong, VD_ERR_VERSION.
 */
vd_err vd_manifest_decode(const void *buf, size_t len, vd_manifest *m, vd_error *err);

/* "_manifests/<escaped topic>/<partition>/": where the partition's
 * manifests live (malloc'd; NULL when out of memory). */
char *vd_manifest_prefix(const char *topic, int32_t partition);

/* The key of the manifest through `offset` (>= 0): the prefix, then the
 * offset in 20 digits, ".json" (malloc'd; NULL when out of memory or
 * offset < 0). A manifest is never overwritten by an older one: a load
 * reads the one with the highest offset (docs/checkpoints.md). */
char *vd_manifest_key(const char *topic, int32_t partition, int64_t offset);

/* Whether key is a manifest key under prefix; then *offset is its offset. */
int vd_manifest_key_parse(const char *prefix, const char *key, int64_t *offset);

/* The one manifest key of the release before manifests were named by
 * offset: "_manifests/<escaped topic>/<partition>.json". Read when the
 * prefix holds none, to migrate. */
char *vd_manifest_legacy_key(const char *topic, int32_t partition);

/*
 * The garbage rules, applied after a manifest through manifest_offset is
 * written (docs/checkpoints.md, "Zombies"). A checkpoint file of an index
 * at file_offset is garbage when no manifest that may still be read, this
 * one or a newer one from any writer, can name it:
 * - ref is the offset of the file this manifest names for the index, or
 *   < -1 when the index is not in it (dropped, or never created): then
 *   every file at or below manifest_offset is garbage (a newer manifest
 *   names only files of a later incarnation);
 * - else files older than ref, when ref <= manifest_offset (a newer
 *   manifest names ref or a later one). When ref is above manifest_offset
 *   (the file was written after commands the manifest does not cover), a
 *   newer manifest may still name an older file: they wait.
 * rebased (the embedded mode's first manifest after loading another
 * cluster's offsets): every file but ref is garbage. Returns 1 or 0.
 */
int vd_manifest_file_garbage(int64_t manifest_offset, int64_t ref, int64_t file_offset,
                             int rebased);

/* Whether the manifest through `other` is garbage once the one through
 * manifest_offset is written: an older one, or any other when rebased. */
int vd_manifest_garbage(int64_t manifest_offset, int64_t other, int rebased);

/*
 * How far an index is complete given its manifest entry and the offset in
 * the envelope of the file actually found: e->complete when the file is the
 * expected one or newer, the file's own offset when it is older (stale,
 * e.g. rewritten by a zombie). Never more than max(e->complete, file).
 */
int64_t vd_manifest_complete(const vd_manifest_entry *e, int64_t file_offset);

/*
 * The first offset to consume: min(m->offset, every complete[i]) + 1, where
 * complete[i] is the value vd_manifest_complete gave entry i.
 */
int64_t vd_manifest_start(const vd_manifest *m, const int64_t *complete);

#endif
