/*
 * check_import.c - imports a file written by the real coder/hnsw v0.6.1
 * (tests/gofixtures/gen/main.go) and checks it against <file>.expect:
 *
 *   - the item stream (vd_golhv1_next) holds every surviving id once, its
 *     vector bit for bit and its metadata equal (as msgpack);
 *   - the index built by vd_golhv1_build holds the same (under cosine the
 *     stored vector is vectord's normalised one);
 *   - with --recall BASE QUERIES NQ MIN: recall@10 of the imported index at
 *     its default ef against brute force over the imported items;
 *   - the file truncated at every field boundary (at most --max-cuts of
 *     them, evenly spread), and every length varint (same cap) replaced by
 *     one beyond the file or negative, is refused with VD_ERR_CORRUPT and
 *     a message naming the field.
 *
 * usage: check_import FILE METRIC [--recall QUERIES NQ MIN] [--max-cuts N]
 * Prints one JSON line of measurements; exits 1 on the first failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/json.h"
#include "import/golhv1.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "check_import: FAIL: " __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) FAIL("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n ? (size_t)n : 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) FAIL("cannot read %s", path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ---- the expectation ----------------------------------------------------- */

typedef struct expect {
    char *id;
    size_t id_len;
    float *vec;
    size_t dim;
    uint8_t *mp; /* msgpack of the metadata JSON; NULL: none */
    size_t mp_len;
    int seen;
} expect;

static uint32_t u32(const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 4) FAIL("expect file truncated");
    uint32_t v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}

static int cmp_expect(const void *a, const void *b)
{
    const expect *x = a, *y = b;
    size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
    int c = memcmp(x->id, y->id, n);
    return c ? c : (x->id_len > y->id_len) - (x->id_len < y->id_len);
}

static expect *read_expect(const char *path, size_t *count)
{
    size_t len;
    uint8_t *b = slurp(path, &len);
    const uint8_t *p = b, *end = b + len;
    size_t n = u32(&p, end);
    expect *e = calloc(n ? n : 1, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        e[i].id_len = u32(&p, end);
        e[i].id = malloc(e[i].id_len + 1);
        memcpy(e[i].id, p, e[i].id_len);
        p += e[i].id_len;
        e[i].dim = u32(&p, end);
        e[i].vec = malloc(e[i].dim * 4 + 1);
        memcpy(e[i].vec, p, e[i].dim * 4);
        p += e[i].dim * 4;
        size_t ml = u32(&p, end);
        if (ml) {
            vd_error err;
            if (vd_json_to_msgpack(p, ml, &e[i].mp, &e[i].mp_len, &err))
                FAIL("expect: metadata of %s: %s", e[i].id, err.msg);
        }
        p += ml;
    }
    if (p != end) FAIL("expect: trailing bytes");
    free(b);
    qsort(e, n, sizeof *e, cmp_expect);
    *count = n;
    return e;
}

static expect *find(expect *e, size_t n, const char *id, size_t id_len)
{
    expect key = {.id = (char *)id, .id_len = id_len};
    return bsearch(&key, e, n, sizeof *e, cmp_expect);
}

/* ---- the checks ------------------------------------------------------------ */

static void check_stream(const uint8_t *f, size_t len, expect *e, size_t n)
{
    vd_golhv1 *r;
    vd_error err;
    if (vd_golhv1_open(&r, f, len, &err)) FAIL("open: %s", err.msg);
    vd_golhv1_item it;
    size_t got = 0;
    int more;
    while ((more = vd_golhv1_next(r, &it, &err)) == 1) {
        expect *x = find(e, n, it.id, it.id_len);
        if (!x) FAIL("stream: unexpected id %.*s", (int)it.id_len, it.id);
        if (x->seen++) FAIL("stream: id %s twice", x->id);
        if (it.dimension != x->dim || memcmp(it.vector, x->vec, x->dim * 4))
            FAIL("stream: vector of %s differs", x->id);
        if ((it.metadata != NULL) != (x->mp != NULL) ||
            (x->mp && (it.metadata_len != x->mp_len || memcmp(it.metadata, x->mp, x->mp_len))))
            FAIL("stream: metadata of %s differs: %s", x->id, it.meta_json ? it.meta_json : "none");
        got++;
    }
    if (more < 0) FAIL("stream: %s", err.msg);
    if (got != n) FAIL("stream: %zu items, expected %zu", got, n);
    const vd_golhv1_info *in = vd_golhv1_info_get(r);
    printf("\"items\": %zu, \"layers\": %zu, \"empty_layers\": %zu, \"dangling\": %zu, "
           "\"self_loops\": %zu, \"upper_only\": %zu, \"with_metadata\": %zu, ",
           in->items, in->layers, in->empty_layers, in->dangling, in->self_loops, in->upper_only,
           in->with_metadata);
    vd_golhv1_close(r);
}

static vd_index *check_build(const uint8_t *f, size_t len, expect *e, size_t n, int cosine)
{
    vd_index *ix;
    vd_error err;
    double t0 = now();
    if (vd_golhv1_build(&ix, f, len, NULL, 0, NULL, 1000, NULL, &err)) FAIL("build: %s", err.msg);
    double secs = now() - t0;
    if (vd_index_len(ix) != n) FAIL("build: %zu items, expected %zu", vd_index_len(ix), n);
    float *v = malloc((e[0].dim + 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        uint8_t *meta;
        size_t ml;
        if (vd_index_get(ix, e[i].id, e[i].id_len, v, &meta, &ml, &err))
            FAIL("index: %s: %s", e[i].id, err.msg);
        if (!cosine) {
            if (memcmp(v, e[i].vec, e[i].dim * 4)) FAIL("index: vector of %s differs", e[i].id);
        } else {
            double ss = 0;
            for (size_t d = 0; d < e[i].dim; d++) ss += (double)e[i].vec[d] * e[i].vec[d];
            for (size_t d = 0; d < e[i].dim; d++)
                if (fabs(v[d] - e[i].vec[d] / sqrt(ss)) > 1e-6)
                    FAIL("index: normalised vector of %s differs at %zu", e[i].id, d);
        }
        if ((meta != NULL) != (e[i].mp != NULL) ||
            (meta && (ml != e[i].mp_len || memcmp(meta, e[i].mp, ml))))
            FAIL("index: metadata of %s differs", e[i].id);
        free(meta);
    }
    free(v);
    printf("\"import_s\": %.3f, \"ef_search\": %u, ", secs, vd_index_params_get(ix)->ef_search);
    return ix;
}

static double brute(const float *q, const float *v, size_t dim, int cosine)
{
    double dot = 0, qq = 0, vv = 0, l2 = 0;
    for (size_t d = 0; d < dim; d++) {
        double a = q[d], b = v[d];
        dot += a * b;
        qq += a * a;
        vv += b * b;
        l2 += (a - b) * (a - b);
    }
    return cosine ? 1 - dot / sqrt(qq * vv) : sqrt(l2);
}

static void check_recall(vd_index *ix, expect *e, size_t n, int cosine, const char *qpath,
                         size_t nq, double min)
{
    size_t qlen;
    uint8_t *qb = slurp(qpath, &qlen);
    size_t dim = e[0].dim, rec = 4 + 4 * dim;
    if (qlen / rec < nq) nq = qlen / rec;
    double *best = malloc(10 * sizeof *best);
    size_t *bi = malloc(10 * sizeof *bi);
    float *q = malloc(dim * sizeof *q);
    vd_results res;
    vd_results_init(&res);
    size_t hits = 0;
    for (size_t k = 0; k < nq; k++) {
        memcpy(q, qb + k * rec + 4, dim * 4);
        size_t nb = 0;
        for (size_t i = 0; i < n; i++) { /* the 10 nearest, by insertion */
            double d = brute(q, e[i].vec, dim, cosine);
            if (nb == 10 && d >= best[9]) continue;
            size_t j = nb < 10 ? nb++ : 9;
            while (j > 0 && best[j - 1] > d) {
                best[j] = best[j - 1];
                bi[j] = bi[j - 1];
                j--;
            }
            best[j] = d;
            bi[j] = i;
        }
        vd_error err;
        if (vd_index_search(ix, q, dim, 10, 0, &res, &err)) FAIL("search: %s", err.msg);
        for (size_t h = 0; h < res.n; h++)
            for (size_t t = 0; t < nb; t++)
                if (res.hits[h].id_len == e[bi[t]].id_len &&
                    !memcmp(res.hits[h].id, e[bi[t]].id, e[bi[t]].id_len))
                    hits++;
    }
    double recall = (double)hits / (10.0 * nq);
    printf("\"recall_at_10\": %.4f, \"queries\": %zu, ", recall, nq);
    if (recall < min) FAIL("recall@10 %.4f < %.2f", recall, min);
    vd_results_free(&res);
    free(best);
    free(bi);
    free(q);
    free(qb);
}

/* ---- corruption -------------------------------------------------------------- */

/* A field of the file, found by a walk independent of the reader. */
typedef struct field {
    size_t off, end;
    int is_len; /* a length or count varint */
} field;

static size_t n_fields, cap_fields;
static field *fields;

static void add_field(size_t off, size_t end, int is_len)
{
    if (n_fields == cap_fields) {
        cap_fields = cap_fields * 2 + 1024;
        fields = realloc(fields, cap_fields * sizeof *fields);
    }
    fields[n_fields++] = (field){off, end, is_len};
}

static int64_t walk_varint(const uint8_t *f, size_t *p, int is_len)
{
    size_t start = *p;
    uint64_t u = 0;
    for (unsigned s = 0;; s += 7) {
        uint8_t b = f[(*p)++];
        u |= (uint64_t)(b & 0x7f) << s;
        if (b < 0x80) break;
    }
    add_field(start, *p, is_len);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static void walk_str(const uint8_t *f, size_t *p)
{
    int64_t n = walk_varint(f, p, 1);
    *p += (size_t)n;
    add_field(*p - (size_t)n, *p, 0);
}

static void walk(const uint8_t *f, size_t len)
{
    size_t elen = (size_t)f[4] << 24 | (size_t)f[5] << 16 | (size_t)f[6] << 8 | f[7];
    add_field(0, 4, 0);
    add_field(4, 8, 0);
    add_field(8, 8 + elen, 0);
    size_t p = 8 + elen;
    walk_varint(f, &p, 0); /* version */
    walk_varint(f, &p, 0); /* M */
    add_field(p, p + 8, 0);
    p += 8;
    walk_varint(f, &p, 0); /* EfSearch */
    walk_str(f, &p);
    int64_t layers = walk_varint(f, &p, 1);
    for (int64_t l = 0; l < layers; l++) {
        int64_t nodes = walk_varint(f, &p, 1);
        for (int64_t j = 0; j < nodes; j++) {
            walk_str(f, &p);
            int64_t dim = walk_varint(f, &p, 1);
            add_field(p, p + 4 * (size_t)dim, 0);
            p += 4 * (size_t)dim;
            int64_t nb = walk_varint(f, &p, 1);
            for (int64_t k = 0; k < nb; k++) walk_str(f, &p);
        }
    }
    if (p != len) FAIL("walk: ended at %zu of %zu", p, len);
}

static void expect_refused(const uint8_t *f, size_t len, const char *why, const char *want)
{
    vd_golhv1 *r = NULL;
    vd_error err;
    vd_error_clear(&err);
    vd_err rc = vd_golhv1_open(&r, f, len, &err);
    if (rc != VD_ERR_CORRUPT || r || (want && !strstr(err.msg, want)))
        FAIL("%s: open gave %d \"%s\" (want corrupt_checkpoint naming \"%s\")", why, rc, err.msg,
             want ? want : "");
}

/* Go's PutVarint. */
static size_t put_varint(uint8_t *b, int64_t x)
{
    uint64_t u = (uint64_t)x << 1 ^ (uint64_t)(x >> 63);
    size_t n = 0;
    while (u >= 0x80) {
        b[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    b[n++] = (uint8_t)u;
    return n;
}

static void check_corruption(const uint8_t *f, size_t len, size_t max_cuts)
{
    walk(f, len);
    size_t cuts = 0, flips = 0;
    /* Truncation at field boundaries (every field's start and end). */
    size_t step = n_fields > max_cuts ? n_fields / max_cuts : 1;
    for (size_t i = 0; i < n_fields; i += step) {
        size_t at[2] = {fields[i].off, fields[i].end};
        for (int k = 0; k < 2; k++) {
            if (at[k] >= len) continue;
            uint8_t *t = malloc(at[k] ? at[k] : 1); /* exact size: ASan sees overreads */
            memcpy(t, f, at[k]);
            char why[64];
            snprintf(why, sizeof why, "truncated at %zu", at[k]);
            expect_refused(t, at[k], why, NULL);
            free(t);
            cuts++;
        }
    }
    /* Every length (sampled) made larger than the file, and negative. */
    size_t n_len = 0;
    for (size_t i = 0; i < n_fields; i++) n_len += fields[i].is_len;
    size_t lstep = n_len > max_cuts ? n_len / max_cuts : 1;
    uint8_t *t = malloc(len + 16);
    for (size_t i = 0, li = 0; i < n_fields; i++) {
        if (!fields[i].is_len || li++ % lstep) continue;
        int64_t vals[2] = {(int64_t)len * 3 + 5, -1};
        for (int k = 0; k < 2; k++) {
            size_t o = fields[i].off, nl = put_varint(t + o, vals[k]);
            memcpy(t, f, o);
            put_varint(t + o, vals[k]);
            memcpy(t + o + nl, f + fields[i].end, len - fields[i].end);
            size_t tl = o + nl + len - fields[i].end;
            char why[64];
            snprintf(why, sizeof why, "length at %zu set to %lld", o, (long long)vals[k]);
            expect_refused(t, tl, why, k ? "negative length -1" : "length");
            flips++;
        }
    }
    /* The envelope length. */
    uint32_t el = (uint32_t)f[4] << 24 | (uint32_t)f[5] << 16 | (uint32_t)f[6] << 8 | f[7];
    uint32_t bad[] = {el + 1, el - 1, 0xffffffffu, 0};
    for (size_t k = 0; k < 4; k++) {
        memcpy(t, f, len);
        t[4] = (uint8_t)(bad[k] >> 24);
        t[5] = (uint8_t)(bad[k] >> 16);
        t[6] = (uint8_t)(bad[k] >> 8);
        t[7] = (uint8_t)bad[k];
        expect_refused(t, len, "envelope length changed", NULL);
        flips++;
    }
    free(t);
    printf("\"fields\": %zu, \"truncations\": %zu, \"length_flips\": %zu", n_fields, cuts, flips);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: check_import FILE METRIC [--recall QUERIES NQ MIN] [--max-cuts N]\n");
        return 2;
    }
    const char *path = argv[1];
    int cosine = strcmp(argv[2], "cosine") == 0;
    const char *qpath = NULL;
    size_t nq = 0, max_cuts = 400;
    double min = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--recall") && i + 3 < argc) {
            qpath = argv[i + 1];
            nq = strtoul(argv[i + 2], NULL, 10);
            min = strtod(argv[i + 3], NULL);
            i += 3;
        } else if (!strcmp(argv[i], "--max-cuts") && i + 1 < argc) {
            max_cuts = strtoul(argv[++i], NULL, 10);
        } else {
            FAIL("unknown argument %s", argv[i]);
        }
    }
    size_t len, n;
    uint8_t *f = slurp(path, &len);
    char ep[4096];
    snprintf(ep, sizeof ep, "%s.expect", path);
    expect *e = read_expect(ep, &n);
    printf("{\"file\": \"%s\", \"bytes\": %zu, ", path, len);
    check_stream(f, len, e, n);
    if (n) {
        vd_index *ix = check_build(f, len, e, n, cosine);
        if (qpath) check_recall(ix, e, n, cosine, qpath, nq, min);
        vd_index_free(ix);
    }
    check_corruption(f, len, max_cuts);
    printf("}\n");
    for (size_t i = 0; i < n; i++) {
        free(e[i].id);
        free(e[i].vec);
        free(e[i].mp);
    }
    free(e);
    free(fields);
    free(f);
    return 0;
}
