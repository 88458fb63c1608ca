/*
 * fuzz_request.c - libFuzzer target for request decoding
 * (src/codec/codec.c, schemas/messages.md) and the paths a worker takes
 * with a decoded request: the index's own checks, applying it, and the
 * reply it sends.
 *
 * The first byte picks the format: 'J' - the rest is a JSON body
 * (content-type application/json); anything else - the whole input is a
 * msgpack body. Before that, an 'L' selects small limits (8 dimensions,
 * batches of 4, ids of 8 bytes, 64 bytes of metadata, names of 16 bytes)
 * so that every limit check is reachable by a small input.
 *
 * Oracles (a broken one calls abort(), so libFuzzer keeps the input):
 *   - a refusal carries one of the codes codec.h documents, with a
 *     message, and leaves the output untouched; the error reply for it is
 *     a valid document in both formats;
 *   - vd_request_peek() agrees with the decoder: when the decoder reads
 *     an op or an index, peek finds the same; when the decoder finds no
 *     usable op (missing, not a string), peek reports none either;
 *   - a decoded request encodes (in the target, field by field) to a
 *     msgpack body that decodes to the same request, and, when every
 *     number in it is finite and it carries no metadata, to a JSON body
 *     that does too;
 *   - what decodes applies: create's params make an index; an add whose
 *     items pass vd_index_check_items inserts; searches (of the add's own
 *     vectors, or of a search's vector against a small index) return
 *     sorted, finite distances; every reply is a valid document.
 * ASan, UBSan and LeakSanitizer catch the rest. The same function runs
 * over the checked-in corpus in every build (CTest fuzz_replay_request).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Internal headers: vectord_core keeps src/ private, so reach them by path. */
#include "../../src/codec/codec.h"
#include "../../src/codec/mpread.h"
#include "../../src/codec/writer.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_request: oracle failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static vd_limits lim;

/* ------------------------------------------------------------------ */
/* Replies must be valid documents. */

/*
 * A strict RFC 8259 checker (jansson refuses valid documents it cannot
 * represent: "\u0000" in a key, integers beyond int64). Returns the end
 * of the value at p, or NULL.
 */
static const uint8_t *json_ws(const uint8_t *p, const uint8_t *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const uint8_t *json_string(const uint8_t *p, const uint8_t *e)
{
    if (p >= e || *p++ != '"') return NULL;
    while (p < e && *p != '"') {
        uint8_t c = *p;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (++p >= e) return NULL;
            if (*p == 'u') {
                if (e - p < 5) return NULL;
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 5;
            } else if (strchr("\"\\/bfnrt", *p) && *p) {
                p++;
            } else {
                return NULL;
            }
            continue;
        }
        /* UTF-8: the shortest form, no surrogates, at most U+10FFFF. */
        size_t n = c < 0x80                 ? 1
                   : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4
                                            : 0;
        if (!n || (size_t)(e - p) < n) return NULL;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80) return NULL;
        if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) return NULL;
        if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) return NULL;
        p += n;
    }
    return p < e ? p + 1 : NULL;
}

static const uint8_t *json_number(const uint8_t *p, const uint8_t *e)
{
#define DIGITS(p) ((p) < e && *(p) >= '0' && *(p) <= '9')
    if (p < e && *p == '-') p++;
    if (!DIGITS(p)) return NULL;
    if (*p == '0')
        p++;
    else
        while (DIGITS(p)) p++;
    if (p < e && *p == '.') {
        p++;
        if (!DIGITS(p)) return NULL;
        while (DIGITS(p)) p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (!DIGITS(p)) return NULL;
        while (DIGITS(p)) p++;
    }
    return p;
#undef DIGITS
}

static const uint8_t *json_value(const uint8_t *p, const uint8_t *e, int depth)
{
    p = json_ws(p, e);
    if (p >= e || depth > 200) return NULL;
    if (*p == '{' || *p == '[') {
        uint8_t close = *p == '{' ? '}' : ']';
        p = json_ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (!(p = json_string(json_ws(p, e), e))) return NULL;
                p = json_ws(p, e);
                if (p >= e || *p++ != ':') return NULL;
            }
            if (!(p = json_value(p, e, depth + 1))) return NULL;
            p = json_ws(p, e);
            if (p >= e) return NULL;
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
        }
    }
    if (*p == '"') return json_string(p, e);
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(e - p) >= n && memcmp(p, words[i], n) == 0) return p + n;
    }
    return json_number(p, e);
}

static void check_document(vd_writer *w)
{
    size_t len;
    const uint8_t *p = vd_writer_data(w, &len);
    CHECK(vd_writer_status(w) == VD_OK);
    CHECK(len > 0);
    if (vd_writer_content_type(w) == VD_CT_JSON) {
        const uint8_t *end = json_value(p, p + len, 0);
        if (!end || json_ws(end, p + len) != p + len)
            fprintf(stderr, "fuzz_request: reply is not JSON: %.*s\n", (int)len, p);
        CHECK(end && json_ws(end, p + len) == p + len);
        CHECK(*json_ws(p, p + len) == '{');
    } else {
        vd_mp_reader r;
        vd_mp_reader_init(&r, p, len);
        vd_mp_value v;
        vd_mp_reader peek = r;
        CHECK(vd_mp_read(&peek, &v) == 0 && v.type == VD_MP_MAP);
        CHECK(vd_mp_skip(&r) == 0);
        CHECK(vd_mp_remaining(&r) == 0);
    }
}

static void check_error_reply(vd_err rc, const char *msg)
{
    for (int ct = VD_CT_MSGPACK; ct <= VD_CT_JSON; ct++) {
        vd_writer *w;
        CHECK(vd_writer_new(&w, (vd_content_type)ct) == VD_OK);
        CHECK(vd_reply_error(w, rc, msg) == VD_OK);
        check_document(w);
        vd_writer_free(w);
    }
}

/* ------------------------------------------------------------------ */
/* Re-encoding a decoded request. */

static void put_vector(vd_writer *w, const float *v, size_t n)
{
    vd_writer_array_begin(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) vd_writer_float(w, v[i]);
    vd_writer_array_end(w);
}

static uint32_t count_fields(const vd_request *q)
{
    switch (q->op) {
    case VD_OP_CREATE:
        return 2 + 6;
    case VD_OP_ADD:
    case VD_OP_DELETE:
    case VD_OP_DROP:
        return 3;
    case VD_OP_SEARCH:
        return 2 + 4 + (q->min_offset >= 0);
    default:
        return 2;
    }
}

static vd_err encode_request(const vd_request *q, vd_content_type ct, uint8_t **out, size_t *len)
{
    vd_writer *w;
    CHECK(vd_writer_new(&w, ct) == VD_OK);
    vd_writer_map_begin(w, count_fields(q));
    vd_writer_key(w, "op");
    vd_writer_cstr(w, vd_op_name(q->op));
    vd_writer_key(w, "index");
    vd_writer_str(w, q->index, q->index_len);
    switch (q->op) {
    case VD_OP_CREATE:
        vd_writer_key(w, "dimension");
        vd_writer_uint(w, q->params.dimension);
        vd_writer_key(w, "m");
        vd_writer_uint(w, q->params.m);
        vd_writer_key(w, "ef_construction");
        vd_writer_uint(w, q->params.ef_construction);
        vd_writer_key(w, "ef_search");
        vd_writer_uint(w, q->params.ef_search);
        vd_writer_key(w, "distance");
        vd_writer_cstr(w, vd_distance_name(q->params.distance));
        vd_writer_key(w, "if_not_exists");
        vd_writer_bool(w, q->if_not_exists);
        break;
    case VD_OP_ADD:
        vd_writer_key(w, "items");
        vd_writer_array_begin(w, (uint32_t)q->n_items);
        for (size_t i = 0; i < q->n_items; i++) {
            const vd_item *it = &q->items[i];
            vd_writer_map_begin(w, 2 + (it->metadata != NULL));
            vd_writer_key(w, "id");
            vd_writer_str(w, it->id, it->id_len);
            vd_writer_key(w, "vector");
            put_vector(w, it->vector, it->vector_len);
            if (it->metadata) {
                vd_writer_key(w, "metadata");
                if (vd_writer_raw(w, it->metadata, it->metadata_len) != VD_OK) {
                    vd_writer_free(w);
                    return VD_ERR_DECODE; /* not representable in this format */
                }
            }
            vd_writer_map_end(w);
        }
        vd_writer_array_end(w);
        break;
    case VD_OP_DELETE:
        vd_writer_key(w, "ids");
        vd_writer_array_begin(w, (uint32_t)q->n_ids);
        for (size_t i = 0; i < q->n_ids; i++) vd_writer_str(w, q->ids[i], q->id_lens[i]);
        vd_writer_array_end(w);
        break;
    case VD_OP_DROP:
        vd_writer_key(w, "if_exists");
        vd_writer_bool(w, q->if_exists);
        break;
    case VD_OP_SEARCH:
        vd_writer_key(w, "vector");
        put_vector(w, q->vector, q->vector_len);
        vd_writer_key(w, "k");
        vd_writer_uint(w, q->k);
        vd_writer_key(w, "ef");
        vd_writer_uint(w, q->ef);
        vd_writer_key(w, "include_metadata");
        vd_writer_bool(w, q->include_metadata);
        if (q->min_offset >= 0) {
            vd_writer_key(w, "min_offset");
            vd_writer_int(w, q->min_offset);
        }
        break;
    default:
        break;
    }
    vd_writer_map_end(w);
    vd_error err;
    vd_err rc = vd_writer_take(w, out, len, &err);
    vd_writer_free(w);
    return rc;
}

static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void same_vector(const float *a, size_t an, const float *b, size_t bn)
{
    CHECK(an == bn);
    for (size_t i = 0; i < an; i++) CHECK(same_float(a[i], b[i]));
}

static void same_request(const vd_request *a, const vd_request *b, int metadata_bytes)
{
    CHECK(a->op == b->op);
    CHECK(a->index_len == b->index_len && memcmp(a->index, b->index, a->index_len) == 0);
    CHECK(b->index[b->index_len] == '\0');
    switch (a->op) {
    case VD_OP_CREATE:
        CHECK(memcmp(&a->params, &b->params, sizeof a->params) == 0);
        CHECK(a->if_not_exists == b->if_not_exists);
        break;
    case VD_OP_ADD:
        CHECK(a->n_items == b->n_items);
        for (size_t i = 0; i < a->n_items; i++) {
            const vd_item *x = &a->items[i], *y = &b->items[i];
            CHECK(x->id_len == y->id_len && memcmp(x->id, y->id, x->id_len) == 0);
            same_vector(x->vector, x->vector_len, y->vector, y->vector_len);
            CHECK((x->metadata == NULL) == (y->metadata == NULL));
            if (metadata_bytes)
                CHECK(x->metadata_len == y->metadata_len &&
                      (!x->metadata_len || memcmp(x->metadata, y->metadata, x->metadata_len) == 0));
        }
        break;
    case VD_OP_DELETE:
        CHECK(a->n_ids == b->n_ids);
        for (size_t i = 0; i < a->n_ids; i++)
            CHECK(a->id_lens[i] == b->id_lens[i] &&
                  memcmp(a->ids[i], b->ids[i], a->id_lens[i]) == 0);
        break;
    case VD_OP_DROP:
        CHECK(a->if_exists == b->if_exists);
        break;
    case VD_OP_SEARCH:
        same_vector(a->vector, a->vector_len, b->vector, b->vector_len);
        CHECK(a->k == b->k && a->ef == b->ef && a->min_offset == b->min_offset);
        CHECK(a->include_metadata == b->include_metadata);
        break;
    default:
        break;
    }
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static void round_trip(const vd_request *q)
{
    /* msgpack: every request survives, metadata byte for byte. */
    uint8_t *body;
    size_t len;
    CHECK(encode_request(q, VD_CT_MSGPACK, &body, &len) == VD_OK);
    vd_request *back = NULL;
    vd_error err;
    vd_err rc = vd_request_decode(body, len, VD_CT_MSGPACK, &lim, &back, &err);
    if (rc) fprintf(stderr, "fuzz_request: msgpack re-decode: %s\n", err.msg);
    CHECK(rc == VD_OK);
    same_request(q, back, 1);
    vd_request_free(back);
    free(body);

    /* JSON: NaN and infinities have no JSON form (they come out null), and
     * metadata changes form (bin as base64); the rest must survive. */
    int plain = 1;
    if (q->op == VD_OP_SEARCH) plain = all_finite(q->vector, q->vector_len);
    for (size_t i = 0; q->op == VD_OP_ADD && i < q->n_items && plain; i++)
        plain = all_finite(q->items[i].vector, q->items[i].vector_len) && !q->items[i].metadata;
    if (!plain) return;
    CHECK(encode_request(q, VD_CT_JSON, &body, &len) == VD_OK);
    back = NULL;
    rc = vd_request_decode(body, len, VD_CT_JSON, &lim, &back, &err);
    if (rc) fprintf(stderr, "fuzz_request: JSON re-decode: %s: %.*s\n", err.msg, (int)len, body);
    CHECK(rc == VD_OK);
    same_request(q, back, 0);
    vd_request_free(back);
    free(body);
}

/* ------------------------------------------------------------------ */
/* Applying. */

static void check_results(const vd_results *res, uint32_t k, size_t live)
{
    CHECK(res->n <= k && res->n <= live);
    for (size_t i = 0; i < res->n; i++) {
        if (!isfinite(res->hits[i].distance))
            fprintf(stderr, "fuzz_request: hit %zu distance %g\n", i, res->hits[i].distance);
        CHECK(isfinite(res->hits[i].distance));
        if (i) CHECK(res->hits[i - 1].distance <= res->hits[i].distance);
    }
}

static void search_reply(const vd_request *q, const vd_results *res, int include_metadata)
{
    for (int ct = VD_CT_MSGPACK; ct <= VD_CT_JSON; ct++) {
        vd_writer *w;
        CHECK(vd_writer_new(&w, (vd_content_type)ct) == VD_OK);
        CHECK(vd_reply_search(w, q->index, q->index_len, 41, res, include_metadata) == VD_OK);
        check_document(w);
        vd_writer_free(w);
    }
}

static vd_index *new_index(const vd_request *q, uint32_t dim)
{
    vd_index_params p;
    vd_index_params_init(&p);
    p.dimension = dim;
    p.m = 4;
    p.ef_construction = 16;
    p.distance = (vd_distance)((unsigned char)q->index[0] % 3);
    vd_index *ix = NULL;
    vd_error err;
    CHECK(vd_index_new(&ix, q->index, q->index_len, &p, &lim, &err) == VD_OK);
    return ix;
}

static void apply_create(const vd_request *q)
{
    vd_index *ix = NULL;
    vd_error err;
    vd_err rc = vd_index_new(&ix, q->index, q->index_len, &q->params, &lim, &err);
    if (rc) fprintf(stderr, "fuzz_request: create: %s\n", err.msg);
    CHECK(rc == VD_OK);
    vd_info_reply info = {.index = q->index,
                          .index_len = q->index_len,
                          .partition = 3,
                          .params = *vd_index_params_get(ix),
                          .length = 0,
                          .applied_offset = -1,
                          .checkpointed_offset = -1};
    for (int ct = VD_CT_MSGPACK; ct <= VD_CT_JSON; ct++) {
        vd_writer *w;
        CHECK(vd_writer_new(&w, (vd_content_type)ct) == VD_OK);
        CHECK(vd_reply_info(w, &info) == VD_OK);
        check_document(w);
        vd_writer_free(w);
    }
    vd_index_free(ix);
}

static void apply_add(const vd_request *q)
{
    size_t dim = q->items[0].vector_len;
    if (dim == 0 || dim > lim.max_dimension) return;
    vd_index *ix = new_index(q, (uint32_t)dim);
    vd_error err;
    vd_err rc = vd_index_check_items(ix, q->items, q->n_items, &err);
    if (rc) {
        CHECK(rc == VD_ERR_INVALID_VECTOR || rc == VD_ERR_LIMIT);
        CHECK(err.code == rc && err.msg[0]);
        check_error_reply(rc, err.msg);
    } else {
        rc = vd_index_add(ix, q->items, q->n_items, &err);
        if (rc) fprintf(stderr, "fuzz_request: add after check: %s\n", err.msg);
        CHECK(rc == VD_OK);
        size_t live = vd_index_len(ix);
        CHECK(live >= 1 && live <= q->n_items);
        for (size_t i = 0; i < q->n_items && i < 4; i++) {
            vd_results res;
            vd_results_init(&res);
            CHECK(vd_index_search(ix, q->items[i].vector, dim, 10, 0, &res, &err) == VD_OK);
            check_results(&res, 10, live);
            CHECK(res.n >= 1);
            search_reply(q, &res, 1);
            vd_results_free(&res);
        }
        vd_ack a = {.op = VD_OP_ADD,
                    .index = q->index,
                    .index_len = q->index_len,
                    .partition = 0,
                    .offset = 7,
                    .count = q->n_items};
        for (int ct = VD_CT_MSGPACK; ct <= VD_CT_JSON; ct++) {
            vd_writer *w;
            CHECK(vd_writer_new(&w, (vd_content_type)ct) == VD_OK);
            CHECK(vd_reply_ack(w, &a) == VD_OK);
            check_document(w);
            vd_writer_free(w);
        }
    }
    vd_index_free(ix);
}

static void apply_search(const vd_request *q)
{
    size_t dim = q->vector_len;
    if (dim == 0 || dim > lim.max_dimension) return;
    vd_index *ix = new_index(q, (uint32_t)dim);
    /* Three ordinary vectors: all ones, alternating +-1000, a ramp. */
    float *v = malloc(3 * dim * sizeof *v);
    CHECK(v);
    for (size_t i = 0; i < dim; i++) {
        v[i] = 1.0f;
        v[dim + i] = i % 2 ? -1000.0f : 1000.0f;
        v[2 * dim + i] = 0.5f * (float)(i + 1);
    }
    static const uint8_t meta[] = {0x81, 0xa1, 'k', 0xc4, 0x02, 0xff, 0x00}; /* {k: bin} */
    vd_item items[3] = {{"a", 1, v, dim, meta, sizeof meta},
                        {"b", 1, v + dim, dim, NULL, 0},
                        {"c", 1, v + 2 * dim, dim, NULL, 0}};
    vd_error err;
    CHECK(vd_index_add(ix, items, 3, &err) == VD_OK);
    vd_results res;
    vd_results_init(&res);
    vd_err rc = vd_index_search(ix, q->vector, q->vector_len, q->k, q->ef, &res, &err);
    if (rc) {
        CHECK(rc == VD_ERR_INVALID_VECTOR);
        CHECK(err.code == rc && err.msg[0]);
        check_error_reply(rc, err.msg);
    } else {
        check_results(&res, q->k, 3);
        search_reply(q, &res, q->include_metadata);
    }
    vd_results_free(&res);
    free(v);
    vd_index_free(ix);
}

/* ------------------------------------------------------------------ */
/* Peek against decode. */

static void check_peek(const uint8_t *body, size_t len, vd_content_type ct, vd_err rc,
                       const vd_request *q, const vd_error *err)
{
    char index[512], op[32];
    vd_err prc = vd_request_peek(body, len, ct, index, sizeof index, op, sizeof op);
    CHECK(prc == VD_OK || prc == VD_ERR_DECODE);
    if (rc == VD_OK) {
        /* A request that decodes is a well-formed map, and peek reads the
         * same op and index. */
        CHECK(prc == VD_OK);
        CHECK(strcmp(op, vd_op_name(q->op)) == 0);
        CHECK(strcmp(index, q->index) == 0);
        return;
    }
    if (rc == VD_ERR_DECODE) return; /* peek may still find fields before a malformed part */
    /* The JSON tokenizer stops at its depth limit before the end of the
     * text: the body may be malformed further on, and peek, which scans
     * with the same tokenizer, stops there too. */
    if (ct == VD_CT_JSON && rc == VD_ERR_LIMIT && strstr(err->msg, "body: JSON nested deeper")) {
        CHECK(prc == VD_ERR_DECODE);
        return;
    }
    /* Past the whole-body checks, so the body is a well-formed map. */
    if (prc != VD_OK)
        fprintf(stderr, "fuzz_request: decode said %s \"%s\", peek found the body malformed\n",
                vd_err_code(rc), err->msg);
    CHECK(prc == VD_OK);
    /* The decoder found no usable op: peek must not claim one. */
    if (strncmp(err->msg, "op: missing", 11) == 0 || strncmp(err->msg, "op: expected", 12) == 0) {
        if (op[0])
            fprintf(stderr, "fuzz_request: decode said \"%s\", peek found op \"%s\"\n", err->msg,
                    op);
        CHECK(op[0] == '\0');
    }
    if (strncmp(err->msg, "index: missing", 14) == 0 ||
        strncmp(err->msg, "index: expected", 15) == 0) {
        if (index[0])
            fprintf(stderr, "fuzz_request: decode said \"%s\", peek found index \"%s\"\n", err->msg,
                    index);
        CHECK(index[0] == '\0');
    }
    /* An op the decoder refused as unknown is not one of the six to peek. */
    if (rc == VD_ERR_UNKNOWN_OP) {
        vd_op o;
        CHECK(op[0] == '\0' || vd_op_parse(op, strlen(op), &o) != 0);
    }
}

/* ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 'L': small limits, so that every limit is reachable in a few KB. */
    vd_limits_init(&lim);
    if (size && data[0] == 'L') {
        lim.max_dimension = 8;
        lim.max_batch = 4;
        lim.max_id_len = 8;
        lim.max_metadata = 64;
        lim.max_name_len = 16;
        data++;
        size--;
    }
    vd_content_type ct = VD_CT_MSGPACK;
    if (size && data[0] == 'J') {
        ct = VD_CT_JSON;
        data++;
        size--;
    }
    /* The content-type header parser, on the same bytes. */
    (void)vd_content_type_parse((const char *)data, size < 64 ? size : 64);

    vd_request *sentinel = (vd_request *)&lim; /* any non-NULL pointer */
    vd_request *q = sentinel;
    vd_error err;
    memset(&err, 0, sizeof err);
    vd_err rc = vd_request_decode(data, size, ct, &lim, &q, &err);
    check_peek(data, size, ct, rc, q, &err);
    if (rc) {
        CHECK(q == sentinel);
        CHECK(rc == VD_ERR_DECODE || rc == VD_ERR_INVALID_REQUEST || rc == VD_ERR_UNKNOWN_OP ||
              rc == VD_ERR_INVALID_PARAMS || rc == VD_ERR_UNKNOWN_DISTANCE ||
              rc == VD_ERR_INVALID_VECTOR || rc == VD_ERR_LIMIT || rc == VD_ERR_NOMEM);
        CHECK(err.code == rc && err.msg[0]);
        check_error_reply(rc, err.msg);
        return 0;
    }
    CHECK(q != sentinel && q != NULL);
    CHECK(q->index_len >= 1 && q->index_len <= lim.max_name_len);
    CHECK(strlen(q->index) == q->index_len);
    round_trip(q);
    switch (q->op) {
    case VD_OP_CREATE:
        apply_create(q);
        break;
    case VD_OP_ADD:
        CHECK(q->n_items >= 1 && q->n_items <= lim.max_batch);
        apply_add(q);
        break;
    case VD_OP_DELETE:
        CHECK(q->n_ids >= 1 && q->n_ids <= lim.max_batch);
        break;
    case VD_OP_SEARCH:
        CHECK(q->k >= 1 && q->k <= VD_MAX_K && q->ef <= VD_MAX_EF);
        apply_search(q);
        break;
    default:
        break;
    }
    vd_request_free(q);
    return 0;
}
