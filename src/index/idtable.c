/*
 * idtable.c - an index's id -> slot hash table: open addressing with
 * linear probing at a load factor of at most one half, backward-shift
 * deletion (no tombstones). Which bucket an id sits in is never
 * serialised.
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"

uint64_t vd_ix_hash_bytes(const char *s, size_t len)
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
    uint32_t i = (uint32_t)vd_ix_hash_bytes(id, len) & ix->table_mask;
    for (;;) {
        uint32_t s = ix->table[i];
        if (s == VD_NONE) return VD_NONE;
        if (id_eq(&ix->nodes[s], id, len)) return s;
        i = (i + 1) & ix->table_mask;
    }
}

void vd_ix_table_insert_raw(uint32_t *table, uint32_t mask, const vd_node *nodes, uint32_t slot)
{
    uint32_t i =
        (uint32_t)vd_ix_hash_bytes((const char *)nodes[slot].blob, nodes[slot].id_len) & mask;
    while (table[i] != VD_NONE) i = (i + 1) & mask;
    table[i] = slot;
}

/*
 * Makes room for live ids at a load factor of at most one half, by
 * doubling and rehashing. On failure the table is as it was. (Which bucket
 * an id sits in is never serialised: growing early changes no payload.)
 */
vd_err vd_ix_table_reserve(vd_index *ix, size_t live)
{
    size_t nb = (size_t)ix->table_mask + 1;
    if (live * 2 <= nb) return VD_OK;
    while (live * 2 > nb) nb *= 2;
    if (nb > (size_t)1 << 31) return VD_ERR_NOMEM;
    uint32_t *t = vd_ix_malloc(ix, nb * sizeof *t);
    if (!t) return VD_ERR_NOMEM;
    memset(t, 0xFF, nb * sizeof *t);
    for (uint32_t i = 0; i <= ix->table_mask; i++)
        if (ix->table[i] != VD_NONE)
            vd_ix_table_insert_raw(t, (uint32_t)nb - 1, ix->nodes, ix->table[i]);
    free(ix->table);
    ix->table = t;
    ix->table_mask = (uint32_t)nb - 1;
    return VD_OK;
}

vd_err vd_index_table_put(vd_index *ix, uint32_t slot)
{
    /* Keep the load factor at or below one half. */
    if (vd_ix_table_reserve(ix, (size_t)ix->live + 1)) return VD_ERR_NOMEM;
    vd_ix_table_insert_raw(ix->table, ix->table_mask, ix->nodes, slot);
    return VD_OK;
}

/* Removes slot from the table (backward-shift deletion, no tombstones). */
void vd_ix_table_del(vd_index *ix, uint32_t slot)
{
    uint32_t mask = ix->table_mask;
    const vd_node *n = &ix->nodes[slot];
    uint32_t i = (uint32_t)vd_ix_hash_bytes((const char *)n->blob, n->id_len) & mask;
    while (ix->table[i] != slot) i = (i + 1) & mask;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t s = ix->table[j];
        if (s == VD_NONE) break;
        const vd_node *o = &ix->nodes[s];
        uint32_t home = (uint32_t)vd_ix_hash_bytes((const char *)o->blob, o->id_len) & mask;
        /* Move s back into the hole at i unless its home lies in (i, j]. */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            ix->table[i] = s;
            i = j;
        }
    }
    ix->table[i] = VD_NONE;
}
