/*
 * payload.c - serialization of a vd_index (see payload.h and
 * schemas/lhv1.md). All integers and floats are little-endian; this file
 * assumes a little-endian host, which CMakeLists.txt checks.
 */
#include "payload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "index_internal.h"

void vd_index_read_lock(vd_index *ix)
{
    pthread_rwlock_rdlock(&ix->lock);
}

void vd_index_read_unlock(vd_index *ix)
{
    pthread_rwlock_unlock(&ix->lock);
}

void vd_index_payload_summary(const vd_index *ix, vd_payload_summary *out)
{
    out->live = ix->live;
    out->deleted = ix->deleted;
    out->slots = ix->nslots;
    out->rng = ix->rng;
}

/* ---- writing: a small buffer in front of the sink ---- */

typedef struct wbuf {
    vd_sink_fn sink;
    void *ctx;
    uint8_t b[1 << 16];
    size_t n;
    int failed;
} wbuf;

static void w_flush(wbuf *w)
{
    if (w->n && !w->failed && w->sink(w->ctx, w->b, w->n)) w->failed = 1;
    w->n = 0;
}

static void w_bytes(wbuf *w, const void *p, size_t len)
{
    if (len == 0) return; /* p may be NULL (an empty free list) */
    if (len >= sizeof w->b) {
        w_flush(w);
        if (!w->failed && w->sink(w->ctx, p, len)) w->failed = 1;
        return;
    }
    if (w->n + len > sizeof w->b) w_flush(w);
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

static void w_u8(wbuf *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_u32(wbuf *w, uint32_t v)
{
    w_bytes(w, &v, 4);
}

static void w_u64(wbuf *w, uint64_t v)
{
    w_bytes(w, &v, 8);
}

static void w_links(wbuf *w, const uint32_t *l)
{
    uint32_t cnt = l[0];
    w_u32(w, cnt);
    w_bytes(w, l + 1, (size_t)cnt * 4);
}

vd_err vd_index_payload_write(const vd_index *ix, vd_sink_fn sink, void *ctx, vd_error *err)
{
    wbuf *w = malloc(sizeof *w);
    if (!w) return vd_error_set(err, VD_ERR_NOMEM, "payload: out of memory");
    w->sink = sink;
    w->ctx = ctx;
    w->n = 0;
    w->failed = 0;
    w_u32(w, VD_PAYLOAD_VERSION);
    w_u32(w, ix->p.dimension);
    w_u32(w, ix->p.m);
    w_u32(w, ix->p.ef_construction);
    w_u32(w, ix->p.ef_search);
    w_u32(w, (uint32_t)ix->p.distance);
    w_u64(w, ix->p.seed);
    w_u64(w, ix->rng);
    w_u32(w, ix->nslots);
    w_u32(w, ix->live);
    w_u32(w, ix->deleted);
    w_u32(w, ix->entry);
    w_u32(w, (uint32_t)ix->max_level);
    w_u64(w, ix->repairs);
    w_u32(w, ix->nfree);
    w_bytes(w, ix->free_slots, (size_t)ix->nfree * 4);
    for (uint32_t s = 0; s < ix->nslots && !w->failed; s++) {
        const vd_node *n = &ix->nodes[s];
        w_u8(w, n->state);
        w_u8(w, n->level);
        w_u8(w, 0);
        w_u8(w, 0);
        if (n->state == SLOT_FREE) continue;
        w_u32(w, n->id_len);
        w_u32(w, n->meta_len);
        w_bytes(w, n->blob, n->id_len + n->meta_len);
        w_bytes(w, vd_vec(ix, s), (size_t)ix->dim * sizeof(float));
        for (int l = 0; l <= n->level; l++) w_links(w, vd_links(ix, s, l));
    }
    w_flush(w);
    int failed = w->failed;
    free(w);
    if (failed) return vd_error_set(err, VD_ERR_IO, "payload: the output failed");
    return VD_OK;
}

/* ---- reading: a bounds-checked cursor ---- */

typedef struct rbuf {
    const uint8_t *p, *end;
} rbuf;

static int r_need(const rbuf *r, size_t n)
{
    return (size_t)(r->end - r->p) >= n;
}

static uint32_t r_u32(rbuf *r)
{
    uint32_t v;
    memcpy(&v, r->p, 4);
    r->p += 4;
    return v;
}

static uint64_t r_u64(rbuf *r)
{
    uint64_t v;
    memcpy(&v, r->p, 8);
    r->p += 8;
    return v;
}

#define CORRUPT(...) vd_error_set(err, VD_ERR_CORRUPT, "payload: " __VA_ARGS__)

static vd_err read_links(vd_index *ix, rbuf *r, uint32_t slot, int level, vd_error *err)
{
    uint32_t max = level == 0 ? ix->m0 : ix->m;
    if (!r_need(r, 4)) return CORRUPT("truncated in the links of slot %u", slot);
    uint32_t cnt = r_u32(r);
    if (cnt > max)
        return CORRUPT("slot %u level %d has %u links, more than the maximum %u", slot, level, cnt,
                       max);
    if (!r_need(r, (size_t)cnt * 4)) return CORRUPT("truncated in the links of slot %u", slot);
    uint32_t *l = vd_links(ix, slot, level);
    l[0] = cnt;
    memcpy(l + 1, r->p, (size_t)cnt * 4);
    r->p += (size_t)cnt * 4;
    return VD_OK;
}

static vd_err read_slot(vd_index *ix, rbuf *r, uint32_t s, vd_error *err)
{
    vd_node *n = &ix->nodes[s];
    if (!r_need(r, 4)) return CORRUPT("truncated at slot %u", s);
    uint8_t state = r->p[0], level = r->p[1];
    r->p += 4;
    if (state > SLOT_DELETED) return CORRUPT("slot %u has unknown state %u", s, state);
    if (level > VD_MAX_LEVEL) return CORRUPT("slot %u has level %u", s, level);
    if (state == SLOT_FREE) {
        if (level) return CORRUPT("free slot %u has level %u", s, level);
        return VD_OK;
    }
    if (!r_need(r, 8)) return CORRUPT("truncated at slot %u", s);
    uint32_t id_len = r_u32(r), meta_len = r_u32(r);
    if (!r_need(r, (size_t)id_len + meta_len))
        return CORRUPT("truncated in the id or metadata of slot %u", s);
    if (state == SLOT_LIVE) {
        if (id_len == 0 || !vd_utf8_valid((const char *)r->p, id_len))
            return CORRUPT("slot %u has an empty or non-UTF-8 id", s);
        if (vd_index_table_get(ix, (const char *)r->p, id_len) != VD_NONE)
            return CORRUPT("slot %u repeats the id of another slot", s);
    } else if (id_len || meta_len) {
        return CORRUPT("deleted slot %u carries an id", s);
    }
    n->state = state;
    n->level = level;
    if (state == SLOT_LIVE) {
        if (!(n->blob = malloc((size_t)id_len + meta_len)))
            return vd_error_set(err, VD_ERR_NOMEM, "payload: out of memory");
        memcpy(n->blob, r->p, (size_t)id_len + meta_len);
        n->id_len = id_len;
        n->meta_len = meta_len;
        ix->blob_bytes += (size_t)id_len + meta_len;
        if (vd_index_table_put(ix, s)) return vd_error_set(err, VD_ERR_NOMEM, "payload: oom");
        ix->live++; /* table_put sizes by live */
    } else {
        ix->deleted++;
    }
    r->p += (size_t)id_len + meta_len;
    size_t vbytes = (size_t)ix->dim * sizeof(float);
    if (!r_need(r, vbytes)) return CORRUPT("truncated in the vector of slot %u", s);
    float *v = vd_vec(ix, s);
    memcpy(v, r->p, vbytes);
    memset(v + ix->dim, 0, (size_t)(ix->stride - ix->dim) * sizeof(float));
    r->p += vbytes;
    for (uint32_t i = 0; i < ix->dim; i++)
        if (!isfinite(v[i])) return CORRUPT("slot %u vector[%u] is not finite", s, i);
    ix->links0[(size_t)s * (1 + ix->m0)] = 0;
    ix->dead[s] = state == SLOT_DELETED;
    if (level) {
        size_t ubytes = (size_t)level * (1 + ix->m) * sizeof(uint32_t);
        if (!(n->upper = calloc(1, ubytes)))
            return vd_error_set(err, VD_ERR_NOMEM, "payload: out of memory");
        ix->upper_bytes += ubytes;
    }
    for (int l = 0; l <= level; l++) {
        vd_err rc = read_links(ix, r, s, l, err);
        if (rc) return rc;
    }
    return VD_OK;
}

/* Every link must name a used slot that reaches that level. */
static vd_err check_links(const vd_index *ix, vd_error *err)
{
    for (uint32_t s = 0; s < ix->nslots; s++) {
        const vd_node *n = &ix->nodes[s];
        if (n->state == SLOT_FREE) continue;
        for (int l = 0; l <= n->level; l++) {
            const uint32_t *lk = vd_links(ix, s, l);
            uint32_t cnt = lk[0];
            for (uint32_t j = 1; j <= cnt; j++) {
                uint32_t t = lk[j];
                if (t >= ix->nslots || t == s || ix->nodes[t].state == SLOT_FREE ||
                    ix->nodes[t].level < l)
                    return CORRUPT("slot %u level %d links to invalid slot %u", s, l, t);
            }
        }
    }
    return VD_OK;
}

vd_err vd_index_payload_read(vd_index **out, const char *name, size_t name_len, const uint8_t *buf,
                             size_t len, const vd_limits *limits, vd_error *err)
{
    rbuf r = {buf, buf + len};
    if (!r_need(&r, 4)) return CORRUPT("truncated header");
    uint32_t version = r_u32(&r);
    if (version != VD_PAYLOAD_VERSION)
        return vd_error_set(err, VD_ERR_VERSION,
                            "payload: version %u is not supported (this build reads %u)", version,
                            VD_PAYLOAD_VERSION);
    /* 5 params, seed, rng, 5 counts, repairs, nfree */
    if (!r_need(&r, 5 * 4 + 2 * 8 + 5 * 4 + 8 + 4)) return CORRUPT("truncated header");
    vd_index_params p;
    p.dimension = r_u32(&r);
    p.m = r_u32(&r);
    p.ef_construction = r_u32(&r);
    p.ef_search = r_u32(&r);
    p.distance = (vd_distance)r_u32(&r);
    p.seed = r_u64(&r);
    uint64_t rng = r_u64(&r);
    uint32_t nslots = r_u32(&r), live = r_u32(&r), deleted = r_u32(&r), entry = r_u32(&r);
    int32_t max_level = (int32_t)r_u32(&r);
    uint64_t repairs = r_u64(&r);
    uint32_t nfree = r_u32(&r);
    if ((unsigned)p.distance > VD_DIST_DOT)
        return CORRUPT("unknown distance code %u", (unsigned)p.distance);
    vd_err rc = vd_index_params_check(&p, limits, err);
    if (rc) return rc;
    /* Each slot takes at least 4 bytes: bound the allocation by the input. */
    if (nslots > (size_t)(r.end - r.p) / 4 || nslots >= VD_NONE)
        return CORRUPT("%u slots cannot fit in %zu bytes", nslots, (size_t)(r.end - r.p));
    if (nfree > nslots || (uint64_t)live + deleted + nfree != nslots)
        return CORRUPT("slot counts disagree (%u live + %u deleted + %u free != %u)", live, deleted,
                       nfree, nslots);
    if (max_level < -1 || max_level > VD_MAX_LEVEL) return CORRUPT("max level %d", max_level);
    if ((entry == VD_NONE) != (max_level == -1) || (entry != VD_NONE && entry >= nslots) ||
        (entry == VD_NONE) != (live + (uint64_t)deleted == 0))
        return CORRUPT("entry point %u does not fit %u slots", entry, nslots);
    if (!r_need(&r, (size_t)nfree * 4)) return CORRUPT("truncated free list");

    vd_index *ix;
    if ((rc = vd_index_alloc(&ix, name, name_len, &p, limits, nslots, err))) return rc;
    ix->rng = rng;
    ix->repairs = repairs;
    ix->nslots = nslots;
    ix->entry = entry;
    ix->max_level = max_level;
    if (nfree && !(ix->free_slots = malloc((size_t)nfree * 4))) {
        rc = vd_error_set(err, VD_ERR_NOMEM, "payload: out of memory");
        goto fail;
    }
    if (nfree) memcpy(ix->free_slots, r.p, (size_t)nfree * 4);
    ix->nfree = ix->free_cap = nfree;
    r.p += (size_t)nfree * 4;
    for (uint32_t s = 0; s < nslots; s++)
        if ((rc = read_slot(ix, &r, s, err))) goto fail;
    if (r.p != r.end) {
        rc = CORRUPT("%zu bytes after the last slot", (size_t)(r.end - r.p));
        goto fail;
    }
    if (ix->live != live || ix->deleted != deleted) {
        rc = CORRUPT("header says %u live and %u deleted, slots say %u and %u", live, deleted,
                     ix->live, ix->deleted);
        goto fail;
    }
    for (uint32_t i = 0; i < nfree; i++) {
        uint32_t f = ix->free_slots[i];
        /* A free slot listed twice would leave another one unlisted. */
        if (f >= nslots || ix->nodes[f].state != SLOT_FREE || ix->nodes[f].level) {
            rc = CORRUPT("free list entry %u names slot %u, which is not free", i, f);
            goto fail;
        }
        ix->nodes[f].level = 1; /* seen; free slots have level 0, reset below */
    }
    for (uint32_t i = 0; i < nfree; i++) ix->nodes[ix->free_slots[i]].level = 0;
    if (entry != VD_NONE &&
        (ix->nodes[entry].state == SLOT_FREE || ix->nodes[entry].level != max_level)) {
        rc = CORRUPT("entry point %u is not a node of level %d", entry, max_level);
        goto fail;
    }
    if ((rc = check_links(ix, err))) goto fail;
    vd_index_stats_publish(ix);
    *out = ix;
    return VD_OK;
fail:
    vd_index_free(ix);
    return rc;
}
