/*
 * json.h - JSON text to msgpack, without a document tree (codec-internal).
 *
 * JSON requests are decoded by converting them to msgpack and handing that
 * to the one msgpack decoder (codec.c), so both formats get the same
 * validation, limits and error messages. The conversion builds no tree: a
 * parsed tree (jansson) took about 20 times the body - 354 MB for a 16 MiB
 * body - before any limit was looked at. Instead one small RFC 8259
 * tokenizer reads the text twice:
 *
 *   vd_json_scan()   checks the text and measures its msgpack encoding:
 *                    the exact size, and the element count of every array
 *                    and object, which msgpack writes before the elements;
 *   vd_json_write()  writes that encoding into a buffer of that size.
 *
 * Besides the output, the memory used is 4 bytes per array or object in
 * the text and a fixed stack of VD_JSON_MAX_DEPTH frames: nothing per value.
 *
 * The encoding is the smallest one, as vd_writer (msgpack-c) writes it:
 *   - objects become maps, keys in text order; a repeated key is kept
 *     twice (the msgpack decoder takes the last one, as it does for a
 *     msgpack map);
 *   - strings are unescaped (\uXXXX with surrogate pairs, \u0000 too) and
 *     must be valid UTF-8; raw control characters, lone surrogates and
 *     invalid escapes are errors;
 *   - a number without fraction or exponent that fits int64 is an integer
 *     (-0 is 0), one in (INT64_MAX, UINT64_MAX] an unsigned integer; every
 *     other number is a float64, the nearest double (strtod; vectord never
 *     calls setlocale(), so '.' is the decimal point); a number beyond the
 *     double range (1e400) is an error;
 *   - true, false, null are msgpack true, false, nil.
 */
#ifndef VD_CODEC_JSON_H
#define VD_CODEC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "codec/writer.h"
#include "common/service_error.h"

/* Deepest nesting of arrays and objects converted ({} is 1): the metadata
 * limit (VD_CODEC_MAX_DEPTH) applies after conversion, this one bounds the
 * tokenizer's stack. */
#define VD_JSON_MAX_DEPTH (VD_CODEC_MAX_DEPTH + 16)

/* The last value of one key of the top-level object, as vd_json_scan()
 * found it. */
typedef struct vd_json_field {
    int found;       /* 0: the key is absent (the rest is unset) */
    char kind;       /* '{', '[', '"', 't', 'f', 'n', or '0' for a number */
    uint32_t count;  /* '[': elements; '{': key/value pairs */
    size_t off;      /* where the value starts in the text */
    size_t mp_len;   /* bytes of its msgpack encoding */
    size_t first_ci; /* private: its first container's index */
} vd_json_field;

/* A scanned text. Fields are read-only for the caller. */
typedef struct vd_json {
    const uint8_t *text; /* borrowed */
    size_t len;
    char kind;        /* the value's kind, as vd_json_field.kind */
    size_t mp_len;    /* bytes of the whole value's msgpack encoding */
    uint32_t *counts; /* private: element counts, by container in text order */
    size_t n_counts;
} vd_json;

/*
 * Checks that text[0..len) is exactly one JSON value (RFC 8259, whitespace
 * around it allowed) and measures its msgpack encoding. When the value is
 * an object, fields[i] describes the last value of key keys[i] at its top
 * level (keys compared after unescaping; n_keys may be 0). with_counts 0
 * keeps no element counts: vd_json_write() then writes only fields that
 * hold no array or object (a caller that only looks, vd_request_peek).
 * The text is borrowed and must stay unchanged until vd_json_release().
 * On success release j with vd_json_release(); on failure nothing is held.
 * err may be NULL. Errors:
 *   VD_ERR_DECODE  "body: invalid JSON at byte N (in items[3].vector): why"
 *                  (N counts from 0; the path is where in the document)
 *   VD_ERR_LIMIT   arrays/objects nested deeper than VD_JSON_MAX_DEPTH
 *   VD_ERR_NOMEM
 */
vd_err vd_json_scan(vd_json *j, const void *text, size_t len, const char *const *keys,
                    vd_json_field *fields, size_t n_keys, int with_counts, vd_error *err);

/*
 * Writes the msgpack encoding of the whole value (f NULL) or of one field
 * from vd_json_scan() to out, which has room for j->mp_len (f->mp_len)
 * bytes. Returns VD_OK; VD_ERR_DECODE only if the text changed since the
 * scan, or f holds an array or object and j was scanned without counts;
 * VD_ERR_NOMEM (a number of more than 64 characters needs a copy).
 */
vd_err vd_json_write(const vd_json *j, const vd_json_field *f, uint8_t *out, vd_error *err);

/* Frees what vd_json_scan() allocated. NULL and released values are fine. */
void vd_json_release(vd_json *j);

/*
 * Both steps for the whole text: on success *out is the malloc'd msgpack
 * (the caller frees it; never NULL, even for 0 bytes) of *out_len bytes;
 * on failure *out is untouched. Errors as vd_json_scan().
 */
vd_err vd_json_to_msgpack(const void *text, size_t len, uint8_t **out, size_t *out_len,
                          vd_error *err);

#endif
