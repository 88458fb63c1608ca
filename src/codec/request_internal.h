/*
 * request_internal.h - what codec.c (msgpack requests) shares with
 * request_json.c (JSON requests): the top-level fields, and the msgpack
 * decoding both formats end in. Not installed, not for other modules.
 */
#ifndef VD_CODEC_REQUEST_INTERNAL_H
#define VD_CODEC_REQUEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

/* The top-level fields of a request, in vd_request_field_names order. */
enum {
    F_OP,
    F_INDEX,
    F_DIMENSION,
    F_M,
    F_EF_CONSTRUCTION,
    F_EF_SEARCH,
    F_DISTANCE,
    F_IF_NOT_EXISTS,
    F_ITEMS,
    F_IDS,
    F_IF_EXISTS,
    F_VECTOR,
    F_K,
    F_EF,
    F_MIN_OFFSET,
    F_INCLUDE_METADATA,
    F__COUNT
};

extern const char *const vd_request_field_names[F__COUNT];

/* Where a field's value lies in the body. p == NULL: the field is absent. */
typedef struct span {
    const uint8_t *p;
    size_t len;
} span;

/*
 * Decodes a request from the values of its top-level fields (absent ones
 * have p NULL); each span holds one msgpack value, or at least as much of
 * it as the decoding reads. Errors as vd_request_decode.
 */
vd_err vd_request_decode_fields(const span *f, const vd_limits *lim, vd_request **out,
                                vd_error *err);

/* Decodes a whole msgpack body (vd_request_decode's msgpack path). */
vd_err vd_request_decode_msgpack(const uint8_t *buf, size_t len, const vd_limits *lim,
                                 vd_request **out, vd_error *err);

/* Decodes a JSON body: converted to msgpack, then as above
 * (request_json.c). */
vd_err vd_request_decode_json(const void *body, size_t len, const vd_limits *lim, vd_request **out,
                              vd_error *err);

/* vd_request_peek of a JSON body (body non-empty, outputs cleared). */
vd_err vd_request_peek_json(const void *body, size_t len, char *index_out, size_t index_cap,
                            char *op_out, size_t op_cap);

/* Copies s[0..len) into out when it fits with its NUL and holds no NUL. */
void vd_request_peek_copy(char *out, size_t cap, const char *s, size_t len);

#endif
