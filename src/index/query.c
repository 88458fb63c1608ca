/*
 * query.c - reading an index: vd_index_search (greedy descent through the
 * upper levels, then a beam search of ef candidates on level 0, tombstones
 * routing but never returned) and vd_index_get. Both take the index's read
 * lock; the graph walks are hnsw.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"

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
    vd_scratch *s = vd_ix_scratch_get(ix, ef);
    if (!s) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "search: out of memory");
        goto out;
    }
    if ((rc = vd_ix_prepare_vector(ix, query, query_len, s->query, "vector", err))) goto put;
    if (ix->entry == VD_NONE || ix->live == 0) goto put;
    uint32_t ep = ix->entry;
    float ep_d = dist(ix, s->query, vd_vec(ix, ep));
    for (int l = ix->max_level; l > 0; l--) ep = vd_ix_greedy(ix, s->query, ep, &ep_d, l);
    vd_ix_search_level(ix, s, s->query, ep, ep_d, ef, 0);
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
    vd_ix_scratch_put(ix, s);
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
