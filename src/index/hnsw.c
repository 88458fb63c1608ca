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
#include "graph.h"

/* ------------------------------------------------------------------ */
/* Scratch space for one search or insert: visited tags, heaps, buffers. */

/* Every allocation the index makes for itself or its scratch space goes
 * through these, so a test can make any one of them fail
 * (vd_index_test_fail_alloc). */
void *vd_ix_malloc(vd_index *ix, size_t n)
{
    return vd_index_alloc_fault(ix) ? NULL : malloc(n);
}

void *vd_ix_calloc(vd_index *ix, size_t n, size_t size)
{
    return vd_index_alloc_fault(ix) ? NULL : calloc(n, size);
}

void *vd_ix_realloc(vd_index *ix, void *p, size_t n)
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

int vd_ix_heap_reserve(vd_index *ix, heap *h, uint32_t n)
{
    if (n <= h->cap) return 0;
    uint32_t cap = h->cap ? h->cap : 64;
    while (cap < n) cap = cap > UINT32_MAX / 2 ? n : cap * 2;
    cand *a = vd_ix_realloc(ix, h->a, (size_t)cap * sizeof *a);
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
vd_scratch *vd_ix_scratch_get(vd_index *ix, uint32_t ef)
{
    vd_scratch *s = NULL;
    pthread_mutex_lock(&ix->pool_lock);
    if (ix->npool) s = ix->pool[--ix->npool];
    pthread_mutex_unlock(&ix->pool_lock);
    if (!s) {
        s = vd_ix_calloc(ix, 1, sizeof *s);
        if (!s) return NULL;
        s->query = vd_index_alloc_fault(ix)
                       ? NULL
                       : aligned_alloc(64, ((size_t)ix->stride * sizeof(float) + 63) / 64 * 64);
        s->buf_cap = ix->m0 + 1;
        s->buf = s->query ? vd_ix_malloc(ix, s->buf_cap * sizeof *s->buf) : NULL;
        if (!s->query || !s->buf) goto fail;
    }
    if (s->tags_cap < ix->cap) {
        free(s->tags);
        s->tags = vd_ix_calloc(ix, ix->cap, sizeof *s->tags);
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
    if (vd_ix_heap_reserve(ix, &s->res, ef + 2) ||
        vd_ix_heap_reserve(ix, &s->cands, ef + ix->m0 + 2))
        goto fail;
    s->cands.n = s->res.n = 0;
    return s;
fail:
    scratch_free(s);
    return NULL;
}

void vd_ix_scratch_put(vd_index *ix, vd_scratch *s)
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
int vd_ix_scratch_buf(vd_index *ix, vd_scratch *s, uint32_t n)
{
    if (n <= s->buf_cap) return 0;
    uint32_t *b = vd_ix_realloc(ix, s->buf, (size_t)n * sizeof *b);
    if (!b) return -1;
    s->buf = b;
    s->buf_cap = n;
    return 0;
}

int vd_ix_scratch_sel(vd_index *ix, vd_scratch *s, uint32_t n)
{
    if (n <= s->sel_cap) return 0;
    cand *b = vd_ix_realloc(ix, s->sel, (size_t)n * sizeof *b);
    if (!b) return -1;
    s->sel = b;
    s->sel_cap = n;
    return 0;
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

vd_err vd_ix_grow(vd_index *ix, uint32_t need)
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
    if (vd_ix_grow(ix, cap < 16 ? 16 : cap)) goto nomem;
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
    if (q.seed == 0) q.seed = vd_ix_hash_bytes(name, name_len) | 1;
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

/*
 * Validates v (len floats) as a vector for this index and writes the stored
 * form into dst (stride floats, required: normalised under cosine, zero
 * padded).
 * field names the vector in error messages ("items[3].vector").
 */
vd_err vd_ix_prepare_vector(const vd_index *ix, const float *v, size_t len, float *dst,
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
uint32_t vd_ix_greedy(const vd_index *ix, const float *q, uint32_t ep, float *ep_d, int level)
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
void vd_ix_search_level(vd_index *ix, vd_scratch *s, const float *q, uint32_t ep, float ep_d,
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
        if (cands->n + cnt > cands->cap && vd_ix_heap_reserve(ix, cands, cands->n + cnt)) break;
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
uint32_t vd_ix_select_neighbors(const vd_index *ix, cand *c, uint32_t n, uint32_t max)
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

void vd_ix_set_links(vd_index *ix, uint32_t slot, int level, const cand *c, uint32_t n)
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
    if (vd_ix_scratch_sel(ix, s, max + 1)) return VD_ERR_NOMEM;
    const float *v = vd_vec(ix, node);
    for (uint32_t j = 0; j < cnt; j++) {
        s->sel[j].id = l[1 + j];
        s->sel[j].d = dist(ix, v, vd_vec(ix, l[1 + j]));
    }
    s->sel[cnt].id = nb;
    s->sel[cnt].d = dist(ix, v, vd_vec(ix, nb));
    uint32_t kept = vd_ix_select_neighbors(ix, s->sel, cnt + 1, max);
    vd_ix_set_links(ix, node, level, s->sel, kept);
    return VD_OK;
}

/* Connects a freshly stored slot into the graph (algorithm 1). */
vd_err vd_ix_insert_slot(vd_index *ix, vd_scratch *s, uint32_t slot)
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
    for (int l = ix->max_level; l > level; l--) ep = vd_ix_greedy(ix, q, ep, &ep_d, l);
    uint32_t ef = ix->p.ef_construction > ix->m ? ix->p.ef_construction : ix->m;
    for (int l = level < ix->max_level ? level : ix->max_level; l >= 0; l--) {
        if (++s->cur == 0) {
            memset(s->tags, 0, (size_t)s->tags_cap * sizeof *s->tags);
            s->cur = 1;
        }
        vd_ix_search_level(ix, s, q, ep, ep_d, ef, l);
        uint32_t n = s->res.n;
        if (vd_ix_scratch_sel(ix, s, n + 1)) return VD_ERR_NOMEM;
        memcpy(s->sel, s->res.a, n * sizeof *s->sel);
        uint32_t kept = vd_ix_select_neighbors(ix, s->sel, n, ix->m);
        if (kept == 0) continue; /* only tombstones around: keep the entry */
        vd_ix_set_links(ix, slot, l, s->sel, kept);
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
int vd_ix_draw_level(const vd_index *ix, uint64_t *rng)
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
