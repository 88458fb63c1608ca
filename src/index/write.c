/*
 * write.c - the writes of an HNSW index (hnsw.c has the graph): add
 * (insert or upsert), delete, and the batch repair that re-links around
 * tombstones and frees their slots, each all or nothing under allocation
 * failure (docs/index.md).
 */
#include "index_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "graph.h"

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
            rc = vd_ix_prepare_vector(ix, it->vector, it->vector_len, tmp, field, err);
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
    uint8_t *b = vd_ix_malloc(ix, len ? len : 1);
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
    vd_ix_table_del(ix, slot);
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
    uint32_t *f = vd_ix_realloc(ix, ix->free_slots, cap * sizeof *f);
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
    if (slots && vd_ix_heap_reserve(ix, &s->cands, slots + ix->m0 + 2)) return -1;
    return vd_ix_scratch_sel(ix, s, sel) || vd_ix_scratch_buf(ix, s, 5 * ix->m0 + 1);
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
    if (vd_ix_grow(ix, slots) || vd_ix_table_reserve(ix, (size_t)ix->live + n) ||
        free_reserve(ix, (size_t)ix->nfree + ix->deleted + n))
        goto nomem;
    if (!(*sp = vd_ix_scratch_get(ix, ef)) || reserve_scratch(ix, *sp, ef, slots)) goto nomem;
    if (!(b->blob = vd_ix_calloc(ix, n ? n : 1, 2 * sizeof(void *) + 1))) goto nomem;
    b->upper = (uint32_t **)(b->blob + n);
    b->level = (uint8_t *)(b->upper + n);
    uint64_t rng = ix->rng;
    for (size_t i = 0; i < n; i++) {
        if (!(b->blob[i] = make_blob(ix, &items[i]))) goto nomem;
        int level = vd_ix_draw_level(ix, &rng);
        b->level[i] = (uint8_t)level;
        if (level && !(b->upper[i] = vd_ix_calloc(ix, 1, upper_bytes(ix, level)))) goto nomem;
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
    vd_err rc = vd_ix_prepare_vector(ix, it->vector, it->vector_len, v, "vector", NULL);
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
    int level = vd_ix_draw_level(ix, &ix->rng);
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
    vd_ix_table_insert_raw(ix->table, ix->table_mask, ix->nodes, slot); /* sized for it */
    ix->live++;
    return vd_ix_insert_slot(ix, s, slot);
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
    float *tmp = vd_ix_malloc(ix, (size_t)ix->stride * sizeof *tmp);
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
    if (s) vd_ix_scratch_put(ix, s);
    batch_free(&b, n);
    vd_index_stats_publish(ix);
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

/* What a repair of tombstones tombstones needs, taken first: room in the
 * free list for them and a scratch sized for it. */
static vd_err repair_reserve(vd_index *ix, size_t tombstones, vd_scratch **sp, vd_error *err)
{
    if (free_reserve(ix, (size_t)ix->nfree + tombstones) ||
        !(*sp = vd_ix_scratch_get(ix, ix->m0)) || reserve_scratch(ix, *sp, ix->m0, 0))
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
    if (s) vd_ix_scratch_put(ix, s);
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
    if (vd_ix_scratch_buf(ix, s, walk_limit + max + 1) || vd_ix_scratch_sel(ix, s, 8 * max))
        return -1;
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
            uint32_t kept = vd_ix_select_neighbors(ix, s->sel, (uint32_t)n, level_max(ix, level));
            vd_ix_set_links(ix, u, level, s->sel, kept);
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
    if (s) vd_ix_scratch_put(ix, s);
    vd_index_stats_publish(ix);
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}
