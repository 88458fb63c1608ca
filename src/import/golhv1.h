/*
 * golhv1.h - reading the index files of the Go vectord service that vectord
 * replaces (schemas/go-lhv1.md): "LHV1", a big-endian envelope length, a
 * JSON envelope (params, per-id metadata), then the raw bytes of
 * github.com/coder/hnsw v0.6.1 Graph.Export.
 *
 * Pure: the reader works on a caller's buffer and does no I/O. It keeps
 * nothing of Go's graph but layer 0's ids and vectors (the graph is
 * directed and searches badly); vd_golhv1_build() re-links them with
 * vectord's own HNSW, and vd_golhv1_next() hands them out one by one so
 * that a tool (vectorctl import) can batch them into `add` commands
 * without building an index.
 *
 * vd_golhv1_open() reads the whole file once before anything is handed
 * out: every length is checked against the bytes left, and a bad file is
 * refused with VD_ERR_CORRUPT and a message that names the field and its
 * byte offset, so nothing of a bad file is ever imported. What real files
 * contain is tolerated and counted (vd_golhv1_info): neighbour keys that
 * are not in their layer (left by deletes), self-loops, empty layers,
 * upper-layer nodes missing from layer 0, metadata for ids that are gone.
 */
#ifndef VD_IMPORT_GOLHV1_H
#define VD_IMPORT_GOLHV1_H

#include <stddef.h>
#include <stdint.h>

#include "common/service_error.h"
#include "vectord/index.h"

typedef struct vd_golhv1 vd_golhv1;

/* What a file holds, and what was tolerated. Filled by vd_golhv1_open(). */
typedef struct vd_golhv1_info {
    /* Envelope (-1 / "" where the envelope lacks the field). */
    int64_t version; /* envelope "version" */
    char name[256];  /* params.name (truncated if longer; name_len is the real length) */
    size_t name_len; /* 0: absent */
    int64_t env_dimension;
    int64_t env_m;
    int64_t env_ef_search;
    char env_distance[32]; /* params.distance as written ("" absent) */
    /* Graph header. */
    int64_t m, ef_search;
    double ml;
    char distance_name[32]; /* as the graph names it ("cosine", "euclidean") */
    vd_distance distance;   /* mapped */
    uint32_t dimension;     /* of every layer-0 vector; 0 when layer 0 is empty or absent */
    /* Counts. */
    size_t layers;         /* nLayers, empty ones included */
    size_t items;          /* layer-0 nodes (what vd_golhv1_next() hands out) */
    size_t duplicates;     /* layer-0 keys seen before in layer 0 (the later one wins) */
    size_t with_metadata;  /* layer-0 items with non-null metadata */
    size_t empty_layers;   /* layers with no node */
    size_t self_loops;     /* neighbour lists naming their own node */
    size_t dangling;       /* neighbour keys absent from their layer */
    size_t upper_only;     /* upper-layer nodes whose key is not in layer 0 (ignored) */
    size_t meta_orphans;   /* metadata entries for ids not in layer 0 (ignored) */
    size_t unknown_fields; /* envelope fields not mapped (listed by vd_golhv1_notes) */
} vd_golhv1_info;

/* One item. Valid until the next vd_golhv1_next()/rewind/close. */
typedef struct vd_golhv1_item {
    const char *id; /* points into the caller's buffer; not NUL-terminated */
    size_t id_len;
    const float *vector; /* the reader's aligned copy, `dimension` floats, as stored */
    size_t dimension;
    const char *meta_json; /* the metadata as compact JSON text (NUL-terminated); NULL: none */
    size_t meta_json_len;
    const uint8_t *metadata; /* the same as msgpack (what vd_item.metadata takes); NULL: none */
    size_t metadata_len;
} vd_golhv1_item;

/*
 * Reads and checks the whole file buf[0..len). buf is borrowed: it must
 * stay unchanged until vd_golhv1_close(). On success *out owns a reader
 * positioned at the first item; on failure *out is untouched. Errors:
 *   VD_ERR_CORRUPT           magic, a length beyond the bytes left, a
 *                            negative or overlong varint, bad envelope JSON,
 *                            a dimension that differs from layer 0's, an
 *                            empty or non-UTF-8 id, bytes after the last
 *                            layer, our own LHV1 file (not a Go one)
 *   VD_ERR_VERSION           graph version != 1, envelope version != 1
 *   VD_ERR_UNKNOWN_DISTANCE  a distance vectord does not have
 *   VD_ERR_INVALID_VECTOR    a NaN/Inf component, a zero vector under cosine
 *   VD_ERR_NOMEM
 */
vd_err vd_golhv1_open(vd_golhv1 **out, const void *buf, size_t len, vd_error *err);

/* Frees the reader (not the buffer). NULL is accepted. */
void vd_golhv1_close(vd_golhv1 *r);

/* What the file holds; owned by the reader. */
const vd_golhv1_info *vd_golhv1_info_get(const vd_golhv1 *r);

/*
 * What was tolerated or could not be mapped, one line per kind ("3 dangling
 * neighbour keys", "envelope field \"owner\" not mapped"); "" when nothing.
 * Owned by the reader.
 */
const char *vd_golhv1_notes(const vd_golhv1 *r);

/*
 * The next layer-0 item in file order into *item. Returns 1 (an item), 0
 * (no more), or -1 with err set: VD_ERR_NOMEM, or VD_ERR_CORRUPT/VD_ERR_LIMIT
 * when the item's metadata cannot be converted to msgpack (deeper than the
 * codec allows).
 */
int vd_golhv1_next(vd_golhv1 *r, vd_golhv1_item *item, vd_error *err);

/* Back to the first item. */
void vd_golhv1_rewind(vd_golhv1 *r);

/*
 * vectord index params for the file: dimension and distance from the
 * graph; m from the envelope (else the graph) clamped to 2..100;
 * ef_search the file's, raised to vectord's default (64) when lower, as
 * Go's EfSearch also served as its ef_construction; ef_construction
 * vectord's default; seed derived from the name (0).
 */
void vd_golhv1_params(const vd_golhv1 *r, vd_index_params *p);

/*
 * Convenience: opens buf, creates an index named name (NULL: the
 * envelope's params.name) with vd_golhv1_params(), and adds every item in
 * batches of `batch` (0: limits->max_batch). limits may be NULL. On
 * success *out owns the index and *info (may be NULL) tells what the file
 * held; on failure *out is untouched. Errors: those of vd_golhv1_open(),
 * of vd_index_new() and vd_index_add() (the message then names the id),
 * VD_ERR_INVALID_PARAMS when no name is given or found.
 */
vd_err vd_golhv1_build(vd_index **out, const void *buf, size_t len, const char *name,
                       size_t name_len, const vd_limits *limits, size_t batch, vd_golhv1_info *info,
                       vd_error *err);

#endif
