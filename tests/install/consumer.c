/*
 * consumer.c - a program embedding libvectord, built by tests/install/run.sh
 * outside the source tree against the installed headers and library only.
 *
 * It does what an embedding program does - create an index, add, search,
 * checkpoint to a buffer and a file, load back - and checks every answer,
 * plus the version of the headers against the library's. Exit 0 when all
 * holds, 1 with a message naming the first check that failed.
 *
 *   consumer DIR      (DIR: where to write a checkpoint file)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vectord/error.h>
#include <vectord/index.h>
#include <vectord/lhv1.h>
#include <vectord/version.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "consumer: %s:%d: check failed: %s (last error: %s: %s)\n", __FILE__,  \
                    __LINE__, #cond, vd_err_code(err.code), err.msg);                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static vd_error err;

/* The ids of a search for q, nearest first, as "a,b,c". */
static void search(vd_index *ix, const float *q, uint32_t k, char *out, size_t cap)
{
    vd_results r;
    vd_results_init(&r);
    CHECK(vd_index_search(ix, q, 3, k, 0, &r, &err) == VD_OK);
    out[0] = '\0';
    for (size_t i = 0; i < r.n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%.*s", i ? "," : "", (int)r.hits[i].id_len, r.hits[i].id);
    }
    vd_results_free(&r);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: consumer DIR\n");
        return 2;
    }

    /* Headers and library agree. */
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", VECTORD_VERSION_MAJOR, VECTORD_VERSION_MINOR,
             VECTORD_VERSION_PATCH);
    CHECK(strcmp(v, VECTORD_VERSION) == 0);
    CHECK(vd_version() == VECTORD_VERSION_NUM);
    CHECK(strcmp(vd_version_string(), VECTORD_VERSION) == 0);
#if VECTORD_VERSION_NUM < VECTORD_VERSION_ENCODE(0, 1, 0)
#error "VECTORD_VERSION_NUM is not usable in #if"
#endif

    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = 3;
    p.distance = VD_DIST_EUCLIDEAN;
    vd_index *ix = NULL;
    vd_index_params bad = p;
    bad.dimension = 0;
    CHECK(vd_index_new(&ix, "bad", 3, &bad, NULL, &err) == VD_ERR_INVALID_PARAMS);
    CHECK(ix == NULL);
    CHECK(strcmp(vd_err_code(err.code), "invalid_params") == 0);
    CHECK(vd_index_new(&ix, "embedded", 8, &p, NULL, &err) == VD_OK);

    static const float vecs[4][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}};
    static const char *ids[4] = {"x", "y", "z", "xy"};
    vd_item items[4];
    for (int i = 0; i < 4; i++) items[i] = (vd_item){ids[i], strlen(ids[i]), vecs[i], 3, NULL, 0};
    items[3].metadata = (const uint8_t *)"meta";
    items[3].metadata_len = 4;
    CHECK(vd_index_add(ix, items, 4, &err) == VD_OK);
    CHECK(vd_index_len(ix) == 4);

    char got[256];
    const float q[3] = {0.9f, 0.1f, 0};
    search(ix, q, 2, got, sizeof got);
    CHECK(strcmp(got, "x,xy") == 0);

    /* A checkpoint in memory: no position in the envelope, loads back equal. */
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(vd_lhv1_write_buf(ix, &buf, &len, &err) == VD_OK);
    char *env = NULL;
    CHECK(vd_lhv1_verify(buf, len, &env, &err) == VD_OK);
    CHECK(strstr(env, "\"kafka\": null") != NULL);
    CHECK(strstr(env, "\"name\": \"embedded\"") != NULL);
    free(env);
    vd_index *copy = NULL;
    CHECK(vd_lhv1_read(buf, len, NULL, &copy, &err) == VD_OK);
    CHECK(vd_index_len(copy) == 4);
    search(copy, q, 4, got, sizeof got);
    CHECK(strcmp(got, "x,xy,y,z") == 0);
    uint8_t *again = NULL;
    size_t again_len = 0;
    CHECK(vd_lhv1_write_buf(copy, &again, &again_len, &err) == VD_OK);
    CHECK(again_len == len && memcmp(again, buf, len) == 0);
    free(again);
    vd_index_free(copy);

    /* A damaged checkpoint is refused as corrupt. */
    buf[len - 1] ^= 1;
    copy = NULL;
    CHECK(vd_lhv1_read(buf, len, NULL, &copy, &err) == VD_ERR_CORRUPT && copy == NULL);
    free(buf);

    /* A checkpoint file, and what a loaded item still has. */
    char path[4096];
    snprintf(path, sizeof path, "%s/embedded.lhv1", argv[1]);
    CHECK(vd_lhv1_write_file(ix, path, &err) == VD_OK);
    CHECK(vd_lhv1_read_file(path, NULL, &copy, &err) == VD_OK);
    float vec[3];
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    CHECK(vd_index_get(copy, "xy", 2, vec, &meta, &meta_len, &err) == VD_OK);
    CHECK(meta_len == 4 && memcmp(meta, "meta", 4) == 0 && vec[0] == 1 && vec[1] == 1);
    free(meta);
    CHECK(vd_index_get(copy, "nope", 4, NULL, NULL, NULL, &err) == VD_ERR_NOT_FOUND);
    CHECK(strcmp(vd_err_code(VD_ERR_NOT_FOUND), "not_found") == 0);
    vd_index_free(copy);

    const char *del[1] = {"x"};
    size_t del_len[1] = {1};
    size_t deleted = 0;
    CHECK(vd_index_delete(ix, del, del_len, 1, &deleted, NULL, &err) == VD_OK && deleted == 1);
    search(ix, q, 1, got, sizeof got);
    CHECK(strcmp(got, "xy") == 0);
    vd_index_free(ix);

    printf("consumer: libvectord %s ok\n", vd_version_string());
    return 0;
}
