/*
 * fuzz_golhv1.c - libFuzzer target for the reader of the Go service's
 * index files (src/import/golhv1.c, schemas/go-lhv1.md).
 *
 * Two modes, chosen by the first byte of the input:
 *   'G'   the rest is raw coder/hnsw Graph.Export bytes; the target puts
 *         them behind "LHV1", a fixed envelope and its length, so that
 *         mutations reach the graph parser without first breaking the
 *         envelope length;
 *   other the input is a whole file.
 *
 * Whatever opens is exercised: every item is read (as many as the info
 * says, each with the file's dimension, ids non-empty), the reader is
 * rewound and read again to the same ids, and a small file is built into
 * a vd_index and searched. A refusal must carry a documented code and a
 * message. A broken oracle calls abort() so libFuzzer records the input.
 *
 * Outside VD_FUZZ builds it is linked with replay_main.c: the CTest
 * fuzz_replay_golhv1 replays corpus-golhv1/ in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/index.h"

#include "import/golhv1.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_golhv1: oracle failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Files with more items are only read, not built (time per input). */
#define MAX_BUILD 200

static void check_refusal(vd_err rc, const vd_error *err)
{
    CHECK(rc == VD_ERR_CORRUPT || rc == VD_ERR_VERSION || rc == VD_ERR_UNKNOWN_DISTANCE ||
          rc == VD_ERR_INVALID_VECTOR || rc == VD_ERR_NOMEM);
    CHECK(err->code == rc);
    CHECK(err->msg[0] != '\0');
}

static void build_and_search(const uint8_t *data, size_t size, const vd_golhv1_info *in)
{
    vd_index *ix = NULL;
    vd_error err;
    vd_err rc = vd_golhv1_build(&ix, data, size, "fuzz", 4, NULL, 7, NULL, &err);
    if (rc) {
        /* The reader accepted the file; what vectord may still refuse:
         * a dimension, id or metadata over the limits, no dimension. */
        CHECK(rc == VD_ERR_INVALID_PARAMS || rc == VD_ERR_INVALID_VECTOR || rc == VD_ERR_LIMIT ||
              rc == VD_ERR_CORRUPT || rc == VD_ERR_NOMEM);
        CHECK(err.msg[0] != '\0');
        CHECK(ix == NULL);
        return;
    }
    CHECK(vd_index_len(ix) <= in->items);
    CHECK(vd_index_len(ix) + in->duplicates >= in->items);
    uint32_t dim = vd_index_params_get(ix)->dimension;
    float *q = malloc((size_t)dim * sizeof *q);
    CHECK(q);
    for (uint32_t i = 0; i < dim; i++) q[i] = (float)(1 + i % 3) * (i % 2 ? -0.5f : 1.0f);
    vd_results res;
    vd_results_init(&res);
    CHECK(vd_index_search(ix, q, dim, 5, 0, &res, &err) == VD_OK);
    CHECK(res.n <= 5 && res.n <= vd_index_len(ix));
    vd_results_free(&res);
    free(q);
    vd_index_free(ix);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
    vd_golhv1 *r = NULL;
    vd_error err;
    vd_error_clear(&err);
    vd_err rc = vd_golhv1_open(&r, data, size, &err);
    if (rc) {
        check_refusal(rc, &err);
        CHECK(r == NULL);
        return;
    }
    const vd_golhv1_info *in = vd_golhv1_info_get(r);
    CHECK(strlen(vd_golhv1_notes(r)) < 4096);
    vd_golhv1_item it;
    size_t n = 0;
    int more;
    const char *first = NULL;
    size_t first_len = 0;
    while ((more = vd_golhv1_next(r, &it, &err)) == 1) {
        CHECK(it.id_len > 0 && it.dimension == in->dimension);
        CHECK(it.id >= (const char *)data && it.id + it.id_len <= (const char *)data + size);
        volatile float sink = 0;
        for (size_t i = 0; i < it.dimension; i++) sink += it.vector[i]; /* ASan: in bounds */
        (void)sink;
        CHECK((it.metadata == NULL) == (it.meta_json == NULL));
        if (n == 0) {
            first = it.id;
            first_len = it.id_len;
        }
        n++;
    }
    if (more < 0) {
        /* Only metadata conversion can fail here. */
        CHECK(err.code == VD_ERR_CORRUPT || err.code == VD_ERR_LIMIT || err.code == VD_ERR_NOMEM);
    } else {
        CHECK(n == in->items);
        vd_golhv1_rewind(r);
        if (n) {
            CHECK(vd_golhv1_next(r, &it, &err) == 1);
            CHECK(it.id == first && it.id_len == first_len);
        }
    }
    size_t items = in->items;
    vd_golhv1_info copy = *in;
    vd_golhv1_close(r);
    if (more == 0 && items <= MAX_BUILD) build_and_search(data, size, &copy);
}

/* 'G' mode: a fixed envelope in front of the graph bytes. */
static void fuzz_graph(const uint8_t *g, size_t glen)
{
    static const char env[] = "{\"version\":1,\"params\":{\"name\":\"g\"},\"metadata\":"
                              "{\"a\":{\"t\":[1,2.5,\"x\"]},\"b\":null}}";
    size_t el = sizeof env - 1, len = 8 + el + glen;
    uint8_t *f = malloc(len); /* exact size, so ASan sees any read past the end */
    CHECK(f);
    memcpy(f, "LHV1", 4);
    f[4] = 0;
    f[5] = 0;
    f[6] = (uint8_t)(el >> 8);
    f[7] = (uint8_t)el;
    memcpy(f + 8, env, el);
    if (glen) memcpy(f + 8 + el, g, glen);
    fuzz_file(f, len);
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1 && data[0] == 'G')
        fuzz_graph(data + 1, size - 1);
    else
        fuzz_file(data, size);
    return 0;
}
