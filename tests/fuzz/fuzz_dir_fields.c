/*
 * fuzz_dir_fields.c - libFuzzer target for the fleet directory's field
 * codecs (src/directory/fields.c, docs/directory.md "Keys").
 *
 * The first byte of an input picks the mode:
 *   'I'   an index entry as Redis gives it: the rest is split on '\n'
 *         into the key's name, then field, value, field, value...
 *         -> vd_dir_index_decode()
 *   'W'   a heartbeat: field, value, ... split on '\n'
 *         -> vd_dir_worker_decode() (and the "partitions" parser)
 *   'P'   the rest is the value of a pin:<name> key -> vd_dir_pin_decode()
 *   'i'   the rest fills a vd_dir_index struct -> vd_dir_index_encode()
 *   'w'   the rest fills a vd_dir_worker struct (partitions included)
 *         -> vd_dir_worker_encode()
 *   other as 'W'
 *
 * Oracles (a broken one calls abort(), so libFuzzer keeps the input):
 *   - a refusal is VD_ERR_DECODE with a message naming the field;
 *   - a number the decoder accepted is the number that was written: the
 *     decoded struct holds exactly the value of the text (no wrapping into
 *     a narrower type), checked with an independent parser;
 *   - whatever decodes encodes, and the encoding decodes to the same
 *     struct; whatever struct is encoded decodes back to itself.
 * ASan and UBSan catch the rest (the build is -fsanitize=fuzzer,address,
 * undefined). The same function runs over the checked-in corpus in every
 * build (CTest fuzz_replay_dir_fields, tests/fuzz/replay_main.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Internal header: vectord_core keeps src/ private, so reach it by path. */
#include "../../src/directory/fields.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_dir_fields: oracle failed at line %d: %s\n", __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAXF 256

/* The encoding as an HGETALL answer: name, value, name, value... */
static size_t flatten(const vd_dir_fields *f, const char **kv, size_t *lens)
{
    for (size_t i = 0; i < f->n; i++) {
        kv[2 * i] = f->name[i];
        lens[2 * i] = strlen(f->name[i]);
        kv[2 * i + 1] = vd_dir_fields_value(f, i);
        lens[2 * i + 1] = f->len[i];
    }
    return 2 * f->n;
}

/* Splits data[0..n) on '\n' into at most MAXF pieces (the last one takes the rest). */
static size_t split(const char *data, size_t n, const char **p, size_t *len)
{
    size_t k = 0;
    const char *s = data, *end = data + n;
    while (k < MAXF) {
        const char *nl = k + 1 < MAXF ? memchr(s, '\n', (size_t)(end - s)) : NULL;
        p[k] = s;
        len[k] = (size_t)((nl ? nl : end) - s);
        k++;
        if (!nl) break;
        s = nl + 1;
    }
    return k;
}

/*
 * The oracle's own reading of a decimal value: what strtoll/strtoull make
 * of the whole text, as a 128-bit number. 0 when it reads as one.
 */
static int ref_number(const char *v, size_t n, __int128 *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf || memchr(v, '\0', n)) return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (!errno && !*end) {
        *out = x;
        return 0;
    }
    errno = 0;
    const char *d = buf;
    while (*d == ' ' || (*d >= '\t' && *d <= '\r')) d++;
    if (*d == '-') return -1;
    unsigned long long u = strtoull(buf, &end, 10);
    if (errno || *end) return -1;
    *out = (__int128)u;
    return 0;
}

static int eq(const char *a, size_t alen, const char *lit)
{
    return alen == strlen(lit) && memcmp(a, lit, alen) == 0;
}

/* The last value of field name among kv pairs, or NULL. */
static const char *last_value(const char *const *kv, const size_t *lens, size_t n, const char *name,
                              size_t *vlen)
{
    const char *v = NULL;
    for (size_t i = 0; i + 1 < n; i += 2)
        if (eq(kv[i], lens[i], name)) v = kv[i + 1], *vlen = lens[i + 1];
    return v;
}

static void check_refusal(vd_err rc, const vd_error *err)
{
    CHECK(rc == VD_ERR_DECODE);
    CHECK(err->code == rc);
    CHECK(strstr(err->msg, "field ") != NULL);
}

/* ------------------------------------------------------------------ */
/* Index entries. */

static void index_equal(const vd_dir_index *a, const vd_dir_index *b)
{
    CHECK(strcmp(a->name, b->name) == 0);
    CHECK(a->partition == b->partition);
    CHECK(strcmp(a->owner, b->owner) == 0);
    CHECK(a->params.dimension == b->params.dimension);
    CHECK(a->params.m == b->params.m);
    CHECK(a->params.ef_construction == b->params.ef_construction);
    CHECK(a->params.ef_search == b->params.ef_search);
    CHECK(a->params.distance == b->params.distance);
    CHECK(a->length == b->length);
    CHECK(a->deleted == b->deleted);
    CHECK(a->applied_offset == b->applied_offset);
    CHECK(a->checkpointed_offset == b->checkpointed_offset);
    CHECK(a->updated_ms == b->updated_ms);
}

/* Encodes ix, decodes the encoding, compares. */
static void index_round_trip(const vd_dir_index *ix)
{
    vd_dir_fields f = {0};
    vd_error err;
    CHECK(vd_dir_index_encode(ix, &f, &err) == VD_OK);
    const char *kv[2 * VD_DIR_MAX_FIELDS];
    size_t lens[2 * VD_DIR_MAX_FIELDS];
    size_t n = flatten(&f, kv, lens);
    for (size_t i = 0; i < f.n; i++) CHECK(strlen(kv[2 * i + 1]) == lens[2 * i + 1]);
    const char *name = ix->name ? ix->name : "";
    vd_dir_index back;
    vd_err rc = vd_dir_index_decode(name, strlen(name), kv, lens, n, &back, &err);
    CHECK(rc == VD_OK);
    index_equal(ix, &back);
    vd_dir_index_clear(&back);
    vd_dir_fields_clear(&f);
}

static void fuzz_index_decode(const char *data, size_t size)
{
    const char *p[MAXF];
    size_t len[MAXF];
    size_t n = split(data, size, p, len);
    const char *const *kv = p + 1;
    const size_t *kl = len + 1;
    size_t nkv = n - 1;
    vd_dir_index ix;
    vd_error err;
    vd_err rc = vd_dir_index_decode(p[0], len[0], kv, kl, nkv, &ix, &err);
    if (rc) {
        check_refusal(rc, &err);
        return;
    }
    CHECK(ix.name != NULL);
    CHECK(ix.pinned == -1);
    CHECK(strlen(ix.owner) < sizeof ix.owner);
    /* Every number accepted is the number written. */
    struct {
        const char *name;
        __int128 got;
        __int128 dflt;
    } nums[] = {
        {"partition", ix.partition, 0},
        {"dimension", ix.params.dimension, 0},
        {"m", ix.params.m, 0},
        {"ef_construction", ix.params.ef_construction, 0},
        {"ef_search", ix.params.ef_search, 0},
        {"length", ix.length, 0},
        {"deleted", ix.deleted, 0},
        {"applied_offset", ix.applied_offset, -1},
        {"checkpointed_offset", ix.checkpointed_offset, -1},
        {"updated", ix.updated_ms, 0},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        size_t vl = 0;
        const char *v = last_value(kv, kl, nkv, nums[i].name, &vl);
        __int128 want = nums[i].dflt;
        if (v) CHECK(ref_number(v, vl, &want) == 0); /* accepted: must be a number */
        if (nums[i].got != want) {
            fprintf(stderr, "fuzz_dir_fields: index field %s: wrote %.*s, decoded %lld\n",
                    nums[i].name, (int)vl, v ? v : "", (long long)nums[i].got);
            abort();
        }
    }
    index_round_trip(&ix);
    vd_dir_index_clear(&ix);
}

/* ------------------------------------------------------------------ */
/* Heartbeats. */

static void worker_equal(const vd_dir_worker *a, const vd_dir_worker *b)
{
    CHECK(strcmp(a->id, b->id) == 0);
    CHECK(strcmp(a->host, b->host) == 0);
    CHECK(strcmp(a->version, b->version) == 0);
    CHECK(a->pid == b->pid);
    CHECK(a->started_ms == b->started_ms);
    CHECK(a->updated_ms == b->updated_ms);
    CHECK(a->partition_count == b->partition_count);
    CHECK(a->lag == b->lag);
    CHECK(a->nparts == b->nparts);
    for (size_t i = 0; i < a->nparts; i++) {
        CHECK(a->parts[i].id == b->parts[i].id);
        CHECK(strncmp(a->parts[i].state, b->parts[i].state, 15) == 0);
        CHECK(a->parts[i].applied == b->parts[i].applied);
        CHECK(a->parts[i].lag == b->parts[i].lag);
    }
}

static void worker_round_trip(const vd_dir_worker *w)
{
    vd_dir_fields f = {0};
    vd_error err;
    CHECK(vd_dir_worker_encode(w, &f, &err) == VD_OK);
    const char *kv[2 * VD_DIR_MAX_FIELDS];
    size_t lens[2 * VD_DIR_MAX_FIELDS];
    size_t n = flatten(&f, kv, lens);
    for (size_t i = 0; i < f.n; i++) CHECK(strlen(kv[2 * i + 1]) == lens[2 * i + 1]);
    vd_dir_worker back;
    vd_err rc = vd_dir_worker_decode(kv, lens, n, &back, &err);
    if (rc) fprintf(stderr, "fuzz_dir_fields: re-decode: %s\n", err.msg);
    CHECK(rc == VD_OK);
    worker_equal(w, &back);
    vd_dir_worker_clear(&back);
    vd_dir_fields_clear(&f);
}

/* Checks the decoded partitions against the oracle's reading of the text. */
static void check_partitions(const vd_dir_worker *w, const char *v, size_t n)
{
    size_t k = 0;
    const char *s = v, *end = v + n;
    while (s < end) { /* a trailing comma is tolerated, as by the decoder */
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        const char *c[3];
        const char *q = s;
        for (int j = 0; j < 3; j++) {
            c[j] = memchr(q, ':', (size_t)(e - q));
            CHECK(c[j]); /* accepted: must have three colons */
            q = c[j] + 1;
        }
        CHECK(k < w->nparts);
        __int128 id, applied, lag;
        CHECK(ref_number(s, (size_t)(c[0] - s), &id) == 0);
        CHECK(ref_number(c[1] + 1, (size_t)(c[2] - c[1] - 1), &applied) == 0);
        CHECK(ref_number(c[2] + 1, (size_t)(e - c[2] - 1), &lag) == 0);
        if (w->parts[k].id != id || w->parts[k].applied != applied || w->parts[k].lag != lag) {
            fprintf(stderr, "fuzz_dir_fields: partition %zu: wrote %.*s, decoded %d:%lld:%lld\n", k,
                    (int)(e - s), s, (int)w->parts[k].id, (long long)w->parts[k].applied,
                    (long long)w->parts[k].lag);
            abort();
        }
        k++;
        if (!comma) break;
        s = comma + 1;
    }
    CHECK(k == w->nparts);
}

static void fuzz_worker_decode(const char *data, size_t size)
{
    const char *p[MAXF];
    size_t len[MAXF];
    size_t n = split(data, size, p, len);
    vd_dir_worker w;
    vd_error err;
    vd_err rc = vd_dir_worker_decode(p, len, n, &w, &err);
    if (rc) {
        check_refusal(rc, &err);
        return;
    }
    struct {
        const char *name;
        __int128 got;
    } nums[] = {
        {"pid", w.pid},
        {"started", w.started_ms},
        {"updated", w.updated_ms},
        {"partition_count", w.partition_count},
        {"lag", w.lag},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        size_t vl = 0;
        const char *v = last_value(p, len, n, nums[i].name, &vl);
        __int128 want = 0;
        if (v) CHECK(ref_number(v, vl, &want) == 0);
        if (nums[i].got != want) {
            fprintf(stderr, "fuzz_dir_fields: heartbeat field %s: wrote %.*s, decoded %lld\n",
                    nums[i].name, (int)vl, v ? v : "", (long long)nums[i].got);
            abort();
        }
    }
    size_t vl = 0;
    const char *parts = last_value(p, len, n, "partitions", &vl);
    if (parts)
        check_partitions(&w, parts, vl);
    else
        CHECK(w.nparts == 0);
    worker_round_trip(&w);
    vd_dir_worker_clear(&w);
}

/* ------------------------------------------------------------------ */
/* Pins. */

static void fuzz_pin(const char *data, size_t size)
{
    int32_t part = -7;
    if (vd_dir_pin_decode(data, size, &part)) {
        CHECK(part == -7);
        return;
    }
    __int128 want;
    CHECK(ref_number(data, size, &want) == 0);
    CHECK(part >= 0 && part == want);
    /* What the publisher writes for it reads back the same. */
    char b[16];
    int n = snprintf(b, sizeof b, "%" PRId32, part);
    int32_t again;
    CHECK(vd_dir_pin_decode(b, (size_t)n, &again) == 0 && again == part);
}

/* ------------------------------------------------------------------ */
/* Structs to encode: bytes in, fields out. */

typedef struct src {
    const uint8_t *p;
    size_t n;
} src;

static uint64_t take(src *s, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++) {
        v = v << 8 | (s->n ? *s->p : 0);
        if (s->n) s->p++, s->n--;
    }
    return v;
}

/* A string of up to cap-1 bytes (length from one byte), NUL-terminated. */
static void take_str(src *s, char *dst, size_t cap)
{
    size_t n = (size_t)take(s, 1) % cap;
    if (n > s->n) n = s->n;
    memcpy(dst, s->p, n);
    dst[n] = '\0';
    s->p += n;
    s->n -= n;
}

/* Numbers biased to the edges: each width's extremes are one byte away. */
static int64_t take_num(src *s)
{
    static const int64_t edges[] = {0,          -1,        1,         INT32_MAX, INT32_MIN,
                                    UINT32_MAX, INT64_MAX, INT64_MIN, 999999999, -999999999};
    uint8_t sel = (uint8_t)take(s, 1);
    if (sel < 2 * (sizeof edges / sizeof edges[0])) return edges[sel / 2];
    return (int64_t)take(s, 8);
}

static void fuzz_index_encode(const uint8_t *data, size_t size)
{
    src s = {data, size};
    char name[200];
    vd_dir_index ix;
    memset(&ix, 0, sizeof ix);
    take_str(&s, name, sizeof name);
    ix.name = name;
    take_str(&s, ix.owner, sizeof ix.owner);
    ix.partition = (int32_t)take_num(&s);
    ix.params.dimension = (uint32_t)take_num(&s);
    ix.params.m = (uint32_t)take_num(&s);
    ix.params.ef_construction = (uint32_t)take_num(&s);
    ix.params.ef_search = (uint32_t)take_num(&s);
    ix.params.distance = (vd_distance)(take(&s, 1) % 3);
    ix.length = (uint64_t)take_num(&s);
    ix.deleted = (uint64_t)take_num(&s);
    ix.applied_offset = take_num(&s);
    ix.checkpointed_offset = take_num(&s);
    ix.updated_ms = take_num(&s);
    index_round_trip(&ix);
}

static void fuzz_worker_encode(const uint8_t *data, size_t size)
{
    static const char *const states[] = {"loading", "replaying", "ready", "refused"};
    src s = {data, size};
    vd_dir_worker w;
    memset(&w, 0, sizeof w);
    take_str(&s, w.id, sizeof w.id);
    take_str(&s, w.host, sizeof w.host);
    take_str(&s, w.version, sizeof w.version);
    w.pid = (long)take_num(&s);
    w.started_ms = take_num(&s);
    w.updated_ms = take_num(&s);
    w.partition_count = (int32_t)take_num(&s);
    w.lag = take_num(&s);
    w.nparts = (size_t)take(&s, 1);
    vd_dir_partition parts[256];
    w.parts = w.nparts ? parts : NULL;
    for (size_t i = 0; i < w.nparts; i++) {
        vd_dir_partition *p = &parts[i];
        p->id = (int32_t)take_num(&s);
        /* One of the four states, or up to 15 letters (never ',' or ':',
         * which the field uses as separators), every byte filled. */
        uint8_t st = (uint8_t)take(&s, 1);
        memset(p->state, 'x', sizeof p->state);
        if (st < 8) {
            snprintf(p->state, sizeof p->state, "%s", states[st % 4]);
        } else {
            size_t n = st % sizeof p->state;
            for (size_t j = 0; j < n; j++) p->state[j] = (char)('a' + take(&s, 1) % 26);
            if (n < sizeof p->state) p->state[n] = '\0';
        }
        p->applied = take_num(&s);
        p->lag = take_num(&s);
    }
    worker_round_trip(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0]) {
    case 'I':
        fuzz_index_decode(rest, n);
        break;
    case 'P':
        fuzz_pin(rest, n);
        break;
    case 'i':
        fuzz_index_encode(data + 1, n);
        break;
    case 'w':
        fuzz_worker_encode(data + 1, n);
        break;
    case 'W':
        fuzz_worker_decode(rest, n);
        break;
    default:
        fuzz_worker_decode((const char *)data, size);
        break;
    }
    return 0;
}
