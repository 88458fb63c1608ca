/*
 * error.c - names and messages for vd_err.
 *
 * One table names the whole vd_err space: the library's codes
 * (include/vectord/error.h) and the vectord service's (service_error.h),
 * so vd_err_code() gives the same wire name wherever a code comes from.
 * Only the library's codes are declared in the installed headers.
 */
#include "vectord/error.h"

#include <stdarg.h>
#include <stdio.h>

#include "service_error.h"

static const struct {
    const char *code;
    const char *text;
} err_names[VD_ERR__COUNT] = {
    [VD_OK] = {"ok", "success"},
    [VD_ERR_NOMEM] = {"out_of_memory", "out of memory"},
    [VD_ERR_INVALID_PARAMS] = {"invalid_params", "invalid parameters"},
    [VD_ERR_UNKNOWN_DISTANCE] = {"unknown_distance", "unknown distance"},
    [VD_ERR_INVALID_VECTOR] = {"invalid_vector", "invalid vector"},
    [VD_ERR_LIMIT] = {"limit_exceeded", "limit exceeded"},
    [VD_ERR_NOT_FOUND] = {"not_found", "not found"},
    [VD_ERR_ALREADY_EXISTS] = {"already_exists", "already exists"},
    [VD_ERR_CORRUPT] = {"corrupt_checkpoint", "corrupt or truncated checkpoint"},
    [VD_ERR_VERSION] = {"unsupported_version", "unsupported format version"},
    [VD_ERR_IO] = {"io_error", "input/output error"},
    [VD_ERR_DECODE] = {"decode_error", "message body could not be decoded"},
    [VD_ERR_INVALID_REQUEST] = {"invalid_request", "invalid request"},
    [VD_ERR_UNKNOWN_OP] = {"unknown_op", "unknown operation"},
    [VD_ERR_KEY_MISMATCH] = {"key_mismatch", "record key does not match the index"},
    [VD_ERR_WRONG_PARTITION] = {"wrong_partition", "index lives on another partition"},
    [VD_ERR_TIMEOUT] = {"timeout", "timed out"},
    [VD_ERR_UNAVAILABLE] = {"unavailable", "partition not available"},
    [VD_ERR_CONFIG] = {"config_error", "invalid configuration"},
    [VD_ERR_REPLY_TOO_LARGE] = {"reply_too_large", "reply too large for its topic"},
};

const char *vd_err_code(vd_err code)
{
    if ((unsigned)code >= VD_ERR__COUNT) return "internal";
    return err_names[code].code;
}

const char *vd_strerror(vd_err code)
{
    if ((unsigned)code >= VD_ERR__COUNT) return "internal error";
    return err_names[code].text;
}

vd_err vd_error_set(vd_error *err, vd_err code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void vd_error_clear(vd_error *err)
{
    if (err) {
        err->code = VD_OK;
        err->msg[0] = '\0';
    }
}
