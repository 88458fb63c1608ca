/*
 * index_internal.h - the layout of vd_index, shared by hnsw.c (the graph)
 * and payload.c (its binary serialization). Nothing outside src/index/
 * includes this.
 *
 * Memory layout, chosen for the search hot path:
 *   vecs    cap * stride floats, 64-byte aligned; stride = dimension rounded
 *           up to 16 floats, zero padded (the kernels run over stride).
 *   links0  cap * (1 + m0) uint32: per slot the neighbour count, then m0
 *           links.
 *   dead    cap bytes, 1 for a tombstone: a search checks every neighbour it
 *           scores, so the flag lives in its own small, cache-resident array.
 *   nodes   cap * node: id/metadata blob, level, state, upper-level links.
 *   table   open-addressing hash of id -> slot (linear probing).
 */
#ifndef VD_INDEX_INTERNAL_H
#define VD_INDEX_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "distance.h"
#include "vectord/index.h"

#define VD_NONE         UINT32_MAX
#define VD_MAX_LEVEL    31

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_DELETED = 2 };

typedef struct vd_node {
    uint8_t *blob;     /* id bytes then metadata bytes; NULL unless live */
    uint32_t id_len;
    uint32_t meta_len;
    uint32_t *upper;   /* levels 1..level, each (1 + m) words: count, links */
    uint8_t level;
    uint8_t state;     /* SLOT_FREE | SLOT_LIVE | SLOT_DELETED */
} vd_node;

typedef struct vd_scratch vd_scratch;

/* The stats as of the last completed write, for readers that must not wait
 * for a writer: /metrics would otherwise wait out a whole add batch or
 * repair. One writer at a time (the holder of the write lock, or the
 * constructor) publishes; seq is odd meanwhile, so a reader retries
 * instead of mixing two writes (a seqlock). */
typedef struct vd_index_pub {
    atomic_uint seq;
    atomic_size_t live, deleted, slots, mem_bytes;
    atomic_int max_level;
    atomic_uint_least64_t repairs;
} vd_index_pub;

struct vd_index {
    char *name;
    vd_index_params p;
    vd_limits lim;
    const vd_kernels *k;
    uint32_t dim, stride, m, m0;
    uint64_t level_threshold; /* P(level up) = 1/m as a uint64 fraction */

    float *vecs;
    uint32_t *links0;
    uint8_t *dead;
    vd_node *nodes;
    uint32_t nslots, cap;

    uint32_t *free_slots; /* stack; popped from the end */
    uint32_t nfree, free_cap;

    uint32_t *table; /* slot per bucket, VD_NONE empty */
    uint32_t table_mask;

    uint32_t entry;  /* VD_NONE when empty */
    int max_level;   /* -1 when empty */
    uint64_t rng;    /* splitmix64 state */
    uint32_t live, deleted;
    uint64_t repairs;
    size_t blob_bytes, upper_bytes;

    pthread_rwlock_t lock;
    vd_index_pub pub; /* read without the lock */
    pthread_mutex_t pool_lock;
    vd_scratch **pool;
    size_t npool, pool_cap;

    /* Test hook (vd_index_test_fail_alloc): the allocation, counted down
     * from here, that fails; 0 when off. */
    uint32_t fail_alloc;
    int fail_fired;
};

static inline float *vd_vec(const struct vd_index *ix, uint32_t slot)
{
    return ix->vecs + (size_t)slot * ix->stride;
}

static inline uint32_t *vd_links(const struct vd_index *ix, uint32_t slot, int level)
{
    if (level == 0) return ix->links0 + (size_t)slot * (1 + ix->m0);
    return ix->nodes[slot].upper + (size_t)(level - 1) * (1 + ix->m);
}

/* Allocates an index shell with the given params (already validated) and
 * room for cap slots. Used by vd_index_new and the payload reader. */
vd_err vd_index_alloc(struct vd_index **out, const char *name, size_t name_len,
                      const vd_index_params *p, const vd_limits *lim, uint32_t cap,
                      vd_error *err);

/* Publishes the current stats for vd_index_stats_get. The caller holds the
 * write lock, or is building an index no other thread can see yet. */
void vd_index_stats_publish(struct vd_index *ix);

/* Inserts slot's id into the hash table. The slot's blob must be set. */
vd_err vd_index_table_put(struct vd_index *ix, uint32_t slot);

/* Returns the slot holding id, or VD_NONE. */
uint32_t vd_index_table_get(const struct vd_index *ix, const char *id, size_t len);

/*
 * Allocation fault injection, for tests only (tests/unit/test_index_atomic.c),
 * not part of libvectord's API: every allocation the index makes for a
 * write (add, delete, compact, and the scratch space they share with
 * searches) goes through one counter; the nth from now fails as if out of
 * memory, the ones after it succeed. nth 0 turns it off. Not thread-safe:
 * set it while no other thread uses ix.
 */
void vd_index_test_fail_alloc(struct vd_index *ix, uint32_t nth);

/* 1 when the failure armed by vd_index_test_fail_alloc has happened (the
 * call reached its nth allocation), else 0. Re-armed by the setter. */
int vd_index_test_alloc_failed(const struct vd_index *ix);

/* The one place an allocation of the index can be made to fail. */
static inline int vd_index_alloc_fault(struct vd_index *ix)
{
    if (__builtin_expect(ix->fail_alloc == 0, 1)) return 0;
    if (--ix->fail_alloc) return 0;
    ix->fail_fired = 1;
    return 1;
}

#endif
