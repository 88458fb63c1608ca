/*
 * service_error.h - the error codes of the vectord service.
 *
 * libvectord (include/vectord/error.h) declares the codes its index and
 * LHV1 functions return. The service built on it - codec, config, Kafka,
 * stores, directory, worker, CLI - reports more: malformed requests,
 * routing, timeouts, configuration. They live here, outside the installed
 * headers, with the values and wire names they always had (schemas/errors.md):
 * the gaps the library leaves in its enum are these codes, and vd_err_code()
 * and vd_strerror() name them like any other.
 *
 * They are vd_err constants, not enumerators of vd_err, so they mix with the
 * library's codes without enum-conversion warnings; the one thing they
 * cannot be is a case label of a switch over a vd_err (gcc -Wswitch: "case
 * value not in enumerated type"), which service code uses if/else for.
 */
#ifndef VD_SERVICE_ERROR_H
#define VD_SERVICE_ERROR_H

#include "vectord/error.h"

#define VD_ERR_ALREADY_EXISTS  ((vd_err)7)  /* "already_exists" */
#define VD_ERR_DECODE          ((vd_err)11) /* "decode_error": body is not valid msgpack / JSON */
#define VD_ERR_INVALID_REQUEST ((vd_err)12) /* "invalid_request": missing field, wrong type */
#define VD_ERR_UNKNOWN_OP      ((vd_err)13) /* "unknown_op" */
#define VD_ERR_KEY_MISMATCH    ((vd_err)14) /* "key_mismatch": record key != body index */
#define VD_ERR_WRONG_PARTITION ((vd_err)15) /* "wrong_partition": index pinned elsewhere */
#define VD_ERR_TIMEOUT         ((vd_err)16) /* "timeout" */
#define VD_ERR_UNAVAILABLE     ((vd_err)17) /* "unavailable": partition not ready or not owned */
#define VD_ERR_CONFIG          ((vd_err)18) /* "config_error" */
#define VD_ERR_REPLY_TOO_LARGE ((vd_err)19) /* "reply_too_large": the reply exceeds its topic's limit */

/* One past the largest code, library or service: sizes per-code tables. */
#define VD_ERR__COUNT 20

#endif
