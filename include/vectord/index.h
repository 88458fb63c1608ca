/*
 * index.h - the HNSW vector index.
 *
 * One vd_index holds the vectors of one named index: string ids mapped to
 * dense internal slots, opaque metadata per item, and a hierarchical
 * navigable small world graph over the vectors. See docs/index.md for the
 * algorithm, the delete/repair strategy and the locking.
 *
 * Threading: any number of threads may call vd_index_search(),
 * vd_index_get() and the read-only accessors concurrently with each other;
 * vd_index_add(), vd_index_delete() and vd_index_compact() are serialised
 * against everything else by the index's own writer-preferring rwlock. The
 * caller needs no locking of its own.
 *
 * Determinism: the same sequence of create/add/delete/compact calls gives
 * the same graph, and so byte-identical vd_lhv1 payloads, on any x86-64 or
 * other host (the distance kernels sum in one fixed order on every ISA).
 *
 * Atomicity: vd_index_add(), vd_index_delete() and vd_index_compact() are
 * all or nothing. Each takes every byte it may need before it changes the
 * index, so a call that fails, out of memory included, leaves the index
 * exactly as it was (the same vd_lhv1 bytes, the same future), and a failed
 * call may simply be retried.
 */
#ifndef VECTORD_INDEX_H
#define VECTORD_INDEX_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/api.h"
#include "vectord/error.h"

typedef enum vd_distance {
    VD_DIST_COSINE = 0, /* 1 - cos(a, b); vectors normalised at insert and query */
    VD_DIST_EUCLIDEAN,  /* true L2 distance, with the square root */
    VD_DIST_DOT,        /* 1 - a.b */
} vd_distance;

typedef struct vd_index_params {
    uint32_t dimension;       /* required, 1..limits.max_dimension */
    uint32_t m;               /* default 16, 2..100 */
    uint32_t ef_construction; /* default 200, 1..VD_MAX_EF */
    uint32_t ef_search;       /* default 64, 1..VD_MAX_EF */
    vd_distance distance;     /* default cosine */
    uint64_t seed;            /* level RNG seed; default derived from the name */
} vd_index_params;

typedef struct vd_limits {
    uint32_t max_dimension;  /* default 4096 */
    uint32_t max_batch;      /* items per add/delete call, default 10000 */
    uint32_t max_id_len;     /* bytes, default 512 */
    uint32_t max_metadata;   /* bytes per item, default 65536 */
    uint32_t max_name_len;   /* bytes, default 249 */
    double repair_threshold; /* deleted/(live+deleted) that triggers a repair, default 0.25 */
} vd_limits;

#define VD_MAX_EF    10000
#define VD_MAX_K     1000
#define VD_DEFAULT_K 10

/* Largest squared L2 norm of a vector under euclidean and dot distance
 * (a norm of about 6.52e18): any two such vectors have a finite distance
 * in float32. Cosine normalises vectors and has no limit. */
#define VD_MAX_NORM2 ((double)FLT_MAX / 8)

typedef struct vd_index vd_index;

/* One item of an add batch. Nothing is retained: the index copies it all. */
typedef struct vd_item {
    const char *id;
    size_t id_len;
    const float *vector;
    size_t vector_len;       /* must equal the index's dimension */
    const uint8_t *metadata; /* opaque bytes (a msgpack value); may be NULL */
    size_t metadata_len;
} vd_item;

/* One search hit. id and metadata point into the owning vd_results. */
typedef struct vd_hit {
    const char *id;
    uint32_t id_len;
    float distance;
    const uint8_t *metadata;
    uint32_t metadata_len;
} vd_hit;

/*
 * Search results, reusable across searches to avoid allocation. Initialise
 * with vd_results_init(), release with vd_results_free().
 */
typedef struct vd_results {
    vd_hit *hits;
    size_t n;
    size_t hits_cap;
    char *arena; /* the bytes hits point into */
    size_t arena_len, arena_cap;
} vd_results;

typedef struct vd_index_stats {
    size_t live;      /* searchable items */
    size_t deleted;   /* tombstones awaiting repair */
    size_t slots;     /* live + deleted + free slots */
    int max_level;    /* -1 when empty */
    size_t mem_bytes; /* bytes the index has allocated (approximate) */
    uint64_t repairs; /* repair passes run so far */
} vd_index_stats;

/* Fills p with the defaults (dimension 0: the caller must set it). */
VD_API void vd_index_params_init(vd_index_params *p);

/* Fills l with the default limits. */
VD_API void vd_limits_init(vd_limits *l);

/*
 * Parses "cosine" | "euclidean" | "dot" (also "l2", "ip"). Returns VD_OK, or
 * VD_ERR_UNKNOWN_DISTANCE with a message naming the value.
 */
VD_API vd_err vd_distance_parse(const char *s, size_t len, vd_distance *out, vd_error *err);

/* "cosine", "euclidean" or "dot". */
VD_API const char *vd_distance_name(vd_distance d);

/*
 * Validates params against limits (NULL: defaults). Returns VD_OK,
 * VD_ERR_INVALID_PARAMS or VD_ERR_UNKNOWN_DISTANCE naming the field.
 */
VD_API vd_err vd_index_params_check(const vd_index_params *p, const vd_limits *limits,
                                    vd_error *err);

/*
 * Creates an empty index. name is copied (UTF-8, 1..max_name_len bytes);
 * limits may be NULL for the defaults. On success *out owns the new index
 * (free it with vd_index_free); on failure *out is untouched.
 * Errors: VD_ERR_INVALID_PARAMS, VD_ERR_UNKNOWN_DISTANCE, VD_ERR_NOMEM.
 */
VD_API vd_err vd_index_new(vd_index **out, const char *name, size_t name_len,
                           const vd_index_params *p, const vd_limits *limits, vd_error *err);

/* Frees the index and everything it owns. NULL is accepted. */
VD_API void vd_index_free(vd_index *idx);

VD_API const char *vd_index_name(const vd_index *idx);
VD_API const vd_index_params *vd_index_params_get(const vd_index *idx);
VD_API const vd_limits *vd_index_limits(const vd_index *idx);

/*
 * Number of live (searchable) items, and the stats. Neither takes the
 * index's lock nor waits for a writer: they return what the last completed
 * add, delete or compact left (a batch in progress shows once it is done),
 * and the stats are one consistent set. Safe from any thread.
 */
VD_API size_t vd_index_len(vd_index *idx);

VD_API void vd_index_stats_get(vd_index *idx, vd_index_stats *out);

/*
 * Checks a whole batch without changing anything: ids non-empty, valid
 * UTF-8 and within max_id_len; vector_len == dimension; every component
 * finite; non-zero norm under cosine, norm^2 at most VD_MAX_NORM2 under
 * euclidean and dot; metadata within max_metadata; at most
 * max_batch items. Returns VD_OK or VD_ERR_INVALID_VECTOR / VD_ERR_LIMIT with
 * a message naming the item and field ("items[3].vector[17]: NaN").
 */
VD_API vd_err vd_index_check_items(const vd_index *idx, const vd_item *items, size_t n,
                                   vd_error *err);

/*
 * Adds or replaces (upsert) n items. The batch is validated whole first
 * (vd_index_check_items), then applied whole: on any error nothing is
 * applied. A later item with the same id as an earlier one in the batch
 * wins. A repair the batch brings runs inside the call, as part of it.
 * Errors: those of vd_index_check_items, VD_ERR_LIMIT (the index would
 * pass 2^32 - 1 slots), VD_ERR_NOMEM (nothing applied).
 */
VD_API vd_err vd_index_add(vd_index *idx, const vd_item *items, size_t n, vd_error *err);

/*
 * Deletes the listed ids. Unknown ids are counted in *unknown (may be NULL),
 * not errors; *deleted (may be NULL) counts the removed ones; a repair the
 * deletes bring runs inside the call. Errors: VD_ERR_LIMIT (more than
 * max_batch ids), VD_ERR_INVALID_VECTOR (empty id), VD_ERR_NOMEM; on any
 * error nothing is deleted (both counts 0).
 */
VD_API vd_err vd_index_delete(vd_index *idx, const char *const *ids, const size_t *id_lens,
                              size_t n, size_t *deleted, size_t *unknown, vd_error *err);

/*
 * Re-links the graph around every tombstone and frees their slots for reuse
 * (runs by itself when the deleted fraction passes limits.repair_threshold).
 * Errors: VD_ERR_NOMEM (nothing changed: the links and tombstones as they were).
 */
VD_API vd_err vd_index_compact(vd_index *idx, vd_error *err);

/*
 * Finds the k nearest live items to query (query_len must equal the
 * dimension). ef 0 means the index's ef_search; the effective ef is
 * max(ef, k). k 0 means VD_DEFAULT_K. Hits are sorted by distance, ties by
 * id (bytewise), and stored in *out (previous content replaced).
 * Errors: VD_ERR_INVALID_PARAMS (k > VD_MAX_K, ef > VD_MAX_EF),
 * VD_ERR_INVALID_VECTOR (length, non-finite, zero under cosine, norm^2
 * above VD_MAX_NORM2 under euclidean and dot), VD_ERR_NOMEM.
 */
VD_API vd_err vd_index_search(vd_index *idx, const float *query, size_t query_len, uint32_t k,
                              uint32_t ef, vd_results *out, vd_error *err);

/*
 * Copies the stored vector of id into vec (dimension floats; under cosine
 * the stored vector is the normalised one) and its metadata into *meta
 * (malloc'd, caller frees; NULL when the item has none). vec and meta may
 * be NULL. Errors: VD_ERR_NOT_FOUND.
 */
VD_API vd_err vd_index_get(vd_index *idx, const char *id, size_t id_len, float *vec, uint8_t **meta,
                           size_t *meta_len, vd_error *err);

VD_API void vd_results_init(vd_results *r);
VD_API void vd_results_free(vd_results *r);

#endif
