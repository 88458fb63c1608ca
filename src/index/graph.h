/*
 * graph.h - what hnsw.c (the graph: scratch space, search, insertion)
 * shares with write.c (add, delete, repair). Internal to src/index/.
 */
#ifndef VD_INDEX_GRAPH_H
#define VD_INDEX_GRAPH_H

#include <math.h>

#include "index_internal.h"

/* Scratch space for one search or insert: visited tags, heaps, buffers. */
typedef struct cand {
    float d;
    uint32_t id;
} cand;

typedef struct heap {
    cand *a;
    uint32_t n, cap;
} heap;

struct vd_scratch {
    uint16_t *tags;
    uint32_t tags_cap;
    uint16_t cur;
    heap cands; /* min-heap: nearest first */
    heap res;   /* max-heap: farthest first */
    cand *sel;  /* neighbour selection workspace */
    uint32_t sel_cap;
    uint32_t *buf; /* unvisited neighbours of the node being expanded */
    uint32_t buf_cap;
    float *query; /* normalised / zero-padded query, stride floats */
};

/* Distance as the graph compares it: squared L2, or 1 - dot. */
static inline float dist(const vd_index *ix, const float *a, const float *b)
{
    if (ix->p.distance == VD_DIST_EUCLIDEAN) return ix->k->l2sq(a, b, ix->stride);
    return 1.0f - ix->k->dot(a, b, ix->stride);
}

/* Distance as users see it (true L2 with the square root). */
static inline float user_dist(const vd_index *ix, float d)
{
    if (ix->p.distance == VD_DIST_EUCLIDEAN) return sqrtf(d);
    return d;
}

/* The most links a node keeps on level (m0 on level 0, else m). */
static inline uint32_t level_max(const vd_index *ix, int level)
{
    return level == 0 ? ix->m0 : ix->m;
}

/*
 * The level of a new node, drawn from the splitmix64 generator whose state
 * is *rng: the index's own, or a copy to look ahead with (reserve_batch).
 */
int vd_ix_draw_level(const vd_index *ix, uint64_t *rng);

/* Grows the slot arrays to hold need slots (capacity only: no payload
 * changes). Errors: VD_ERR_NOMEM, the index as it was. */
vd_err vd_ix_grow(vd_index *ix, uint32_t need);

/* Room in h for n entries; 0, or -1 when out of memory. */
int vd_ix_heap_reserve(vd_index *ix, heap *h, uint32_t n);

/* Connects a freshly stored slot into the graph (algorithm 1). */
vd_err vd_ix_insert_slot(vd_index *ix, vd_scratch *s, uint32_t slot);

/* Every allocation the index makes for itself or its scratch space goes
 * through these, so a test can make any one of them fail
 * (vd_index_test_fail_alloc). */
void *vd_ix_malloc(vd_index *ix, size_t n);
void *vd_ix_calloc(vd_index *ix, size_t n, size_t size);
void *vd_ix_realloc(vd_index *ix, void *p, size_t n);

/*
 * Validates v (len floats) as a vector for this index and writes the stored
 * form into dst (stride floats, required: normalised under cosine, zero
 * padded).
 * field names the vector in error messages ("items[3].vector").
 */
vd_err vd_ix_prepare_vector(const vd_index *ix, const float *v, size_t len, float *dst,
                            const char *field, vd_error *err);

/* Grows a scratch's unvisited buffer to hold n entries. */
int vd_ix_scratch_buf(vd_index *ix, vd_scratch *s, uint32_t n);

/*
 * Takes a scratch from the pool (or makes one) sized for the index's
 * current capacity, with a fresh visited generation. The caller holds the
 * index lock (read or write). Returns NULL on allocation failure.
 */
vd_scratch *vd_ix_scratch_get(vd_index *ix, uint32_t ef);

/* Gives s back to the pool (frees it when the pool cannot grow). */
void vd_ix_scratch_put(vd_index *ix, vd_scratch *s);

/* Grows a scratch's selection workspace to n entries; 0, or -1. */
int vd_ix_scratch_sel(vd_index *ix, vd_scratch *s, uint32_t n);

/*
 * The heuristic of the HNSW paper (algorithm 4): walks c[0..n) nearest
 * first and keeps a candidate only if it is closer to the base than to every
 * candidate already kept. Sorts c, moves the kept ones to its front and
 * returns how many (at most max).
 */
uint32_t vd_ix_select_neighbors(const vd_index *ix, cand *c, uint32_t n, uint32_t max);

/* Sets slot's list on level to the ids of c[0..n). */
void vd_ix_set_links(vd_index *ix, uint32_t slot, int level, const cand *c, uint32_t n);

/* FNV-1a of s[0..len) with a final mix: the id table's hash, and the
 * default level seed of an index named s. */
uint64_t vd_ix_hash_bytes(const char *s, size_t len);

/* Removes slot from the table (backward-shift deletion, no tombstones). */
void vd_ix_table_del(vd_index *ix, uint32_t slot);

/* Puts slot's id into table (mask + 1 buckets, a free one exists). */
void vd_ix_table_insert_raw(uint32_t *table, uint32_t mask, const vd_node *nodes, uint32_t slot);

/*
 * Makes room for live ids at a load factor of at most one half, by
 * doubling and rehashing. On failure the table is as it was. (Which bucket
 * an id sits in is never serialised: growing early changes no payload.)
 */
vd_err vd_ix_table_reserve(vd_index *ix, size_t live);

/* Greedy descent on one upper level: returns the nearest node found. */
uint32_t vd_ix_greedy(const vd_index *ix, const float *q, uint32_t ep, float *ep_d, int level);

/*
 * Best-first search of one level from entry ep: leaves the ef nearest live
 * nodes in s->res (a max-heap). Tombstones are traversed, never returned.
 */
void vd_ix_search_level(vd_index *ix, vd_scratch *s, const float *q, uint32_t ep, float ep_d,
                        uint32_t ef, int level);

#endif
