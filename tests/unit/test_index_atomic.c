/*
 * test_index_atomic.c - every index write is all or nothing under
 * allocation failure (issue 9 item 10).
 *
 * For each write (an add batch into an empty index, a growing add, an
 * upsert batch that brings a repair, deletes with and without a repair, a
 * compact) and for n = 1, 2, ... the test makes the nth allocation of the
 * call fail (vd_index_test_fail_alloc, src/index/index_internal.h) and
 * checks that the call returns VD_ERR_NOMEM and that the index serialises
 * to the same LHV1 bytes as before it; until n passes the call's last
 * allocation, when the call must succeed. Each attempt starts from a fresh
 * copy of the index (loaded from its LHV1 bytes), so every allocation point
 * is failed once, even those an earlier failed attempt would have left
 * reserved. A second pass repeats the failures on one index in place and
 * then checks that the successful call gives the bytes of a call that
 * never failed: a failure leaves no trace (level generator, free list,
 * slots) that a later command could see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index/index_internal.h"
#include "vectord/index.h"
#include "vectord/lhv1.h"

enum { DIM = 12 };

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unit(uint64_t *s)
{
    return (float)((double)(rng_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* A batch of items with ids "<prefix><i>", vectors from seed, metadata
 * "m<i>" on every other item. Owns its strings and floats. */
typedef struct items {
    vd_item *it;
    char (*ids)[24];
    char (*meta)[16];
    float *vecs;
    size_t n;
} items;

static void items_make(items *b, const char *prefix, size_t first, size_t n, uint64_t seed)
{
    b->n = n;
    b->it = calloc(n, sizeof *b->it);
    b->ids = calloc(n, sizeof *b->ids);
    b->meta = calloc(n, sizeof *b->meta);
    b->vecs = calloc(n * DIM, sizeof *b->vecs);
    assert_non_null(b->vecs);
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < DIM; d++) b->vecs[i * DIM + d] = rng_unit(&seed);
        snprintf(b->ids[i], sizeof b->ids[i], "%s%zu", prefix, first + i);
        snprintf(b->meta[i], sizeof b->meta[i], "m%zu", first + i);
        b->it[i] = (vd_item){b->ids[i],
                             strlen(b->ids[i]),
                             b->vecs + i * DIM,
                             DIM,
                             i % 2 ? (const uint8_t *)b->meta[i] : NULL,
                             i % 2 ? strlen(b->meta[i]) : 0};
    }
}

static void items_free(items *b)
{
    free(b->it);
    free(b->ids);
    free(b->meta);
    free(b->vecs);
}

static void limits(vd_limits *l, double threshold)
{
    vd_limits_init(l);
    l->repair_threshold = threshold;
}

static vd_index *make_index(vd_distance dist, const vd_limits *l)
{
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = DIM;
    p.m = 4;
    p.ef_construction = 24;
    p.distance = dist;
    vd_index *ix = NULL;
    assert_int_equal(vd_index_new(&ix, "atomic", 6, &p, l, NULL), VD_OK);
    return ix;
}

static uint8_t *snap(vd_index *ix, size_t *len)
{
    uint8_t *buf = NULL;
    vd_error err;
    if (vd_lhv1_write_buf(ix, &buf, len, &err)) fail_msg("lhv1 write: %s", err.msg);
    return buf;
}

static vd_index *load(const uint8_t *buf, size_t len, const vd_limits *l)
{
    vd_index *ix = NULL;
    vd_error err;
    if (vd_lhv1_read(buf, len, l, &ix, &err)) fail_msg("lhv1 read: %s", err.msg);
    return ix;
}

/* One write under test. */
typedef struct op {
    enum { OP_ADD, OP_DELETE, OP_COMPACT } kind;
    const items *add;
    const char *const *ids;
    const size_t *lens;
    size_t nids;
} op;

static vd_err run(vd_index *ix, const op *o, vd_error *err)
{
    if (o->kind == OP_ADD) return vd_index_add(ix, o->add->it, o->add->n, err);
    if (o->kind == OP_DELETE) return vd_index_delete(ix, o->ids, o->lens, o->nids, NULL, NULL, err);
    return vd_index_compact(ix, err);
}

static void expect_bytes(vd_index *ix, const uint8_t *want, size_t want_len, const char *what,
                         uint32_t nth)
{
    size_t len;
    uint8_t *got = snap(ix, &len);
    if (len != want_len || memcmp(got, want, len) != 0)
        fail_msg("%s: allocation %u failed and the index changed (%zu bytes, was %zu)", what, nth,
                 len, want_len);
    free(got);
}

/*
 * The check described at the top, on the index ix is now (it is left with
 * o applied). Returns how many allocation points were failed.
 */
static uint32_t all_or_nothing(vd_index **ixp, const vd_limits *l, const op *o, const char *what)
{
    size_t len0;
    uint8_t *b0 = snap(*ixp, &len0);
    vd_index_stats st0;
    vd_index_stats_get(*ixp, &st0);

    /* What the write gives when nothing fails. */
    vd_index *ref = load(b0, len0, l);
    vd_error err;
    if (run(ref, o, &err)) fail_msg("%s: fails without injected faults: %s", what, err.msg);
    size_t ref_len;
    uint8_t *ref_b = snap(ref, &ref_len);
    vd_index_free(ref);

    /* Pass 1: a fresh copy for each failing allocation. */
    uint32_t nth;
    for (nth = 1;; nth++) {
        vd_index *ix = load(b0, len0, l);
        vd_index_test_fail_alloc(ix, nth);
        memset(&err, 0, sizeof err);
        vd_err rc = run(ix, o, &err);
        int fired = vd_index_test_alloc_failed(ix);
        vd_index_test_fail_alloc(ix, 0);
        if (!fired) {
            if (rc) fail_msg("%s: failed with no fault injected: %s", what, err.msg);
            expect_bytes(ix, ref_b, ref_len, "fresh copy, no fault", 0);
            vd_index_free(ix);
            break;
        }
        if (rc != VD_ERR_NOMEM || err.code != VD_ERR_NOMEM)
            fail_msg("%s: allocation %u failed, the call returned %d (%s)", what, nth, (int)rc,
                     err.msg);
        expect_bytes(ix, b0, len0, what, nth);
        vd_index_stats st;
        vd_index_stats_get(ix, &st);
        assert_int_equal(st.live, st0.live);
        assert_int_equal(st.deleted, st0.deleted);
        /* The index still works: the same call now succeeds, and gives
         * what a call that never failed gives. */
        if (run(ix, o, &err)) fail_msg("%s: after allocation %u failed: %s", what, nth, err.msg);
        expect_bytes(ix, ref_b, ref_len, what, nth);
        vd_index_free(ix);
    }
    uint32_t points = nth - 1;
    print_message("%s: %u allocation points\n", what, points);

    /* Pass 2: every failure on the same index, then success. Earlier
     * failures may have left capacity reserved, so a later nth can pass
     * the call's last allocation: the call then succeeds. */
    int applied = 0;
    for (nth = 1; nth <= points && !applied; nth++) {
        vd_index_test_fail_alloc(*ixp, nth);
        vd_err rc = run(*ixp, o, &err);
        applied = !vd_index_test_alloc_failed(*ixp);
        vd_index_test_fail_alloc(*ixp, 0);
        if (applied) {
            if (rc) fail_msg("%s: in place, failed with no fault injected: %s", what, err.msg);
        } else {
            assert_int_equal(rc, VD_ERR_NOMEM);
            expect_bytes(*ixp, b0, len0, what, nth);
        }
    }
    if (!applied && run(*ixp, o, &err)) fail_msg("%s: in place: %s", what, err.msg);
    expect_bytes(*ixp, ref_b, ref_len, "in place, after the faults", 0);
    free(ref_b);
    free(b0);
    return points;
}

static void scenario(vd_distance dist)
{
    vd_limits l;
    limits(&l, 0.15);
    vd_index *ix = make_index(dist, &l);

    /* A first batch into the empty index: the slot arrays, the id table,
     * every blob and upper list are allocated. */
    items a;
    items_make(&a, "a", 0, 40, 1);
    op add_a = {.kind = OP_ADD, .add = &a};
    uint32_t pts = all_or_nothing(&ix, &l, &add_a, "add into empty");
    assert_true(pts > 40); /* one blob per item at least */

    /* A larger batch: the arrays and the table grow again. */
    items b;
    items_make(&b, "b", 0, 150, 2);
    op add_b = {.kind = OP_ADD, .add = &b};
    assert_true(all_or_nothing(&ix, &l, &add_b, "growing add") > 150);
    assert_int_equal(vd_index_len(ix), 190);

    /* Upserts: a changed vector (a tombstone each, enough for a repair at
     * 0.15), unchanged vectors with new metadata, new ids, and one id twice
     * in the batch (the later wins). */
    items u;
    items_make(&u, "b", 0, 60, 3);
    for (size_t i = 40; i < 50; i++) { /* unchanged vectors, metadata set */
        memcpy(u.vecs + i * DIM, b.vecs + i * DIM, DIM * sizeof(float));
        u.it[i].metadata = (const uint8_t *)"new";
        u.it[i].metadata_len = 3;
    }
    for (size_t i = 50; i < 60; i++) { /* new ids */
        snprintf(u.ids[i], sizeof u.ids[i], "u%zu", i);
        u.it[i].id = u.ids[i];
        u.it[i].id_len = strlen(u.ids[i]);
    }
    u.it[59].id = u.ids[0]; /* b0 again, with another vector */
    u.it[59].id_len = strlen(u.ids[0]);
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    uint64_t repairs = st.repairs;
    op upsert = {.kind = OP_ADD, .add = &u};
    assert_true(all_or_nothing(&ix, &l, &upsert, "upsert with repair") > 60);
    vd_index_stats_get(ix, &st);
    assert_true(st.repairs > repairs); /* the repair ran, inside the add */
    assert_int_equal(st.deleted, 0);

    /* Deletes below the threshold: tombstones only. */
    const char *ids[60];
    size_t lens[60];
    for (size_t i = 0; i < 20; i++) {
        ids[i] = a.ids[i];
        lens[i] = strlen(a.ids[i]);
    }
    ids[20] = "no-such-id";
    lens[20] = 10;
    op del_small = {.kind = OP_DELETE, .ids = ids, .lens = lens, .nids = 21};
    all_or_nothing(&ix, &l, &del_small, "delete, no repair");
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.deleted, 20);

    /* Deletes that pass it: the repair runs inside the delete. */
    for (size_t i = 0; i < 60; i++) {
        ids[i] = b.ids[60 + i];
        lens[i] = strlen(b.ids[60 + i]);
    }
    op del_repair = {.kind = OP_DELETE, .ids = ids, .lens = lens, .nids = 60};
    assert_true(all_or_nothing(&ix, &l, &del_repair, "delete with repair") > 0);
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.deleted, 0);

    /* Adds into freed slots. */
    items c;
    items_make(&c, "c", 0, 30, 4);
    op add_c = {.kind = OP_ADD, .add = &c};
    all_or_nothing(&ix, &l, &add_c, "add into free slots");

    vd_index_free(ix);
    items_free(&a);
    items_free(&b);
    items_free(&u);
    items_free(&c);
}

static void test_atomic_euclidean(void **state)
{
    (void)state;
    scenario(VD_DIST_EUCLIDEAN);
}

static void test_atomic_cosine(void **state)
{
    (void)state;
    scenario(VD_DIST_COSINE);
}

/* compact: with the automatic repair off, tombstones wait for it. */
static void test_atomic_compact(void **state)
{
    (void)state;
    vd_limits l;
    limits(&l, 2.0); /* never by itself */
    vd_index *ix = make_index(VD_DIST_EUCLIDEAN, &l);
    items a;
    items_make(&a, "a", 0, 120, 5);
    assert_int_equal(vd_index_add(ix, a.it, a.n, NULL), VD_OK);
    const char *ids[50];
    size_t lens[50];
    for (size_t i = 0; i < 50; i++) {
        ids[i] = a.ids[2 * i];
        lens[i] = strlen(ids[i]);
    }
    assert_int_equal(vd_index_delete(ix, ids, lens, 50, NULL, NULL, NULL), VD_OK);
    op compact = {.kind = OP_COMPACT};
    assert_true(all_or_nothing(&ix, &l, &compact, "compact") > 0);
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.deleted, 0);
    assert_int_equal(st.live, 70);
    vd_index_free(ix);
    items_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atomic_euclidean),
        cmocka_unit_test(test_atomic_cosine),
        cmocka_unit_test(test_atomic_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
