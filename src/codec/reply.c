/*
 * reply.c - the reply documents (schemas/messages.md), written through a
 * vd_writer so that one builder serves msgpack and JSON alike.
 */
#include <string.h>

#include "codec/codec.h"

static void kv_str(vd_writer *w, const char *key, const char *s, size_t len)
{
    vd_writer_key(w, key);
    vd_writer_str(w, s ? s : "", s ? len : 0);
}

static void kv_cstr(vd_writer *w, const char *key, const char *s)
{
    vd_writer_key(w, key);
    vd_writer_cstr(w, s);
}

static void kv_int(vd_writer *w, const char *key, int64_t v)
{
    vd_writer_key(w, key);
    vd_writer_int(w, v);
}

static void kv_uint(vd_writer *w, const char *key, uint64_t v)
{
    vd_writer_key(w, key);
    vd_writer_uint(w, v);
}

static void kv_bool(vd_writer *w, const char *key, int v)
{
    vd_writer_key(w, key);
    vd_writer_bool(w, v);
}

vd_err vd_reply_error(vd_writer *w, vd_err code, const char *message)
{
    vd_writer_map_begin(w, 2);
    kv_cstr(w, "status", "error");
    vd_writer_key(w, "error");
    vd_writer_map_begin(w, 2);
    kv_cstr(w, "code", vd_err_code(code));
    kv_cstr(w, "message", message ? message : vd_strerror(code));
    vd_writer_map_end(w);
    vd_writer_map_end(w);
    return vd_writer_status(w);
}

vd_err vd_reply_ack(vd_writer *w, const vd_ack *a)
{
    uint32_t extra = a->op == VD_OP_DELETE ? 2 : 1;
    vd_writer_map_begin(w, 5 + extra);
    kv_cstr(w, "status", "ok");
    kv_cstr(w, "op", vd_op_name(a->op));
    kv_str(w, "index", a->index, a->index_len);
    kv_int(w, "partition", a->partition);
    kv_int(w, "offset", a->offset);
    switch (a->op) {
    case VD_OP_CREATE:
        kv_bool(w, "created", a->created);
        break;
    case VD_OP_ADD:
        kv_uint(w, "count", a->count);
        break;
    case VD_OP_DELETE:
        kv_uint(w, "deleted", a->deleted);
        kv_uint(w, "unknown", a->unknown);
        break;
    case VD_OP_DROP:
        kv_bool(w, "dropped", a->dropped);
        break;
    default:
        /* Not a command: keep the document well-formed anyway. */
        vd_writer_key(w, "result");
        vd_writer_nil(w);
    }
    vd_writer_map_end(w);
    return vd_writer_status(w);
}

vd_err vd_reply_search(vd_writer *w, const char *index, size_t index_len, int64_t applied_offset,
                       const vd_results *res, int include_metadata)
{
    size_t n = res ? res->n : 0;
    vd_writer_map_begin(w, 4);
    kv_cstr(w, "status", "ok");
    kv_str(w, "index", index, index_len);
    kv_int(w, "applied_offset", applied_offset);
    vd_writer_key(w, "hits");
    vd_writer_array_begin(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const vd_hit *h = &res->hits[i];
        int meta = include_metadata && h->metadata && h->metadata_len;
        vd_writer_map_begin(w, meta ? 3 : 2);
        kv_str(w, "id", h->id, h->id_len);
        vd_writer_key(w, "distance");
        vd_writer_float(w, h->distance);
        if (meta) {
            vd_writer_key(w, "metadata");
            /* Stored metadata was validated on the way in; should a value
             * still be unusable, the hit is sent without it rather than the
             * whole reply failing. */
            if (vd_writer_raw(w, h->metadata, h->metadata_len) == VD_ERR_DECODE) vd_writer_nil(w);
        }
        vd_writer_map_end(w);
    }
    vd_writer_array_end(w);
    vd_writer_map_end(w);
    return vd_writer_status(w);
}

vd_err vd_reply_info(vd_writer *w, const vd_info_reply *r)
{
    vd_writer_map_begin(w, 8);
    kv_cstr(w, "status", "ok");
    kv_str(w, "index", r->index, r->index_len);
    kv_int(w, "partition", r->partition);
    vd_writer_key(w, "params");
    vd_writer_map_begin(w, 5);
    kv_uint(w, "dimension", r->params.dimension);
    kv_uint(w, "m", r->params.m);
    kv_uint(w, "ef_construction", r->params.ef_construction);
    kv_uint(w, "ef_search", r->params.ef_search);
    kv_cstr(w, "distance", vd_distance_name(r->params.distance));
    vd_writer_map_end(w);
    kv_uint(w, "length", r->length);
    kv_uint(w, "deleted", r->deleted);
    kv_int(w, "applied_offset", r->applied_offset);
    kv_int(w, "checkpointed_offset", r->checkpointed_offset);
    vd_writer_map_end(w);
    return vd_writer_status(w);
}
