/*
 * codec.c - request decoding: content types, ops, vd_request_decode() and
 * vd_request_peek().
 *
 * Design note. A msgpack body is first walked once as a whole with the
 * allocation-free vd_mp_skip() (is it exactly one well-formed value, with
 * no trailing bytes?) and only then decoded field by field. After that
 * walk every declared array length is backed by real bytes, so no
 * allocation below can be larger than a small multiple of the body. A JSON
 * body is converted to msgpack first (request_json.c), so there is one
 * decoding path and one set of error messages for both formats.
 *
 * Everything a vd_request points to is carved from one arena (a chain of
 * malloc'd blocks) that holds the vd_request itself too; vd_request_free()
 * releases the chain.
 */
#include "codec/codec.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/mpread.h"
#include "codec/request_internal.h"
#include "common/utf8.h"

/* ------------------------------------------------------------------ */
/* Content types and ops. */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

vd_content_type vd_content_type_parse(const char *s, size_t len)
{
    if (!s) return VD_CT_MSGPACK;
    const char *semi = memchr(s, ';', len);
    if (semi) len = (size_t)(semi - s);
    while (len && is_blank(*s)) s++, len--;
    while (len && is_blank(s[len - 1])) len--;
    static const char json[] = "application/json", app[] = "application/", sfx[] = "+json";
    if (len == sizeof json - 1 && strncasecmp(s, json, len) == 0) return VD_CT_JSON;
    if (len > sizeof app - 1 + sizeof sfx - 1 && strncasecmp(s, app, sizeof app - 1) == 0 &&
        strncasecmp(s + len - (sizeof sfx - 1), sfx, sizeof sfx - 1) == 0)
        return VD_CT_JSON;
    return VD_CT_MSGPACK;
}

const char *vd_content_type_name(vd_content_type ct)
{
    return ct == VD_CT_JSON ? "application/json" : "application/msgpack";
}

static const char *const op_names[VD_OP__COUNT] = {
    [VD_OP_CREATE] = "create", [VD_OP_ADD] = "add",       [VD_OP_DELETE] = "delete",
    [VD_OP_DROP] = "drop",     [VD_OP_SEARCH] = "search", [VD_OP_INFO] = "info",
};

const char *vd_op_name(vd_op op)
{
    return (unsigned)op < VD_OP__COUNT ? op_names[op] : "unknown";
}

int vd_op_is_command(vd_op op)
{
    return op == VD_OP_CREATE || op == VD_OP_ADD || op == VD_OP_DELETE || op == VD_OP_DROP;
}

int vd_op_parse(const char *s, size_t len, vd_op *out)
{
    for (int i = 0; i < VD_OP__COUNT; i++) {
        if (strlen(op_names[i]) == len && memcmp(op_names[i], s, len) == 0) {
            *out = (vd_op)i;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Arena. */

struct vd_codec_arena {
    struct vd_codec_arena *next; /* older block */
    size_t cap, used;
};

#define ARENA_HDR   ((sizeof(struct vd_codec_arena) + 15) & ~(size_t)15)
#define ARENA_BLOCK 16384

static void arena_free(struct vd_codec_arena *a)
{
    while (a) {
        struct vd_codec_arena *next = a->next;
        free(a);
        a = next;
    }
}

/* 16-byte aligned, zeroed memory from *a (a new block when needed). */
static void *arena_alloc(struct vd_codec_arena **a, size_t n)
{
    if (n > SIZE_MAX / 2) return NULL;
    n = (n + 15) & ~(size_t)15;
    struct vd_codec_arena *b = *a;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(ARENA_HDR + cap);
        if (!b) return NULL;
        b->next = *a;
        b->cap = cap;
        b->used = 0;
        *a = b;
    }
    void *p = (char *)b + ARENA_HDR + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

/* ------------------------------------------------------------------ */
/* Decoding helpers. */

const char *const vd_request_field_names[F__COUNT] = {
    [F_OP] = "op",
    [F_INDEX] = "index",
    [F_DIMENSION] = "dimension",
    [F_M] = "m",
    [F_EF_CONSTRUCTION] = "ef_construction",
    [F_EF_SEARCH] = "ef_search",
    [F_DISTANCE] = "distance",
    [F_IF_NOT_EXISTS] = "if_not_exists",
    [F_ITEMS] = "items",
    [F_IDS] = "ids",
    [F_IF_EXISTS] = "if_exists",
    [F_VECTOR] = "vector",
    [F_K] = "k",
    [F_EF] = "ef",
    [F_MIN_OFFSET] = "min_offset",
    [F_INCLUDE_METADATA] = "include_metadata",
};

enum { I_ID, I_VECTOR, I_METADATA, I__COUNT };
static const char *const item_names[I__COUNT] = {"id", "vector", "metadata"};

typedef struct dec {
    const vd_limits *lim;
    struct vd_codec_arena *arena;
    vd_error *err;
    const char *op; /* for "missing (required by <op>)" */
} dec;

static vd_err malformed(vd_error *err)
{
    return vd_error_set(err, VD_ERR_DECODE, "body: truncated or malformed msgpack");
}

/*
 * Reads n key/value pairs from r, recording the values of the keys listed
 * in names (string keys only; other keys are skipped). A repeated key:
 * the last one wins (a converted JSON object keeps every key, so the same
 * holds for JSON). Returns 0, or -1 when malformed.
 */
static int scan_map(vd_mp_reader *r, uint32_t n, const char *const *names, size_t n_names,
                    span *out)
{
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *ks = r->p;
        vd_mp_value k;
        if (vd_mp_read(r, &k)) return -1;
        if (k.type == VD_MP_ARRAY || k.type == VD_MP_MAP) {
            r->p = ks;
            if (vd_mp_skip(r)) return -1;
        }
        const uint8_t *vs = r->p;
        if (vd_mp_skip(r)) return -1;
        if (k.type != VD_MP_STR) continue;
        for (size_t j = 0; j < n_names; j++) {
            if (strlen(names[j]) == k.len && memcmp(names[j], k.data, k.len) == 0) {
                out[j].p = vs;
                out[j].len = (size_t)(r->p - vs);
            }
        }
    }
    return 0;
}

/* Reads the first value header of a span; nil counts as absent. */
static int span_value(const span *s, vd_mp_reader *r, vd_mp_value *v)
{
    if (!s->p) return 0;
    vd_mp_reader_init(r, s->p, s->len);
    if (vd_mp_read(r, v)) return -1;
    return v->type != VD_MP_NIL;
}

static vd_err type_error(dec *d, const char *path, const char *want, const vd_mp_value *v)
{
    return vd_error_set(d->err, VD_ERR_INVALID_REQUEST, "%s: expected %s, got %s", path, want,
                        vd_mp_type_name(v->type));
}

static vd_err missing(dec *d, const char *path)
{
    return vd_error_set(d->err, VD_ERR_INVALID_REQUEST, "%s: missing (required by %s)", path,
                        d->op);
}

/* An optional integer: *present 0 when absent or nil. */
static vd_err get_int(dec *d, const span *s, const char *path, int *present, int64_t *out)
{
    vd_mp_reader r;
    vd_mp_value v;
    int has = span_value(s, &r, &v);
    if (has < 0) return malformed(d->err);
    *present = has;
    if (!has) return VD_OK;
    if (v.type == VD_MP_UINT)
        return vd_error_set(d->err, VD_ERR_INVALID_PARAMS, "%s: %" PRIu64 " is out of range", path,
                            v.v.u);
    if (v.type != VD_MP_INT) return type_error(d, path, "an integer", &v);
    *out = v.v.i;
    return VD_OK;
}

/* An optional uint32 params field; range checks are vd_index_params_check's. */
static vd_err get_u32(dec *d, const span *s, const char *path, int required, uint32_t *out)
{
    int has = 0;
    int64_t v = 0;
    vd_err rc = get_int(d, s, path, &has, &v);
    if (rc) return rc;
    if (!has) return required ? missing(d, path) : VD_OK;
    if (v < 0 || v > (int64_t)UINT32_MAX)
        return vd_error_set(d->err, VD_ERR_INVALID_PARAMS, "%s: %" PRId64 " is out of range", path,
                            v);
    *out = (uint32_t)v;
    return VD_OK;
}

/* An optional boolean; *out untouched when absent or nil. */
static vd_err get_bool(dec *d, const span *s, const char *path, int *out)
{
    vd_mp_reader r;
    vd_mp_value v;
    int has = span_value(s, &r, &v);
    if (has < 0) return malformed(d->err);
    if (!has) return VD_OK;
    if (v.type != VD_MP_BOOL) return type_error(d, path, "a boolean", &v);
    *out = v.v.b;
    return VD_OK;
}

/* A required string (nil counts as missing). */
static vd_err get_str(dec *d, const span *s, const char *path, const char **p, size_t *len)
{
    vd_mp_reader r;
    vd_mp_value v;
    int has = span_value(s, &r, &v);
    if (has < 0) return malformed(d->err);
    if (!has) return missing(d, path);
    if (v.type != VD_MP_STR) return type_error(d, path, "a string", &v);
    *p = (const char *)v.data;
    *len = v.len;
    return VD_OK;
}

/* Same rules and codes as the index's own id check. */
static vd_err check_id(dec *d, const char *path, const char *id, size_t len)
{
    if (len == 0) return vd_error_set(d->err, VD_ERR_INVALID_VECTOR, "%s: empty", path);
    if (len > d->lim->max_id_len)
        return vd_error_set(d->err, VD_ERR_LIMIT, "%s: %zu bytes exceeds the limit of %u", path,
                            len, d->lim->max_id_len);
    if (!vd_utf8_valid(id, len))
        return vd_error_set(d->err, VD_ERR_INVALID_VECTOR, "%s: not valid UTF-8", path);
    return VD_OK;
}

/* A NUL-terminated copy in the arena. */
static char *arena_strdup(dec *d, const char *s, size_t len)
{
    char *c = arena_alloc(&d->arena, len + 1);
    if (c) memcpy(c, s, len); /* zeroed: already terminated */
    return c;
}

static vd_err nomem(dec *d)
{
    return vd_error_set(d->err, VD_ERR_NOMEM, "request: out of memory");
}

/*
 * A vector: an array of numbers (integers or floats, converted to float)
 * or a bin of little-endian float32 (the host is little-endian: CMake
 * refuses to configure otherwise).
 */
static vd_err get_vector(dec *d, const span *s, const char *path, const float **out,
                         size_t *out_len)
{
    vd_mp_reader r;
    vd_mp_value v;
    int has = span_value(s, &r, &v);
    if (has < 0) return malformed(d->err);
    if (!has) return missing(d, path);
    size_t n;
    if (v.type == VD_MP_BIN) {
        if (v.len % 4)
            return vd_error_set(d->err, VD_ERR_INVALID_REQUEST,
                                "%s: binary length %u is not a multiple of 4 (float32)", path,
                                v.len);
        n = v.len / 4;
    } else if (v.type == VD_MP_ARRAY) {
        n = v.v.n;
    } else {
        return type_error(d, path, "an array of numbers or a float32 binary", &v);
    }
    if (n > d->lim->max_dimension)
        return vd_error_set(d->err, VD_ERR_INVALID_VECTOR,
                            "%s: %zu components exceeds the limit of %u (max_dimension)", path, n,
                            d->lim->max_dimension);
    float *f = arena_alloc(&d->arena, n * sizeof *f);
    if (!f) return nomem(d);
    if (v.type == VD_MP_BIN) {
        memcpy(f, v.data, v.len);
    } else {
        for (size_t i = 0; i < n; i++) {
            vd_mp_value e;
            if (vd_mp_read(&r, &e)) return malformed(d->err);
            switch (e.type) {
            case VD_MP_INT:
                f[i] = (float)e.v.i;
                break;
            case VD_MP_UINT:
                f[i] = (float)e.v.u;
                break;
            case VD_MP_FLOAT32:
                f[i] = (float)e.v.f;
                break;
            case VD_MP_FLOAT64:
                /* Converting a finite double beyond float's range is undefined
                 * behaviour in C. Rounding to nearest, everything below
                 * FLT_MAX + half its ulp (2^103) is FLT_MAX - including
                 * "3.4028235e38", FLT_MAX's own shortest decimal form - and
                 * the rest would be infinite: refused. NaN and infinities
                 * pass through for the index to reject. */
                if (isfinite(e.v.f) && fabs(e.v.f) > FLT_MAX) {
                    if (fabs(e.v.f) >= (double)FLT_MAX + 0x1p103)
                        return vd_error_set(d->err, VD_ERR_INVALID_VECTOR,
                                            "%s[%zu]: %g does not fit in a float32", path, i,
                                            e.v.f);
                    f[i] = e.v.f > 0 ? FLT_MAX : -FLT_MAX;
                    break;
                }
                f[i] = (float)e.v.f;
                break;
            default:
                return vd_error_set(d->err, VD_ERR_INVALID_REQUEST,
                                    "%s[%zu]: expected a number, got %s", path, i,
                                    vd_mp_type_name(e.type));
            }
        }
    }
    *out = f;
    *out_len = n;
    return VD_OK;
}

/*
 * Checks one metadata value: nesting within VD_CODEC_MAX_DEPTH, no ext
 * values, map keys are strings, strings are UTF-8 - so that every stored
 * value can be written back as JSON without loss.
 */
static vd_err check_metadata(dec *d, vd_mp_reader *r, const char *path, int depth)
{
    vd_mp_value v;
    if (vd_mp_read(r, &v)) return malformed(d->err);
    switch (v.type) {
    case VD_MP_EXT:
        return vd_error_set(d->err, VD_ERR_INVALID_REQUEST,
                            "%s: msgpack extension values are not supported", path);
    case VD_MP_STR:
        if (!vd_utf8_valid((const char *)v.data, v.len))
            return vd_error_set(d->err, VD_ERR_INVALID_REQUEST,
                                "%s: strings must be valid UTF-8 (use binary for bytes)", path);
        return VD_OK;
    case VD_MP_ARRAY:
    case VD_MP_MAP:
        if (depth >= VD_CODEC_MAX_DEPTH)
            return vd_error_set(d->err, VD_ERR_LIMIT, "%s: nested deeper than %d levels", path,
                                VD_CODEC_MAX_DEPTH);
        for (uint32_t i = 0; i < v.v.n; i++) {
            vd_err rc;
            if (v.type == VD_MP_MAP) {
                vd_mp_reader kr = *r;
                vd_mp_value k;
                if (vd_mp_read(&kr, &k)) return malformed(d->err);
                if (k.type != VD_MP_STR)
                    return vd_error_set(d->err, VD_ERR_INVALID_REQUEST,
                                        "%s: map keys must be strings, got %s", path,
                                        vd_mp_type_name(k.type));
                if ((rc = check_metadata(d, r, path, depth + 1))) return rc;
            }
            if ((rc = check_metadata(d, r, path, depth + 1))) return rc;
        }
        return VD_OK;
    default:
        return VD_OK;
    }
}

/* ------------------------------------------------------------------ */
/* Ops. */

static vd_err decode_create(dec *d, const span *f, vd_request *q)
{
    vd_err rc;
    vd_index_params_init(&q->params);
    if ((rc = get_u32(d, &f[F_DIMENSION], "dimension", 1, &q->params.dimension))) return rc;
    if ((rc = get_u32(d, &f[F_M], "m", 0, &q->params.m))) return rc;
    if ((rc = get_u32(d, &f[F_EF_CONSTRUCTION], "ef_construction", 0, &q->params.ef_construction)))
        return rc;
    if ((rc = get_u32(d, &f[F_EF_SEARCH], "ef_search", 0, &q->params.ef_search))) return rc;
    vd_mp_reader r;
    vd_mp_value v;
    int has = span_value(&f[F_DISTANCE], &r, &v);
    if (has < 0) return malformed(d->err);
    if (has) {
        if (v.type != VD_MP_STR) return type_error(d, "distance", "a string", &v);
        if ((rc = vd_distance_parse((const char *)v.data, v.len, &q->params.distance, d->err)))
            return rc;
    }
    if ((rc = get_bool(d, &f[F_IF_NOT_EXISTS], "if_not_exists", &q->if_not_exists))) return rc;
    return vd_index_params_check(&q->params, d->lim, d->err);
}

/* Reads the header of a batch array (items / ids) and checks its size. */
static vd_err batch_header(dec *d, const span *s, const char *path, vd_mp_reader *r, uint32_t *n)
{
    vd_mp_value v;
    int has = span_value(s, r, &v);
    if (has < 0) return malformed(d->err);
    if (!has) return missing(d, path);
    if (v.type != VD_MP_ARRAY) return type_error(d, path, "an array", &v);
    if (v.v.n == 0)
        return vd_error_set(d->err, VD_ERR_INVALID_REQUEST, "%s: must not be empty", path);
    if (v.v.n > d->lim->max_batch)
        return vd_error_set(d->err, VD_ERR_LIMIT,
                            "%s: %u entries exceeds the limit of %u per batch", path, v.v.n,
                            d->lim->max_batch);
    *n = v.v.n;
    return VD_OK;
}

static vd_err decode_item(dec *d, vd_mp_reader *r, uint32_t i, vd_item *it)
{
    char path[48];
    vd_mp_value v;
    vd_err rc;
    if (vd_mp_read(r, &v)) return malformed(d->err);
    if (v.type != VD_MP_MAP) {
        snprintf(path, sizeof path, "items[%u]", i);
        return type_error(d, path, "a map", &v);
    }
    span g[I__COUNT] = {{0}};
    if (scan_map(r, v.v.n, item_names, I__COUNT, g)) return malformed(d->err);

    const char *id;
    size_t id_len;
    snprintf(path, sizeof path, "items[%u].id", i);
    if ((rc = get_str(d, &g[I_ID], path, &id, &id_len))) return rc;
    if ((rc = check_id(d, path, id, id_len))) return rc;
    if (!(it->id = arena_strdup(d, id, id_len))) return nomem(d);
    it->id_len = id_len;

    snprintf(path, sizeof path, "items[%u].vector", i);
    if ((rc = get_vector(d, &g[I_VECTOR], path, &it->vector, &it->vector_len))) return rc;

    snprintf(path, sizeof path, "items[%u].metadata", i);
    vd_mp_reader mr;
    int has = span_value(&g[I_METADATA], &mr, &v);
    if (has < 0) return malformed(d->err);
    if (has) {
        if (g[I_METADATA].len > d->lim->max_metadata)
            return vd_error_set(d->err, VD_ERR_LIMIT, "%s: %zu bytes exceeds the limit of %u", path,
                                g[I_METADATA].len, d->lim->max_metadata);
        vd_mp_reader_init(&mr, g[I_METADATA].p, g[I_METADATA].len);
        if ((rc = check_metadata(d, &mr, path, 0))) return rc;
        uint8_t *m = arena_alloc(&d->arena, g[I_METADATA].len);
        if (!m) return nomem(d);
        memcpy(m, g[I_METADATA].p, g[I_METADATA].len);
        it->metadata = m;
        it->metadata_len = g[I_METADATA].len;
    }
    return VD_OK;
}

static vd_err decode_add(dec *d, const span *f, vd_request *q)
{
    vd_mp_reader r;
    uint32_t n;
    vd_err rc = batch_header(d, &f[F_ITEMS], "items", &r, &n);
    if (rc) return rc;
    vd_item *items = arena_alloc(&d->arena, (size_t)n * sizeof *items);
    if (!items) return nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = decode_item(d, &r, i, &items[i]))) return rc;
    }
    q->items = items;
    q->n_items = n;
    return VD_OK;
}

static vd_err decode_delete(dec *d, const span *f, vd_request *q)
{
    vd_mp_reader r;
    uint32_t n;
    vd_err rc = batch_header(d, &f[F_IDS], "ids", &r, &n);
    if (rc) return rc;
    const char **ids = arena_alloc(&d->arena, (size_t)n * sizeof *ids);
    size_t *lens = arena_alloc(&d->arena, (size_t)n * sizeof *lens);
    if (!ids || !lens) return nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        char path[32];
        vd_mp_value v;
        snprintf(path, sizeof path, "ids[%u]", i);
        if (vd_mp_read(&r, &v)) return malformed(d->err);
        if (v.type != VD_MP_STR) return type_error(d, path, "a string", &v);
        if ((rc = check_id(d, path, (const char *)v.data, v.len))) return rc;
        if (!(ids[i] = arena_strdup(d, (const char *)v.data, v.len))) return nomem(d);
        lens[i] = v.len;
    }
    q->ids = ids;
    q->id_lens = lens;
    q->n_ids = n;
    return VD_OK;
}

static vd_err decode_search(dec *d, const span *f, vd_request *q)
{
    vd_err rc;
    int has = 0;
    int64_t v = 0;
    if ((rc = get_vector(d, &f[F_VECTOR], "vector", &q->vector, &q->vector_len))) return rc;
    if ((rc = get_int(d, &f[F_K], "k", &has, &v))) return rc;
    if (has && (v < 1 || v > VD_MAX_K))
        return vd_error_set(d->err, VD_ERR_INVALID_PARAMS, "k: %" PRId64 " is outside 1..%d", v,
                            VD_MAX_K);
    q->k = has ? (uint32_t)v : VD_DEFAULT_K;
    if ((rc = get_int(d, &f[F_EF], "ef", &has, &v))) return rc;
    if (has && (v < 0 || v > VD_MAX_EF))
        return vd_error_set(d->err, VD_ERR_INVALID_PARAMS, "ef: %" PRId64 " is outside 0..%d", v,
                            VD_MAX_EF);
    q->ef = has ? (uint32_t)v : 0;
    if ((rc = get_int(d, &f[F_MIN_OFFSET], "min_offset", &has, &v))) return rc;
    if (has && v < 0)
        return vd_error_set(d->err, VD_ERR_INVALID_PARAMS,
                            "min_offset: %" PRId64 " is negative (offsets start at 0)", v);
    q->min_offset = has ? v : -1;
    q->include_metadata = 1;
    return get_bool(d, &f[F_INCLUDE_METADATA], "include_metadata", &q->include_metadata);
}

/* Decodes a msgpack body (the original one, or a converted JSON one). */
vd_err vd_request_decode_msgpack(const uint8_t *buf, size_t len, const vd_limits *lim,
                                 vd_request **out, vd_error *err)
{
    if (len == 0) return vd_error_set(err, VD_ERR_DECODE, "body: empty");
    vd_mp_reader r, whole;
    vd_mp_reader_init(&r, buf, len);
    whole = r;
    if (vd_mp_skip(&whole)) return malformed(err);
    if (vd_mp_remaining(&whole))
        return vd_error_set(err, VD_ERR_DECODE, "body: %zu trailing bytes after the message",
                            vd_mp_remaining(&whole));
    vd_mp_value top;
    if (vd_mp_read(&r, &top)) return malformed(err);
    if (top.type != VD_MP_MAP)
        return vd_error_set(err, VD_ERR_DECODE, "body: expected a map, got %s",
                            vd_mp_type_name(top.type));
    span f[F__COUNT] = {{0}};
    if (scan_map(&r, top.v.n, vd_request_field_names, F__COUNT, f)) return malformed(err);
    return vd_request_decode_fields(f, lim, out, err);
}

/*
 * Decodes a request from the values of its top-level fields (absent ones
 * have p NULL). Each span holds one msgpack value, or at least as much of
 * it as the decoding reads.
 */
vd_err vd_request_decode_fields(const span *f, const vd_limits *lim, vd_request **out,
                                vd_error *err)
{
    dec d = {.lim = lim, .err = err, .op = "every request"};
    const char *s;
    size_t n;
    vd_op op;
    vd_err rc = get_str(&d, &f[F_OP], "op", &s, &n);
    if (rc) return rc;
    if (vd_op_parse(s, n, &op))
        return vd_error_set(err, VD_ERR_UNKNOWN_OP,
                            "op: unknown operation \"%.*s\" (expected create, add, delete, drop, "
                            "search or info)",
                            (int)(n > 64 ? 64 : n), s);
    const char *index;
    size_t index_len;
    if ((rc = get_str(&d, &f[F_INDEX], "index", &index, &index_len))) return rc;
    if (index_len == 0 || index_len > lim->max_name_len)
        return vd_error_set(err, VD_ERR_INVALID_PARAMS, "index: length %zu is outside 1..%u",
                            index_len, lim->max_name_len);
    if (!vd_utf8_valid(index, index_len) || memchr(index, '\0', index_len))
        return vd_error_set(err, VD_ERR_INVALID_PARAMS,
                            "index: not valid UTF-8 text without NUL bytes");

    d.op = vd_op_name(op);
    vd_request *q = arena_alloc(&d.arena, sizeof *q);
    if (!q || !(q->index = arena_strdup(&d, index, index_len))) {
        arena_free(d.arena);
        return nomem(&d);
    }
    q->op = op;
    q->index_len = index_len;
    q->min_offset = -1;
    switch (op) {
    case VD_OP_CREATE:
        rc = decode_create(&d, f, q);
        break;
    case VD_OP_ADD:
        rc = decode_add(&d, f, q);
        break;
    case VD_OP_DELETE:
        rc = decode_delete(&d, f, q);
        break;
    case VD_OP_DROP:
        rc = get_bool(&d, &f[F_IF_EXISTS], "if_exists", &q->if_exists);
        break;
    case VD_OP_SEARCH:
        rc = decode_search(&d, f, q);
        break;
    case VD_OP_INFO:
    default:
        rc = VD_OK;
    }
    if (rc) {
        arena_free(d.arena);
        return rc;
    }
    q->arena_ = d.arena;
    *out = q;
    return VD_OK;
}

/* ------------------------------------------------------------------ */
/* Public entry points. */

vd_err vd_request_decode(const void *body, size_t len, vd_content_type ct, const vd_limits *limits,
                         vd_request **out, vd_error *err)
{
    vd_limits def;
    if (!limits) {
        vd_limits_init(&def);
        limits = &def;
    }
    if (!body) len = 0;
    if (ct != VD_CT_JSON) return vd_request_decode_msgpack(body, len, limits, out, err);
    return vd_request_decode_json(body, len, limits, out, err);
}

void vd_request_free(vd_request *r)
{
    if (r) arena_free(r->arena_); /* r itself lives in the arena */
}

/* Copies s into out when it fits with its NUL and holds no NUL itself. */
void vd_request_peek_copy(char *out, size_t cap, const char *s, size_t len)
{
    if (cap > len && !memchr(s, '\0', len)) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
}

static vd_err peek_msgpack(const uint8_t *buf, size_t len, char *index_out, size_t index_cap,
                           char *op_out, size_t op_cap)
{
    vd_mp_reader r;
    vd_mp_value top;
    vd_mp_reader_init(&r, buf, len);
    if (vd_mp_read(&r, &top) || top.type != VD_MP_MAP) return VD_ERR_DECODE;
    for (uint32_t i = 0; i < top.v.n; i++) {
        const uint8_t *start = r.p;
        vd_mp_value k, v;
        if (vd_mp_read(&r, &k)) return VD_ERR_DECODE;
        if (k.type == VD_MP_ARRAY || k.type == VD_MP_MAP) {
            r.p = start;
            if (vd_mp_skip(&r)) return VD_ERR_DECODE;
        }
        start = r.p;
        if (vd_mp_read(&r, &v)) return VD_ERR_DECODE;
        if (v.type == VD_MP_ARRAY || v.type == VD_MP_MAP) {
            r.p = start;
            if (vd_mp_skip(&r)) return VD_ERR_DECODE;
        }
        if (k.type != VD_MP_STR) continue;
        /* A repeated key: the last one wins, as in the decoder, even when
         * its value is not a usable string (it then clears the output). */
        char *out = NULL;
        size_t cap = 0;
        if (k.len == 2 && memcmp(k.data, "op", 2) == 0)
            out = op_out, cap = op_cap;
        else if (k.len == 5 && memcmp(k.data, "index", 5) == 0)
            out = index_out, cap = index_cap;
        if (!cap) continue;
        out[0] = '\0';
        if (v.type == VD_MP_STR) vd_request_peek_copy(out, cap, (const char *)v.data, v.len);
    }
    return vd_mp_remaining(&r) ? VD_ERR_DECODE : VD_OK;
}

vd_err vd_request_peek(const void *body, size_t len, vd_content_type ct, char *index_out,
                       size_t index_cap, char *op_out, size_t op_cap)
{
    if (index_cap) index_out[0] = '\0';
    if (op_cap) op_out[0] = '\0';
    if (!body || len == 0) return VD_ERR_DECODE;
    if (ct != VD_CT_JSON) return peek_msgpack(body, len, index_out, index_cap, op_out, op_cap);
    return vd_request_peek_json(body, len, index_out, index_cap, op_out, op_cap);
}
