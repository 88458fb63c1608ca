/*
 * hnsw.c - hierarchical navigable small world graph (Malkov & Yashunin,
 * 2016), the index behind every vectord search.
 *
 * Design notes (longer version in docs/index.md):
 * - Insertion follows the paper's algorithm 1 with the "heuristic"
 *   neighbour selection (algorithm 4, no extension, no pruned-connection
 *   keeping), the same choices hnswlib makes, so recall matches it.
 * - Search on layer 0 expands a candidate by first collecting all its
 *   unvisited neighbours, prefetching their vectors, then computing the
 *   distances: the memory loads overlap instead of arriving one by one.
 * - Deletes are tombstones: the node keeps routing searches but is never
 *   returned. When tombstones pass limits.repair_threshold of the slots, a
 *   repair pass re-links every list that points at a tombstone (candidates:
 *   its live neighbours plus the live nodes reachable through the
 *   tombstones, chosen by the same heuristic) and frees the slots for
 *   reuse. Tombstones first because a delete is then O(1) and recall right
 *   after deletes stays that of the original graph; repair in a batch
 *   because re-linking one node at a time needs reverse edges we do not
 *   keep, and a scan per delete would cost O(n) each.
 * - An upsert with a changed vector is a tombstone plus a fresh insert; an
 *   upsert with the same vector only replaces the metadata.
 * - Levels come from a splitmix64 generator seeded per index whose state is
 *   part of the checkpoint, so replays build identical graphs.
 */
#include "index_internal.h"

#include <math.h>
#include <sched.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"

/* ------------------------------------------------------------------ */
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

/* Every allocation the index makes for itself or its scratch space goes
 * through these, so a test can make any one of them fail
 * (vd_index_test_fail_alloc). */
static void *ix_malloc(vd_index *ix, size_t n)
{
    return vd_index_alloc_fault(ix) ? NULL : malloc(n);
}

static void *ix_calloc(vd_index *ix, size_t n, size_t size)
{
    return vd_index_alloc_fault(ix) ? NULL : calloc(n, size);
}

static void *ix_realloc(vd_index *ix, void *p, size_t n)
{
    return vd_index_alloc_fault(ix) ? NULL : realloc(p, n);
}

void vd_index_test_fail_alloc(vd_index *ix, uint32_t nth)
{
    ix->fail_alloc = nth;
    ix->fail_fired = 0;
}

int vd_index_test_alloc_failed(const vd_index *ix)
{
    return ix->fail_fired;
}

static int heap_reserve(vd_index *ix, heap *h, uint32_t n)
{
    if (n <= h->cap) return 0;
    uint32_t cap = h->cap ? h->cap : 64;
    while (cap < n) cap = cap > UINT32_MAX / 2 ? n : cap * 2;
    cand *a = ix_realloc(ix, h->a, (size_t)cap * sizeof *a);
    if (!a) return -1;
    h->a = a;
    h->cap = cap;
    return 0;
}

/* Pushes onto a heap that has room; sign 1 = min-heap, -1 = max-heap. */
static inline void heap_push_min(heap *h, float d, uint32_t id)
{
    uint32_t i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->a[p].d <= d) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i].d = d;
    h->a[i].id = id;
}

static inline void heap_pop_min(heap *h)
{
    cand last = h->a[--h->n];
    uint32_t i = 0, n = h->n;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->a[c + 1].d < h->a[c].d) c++;
        if (last.d <= h->a[c].d) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n) h->a[i] = last;
}

static inline void heap_push_max(heap *h, float d, uint32_t id)
{
    uint32_t i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->a[p].d >= d) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i].d = d;
    h->a[i].id = id;
}

static inline void heap_pop_max(heap *h)
{
    cand last = h->a[--h->n];
    uint32_t i = 0, n = h->n;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->a[c + 1].d > h->a[c].d) c++;
        if (last.d >= h->a[c].d) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n) h->a[i] = last;
}

static void scratch_free(vd_scratch *s)
{
    if (!s) return;
    free(s->tags);
    free(s->cands.a);
    free(s->res.a);
    free(s->sel);
    free(s->buf);
    free(s->query);
    free(s);
}

/*
 * Takes a scratch from the pool (or makes one) sized for the index's
 * current capacity, with a fresh visited generation. The caller holds the
 * index lock (read or write). Returns NULL on allocation failure.
 */
static vd_scratch *scratch_get(vd_index *ix, uint32_t ef)
{
    vd_scratch *s = NULL;
    pthread_mutex_lock(&ix->pool_lock);
    if (ix->npool) s = ix->pool[--ix->npool];
    pthread_mutex_unlock(&ix->pool_lock);
    if (!s) {
        s = ix_calloc(ix, 1, sizeof *s);
        if (!s) return NULL;
        s->query = vd_index_alloc_fault(ix)
                       ? NULL
                       : aligned_alloc(64, ((size_t)ix->stride * sizeof(float) + 63) / 64 * 64);
        s->buf_cap = ix->m0 + 1;
        s->buf = s->query ? ix_malloc(ix, s->buf_cap * sizeof *s->buf) : NULL;
        if (!s->query || !s->buf) goto fail;
    }
    if (s->tags_cap < ix->cap) {
        free(s->tags);
        s->tags = ix_calloc(ix, ix->cap, sizeof *s->tags);
        if (!s->tags) {
            s->tags_cap = 0;
            goto fail;
        }
        s->tags_cap = ix->cap;
        s->cur = 0;
    }
    if (++s->cur == 0) {
        memset(s->tags, 0, (size_t)s->tags_cap * sizeof *s->tags);
        s->cur = 1;
    }
    if (heap_reserve(ix, &s->res, ef + 2) || heap_reserve(ix, &s->cands, ef + ix->m0 + 2))
        goto fail;
    s->cands.n = s->res.n = 0;
    return s;
fail:
    scratch_free(s);
    return NULL;
}

static void scratch_put(vd_index *ix, vd_scratch *s)
{
    pthread_mutex_lock(&ix->pool_lock);
    if (ix->npool == ix->pool_cap) {
        size_t cap = ix->pool_cap ? ix->pool_cap * 2 : 4;
        vd_scratch **p = realloc(ix->pool, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&ix->pool_lock);
            scratch_free(s);
            return;
        }
        ix->pool = p;
        ix->pool_cap = cap;
    }
    ix->pool[ix->npool++] = s;
    pthread_mutex_unlock(&ix->pool_lock);
}

/* Grows a scratch's unvisited buffer to hold n entries. */
static int scratch_buf(vd_index *ix, vd_scratch *s, uint32_t n)
{
    if (n <= s->buf_cap) return 0;
    uint32_t *b = ix_realloc(ix, s->buf, (size_t)n * sizeof *b);
    if (!b) return -1;
    s->buf = b;
    s->buf_cap = n;
    return 0;
}

static int scratch_sel(vd_index *ix, vd_scratch *s, uint32_t n)
{
    if (n <= s->sel_cap) return 0;
    cand *b = ix_realloc(ix, s->sel, (size_t)n * sizeof *b);
    if (!b) return -1;
    s->sel = b;
    s->sel_cap = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Params, limits, names. */

void vd_index_params_init(vd_index_params *p)
{
    memset(p, 0, sizeof *p);
    p->m = 16;
    p->ef_construction = 200;
    p->ef_search = 64;
    p->distance = VD_DIST_COSINE;
}

void vd_limits_init(vd_limits *l)
{
    l->max_dimension = 4096;
    l->max_batch = 10000;
    l->max_id_len = 512;
    l->max_metadata = 65536;
    l->max_name_len = 249;
    l->repair_threshold = 0.25;
}

static const char *const dist_names[] = {"cosine", "euclidean", "dot"};

const char *vd_distance_name(vd_distance d)
{
    return (unsigned)d < 3 ? dist_names[d] : "unknown";
}

vd_err vd_distance_parse(const char *s, size_t len, vd_distance *out, vd_error *err)
{
    static const struct {
        const char *name;
        vd_distance d;
    } names[] = {{"cosine", VD_DIST_COSINE}, {"euclidean", VD_DIST_EUCLIDEAN},
                 {"l2", VD_DIST_EUCLIDEAN},  {"dot", VD_DIST_DOT},
                 {"ip", VD_DIST_DOT},        {"inner_product", VD_DIST_DOT}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
            *out = names[i].d;
            return VD_OK;
        }
    }
    return vd_error_set(err, VD_ERR_UNKNOWN_DISTANCE,
                        "distance: unknown value \"%.*s\" (expected cosine, euclidean or dot)",
                        (int)(len > 64 ? 64 : len), s);
}

vd_err vd_index_params_check(const vd_index_params *p, const vd_limits *limits, vd_error *err)
{
    vd_limits def;
    if (!limits) {
        vd_limits_init(&def);
        limits = &def;
    }
    if (p->dimension < 1 || p->dimension > limits->max_dimension)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "dimension: %u is outside 1..%u",
                            p->dimension, limits->max_dimension);
    if (p->m < 2 || p->m > 100)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "m: %u is outside 2..100", p->m);
    if (p->ef_construction < 1 || p->ef_construction > VD_MAX_EF)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "ef_construction: %u is outside 1..%u",
                            p->ef_construction, VD_MAX_EF);
    if (p->ef_search < 1 || p->ef_search > VD_MAX_EF)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "ef_search: %u is outside 1..%u",
                            p->ef_search, VD_MAX_EF);
    if ((unsigned)p->distance > VD_DIST_DOT)
        return vd_error_set(err, VD_ERR_UNKNOWN_DISTANCE, "distance: unknown value %d",
                            (int)p->distance);
    return VD_OK;
}

/* ------------------------------------------------------------------ */
/* Id hash table. */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int id_eq(const vd_node *n, const char *id, size_t len)
{
    return n->id_len == len && memcmp(n->blob, id, len) == 0;
}

uint32_t vd_index_table_get(const vd_index *ix, const char *id, size_t len)
{
    uint32_t i = (uint32_t)hash_bytes(id, len) & ix->table_mask;
    for (;;) {
        uint32_t s = ix->table[i];
        if (s == VD_NONE) return VD_NONE;
        if (id_eq(&ix->nodes[s], id, len)) return s;
        i = (i + 1) & ix->table_mask;
    }
}

static void table_insert_raw(uint32_t *table, uint32_t mask, const vd_node *nodes, uint32_t slot)
{
    uint32_t i = (uint32_t)hash_bytes((const char *)nodes[slot].blob, nodes[slot].id_len) & mask;
    while (table[i] != VD_NONE) i = (i + 1) & mask;
    table[i] = slot;
}

/*
 * Makes room for live ids at a load factor of at most one half, by
 * doubling and rehashing. On failure the table is as it was. (Which bucket
 * an id sits in is never serialised: growing early changes no payload.)
 */
static vd_err table_reserve(vd_index *ix, size_t live)
{
    size_t nb = (size_t)ix->table_mask + 1;
    if (live * 2 <= nb) return VD_OK;
    while (live * 2 > nb) nb *= 2;
    if (nb > (size_t)1 << 31) return VD_ERR_NOMEM;
    uint32_t *t = ix_malloc(ix, nb * sizeof *t);
    if (!t) return VD_ERR_NOMEM;
    memset(t, 0xFF, nb * sizeof *t);
    for (uint32_t i = 0; i <= ix->table_mask; i++)
        if (ix->table[i] != VD_NONE) table_insert_raw(t, (uint32_t)nb - 1, ix->nodes, ix->table[i]);
    free(ix->table);
    ix->table = t;
    ix->table_mask = (uint32_t)nb - 1;
    return VD_OK;
}

vd_err vd_index_table_put(vd_index *ix, uint32_t slot)
{
    /* Keep the load factor at or below one half. */
    if (table_reserve(ix, (size_t)ix->live + 1)) return VD_ERR_NOMEM;
    table_insert_raw(ix->table, ix->table_mask, ix->nodes, slot);
    return VD_OK;
}

/* Removes slot from the table (backward-shift deletion, no tombstones). */
static void table_del(vd_index *ix, uint32_t slot)
{
    uint32_t mask = ix->table_mask;
    const vd_node *n = &ix->nodes[slot];
    uint32_t i = (uint32_t)hash_bytes((const char *)n->blob, n->id_len) & mask;
    while (ix->table[i] != slot) i = (i + 1) & mask;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t s = ix->table[j];
        if (s == VD_NONE) break;
        const vd_node *o = &ix->nodes[s];
        uint32_t home = (uint32_t)hash_bytes((const char *)o->blob, o->id_len) & mask;
        /* Move s back into the hole at i unless its home lies in (i, j]. */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            ix->table[i] = s;
            i = j;
        }
    }
    ix->table[i] = VD_NONE;
}

/* ------------------------------------------------------------------ */
/* Construction and teardown. */

/*
 * The per-slot arrays live in their own mappings: growing one is an
 * mremap (no copy, no moment with two copies resident), new slots come
 * zero-filled from the kernel, and freed memory goes back at once instead
 * of lingering in the heap.
 */
static void *map_grow(vd_index *ix, void *old, size_t old_bytes, size_t new_bytes)
{
    if (vd_index_alloc_fault(ix)) return NULL;
    void *p =
        old ? mremap(old, old_bytes, new_bytes, MREMAP_MAYMOVE)
            : mmap(NULL, new_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void map_free(void *p, size_t bytes)
{
    if (p) munmap(p, bytes);
}

/* Shrinking in place cannot fail; to nothing, it unmaps. */
static void *map_shrink(void *p, size_t old_bytes, size_t new_bytes)
{
    if (new_bytes == 0) {
        map_free(p, old_bytes);
        return NULL;
    }
    return mremap(p, old_bytes, new_bytes, 0);
}

static size_t vecs_bytes(const vd_index *ix, uint32_t cap)
{
    return (size_t)cap * ix->stride * sizeof(float);
}

static size_t links0_bytes(const vd_index *ix, uint32_t cap)
{
    return (size_t)cap * (1 + ix->m0) * sizeof(uint32_t);
}

static vd_err grow(vd_index *ix, uint32_t need)
{
    if (need <= ix->cap) return VD_OK;
    uint32_t cap = ix->cap ? ix->cap : 16;
    while (cap < need) cap = cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : cap * 2;
    /* Each step either fully succeeds or leaves that array as it was. */
    float *v = map_grow(ix, ix->vecs, vecs_bytes(ix, ix->cap), vecs_bytes(ix, cap));
    if (v) ix->vecs = v;
    uint32_t *l =
        v ? map_grow(ix, ix->links0, links0_bytes(ix, ix->cap), links0_bytes(ix, cap)) : NULL;
    if (l) ix->links0 = l;
    vd_node *n =
        l ? map_grow(ix, ix->nodes, (size_t)ix->cap * sizeof *n, (size_t)cap * sizeof *n) : NULL;
    if (n) ix->nodes = n;
    uint8_t *dead = n ? map_grow(ix, ix->dead, ix->cap, cap) : NULL;
    if (!dead) {
        /* Undo whatever grew, so every array matches ix->cap again. */
        if (v) ix->vecs = map_shrink(ix->vecs, vecs_bytes(ix, cap), vecs_bytes(ix, ix->cap));
        if (l)
            ix->links0 = map_shrink(ix->links0, links0_bytes(ix, cap), links0_bytes(ix, ix->cap));
        if (n)
            ix->nodes = map_shrink(ix->nodes, (size_t)cap * sizeof *n, (size_t)ix->cap * sizeof *n);
        return VD_ERR_NOMEM;
    }
    ix->dead = dead;
    ix->cap = cap;
    return VD_OK;
}

vd_err vd_index_alloc(vd_index **out, const char *name, size_t name_len, const vd_index_params *p,
                      const vd_limits *lim, uint32_t cap, vd_error *err)
{
    vd_index *ix = calloc(1, sizeof *ix);
    if (!ix) return vd_error_set(err, VD_ERR_NOMEM, "index: out of memory");
    ix->name = malloc(name_len + 1);
    ix->k = vd_kernels_get(getenv("VECTORD_SIMD"));
    if (!ix->k) ix->k = vd_kernels_get(NULL);
    if (!ix->name) goto nomem;
    memcpy(ix->name, name, name_len);
    ix->name[name_len] = '\0';
    ix->p = *p;
    if (lim)
        ix->lim = *lim;
    else
        vd_limits_init(&ix->lim);
    ix->dim = p->dimension;
    ix->stride = (p->dimension + 15) / 16 * 16;
    ix->m = p->m;
    ix->m0 = 2 * p->m;
    ix->level_threshold = UINT64_MAX / p->m;
    ix->entry = VD_NONE;
    ix->max_level = -1;
    ix->table_mask = 15;
    ix->table = malloc(16 * sizeof *ix->table);
    if (!ix->table) goto nomem;
    memset(ix->table, 0xFF, 16 * sizeof *ix->table);
    if (grow(ix, cap < 16 ? 16 : cap)) goto nomem;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ix->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&ix->pool_lock, NULL);
    vd_index_stats_publish(ix);
    *out = ix;
    return VD_OK;
nomem:
    free(ix->table);
    free(ix->name);
    free(ix);
    return vd_error_set(err, VD_ERR_NOMEM, "index: out of memory");
}

vd_err vd_index_new(vd_index **out, const char *name, size_t name_len, const vd_index_params *p,
                    const vd_limits *limits, vd_error *err)
{
    vd_limits def;
    if (!limits) {
        vd_limits_init(&def);
        limits = &def;
    }
    if (name_len == 0 || name_len > limits->max_name_len)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "name: length %zu is outside 1..%u",
                            name_len, limits->max_name_len);
    if (!vd_utf8_valid(name, name_len) || memchr(name, '\0', name_len))
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "name: not valid UTF-8 text");
    vd_err rc = vd_index_params_check(p, limits, err);
    if (rc) return rc;
    vd_index_params q = *p;
    if (q.seed == 0) q.seed = hash_bytes(name, name_len) | 1;
    vd_index *ix;
    rc = vd_index_alloc(&ix, name, name_len, &q, limits, 16, err);
    if (rc) return rc;
    ix->rng = q.seed;
    *out = ix;
    return VD_OK;
}

void vd_index_free(vd_index *ix)
{
    if (!ix) return;
    for (uint32_t i = 0; i < ix->nslots; i++) {
        free(ix->nodes[i].blob);
        free(ix->nodes[i].upper);
    }
    for (size_t i = 0; i < ix->npool; i++) scratch_free(ix->pool[i]);
    free(ix->pool);
    map_free(ix->vecs, vecs_bytes(ix, ix->cap));
    map_free(ix->links0, links0_bytes(ix, ix->cap));
    map_free(ix->dead, ix->cap);
    map_free(ix->nodes, (size_t)ix->cap * sizeof(vd_node));
    free(ix->free_slots);
    free(ix->table);
    free(ix->name);
    pthread_rwlock_destroy(&ix->lock);
    pthread_mutex_destroy(&ix->pool_lock);
    free(ix);
}

const char *vd_index_name(const vd_index *ix)
{
    return ix->name;
}

const vd_index_params *vd_index_params_get(const vd_index *ix)
{
    return &ix->p;
}

const vd_limits *vd_index_limits(const vd_index *ix)
{
    return &ix->lim;
}

size_t vd_index_len(vd_index *ix)
{
    return atomic_load_explicit(&ix->pub.live, memory_order_acquire);
}

/* Stats are read without the lock, from what the last write published
 * (vd_index_pub): a reader never waits for a batch or a repair. */
void vd_index_stats_publish(vd_index *ix)
{
    vd_index_pub *p = &ix->pub;
    unsigned seq = atomic_load_explicit(&p->seq, memory_order_relaxed);
    atomic_store_explicit(&p->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&p->live, ix->live, memory_order_relaxed);
    atomic_store_explicit(&p->deleted, ix->deleted, memory_order_relaxed);
    atomic_store_explicit(&p->slots, ix->nslots, memory_order_relaxed);
    atomic_store_explicit(&p->max_level, ix->max_level, memory_order_relaxed);
    atomic_store_explicit(&p->repairs, ix->repairs, memory_order_relaxed);
    atomic_store_explicit(
        &p->mem_bytes,
        sizeof *ix + (size_t)ix->cap * ix->stride * sizeof(float) +
            (size_t)ix->cap * (1 + ix->m0) * sizeof(uint32_t) + ix->cap +
            (size_t)ix->cap * sizeof(vd_node) + ((size_t)ix->table_mask + 1) * sizeof(uint32_t) +
            (size_t)ix->free_cap * sizeof(uint32_t) + ix->blob_bytes + ix->upper_bytes,
        memory_order_relaxed);
    atomic_store_explicit(&p->seq, seq + 2, memory_order_release);
}

void vd_index_stats_get(vd_index *ix, vd_index_stats *st)
{
    vd_index_pub *p = &ix->pub;
    for (;;) {
        unsigned seq = atomic_load_explicit(&p->seq, memory_order_acquire);
        if (seq & 1) { /* a publish is a few stores: its end is near */
            sched_yield();
            continue;
        }
        st->live = atomic_load_explicit(&p->live, memory_order_relaxed);
        st->deleted = atomic_load_explicit(&p->deleted, memory_order_relaxed);
        st->slots = atomic_load_explicit(&p->slots, memory_order_relaxed);
        st->max_level = atomic_load_explicit(&p->max_level, memory_order_relaxed);
        st->repairs = atomic_load_explicit(&p->repairs, memory_order_relaxed);
        st->mem_bytes = atomic_load_explicit(&p->mem_bytes, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&p->seq, memory_order_relaxed) == seq) return;
    }
}

/* ------------------------------------------------------------------ */
/* Distances. */

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

/*
 * Validates v (len floats) as a vector for this index and writes the stored
 * form into dst (stride floats, required: normalised under cosine, zero
 * padded).
 * field names the vector in error messages ("items[3].vector").
 */
static vd_err prepare_vector(const vd_index *ix, const float *v, size_t len, float *dst,
                             const char *field, vd_error *err)
{
    if (len != ix->dim)
        return vd_error_set(err, VD_ERR_INVALID_VECTOR,
                            "%s: length %zu does not match the index dimension %u", field, len,
                            ix->dim);
    for (size_t i = 0; i < len; i++) {
        if (!isfinite(v[i]))
            return vd_error_set(err, VD_ERR_INVALID_VECTOR, "%s[%zu]: %s is not a finite number",
                                field, i, isnan(v[i]) ? "NaN" : "Inf");
    }
    if (ix->p.distance != VD_DIST_COSINE) {
        /* Stored as given: every distance must stay a finite float. With
         * |a|^2, |b|^2 <= VD_MAX_NORM2, |a-b|^2 <= 4 * VD_MAX_NORM2 and
         * |a.b| <= VD_MAX_NORM2 (Cauchy-Schwarz), so the kernels' sums -
         * and each of their partial sums - stay below FLT_MAX / 2. */
        double n2 = 0;
        for (size_t i = 0; i < len; i++) n2 += (double)v[i] * v[i];
        if (n2 > VD_MAX_NORM2)
            return vd_error_set(err, VD_ERR_INVALID_VECTOR,
                                "%s: norm %.4g exceeds %.4g: %s distances would overflow float32",
                                field, sqrt(n2), sqrt(VD_MAX_NORM2),
                                vd_distance_name(ix->p.distance));
    }
    memcpy(dst, v, len * sizeof(float));
    memset(dst + len, 0, (ix->stride - len) * sizeof(float));
    if (ix->p.distance == VD_DIST_COSINE) {
        /* In double, in one fixed order: no float underflow for tiny vectors
         * or overflow for huge ones, and validation and insert compute the
         * same value, so a vector that validates always inserts. */
        double n2 = 0;
        for (size_t i = 0; i < len; i++) n2 += (double)v[i] * v[i];
        if (!(n2 > 0))
            return vd_error_set(err, VD_ERR_INVALID_VECTOR,
                                "%s: zero vector has no direction under cosine distance", field);
        double inv = 1.0 / sqrt(n2);
        for (size_t i = 0; i < len; i++) dst[i] = (float)(v[i] * inv);
    }
    return VD_OK;
}

/* ------------------------------------------------------------------ */
/* Graph search. */

/* Greedy descent on one upper level: returns the nearest node found. */
static uint32_t greedy(const vd_index *ix, const float *q, uint32_t ep, float *ep_d, int level)
{
    float best = *ep_d;
    int changed = 1;
    while (changed) {
        changed = 0;
        const uint32_t *l = vd_links(ix, ep, level);
        uint32_t cnt = l[0];
        for (uint32_t j = 1; j <= cnt; j++) __builtin_prefetch(vd_vec(ix, l[j]));
        for (uint32_t j = 1; j <= cnt; j++) {
            float d = dist(ix, q, vd_vec(ix, l[j]));
            if (d < best) {
                best = d;
                ep = l[j];
                changed = 1;
            }
        }
    }
    *ep_d = best;
    return ep;
}

/*
 * Best-first search of one level from entry ep: leaves the ef nearest live
 * nodes in s->res (a max-heap). Tombstones are traversed, never returned.
 */
static void search_level(vd_index *ix, vd_scratch *s, const float *q, uint32_t ep, float ep_d,
                         uint32_t ef, int level)
{
    heap *cands = &s->cands, *res = &s->res;
    uint16_t *tags = s->tags, cur = s->cur;
    const size_t vbytes = (size_t)ix->stride * sizeof(float);
    const uint8_t *dead = ix->deleted ? ix->dead : NULL;
    cands->n = res->n = 0;
    tags[ep] = cur;
    heap_push_min(cands, ep_d, ep);
    float lower = INFINITY;
    if (!dead || !dead[ep]) {
        heap_push_max(res, ep_d, ep);
        lower = ep_d;
    }
    while (cands->n) {
        cand c = cands->a[0];
        if (c.d > lower && res->n >= ef) break;
        heap_pop_min(cands);
        const uint32_t *l = vd_links(ix, c.id, level);
        uint32_t cnt = l[0], nnew = 0;
        uint32_t *buf = s->buf;
        /* A write reserved room for every slot (reserve_scratch): this
         * never fails inside one. */
        if (cands->n + cnt > cands->cap && heap_reserve(ix, cands, cands->n + cnt)) break;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = l[j];
            if (tags[nb] != cur) {
                tags[nb] = cur;
                buf[nnew++] = nb;
            }
        }
        for (uint32_t j = 0; j < nnew; j++) {
            const char *p = (const char *)vd_vec(ix, buf[j]);
            __builtin_prefetch(p);
            if (vbytes > 64) __builtin_prefetch(p + 64);
        }
        for (uint32_t j = 0; j < nnew; j++) {
            uint32_t nb = buf[j];
            if (j + 1 < nnew && vbytes > 128) {
                const char *p = (const char *)vd_vec(ix, buf[j + 1]);
                for (size_t off = 128; off < vbytes; off += 64) __builtin_prefetch(p + off);
            }
            float d = dist(ix, q, vd_vec(ix, nb));
            if (res->n < ef || d < lower) {
                heap_push_min(cands, d, nb);
                /* Likely expanded soon: start loading its links now. */
                if (level == 0) __builtin_prefetch(ix->links0 + (size_t)nb * (1 + ix->m0));
                if (!dead || !dead[nb]) {
                    heap_push_max(res, d, nb);
                    if (res->n > ef) heap_pop_max(res);
                    lower = res->a[0].d;
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Neighbour selection and linking. */

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * The heuristic of the HNSW paper (algorithm 4): walks c[0..n) nearest
 * first and keeps a candidate only if it is closer to the base than to every
 * candidate already kept. Sorts c, moves the kept ones to its front and
 * returns how many (at most max).
 */
static uint32_t select_neighbors(const vd_index *ix, cand *c, uint32_t n, uint32_t max)
{
    qsort(c, n, sizeof *c, cand_cmp);
    if (n <= max) return n;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n && kept < max; i++) {
        const float *v = vd_vec(ix, c[i].id);
        int good = 1;
        for (uint32_t j = 0; j < kept; j++) {
            float dij = dist(ix, v, vd_vec(ix, c[j].id));
            /* The second clause settles exact ties: of several copies of one
             * vector only one is kept, or copies would fill each other's
             * lists and cut themselves off from the rest of the graph. */
            if (dij < c[i].d || (dij <= c[i].d && c[j].d == c[i].d)) {
                good = 0;
                break;
            }
        }
        if (good) c[kept++] = c[i];
    }
    return kept;
}

static inline uint32_t level_max(const vd_index *ix, int level)
{
    return level == 0 ? ix->m0 : ix->m;
}

static void set_links(vd_index *ix, uint32_t slot, int level, const cand *c, uint32_t n)
{
    uint32_t *l = vd_links(ix, slot, level);
    l[0] = n;
    for (uint32_t i = 0; i < n; i++) l[1 + i] = c[i].id;
}

/* Adds a link from node to nb on level, pruning node's list if full. */
static vd_err link_back(vd_index *ix, vd_scratch *s, uint32_t node, uint32_t nb, int level)
{
    uint32_t *l = vd_links(ix, node, level);
    uint32_t cnt = l[0], max = level_max(ix, level);
    if (cnt < max) {
        l[1 + cnt] = nb;
        l[0]++;
        return VD_OK;
    }
    if (scratch_sel(ix, s, max + 1)) return VD_ERR_NOMEM;
    const float *v = vd_vec(ix, node);
    for (uint32_t j = 0; j < cnt; j++) {
        s->sel[j].id = l[1 + j];
        s->sel[j].d = dist(ix, v, vd_vec(ix, l[1 + j]));
    }
    s->sel[cnt].id = nb;
    s->sel[cnt].d = dist(ix, v, vd_vec(ix, nb));
    uint32_t kept = select_neighbors(ix, s->sel, cnt + 1, max);
    set_links(ix, node, level, s->sel, kept);
    return VD_OK;
}

/* Connects a freshly stored slot into the graph (algorithm 1). */
static vd_err insert_slot(vd_index *ix, vd_scratch *s, uint32_t slot)
{
    int level = ix->nodes[slot].level;
    /* The first live node starts the graph afresh, even over tombstones:
     * nothing it could link to is searchable. */
    if (ix->entry == VD_NONE || ix->live == 1) {
        ix->entry = slot;
        ix->max_level = level;
        return VD_OK;
    }
    const float *q = vd_vec(ix, slot);
    uint32_t ep = ix->entry;
    float ep_d = dist(ix, q, vd_vec(ix, ep));
    for (int l = ix->max_level; l > level; l--) ep = greedy(ix, q, ep, &ep_d, l);
    uint32_t ef = ix->p.ef_construction > ix->m ? ix->p.ef_construction : ix->m;
    for (int l = level < ix->max_level ? level : ix->max_level; l >= 0; l--) {
        if (++s->cur == 0) {
            memset(s->tags, 0, (size_t)s->tags_cap * sizeof *s->tags);
            s->cur = 1;
        }
        search_level(ix, s, q, ep, ep_d, ef, l);
        uint32_t n = s->res.n;
        if (scratch_sel(ix, s, n + 1)) return VD_ERR_NOMEM;
        memcpy(s->sel, s->res.a, n * sizeof *s->sel);
        uint32_t kept = select_neighbors(ix, s->sel, n, ix->m);
        if (kept == 0) continue; /* only tombstones around: keep the entry */
        set_links(ix, slot, l, s->sel, kept);
        /* link_back reuses s->sel: keep our selection in s->res.a. */
        memcpy(s->res.a, s->sel, kept * sizeof *s->sel);
        ep = s->res.a[0].id;
        ep_d = s->res.a[0].d;
        for (uint32_t i = 0; i < kept; i++) {
            vd_err rc = link_back(ix, s, s->res.a[i].id, slot, l);
            if (rc) return rc;
        }
    }
    if (level > ix->max_level) {
        ix->entry = slot;
        ix->max_level = level;
    }
    return VD_OK;
}

/*
 * The level of a new node, drawn from the splitmix64 generator whose state
 * is *rng: the index's own, or a copy to look ahead with (reserve_batch).
 */
static int draw_level(const vd_index *ix, uint64_t *rng)
{
    int level = 0;
    for (;;) {
        /* splitmix64 */
        uint64_t z = (*rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        if (z >= ix->level_threshold || level == VD_MAX_LEVEL) return level;
        level++;
    }
}

/* ------------------------------------------------------------------ */
/* Add, delete, repair.
 *
 * Each write is all or nothing. Everything it may need is taken first,
 * while the index is unchanged: the slot arrays grown, the id table and the
 * free list sized, the scratch space sized for every slot, each item's
 * id/metadata copy and the upper link lists of the levels the generator
 * will draw (looked ahead on a copy of its state). A failure there returns
 * VD_ERR_NOMEM with the index as it was: what was grown is capacity only,
 * which no payload shows. Then the write runs without allocating. */

static vd_err check_id(const vd_index *ix, const char *id, size_t len, const char *field, size_t i,
                       vd_error *err)
{
    if (!id || len == 0)
        return vd_error_set(err, VD_ERR_INVALID_VECTOR, "%s[%zu].id: empty", field, i);
    if (len > ix->lim.max_id_len)
        return vd_error_set(err, VD_ERR_LIMIT, "%s[%zu].id: %zu bytes exceeds the limit of %u",
                            field, i, len, ix->lim.max_id_len);
    if (!vd_utf8_valid(id, len))
        return vd_error_set(err, VD_ERR_INVALID_VECTOR, "%s[%zu].id: not valid UTF-8", field, i);
    return VD_OK;
}

static vd_err check_batch_size(const vd_index *ix, size_t n, vd_error *err)
{
    if (n > ix->lim.max_batch)
        return vd_error_set(err, VD_ERR_LIMIT, "items: %zu items exceeds the limit of %u per batch",
                            n, ix->lim.max_batch);
    return VD_OK;
}

/* The checks of vd_index_check_items; tmp holds stride floats. */
static vd_err check_items(const vd_index *ix, const vd_item *items, size_t n, float *tmp,
                          vd_error *err)
{
    char field[48];
    vd_err rc = VD_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const vd_item *it = &items[i];
        if ((rc = check_id(ix, it->id, it->id_len, "items", i, err))) break;
        if (it->metadata_len > ix->lim.max_metadata) {
            rc = vd_error_set(err, VD_ERR_LIMIT,
                              "items[%zu].metadata: %zu bytes exceeds the limit of %u", i,
                              it->metadata_len, ix->lim.max_metadata);
        } else if (!it->vector && it->vector_len) {
            rc = vd_error_set(err, VD_ERR_INVALID_VECTOR, "items[%zu].vector: missing", i);
        } else {
            snprintf(field, sizeof field, "items[%zu].vector", i);
            rc = prepare_vector(ix, it->vector, it->vector_len, tmp, field, err);
        }
    }
    return rc;
}

vd_err vd_index_check_items(const vd_index *ix, const vd_item *items, size_t n, vd_error *err)
{
    vd_err rc = check_batch_size(ix, n, err);
    if (rc) return rc;
    float *tmp = malloc((size_t)ix->stride * sizeof *tmp);
    if (!tmp) return vd_error_set(err, VD_ERR_NOMEM, "items: out of memory");
    rc = check_items(ix, items, n, tmp, err);
    free(tmp);
    return rc;
}

static uint8_t *make_blob(vd_index *ix, const vd_item *it)
{
    size_t len = it->id_len + it->metadata_len;
    uint8_t *b = ix_malloc(ix, len ? len : 1);
    if (!b) return NULL;
    memcpy(b, it->id, it->id_len);
    if (it->metadata_len) memcpy(b + it->id_len, it->metadata, it->metadata_len);
    return b;
}

static size_t upper_bytes(const vd_index *ix, int level)
{
    return (size_t)level * (1 + ix->m) * sizeof(uint32_t);
}

/* Marks a live slot deleted: out of the id table, still routing searches. */
static void tombstone(vd_index *ix, uint32_t slot)
{
    vd_node *n = &ix->nodes[slot];
    table_del(ix, slot);
    ix->blob_bytes -= n->id_len + n->meta_len;
    free(n->blob);
    n->blob = NULL;
    n->id_len = n->meta_len = 0;
    n->state = SLOT_DELETED;
    ix->dead[slot] = 1;
    ix->live--;
    ix->deleted++;
}

/* Room in the free list for n slots, so that a repair never allocates. */
static vd_err free_reserve(vd_index *ix, size_t n)
{
    if (n <= ix->free_cap) return VD_OK;
    size_t cap = (size_t)ix->free_cap + ix->free_cap / 2;
    if (cap < n) cap = n;
    if (cap > UINT32_MAX) cap = UINT32_MAX;
    uint32_t *f = ix_realloc(ix, ix->free_slots, cap * sizeof *f);
    if (!f) return VD_ERR_NOMEM;
    ix->free_slots = f;
    ix->free_cap = (uint32_t)cap;
    return VD_OK;
}

/*
 * Sizes s so that a write never allocates: its candidate heap for every
 * one of slots slots (a search tags a slot once, so it never holds more;
 * 0: no search follows), its selection and breadth-first buffers for
 * neighbour selection at ef and for a repair. Its visited tags already
 * cover the capacity (scratch_get, after any growth).
 */
static int reserve_scratch(vd_index *ix, vd_scratch *s, uint32_t ef, uint32_t slots)
{
    uint32_t sel = ef + 1 > 8 * ix->m0 ? ef + 1 : 8 * ix->m0;
    if (slots && heap_reserve(ix, &s->cands, slots + ix->m0 + 2)) return -1;
    return scratch_sel(ix, s, sel) || scratch_buf(ix, s, 5 * ix->m0 + 1);
}

/* What an add batch takes before it changes anything (reserve_batch). */
typedef struct batch {
    uint8_t **blob;   /* per item, its id and metadata bytes; NULL once used */
    uint32_t **upper; /* per level drawn, its upper link lists (NULL: level 0) */
    uint8_t *level;   /* the levels the next n draws give */
    size_t drawn;     /* draws made so far */
} batch;

static void batch_free(batch *b, size_t n)
{
    if (!b->blob) return;
    for (size_t i = 0; i < n; i++) {
        free(b->blob[i]);
        free(b->upper[i]);
    }
    free(b->blob);
}

/*
 * Takes everything n items can need, as if none were an upsert of an
 * unchanged vector (that one needs only its blob): a slot each beyond the
 * free list, a table entry each, a free list entry each for a repair, a
 * draw each from the level generator. *sp gets the scratch (the caller
 * puts it back, also on failure). Returns VD_OK, VD_ERR_LIMIT (the index
 * would pass 2^32 - 1 slots) or VD_ERR_NOMEM, the index unchanged.
 */
static vd_err reserve_batch(vd_index *ix, const vd_item *items, size_t n, uint32_t ef, batch *b,
                            vd_scratch **sp, vd_error *err)
{
    size_t fresh = n > ix->nfree ? n - ix->nfree : 0;
    if (fresh > (size_t)(VD_NONE - 1) - ix->nslots)
        return vd_error_set(err, VD_ERR_LIMIT, "index %s: %zu more items would pass %u slots",
                            ix->name, n, VD_NONE - 1);
    uint32_t slots = ix->nslots + (uint32_t)fresh;
    if (grow(ix, slots) || table_reserve(ix, (size_t)ix->live + n) ||
        free_reserve(ix, (size_t)ix->nfree + ix->deleted + n))
        goto nomem;
    if (!(*sp = scratch_get(ix, ef)) || reserve_scratch(ix, *sp, ef, slots)) goto nomem;
    if (!(b->blob = ix_calloc(ix, n ? n : 1, 2 * sizeof(void *) + 1))) goto nomem;
    b->upper = (uint32_t **)(b->blob + n);
    b->level = (uint8_t *)(b->upper + n);
    uint64_t rng = ix->rng;
    for (size_t i = 0; i < n; i++) {
        if (!(b->blob[i] = make_blob(ix, &items[i]))) goto nomem;
        int level = draw_level(ix, &rng);
        b->level[i] = (uint8_t)level;
        if (level && !(b->upper[i] = ix_calloc(ix, 1, upper_bytes(ix, level)))) goto nomem;
    }
    return VD_OK;
nomem:
    return vd_error_set(err, VD_ERR_NOMEM,
                        "index %s: out of memory for a batch of %zu items (nothing applied)",
                        ix->name, n);
}

/* Applies item i of a batch from what b reserved: allocates nothing. */
static vd_err add_one(vd_index *ix, vd_scratch *s, const vd_item *it, batch *b, size_t i)
{
    float *v = s->query;
    vd_err rc = prepare_vector(ix, it->vector, it->vector_len, v, "vector", NULL);
    if (rc) return rc; /* cannot happen: the batch was checked */
    uint32_t old = vd_index_table_get(ix, it->id, it->id_len);
    size_t blen = it->id_len + it->metadata_len;
    uint8_t *blob = b->blob[i];
    b->blob[i] = NULL;
    if (old != VD_NONE && memcmp(vd_vec(ix, old), v, (size_t)ix->stride * sizeof(float)) == 0) {
        /* Same vector: only the metadata changes. */
        vd_node *n = &ix->nodes[old];
        ix->blob_bytes += blen - (n->id_len + n->meta_len);
        free(n->blob);
        n->blob = blob;
        n->meta_len = (uint32_t)it->metadata_len;
        return VD_OK;
    }
    /* Reserved: a slot (free or within the capacity), this draw's lists. */
    uint32_t slot = ix->nfree ? ix->free_slots[--ix->nfree] : ix->nslots++;
    int level = draw_level(ix, &ix->rng);
    uint32_t *upper = b->upper[b->drawn];
    b->upper[b->drawn++] = NULL;
    if (old != VD_NONE) tombstone(ix, old);
    vd_node *n = &ix->nodes[slot];
    n->blob = blob;
    n->id_len = (uint32_t)it->id_len;
    n->meta_len = (uint32_t)it->metadata_len;
    n->upper = upper;
    n->level = (uint8_t)level;
    n->state = SLOT_LIVE;
    ix->blob_bytes += blen;
    ix->upper_bytes += upper_bytes(ix, level);
    memcpy(vd_vec(ix, slot), v, (size_t)ix->stride * sizeof(float));
    ix->links0[(size_t)slot * (1 + ix->m0)] = 0;
    table_insert_raw(ix->table, ix->table_mask, ix->nodes, slot); /* sized for it */
    ix->live++;
    return insert_slot(ix, s, slot);
}

/* Whether the tombstones are due for a repair. */
static int repair_due(const vd_index *ix)
{
    if (ix->deleted == 0) return 0;
    double frac = (double)ix->deleted / (double)(ix->live + ix->deleted);
    return frac >= ix->lim.repair_threshold;
}

static vd_err repair_run(vd_index *ix, vd_scratch *s, vd_error *err);

vd_err vd_index_add(vd_index *ix, const vd_item *items, size_t n, vd_error *err)
{
    vd_err rc = check_batch_size(ix, n, err);
    if (rc) return rc;
    float *tmp = ix_malloc(ix, (size_t)ix->stride * sizeof *tmp);
    if (!tmp) return vd_error_set(err, VD_ERR_NOMEM, "items: out of memory");
    rc = check_items(ix, items, n, tmp, err);
    free(tmp);
    if (rc) return rc;
    pthread_rwlock_wrlock(&ix->lock);
    uint32_t ef = ix->p.ef_construction > ix->m ? ix->p.ef_construction : ix->m;
    batch b = {0};
    vd_scratch *s = NULL;
    if (!(rc = reserve_batch(ix, items, n, ef, &b, &s, err))) {
        for (size_t i = 0; i < n && !rc; i++) {
            if ((rc = add_one(ix, s, &items[i], &b, i)))
                vd_error_set(err, rc, "items[%zu]: %s while inserting (part of the batch applied)",
                             i, vd_strerror(rc));
        }
        /* The batch reserved what a repair needs too. */
        if (!rc && repair_due(ix)) rc = repair_run(ix, s, err);
    }
    if (s) scratch_put(ix, s);
    batch_free(&b, n);
    vd_index_stats_publish(ix);
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

/* What a repair of tombstones tombstones needs, taken first: room in the
 * free list for them and a scratch sized for it. */
static vd_err repair_reserve(vd_index *ix, size_t tombstones, vd_scratch **sp, vd_error *err)
{
    if (free_reserve(ix, (size_t)ix->nfree + tombstones) || !(*sp = scratch_get(ix, ix->m0)) ||
        reserve_scratch(ix, *sp, ix->m0, 0))
        return vd_error_set(err, VD_ERR_NOMEM, "index %s: out of memory (nothing changed)",
                            ix->name);
    return VD_OK;
}

vd_err vd_index_delete(vd_index *ix, const char *const *ids, const size_t *lens, size_t n,
                       size_t *deleted, size_t *unknown, vd_error *err)
{
    if (n > ix->lim.max_batch)
        return vd_error_set(err, VD_ERR_LIMIT, "ids: %zu ids exceeds the limit of %u per batch", n,
                            ix->lim.max_batch);
    for (size_t i = 0; i < n; i++) {
        if (!ids[i] || lens[i] == 0)
            return vd_error_set(err, VD_ERR_INVALID_VECTOR, "ids[%zu]: empty", i);
    }
    size_t del = 0, unk = 0;
    vd_err rc = VD_OK;
    vd_scratch *s = NULL;
    pthread_rwlock_wrlock(&ix->lock);
    /* If the deletes may bring a repair, what it needs first. */
    size_t most = ix->deleted + (n < ix->live ? n : ix->live);
    if (most && (double)most / (double)(ix->live + ix->deleted) >= ix->lim.repair_threshold)
        rc = repair_reserve(ix, most, &s, err);
    for (size_t i = 0; !rc && i < n; i++) {
        uint32_t slot = vd_index_table_get(ix, ids[i], lens[i]);
        if (slot == VD_NONE) {
            unk++;
        } else {
            tombstone(ix, slot);
            del++;
        }
    }
    if (!rc && repair_due(ix)) rc = repair_run(ix, s, err);
    if (s) scratch_put(ix, s);
    vd_index_stats_publish(ix);
    pthread_rwlock_unlock(&ix->lock);
    if (deleted) *deleted = del;
    if (unknown) *unknown = unk;
    return rc;
}

/*
 * Collects into s->sel the live nodes that replace the tombstones in
 * slot's list at level: its live neighbours, then live nodes reached by
 * walking through tombstones (breadth first, bounded). Returns the count,
 * or -1 when s was not sized for it (reserve_scratch).
 */
static long repair_candidates(vd_index *ix, vd_scratch *s, uint32_t slot, int level)
{
    const uint32_t max = level_max(ix, level);
    const uint32_t walk_limit = 4 * max; /* tombstones expanded at most */
    const float *v = vd_vec(ix, slot);
    uint32_t nsel = 0, nq = 0, head = 0;
    if (++s->cur == 0) {
        memset(s->tags, 0, (size_t)s->tags_cap * sizeof *s->tags);
        s->cur = 1;
    }
    s->tags[slot] = s->cur;
    const uint32_t *l = vd_links(ix, slot, level);
    uint32_t cnt = l[0];
    if (scratch_buf(ix, s, walk_limit + max + 1) || scratch_sel(ix, s, 8 * max)) return -1;
    for (uint32_t j = 1; j <= cnt; j++) {
        uint32_t nb = l[j];
        if (s->tags[nb] == s->cur) continue;
        s->tags[nb] = s->cur;
        if (ix->nodes[nb].state == SLOT_LIVE)
            s->sel[nsel++] = (cand){0, nb};
        else
            s->buf[nq++] = nb;
    }
    while (head < nq && head < walk_limit) {
        const uint32_t *dl = vd_links(ix, s->buf[head++], level);
        uint32_t dc = dl[0];
        for (uint32_t j = 1; j <= dc; j++) {
            uint32_t nb = dl[j];
            if (s->tags[nb] == s->cur) continue;
            s->tags[nb] = s->cur;
            if (ix->nodes[nb].state == SLOT_LIVE) {
                if (nsel < 8 * max) s->sel[nsel++] = (cand){0, nb};
            } else if (nq < walk_limit + max) {
                s->buf[nq++] = nb;
            }
        }
    }
    for (uint32_t i = 0; i < nsel; i++) s->sel[i].d = dist(ix, v, vd_vec(ix, s->sel[i].id));
    return nsel;
}

/*
 * Re-links every list that points at a tombstone and frees the
 * tombstones' slots. s and the free list were sized beforehand
 * (repair_reserve, or the batch's reservation), so nothing is allocated.
 */
static vd_err repair_run(vd_index *ix, vd_scratch *s, vd_error *err)
{
    if (ix->free_cap < ix->nfree + ix->deleted) /* cannot happen: reserved */
        return vd_error_set(err, VD_ERR_NOMEM, "index %s: free list not reserved", ix->name);
    for (uint32_t u = 0; u < ix->nslots; u++) {
        if (ix->nodes[u].state != SLOT_LIVE) continue;
        for (int level = 0; level <= ix->nodes[u].level; level++) {
            const uint32_t *l = vd_links(ix, u, level);
            uint32_t cnt = l[0], j;
            for (j = 1; j <= cnt; j++)
                if (ix->nodes[l[j]].state != SLOT_LIVE) break;
            if (j > cnt) continue;
            long n = repair_candidates(ix, s, u, level);
            if (n < 0) /* cannot happen: reserved */
                return vd_error_set(err, VD_ERR_NOMEM,
                                    "index %s: out of memory in repair (part of it applied)",
                                    ix->name);
            uint32_t kept = select_neighbors(ix, s->sel, (uint32_t)n, level_max(ix, level));
            set_links(ix, u, level, s->sel, kept);
        }
    }
    /* A new entry point when the old one is gone: highest level, lowest slot. */
    if (ix->entry != VD_NONE && ix->nodes[ix->entry].state != SLOT_LIVE) {
        ix->entry = VD_NONE;
        ix->max_level = -1;
        for (uint32_t u = 0; u < ix->nslots; u++) {
            if (ix->nodes[u].state == SLOT_LIVE && (int)ix->nodes[u].level > ix->max_level) {
                ix->entry = u;
                ix->max_level = ix->nodes[u].level;
            }
        }
    }
    /* Free the tombstones; push in descending order so the lowest is reused first. */
    for (uint32_t u = ix->nslots; u-- > 0;) {
        vd_node *n = &ix->nodes[u];
        if (n->state != SLOT_DELETED) continue;
        ix->upper_bytes -= upper_bytes(ix, n->level);
        free(n->upper);
        memset(n, 0, sizeof *n);
        ix->links0[(size_t)u * (1 + ix->m0)] = 0;
        ix->dead[u] = 0;
        memset(vd_vec(ix, u), 0, (size_t)ix->stride * sizeof(float));
        ix->free_slots[ix->nfree++] = u;
    }
    ix->deleted = 0;
    ix->repairs++;
    return VD_OK;
}

vd_err vd_index_compact(vd_index *ix, vd_error *err)
{
    pthread_rwlock_wrlock(&ix->lock);
    vd_err rc = VD_OK;
    vd_scratch *s = NULL;
    if (ix->deleted && !(rc = repair_reserve(ix, ix->deleted, &s, err)))
        rc = repair_run(ix, s, err);
    if (s) scratch_put(ix, s);
    vd_index_stats_publish(ix);
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Search and lookup. */

void vd_results_init(vd_results *r)
{
    memset(r, 0, sizeof *r);
}

void vd_results_free(vd_results *r)
{
    if (!r) return;
    free(r->hits);
    free(r->arena);
    memset(r, 0, sizeof *r);
}

static int results_reserve(vd_results *r, size_t hits, size_t bytes)
{
    if (hits > r->hits_cap) {
        vd_hit *h = realloc(r->hits, hits * sizeof *h);
        if (!h) return -1;
        r->hits = h;
        r->hits_cap = hits;
    }
    if (bytes > r->arena_cap) {
        size_t cap = r->arena_cap ? r->arena_cap : 256;
        while (cap < bytes) cap *= 2;
        char *a = realloc(r->arena, cap);
        if (!a) return -1;
        r->arena = a;
        r->arena_cap = cap;
    }
    return 0;
}

typedef struct hit_sort_ctx {
    const vd_index *ix;
} hit_sort_ctx;

static int hit_cmp(const void *a, const void *b, void *arg)
{
    const vd_index *ix = ((const hit_sort_ctx *)arg)->ix;
    const cand *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    const vd_node *p = &ix->nodes[x->id], *q = &ix->nodes[y->id];
    size_t n = p->id_len < q->id_len ? p->id_len : q->id_len;
    int c = memcmp(p->blob, q->blob, n);
    if (c) return c;
    return (p->id_len > q->id_len) - (p->id_len < q->id_len);
}

vd_err vd_index_search(vd_index *ix, const float *query, size_t query_len, uint32_t k, uint32_t ef,
                       vd_results *out, vd_error *err)
{
    if (k == 0) k = VD_DEFAULT_K;
    if (k > VD_MAX_K)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "k: %u exceeds the maximum %u", k,
                            VD_MAX_K);
    if (ef > VD_MAX_EF)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "ef: %u exceeds the maximum %u", ef,
                            VD_MAX_EF);
    if (!query && query_len) return vd_error_set(err, VD_ERR_INVALID_VECTOR, "vector: missing");
    if (ef == 0) ef = ix->p.ef_search;
    if (ef < k) ef = k;
    out->n = 0;
    out->arena_len = 0;
    pthread_rwlock_rdlock(&ix->lock);
    vd_err rc = VD_OK;
    vd_scratch *s = scratch_get(ix, ef);
    if (!s) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "search: out of memory");
        goto out;
    }
    if ((rc = prepare_vector(ix, query, query_len, s->query, "vector", err))) goto put;
    if (ix->entry == VD_NONE || ix->live == 0) goto put;
    uint32_t ep = ix->entry;
    float ep_d = dist(ix, s->query, vd_vec(ix, ep));
    for (int l = ix->max_level; l > 0; l--) ep = greedy(ix, s->query, ep, &ep_d, l);
    search_level(ix, s, s->query, ep, ep_d, ef, 0);
    /* Sort on the distance users see: two squared distances an ulp apart
     * can share one square root, and then the id must decide. */
    for (uint32_t i = 0; i < s->res.n; i++) s->res.a[i].d = user_dist(ix, s->res.a[i].d);
    hit_sort_ctx ctx = {ix};
    qsort_r(s->res.a, s->res.n, sizeof(cand), hit_cmp, &ctx);
    size_t n = s->res.n < k ? s->res.n : k, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const vd_node *nd = &ix->nodes[s->res.a[i].id];
        bytes += nd->id_len + nd->meta_len;
    }
    if (results_reserve(out, n, bytes)) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "search: out of memory");
        goto put;
    }
    for (size_t i = 0; i < n; i++) {
        const vd_node *nd = &ix->nodes[s->res.a[i].id];
        vd_hit *h = &out->hits[i];
        char *dst = out->arena + out->arena_len;
        memcpy(dst, nd->blob, nd->id_len + nd->meta_len);
        out->arena_len += nd->id_len + nd->meta_len;
        h->id_len = nd->id_len;
        h->metadata_len = nd->meta_len;
        h->distance = s->res.a[i].d;
    }
    /* Pointers last: the arena does not move any more. */
    for (size_t i = 0, off = 0; i < n; i++) {
        out->hits[i].id = out->arena + off;
        out->hits[i].metadata = out->hits[i].metadata_len
                                    ? (const uint8_t *)out->arena + off + out->hits[i].id_len
                                    : NULL;
        off += out->hits[i].id_len + out->hits[i].metadata_len;
    }
    out->n = n;
put:
    scratch_put(ix, s);
out:
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

vd_err vd_index_get(vd_index *ix, const char *id, size_t id_len, float *vec, uint8_t **meta,
                    size_t *meta_len, vd_error *err)
{
    vd_err rc = VD_OK;
    pthread_rwlock_rdlock(&ix->lock);
    uint32_t slot = id_len ? vd_index_table_get(ix, id, id_len) : VD_NONE;
    if (slot == VD_NONE) {
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "id \"%.*s\" not found in index %s",
                          (int)(id_len > 128 ? 128 : id_len), id ? id : "", ix->name);
        goto out;
    }
    const vd_node *n = &ix->nodes[slot];
    if (vec) memcpy(vec, vd_vec(ix, slot), (size_t)ix->dim * sizeof(float));
    if (meta) {
        *meta = NULL;
        if (n->meta_len) {
            if (!(*meta = malloc(n->meta_len))) {
                rc = vd_error_set(err, VD_ERR_NOMEM, "get: out of memory");
                goto out;
            }
            memcpy(*meta, n->blob + n->id_len, n->meta_len);
        }
    }
    if (meta_len) *meta_len = n->meta_len;
out:
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}
