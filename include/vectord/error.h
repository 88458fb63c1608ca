/*
 * error.h - the error codes of libvectord.
 *
 * Every fallible function returns a vd_err (0 is success) and, when the
 * caller passes a vd_error, fills it with the code and a message that names
 * the offending field ("items[3].vector[17]: not a finite number"). The
 * stable wire name of a code ("invalid_params") comes from vd_err_code();
 * a short human description from vd_strerror().
 *
 * The values are fixed: they are part of the ABI. The gaps (7, and 11 up)
 * are codes of the vectord service built on this library (its own header,
 * src/common/service_error.h); no library function returns them, but
 * vd_err_code() and vd_strerror() name them too, so one vd_err space has
 * one name per value. A switch over a vd_err should end in `default:`.
 */
#ifndef VECTORD_ERROR_H
#define VECTORD_ERROR_H

#include <stddef.h>

#include "vectord/api.h"

typedef enum vd_err {
    VD_OK = 0,
    VD_ERR_NOMEM = 1,            /* "out_of_memory" */
    VD_ERR_INVALID_PARAMS = 2,   /* "invalid_params": a value out of range (params, k, ef) */
    VD_ERR_UNKNOWN_DISTANCE = 3, /* "unknown_distance" */
    VD_ERR_INVALID_VECTOR = 4,   /* "invalid_vector": id, length, NaN/Inf, zero norm */
    VD_ERR_LIMIT = 5,            /* "limit_exceeded": a configured limit was hit */
    VD_ERR_NOT_FOUND = 6,        /* "not_found" */
    VD_ERR_CORRUPT = 8,          /* "corrupt_checkpoint": bad magic, checksum, truncation */
    VD_ERR_VERSION = 9,          /* "unsupported_version" */
    VD_ERR_IO = 10,              /* "io_error" */
} vd_err;

#define VD_ERROR_MSG_MAX 256

/* Where a failing call explains itself. Callers may pass NULL instead. */
typedef struct vd_error {
    vd_err code;
    char msg[VD_ERROR_MSG_MAX];
} vd_error;

/*
 * Stable snake_case name used on the wire ("invalid_params"); "internal"
 * for a value that is no code at all. Never NULL; a static string.
 */
VD_API const char *vd_err_code(vd_err code);

/* Short human description ("invalid parameters"). Never NULL; static. */
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
