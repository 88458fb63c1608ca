/*
 * test_lhv1.c - LHV1 checkpoint files (src/lhv1/lhv1.c, src/index/payload.c).
 *
 * Three groups:
 * - round trips: save, load, save again gives the same bytes and the
 *   loaded index answers searches exactly as the original (ids, distances
 *   bit for bit, metadata), for every distance and every slot state, and
 *   keeps evolving identically (same RNG state and free list);
 * - determinism: the same command sequence gives the same file;
 * - refusals: damaged files come back as VD_ERR_CORRUPT or VD_ERR_VERSION
 *   with a message naming the problem, never a crash. Structural damage is
 *   made with a valid checksum (the CRC-32C in the envelope recomputed), so
 *   the payload parser itself is what refuses it.
 *
 * Files are edited through a small walker of the payload layout that
 * schemas/lhv1.md documents, independent of payload.c.
 *
 * Tests marked "Regression" pin down bugs these tests found in src/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "lhv1/lhv1_position.h"
#include "vectord/index.h"
#include "vectord/lhv1.h"

/* ------------------------------------------------------------------ */
/* Building indexes. */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float rng_float(uint64_t *s)
{
    return (float)(rng_next(s) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

static vd_index *new_index(const char *name, uint32_t dim, uint32_t m, vd_distance d,
                           double repair_threshold)
{
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = dim;
    p.m = m;
    p.ef_construction = 40;
    p.ef_search = 32;
    p.distance = d;
    vd_limits lim;
    vd_limits_init(&lim);
    lim.repair_threshold = repair_threshold;
    vd_index *ix = NULL;
    vd_error err;
    assert_int_equal(vd_index_new(&ix, name, strlen(name), &p, &lim, &err), VD_OK);
    return ix;
}

/* Adds ids "id<first>".."id<first+n-1>"; every third item carries metadata. */
static void add_items(vd_index *ix, int first, int n, uint64_t seed)
{
    uint32_t dim = vd_index_params_get(ix)->dimension;
    float *v = malloc((size_t)dim * sizeof *v);
    assert_non_null(v);
    uint64_t s = seed * 2654435761u + 1;
    for (int i = first; i < first + n; i++) {
        char id[32], meta[32];
        for (uint32_t j = 0; j < dim; j++) v[j] = rng_float(&s);
        int idl = snprintf(id, sizeof id, "id%d", i);
        int ml = snprintf(meta, sizeof meta, "meta-%d", i * 7);
        vd_item it = {id, (size_t)idl, v, dim, NULL, 0};
        if (i % 3 == 0) {
            it.metadata = (const uint8_t *)meta;
            it.metadata_len = (size_t)ml;
        }
        vd_error err;
        assert_int_equal(vd_index_add(ix, &it, 1, &err), VD_OK);
    }
    free(v);
}

static void delete_ids(vd_index *ix, int first, int n, int step)
{
    for (int i = first; i < first + n; i += step) {
        char id[32];
        const char *ids[1] = {id};
        size_t lens[1] = {(size_t)snprintf(id, sizeof id, "id%d", i)};
        size_t deleted = 0;
        vd_error err;
        assert_int_equal(vd_index_delete(ix, ids, lens, 1, &deleted, NULL, &err), VD_OK);
        assert_int_equal(deleted, 1);
    }
}

/* The index most refusal tests damage: tombstones, free slots, metadata,
 * several levels (m = 3 makes one node in three climb). */
static vd_index *mixed_index(void)
{
    vd_index *ix = new_index("mixed", 4, 3, VD_DIST_EUCLIDEAN, 2.0);
    add_items(ix, 0, 30, 7);
    delete_ids(ix, 0, 30, 5);
    vd_error err;
    assert_int_equal(vd_index_compact(ix, &err), VD_OK);
    add_items(ix, 100, 2, 8); /* reuses two of the six free slots */
    delete_ids(ix, 1, 3, 2);  /* two tombstones */
    return ix;
}

/* ------------------------------------------------------------------ */
/* Files in memory. */

typedef struct file {
    uint8_t *p;
    size_t len;
} file;

/*
 * When LHV1_TEST_DUMP names a directory, every file the tests save or
 * expect refused is also written there as <n>.<expected>.bin, expected
 * being "ok" or the vd_err_code of the refusal, so that another reader
 * (tests/tools/lhv1_reader.py --check-dir) can be held to the same verdicts.
 */
static void dump(const uint8_t *p, size_t len, const char *expected)
{
    static unsigned seq;
    const char *dir = getenv("LHV1_TEST_DUMP");
    if (!dir || !*dir) return;
    char path[512];
    snprintf(path, sizeof path, "%s/%05u.%s.bin", dir, seq++, expected);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static file save(vd_index *ix, const vd_lhv1_kafka *kafka)
{
    file f = {NULL, 0};
    vd_error err;
    assert_int_equal(vd_lhv1_write_buf_pos(ix, kafka, &f.p, &f.len, &err), VD_OK);
    assert_non_null(f.p);
    assert_true(f.len > 8);
    dump(f.p, f.len, "ok");
    return f;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t env_len(const file *f)
{
    return get_be32(f->p + 4);
}

static uint8_t *payload(const file *f)
{
    return f->p + 8 + env_len(f);
}

static size_t payload_len(const file *f)
{
    return f->len - 8 - env_len(f);
}

/* A malloc'd NUL-terminated copy of the envelope text. */
static char *envelope(const file *f)
{
    char *s = malloc(env_len(f) + 1);
    assert_non_null(s);
    memcpy(s, f->p + 8, env_len(f));
    s[env_len(f)] = '\0';
    return s;
}

/* A new file: header, env, then pay[0..plen). */
static file assemble(const char *env, const uint8_t *pay, size_t plen)
{
    size_t elen = strlen(env);
    file f = {malloc(8 + elen + plen + 1), 8 + elen + plen};
    assert_non_null(f.p);
    memcpy(f.p, "LHV1", 4);
    f.p[4] = (uint8_t)(elen >> 24);
    f.p[5] = (uint8_t)(elen >> 16);
    f.p[6] = (uint8_t)(elen >> 8);
    f.p[7] = (uint8_t)elen;
    memcpy(f.p + 8, env, elen);
    if (plen) memcpy(f.p + 8 + elen, pay, plen);
    return f;
}

/*
 * Returns a malloc'd copy of env where the value of the first "key" is
 * replaced by value (raw JSON text). The value ends at the next ',' or '}'
 * (scalars only). Fails the test when the key is absent.
 */
static char *env_set(const char *env, const char *key, const char *value)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(env, pat);
    if (!at) {
        fail_msg("envelope has no %s: %s", pat, env);
        return NULL;
    }
    const char *v = at + strlen(pat), *end = v + strcspn(v, ",}");
    size_t n = (size_t)(v - env) + strlen(value) + strlen(end) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(v - env), env, value, end);
    return out;
}

/* Replaces f by a file with the same payload and one envelope value changed. */
static void edit_env(file *f, const char *key, const char *value)
{
    char *env = envelope(f), *env2 = env_set(env, key, value);
    file g = assemble(env2, payload(f), payload_len(f));
    free(env);
    free(env2);
    free(f->p);
    *f = g;
}

/* After the payload changed (bytes or length): new length and CRC-32C. */
static void fix_envelope(file *f, const uint8_t *pay, size_t plen)
{
    char num[32], *env = envelope(f);
    snprintf(num, sizeof num, "%zu", plen);
    char *e1 = env_set(env, "length", num);
    snprintf(num, sizeof num, "%u", vd_crc32c(0, pay, plen));
    char *e2 = env_set(e1, "crc32c", num);
    file g = assemble(e2, pay, plen);
    free(env);
    free(e1);
    free(e2);
    free(f->p);
    *f = g;
}

/* Re-seals f after its payload was patched in place. */
static void reseal(file *f)
{
    size_t plen = payload_len(f);
    uint8_t *copy = malloc(plen + 1);
    assert_non_null(copy);
    memcpy(copy, payload(f), plen);
    fix_envelope(f, copy, plen);
    free(copy);
}

/* ------------------------------------------------------------------ */
/* A walker over payload v1, written from schemas/lhv1.md. */

enum {
    P_VERSION = 0,
    P_DIM = 4,
    P_M = 8,
    P_DISTANCE = 20,
    P_SEED = 24,
    P_NSLOTS = 40,
    P_LIVE = 44,
    P_DELETED = 48,
    P_ENTRY = 52,
    P_MAX_LEVEL = 56,
    P_NFREE = 68,
    P_FREE_LIST = 72,
};

typedef struct slot_at {
    size_t off;           /* the 4-byte slot header */
    uint8_t state, level; /* 0 free, 1 live, 2 deleted */
    size_t id_off;        /* id bytes (live) */
    uint32_t id_len, meta_len;
    size_t vec_off;       /* dimension float32 */
    size_t links_off[32]; /* per level: the u32 count, then the links */
} slot_at;

/* Fills slots[0..nslots) from payload p; returns nslots. */
static uint32_t walk(const uint8_t *p, size_t len, slot_at *slots, uint32_t max)
{
    uint32_t dim = get_le32(p + P_DIM), nslots = get_le32(p + P_NSLOTS);
    assert_true(nslots <= max);
    size_t off = P_FREE_LIST + 4 * (size_t)get_le32(p + P_NFREE);
    for (uint32_t s = 0; s < nslots; s++) {
        slot_at *a = &slots[s];
        memset(a, 0, sizeof *a);
        a->off = off;
        a->state = p[off];
        a->level = p[off + 1];
        off += 4;
        if (a->state == 0) continue;
        a->id_len = get_le32(p + off);
        a->meta_len = get_le32(p + off + 4);
        a->id_off = off + 8;
        off += 8 + a->id_len + a->meta_len;
        a->vec_off = off;
        off += 4 * (size_t)dim;
        for (int l = 0; l <= a->level; l++) {
            a->links_off[l] = off;
            off += 4 + 4 * (size_t)get_le32(p + off);
        }
    }
    assert_int_equal(off, len);
    return nslots;
}

/* The first slot in state with at least min_links links at level. */
static const slot_at *find_slot(const slot_at *slots, uint32_t n, const uint8_t *p, int state,
                                int level, uint32_t min_links)
{
    for (uint32_t s = 0; s < n; s++)
        if (slots[s].state == state && slots[s].level >= level &&
            get_le32(p + slots[s].links_off[level]) >= min_links)
            return &slots[s];
    fail_msg("no slot in state %d with %u links at level %d", state, min_links, level);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Checks. */

static void assert_has(const char *msg, const char *needle)
{
    if (!strstr(msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
}

/* Loads f, which must be refused with code and a message containing needle;
 * *out must be left untouched. */
static void assert_refused_quiet(const file *f, vd_err code, const char *needle)
{
    vd_index *sentinel = (vd_index *)&sentinel, *ix = sentinel;
    vd_error err;
    vd_error_clear(&err);
    vd_err rc = vd_lhv1_read(f->p, f->len, NULL, &ix, &err);
    if (rc != code)
        fail_msg("expected %s, got %s: %s", vd_err_code(code), vd_err_code(rc), err.msg);
    assert_int_equal(err.code, code);
    assert_has(err.msg, needle);
    assert_ptr_equal(ix, sentinel);
}

static void assert_refused(const file *f, vd_err code, const char *needle)
{
    dump(f->p, f->len, vd_err_code(code));
    assert_refused_quiet(f, code, needle);
}

static vd_index *load(const file *f, vd_lhv1_kafka *kafka)
{
    vd_index *ix = NULL;
    vd_error err;
    vd_error_clear(&err);
    vd_err rc = vd_lhv1_read_pos(f->p, f->len, NULL, &ix, kafka, &err);
    if (rc) fail_msg("load failed: %s: %s", vd_err_code(rc), err.msg);
    assert_non_null(ix);
    return ix;
}

/* Searches both with the same queries: ids, distances (bitwise) and
 * metadata must agree. Returns the number of hits compared. */
static size_t assert_same_search(vd_index *a, vd_index *b, uint64_t seed)
{
    uint32_t dim = vd_index_params_get(a)->dimension;
    assert_int_equal(dim, vd_index_params_get(b)->dimension);
    float *q = malloc((size_t)dim * sizeof *q);
    assert_non_null(q);
    vd_results ra, rb;
    vd_results_init(&ra);
    vd_results_init(&rb);
    size_t hits = 0;
    for (int t = 0; t < 8; t++) {
        for (uint32_t j = 0; j < dim; j++) q[j] = rng_float(&seed);
        vd_error err;
        assert_int_equal(vd_index_search(a, q, dim, 10, 0, &ra, &err), VD_OK);
        assert_int_equal(vd_index_search(b, q, dim, 10, 0, &rb, &err), VD_OK);
        assert_int_equal(ra.n, rb.n);
        for (size_t i = 0; i < ra.n; i++) {
            assert_int_equal(ra.hits[i].id_len, rb.hits[i].id_len);
            assert_memory_equal(ra.hits[i].id, rb.hits[i].id, ra.hits[i].id_len);
            assert_memory_equal(&ra.hits[i].distance, &rb.hits[i].distance, sizeof(float));
            assert_int_equal(ra.hits[i].metadata_len, rb.hits[i].metadata_len);
            if (ra.hits[i].metadata_len)
                assert_memory_equal(ra.hits[i].metadata, rb.hits[i].metadata,
                                    ra.hits[i].metadata_len);
        }
        hits += ra.n;
    }
    vd_results_free(&ra);
    vd_results_free(&rb);
    free(q);
    return hits;
}

static void assert_same_stats(vd_index *a, vd_index *b)
{
    vd_index_stats sa, sb;
    vd_index_stats_get(a, &sa);
    vd_index_stats_get(b, &sb);
    assert_int_equal(sa.live, sb.live);
    assert_int_equal(sa.deleted, sb.deleted);
    assert_int_equal(sa.slots, sb.slots);
    assert_int_equal(sa.max_level, sb.max_level);
    assert_int_equal(sa.repairs, sb.repairs);
    const vd_index_params *pa = vd_index_params_get(a), *pb = vd_index_params_get(b);
    assert_int_equal(pa->dimension, pb->dimension);
    assert_int_equal(pa->m, pb->m);
    assert_int_equal(pa->ef_construction, pb->ef_construction);
    assert_int_equal(pa->ef_search, pb->ef_search);
    assert_int_equal(pa->distance, pb->distance);
    assert_int_equal(pa->seed, pb->seed);
    assert_string_equal(vd_index_name(a), vd_index_name(b));
}

static void assert_same_file(const file *a, const file *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->p, b->p, a->len);
}

/*
 * The round trip every test below relies on: save, load, save again gives
 * the same bytes; the copy has the same stats and answers the same.
 * Returns the loaded copy (caller frees).
 */
static vd_index *round_trip(vd_index *ix, const vd_lhv1_kafka *kafka)
{
    file a = save(ix, kafka);
    vd_lhv1_kafka k;
    vd_index *copy = load(&a, &k);
    file b = save(copy, kafka);
    assert_same_file(&a, &b);
    assert_same_stats(ix, copy);
    assert_same_search(ix, copy, 99);
    free(a.p);
    free(b.p);
    return copy;
}

/* ------------------------------------------------------------------ */
/* Round trips. */

static void test_crc32c_check_value(void **state)
{
    (void)state;
    /* The check value of CRC-32C (Castagnoli) that schemas/lhv1.md quotes. */
    assert_int_equal(vd_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(vd_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(vd_crc32c(vd_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void round_trip_distance(vd_distance d)
{
    vd_index *ix = new_index("rt", 12, 6, d, 2.0);
    add_items(ix, 0, 150, (uint64_t)d + 1);
    delete_ids(ix, 3, 120, 7); /* tombstones: the high threshold keeps them */
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.deleted, 18);
    assert_true(st.max_level >= 1);
    vd_index *copy = round_trip(ix, NULL);
    assert_true(assert_same_search(ix, copy, 5) > 0);
    /* Deleted ids stay gone, live ones come back with their metadata. */
    vd_error err;
    assert_int_equal(vd_index_get(copy, "id3", 3, NULL, NULL, NULL, &err), VD_ERR_NOT_FOUND);
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    float v[12];
    assert_int_equal(vd_index_get(copy, "id6", 3, v, &meta, &meta_len, &err), VD_OK);
    assert_int_equal(meta_len, 7);
    assert_memory_equal(meta, "meta-42", 7);
    free(meta);
    vd_index_free(copy);
    vd_index_free(ix);
}

static void test_round_trip_cosine(void **state)
{
    (void)state;
    round_trip_distance(VD_DIST_COSINE);
}

static void test_round_trip_euclidean(void **state)
{
    (void)state;
    round_trip_distance(VD_DIST_EUCLIDEAN);
}

static void test_round_trip_dot(void **state)
{
    (void)state;
    round_trip_distance(VD_DIST_DOT);
}

/* A loaded index must keep evolving exactly like the original: same level
 * RNG state, same free list order, same graph. */
static void test_round_trip_after_compact(void **state)
{
    (void)state;
    vd_index *ix = new_index("compacted", 8, 4, VD_DIST_COSINE, 2.0);
    add_items(ix, 0, 80, 3);
    delete_ids(ix, 0, 80, 4);
    vd_error err;
    assert_int_equal(vd_index_compact(ix, &err), VD_OK);
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.deleted, 0);
    assert_int_equal(st.slots - st.live, 20); /* free slots */
    assert_int_equal(st.repairs, 1);
    vd_index *copy = round_trip(ix, NULL);

    add_items(ix, 500, 25, 11); /* reuses the 20 free slots, then grows */
    add_items(copy, 500, 25, 11);
    delete_ids(ix, 501, 10, 3);
    delete_ids(copy, 501, 10, 3);
    file a = save(ix, NULL), b = save(copy, NULL);
    assert_same_file(&a, &b);
    assert_true(assert_same_search(ix, copy, 17) > 0);
    free(a.p);
    free(b.p);
    vd_index_free(copy);
    vd_index_free(ix);
}

static void test_round_trip_metadata(void **state)
{
    (void)state;
    vd_index *ix = new_index("meta", 3, 4, VD_DIST_DOT, 0.25);
    /* Binary metadata with NUL bytes, an id with multi-byte UTF-8. */
    const uint8_t meta[] = {0x82, 0xa1, 'a', 0x00, 0xc0, 0xff, 0x00};
    const char id[] = "caf\xc3\xa9-\xe2\x82\xac";
    float v[3] = {0.5f, -1.0f, 2.0f}, w[3] = {1.0f, 1.0f, 1.0f};
    vd_item items[2] = {{id, sizeof id - 1, v, 3, meta, sizeof meta}, {"plain", 5, w, 3, NULL, 0}};
    vd_error err;
    assert_int_equal(vd_index_add(ix, items, 2, &err), VD_OK);
    vd_index *copy = round_trip(ix, NULL);
    uint8_t *m = NULL;
    size_t ml = 0;
    float got[3];
    assert_int_equal(vd_index_get(copy, id, sizeof id - 1, got, &m, &ml, &err), VD_OK);
    assert_int_equal(ml, sizeof meta);
    assert_memory_equal(m, meta, sizeof meta);
    assert_memory_equal(got, v, sizeof v);
    free(m);
    m = (uint8_t *)"unchanged";
    assert_int_equal(vd_index_get(copy, "plain", 5, NULL, &m, &ml, &err), VD_OK);
    assert_null(m);
    assert_int_equal(ml, 0);
    vd_index_free(copy);
    vd_index_free(ix);
}

/* Regression: the payload header check asked for 72 bytes after the
 * 4-byte version where 68 follow, so a never-filled index did not load. */
static void test_round_trip_empty(void **state)
{
    (void)state;
    vd_index *ix = new_index("empty", 16, 16, VD_DIST_COSINE, 0.25);
    file a = save(ix, NULL);
    assert_int_equal(payload_len(&a), 72); /* header only: no free list, no slot */
    vd_index *copy = NULL;
    vd_error err;
    vd_err rc = vd_lhv1_read(a.p, a.len, NULL, &copy, &err);
    if (rc) {
        free(a.p);
        vd_index_free(ix);
        fail_msg("an empty index does not load back: %s: %s", vd_err_code(rc), err.msg);
    }
    file b = save(copy, NULL);
    assert_same_file(&a, &b);
    assert_int_equal(vd_index_len(copy), 0);
    float q[16] = {1.0f};
    vd_results r;
    vd_results_init(&r);
    assert_int_equal(vd_index_search(copy, q, 16, 5, 0, &r, &err), VD_OK);
    assert_int_equal(r.n, 0);
    vd_results_free(&r);
    free(a.p);
    free(b.p);
    vd_index_free(copy);
    vd_index_free(ix);
}

/* Only tombstones (entry point a tombstone), then only free slots. */
static void test_round_trip_all_deleted(void **state)
{
    (void)state;
    vd_index *ix = new_index("gone", 4, 4, VD_DIST_EUCLIDEAN, 2.0);
    add_items(ix, 0, 10, 1);
    delete_ids(ix, 0, 10, 1);
    assert_int_equal(vd_index_len(ix), 0);
    vd_index *copy = round_trip(ix, NULL);
    vd_index_free(copy);
    vd_error err;
    assert_int_equal(vd_index_compact(ix, &err), VD_OK);
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.slots, 10);
    assert_int_equal(st.max_level, -1);
    copy = round_trip(ix, NULL);
    vd_index_free(copy);
    vd_index_free(ix);
}

static void test_kafka_round_trip(void **state)
{
    (void)state;
    vd_index *ix = new_index("kafka", 4, 4, VD_DIST_COSINE, 0.25);
    add_items(ix, 0, 5, 2);
    vd_lhv1_kafka in = {"", 7, 1234567890123LL}, out;
    memset(in.topic, 'x', 255); /* the longest topic that fits */
    in.topic[0] = 't';
    file f = save(ix, &in);
    vd_index *copy = load(&f, &out);
    assert_string_equal(out.topic, in.topic);
    assert_int_equal(out.partition, 7);
    assert_int_equal(out.offset, 1234567890123LL);
    vd_index_free(copy);
    free(f.p);

    vd_lhv1_kafka zero = {"vectors.docs", 0, 0};
    f = save(ix, &zero);
    copy = load(&f, &out);
    assert_string_equal(out.topic, "vectors.docs");
    assert_int_equal(out.partition, 0);
    assert_int_equal(out.offset, 0);
    vd_index_free(copy);
    free(f.p);

    /* NULL, or a negative offset: "nowhere", written as null. */
    f = save(ix, NULL);
    char *env = envelope(&f);
    assert_has(env, "\"kafka\":null");
    free(env);
    memset(&out, 0x55, sizeof out);
    copy = load(&f, &out);
    assert_int_equal(out.offset, -1);
    assert_int_equal(out.partition, -1);
    assert_string_equal(out.topic, "");
    vd_index_free(copy);
    vd_lhv1_kafka none = {"ignored", 3, -1};
    file g = save(ix, &none);
    assert_same_file(&f, &g);
    free(f.p);
    free(g.p);
    vd_index_free(ix);
}

static int collect_sink(void *ctx, const void *buf, size_t len)
{
    file *f = ctx;
    uint8_t *p = realloc(f->p, f->len + len);
    if (!p) return -1;
    memcpy(p + f->len, buf, len);
    f->p = p;
    f->len += len;
    return 0;
}

static int failing_sink(void *ctx, const void *buf, size_t len)
{
    (void)buf;
    (void)len;
    return ++*(int *)ctx >= 2 ? -1 : 0;
}

static void test_write_stream(void **state)
{
    (void)state;
    vd_index *ix = mixed_index();
    file a = save(ix, NULL), b = {NULL, 0};
    vd_error err;
    assert_int_equal(vd_lhv1_write(ix, collect_sink, &b, &err), VD_OK);
    assert_same_file(&a, &b);
    int calls = 0;
    assert_int_equal(vd_lhv1_write(ix, failing_sink, &calls, &err), VD_ERR_IO);
    assert_true(calls >= 2);
    assert_has(err.msg, "output failed");
    /* The envelope verify returns is the one in the file. */
    char *env = NULL;
    assert_int_equal(vd_lhv1_verify(a.p, a.len, &env, &err), VD_OK);
    assert_non_null(env);
    assert_has(env, "\"format\": \"LHV1\"");
    assert_has(env, "\"name\": \"mixed\"");
    free(env);
    free(a.p);
    free(b.p);
    vd_index_free(ix);
}

static void test_write_read_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_lhv1.XXXXXX", path[64], bad[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/idx.lhv1", dir);
    vd_index *ix = mixed_index();
    vd_lhv1_kafka k = {"topic-a", 1, 99}, out;
    vd_error err;
    assert_int_equal(vd_lhv1_write_file_pos(ix, &k, path, &err), VD_OK);
    /* A second write replaces the first (rename over it). */
    assert_int_equal(vd_lhv1_write_file_pos(ix, &k, path, &err), VD_OK);

    /* The file holds exactly what write_buf gives; no temp file is left. */
    file a = save(ix, &k);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *disk = malloc(a.len + 1);
    assert_non_null(disk);
    assert_int_equal(fread(disk, 1, a.len + 1, fp), a.len);
    fclose(fp);
    assert_memory_equal(disk, a.p, a.len);
    free(disk);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) entries++;
    closedir(d);
    assert_int_equal(entries, 1);

    vd_index *copy = NULL;
    assert_int_equal(vd_lhv1_read_file_pos(path, NULL, &copy, &out, &err), VD_OK);
    assert_string_equal(out.topic, "topic-a");
    assert_int_equal(out.partition, 1);
    assert_int_equal(out.offset, 99);
    assert_same_stats(ix, copy);
    assert_true(assert_same_search(ix, copy, 3) > 0);
    vd_index_free(copy);

    /* I/O errors name the path; an empty file is corrupt, not an I/O error. */
    snprintf(bad, sizeof bad, "%s/missing/idx.lhv1", dir);
    assert_int_equal(vd_lhv1_write_file(ix, bad, &err), VD_ERR_IO);
    assert_has(err.msg, "missing/idx.lhv1");
    assert_int_equal(vd_lhv1_read_file(bad, NULL, &copy, &err), VD_ERR_IO);
    assert_has(err.msg, "missing/idx.lhv1");
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(vd_lhv1_read_file(path, NULL, &copy, &err), VD_ERR_CORRUPT);
    assert_has(err.msg, "shorter than the 8-byte header");

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(a.p);
    vd_index_free(ix);
}

/* The same commands give the same bytes; different ones do not. */
static void test_determinism(void **state)
{
    (void)state;
    file f[3];
    for (int run = 0; run < 3; run++) {
        vd_index *ix = new_index("det", 10, 5, VD_DIST_COSINE, 0.25);
        add_items(ix, 0, 120, 42);
        delete_ids(ix, 0, 40, 3); /* 14 tombstones */
        add_items(ix, 10, 5, 43); /* upserts with new vectors */
        add_items(ix, 200, 20, run == 2 ? 45 : 44);
        delete_ids(ix, 50, 60, 2); /* passes the threshold: a repair */
        vd_index_stats st;
        vd_index_stats_get(ix, &st);
        assert_true(st.repairs >= 1);
        f[run] = save(ix, NULL);
        vd_index_free(ix);
    }
    assert_same_file(&f[0], &f[1]);
    assert_true(f[0].len != f[2].len || memcmp(f[0].p, f[2].p, f[0].len) != 0);
    for (int run = 0; run < 3; run++) free(f[run].p);
}

/* ------------------------------------------------------------------ */
/* Refusals: the container. */

static file small_file(void)
{
    vd_index *ix = new_index("small", 2, 2, VD_DIST_EUCLIDEAN, 0.25);
    add_items(ix, 0, 3, 1);
    vd_lhv1_kafka k = {"t", 0, 5};
    file f = save(ix, &k);
    vd_index_free(ix);
    return f;
}

static void test_refuse_every_truncation(void **state)
{
    (void)state;
    file f = small_file();
    vd_index *ix = load(&f, NULL); /* the whole file is fine */
    vd_index_free(ix);
    for (size_t n = 0; n < f.len; n++) {
        /* A copy of exactly n bytes, so ASan sees any read past the end. */
        file t = {malloc(n ? n : 1), n};
        assert_non_null(t.p);
        memcpy(t.p, f.p, n);
        assert_refused(&t, VD_ERR_CORRUPT, n < 8 ? "shorter than the 8-byte header" : "truncated");
        vd_error err;
        assert_int_equal(vd_lhv1_verify(t.p, t.len, NULL, &err), VD_ERR_CORRUPT);
        free(t.p);
    }
    free(f.p);
}

/* Truncated payloads with a valid checksum reach the payload parser. */
static void test_refuse_every_payload_truncation(void **state)
{
    (void)state;
    vd_index *ix = mixed_index();
    file f = save(ix, NULL);
    vd_index_free(ix);
    size_t plen = payload_len(&f);
    uint8_t *pay = malloc(plen);
    assert_non_null(pay);
    memcpy(pay, payload(&f), plen);
    for (size_t n = 0; n < plen; n++) {
        file t = {malloc(f.len), f.len};
        assert_non_null(t.p);
        memcpy(t.p, f.p, f.len);
        fix_envelope(&t, pay, n);
        vd_error err;
        assert_int_equal(vd_lhv1_verify(t.p, t.len, NULL, &err), VD_OK); /* CRC is fine */
        assert_refused(&t, VD_ERR_CORRUPT, "payload: ");
        free(t.p);
    }
    free(pay);
    free(f.p);
}

static void test_refuse_bad_magic(void **state)
{
    (void)state;
    file f = small_file();
    f.p[3] = '2';
    assert_refused(&f, VD_ERR_CORRUPT, "bad magic");
    f.p[0] = 'l';
    f.p[3] = '1';
    assert_refused(&f, VD_ERR_CORRUPT, "bad magic");
    free(f.p);
}

static void test_refuse_envelope_length(void **state)
{
    (void)state;
    file f = small_file();
    size_t elen = env_len(&f);
    /* One byte more than the file holds. */
    uint32_t big = (uint32_t)(f.len - 8 + 1);
    f.p[4] = (uint8_t)(big >> 24);
    f.p[5] = (uint8_t)(big >> 16);
    f.p[6] = (uint8_t)(big >> 8);
    f.p[7] = (uint8_t)big;
    assert_refused(&f, VD_ERR_CORRUPT, "truncated: envelope");
    /* Beyond the 1 MiB limit, whatever the file length. */
    f.p[4] = 0x00;
    f.p[5] = 0x10;
    f.p[6] = 0x00;
    f.p[7] = 0x01;
    assert_refused(&f, VD_ERR_CORRUPT, "exceeds the limit");
    f.p[4] = f.p[5] = f.p[6] = f.p[7] = 0xFF;
    assert_refused(&f, VD_ERR_CORRUPT, "exceeds the limit");
    /* One byte short: the envelope JSON is cut. */
    uint32_t shorter = (uint32_t)elen - 1;
    f.p[4] = (uint8_t)(shorter >> 24);
    f.p[5] = (uint8_t)(shorter >> 16);
    f.p[6] = (uint8_t)(shorter >> 8);
    f.p[7] = (uint8_t)shorter;
    assert_refused(&f, VD_ERR_CORRUPT, "envelope is not a JSON object");
    free(f.p);
}

static void test_refuse_bad_envelope_json(void **state)
{
    (void)state;
    file f = small_file();
    static const char *const bad[] = {
        "not json at all", "[1, 2, 3]", "\"LHV1\"", "{\"format\": \"LHV1\"", "", "{} {}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        file g = assemble(bad[i], payload(&f), payload_len(&f));
        assert_refused(&g, VD_ERR_CORRUPT, "envelope is not a JSON object");
        free(g.p);
    }
    /* Well-formed JSON, but wrong: duplicate keys, missing or mistyped fields. */
    char *env = envelope(&f);
    size_t n = strlen(env) + 32;
    char *dup = malloc(n);
    assert_non_null(dup);
    snprintf(dup, n, "{\"format\":\"LHV1\",%s", env + 1);
    file g = assemble(dup, payload(&f), payload_len(&f));
    assert_refused(&g, VD_ERR_CORRUPT, "envelope");
    free(g.p);
    free(dup);
    free(env);
    file h = assemble("{\"format\":\"LHV1\",\"format_version\":1}", payload(&f), payload_len(&f));
    assert_refused(&h, VD_ERR_CORRUPT, "envelope: ");
    free(h.p);

    struct {
        const char *key, *value, *needle;
    } edits[] = {
        {"format", "\"LHV2\"", "envelope format"},
        {"format_version", "\"1\"", "envelope: "},
        {"crc32c", "-1", "checksum"},
        {"crc32c", "4294967296", "checksum"},
        {"length", "-1", "truncated"},
        {"name", "\"\"", "name missing"},
        {"name", "7", "name missing"},
        {"count", "\"3\"", "envelope: "},
        {"rng_state", "12", "envelope: "},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        file e = {malloc(f.len), f.len};
        assert_non_null(e.p);
        memcpy(e.p, f.p, f.len);
        edit_env(&e, edits[i].key, edits[i].value);
        assert_refused(&e, VD_ERR_CORRUPT, edits[i].needle);
        free(e.p);
    }
    free(f.p);
}

static void test_refuse_format_version(void **state)
{
    (void)state;
    file f = small_file();
    edit_env(&f, "format_version", "2");
    assert_refused(&f, VD_ERR_VERSION, "format_version 2 is not supported");
    vd_error err;
    assert_int_equal(vd_lhv1_verify(f.p, f.len, NULL, &err), VD_ERR_VERSION);
    free(f.p);
}

static void test_refuse_payload_version(void **state)
{
    (void)state;
    /* The payload's own version word, the envelope still saying 1. */
    file f = small_file();
    put_le32(payload(&f) + P_VERSION, 2);
    reseal(&f);
    assert_refused(&f, VD_ERR_VERSION, "version 2 is not supported");
    free(f.p);
    /* The envelope's payload.version. */
    f = small_file();
    edit_env(&f, "version", "2");
    assert_refused(&f, VD_ERR_VERSION, "payload version 2 is not supported");
    free(f.p);
}

static void test_refuse_bit_flips(void **state)
{
    (void)state;
    file f = small_file();
    size_t plen = payload_len(&f), off = f.len - plen;
    assert_true(plen > 100);
    for (size_t bit = 0; bit < plen * 8; bit++) {
        f.p[off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_refused_quiet(&f, VD_ERR_CORRUPT, "checksum mismatch");
        f.p[off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    vd_index *ix = load(&f, NULL); /* all flipped back */
    vd_index_free(ix);
    free(f.p);
}

static void test_refuse_trailing_garbage(void **state)
{
    (void)state;
    file f = small_file();
    uint8_t *p = realloc(f.p, f.len + 3);
    assert_non_null(p);
    f.p = p;
    memcpy(f.p + f.len, "abc", 3);
    f.len += 3;
    assert_refused(&f, VD_ERR_CORRUPT, "3 unexpected bytes after the payload");
    /* The same bytes counted into the payload (length, CRC) instead. */
    reseal(&f);
    assert_refused(&f, VD_ERR_CORRUPT, "3 bytes after the last slot");
    free(f.p);
}

static void test_refuse_envelope_disagrees(void **state)
{
    (void)state;
    vd_index *ix = mixed_index();
    file f = save(ix, NULL);
    vd_index_free(ix);
    struct {
        const char *key, *value;
    } edits[] = {
        {"count", "25"},
        {"count", "-1"},
        {"deleted", "3"},
        {"dimension", "5"},
        {"m", "4"},
        {"ef_construction", "41"},
        {"ef_search", "31"},
        {"distance", "\"cosine\""},
        {"rng_state", "\"12345\""},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        file e = {malloc(f.len), f.len};
        assert_non_null(e.p);
        memcpy(e.p, f.p, f.len);
        edit_env(&e, edits[i].key, edits[i].value);
        assert_refused(&e, VD_ERR_CORRUPT, "envelope and payload disagree");
        free(e.p);
    }
    free(f.p);
}

/* Regression: the envelope's params.seed and slots were not compared with
 * the payload, so a file whose envelope lied about them loaded. */
static void test_refuse_envelope_disagrees_seed_slots(void **state)
{
    (void)state;
    vd_index *ix = mixed_index();
    file f = save(ix, NULL);
    vd_index_free(ix);
    const char *keys[] = {"slots", "seed"}, *values[] = {"1000", "\"1\""};
    char accepted[64] = "";
    for (int i = 0; i < 2; i++) {
        file e = {malloc(f.len), f.len};
        assert_non_null(e.p);
        memcpy(e.p, f.p, f.len);
        edit_env(&e, keys[i], values[i]);
        dump(e.p, e.len, "corrupt_checkpoint");
        vd_index *out = NULL;
        vd_error err;
        vd_err rc = vd_lhv1_read(e.p, e.len, NULL, &out, &err);
        vd_index_free(out);
        free(e.p);
        if (rc != VD_ERR_CORRUPT)
            snprintf(accepted + strlen(accepted), sizeof accepted - strlen(accepted), " %s=%s (%s)",
                     keys[i], values[i], vd_err_code(rc));
    }
    free(f.p);
    if (accepted[0]) fail_msg("envelope edits not refused as corrupt_checkpoint:%s", accepted);
}

/* ------------------------------------------------------------------ */
/* Refusals: payloads with a valid checksum but a broken structure. */

typedef struct damage {
    const char *what;
    void (*apply)(uint8_t *p, const slot_at *slots, uint32_t nslots);
    vd_err code;
    const char *needle;
} damage;

static void d_link_past_nslots(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 1, 0, 1);
    put_le32(p + a->links_off[0] + 4, n);
}

static void d_link_huge(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 1, 0, 1);
    put_le32(p + a->links_off[0] + 4, 0xFFFFFFFFu);
}

static void d_link_to_self(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 1, 0, 1);
    put_le32(p + a->links_off[0] + 4, (uint32_t)(a - s));
}

static void d_link_to_free(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 1, 0, 1);
    put_le32(p + a->links_off[0] + 4, get_le32(p + P_FREE_LIST));
}

/* A level-1 link to a node that has only level 0. */
static void d_link_above_level(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 1, 1, 1);
    for (uint32_t t = 0; t < n; t++) {
        if (s[t].state == 1 && s[t].level == 0) {
            put_le32(p + a->links_off[1] + 4, t);
            return;
        }
    }
    fail_msg("no level-0 node");
}

static void d_count_above_m0(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 1, 0, 0);
    put_le32(p + a->links_off[0], 2 * get_le32(p + P_M) + 1);
}

static void d_count_above_m(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 1, 1, 0);
    put_le32(p + a->links_off[1], get_le32(p + P_M) + 1);
}

/* Two live slots with the same id: ids "id1x" and "id1y" of one length. */
static void d_duplicate_id(uint8_t *p, const slot_at *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = i + 1; j < n; j++) {
            if (s[i].state == 1 && s[j].state == 1 && s[i].id_len == s[j].id_len) {
                memcpy(p + s[j].id_off, p + s[i].id_off, s[i].id_len);
                return;
            }
        }
    }
    fail_msg("no two ids of one length");
}

static void d_id_not_utf8(uint8_t *p, const slot_at *s, uint32_t n)
{
    p[find_slot(s, n, p, 1, 0, 0)->id_off] = 0xFF;
}

static void d_nslots_huge(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_NSLOTS, 0x7FFFFFFFu);
}

static void d_nslots_max(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_NSLOTS, 0xFFFFFFFFu);
}

static void d_nslots_plus_one(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    put_le32(p + P_NSLOTS, n + 1);
}

static void d_live_plus_one(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_LIVE, get_le32(p + P_LIVE) + 1);
}

/* Header counts that add up, slots that say otherwise. */
static void d_live_deleted_swapped(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_LIVE, get_le32(p + P_LIVE) - 1);
    put_le32(p + P_DELETED, get_le32(p + P_DELETED) + 1);
}

static void d_unknown_state(uint8_t *p, const slot_at *s, uint32_t n)
{
    p[find_slot(s, n, p, 1, 0, 0)->off] = 3;
}

static void d_level_too_high(uint8_t *p, const slot_at *s, uint32_t n)
{
    p[find_slot(s, n, p, 1, 0, 0)->off + 1] = 32;
}

static void d_free_slot_level(uint8_t *p, const slot_at *s, uint32_t n)
{
    for (uint32_t t = 0; t < n; t++) {
        if (s[t].state == 0) {
            p[s[t].off + 1] = 1;
            return;
        }
    }
    fail_msg("no free slot");
}

/* The free list names a live slot (and so leaves a free one unlisted). */
static void d_free_list_live(uint8_t *p, const slot_at *s, uint32_t n)
{
    put_le32(p + P_FREE_LIST, (uint32_t)(find_slot(s, n, p, 1, 0, 0) - s));
}

static void d_free_list_twice(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_FREE_LIST + 4, get_le32(p + P_FREE_LIST));
}

static void d_free_list_past(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    put_le32(p + P_FREE_LIST, n);
}

static void d_entry_past(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    put_le32(p + P_ENTRY, n);
}

static void d_entry_none(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_ENTRY, 0xFFFFFFFFu);
}

/* The entry point moved to a node below the top level. */
static void d_entry_low(uint8_t *p, const slot_at *s, uint32_t n)
{
    for (uint32_t t = 0; t < n; t++) {
        if (s[t].state == 1 && s[t].level == 0) {
            put_le32(p + P_ENTRY, t);
            return;
        }
    }
    fail_msg("no level-0 node");
}

static void d_max_level_high(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_MAX_LEVEL, 32);
}

static void d_vector_nan(uint8_t *p, const slot_at *s, uint32_t n)
{
    put_le32(p + find_slot(s, n, p, 1, 0, 0)->vec_off + 4, 0x7FC00000u);
}

static void d_vector_inf(uint8_t *p, const slot_at *s, uint32_t n)
{
    put_le32(p + find_slot(s, n, p, 2, 0, 0)->vec_off, 0xFF800000u);
}

/* A tombstone whose id_len says 1: tombstones keep no id. */
static void d_deleted_with_id(uint8_t *p, const slot_at *s, uint32_t n)
{
    const slot_at *a = find_slot(s, n, p, 2, 0, 0);
    put_le32(p + a->off + 4, 1);
}

static void d_id_len_huge(uint8_t *p, const slot_at *s, uint32_t n)
{
    put_le32(p + find_slot(s, n, p, 1, 0, 0)->off + 4, 0xFFFFFFF0u);
}

static void d_dimension_zero(uint8_t *p, const slot_at *s, uint32_t n)
{
    (void)s;
    (void)n;
    put_le32(p + P_DIM, 0);
}

static const damage damages[] = {
    {"link past nslots", d_link_past_nslots, VD_ERR_CORRUPT, "links to invalid slot"},
    {"link 0xFFFFFFFF", d_link_huge, VD_ERR_CORRUPT, "links to invalid slot"},
    {"link to itself", d_link_to_self, VD_ERR_CORRUPT, "links to invalid slot"},
    {"link to a free slot", d_link_to_free, VD_ERR_CORRUPT, "links to invalid slot"},
    {"link above the target's level", d_link_above_level, VD_ERR_CORRUPT,
     "level 1 links to invalid slot"},
    {"level-0 count above m0", d_count_above_m0, VD_ERR_CORRUPT, "more than the maximum 6"},
    {"level-1 count above m", d_count_above_m, VD_ERR_CORRUPT, "more than the maximum 3"},
    {"duplicated id", d_duplicate_id, VD_ERR_CORRUPT, "repeats the id"},
    {"id not UTF-8", d_id_not_utf8, VD_ERR_CORRUPT, "non-UTF-8 id"},
    {"nslots 2^31-1", d_nslots_huge, VD_ERR_CORRUPT, "slots cannot fit"},
    {"nslots 2^32-1", d_nslots_max, VD_ERR_CORRUPT, "slots cannot fit"},
    {"nslots + 1", d_nslots_plus_one, VD_ERR_CORRUPT, "slot counts disagree"},
    {"live + 1", d_live_plus_one, VD_ERR_CORRUPT, "slot counts disagree"},
    {"live - 1, deleted + 1", d_live_deleted_swapped, VD_ERR_CORRUPT, "header says"},
    {"unknown slot state", d_unknown_state, VD_ERR_CORRUPT, "unknown state 3"},
    {"slot level 32", d_level_too_high, VD_ERR_CORRUPT, "has level 32"},
    {"free slot with a level", d_free_slot_level, VD_ERR_CORRUPT, "free slot"},
    {"free list names a live slot", d_free_list_live, VD_ERR_CORRUPT, "which is not free"},
    {"free list names a slot twice", d_free_list_twice, VD_ERR_CORRUPT, "which is not free"},
    {"free list past nslots", d_free_list_past, VD_ERR_CORRUPT, "which is not free"},
    {"entry past nslots", d_entry_past, VD_ERR_CORRUPT, "entry point"},
    {"entry none in a non-empty index", d_entry_none, VD_ERR_CORRUPT, "entry point"},
    {"entry below the top level", d_entry_low, VD_ERR_CORRUPT, "entry point"},
    {"max level 32", d_max_level_high, VD_ERR_CORRUPT, "max level 32"},
    {"NaN in a live vector", d_vector_nan, VD_ERR_CORRUPT, "vector[1] is not finite"},
    {"-Inf in a tombstone's vector", d_vector_inf, VD_ERR_CORRUPT, "vector[0] is not finite"},
    {"tombstone with an id", d_deleted_with_id, VD_ERR_CORRUPT, "carries an id"},
    {"id length 2^32-16", d_id_len_huge, VD_ERR_CORRUPT, "truncated in the id"},
    {"dimension 0", d_dimension_zero, VD_ERR_INVALID_PARAMS, "dimension: 0"},
};

static void test_refuse_structural_damage(void **state)
{
    (void)state;
    vd_index *ix = mixed_index();
    vd_index_stats st;
    vd_index_stats_get(ix, &st);
    assert_int_equal(st.deleted, 2);
    assert_int_equal(st.slots - st.live - st.deleted, 4); /* free */
    assert_true(st.max_level >= 1);
    file f = save(ix, NULL);
    vd_index_free(ix);
    slot_at slots[64];
    uint32_t n = walk(payload(&f), payload_len(&f), slots, 64);
    assert_int_equal(n, st.slots);
    for (size_t i = 0; i < sizeof damages / sizeof damages[0]; i++) {
        file g = {malloc(f.len), f.len};
        assert_non_null(g.p);
        memcpy(g.p, f.p, f.len);
        damages[i].apply(payload(&g), slots, n);
        assert_memory_not_equal(payload(&g), payload(&f), payload_len(&f));
        reseal(&g);
        vd_error err;
        assert_int_equal(vd_lhv1_verify(g.p, g.len, NULL, &err), VD_OK);
        vd_index *out = NULL;
        dump(g.p, g.len, vd_err_code(damages[i].code));
        vd_err rc = vd_lhv1_read(g.p, g.len, NULL, &out, &err);
        if (rc != damages[i].code || !strstr(err.msg, damages[i].needle))
            fail_msg("%s: expected %s with \"%s\", got %s: %s", damages[i].what,
                     vd_err_code(damages[i].code), damages[i].needle, vd_err_code(rc),
                     rc ? err.msg : "(loaded)");
        assert_null(out);
        free(g.p);
    }
    free(f.p);
}

/* Regression: a payload distance outside the enum came back as
 * VD_ERR_UNKNOWN_DISTANCE, which vd_lhv1_read does not document; it is
 * corrupt. */
static void test_refuse_unknown_distance_code(void **state)
{
    (void)state;
    file f = small_file();
    put_le32(payload(&f) + P_DISTANCE, 7);
    reseal(&f);
    dump(f.p, f.len, "corrupt_checkpoint");
    vd_index *out = NULL;
    vd_error err;
    vd_err rc = vd_lhv1_read(f.p, f.len, NULL, &out, &err);
    assert_null(out);
    free(f.p);
    if (rc != VD_ERR_CORRUPT || !strstr(err.msg, "distance"))
        fail_msg("payload distance 7: expected corrupt_checkpoint naming the distance, got %s: %s",
                 vd_err_code(rc), err.msg);
}

/* Params beyond the reader's limits: INVALID_PARAMS, naming the field. */
static void test_refuse_beyond_limits(void **state)
{
    (void)state;
    vd_index *ix = new_index("wide", 64, 4, VD_DIST_COSINE, 0.25);
    add_items(ix, 0, 3, 1);
    file f = save(ix, NULL);
    vd_index_free(ix);
    vd_limits lim;
    vd_limits_init(&lim);
    lim.max_dimension = 32;
    vd_index *out = NULL;
    vd_error err;
    assert_int_equal(vd_lhv1_read(f.p, f.len, &lim, &out, &err), VD_ERR_INVALID_PARAMS);
    assert_has(err.msg, "dimension: 64 is outside 1..32");
    assert_null(out);
    lim.max_dimension = 64;
    assert_int_equal(vd_lhv1_read(f.p, f.len, &lim, &out, &err), VD_OK);
    vd_index_free(out);
    free(f.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_round_trip_cosine),
        cmocka_unit_test(test_round_trip_euclidean),
        cmocka_unit_test(test_round_trip_dot),
        cmocka_unit_test(test_round_trip_after_compact),
        cmocka_unit_test(test_round_trip_metadata),
        cmocka_unit_test(test_round_trip_empty),
        cmocka_unit_test(test_round_trip_all_deleted),
        cmocka_unit_test(test_kafka_round_trip),
        cmocka_unit_test(test_write_stream),
        cmocka_unit_test(test_write_read_file),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_refuse_every_truncation),
        cmocka_unit_test(test_refuse_every_payload_truncation),
        cmocka_unit_test(test_refuse_bad_magic),
        cmocka_unit_test(test_refuse_envelope_length),
        cmocka_unit_test(test_refuse_bad_envelope_json),
        cmocka_unit_test(test_refuse_format_version),
        cmocka_unit_test(test_refuse_payload_version),
        cmocka_unit_test(test_refuse_bit_flips),
        cmocka_unit_test(test_refuse_trailing_garbage),
        cmocka_unit_test(test_refuse_envelope_disagrees),
        cmocka_unit_test(test_refuse_envelope_disagrees_seed_slots),
        cmocka_unit_test(test_refuse_structural_damage),
        cmocka_unit_test(test_refuse_unknown_distance_code),
        cmocka_unit_test(test_refuse_beyond_limits),
    };
    return cmocka_run_group_tests_name("lhv1", tests, NULL, NULL);
}
