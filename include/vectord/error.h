/*
 * error.h - the one error enum of vectord.
 *
 * Every fallible function returns a vd_err (0 is success) and, when the
 * caller passes a vd_error, fills it with the code and a message that names
 * the offending field ("items[3].vector[17]: not a finite number"). The
 * stable wire name of a code ("invalid_params") comes from vd_err_code();
 * a short human description from vd_strerror().
 */
#ifndef VECTORD_ERROR_H
#define VECTORD_ERROR_H

#include <stddef.h>

#include "vectord/api.h"

typedef enum vd_err {
    VD_OK = 0,
    VD_ERR_NOMEM,            /* "out_of_memory" */
    VD_ERR_INVALID_PARAMS,   /* "invalid_params": bad index params or request fields */
    VD_ERR_UNKNOWN_DISTANCE, /* "unknown_distance" */
    VD_ERR_INVALID_VECTOR,   /* "invalid_vector": id, length, NaN/Inf, zero norm */
    VD_ERR_LIMIT,            /* "limit_exceeded": a configured limit was hit */
    VD_ERR_NOT_FOUND,        /* "not_found" */
    VD_ERR_ALREADY_EXISTS,   /* "already_exists" */
    VD_ERR_CORRUPT,          /* "corrupt_checkpoint": bad magic, checksum, truncation */
    VD_ERR_VERSION,          /* "unsupported_version" */
    VD_ERR_IO,               /* "io_error" */
    VD_ERR_DECODE,           /* "decode_error": body is not valid msgpack / JSON */
    VD_ERR_INVALID_REQUEST,  /* "invalid_request": missing field, wrong type */
    VD_ERR_UNKNOWN_OP,       /* "unknown_op" */
    VD_ERR_KEY_MISMATCH,     /* "key_mismatch": record key != body index */
    VD_ERR_WRONG_PARTITION,  /* "wrong_partition": index pinned elsewhere */
    VD_ERR_TIMEOUT,          /* "timeout" */
    VD_ERR_UNAVAILABLE,      /* "unavailable": partition not ready or not owned */
    VD_ERR_CONFIG,           /* "config_error" */
    VD_ERR__COUNT
} vd_err;

#define VD_ERROR_MSG_MAX 256

/* Where a failing call explains itself. Callers may pass NULL instead. */
typedef struct vd_error {
    vd_err code;
    char msg[VD_ERROR_MSG_MAX];
} vd_error;

/* Stable snake_case name used on the wire ("invalid_params"). Never NULL. */
VD_API const char *vd_err_code(vd_err code);

/* Short human description ("invalid index parameters"). Never NULL. */
VD_API const char *vd_strerror(vd_err code);

/*
 * Sets err->code and a printf-formatted message (when err is not NULL) and
 * returns code, so a caller can write `return vd_error_set(err, ...)`.
 */
VD_API vd_err vd_error_set(vd_error *err, vd_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets err to VD_OK with an empty message. err may be NULL. */
VD_API void vd_error_clear(vd_error *err);

#endif
