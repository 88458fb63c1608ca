/*
 * test_index.c - unit tests for the HNSW index (include/vectord/index.h)
 * against DESIGN.md section 2: params and limits, whole-batch validation
 * with nothing applied on error, upsert, search semantics (distances as
 * defined, ordering, ties by id, k/ef bounds), deletes and repair with slot
 * reuse, recall against brute force (also around exact duplicates), get,
 * determinism (also across SIMD ISAs) and concurrent readers with one
 * writer. Run one test with e.g. `test_index 'test_search*'`.
 *
 * Every search result is compared with a brute-force model kept by the test
 * (ids, current vectors, live flags), computed in double precision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vectord/index.h"

/* ------------------------------------------------------------------ */
/* Random numbers (deterministic). */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_unit(uint64_t *s)
{
    return (float)((double)(rng_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static void rand_vec(uint64_t *s, float *v, size_t dim)
{
    for (size_t i = 0; i < dim; i++) v[i] = rng_unit(s);
}

static void normalize(float *v, size_t dim)
{
    double n = 0;
    for (size_t i = 0; i < dim; i++) n += (double)v[i] * v[i];
    n = sqrt(n);
    for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] / n);
}

/* ------------------------------------------------------------------ */
/* Index helpers. */

static vd_index *make_index(const char *name, uint32_t dim, vd_distance d, const vd_limits *lim)
{
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = dim;
    p.distance = d;
    vd_index *ix = NULL;
    vd_error err = {0};
    vd_err rc = vd_index_new(&ix, name, strlen(name), &p, lim, &err);
    if (rc) fail_msg("vd_index_new: %s: %s", vd_err_code(rc), err.msg);
    assert_non_null(ix);
    return ix;
}

static vd_item item(const char *id, const float *v, size_t dim, const char *meta)
{
    vd_item it = {id, id ? strlen(id) : 0, v, dim, (const uint8_t *)meta, meta ? strlen(meta) : 0};
    return it;
}

static void add_ok(vd_index *ix, const vd_item *items, size_t n)
{
    vd_error err = {0};
    vd_err rc = vd_index_add(ix, items, n, &err);
    if (rc) fail_msg("vd_index_add: %s: %s", vd_err_code(rc), err.msg);
}

static void add_one(vd_index *ix, const char *id, const float *v, size_t dim, const char *meta)
{
    vd_item it = item(id, v, dim, meta);
    add_ok(ix, &it, 1);
}

static void search_ok(vd_index *ix, const float *q, size_t dim, uint32_t k, uint32_t ef,
                      vd_results *r)
{
    vd_error err = {0};
    vd_err rc = vd_index_search(ix, q, dim, k, ef, r, &err);
    if (rc) fail_msg("vd_index_search: %s: %s", vd_err_code(rc), err.msg);
}

static void delete_ok(vd_index *ix, const char *const *ids, size_t n, size_t *deleted,
                      size_t *unknown)
{
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    assert_non_null(lens);
    for (size_t i = 0; i < n; i++) lens[i] = strlen(ids[i]);
    vd_error err = {0};
    vd_err rc = vd_index_delete(ix, ids, lens, n, deleted, unknown, &err);
    free(lens);
    if (rc) fail_msg("vd_index_delete: %s: %s", vd_err_code(rc), err.msg);
}

static int hit_is(const vd_hit *h, const char *id)
{
    return h->id_len == strlen(id) && memcmp(h->id, id, h->id_len) == 0;
}

static int id_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

/* Hits sorted by distance, ties by id bytewise, no id twice. */
static int results_sorted(const vd_results *r)
{
    for (size_t i = 1; i < r->n; i++) {
        const vd_hit *a = &r->hits[i - 1], *b = &r->hits[i];
        if (a->distance > b->distance) return 0;
        if (a->distance == b->distance && id_cmp(a->id, a->id_len, b->id, b->id_len) >= 0) return 0;
    }
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < i; j++)
            if (!id_cmp(r->hits[i].id, r->hits[i].id_len, r->hits[j].id, r->hits[j].id_len))
                return 0;
    return 1;
}

static int contains(const char *s, const char *sub)
{
    return strstr(s, sub) != NULL;
}

/* Distance as DESIGN.md defines it, in double precision. */
static double ref_dist(vd_distance d, const float *a, const float *b, size_t dim)
{
    double dot = 0, na = 0, nb = 0, l2 = 0;
    for (size_t i = 0; i < dim; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
        l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    switch (d) {
    case VD_DIST_COSINE:
        return 1.0 - dot / (sqrt(na) * sqrt(nb));
    case VD_DIST_EUCLIDEAN:
        return sqrt(l2);
    default:
        return 1.0 - dot;
    }
}

/* ------------------------------------------------------------------ */
/* A brute-force model: ids "<prefix><n>", their current vectors, live flags. */

typedef struct model {
    size_t dim, n, cap;
    char (*ids)[24];
    float *vecs;
    unsigned char *live;
} model;

static void model_init(model *m, size_t dim, size_t cap)
{
    m->dim = dim;
    m->n = 0;
    m->cap = cap;
    m->ids = calloc(cap, sizeof *m->ids);
    m->vecs = calloc(cap * dim, sizeof *m->vecs);
    m->live = calloc(cap, 1);
    assert_true(m->ids && m->vecs && m->live);
}

static void model_free(model *m)
{
    free(m->ids);
    free(m->vecs);
    free(m->live);
}

static float *model_vec(const model *m, size_t i)
{
    return m->vecs + i * m->dim;
}

/* Index in the model of the hit's id, or -1. */
static long model_find(const model *m, const char *id, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->ids[i]) == len && memcmp(m->ids[i], id, len) == 0) return (long)i;
    return -1;
}

static size_t model_live(const model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) n += m->live[i];
    return n;
}

typedef struct scored {
    double d;
    size_t i;
} scored;

static int scored_cmp(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return (x->d > y->d) - (x->d < y->d);
}

/* The k nearest live model items to q. Returns how many (<= k). */
static size_t brute_knn(const model *m, vd_distance d, const float *q, size_t k, size_t *out)
{
    scored *s = malloc((m->n ? m->n : 1) * sizeof *s);
    assert_non_null(s);
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->live[i]) s[n++] = (scored){ref_dist(d, q, model_vec(m, i), m->dim), i};
    qsort(s, n, sizeof *s, scored_cmp);
    if (k > n) k = n;
    for (size_t i = 0; i < k; i++) out[i] = s[i].i;
    free(s);
    return k;
}

/* Index of the first hit out of (distance, id) order or repeated, or 0. */
static size_t first_misordered(const vd_results *r)
{
    for (size_t i = 1; i < r->n; i++) {
        const vd_hit *a = &r->hits[i - 1], *b = &r->hits[i];
        if (a->distance > b->distance) return i;
        if (a->distance == b->distance && id_cmp(a->id, a->id_len, b->id, b->id_len) >= 0) return i;
    }
    return results_sorted(r) ? 0 : r->n;
}

/*
 * Checks a result set against the model: sorted by (distance, id) without
 * repeats, every hit a live model item, its distance as defined, metadata
 * when wanted equal to "m:<id>". Fails the test otherwise, except that an
 * ordering problem is only counted when misordered is not NULL (so a test
 * can report it after its other checks).
 */
static void check_hits(const model *m, vd_distance d, const float *q, const vd_results *r,
                       int check_meta, size_t *misordered)
{
    size_t bad = first_misordered(r);
    if (bad && misordered) {
        ++*misordered;
    } else if (bad) {
        if (bad < r->n)
            print_message("  hit %zu: %.*s %.9g (%a), hit %zu: %.*s %.9g (%a)\n", bad - 1,
                          (int)r->hits[bad - 1].id_len, r->hits[bad - 1].id,
                          (double)r->hits[bad - 1].distance, (double)r->hits[bad - 1].distance, bad,
                          (int)r->hits[bad].id_len, r->hits[bad].id, (double)r->hits[bad].distance,
                          (double)r->hits[bad].distance);
        fail_msg("results not sorted by (distance, id) or an id repeated");
    }
    for (size_t h = 0; h < r->n; h++) {
        long i = model_find(m, r->hits[h].id, r->hits[h].id_len);
        if (i < 0) fail_msg("hit %.*s was never added", (int)r->hits[h].id_len, r->hits[h].id);
        if (!m->live[i]) fail_msg("deleted id %s returned", m->ids[i]);
        double want = ref_dist(d, q, model_vec(m, (size_t)i), m->dim);
        if (fabs(r->hits[h].distance - want) > 1e-4 * (1.0 + fabs(want)))
            fail_msg("%s: distance %.8g, brute force %.8g", m->ids[i], (double)r->hits[h].distance,
                     want);
        if (check_meta) {
            char meta[32];
            snprintf(meta, sizeof meta, "m:%s", m->ids[i]);
            if (r->hits[h].metadata_len != strlen(meta) ||
                memcmp(r->hits[h].metadata, meta, strlen(meta)) != 0)
                fail_msg("%s: wrong metadata", m->ids[i]);
        }
    }
}

/* recall@k of the index against brute force over nq random queries. */
static double measure_recall(vd_index *ix, const model *m, vd_distance d, const float *queries,
                             size_t nq, uint32_t k, uint32_t ef, size_t *misordered)
{
    vd_results r;
    vd_results_init(&r);
    size_t *truth = malloc(k * sizeof *truth), found = 0, total = 0;
    assert_non_null(truth);
    for (size_t q = 0; q < nq; q++) {
        const float *qv = queries + q * m->dim;
        size_t nt = brute_knn(m, d, qv, k, truth);
        search_ok(ix, qv, m->dim, k, ef, &r);
        check_hits(m, d, qv, &r, 0, misordered);
        for (size_t t = 0; t < nt; t++)
            for (size_t h = 0; h < r.n; h++)
                if (hit_is(&r.hits[h], m->ids[truth[t]])) {
                    found++;
                    break;
                }
        total += nt;
    }
    free(truth);
    vd_results_free(&r);
    return total ? (double)found / (double)total : 1.0;
}

/* Adds model items [from, to) to the index in batches, metadata "m:<id>". */
static void model_add_range(vd_index *ix, model *m, size_t from, size_t to)
{
    enum { BATCH = 100 };
    vd_item items[BATCH];
    char metas[BATCH][32];
    for (size_t i = from; i < to;) {
        size_t n = 0;
        for (; i < to && n < BATCH; i++, n++) {
            snprintf(metas[n], sizeof metas[n], "m:%s", m->ids[i]);
            items[n] = item(m->ids[i], model_vec(m, i), m->dim, metas[n]);
            m->live[i] = 1;
        }
        add_ok(ix, items, n);
    }
}

/* Clustered data: 20 random centres, each point a centre plus noise. */
static void clustered(uint64_t *s, float *out, size_t n, size_t dim, const float *centres,
                      size_t ncentres)
{
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + (rng_next(s) % ncentres) * dim;
        for (size_t j = 0; j < dim; j++) {
            float noise = (rng_unit(s) + rng_unit(s) + rng_unit(s)) * 0.12f;
            out[i * dim + j] = c[j] + noise;
        }
    }
}

static const vd_distance all_dists[] = {VD_DIST_COSINE, VD_DIST_EUCLIDEAN, VD_DIST_DOT};

/* ------------------------------------------------------------------ */
/* Params, limits, distance names. */

static void test_params_defaults(void **state)
{
    (void)state;
    vd_index_params p;
    memset(&p, 0xAB, sizeof p);
    vd_index_params_init(&p);
    assert_int_equal(p.dimension, 0);
    assert_int_equal(p.m, 16);
    assert_int_equal(p.ef_construction, 200);
    assert_int_equal(p.ef_search, 64);
    assert_int_equal(p.distance, VD_DIST_COSINE);
    assert_int_equal(p.seed, 0);

    vd_limits l;
    memset(&l, 0xAB, sizeof l);
    vd_limits_init(&l);
    assert_int_equal(l.max_dimension, 4096);
    assert_int_equal(l.max_batch, 10000);
    assert_int_equal(l.max_id_len, 512);
    assert_int_equal(l.max_metadata, 65536);
    assert_int_equal(l.max_name_len, 249);
    assert_true(l.repair_threshold == 0.25);

    /* Defaults plus a dimension are valid. */
    p.dimension = 3;
    assert_int_equal(vd_index_params_check(&p, NULL, NULL), VD_OK);
}

static void test_distance_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        vd_distance d;
    } ok[] = {{"cosine", VD_DIST_COSINE},
              {"euclidean", VD_DIST_EUCLIDEAN},
              {"l2", VD_DIST_EUCLIDEAN},
              {"dot", VD_DIST_DOT},
              {"ip", VD_DIST_DOT}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        vd_distance d = (vd_distance)99;
        vd_error err = {0};
        assert_int_equal(vd_distance_parse(ok[i].s, strlen(ok[i].s), &d, &err), VD_OK);
        assert_int_equal(d, ok[i].d);
    }
    /* Length-delimited: the bytes after len do not count. */
    vd_distance d = (vd_distance)99;
    assert_int_equal(vd_distance_parse("dotty", 3, &d, NULL), VD_OK);
    assert_int_equal(d, VD_DIST_DOT);

    static const char *const bad[] = {"manhattan", "cos",    "cosinex", "euclid",
                                      "",          "COSINE", "dot "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_error err = {0};
        vd_err rc = vd_distance_parse(bad[i], strlen(bad[i]), &d, &err);
        assert_int_equal(rc, VD_ERR_UNKNOWN_DISTANCE);
        assert_int_equal(err.code, VD_ERR_UNKNOWN_DISTANCE);
        assert_true(contains(err.msg, "distance"));
        char quoted[32];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        if (!contains(err.msg, quoted)) fail_msg("message does not name the value: %s", err.msg);
    }
    /* NULL err is fine. */
    assert_int_equal(vd_distance_parse("x", 1, &d, NULL), VD_ERR_UNKNOWN_DISTANCE);

    assert_string_equal(vd_distance_name(VD_DIST_COSINE), "cosine");
    assert_string_equal(vd_distance_name(VD_DIST_EUCLIDEAN), "euclidean");
    assert_string_equal(vd_distance_name(VD_DIST_DOT), "dot");
    /* Every name parses back to its distance. */
    for (size_t i = 0; i < 3; i++) {
        const char *n = vd_distance_name(all_dists[i]);
        assert_int_equal(vd_distance_parse(n, strlen(n), &d, NULL), VD_OK);
        assert_int_equal(d, all_dists[i]);
    }
}

static void test_index_new_errors(void **state)
{
    (void)state;
    vd_limits small;
    vd_limits_init(&small);
    small.max_dimension = 8;
    small.max_name_len = 5;
    static const struct {
        const char *name;
        size_t name_len;
        uint32_t dim, m, efc, efs;
        int dist;
        int small_limits;
        vd_err code;
        const char *field;
    } cases[] = {
        {"idx", 3, 0, 16, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "dimension"},
        {"idx", 3, 4097, 16, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "dimension"},
        {"idx", 3, 9, 16, 200, 64, 0, 1, VD_ERR_INVALID_PARAMS, "dimension"},
        {"idx", 3, 4, 0, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "m:"},
        {"idx", 3, 4, 1, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "m:"},
        {"idx", 3, 4, 101, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "m:"},
        {"idx", 3, 4, 16, 0, 64, 0, 0, VD_ERR_INVALID_PARAMS, "ef_construction"},
        {"idx", 3, 4, 16, 10001, 64, 0, 0, VD_ERR_INVALID_PARAMS, "ef_construction"},
        {"idx", 3, 4, 16, 200, 0, 0, 0, VD_ERR_INVALID_PARAMS, "ef_search"},
        {"idx", 3, 4, 16, 200, 10001, 0, 0, VD_ERR_INVALID_PARAMS, "ef_search"},
        {"idx", 3, 4, 16, 200, 64, 3, 0, VD_ERR_UNKNOWN_DISTANCE, "distance"},
        {"idx", 3, 4, 16, 200, 64, -1, 0, VD_ERR_UNKNOWN_DISTANCE, "distance"},
        {"", 0, 4, 16, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "name"},
        {"\xff\xfe", 2, 4, 16, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "name"},
        {"a\xC3", 2, 4, 16, 200, 64, 0, 0, VD_ERR_INVALID_PARAMS, "name"},
        {"abcdef", 6, 4, 16, 200, 64, 0, 1, VD_ERR_INVALID_PARAMS, "name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vd_index_params p;
        vd_index_params_init(&p);
        p.dimension = cases[i].dim;
        p.m = cases[i].m;
        p.ef_construction = cases[i].efc;
        p.ef_search = cases[i].efs;
        p.distance = (vd_distance)cases[i].dist;
        vd_index *sentinel = (vd_index *)&p, *ix = sentinel;
        vd_error err = {0};
        vd_err rc = vd_index_new(&ix, cases[i].name, cases[i].name_len, &p,
                                 cases[i].small_limits ? &small : NULL, &err);
        if (rc != cases[i].code)
            fail_msg("case %zu (%s): got %s, want %s", i, cases[i].field, vd_err_code(rc),
                     vd_err_code(cases[i].code));
        assert_int_equal(err.code, cases[i].code);
        if (!contains(err.msg, cases[i].field))
            fail_msg("case %zu: message \"%s\" does not name %s", i, err.msg, cases[i].field);
        assert_ptr_equal(ix, sentinel); /* *out untouched on failure */
        /* Params alone give the same verdict (when the name is fine). */
        if (strcmp(cases[i].field, "name") != 0)
            assert_int_equal(vd_index_params_check(&p, cases[i].small_limits ? &small : NULL, NULL),
                             cases[i].code);
    }

    /* The boundaries themselves are accepted. */
    static const struct {
        uint32_t dim, m, efc, efs;
    } edges[] = {{1, 2, 1, 1}, {4096, 100, 10000, 10000}};
    for (size_t i = 0; i < 2; i++) {
        vd_index_params p;
        vd_index_params_init(&p);
        p.dimension = edges[i].dim;
        p.m = edges[i].m;
        p.ef_construction = edges[i].efc;
        p.ef_search = edges[i].efs;
        p.distance = VD_DIST_EUCLIDEAN;
        vd_index *ix = NULL;
        vd_error err = {0};
        vd_err rc = vd_index_new(&ix, "edge", 4, &p, NULL, &err);
        if (rc) fail_msg("edge %zu rejected: %s", i, err.msg);
        vd_index_free(ix);
    }
    char name249[249];
    memset(name249, 'n', sizeof name249);
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = 2;
    vd_index *ix = NULL;
    assert_int_equal(vd_index_new(&ix, name249, 249, &p, NULL, NULL), VD_OK);
    vd_index_free(ix);
    char name250[250];
    memset(name250, 'n', sizeof name250);
    ix = NULL;
    assert_int_equal(vd_index_new(&ix, name250, 250, &p, NULL, NULL), VD_ERR_INVALID_PARAMS);
    assert_null(ix);
    vd_index_free(NULL);
}

static void test_index_new_accessors(void **state)
{
    (void)state;
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = 7;
    p.m = 8;
    p.distance = VD_DIST_DOT;
    vd_limits l;
    vd_limits_init(&l);
    l.max_batch = 77;
    char name[] = "caf\xC3\xA9-index";
    vd_index *ix = NULL;
    assert_int_equal(vd_index_new(&ix, name, strlen(name), &p, &l, NULL), VD_OK);
    name[0] = 'X'; /* the index keeps its own copy */
    assert_string_equal(vd_index_name(ix), "caf\xC3\xA9-index");
    const vd_index_params *q = vd_index_params_get(ix);
    assert_int_equal(q->dimension, 7);
    assert_int_equal(q->m, 8);
    assert_int_equal(q->ef_construction, 200);
    assert_int_equal(q->distance, VD_DIST_DOT);
    assert_int_not_equal(q->seed, 0); /* derived from the name */
    assert_int_equal(vd_index_limits(ix)->max_batch, 77);
    assert_int_equal(vd_index_len(ix), 0);
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.live, 0);
    assert_int_equal(st.deleted, 0);
    assert_int_equal(st.max_level, -1);
    assert_true(st.mem_bytes > 0);
    vd_index_free(ix);

    /* An explicit seed is kept. */
    p.seed = 12345;
    assert_int_equal(vd_index_new(&ix, "s", 1, &p, NULL, NULL), VD_OK);
    assert_int_equal(vd_index_params_get(ix)->seed, 12345);
    vd_index_free(ix);
}

/* ------------------------------------------------------------------ */
/* Add validation: one bad item rejects the batch, nothing applied. */

enum { VDIM = 6 };

typedef enum {
    BAD_EMPTY_ID,
    BAD_NULL_ID,
    BAD_LONG_ID,
    BAD_UTF8_ID,
    BAD_SHORT_VEC,
    BAD_LONG_VEC,
    BAD_EMPTY_VEC,
    BAD_NULL_VEC,
    BAD_NAN,
    BAD_PINF,
    BAD_NINF,
    BAD_ZERO_COSINE,
    BAD_META,
    BAD__COUNT
} bad_kind;

static const struct {
    const char *name;
    vd_err code;
    const char *field; /* after "items[<i>]" */
} bad_info[BAD__COUNT] = {
    [BAD_EMPTY_ID] = {"empty id", VD_ERR_INVALID_VECTOR, ".id"},
    [BAD_NULL_ID] = {"NULL id", VD_ERR_INVALID_VECTOR, ".id"},
    [BAD_LONG_ID] = {"id too long", VD_ERR_LIMIT, ".id"},
    [BAD_UTF8_ID] = {"non-UTF-8 id", VD_ERR_INVALID_VECTOR, ".id"},
    [BAD_SHORT_VEC] = {"short vector", VD_ERR_INVALID_VECTOR, ".vector"},
    [BAD_LONG_VEC] = {"long vector", VD_ERR_INVALID_VECTOR, ".vector"},
    [BAD_EMPTY_VEC] = {"empty vector", VD_ERR_INVALID_VECTOR, ".vector"},
    [BAD_NULL_VEC] = {"NULL vector", VD_ERR_INVALID_VECTOR, ".vector"},
    [BAD_NAN] = {"NaN", VD_ERR_INVALID_VECTOR, ".vector["},
    [BAD_PINF] = {"+Inf", VD_ERR_INVALID_VECTOR, ".vector["},
    [BAD_NINF] = {"-Inf", VD_ERR_INVALID_VECTOR, ".vector["},
    [BAD_ZERO_COSINE] = {"zero vector under cosine", VD_ERR_INVALID_VECTOR, ".vector"},
    [BAD_META] = {"metadata too large", VD_ERR_LIMIT, ".metadata"},
};

static void test_add_rejects_bad_items(void **state)
{
    (void)state;
    uint64_t s = 1;
    vd_limits lim;
    vd_limits_init(&lim);
    lim.max_id_len = 16;
    lim.max_metadata = 32;
    char long_id[18];
    memset(long_id, 'L', 17);
    long_id[17] = '\0';
    uint8_t big_meta[33];
    memset(big_meta, 'M', sizeof big_meta);
    float good[VDIM], other[VDIM], badv[VDIM + 1], zero[VDIM] = {0};
    size_t checked = 0;

    for (int kind = 0; kind < BAD__COUNT; kind++) {
        /* Component positions for the non-finite cases: first, middle, last. */
        size_t npos = (kind == BAD_NAN || kind == BAD_PINF || kind == BAD_NINF) ? 3 : 1;
        for (size_t pi = 0; pi < npos; pi++) {
            size_t pos = pi == 0 ? 0 : pi == 1 ? VDIM / 2 : VDIM - 1;
            /* Position of the bad item in the batch: 1 (after a good one) or 3. */
            for (size_t at = 1; at <= 3; at += 2) {
                vd_index *ix = make_index("v", VDIM, VD_DIST_COSINE, &lim);
                rand_vec(&s, good, VDIM);
                add_one(ix, "existing", good, VDIM, "old");
                rand_vec(&s, other, VDIM);
                rand_vec(&s, badv, VDIM + 1);

                vd_item items[4];
                items[0] = item("fresh0", other, VDIM, NULL);
                /* An upsert of an existing id with a new vector, before the bad item. */
                items[1] = item("existing", other, VDIM, "new");
                items[2] = item("fresh2", other, VDIM, "x");
                items[3] = item("fresh3", other, VDIM, "y");
                vd_item *b = &items[at];
                *b = item("bad", badv, VDIM, NULL);
                switch ((bad_kind)kind) {
                case BAD_EMPTY_ID:
                    b->id = "";
                    b->id_len = 0;
                    break;
                case BAD_NULL_ID:
                    b->id = NULL;
                    b->id_len = 0;
                    break;
                case BAD_LONG_ID:
                    b->id = long_id;
                    b->id_len = 17;
                    break;
                case BAD_UTF8_ID:
                    b->id = "ok\xC0\x80";
                    b->id_len = 4;
                    break;
                case BAD_SHORT_VEC:
                    b->vector_len = VDIM - 1;
                    break;
                case BAD_LONG_VEC:
                    b->vector_len = VDIM + 1;
                    break;
                case BAD_EMPTY_VEC:
                    b->vector_len = 0;
                    break;
                case BAD_NULL_VEC:
                    b->vector = NULL;
                    break;
                case BAD_NAN:
                    badv[pos] = NAN;
                    break;
                case BAD_PINF:
                    badv[pos] = INFINITY;
                    break;
                case BAD_NINF:
                    badv[pos] = -INFINITY;
                    break;
                case BAD_ZERO_COSINE:
                    b->vector = zero;
                    break;
                case BAD_META:
                    b->metadata = big_meta;
                    b->metadata_len = sizeof big_meta;
                    break;
                default:
                    break;
                }
                vd_error err = {0};
                vd_err rc = vd_index_add(ix, items, 4, &err);
                if (rc != bad_info[kind].code)
                    fail_msg("%s at item %zu: got %s (%s), want %s", bad_info[kind].name, at,
                             vd_err_code(rc), err.msg, vd_err_code(bad_info[kind].code));
                assert_int_equal(err.code, bad_info[kind].code);
                char field[32];
                snprintf(field, sizeof field, "items[%zu]%s", at, bad_info[kind].field);
                if (!contains(err.msg, field))
                    fail_msg("%s: message \"%s\" does not name %s", bad_info[kind].name, err.msg,
                             field);
                if (kind == BAD_NAN || kind == BAD_PINF || kind == BAD_NINF) {
                    snprintf(field, sizeof field, "items[%zu].vector[%zu]", at, pos);
                    if (!contains(err.msg, field))
                        fail_msg("%s: message \"%s\" does not name %s", bad_info[kind].name,
                                 err.msg, field);
                }
                /* Same verdict from the checker alone. */
                assert_int_equal(vd_index_check_items(ix, items, 4, NULL), bad_info[kind].code);

                /* Nothing applied: len, the fresh ids, the existing item. */
                assert_int_equal(vd_index_len(ix), 1);
                static const char *const fresh[] = {"fresh0", "fresh2", "fresh3", "bad"};
                for (size_t f = 0; f < 4; f++)
                    assert_int_equal(
                        vd_index_get(ix, fresh[f], strlen(fresh[f]), NULL, NULL, NULL, NULL),
                        VD_ERR_NOT_FOUND);
                float got[VDIM];
                uint8_t *meta = NULL;
                size_t meta_len = 0;
                assert_int_equal(vd_index_get(ix, "existing", 8, got, &meta, &meta_len, NULL),
                                 VD_OK);
                assert_int_equal(meta_len, 3);
                assert_memory_equal(meta, "old", 3);
                free(meta);
                float gn[VDIM];
                memcpy(gn, good, sizeof gn);
                normalize(gn, VDIM);
                for (size_t j = 0; j < VDIM; j++) assert_float_equal(got[j], gn[j], 1e-6);
                vd_index_stats st;
                vd_index_stats_get(ix, &st);
                assert_int_equal(st.live, 1);
                assert_int_equal(st.deleted, 0);
                vd_index_free(ix);
                checked++;
            }
        }
    }
    assert_true(checked >= BAD__COUNT * 2);
}

/* A zero vector is rejected under cosine only. */
static void test_zero_vector_by_distance(void **state)
{
    (void)state;
    float zero[4] = {0, 0, 0, 0}, negz[4] = {-0.0f, 0, -0.0f, 0}, one[4] = {1, 0, 0, 0};
    for (size_t d = 0; d < 3; d++) {
        vd_index *ix = make_index("z", 4, all_dists[d], NULL);
        vd_item it = item("zero", zero, 4, NULL);
        vd_error err = {0};
        vd_err rc = vd_index_add(ix, &it, 1, &err);
        if (all_dists[d] == VD_DIST_COSINE) {
            assert_int_equal(rc, VD_ERR_INVALID_VECTOR);
            assert_true(contains(err.msg, "items[0].vector"));
            it = item("negzero", negz, 4, NULL);
            assert_int_equal(vd_index_add(ix, &it, 1, NULL), VD_ERR_INVALID_VECTOR);
            assert_int_equal(vd_index_len(ix), 0);
        } else {
            if (rc)
                fail_msg("%s rejected a zero vector: %s", vd_distance_name(all_dists[d]), err.msg);
            add_one(ix, "one", one, 4, NULL);
            assert_int_equal(vd_index_len(ix), 2);
            vd_results r;
            vd_results_init(&r);
            search_ok(ix, zero, 4, 2, 0, &r);
            assert_int_equal(r.n, 2);
            if (all_dists[d] == VD_DIST_EUCLIDEAN) {
                assert_true(hit_is(&r.hits[0], "zero"));
                assert_true(r.hits[0].distance == 0.0f);
                assert_float_equal(r.hits[1].distance, 1.0f, 1e-6);
            } else {
                /* dot: 1 - 0 for both, tie broken by id: "one" < "zero". */
                assert_true(hit_is(&r.hits[0], "one"));
                assert_float_equal(r.hits[0].distance, 1.0f, 1e-6);
                assert_float_equal(r.hits[1].distance, 1.0f, 1e-6);
            }
            vd_results_free(&r);
        }
        vd_index_free(ix);
    }
}

/*
 * Under cosine only a zero norm is invalid: a tiny but non-zero vector has a
 * direction and must be accepted (DESIGN.md 2: "under cosine the norm must be
 * non-zero").
 */
static void test_cosine_tiny_nonzero_vector(void **state)
{
    (void)state;
    vd_index *ix = make_index("tiny", 4, VD_DIST_COSINE, NULL);
    float tiny[4] = {1e-25f, 0, 0, 0}, x[4] = {1, 0, 0, 0}, y[4] = {0, 1, 0, 0};
    add_one(ix, "y", y, 4, NULL);
    vd_item it = item("tiny", tiny, 4, NULL);
    vd_error err = {0};
    vd_err rc = vd_index_add(ix, &it, 1, &err);
    if (rc) {
        vd_index_free(ix); /* no leak report on top of the failure */
        fail_msg("non-zero vector {1e-25, 0, 0, 0} rejected under cosine: %s", err.msg);
    }
    vd_results r;
    vd_results_init(&r);
    search_ok(ix, x, 4, 1, 0, &r);
    assert_int_equal(r.n, 1);
    assert_true(hit_is(&r.hits[0], "tiny"));
    assert_float_equal(r.hits[0].distance, 0.0f, 1e-6);
    /* A tiny query has a direction too. */
    rc = vd_index_search(ix, tiny, 4, 1, 0, &r, &err);
    if (rc) {
        vd_results_free(&r);
        vd_index_free(ix);
        fail_msg("tiny query rejected under cosine: %s", err.msg);
    }
    assert_true(hit_is(&r.hits[0], "tiny"));
    vd_results_free(&r);
    vd_index_free(ix);
}

static void test_add_limits(void **state)
{
    (void)state;
    vd_limits lim;
    vd_limits_init(&lim);
    lim.max_batch = 4;
    vd_index *ix = make_index("lim", 3, VD_DIST_EUCLIDEAN, &lim);
    float v[5][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}, {0, 1, 1}};
    const char *ids[5] = {"a", "b", "c", "d", "e"};
    vd_item items[5];
    for (int i = 0; i < 5; i++) items[i] = item(ids[i], v[i], 3, NULL);

    vd_error err = {0};
    assert_int_equal(vd_index_add(ix, items, 5, &err), VD_ERR_LIMIT);
    assert_int_equal(err.code, VD_ERR_LIMIT);
    assert_true(contains(err.msg, "items"));
    assert_true(contains(err.msg, "4"));
    assert_int_equal(vd_index_len(ix), 0);
    add_ok(ix, items, 4); /* exactly max_batch is fine */
    assert_int_equal(vd_index_len(ix), 4);
    add_ok(ix, items, 0); /* an empty batch is a no-op */
    assert_int_equal(vd_index_len(ix), 4);

    /* Deletes: more than max_batch ids, or an empty id, deletes nothing. */
    size_t lens[5] = {1, 1, 1, 1, 1};
    assert_int_equal(vd_index_delete(ix, ids, lens, 5, NULL, NULL, &err), VD_ERR_LIMIT);
    assert_true(contains(err.msg, "ids"));
    assert_int_equal(vd_index_len(ix), 4);
    const char *with_empty[3] = {"a", "b", ""};
    size_t elens[3] = {1, 1, 0};
    assert_int_equal(vd_index_delete(ix, with_empty, elens, 3, NULL, NULL, &err),
                     VD_ERR_INVALID_VECTOR);
    assert_true(contains(err.msg, "ids[2]"));
    assert_int_equal(vd_index_len(ix), 4);
    assert_int_equal(vd_index_get(ix, "a", 1, NULL, NULL, NULL, NULL), VD_OK);
    vd_index_free(ix);

    /* Id length and metadata size: the limit itself is allowed, one more is not. */
    vd_limits_init(&lim);
    lim.max_id_len = 8;
    lim.max_metadata = 10;
    ix = make_index("lim2", 3, VD_DIST_EUCLIDEAN, &lim);
    uint8_t meta[11] = "0123456789";
    vd_item it = {"12345678", 8, v[0], 3, meta, 10};
    add_ok(ix, &it, 1);
    it = (vd_item){"123456789", 9, v[1], 3, meta, 10};
    assert_int_equal(vd_index_add(ix, &it, 1, &err), VD_ERR_LIMIT);
    assert_true(contains(err.msg, "items[0].id"));
    it = (vd_item){"meta", 4, v[1], 3, meta, 11};
    assert_int_equal(vd_index_add(ix, &it, 1, &err), VD_ERR_LIMIT);
    assert_true(contains(err.msg, "items[0].metadata"));
    assert_int_equal(vd_index_len(ix), 1);
    vd_index_free(ix);

    /* Defaults: a 512-byte id and 64 KiB of metadata are accepted, 513 / 64 KiB + 1 not. */
    ix = make_index("lim3", 3, VD_DIST_EUCLIDEAN, NULL);
    char *id = malloc(513);
    uint8_t *big = calloc(65537, 1);
    assert_true(id && big);
    memset(id, 'i', 513);
    it = (vd_item){id, 512, v[0], 3, big, 65536};
    add_ok(ix, &it, 1);
    uint8_t *got = NULL;
    size_t got_len = 0;
    assert_int_equal(vd_index_get(ix, id, 512, NULL, &got, &got_len, NULL), VD_OK);
    assert_int_equal(got_len, 65536);
    free(got);
    it = (vd_item){id, 513, v[0], 3, NULL, 0};
    assert_int_equal(vd_index_add(ix, &it, 1, NULL), VD_ERR_LIMIT);
    it = (vd_item){"x", 1, v[0], 3, big, 65537};
    assert_int_equal(vd_index_add(ix, &it, 1, NULL), VD_ERR_LIMIT);
    assert_int_equal(vd_index_len(ix), 1);
    free(id);
    free(big);
    vd_index_free(ix);
}

/* ------------------------------------------------------------------ */
/* Upsert. */

static void test_upsert_changed_vector(void **state)
{
    (void)state;
    enum { N = 50, D = 8 };
    uint64_t s = 11;
    for (size_t di = 0; di < 3; di++) {
        vd_distance d = all_dists[di];
        vd_index *ix = make_index("ups", D, d, NULL);
        model m;
        model_init(&m, D, N);
        for (size_t i = 0; i < N; i++) {
            snprintf(m.ids[i], sizeof m.ids[i], "id%zu", i);
            rand_vec(&s, model_vec(&m, i), D);
            if (d == VD_DIST_DOT) normalize(model_vec(&m, i), D);
        }
        m.n = N;
        model_add_range(ix, &m, 0, N);
        assert_int_equal(vd_index_len(ix), N);

        float v1[D], v2[D];
        memcpy(v1, model_vec(&m, 7), sizeof v1);
        rand_vec(&s, v2, D);
        if (d == VD_DIST_DOT) normalize(v2, D);
        add_one(ix, "id7", v2, D, "m:id7");
        memcpy(model_vec(&m, 7), v2, sizeof v2);
        assert_int_equal(vd_index_len(ix), N);

        vd_results r;
        vd_results_init(&r);
        /* The new vector finds it first, at distance ~0 (exactly 0 for L2). */
        search_ok(ix, v2, D, N, N, &r);
        check_hits(&m, d, v2, &r, 1, NULL);
        assert_int_equal(r.n, N);
        assert_true(hit_is(&r.hits[0], "id7"));
        if (d == VD_DIST_EUCLIDEAN)
            assert_true(r.hits[0].distance == 0.0f);
        else
            assert_float_equal(r.hits[0].distance, 0.0f, 1e-5);
        /* The old vector: id7 exactly once, at its new distance. */
        search_ok(ix, v1, D, N, N, &r);
        check_hits(&m, d, v1, &r, 1, NULL);
        size_t seen = 0;
        for (size_t h = 0; h < r.n; h++) seen += hit_is(&r.hits[h], "id7");
        assert_int_equal(seen, 1);
        /* get returns the new vector. */
        float got[D];
        assert_int_equal(vd_index_get(ix, "id7", 3, got, NULL, NULL, NULL), VD_OK);
        float want[D];
        memcpy(want, v2, sizeof want);
        if (d == VD_DIST_COSINE) normalize(want, D);
        for (size_t j = 0; j < D; j++) assert_float_equal(got[j], want[j], 1e-6);
        vd_results_free(&r);
        model_free(&m);
        vd_index_free(ix);
    }
}

static void test_upsert_same_vector_new_metadata(void **state)
{
    (void)state;
    enum { D = 5 };
    uint64_t s = 12;
    vd_index *ix = make_index("meta", D, VD_DIST_COSINE, NULL);
    float v[10][D];
    char ids[10][8];
    for (int i = 0; i < 10; i++) {
        rand_vec(&s, v[i], D);
        snprintf(ids[i], sizeof ids[i], "k%d", i);
        add_one(ix, ids[i], v[i], D, "first");
    }
    vd_index_stats before;
    vd_index_stats_get(ix, &before);
    add_one(ix, "k3", v[3], D, "second, longer metadata");
    assert_int_equal(vd_index_len(ix), 10);
    uint8_t *meta = NULL;
    size_t len = 0;
    assert_int_equal(vd_index_get(ix, "k3", 2, NULL, &meta, &len, NULL), VD_OK);
    assert_int_equal(len, strlen("second, longer metadata"));
    assert_memory_equal(meta, "second, longer metadata", len);
    free(meta);
    vd_results r;
    vd_results_init(&r);
    search_ok(ix, v[3], D, 1, 0, &r);
    assert_int_equal(r.n, 1);
    assert_true(hit_is(&r.hits[0], "k3"));
    assert_int_equal(r.hits[0].metadata_len, len);
    assert_memory_equal(r.hits[0].metadata, "second, longer metadata", len);

    /* Metadata removed: upsert without any. */
    add_one(ix, "k3", v[3], D, NULL);
    meta = (uint8_t *)"junk";
    assert_int_equal(vd_index_get(ix, "k3", 2, NULL, &meta, &len, NULL), VD_OK);
    assert_null(meta);
    assert_int_equal(len, 0);
    search_ok(ix, v[3], D, 1, 0, &r);
    assert_true(hit_is(&r.hits[0], "k3"));
    assert_int_equal(r.hits[0].metadata_len, 0);
    assert_null(r.hits[0].metadata);
    assert_int_equal(vd_index_len(ix), 10);

    /* Same direction, other length: under cosine that is the same stored vector. */
    float scaled[D];
    for (int j = 0; j < D; j++) scaled[j] = v[4][j] * 4.0f;
    add_one(ix, "k4", scaled, D, "scaled");
    assert_int_equal(vd_index_len(ix), 10);
    assert_int_equal(vd_index_get(ix, "k4", 2, NULL, &meta, &len, NULL), VD_OK);
    assert_memory_equal(meta, "scaled", 6);
    free(meta);
    vd_results_free(&r);
    vd_index_free(ix);
}

static void test_duplicate_id_in_batch(void **state)
{
    (void)state;
    enum { D = 4 };
    for (size_t di = 0; di < 3; di++) {
        vd_index *ix = make_index("dup", D, all_dists[di], NULL);
        float a[D] = {1, 0, 0, 0}, b[D] = {0, 1, 0, 0}, c[D] = {0, 0, 1, 0};
        vd_item items[4] = {item("d", a, D, "first"), item("other", c, D, NULL),
                            item("d", b, D, "second"), item("d", b, D, "third")};
        add_ok(ix, items, 4);
        assert_int_equal(vd_index_len(ix), 2);
        float got[D];
        uint8_t *meta = NULL;
        size_t len = 0;
        assert_int_equal(vd_index_get(ix, "d", 1, got, &meta, &len, NULL), VD_OK);
        assert_memory_equal(got, b, sizeof b);
        assert_int_equal(len, 5);
        assert_memory_equal(meta, "third", 5);
        free(meta);
        vd_results r;
        vd_results_init(&r);
        search_ok(ix, a, D, 10, 0, &r);
        assert_int_equal(r.n, 2);
        assert_true(results_sorted(&r));
        size_t seen = 0;
        for (size_t h = 0; h < r.n; h++) {
            if (hit_is(&r.hits[h], "d")) {
                seen++;
                assert_int_equal(r.hits[h].metadata_len, 5);
                assert_float_equal(r.hits[h].distance, ref_dist(all_dists[di], a, b, D), 1e-6);
            }
        }
        assert_int_equal(seen, 1);
        vd_results_free(&r);
        vd_index_free(ix);
    }
}

static void test_metadata_with_hits(void **state)
{
    (void)state;
    enum { N = 40, D = 6 };
    uint64_t s = 13;
    vd_index *ix = make_index("md", D, VD_DIST_EUCLIDEAN, NULL);
    float v[N][D];
    uint8_t meta[N][20];
    vd_item items[N];
    char ids[N][8];
    for (int i = 0; i < N; i++) {
        rand_vec(&s, v[i], D);
        snprintf(ids[i], sizeof ids[i], "md%d", i);
        /* Binary metadata with zero bytes, length varying with i (0 for some). */
        for (int j = 0; j < 20; j++) meta[i][j] = (uint8_t)(i * 7 + j * (j & 1));
        items[i] = (vd_item){ids[i], strlen(ids[i]),         v[i],
                             D,      i % 5 ? meta[i] : NULL, (size_t)(i % 5 ? i % 20 : 0)};
    }
    add_ok(ix, items, N);
    vd_results r;
    vd_results_init(&r);
    search_ok(ix, v[0], D, N, N, &r);
    assert_int_equal(r.n, N);
    for (size_t h = 0; h < r.n; h++) {
        /* Hit ids are not NUL-terminated: parse within id_len. */
        int i = 0;
        for (size_t c = 2; c < r.hits[h].id_len; c++) i = i * 10 + (r.hits[h].id[c] - '0');
        assert_in_range(i, 0, N - 1);
        assert_true(hit_is(&r.hits[h], ids[i]));
        size_t want = (size_t)(i % 5 ? i % 20 : 0);
        assert_int_equal(r.hits[h].metadata_len, want);
        if (want)
            assert_memory_equal(r.hits[h].metadata, meta[i], want);
        else
            assert_null(r.hits[h].metadata);
    }
    vd_results_free(&r);
    vd_index_free(ix);
}

/* ------------------------------------------------------------------ */
/* Search. */

static void test_search_self_and_distances(void **state)
{
    (void)state;
    enum { N = 300, D = 12 };
    uint64_t s = 21;
    for (size_t di = 0; di < 3; di++) {
        vd_distance d = all_dists[di];
        vd_index *ix = make_index("self", D, d, NULL);
        model m;
        model_init(&m, D, N);
        for (size_t i = 0; i < N; i++) {
            snprintf(m.ids[i], sizeof m.ids[i], "s%03zu", i);
            rand_vec(&s, model_vec(&m, i), D);
            /* dot: unit vectors, so that a stored vector is its own nearest at 1 - 1. */
            if (d == VD_DIST_DOT) normalize(model_vec(&m, i), D);
        }
        m.n = N;
        model_add_range(ix, &m, 0, N);
        vd_results r;
        vd_results_init(&r);
        size_t top[10];
        for (size_t i = 0; i < N; i++) {
            const float *q = model_vec(&m, i);
            search_ok(ix, q, D, 10, 0, &r);
            assert_int_equal(r.n, 10);
            check_hits(&m, d, q, &r, 1, NULL);
            if (!hit_is(&r.hits[0], m.ids[i]))
                fail_msg("%s: stored vector %s not returned first", vd_distance_name(d), m.ids[i]);
            if (d == VD_DIST_EUCLIDEAN)
                assert_true(r.hits[0].distance == 0.0f);
            else
                assert_float_equal(r.hits[0].distance, 0.0f, 1e-6);
            /* The nearest few agree with brute force. */
            brute_knn(&m, d, q, 3, top);
            for (size_t t = 0; t < 3; t++) assert_true(hit_is(&r.hits[t], m.ids[top[t]]));
        }
        /* Random queries: distances are the defined ones (check_hits) and
         * euclidean is the true L2 (not squared). */
        for (int qn = 0; qn < 50; qn++) {
            float q[D];
            rand_vec(&s, q, D);
            for (int j = 0; j < D; j++) q[j] *= 3.0f; /* far: L2 and L2^2 differ a lot */
            search_ok(ix, q, D, 20, 100, &r);
            check_hits(&m, d, q, &r, 1, NULL);
            brute_knn(&m, d, q, 1, top);
            assert_true(hit_is(&r.hits[0], m.ids[top[0]]));
            if (d == VD_DIST_EUCLIDEAN) {
                double l2 = 0;
                for (int j = 0; j < D; j++) {
                    double x = (double)q[j] - model_vec(&m, top[0])[j];
                    l2 += x * x;
                }
                assert_float_equal(r.hits[0].distance, sqrt(l2), 1e-4 * sqrt(l2));
            } else if (d == VD_DIST_DOT) {
                double dot = 0;
                for (int j = 0; j < D; j++) dot += (double)q[j] * model_vec(&m, top[0])[j];
                assert_float_equal(r.hits[0].distance, 1.0 - dot, 1e-5 * (1 + fabs(dot)));
                assert_true(r.hits[0].distance < 0.0f); /* |q| ~ 3: 1 - a.b goes negative */
            }
        }
        vd_results_free(&r);
        model_free(&m);
        vd_index_free(ix);
    }
}

static void test_search_ties_by_id(void **state)
{
    (void)state;
    enum { D = 5 };
    /* Bytewise: uppercase < lowercase, prefix first, UTF-8 after ASCII. */
    static const char *const same[] = {"b", "a", "c", "ab", "caf\xC3\xA9", "z", "A", "aa", "a0"};
    static const char *const order[] = {"A", "a", "a0", "aa", "ab", "b", "c", "caf\xC3\xA9", "z"};
    enum { NS = sizeof same / sizeof same[0] };
    uint64_t s = 31;
    for (size_t di = 0; di < 3; di++) {
        vd_index *ix = make_index("ties", D, all_dists[di], NULL);
        float tie[D] = {0.5f, -0.25f, 0.125f, 1.0f, -0.75f}, q[D];
        memcpy(q, tie, sizeof q);
        /* Some distinct vectors too, added in between. */
        for (int i = 0; i < 30; i++) {
            float v[D];
            rand_vec(&s, v, D);
            for (int j = 0; j < D; j++) v[j] = v[j] * 0.2f - tie[j];
            char id[8];
            snprintf(id, sizeof id, "o%d", i);
            add_one(ix, id, v, D, NULL);
            if (i < NS) add_one(ix, same[i], tie, D, NULL);
        }
        vd_results r;
        vd_results_init(&r);
        search_ok(ix, q, D, 20, 0, &r);
        assert_true(results_sorted(&r));
        for (size_t i = 0; i < NS; i++) {
            if (!hit_is(&r.hits[i], order[i]))
                fail_msg("%s: hit %zu is %.*s, want %s", vd_distance_name(all_dists[di]), i,
                         (int)r.hits[i].id_len, r.hits[i].id, order[i]);
            assert_memory_equal(&r.hits[i].distance, &r.hits[0].distance, sizeof(float));
        }
        if (all_dists[di] == VD_DIST_EUCLIDEAN) assert_true(r.hits[0].distance == 0.0f);
        assert_true(r.hits[NS].distance > r.hits[0].distance);
        /* k smaller than the tie group: the smallest ids win. */
        search_ok(ix, q, D, 3, 0, &r);
        assert_int_equal(r.n, 3);
        for (size_t i = 0; i < 3; i++) assert_true(hit_is(&r.hits[i], order[i]));
        vd_results_free(&r);
        vd_index_free(ix);
    }
}

/*
 * Exact duplicates (the same text embedded twice is common): more copies of
 * one vector than a node has links (m0 = 32) must not become a closed clique
 * that a search cannot leave. From the duplicated vector, an exhaustive
 * search still reaches every other item; next to it, a search returns k hits
 * including the nearest non-copies. (Which copies come back is not checked:
 * HNSW cannot keep every exact copy reachable.)
 */
static void test_duplicate_vectors_no_sink(void **state)
{
    (void)state;
    enum { NDUP = 40, NRAND = 200, D = 8, K = 60 };
    uint64_t s = 91;
    char report[600] = "";
    for (size_t di = 0; di < 3; di++) {
        vd_distance d = all_dists[di];
        vd_index *ix = make_index("dups", D, d, NULL);
        model m;
        model_init(&m, D, NDUP + NRAND);
        const float dup[D] = {0.5f, -0.25f, 0.75f, 0.1f, -0.6f, 0.3f, 0.2f, -0.4f};
        for (size_t i = 0; i < NDUP + NRAND; i++) {
            /* Copies spread through the insertion order. */
            int is_dup = i % 6 == 0 && i / 6 < NDUP;
            snprintf(m.ids[i], sizeof m.ids[i], "%s%03zu", is_dup ? "d" : "r", i);
            if (is_dup)
                memcpy(model_vec(&m, i), dup, sizeof dup);
            else
                rand_vec(&s, model_vec(&m, i), D);
            if (d == VD_DIST_DOT) normalize(model_vec(&m, i), D);
        }
        m.n = NDUP + NRAND;
        model_add_range(ix, &m, 0, m.n);
        vd_results r;
        vd_results_init(&r);
        float q[D];
        memcpy(q, dup, sizeof q);
        if (d == VD_DIST_DOT) normalize(q, D);
        /* Exhaustive from the copies: every non-copy is reached. */
        search_ok(ix, q, D, (uint32_t)m.n, VD_MAX_EF, &r);
        size_t exhaustive = r.n, others = 0;
        for (size_t h = 0; h < r.n; h++) others += r.hits[h].id[0] == 'r';
        /* Next to the copies: k hits, the nearest non-copies among them. */
        q[0] += 0.05f;
        size_t truth[K], want = 0, found = 0;
        size_t nt = brute_knn(&m, d, q, K, truth);
        search_ok(ix, q, D, K, 200, &r);
        size_t near_hits = r.n;
        for (size_t t = 0; t < nt; t++) {
            if (m.ids[truth[t]][0] != 'r') continue;
            want++;
            for (size_t h = 0; h < r.n; h++)
                if (hit_is(&r.hits[h], m.ids[truth[t]])) {
                    found++;
                    break;
                }
        }
        vd_results_free(&r);
        model_free(&m);
        vd_index_free(ix);
        /* All distances first, then one verdict. */
        if (others != NRAND || near_hits != K || found < want * 95 / 100)
            snprintf(report + strlen(report), sizeof report - strlen(report),
                     "\n  %s: exhaustive search (k = ef = all) returned %zu hits, %zu of %d "
                     "non-copies; next to the copies %zu of k = %d hits, %zu of the %zu nearest "
                     "non-copies",
                     vd_distance_name(d), exhaustive, others, NRAND, near_hits, K, found, want);
    }
    if (report[0]) fail_msg("%d copies of one vector form a closed clique:%s", NDUP, report);
}

/*
 * Euclidean: two squared distances one ulp apart can have the same square
 * root. The user sees equal distances, so the tie must be broken by id.
 * Query 0; "z" at squared distance 6.25, "a" at the next float above 6.25;
 * both at distance sqrtf(...) == 2.5.
 */
static void test_search_euclidean_ties_after_sqrt(void **state)
{
    (void)state;
    vd_index *ix = make_index("sqrt", 2, VD_DIST_EUCLIDEAN, NULL);
    float z[2] = {2.5f, 0.0f}, a[2] = {2.5f, 6.9e-4f}, q[2] = {0, 0};
    /* Preconditions on float arithmetic the test relies on. */
    float d2a = 6.25f + a[1] * a[1];
    assert_true(d2a > 6.25f);
    assert_true(sqrtf(d2a) == 2.5f);
    add_one(ix, "z", z, 2, NULL);
    add_one(ix, "a", a, 2, NULL);
    vd_results r;
    vd_results_init(&r);
    search_ok(ix, q, 2, 2, 0, &r);
    assert_int_equal(r.n, 2);
    assert_true(r.hits[0].distance == 2.5f);
    assert_true(r.hits[1].distance == 2.5f);
    char order[8];
    snprintf(order, sizeof order, "%.*s,%.*s", (int)r.hits[0].id_len, r.hits[0].id,
             (int)r.hits[1].id_len, r.hits[1].id);
    /* k = 1 must pick the smaller id of the tie. */
    search_ok(ix, q, 2, 1, 0, &r);
    assert_int_equal(r.n, 1);
    int first_ok = hit_is(&r.hits[0], "a");
    vd_results_free(&r);
    vd_index_free(ix);
    if (strcmp(order, "a,z") != 0)
        fail_msg("equal distances 2.5, 2.5 returned in order %s: ties not broken by id", order);
    if (!first_ok) fail_msg("k = 1 returned \"z\" for a tie with \"a\"");
}

static void test_search_k_and_ef(void **state)
{
    (void)state;
    enum { N = 30, D = 4 };
    uint64_t s = 41;
    vd_index *ix = make_index("k", D, VD_DIST_EUCLIDEAN, NULL);
    for (int i = 0; i < N; i++) {
        float v[D];
        rand_vec(&s, v, D);
        char id[8];
        snprintf(id, sizeof id, "k%d", i);
        add_one(ix, id, v, D, NULL);
    }
    float q[D] = {0.1f, 0.2f, 0.3f, 0.4f};
    vd_results r;
    vd_results_init(&r);
    vd_error err = {0};
    search_ok(ix, q, D, 0, 0, &r);
    assert_int_equal(r.n, VD_DEFAULT_K);
    assert_int_equal(r.n, 10);
    search_ok(ix, q, D, 1, 0, &r);
    assert_int_equal(r.n, 1);
    search_ok(ix, q, D, VD_MAX_K, 0, &r); /* k above len: all of them */
    assert_int_equal(r.n, N);
    search_ok(ix, q, D, 25, 1, &r); /* effective ef is max(ef, k) */
    assert_int_equal(r.n, 25);
    search_ok(ix, q, D, 5, VD_MAX_EF, &r);
    assert_int_equal(r.n, 5);

    r.n = 77;
    assert_int_equal(vd_index_search(ix, q, D, VD_MAX_K + 1, 0, &r, &err), VD_ERR_INVALID_PARAMS);
    assert_int_equal(err.code, VD_ERR_INVALID_PARAMS);
    assert_true(contains(err.msg, "k"));
    assert_true(contains(err.msg, "1001"));
    assert_int_equal(vd_index_search(ix, q, D, 10, VD_MAX_EF + 1, &r, &err), VD_ERR_INVALID_PARAMS);
    assert_true(contains(err.msg, "ef"));
    assert_true(contains(err.msg, "10001"));
    assert_int_equal(vd_index_search(ix, q, D, UINT32_MAX, UINT32_MAX, &r, NULL),
                     VD_ERR_INVALID_PARAMS);
    vd_results_free(&r);
    vd_index_free(ix);
}

static void test_search_bad_query(void **state)
{
    (void)state;
    enum { D = 4 };
    for (size_t di = 0; di < 3; di++) {
        vd_index *ix = make_index("q", D, all_dists[di], NULL);
        float v[D] = {1, 2, 3, 4};
        add_one(ix, "x", v, D, NULL);
        vd_results r;
        vd_results_init(&r);
        vd_error err = {0};
        float q[D + 1] = {1, 2, 3, 4, 5};
        assert_int_equal(vd_index_search(ix, q, D - 1, 1, 0, &r, &err), VD_ERR_INVALID_VECTOR);
        assert_true(contains(err.msg, "vector"));
        assert_true(contains(err.msg, "3"));
        assert_int_equal(vd_index_search(ix, q, D + 1, 1, 0, &r, &err), VD_ERR_INVALID_VECTOR);
        assert_int_equal(vd_index_search(ix, q, 0, 1, 0, &r, &err), VD_ERR_INVALID_VECTOR);
        assert_int_equal(vd_index_search(ix, NULL, D, 1, 0, &r, &err), VD_ERR_INVALID_VECTOR);
        const float specials[] = {NAN, INFINITY, -INFINITY};
        for (int sp = 0; sp < 3; sp++) {
            for (int pos = 0; pos < D; pos++) {
                float b[D] = {1, 2, 3, 4};
                b[pos] = specials[sp];
                err.msg[0] = '\0';
                assert_int_equal(vd_index_search(ix, b, D, 1, 0, &r, &err), VD_ERR_INVALID_VECTOR);
                char field[16];
                snprintf(field, sizeof field, "vector[%d]", pos);
                if (!contains(err.msg, field))
                    fail_msg("message \"%s\" does not name %s", err.msg, field);
            }
        }
        float zero[D] = {0};
        vd_err rc = vd_index_search(ix, zero, D, 1, 0, &r, &err);
        if (all_dists[di] == VD_DIST_COSINE) {
            assert_int_equal(rc, VD_ERR_INVALID_VECTOR);
        } else {
            assert_int_equal(rc, VD_OK);
            assert_int_equal(r.n, 1);
        }
        vd_results_free(&r);
        vd_index_free(ix);
    }
}

/* Finite components whose distances overflow float32 (FLT_MAX, found by
 * fuzz_request: a dot search returned -inf, two opposite vectors NaN)
 * are refused naming the field under euclidean and dot; cosine normalises
 * them and keeps them. Vectors up to the documented norm keep every
 * distance finite. */
static void test_huge_vectors(void **state)
{
    (void)state;
    enum { D = 2 };
    const float huge[D] = {3.4028235e38f, 3.4028235e38f};
    const float opposite[D] = {3.4028235e38f, -3.4028235e38f};
    for (size_t di = 0; di < 3; di++) {
        vd_index *ix = make_index("h", D, all_dists[di], NULL);
        vd_item it[2] = {{"a", 1, huge, D, NULL, 0}, {"b", 1, opposite, D, NULL, 0}};
        vd_error err = {0};
        vd_results r;
        vd_results_init(&r);
        if (all_dists[di] == VD_DIST_COSINE) {
            assert_int_equal(vd_index_add(ix, it, 2, &err), VD_OK);
            assert_int_equal(vd_index_search(ix, huge, D, 2, 0, &r, &err), VD_OK);
            assert_int_equal(r.n, 2);
            for (size_t i = 0; i < r.n; i++) assert_true(isfinite(r.hits[i].distance));
        } else {
            assert_int_equal(vd_index_check_items(ix, it + 1, 1, &err), VD_ERR_INVALID_VECTOR);
            if (!contains(err.msg, "items[0].vector"))
                fail_msg("message \"%s\" does not name items[0].vector", err.msg);
            assert_int_equal(vd_index_add(ix, it, 2, &err), VD_ERR_INVALID_VECTOR);
            assert_int_equal(vd_index_len(ix), 0);
            float one[D] = {1, 1};
            add_one(ix, "c", one, D, NULL);
            assert_int_equal(vd_index_search(ix, opposite, D, 1, 0, &r, &err),
                             VD_ERR_INVALID_VECTOR);
            assert_true(contains(err.msg, "vector"));
            /* Just under the limit, the farthest pair stays finite. */
            const float big = 4.5e18f, a[D] = {big, -big}, b[D] = {-big, big};
            add_one(ix, "a", a, D, NULL);
            add_one(ix, "b", b, D, NULL);
            for (int q = 0; q < 2; q++) {
                assert_int_equal(vd_index_search(ix, q ? b : a, D, 3, 0, &r, &err), VD_OK);
                assert_int_equal(r.n, 3);
                for (size_t i = 0; i < r.n; i++)
                    if (!isfinite(r.hits[i].distance))
                        fail_msg("%s: hit %zu distance %g", vd_distance_name(all_dists[di]), i,
                                 r.hits[i].distance);
            }
        }
        vd_results_free(&r);
        vd_index_free(ix);
    }
}

static void test_search_empty_index(void **state)
{
    (void)state;
    for (size_t di = 0; di < 3; di++) {
        vd_index *ix = make_index("empty", 3, all_dists[di], NULL);
        float q[3] = {1, 2, 3};
        vd_results r;
        vd_results_init(&r);
        search_ok(ix, q, 3, 10, 0, &r);
        assert_int_equal(r.n, 0);
        /* Reused results: previous content replaced. */
        add_one(ix, "one", q, 3, "meta");
        search_ok(ix, q, 3, 10, 0, &r);
        assert_int_equal(r.n, 1);
        assert_true(hit_is(&r.hits[0], "one"));
        assert_int_equal(r.hits[0].metadata_len, 4);
        assert_memory_equal(r.hits[0].metadata, "meta", 4);
        const char *ids[1] = {"one"};
        size_t del = 0;
        delete_ok(ix, ids, 1, &del, NULL);
        assert_int_equal(del, 1);
        search_ok(ix, q, 3, 10, 0, &r);
        assert_int_equal(r.n, 0);
        assert_int_equal(vd_index_len(ix), 0);
        vd_results_free(&r);
        vd_results_free(&r); /* idempotent */
        vd_results_free(NULL);
        vd_index_free(ix);
    }
}

/* ------------------------------------------------------------------ */
/* Delete. */

/* Searches with every model vector (live or not) at k = len and checks no
 * deleted id comes back; returns how many live items were found as their own
 * first hit. */
static size_t exhaustive_check(vd_index *ix, const model *m, vd_distance d)
{
    size_t live = model_live(m), self = 0;
    assert_int_equal(vd_index_len(ix), live);
    uint32_t k = live > VD_MAX_K ? VD_MAX_K : live ? (uint32_t)live : 10;
    vd_results r;
    vd_results_init(&r);
    for (size_t i = 0; i < m->n; i++) {
        search_ok(ix, model_vec(m, i), m->dim, k, 0, &r);
        check_hits(m, d, model_vec(m, i), &r, 1, NULL);
        if (live == 0) assert_int_equal(r.n, 0);
        if (m->live[i] && r.n && hit_is(&r.hits[0], m->ids[i])) self++;
    }
    vd_results_free(&r);
    return self;
}

static void test_delete(void **state)
{
    (void)state;
    enum { N = 200, D = 8 };
    uint64_t s = 51;
    vd_limits lim;
    vd_limits_init(&lim);
    lim.repair_threshold = 1.0; /* tombstones only, until everything is gone */
    for (size_t di = 0; di < 3; di++) {
        vd_distance d = all_dists[di];
        vd_index *ix = make_index("del", D, d, &lim);
        model m;
        model_init(&m, D, N);
        for (size_t i = 0; i < N; i++) {
            snprintf(m.ids[i], sizeof m.ids[i], "d%zu", i);
            rand_vec(&s, model_vec(&m, i), D);
            if (d == VD_DIST_DOT) normalize(model_vec(&m, i), D);
        }
        m.n = N;
        model_add_range(ix, &m, 0, N);

        /* Unknown ids are counted; so is an id listed twice. */
        const char *ids[5] = {"d3", "nope", "d4", "d3", "d199x"};
        size_t del = 99, unk = 99;
        delete_ok(ix, ids, 5, &del, &unk);
        assert_int_equal(del, 2);
        assert_int_equal(unk, 3);
        m.live[3] = m.live[4] = 0;
        assert_int_equal(vd_index_len(ix), N - 2);
        assert_int_equal(vd_index_get(ix, "d3", 2, NULL, NULL, NULL, NULL), VD_ERR_NOT_FOUND);
        delete_ok(ix, ids, 0, &del, &unk);
        assert_int_equal(del, 0);
        assert_int_equal(unk, 0);
        delete_ok(ix, ids, 2, NULL, NULL); /* NULL counters are fine */

        /* Delete 60% in batches, checking exhaustively after each. */
        for (int round = 0; round < 3; round++) {
            const char *batch[40];
            size_t nb = 0;
            for (size_t i = 0; i < N && nb < 40; i++) {
                if (m.live[i] && rng_next(&s) % 3 == 0) {
                    batch[nb++] = m.ids[i];
                    m.live[i] = 0;
                }
            }
            delete_ok(ix, batch, nb, &del, &unk);
            assert_int_equal(del, nb);
            assert_int_equal(unk, 0);
            size_t self = exhaustive_check(ix, &m, d);
            if (self != model_live(&m))
                fail_msg("%s: %zu of %zu live items not found first by their own vector",
                         vd_distance_name(d), model_live(&m) - self, model_live(&m));
        }
        vd_index_stats st;
        vd_index_stats_get(ix, &st);
        assert_int_equal(st.live, model_live(&m));
        assert_int_equal(st.deleted, N - model_live(&m));
        assert_int_equal(st.repairs, 0);
        /* Compact: tombstones gone, same answers. */
        assert_int_equal(vd_index_compact(ix, NULL), VD_OK);
        vd_index_stats_get(ix, &st);
        assert_int_equal(st.deleted, 0);
        assert_int_equal(st.repairs, 1);
        assert_int_equal(exhaustive_check(ix, &m, d), model_live(&m));
        assert_int_equal(vd_index_compact(ix, NULL), VD_OK); /* nothing to do */
        model_free(&m);
        vd_index_free(ix);
    }
}

/* Deleting everything and adding again, for several repair thresholds. */
static void test_delete_all_then_add(void **state)
{
    (void)state;
    enum { N = 60, D = 6 };
    const double thresholds[] = {0.25, 1.0, 0.99};
    uint64_t s = 61;
    for (size_t t = 0; t < sizeof thresholds / sizeof thresholds[0]; t++) {
        for (size_t di = 0; di < 3; di++) {
            vd_distance d = all_dists[di];
            vd_limits lim;
            vd_limits_init(&lim);
            lim.repair_threshold = thresholds[t];
            vd_index *ix = make_index("all", D, d, &lim);
            model m;
            model_init(&m, D, 2 * N);
            for (size_t i = 0; i < 2 * N; i++) {
                snprintf(m.ids[i], sizeof m.ids[i], "a%zu", i);
                rand_vec(&s, model_vec(&m, i), D);
                if (d == VD_DIST_DOT) normalize(model_vec(&m, i), D);
            }
            m.n = N;
            model_add_range(ix, &m, 0, N);
            const char *ids[N];
            for (size_t i = 0; i < N; i++) ids[i] = m.ids[i];
            /* Two batches, the first leaves the entry point behind. */
            delete_ok(ix, ids + N / 2, N - N / 2, NULL, NULL);
            delete_ok(ix, ids, N / 2, NULL, NULL);
            memset(m.live, 0, N);
            assert_int_equal(vd_index_len(ix), 0);
            exhaustive_check(ix, &m, d);
            /* Re-add some old ids and some new ones. */
            m.n = 2 * N;
            model_add_range(ix, &m, N / 2, N + N / 2);
            size_t self = exhaustive_check(ix, &m, d);
            if (self != N)
                fail_msg("threshold %.2f %s: only %zu of %d re-added items findable", thresholds[t],
                         vd_distance_name(d), self, N);
            model_free(&m);
            vd_index_free(ix);
        }
    }
}

/*
 * Upserting the only item (with a changed vector) while tombstones are not
 * yet repaired: the new version must stay searchable.
 */
static void test_upsert_only_item(void **state)
{
    (void)state;
    const double thresholds[] = {0.25, 0.9};
    for (size_t t = 0; t < 2; t++) {
        vd_limits lim;
        vd_limits_init(&lim);
        lim.repair_threshold = thresholds[t];
        vd_index *ix = make_index("solo", 3, VD_DIST_EUCLIDEAN, &lim);
        float a[3] = {1, 0, 0}, b[3] = {0, 1, 0};
        add_one(ix, "solo", a, 3, NULL);
        add_one(ix, "solo", b, 3, NULL);
        assert_int_equal(vd_index_len(ix), 1);
        vd_results r;
        vd_results_init(&r);
        search_ok(ix, b, 3, 10, 0, &r);
        if (r.n != 1) {
            size_t n = r.n, len = vd_index_len(ix);
            vd_results_free(&r);
            vd_index_free(ix);
            fail_msg("repair_threshold %.2f: the upserted only item is not searchable "
                     "(%zu hits, len %zu)",
                     thresholds[t], n, len);
        }
        assert_true(hit_is(&r.hits[0], "solo"));
        assert_true(r.hits[0].distance == 0.0f);
        vd_results_free(&r);
        vd_index_free(ix);
    }
}

/* ------------------------------------------------------------------ */
/* Recall. */

static void test_recall_clustered(void **state)
{
    (void)state;
    enum { N = 2000, D = 32, NQ = 100, NC = 20 };
    uint64_t s = 71;
    float *centres = malloc(NC * D * sizeof *centres), *queries = malloc(NQ * D * sizeof *queries);
    assert_true(centres && queries);
    for (size_t di = 0; di < 3; di++) {
        vd_distance d = all_dists[di];
        rand_vec(&s, centres, NC * D);
        model m;
        model_init(&m, D, N);
        clustered(&s, m.vecs, N, D, centres, NC);
        clustered(&s, queries, NQ, D, centres, NC);
        for (size_t i = 0; i < N; i++) snprintf(m.ids[i], sizeof m.ids[i], "c%zu", i);
        m.n = N;
        vd_index *ix = make_index("recall", D, d, NULL);
        model_add_range(ix, &m, 0, N);
        double rec = measure_recall(ix, &m, d, queries, NQ, 10, 100, NULL);
        print_message("recall@10 ef=100 %s: %.3f\n", vd_distance_name(d), rec);
        if (rec < 0.95) fail_msg("%s recall@10 %.3f < 0.95", vd_distance_name(d), rec);
        model_free(&m);
        vd_index_free(ix);
    }
    free(centres);
    free(queries);
}

/* ------------------------------------------------------------------ */
/* Repair under churn. */

static void churn(vd_distance d)
{
    enum { N0 = 1000, D = 16, ROUNDS = 5, DEL = 100, ADD = 40, UPS = 20, NQ = 100 };
    enum { CAP = N0 + ROUNDS * ADD };
    uint64_t s = 81 + (uint64_t)d;
    vd_limits lim;
    vd_limits_init(&lim);
    lim.repair_threshold = 0.1;
    vd_index *ix = make_index("churn", D, d, &lim);
    model m;
    model_init(&m, D, CAP);
    for (size_t i = 0; i < CAP; i++) {
        snprintf(m.ids[i], sizeof m.ids[i], "r%05zu", i);
        rand_vec(&s, model_vec(&m, i), D);
    }
    m.n = N0;
    model_add_range(ix, &m, 0, N0);
    size_t insertions = N0, deleted_total = 0, misordered = 0;
    vd_results r;
    vd_results_init(&r);
    vd_index_stats st;
    for (int round = 0; round < ROUNDS; round++) {
        /* Delete DEL random live originals, plus two unknown ids. */
        const char *batch[DEL + 2];
        size_t nb = 0;
        while (nb < DEL) {
            size_t i = rng_next(&s) % N0;
            if (!m.live[i]) continue;
            m.live[i] = 0;
            batch[nb++] = m.ids[i];
        }
        batch[nb++] = "unknown-1";
        batch[nb++] = "unknown-2";
        size_t del, unk;
        delete_ok(ix, batch, nb, &del, &unk);
        assert_int_equal(del, DEL);
        assert_int_equal(unk, 2);
        deleted_total += DEL;
        /* Fresh adds take the freed slots. */
        model_add_range(ix, &m, m.n, m.n + ADD);
        m.n += ADD;
        insertions += ADD;
        /* Upserts with changed vectors (tombstone + insert) and one same-vector one. */
        for (int u = 0; u < UPS; u++) {
            size_t i;
            do i = rng_next(&s) % m.n;
            while (!m.live[i]);
            rand_vec(&s, model_vec(&m, i), D);
            char meta[32];
            snprintf(meta, sizeof meta, "m:%s", m.ids[i]);
            add_one(ix, m.ids[i], model_vec(&m, i), D, meta);
            insertions++;
        }
        assert_int_equal(vd_index_len(ix), model_live(&m));
        /* No deleted id in any answer. */
        for (int q = 0; q < 30; q++) {
            float qv[D];
            rand_vec(&s, qv, D);
            search_ok(ix, qv, D, 100, 0, &r);
            check_hits(&m, d, qv, &r, 1, &misordered);
        }
        vd_index_stats_get(ix, &st);
        assert_int_equal(st.live, model_live(&m));
    }
    vd_index_stats_get(ix, &st);
    if (st.repairs == 0) fail_msg("%s: no repair ran at threshold 0.1", vd_distance_name(d));
    assert_int_equal(vd_index_compact(ix, NULL), VD_OK);
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.deleted, 0);
    assert_int_equal(st.live, model_live(&m));
    assert_int_equal(st.live, N0 - deleted_total + ROUNDS * ADD);
    /* Freed slots were reused: far fewer slots than insertions. */
    if (!(st.slots < insertions - deleted_total / 2))
        fail_msg("%s: %zu slots for %zu insertions: slots not reused", vd_distance_name(d),
                 st.slots, insertions);
    assert_true(st.slots >= st.live);

    /* Every survivor is found first by its own vector. */
    size_t lost = 0;
    for (size_t i = 0; i < m.n; i++) {
        if (!m.live[i]) {
            assert_int_equal(vd_index_get(ix, m.ids[i], strlen(m.ids[i]), NULL, NULL, NULL, NULL),
                             VD_ERR_NOT_FOUND);
            continue;
        }
        search_ok(ix, model_vec(&m, i), D, 10, 0, &r);
        check_hits(&m, d, model_vec(&m, i), &r, 1, &misordered);
        if (r.n == 0 || !hit_is(&r.hits[0], m.ids[i])) lost++;
        float got[D];
        assert_int_equal(vd_index_get(ix, m.ids[i], strlen(m.ids[i]), got, NULL, NULL, NULL),
                         VD_OK);
    }
    if (lost)
        fail_msg("%s: %zu survivors not found first by their own vector", vd_distance_name(d),
                 lost);
    float *queries = malloc(NQ * D * sizeof *queries);
    assert_non_null(queries);
    rand_vec(&s, queries, NQ * D);
    double rec = measure_recall(ix, &m, d, queries, NQ, 10, 100, &misordered);
    print_message("churn %s: repairs %llu, slots %zu, live %zu, recall@10 %.3f\n",
                  vd_distance_name(d), (unsigned long long)st.repairs, st.slots, st.live, rec);
    if (rec < 0.9) fail_msg("%s recall after churn %.3f < 0.9", vd_distance_name(d), rec);
    free(queries);
    vd_results_free(&r);
    model_free(&m);
    vd_index_free(ix);
    /* Checked last so the checks above still run when this one fails. */
    if (misordered)
        fail_msg("%s: %zu result lists not sorted by (distance, id)", vd_distance_name(d),
                 misordered);
}

static void test_repair_churn_euclidean(void **state)
{
    (void)state;
    churn(VD_DIST_EUCLIDEAN);
}

static void test_repair_churn_cosine(void **state)
{
    (void)state;
    churn(VD_DIST_COSINE);
}

/* ------------------------------------------------------------------ */
/* Get. */

static void test_get(void **state)
{
    (void)state;
    enum { D = 4 };
    float v[D] = {3, -4, 0, 12};
    for (size_t di = 0; di < 3; di++) {
        vd_index *ix = make_index("get", D, all_dists[di], NULL);
        add_one(ix, "with", v, D, "payload");
        add_one(ix, "without", v, D, NULL);
        float got[D];
        uint8_t *meta = NULL;
        size_t len = 0;
        assert_int_equal(vd_index_get(ix, "with", 4, got, &meta, &len, NULL), VD_OK);
        assert_int_equal(len, 7);
        assert_memory_equal(meta, "payload", 7);
        free(meta);
        if (all_dists[di] == VD_DIST_COSINE) {
            /* The normalised vector: v / 13. */
            for (int j = 0; j < D; j++) assert_float_equal(got[j], v[j] / 13.0f, 1e-6);
        } else {
            assert_memory_equal(got, v, sizeof v);
        }
        meta = (uint8_t *)"junk";
        len = 99;
        assert_int_equal(vd_index_get(ix, "without", 7, NULL, &meta, &len, NULL), VD_OK);
        assert_null(meta);
        assert_int_equal(len, 0);
        assert_int_equal(vd_index_get(ix, "with", 4, NULL, NULL, NULL, NULL), VD_OK);

        vd_error err = {0};
        assert_int_equal(vd_index_get(ix, "missing", 7, got, &meta, &len, &err), VD_ERR_NOT_FOUND);
        assert_int_equal(err.code, VD_ERR_NOT_FOUND);
        assert_true(contains(err.msg, "missing"));
        assert_int_equal(vd_index_get(ix, "wit", 3, NULL, NULL, NULL, NULL), VD_ERR_NOT_FOUND);
        assert_int_equal(vd_index_get(ix, "withx", 5, NULL, NULL, NULL, NULL), VD_ERR_NOT_FOUND);
        assert_int_equal(vd_index_get(ix, "", 0, NULL, NULL, NULL, NULL), VD_ERR_NOT_FOUND);
        /* Ids are byte strings: an embedded NUL is part of the id. */
        vd_item nul = {"a\0b", 3, v, D, NULL, 0};
        add_ok(ix, &nul, 1);
        assert_int_equal(vd_index_get(ix, "a\0b", 3, NULL, NULL, NULL, NULL), VD_OK);
        assert_int_equal(vd_index_get(ix, "a", 1, NULL, NULL, NULL, NULL), VD_ERR_NOT_FOUND);
        assert_int_equal(vd_index_get(ix, "a\0c", 3, NULL, NULL, NULL, NULL), VD_ERR_NOT_FOUND);
        const char *ids[1] = {"with"};
        delete_ok(ix, ids, 1, NULL, NULL);
        assert_int_equal(vd_index_get(ix, "with", 4, NULL, NULL, NULL, NULL), VD_ERR_NOT_FOUND);
        assert_int_equal(vd_index_get(ix, "without", 7, NULL, NULL, NULL, NULL), VD_OK);
        vd_index_free(ix);
    }
}

/* Many ids: the id table grows and deletes shift entries; every id is found. */
static void test_many_ids_lookup(void **state)
{
    (void)state;
    enum { N = 3000, D = 2 };
    vd_limits lim;
    vd_limits_init(&lim);
    lim.repair_threshold = 0.5;
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = D;
    p.distance = VD_DIST_EUCLIDEAN;
    p.ef_construction = 16;
    vd_index *ix = NULL;
    assert_int_equal(vd_index_new(&ix, "ids", 3, &p, &lim, NULL), VD_OK);
    static char ids[N][12];
    static float v[N][D];
    vd_item items[100];
    for (int i = 0; i < N; i += 100) {
        for (int j = 0; j < 100; j++) {
            snprintf(ids[i + j], sizeof ids[0], "%d", i + j);
            v[i + j][0] = (float)(i + j);
            v[i + j][1] = (float)((i + j) % 7);
            items[j] = item(ids[i + j], v[i + j], D, NULL);
        }
        add_ok(ix, items, 100);
    }
    /* Delete every third id. */
    const char *del[100];
    size_t nd = 0, total = 0;
    for (int i = 0; i < N; i += 3) {
        del[nd++] = ids[i];
        if (nd == 100) {
            delete_ok(ix, del, nd, NULL, NULL);
            total += nd;
            nd = 0;
        }
    }
    delete_ok(ix, del, nd, NULL, NULL);
    total += nd;
    assert_int_equal(vd_index_len(ix), N - total);
    for (int i = 0; i < N; i++) {
        float got[D];
        vd_err rc = vd_index_get(ix, ids[i], strlen(ids[i]), got, NULL, NULL, NULL);
        if (i % 3 == 0) {
            assert_int_equal(rc, VD_ERR_NOT_FOUND);
        } else {
            if (rc != VD_OK) fail_msg("id %s lost", ids[i]);
            assert_memory_equal(got, v[i], sizeof got);
        }
    }
    vd_index_free(ix);
}

/* ------------------------------------------------------------------ */
/* Determinism. */

static void apply_sequence(vd_index *ix, size_t dim, uint64_t seed)
{
    uint64_t s = seed;
    float *v = malloc(dim * sizeof *v);
    assert_non_null(v);
    char id[16], meta[16];
    for (int i = 0; i < 400; i++) {
        rand_vec(&s, v, dim);
        snprintf(id, sizeof id, "x%d", (int)(rng_next(&s) % 350)); /* some upserts */
        snprintf(meta, sizeof meta, "m%d", i);
        add_one(ix, id, v, dim, meta);
        if (i % 25 == 24) {
            const char *ids[10];
            char buf[10][16];
            for (int j = 0; j < 10; j++) {
                snprintf(buf[j], sizeof buf[j], "x%d", (int)(rng_next(&s) % 350));
                ids[j] = buf[j];
            }
            delete_ok(ix, ids, 10, NULL, NULL);
        }
    }
    free(v);
}

static void compare_indexes(vd_index *a, vd_index *b, size_t dim)
{
    vd_index_stats sa, sb;
    vd_index_stats_get(a, &sa);
    vd_index_stats_get(b, &sb);
    assert_int_equal(sa.live, sb.live);
    assert_int_equal(sa.deleted, sb.deleted);
    assert_int_equal(sa.slots, sb.slots);
    assert_int_equal(sa.max_level, sb.max_level);
    assert_int_equal(sa.repairs, sb.repairs);
    vd_results ra, rb;
    vd_results_init(&ra);
    vd_results_init(&rb);
    uint64_t s = 999;
    float *q = malloc(dim * sizeof *q);
    assert_non_null(q);
    for (int i = 0; i < 60; i++) {
        rand_vec(&s, q, dim);
        /* Low ef: the answer depends on the exact graph, not only on the data. */
        uint32_t ef = i % 2 ? 10 : 0;
        search_ok(a, q, dim, 10, ef, &ra);
        search_ok(b, q, dim, 10, ef, &rb);
        assert_int_equal(ra.n, rb.n);
        for (size_t h = 0; h < ra.n; h++) {
            assert_int_equal(ra.hits[h].id_len, rb.hits[h].id_len);
            assert_memory_equal(ra.hits[h].id, rb.hits[h].id, ra.hits[h].id_len);
            assert_memory_equal(&ra.hits[h].distance, &rb.hits[h].distance, sizeof(float));
            assert_int_equal(ra.hits[h].metadata_len, rb.hits[h].metadata_len);
        }
    }
    free(q);
    vd_results_free(&ra);
    vd_results_free(&rb);
}

static vd_index *make_det_index(vd_distance d)
{
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = 20;
    p.distance = d;
    p.m = 8;
    p.ef_construction = 60;
    vd_index *ix = NULL;
    assert_int_equal(vd_index_new(&ix, "determinism", 11, &p, NULL, NULL), VD_OK);
    return ix;
}

static void test_determinism(void **state)
{
    (void)state;
    for (size_t di = 0; di < 3; di++) {
        vd_index *a = make_det_index(all_dists[di]), *b = make_det_index(all_dists[di]);
        apply_sequence(a, 20, 5);
        apply_sequence(b, 20, 5);
        assert_int_equal(vd_index_params_get(a)->seed, vd_index_params_get(b)->seed);
        compare_indexes(a, b, 20);
        assert_int_equal(vd_index_compact(a, NULL), VD_OK);
        assert_int_equal(vd_index_compact(b, NULL), VD_OK);
        compare_indexes(a, b, 20);
        vd_index_free(a);
        vd_index_free(b);
    }
}

/* The same sequence built with the scalar kernels and with the best SIMD
 * ones gives the same graph (distance.h: bit-identical kernels). */
static void test_determinism_across_isas(void **state)
{
    (void)state;
    const char *old = getenv("VECTORD_SIMD");
    char *saved = old ? strdup(old) : NULL;
    for (size_t di = 0; di < 3; di++) {
        setenv("VECTORD_SIMD", "scalar", 1);
        vd_index *a = make_det_index(all_dists[di]);
        setenv("VECTORD_SIMD", "auto", 1);
        vd_index *b = make_det_index(all_dists[di]);
        apply_sequence(a, 20, 6);
        apply_sequence(b, 20, 6);
        compare_indexes(a, b, 20);
        vd_index_free(a);
        vd_index_free(b);
    }
    if (saved)
        setenv("VECTORD_SIMD", saved, 1);
    else
        unsetenv("VECTORD_SIMD");
    free(saved);
}

/* ------------------------------------------------------------------ */
/* Concurrency: 4 readers, 1 writer. */

enum { CD = 16, C_ROUNDS = 120, C_ADD = 12, C_DEL = 6, C_READERS = 4 };

typedef struct conc {
    vd_index *ix;
    atomic_int issued; /* ids c0..c(issued-1) may have been added */
    atomic_int done;
    atomic_long searches;
    atomic_long failures;
    char first_failure[128];
    pthread_mutex_t fail_lock;
} conc;

static void conc_fail(conc *c, const char *what)
{
    if (atomic_fetch_add(&c->failures, 1) == 0) {
        pthread_mutex_lock(&c->fail_lock);
        snprintf(c->first_failure, sizeof c->first_failure, "%.120s", what);
        pthread_mutex_unlock(&c->fail_lock);
    }
}

/* The vector of id c<n>, version ver: reproducible from the id alone. */
static void conc_vec(int n, int ver, float *v)
{
    uint64_t s = (uint64_t)n * 1000003u + (uint64_t)ver;
    rand_vec(&s, v, CD);
}

static void *conc_writer(void *arg)
{
    conc *c = arg;
    uint64_t s = 3;
    vd_item items[C_ADD + 2];
    float vecs[C_ADD + 2][CD];
    char ids[C_ADD + 2][16], metas[C_ADD + 2][24];
    for (int round = 0; round < C_ROUNDS; round++) {
        int base = atomic_load(&c->issued);
        atomic_store(&c->issued, base + C_ADD);
        size_t n = 0;
        for (int i = 0; i < C_ADD; i++, n++) {
            snprintf(ids[n], sizeof ids[n], "c%d", base + i);
            snprintf(metas[n], sizeof metas[n], "m:c%d", base + i);
            conc_vec(base + i, 0, vecs[n]);
            items[n] = item(ids[n], vecs[n], CD, metas[n]);
        }
        /* Two upserts of earlier ids with new vectors. */
        for (int u = 0; u < 2 && base > 0; u++, n++) {
            int id = (int)(rng_next(&s) % (uint64_t)base);
            snprintf(ids[n], sizeof ids[n], "c%d", id);
            snprintf(metas[n], sizeof metas[n], "m:c%d", id);
            conc_vec(id, round + 1, vecs[n]);
            items[n] = item(ids[n], vecs[n], CD, metas[n]);
        }
        vd_error err = {0};
        if (vd_index_add(c->ix, items, n, &err)) conc_fail(c, err.msg);
        const char *del[C_DEL];
        size_t lens[C_DEL];
        char dbuf[C_DEL][16];
        for (int i = 0; i < C_DEL; i++) {
            snprintf(dbuf[i], sizeof dbuf[i], "c%d",
                     (int)(rng_next(&s) % (uint64_t)(base + C_ADD)));
            del[i] = dbuf[i];
            lens[i] = strlen(dbuf[i]);
        }
        if (vd_index_delete(c->ix, del, lens, C_DEL, NULL, NULL, &err)) conc_fail(c, err.msg);
        if (round % 40 == 39 && vd_index_compact(c->ix, &err)) conc_fail(c, err.msg);
    }
    atomic_store(&c->done, 1);
    return NULL;
}

static int parse_cid(const char *id, size_t len)
{
    if (len < 2 || len > 10 || id[0] != 'c') return -1;
    int n = 0;
    for (size_t i = 1; i < len; i++) {
        if (id[i] < '0' || id[i] > '9') return -1;
        n = n * 10 + (id[i] - '0');
    }
    return n;
}

static void *conc_reader(void *arg)
{
    conc *c = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    vd_results r;
    vd_results_init(&r);
    float q[CD];
    long local = 0;
    do {
        rand_vec(&s, q, CD);
        vd_error err = {0};
        uint32_t k = 1 + (uint32_t)(rng_next(&s) % 30);
        if (vd_index_search(c->ix, q, CD, k, 0, &r, &err)) {
            conc_fail(c, err.msg);
            continue;
        }
        int issued = atomic_load(&c->issued);
        if (r.n > k) conc_fail(c, "more hits than k");
        if (!results_sorted(&r)) {
            char why[128] = "results not sorted";
            for (size_t h = 1; h < r.n; h++) {
                const vd_hit *a = &r.hits[h - 1], *b = &r.hits[h];
                if (a->distance > b->distance ||
                    (a->distance == b->distance &&
                     id_cmp(a->id, a->id_len, b->id, b->id_len) >= 0)) {
                    snprintf(why, sizeof why, "results not sorted: %.*s %a before %.*s %a",
                             (int)a->id_len, a->id, (double)a->distance, (int)b->id_len, b->id,
                             (double)b->distance);
                    break;
                }
            }
            conc_fail(c, why);
        }
        for (size_t h = 0; h < r.n; h++) {
            int n = parse_cid(r.hits[h].id, r.hits[h].id_len);
            if (n < 0 || n >= issued) conc_fail(c, "hit with an id never added");
            char meta[24];
            snprintf(meta, sizeof meta, "m:%.*s", (int)r.hits[h].id_len, r.hits[h].id);
            if (r.hits[h].metadata_len != strlen(meta) ||
                memcmp(r.hits[h].metadata, meta, strlen(meta)) != 0)
                conc_fail(c, "hit metadata does not belong to its id");
            if (!(r.hits[h].distance >= -1e-5f && r.hits[h].distance <= 2.00001f))
                conc_fail(c, "bad distance");
        }
        /* Point lookups too. */
        char id[16];
        int n = (int)(rng_next(&s) % (uint64_t)(issued + 1));
        snprintf(id, sizeof id, "c%d", n);
        uint8_t *meta = NULL;
        size_t mlen = 0;
        float v[CD];
        vd_err rc = vd_index_get(c->ix, id, strlen(id), v, &meta, &mlen, NULL);
        if (rc == VD_OK) {
            char want[24];
            snprintf(want, sizeof want, "m:%s", id);
            if (mlen != strlen(want) || memcmp(meta, want, mlen) != 0)
                conc_fail(c, "get: metadata does not belong to its id");
            free(meta);
        } else if (rc != VD_ERR_NOT_FOUND) {
            conc_fail(c, "get failed");
        }
        /* Stats, read without the lock, are one write's set: a slot is live,
         * deleted or free, so live + deleted never exceeds slots. */
        vd_index_stats st;
        vd_index_stats_get(c->ix, &st);
        if (st.live + st.deleted > st.slots) conc_fail(c, "stats mix two writes");
        (void)vd_index_len(c->ix);
        local++;
    } while (!atomic_load(&c->done));
    atomic_fetch_add(&c->searches, local);
    vd_results_free(&r);
    return NULL;
}

static void test_concurrent_readers_writer(void **state)
{
    (void)state;
    conc c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.fail_lock, NULL);
    atomic_init(&c.issued, 0);
    atomic_init(&c.done, 0);
    atomic_init(&c.searches, 0);
    atomic_init(&c.failures, 0);
    vd_limits lim;
    vd_limits_init(&lim);
    lim.repair_threshold = 0.2;
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = CD;
    p.distance = VD_DIST_COSINE; /* euclidean ties: test_search_euclidean_ties_after_sqrt */
    p.ef_construction = 64;
    assert_int_equal(vd_index_new(&c.ix, "conc", 4, &p, &lim, NULL), VD_OK);
    /* A few items first, so readers have something to find from the start. */
    float v[CD];
    for (int i = 0; i < 20; i++) {
        char id[8], meta[12];
        snprintf(id, sizeof id, "c%d", i);
        snprintf(meta, sizeof meta, "m:c%d", i);
        conc_vec(i, 0, v);
        add_one(c.ix, id, v, CD, meta);
    }
    atomic_store(&c.issued, 20);

    pthread_t readers[C_READERS], writer;
    for (int i = 0; i < C_READERS; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, conc_reader, &c), 0);
    assert_int_equal(pthread_create(&writer, NULL, conc_writer, &c), 0);
    pthread_join(writer, NULL);
    for (int i = 0; i < C_READERS; i++) pthread_join(readers[i], NULL);

    long failures = atomic_load(&c.failures);
    print_message("concurrency: %ld searches, %zu live at the end\n", atomic_load(&c.searches),
                  vd_index_len(c.ix));
    if (failures) fail_msg("%ld failures, first: %s", failures, c.first_failure);
    assert_true(atomic_load(&c.searches) > 0);
    vd_index_stats st;
    vd_index_stats_get(c.ix, &st);
    assert_true(st.repairs > 0);
    /* Afterwards the index is consistent: every live item finds itself. */
    vd_results r;
    vd_results_init(&r);
    size_t live = 0, self = 0;
    int issued = atomic_load(&c.issued);
    for (int n = 0; n < issued; n++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", n);
        float got[CD];
        if (vd_index_get(c.ix, id, strlen(id), got, NULL, NULL, NULL) != VD_OK) continue;
        live++;
        search_ok(c.ix, got, CD, 1, 0, &r);
        self += r.n == 1 && hit_is(&r.hits[0], id) && fabsf(r.hits[0].distance) < 1e-5f;
    }
    assert_int_equal(live, vd_index_len(c.ix));
    if (self < live)
        fail_msg("%zu of %zu live items not found by their own vector", live - self, live);
    vd_results_free(&r);
    vd_index_free(c.ix);
    pthread_mutex_destroy(&c.fail_lock);
}

/* An optional argument selects tests by name (cmocka pattern, e.g. "test_search*"). */
int main(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_defaults),
        cmocka_unit_test(test_distance_parse),
        cmocka_unit_test(test_index_new_errors),
        cmocka_unit_test(test_index_new_accessors),
        cmocka_unit_test(test_add_rejects_bad_items),
        cmocka_unit_test(test_zero_vector_by_distance),
        cmocka_unit_test(test_cosine_tiny_nonzero_vector),
        cmocka_unit_test(test_add_limits),
        cmocka_unit_test(test_upsert_changed_vector),
        cmocka_unit_test(test_upsert_same_vector_new_metadata),
        cmocka_unit_test(test_duplicate_id_in_batch),
        cmocka_unit_test(test_metadata_with_hits),
        cmocka_unit_test(test_search_self_and_distances),
        cmocka_unit_test(test_search_ties_by_id),
        cmocka_unit_test(test_duplicate_vectors_no_sink),
        cmocka_unit_test(test_search_euclidean_ties_after_sqrt),
        cmocka_unit_test(test_search_k_and_ef),
        cmocka_unit_test(test_search_bad_query),
        cmocka_unit_test(test_huge_vectors),
        cmocka_unit_test(test_search_empty_index),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_delete_all_then_add),
        cmocka_unit_test(test_upsert_only_item),
        cmocka_unit_test(test_recall_clustered),
        cmocka_unit_test(test_repair_churn_euclidean),
        cmocka_unit_test(test_repair_churn_cosine),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_many_ids_lookup),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_determinism_across_isas),
        cmocka_unit_test(test_concurrent_readers_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
