/*
 * test_golhv1.c - the Go service's index files (src/import/golhv1.c,
 * schemas/go-lhv1.md): files written here byte by byte as coder/hnsw
 * v0.6.1 Graph.Export writes them; what real files contain is tolerated,
 * every truncation and every overlong length is refused with the field
 * named. tests/gofixtures checks files written by the real library.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/golhv1.h"
#include "vectord/lhv1.h"

/* ---- a file writer ------------------------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* Go's binary.PutVarint. */
static void varint(buf *b, int64_t x)
{
    uint64_t u = (uint64_t)x << 1 ^ (uint64_t)(x >> 63);
    while (u >= 0x80) {
        uint8_t c = (uint8_t)(u | 0x80);
        put(b, &c, 1);
        u >>= 7;
    }
    uint8_t c = (uint8_t)u;
    put(b, &c, 1);
}

static void str(buf *b, const char *s)
{
    varint(b, (int64_t)strlen(s));
    put(b, s, strlen(s));
}

static void vec(buf *b, const float *v, size_t n)
{
    varint(b, (int64_t)n);
    put(b, v, n * 4);
}

static void header(buf *b, int64_t m, double ml, int64_t ef, const char *dist, int64_t layers)
{
    varint(b, 1);
    varint(b, m);
    put(b, &ml, 8);
    varint(b, ef);
    str(b, dist);
    varint(b, layers);
}

/* A node with its neighbour keys (NULL-terminated list). */
static void nodev(buf *b, const char *key, const float *v, size_t dim, const char *const *nbrs)
{
    str(b, key);
    vec(b, v, dim);
    size_t n = 0;
    while (nbrs && nbrs[n]) n++;
    varint(b, (int64_t)n);
    for (size_t i = 0; i < n; i++) str(b, nbrs[i]);
}

/* "LHV1", envelope length, envelope, graph. Caller frees. */
static uint8_t *file(const char *env, const buf *g, size_t *len)
{
    size_t el = strlen(env);
    *len = 8 + el + g->n;
    uint8_t *f = malloc(*len);
    assert_non_null(f);
    memcpy(f, "LHV1", 4);
    f[4] = (uint8_t)(el >> 24);
    f[5] = (uint8_t)(el >> 16);
    f[6] = (uint8_t)(el >> 8);
    f[7] = (uint8_t)el;
    memcpy(f + 8, env, el);
    if (g->n) memcpy(f + 8 + el, g->p, g->n);
    return f;
}

static const float V1[3] = {1.0f, 2.0f, 3.0f};
static const float V2[3] = {-0.5f, 0.25f, 1e-30f};
static const float V3[3] = {1e18f, -1.0f, 0.1f}; /* large, within vectord's norm limit */

static const char ENV[] =
    "{\"version\":1,\"params\":{\"name\":\"docs\",\"dimension\":3,\"m\":16,\"ef_search\":20,"
    "\"distance\":\"euclidean\"},\"metadata\":{\"a\":{\"title\":\"A \\u00e9\",\"n\":[1,2.5,true]},"
    "\"c\":\"just a string\",\"b\":null,\"gone\":{\"x\":1}}}";

/* Three items in layer 0 (c's neighbours include a deleted key and
 * itself), two in layer 1 (one missing from layer 0), an empty layer 2. */
static uint8_t *sample(size_t *len, const char *env, const char *dist)
{
    buf g = {0};
    header(&g, 16, 0.25, 20, dist, 3);
    varint(&g, 3);
    nodev(&g, "a", V1, 3, (const char *[]){"b", "c", NULL});
    nodev(&g, "b", V2, 3, (const char *[]){"a", NULL});
    nodev(&g, "c", V3, 3, (const char *[]){"a", "deleted", "c", NULL});
    varint(&g, 2);
    nodev(&g, "a", V1, 3, (const char *[]){"ghost", NULL});
    nodev(&g, "ghost", V2, 3, (const char *[]){"a", NULL});
    varint(&g, 0);
    uint8_t *f = file(env, &g, len);
    free(g.p);
    return f;
}

/* ---- tests -------------------------------------------------------------- */

static void test_varint_encoding(void **state)
{
    (void)state;
    /* The examples of schemas/go-lhv1.md. */
    buf b = {0};
    varint(&b, 1);
    varint(&b, 16);
    varint(&b, 20);
    varint(&b, 100);
    varint(&b, -1);
    static const uint8_t want[] = {0x02, 0x20, 0x28, 0xc8, 0x01, 0x01};
    assert_int_equal(b.n, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    free(b.p);
    double ml = 0.25;
    static const uint8_t ml_le[] = {0, 0, 0, 0, 0, 0, 0xd0, 0x3f};
    assert_memory_equal(&ml, ml_le, 8);
}

static void test_read_items(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = sample(&len, ENV, "euclidean");
    vd_golhv1 *r = NULL;
    vd_error err;
    assert_int_equal(vd_golhv1_open(&r, f, len, &err), VD_OK);
    const vd_golhv1_info *in = vd_golhv1_info_get(r);
    assert_int_equal(in->version, 1);
    assert_string_equal(in->name, "docs");
    assert_int_equal(in->dimension, 3);
    assert_int_equal(in->distance, VD_DIST_EUCLIDEAN);
    assert_int_equal(in->m, 16);
    assert_int_equal(in->ef_search, 20);
    assert_true(in->ml == 0.25);
    assert_int_equal(in->layers, 3);
    assert_int_equal(in->items, 3);
    assert_int_equal(in->empty_layers, 1);
    assert_int_equal(in->self_loops, 1);
    assert_int_equal(in->dangling, 1); /* "deleted"; layer 1's a->ghost is in its layer */
    assert_int_equal(in->upper_only, 1);
    assert_int_equal(in->meta_orphans, 1);
    assert_int_equal(in->with_metadata, 2);
    assert_int_equal(in->duplicates, 0);
    assert_non_null(strstr(vd_golhv1_notes(r), "self-loops"));
    assert_non_null(strstr(vd_golhv1_notes(r), "upper-layer"));

    const float *want[] = {V1, V2, V3};
    const char *ids[] = {"a", "b", "c"};
    vd_golhv1_item it;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 3; i++) {
            assert_int_equal(vd_golhv1_next(r, &it, &err), 1);
            assert_int_equal(it.id_len, 1);
            assert_memory_equal(it.id, ids[i], 1);
            assert_int_equal(it.dimension, 3);
            assert_memory_equal(it.vector, want[i], 12); /* bit for bit */
            if (i == 0) {
                assert_string_equal(it.meta_json, "{\"title\":\"A \xc3\xa9\",\"n\":[1,2.5,true]}");
                assert_non_null(it.metadata);
                assert_int_equal(it.metadata[0], 0x82); /* a two-pair msgpack map */
            } else if (i == 1) {
                assert_null(it.meta_json); /* null is no metadata */
                assert_null(it.metadata);
            } else {
                assert_string_equal(it.meta_json, "\"just a string\"");
                assert_int_equal(it.metadata[0], 0xa0 | 13);
            }
        }
        assert_int_equal(vd_golhv1_next(r, &it, &err), 0);
        assert_int_equal(vd_golhv1_next(r, &it, &err), 0);
        vd_golhv1_rewind(r);
    }
    vd_index_params p;
    vd_golhv1_params(r, &p);
    assert_int_equal(p.dimension, 3);
    assert_int_equal(p.m, 16);
    assert_int_equal(p.ef_search, 64); /* Go's 20 raised to vectord's default */
    assert_int_equal(p.distance, VD_DIST_EUCLIDEAN);
    vd_golhv1_close(r);
    vd_golhv1_close(NULL);
    free(f);
}

static void test_build(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = sample(&len, ENV, "euclidean");
    vd_index *ix = NULL;
    vd_golhv1_info info;
    vd_error err;
    vd_err brc = vd_golhv1_build(&ix, f, len, NULL, 0, NULL, 2, &info, &err);
    if (brc) fail_msg("build: %s", err.msg);
    assert_string_equal(vd_index_name(ix), "docs");
    assert_int_equal(vd_index_len(ix), 3);
    assert_int_equal(info.items, 3);
    float v[3];
    uint8_t *meta;
    size_t ml;
    assert_int_equal(vd_index_get(ix, "c", 1, v, &meta, &ml, &err), VD_OK);
    assert_memory_equal(v, V3, 12);
    assert_int_equal(ml, 14);
    assert_int_equal(meta[0], 0xa0 | 13);
    free(meta);
    assert_int_equal(vd_index_get(ix, "b", 1, v, &meta, &ml, &err), VD_OK);
    assert_null(meta);
    assert_int_equal(vd_index_get(ix, "ghost", 5, v, NULL, NULL, &err), VD_ERR_NOT_FOUND);
    vd_results res;
    vd_results_init(&res);
    assert_int_equal(vd_index_search(ix, V2, 3, 3, 0, &res, &err), VD_OK);
    assert_int_equal(res.n, 3);
    assert_memory_equal(res.hits[0].id, "b", 1);
    vd_results_free(&res);
    vd_index_free(ix);

    /* A name given wins over the envelope's. */
    assert_int_equal(vd_golhv1_build(&ix, f, len, "renamed", 7, NULL, 0, NULL, &err), VD_OK);
    assert_string_equal(vd_index_name(ix), "renamed");
    vd_index_free(ix);
    free(f);
}

static void test_cosine_and_duplicates(void **state)
{
    (void)state;
    buf g = {0};
    header(&g, 4, 0.25, 20, "cosine", 1);
    varint(&g, 3);
    nodev(&g, "x", V1, 3, NULL);
    nodev(&g, "y", V2, 3, NULL);
    nodev(&g, "x", V3, 3, NULL); /* a duplicate: the later one wins, as in Go's Import */
    size_t len;
    uint8_t *f = file("{}", &g, &len);
    vd_index *ix = NULL;
    vd_golhv1_info info;
    vd_error err;
    assert_int_equal(vd_golhv1_build(&ix, f, len, "c", 1, NULL, 0, &info, &err), VD_OK);
    assert_int_equal(info.duplicates, 1);
    assert_int_equal(info.distance, VD_DIST_COSINE);
    assert_int_equal(info.env_dimension, -1);
    assert_int_equal(vd_index_len(ix), 2);
    assert_int_equal(vd_index_params_get(ix)->m, 4);
    float v[3];
    assert_int_equal(vd_index_get(ix, "x", 1, v, NULL, NULL, &err), VD_OK);
    double n = sqrt((double)V3[0] * V3[0] + (double)V3[1] * V3[1] + (double)V3[2] * V3[2]);
    assert_true(fabs(v[0] - V3[0] / n) < 1e-6); /* normalised by vectord */
    vd_index_free(ix);
    /* No name anywhere. */
    assert_int_equal(vd_golhv1_build(&ix, f, len, NULL, 0, NULL, 0, NULL, &err),
                     VD_ERR_INVALID_PARAMS);
    assert_non_null(strstr(err.msg, "params.name"));
    free(f);
    free(g.p);
}

static void test_empty_graphs(void **state)
{
    (void)state;
    vd_error err;
    vd_index *ix = NULL;
    size_t len;
    /* Everything deleted: layers left with no nodes. */
    buf g = {0};
    header(&g, 16, 0.25, 20, "cosine", 2);
    varint(&g, 0);
    varint(&g, 0);
    uint8_t *f = file("{\"version\":1,\"params\":{\"name\":\"e\",\"dimension\":384}}", &g, &len);
    vd_golhv1_info info;
    assert_int_equal(vd_golhv1_build(&ix, f, len, NULL, 0, NULL, 0, &info, &err), VD_OK);
    assert_int_equal(info.empty_layers, 2);
    assert_int_equal(vd_index_len(ix), 0);
    assert_int_equal(vd_index_params_get(ix)->dimension, 384);
    vd_index_free(ix);
    free(f);
    /* No layer and no dimension: nothing to create. */
    free(g.p);
    g = (buf){0};
    header(&g, 16, 0.25, 20, "cosine", 0);
    f = file("{}", &g, &len);
    vd_golhv1 *r;
    assert_int_equal(vd_golhv1_open(&r, f, len, &err), VD_OK);
    assert_int_equal(vd_golhv1_info_get(r)->dimension, 0);
    vd_golhv1_close(r);
    assert_int_not_equal(vd_golhv1_build(&ix, f, len, "x", 1, NULL, 0, NULL, &err), VD_OK);
    free(f);
    free(g.p);
}

/* Opens f and expects code, with a message containing want (if any). */
static void refused(const uint8_t *f, size_t len, vd_err code, const char *want)
{
    vd_golhv1 *r = (vd_golhv1 *)(uintptr_t)1;
    vd_error err;
    vd_error_clear(&err);
    vd_err rc = vd_golhv1_open(&r, f, len, &err);
    if (rc != code || (want && !strstr(err.msg, want)))
        fail_msg("len %zu: got %d \"%s\", want %d \"%s\"", len, rc, err.msg, code,
                 want ? want : "");
    assert_ptr_equal(r, (vd_golhv1 *)(uintptr_t)1); /* untouched */
    assert_int_equal(err.code, code);
    assert_true(err.msg[0] != '\0');
}

/* Opens env + g as a file and expects code and want, as refused() does. */
static void refused_graph(const char *env, const buf *g, vd_err code, const char *want)
{
    size_t len;
    uint8_t *f = file(env, g, &len);
    refused(f, len, code, want);
    free(f);
}

/* *g := a graph of one layer holding one node of dimension 3. */
static void one_node(buf *g, const char *dist, const char *key, const float *v)
{
    *g = (buf){0};
    header(g, 16, 0.25, 20, dist, 1);
    varint(g, 1);
    nodev(g, key, v, 3, NULL);
}

static void test_every_truncation(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = sample(&len, ENV, "euclidean");
    size_t elen = strlen(ENV);
    for (size_t n = 0; n < len; n++) {
        /* An exact-size copy, so ASan sees any read past the end. */
        uint8_t *t = malloc(n ? n : 1);
        memcpy(t, f, n);
        refused(t, n, VD_ERR_CORRUPT,
                n < 8          ? "header"
                : n < 8 + elen ? "envelope length"
                               : "graph: ");
        free(t);
    }
    free(f);
}

static void test_field_names(void **state)
{
    (void)state;
    buf g = {0};

    /* A vector length far beyond the file. */
    header(&g, 16, 0.25, 20, "euclidean", 1);
    varint(&g, 1);
    str(&g, "a");
    varint(&g, 1000000);
    put(&g, V1, 12);
    varint(&g, 0);
    refused_graph("{}", &g, VD_ERR_CORRUPT,
                  "layer 0 node 0 vector length: length 1000000 needs 4000000 bytes");
    free(g.p);

    /* A node count beyond the file. */
    g = (buf){0};
    header(&g, 16, 0.25, 20, "euclidean", 1);
    varint(&g, 1LL << 40);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "layer 0 node count");
    free(g.p);

    /* Negative lengths. */
    g = (buf){0};
    header(&g, 16, 0.25, 20, "euclidean", -1);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "layer count: negative length -1");
    free(g.p);
    g = (buf){0};
    header(&g, 16, 0.25, 20, "euclidean", 1);
    varint(&g, 1);
    str(&g, "a");
    vec(&g, V1, 3);
    varint(&g, 1);
    varint(&g, -5);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "layer 0 node 0 neighbour 0: negative length -5");
    free(g.p);

    /* A neighbour count beyond the file. */
    g = (buf){0};
    header(&g, 16, 0.25, 20, "euclidean", 1);
    varint(&g, 1);
    str(&g, "a");
    vec(&g, V1, 3);
    varint(&g, 7);
    str(&g, "a");
    refused_graph("{}", &g, VD_ERR_CORRUPT, "layer 0 node 0 neighbour count");
    free(g.p);

    /* A varint of eleven bytes. */
    g = (buf){0};
    varint(&g, 1);
    for (int i = 0; i < 10; i++) put(&g, "\x80", 1);
    put(&g, "\x01", 1);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "graph: M: varint overflows");
    free(g.p);

    /* Dimensions that differ. */
    g = (buf){0};
    header(&g, 16, 0.25, 20, "euclidean", 2);
    varint(&g, 2);
    nodev(&g, "a", V1, 3, NULL);
    nodev(&g, "b", V1, 2, NULL);
    varint(&g, 0);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "layer 0 node 1 vector length: 2, layer 0 has 3");
    free(g.p);
    g = (buf){0};
    header(&g, 16, 0.25, 20, "euclidean", 2);
    varint(&g, 1);
    nodev(&g, "a", V1, 3, NULL);
    varint(&g, 1);
    nodev(&g, "a", V1, 1, NULL);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "layer 1 node 0 vector length: 1");
    free(g.p);
    one_node(&g, "euclidean", "a", V1);
    refused_graph("{\"params\":{\"dimension\":4}}", &g, VD_ERR_CORRUPT, "params.dimension 4");
    /* Bytes after the last layer. */
    put(&g, "\0", 1);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "1 bytes after the last layer");
    free(g.p);

    /* Ids vectord cannot hold. */
    one_node(&g, "euclidean", "", V1);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "layer 0 node 0 key: empty");
    free(g.p);
    one_node(&g, "euclidean", "\xff", V1);
    refused_graph("{}", &g, VD_ERR_CORRUPT, "not valid UTF-8");
    free(g.p);

    /* Vectors vectord refuses. */
    float bad[3] = {1, NAN, 2}, zero[3] = {0, 0, 0};
    one_node(&g, "euclidean", "n", bad);
    refused_graph("{}", &g, VD_ERR_INVALID_VECTOR, "(id \"n\") vector[1]: not a finite number");
    free(g.p);
    one_node(&g, "cosine", "z", zero);
    refused_graph("{}", &g, VD_ERR_INVALID_VECTOR, "zero vector under cosine");
    free(g.p);

    /* Versions and distances. */
    g = (buf){0};
    varint(&g, 2);
    refused_graph("{}", &g, VD_ERR_VERSION, "graph: version 2");
    free(g.p);
    g = (buf){0};
    header(&g, 16, 0.25, 20, "manhattan", 0);
    refused_graph("{}", &g, VD_ERR_UNKNOWN_DISTANCE, "\"manhattan\"");
    refused_graph("{\"version\":2}", &g, VD_ERR_VERSION, "envelope: version 2");
    free(g.p);
    g = (buf){0};
    header(&g, 16, 0.25, 20, "cosine", 0);
    refused_graph("{\"params\":{\"distance\":\"euclidean\"}}", &g, VD_ERR_CORRUPT,
                  "params.distance \"euclidean\" but the graph's is \"cosine\"");

    /* Envelopes. */
    static const struct {
        const char *env, *want;
    } envs[] = {
        {"[1]", "not a JSON object"},
        {"{\"a\":", "envelope: invalid JSON"},
        {"{\"params\":[]}", "params: not an object"},
        {"{\"params\":{\"dimension\":-3}}", "params.dimension: not a non-negative integer"},
        {"{\"params\":{\"name\":7}}", "params.name: not a string"},
        {"{\"metadata\":[]}", "metadata: not an object"},
        {"{\"format\":\"LHV1\",\"format_version\":1}", "a vectord LHV1 file"},
        {"{\"a\":1,\"a\":2}", "envelope: invalid JSON"},
    };
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        refused_graph(envs[i].env, &g, VD_ERR_CORRUPT, envs[i].want);
    }
    /* A file that is not LHV1 at all, and an envelope length beyond it. */
    refused((const uint8_t *)"LHV2\0\0\0\0", 8, VD_ERR_CORRUPT, "magic");
    refused((const uint8_t *)"LHV1\0\0\0\x09{}", 10, VD_ERR_CORRUPT, "envelope length 9");
    free(g.p);
}

/* What vectord writes is told apart and refused. */
static void test_own_file_refused(void **state)
{
    (void)state;
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = 3;
    vd_index *ix;
    vd_error err;
    assert_int_equal(vd_index_new(&ix, "own", 3, &p, NULL, &err), VD_OK);
    vd_item it = {"a", 1, V1, 3, NULL, 0};
    assert_int_equal(vd_index_add(ix, &it, 1, &err), VD_OK);
    uint8_t *f;
    size_t len;
    assert_int_equal(vd_lhv1_write_buf(ix, &f, &len, &err), VD_OK);
    refused(f, len, VD_ERR_CORRUPT, "a vectord LHV1 file");
    free(f);
    vd_index_free(ix);
}

/* Every byte of the graph and every length varint replaced by extremes:
 * refused with a documented code, or read whole (never a crash). */
static void test_mutations(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = sample(&len, ENV, "euclidean");
    size_t g0 = 8 + strlen(ENV);
    static const uint8_t vals[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff};
    uint8_t *t = malloc(len);
    for (size_t i = g0; i < len; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            memcpy(t, f, len);
            t[i] = vals[k];
            vd_golhv1 *r = NULL;
            vd_error err;
            vd_err rc = vd_golhv1_open(&r, t, len, &err);
            if (rc) {
                assert_true(rc == VD_ERR_CORRUPT || rc == VD_ERR_VERSION ||
                            rc == VD_ERR_UNKNOWN_DISTANCE || rc == VD_ERR_INVALID_VECTOR);
                assert_null(r);
                continue;
            }
            vd_golhv1_item it;
            size_t n = 0;
            int more;
            while ((more = vd_golhv1_next(r, &it, &err)) == 1) n++;
            assert_int_equal(more, 0);
            assert_int_equal(n, vd_golhv1_info_get(r)->items);
            vd_golhv1_close(r);
        }
    }
    free(t);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_encoding), cmocka_unit_test(test_read_items),
        cmocka_unit_test(test_build),           cmocka_unit_test(test_cosine_and_duplicates),
        cmocka_unit_test(test_empty_graphs),    cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_field_names),     cmocka_unit_test(test_own_file_refused),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
