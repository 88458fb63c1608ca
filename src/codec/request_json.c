/*
 * request_json.c - JSON requests (schemas/messages.md): a body is scanned
 * and converted to msgpack by json.c (no tree: the output plus 4 bytes per
 * array or object), then decoded by codec.c's msgpack path, so both formats
 * share one decoder and one set of error messages. A JSON add, delete or
 * search whose batch or vector is longer than its limit is refused from the
 * first of json.c's two passes: the msgpack decoder would read only op,
 * index and that array's length before refusing it, so those three are all
 * it is given.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "codec/mpread.h"
#include "codec/request_internal.h"

static const char *json_kind_name(char kind)
{
    switch (kind) {
    case '[':
        return "array";
    case '"':
        return "string";
    case '0':
        return "number";
    case 't':
    case 'f':
        return "boolean";
    case 'n':
        return "null";
    default:
        return "object";
    }
}

/* Scans a JSON body that must be an object (vd_json_scan's contract). */
static vd_err json_scan_object(vd_json *j, const void *body, size_t len, const char *const *keys,
                               vd_json_field *fields, size_t n_keys, int with_counts, vd_error *err)
{
    if (len == 0) return vd_error_set(err, VD_ERR_DECODE, "body: empty");
    vd_err rc = vd_json_scan(j, body, len, keys, fields, n_keys, with_counts, err);
    if (rc) return rc;
    if (j->kind != '{') {
        vd_json_release(j);
        return vd_error_set(err, VD_ERR_DECODE, "body: expected a JSON object, got %s",
                            json_kind_name(j->kind));
    }
    return VD_OK;
}

/* The msgpack of one top-level field, malloc'd; NULL when out of memory. */
static uint8_t *json_field(const vd_json *j, const vd_json_field *f)
{
    uint8_t *mp = malloc(f->mp_len ? f->mp_len : 1);
    if (mp && vd_json_write(j, f, mp, NULL)) {
        free(mp);
        return NULL;
    }
    return mp;
}

/*
 * The early refusal (see the design note). Returns 1 with *rc set when the
 * request is refused from the scan alone, 0 when it must be converted.
 */
static int json_refuse_early(const vd_json *j, const vd_json_field *f, const vd_limits *lim,
                             vd_err *rc, vd_error *err)
{
    const vd_json_field *op_f = &f[F_OP];
    if (!op_f->found || op_f->kind != '"' || op_f->mp_len > 16) return 0;
    uint8_t op_mp[16];
    vd_mp_reader r;
    vd_mp_value v;
    vd_op op;
    if (vd_json_write(j, op_f, op_mp, NULL)) return 0;
    vd_mp_reader_init(&r, op_mp, op_f->mp_len);
    if (vd_mp_read(&r, &v) || v.type != VD_MP_STR || vd_op_parse((const char *)v.data, v.len, &op))
        return 0;
    int which = op == VD_OP_ADD ? F_ITEMS : op == VD_OP_DELETE ? F_IDS : F_VECTOR;
    uint32_t limit = op == VD_OP_SEARCH ? lim->max_dimension : lim->max_batch;
    if ((op != VD_OP_ADD && op != VD_OP_DELETE && op != VD_OP_SEARCH) || !f[which].found ||
        f[which].kind != '[' || f[which].count <= limit)
        return 0;

    span s[F__COUNT] = {{0}};
    uint8_t *index_mp = NULL;
    if (f[F_INDEX].found && !(index_mp = json_field(j, &f[F_INDEX]))) return 0;
    if (index_mp) s[F_INDEX] = (span){index_mp, f[F_INDEX].mp_len};
    s[F_OP] = (span){op_mp, op_f->mp_len};
    uint32_t n = f[which].count;
    const uint8_t header[5] = {0xdd, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                               (uint8_t)n};
    s[which] = (span){header, sizeof header};
    vd_request *q = NULL;
    vd_error e = {0};
    *rc = vd_request_decode_fields(s, lim, &q, &e);
    free(index_mp);
    if (*rc == VD_OK || *rc == VD_ERR_NOMEM) {
        vd_request_free(q); /* not expected: let the whole body decide */
        return 0;
    }
    if (err) *err = e;
    return 1;
}

vd_err vd_request_decode_json(const void *body, size_t len, const vd_limits *lim, vd_request **out,
                              vd_error *err)
{
    vd_json j;
    vd_json_field f[F__COUNT];
    vd_err rc = json_scan_object(&j, body, len, vd_request_field_names, f, F__COUNT, 1, err);
    if (rc) return rc;
    if (json_refuse_early(&j, f, lim, &rc, err)) {
        vd_json_release(&j);
        return rc;
    }
    uint8_t *mp = malloc(j.mp_len);
    if (!mp)
        rc = vd_error_set(err, VD_ERR_NOMEM, "request: out of memory");
    else
        rc = vd_json_write(&j, NULL, mp, err);
    vd_json_release(&j); /* the counts go before the request is built */
    if (!rc) rc = vd_request_decode_msgpack(mp, j.mp_len, lim, out, err);
    free(mp);
    return rc;
}

vd_err vd_request_peek_json(const void *body, size_t len, char *index_out, size_t index_cap,
                            char *op_out, size_t op_cap)
{
    static const char *const keys[] = {"op", "index"};
    vd_json_field f[2];
    vd_json j;
    if (json_scan_object(&j, body, len, keys, f, 2, 0, NULL)) return VD_ERR_DECODE;
    char *outs[2] = {op_out, index_out};
    size_t caps[2] = {op_cap, index_cap};
    for (int i = 0; i < 2; i++) {
        if (!f[i].found || f[i].kind != '"' || !caps[i]) continue;
        uint8_t *mp = json_field(&j, &f[i]);
        vd_mp_reader r;
        vd_mp_value v;
        if (mp) vd_mp_reader_init(&r, mp, f[i].mp_len);
        if (mp && !vd_mp_read(&r, &v) && v.type == VD_MP_STR)
            vd_request_peek_copy(outs[i], caps[i], (const char *)v.data, v.len);
        free(mp);
    }
    vd_json_release(&j);
    return VD_OK;
}
