/*
 * codec.h - vectord's wire codec: request bodies in, reply bodies out.
 *
 * A Kafka record's value is a msgpack map, or a JSON object when the
 * record carries "content-type: application/json" (schemas/messages.md).
 * vd_request_decode() turns a body into a fully validated vd_request;
 * vd_reply_*() write the reply documents through a vd_writer in the
 * request's content type. No I/O: the Kafka layer hands in bytes and
 * sends out bytes.
 *
 * Validation split: the codec checks everything it can know from the body
 * and the limits (types, required fields, ranges, id and metadata limits,
 * floats that overflow float32). What needs the index - vector length
 * against its dimension, NaN/Inf, zero norm under cosine - is checked by
 * vd_index_check_items() / vd_index_search(), with the same error codes.
 *
 * Decoding JSON: the body is converted to msgpack without a document tree
 * (json.h), then decoded by the one msgpack path, so both formats give the
 * same errors and item metadata is always stored as msgpack bytes. Memory
 * for a JSON body is its msgpack encoding plus 4 bytes per array or object.
 */
#ifndef VD_CODEC_CODEC_H
#define VD_CODEC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec/writer.h"
#include "common/service_error.h"
#include "vectord/index.h"

/*
 * Content type from a record's content-type header value (not
 * NUL-terminated; NULL for no header). "application/json" and any
 * "application/<x>+json", case-insensitive, parameters (";charset=utf-8")
 * and surrounding blanks ignored, select JSON; anything else is msgpack.
 */
vd_content_type vd_content_type_parse(const char *header_value, size_t len);

/* The header value for replies: "application/msgpack" or "application/json". */
const char *vd_content_type_name(vd_content_type ct);

typedef enum vd_op {
    VD_OP_CREATE = 0,
    VD_OP_ADD,
    VD_OP_DELETE,
    VD_OP_DROP,
    VD_OP_SEARCH,
    VD_OP_INFO,
    VD_OP__COUNT
} vd_op;

/* "create", "add", ... ; "unknown" for out-of-range values. */
const char *vd_op_name(vd_op op);

/* 1 for ops of the commands topic (create, add, delete, drop), 0 for the
 * search topic (search, info). */
int vd_op_is_command(vd_op op);

/* Exact, case-sensitive match of an op name. Returns 0, or -1 if unknown. */
int vd_op_parse(const char *s, size_t len, vd_op *out);

/*
 * A decoded request. Everything it points to lives in one private arena
 * owned by the request; free it with vd_request_free(). Fields of other
 * ops are zero.
 */
typedef struct vd_request {
    vd_op op;
    const char *index; /* NUL-terminated, valid UTF-8 without NUL bytes */
    size_t index_len;  /* 1..limits.max_name_len */

    /* create: params checked with vd_index_params_check (seed 0: derived
     * from the name by vd_index_new). */
    vd_index_params params;
    int if_not_exists;

    /* add: 1..max_batch items; ids non-empty valid UTF-8 within max_id_len;
     * metadata is one msgpack value (NULL when absent or nil), within
     * max_metadata and VD_CODEC_MAX_DEPTH. Vectors are not checked against
     * any dimension: pass the items to vd_index_add(). */
    vd_item *items;
    size_t n_items;

    /* delete: 1..max_batch ids, each NUL-terminated (lengths in id_lens). */
    const char *const *ids;
    const size_t *id_lens;
    size_t n_ids;

    /* drop */
    int if_exists;

    /* search: k in 1..VD_MAX_K (default VD_DEFAULT_K), ef in 0..VD_MAX_EF
     * (0: the index's ef_search), min_offset >= 0 or -1 when absent. */
    const float *vector;
    size_t vector_len;
    uint32_t k;
    uint32_t ef;
    int64_t min_offset;
    int include_metadata; /* default 1 */

    struct vd_codec_arena *arena_; /* private */
} vd_request;

/*
 * Decodes and validates a request body. limits may be NULL (defaults).
 * On success *out owns everything it points to (free with
 * vd_request_free); the body is not referenced afterwards. On failure *out
 * is untouched and err names the field ("items[3].id: expected a string,
 * got integer").
 * Errors:
 *   VD_ERR_DECODE           not msgpack / not JSON / trailing bytes / not a map
 *   VD_ERR_INVALID_REQUEST  missing required field, wrong type, empty batch,
 *                           bad bin length, metadata not representable
 *   VD_ERR_UNKNOWN_OP       op is not one of the six
 *   VD_ERR_INVALID_PARAMS   index name, create params, k, ef, min_offset
 *   VD_ERR_UNKNOWN_DISTANCE distance
 *   VD_ERR_INVALID_VECTOR   empty or non-UTF-8 id, component overflowing
 *                           float32, more components than max_dimension
 *   VD_ERR_LIMIT            batch size, id length, metadata size or depth,
 *                           JSON nesting (VD_JSON_MAX_DEPTH)
 *   VD_ERR_NOMEM
 */
vd_err vd_request_decode(const void *body, size_t len, vd_content_type ct, const vd_limits *limits,
                         vd_request **out, vd_error *err);

/* Frees a request and everything it owns. NULL is accepted. */
void vd_request_free(vd_request *r);

/*
 * Finds the op and index of a body without validating the rest, for DLQ
 * routing, replies to bad requests and the key check. Each output is
 * filled best-effort: the string's value, NUL-terminated, or "" when the
 * field is absent, not a string, contains a NUL byte or does not fit in
 * its buffer (cap includes the NUL; a cap of 0 means "not wanted"); of a
 * repeated key the last one counts, as in vd_request_decode(). For
 * msgpack, fields that come before a malformed part are still found.
 * Returns VD_OK when the body is a well-formed map, else VD_ERR_DECODE.
 */
vd_err vd_request_peek(const void *body, size_t len, vd_content_type ct, char *index_out,
                       size_t index_cap, char *op_out, size_t op_cap);

/* ------------------------------------------------------------------ */
/* Replies. Each writes one whole document into an empty writer and
 * returns vd_writer_status(w) (VD_OK or VD_ERR_NOMEM). Strings are borrowed
 * for the duration of the call only. */

/* {status: "error", error: {code: vd_err_code(code), message}} */
vd_err vd_reply_error(vd_writer *w, vd_err code, const char *message);

/* The ack of an applied command (sent when the command had reply-to). */
typedef struct vd_ack {
    vd_op op;          /* create, add, delete or drop */
    const char *index; /* index_len bytes */
    size_t index_len;
    int32_t partition;
    int64_t offset; /* the command's offset: use as a search's min_offset */
    int created;    /* create: 1 new index, 0 existed (if_not_exists) */
    size_t count;   /* add: items applied */
    size_t deleted; /* delete: ids removed (vd_index_delete's *deleted) */
    size_t unknown; /* delete: ids that were not there (its *unknown) */
    int dropped;    /* drop: 1 removed, 0 absent (if_exists) */
} vd_ack;

/* {status: "ok", op, index, partition, offset, + created | count |
 * deleted, unknown | dropped} */
vd_err vd_reply_ack(vd_writer *w, const vd_ack *a);

/*
 * {status: "ok", index, applied_offset, hits: [{id, distance, metadata}]}.
 * metadata is omitted for hits without any and when include_metadata is 0;
 * stored metadata that cannot be converted is written as nil.
 */
vd_err vd_reply_search(vd_writer *w, const char *index, size_t index_len, int64_t applied_offset,
                       const vd_results *res, int include_metadata);

typedef struct vd_info_reply {
    const char *index;
    size_t index_len;
    int32_t partition;
    vd_index_params params;
    uint64_t length;             /* live items */
    uint64_t deleted;            /* tombstones awaiting repair */
    int64_t applied_offset;      /* last command offset applied, -1 if none */
    int64_t checkpointed_offset; /* offset of the durable checkpoint, -1 if none */
} vd_info_reply;

/* {status: "ok", index, partition, params: {dimension, m, ef_construction,
 * ef_search, distance}, length, deleted, applied_offset,
 * checkpointed_offset} */
vd_err vd_reply_info(vd_writer *w, const vd_info_reply *r);

#endif
