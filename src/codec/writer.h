/*
 * writer.h - one streaming encoder for both reply formats.
 *
 * A reply is written once as a sequence of calls (map_begin, key, str,
 * ...) and comes out as msgpack or as JSON, whichever the request used.
 * msgpack needs container sizes up front, so map_begin/array_begin take
 * the count; JSON needs closing brackets, so every container is ended
 * explicitly. Writing a different number of elements than declared is a
 * programmer error (assert), not an input error.
 *
 * Errors are sticky: the value functions return nothing, the first failure
 * (out of memory) is remembered and reported by vd_writer_status() and
 * vd_writer_take(), and everything after it is a no-op. No I/O.
 */
#ifndef VD_CODEC_WRITER_H
#define VD_CODEC_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "common/service_error.h"

typedef enum vd_content_type {
    VD_CT_MSGPACK = 0, /* the default */
    VD_CT_JSON,
} vd_content_type;

/* Deepest nesting accepted inside an item's metadata value ({} is 1). */
#define VD_CODEC_MAX_DEPTH 32

/* Containers a writer can have open at once. */
#define VD_WRITER_MAX_DEPTH 64

typedef struct vd_writer vd_writer;

/*
 * Creates an empty writer for ct. On success *out must be freed with
 * vd_writer_free; on failure *out is untouched. Errors: VD_ERR_NOMEM.
 */
vd_err vd_writer_new(vd_writer **out, vd_content_type ct);

/* Frees the writer and its buffer. NULL is accepted. */
void vd_writer_free(vd_writer *w);

/* Empties the writer (keeping its buffer's memory) and clears its error. */
void vd_writer_reset(vd_writer *w);

vd_content_type vd_writer_content_type(const vd_writer *w);

/* VD_OK, or the first error hit so far (VD_ERR_NOMEM). */
vd_err vd_writer_status(const vd_writer *w);

void vd_writer_map_begin(vd_writer *w, uint32_t n_pairs);
void vd_writer_map_end(vd_writer *w);
void vd_writer_array_begin(vd_writer *w, uint32_t n);
void vd_writer_array_end(vd_writer *w);

/* A map key (NUL-terminated). */
void vd_writer_key(vd_writer *w, const char *key);

/* A string (NULL: the empty string). Invalid UTF-8 sequences come out as
 * U+FFFD, so the output is always valid (error messages may quote
 * arbitrary client bytes). */
void vd_writer_str(vd_writer *w, const char *s, size_t len);

/* A NUL-terminated string; NULL writes nil. */
void vd_writer_cstr(vd_writer *w, const char *s);

void vd_writer_int(vd_writer *w, int64_t v);
void vd_writer_uint(vd_writer *w, uint64_t v);

/* msgpack float64 / float32. JSON: the shortest text that reads back as
 * the same double / float, always with a '.' or an exponent so it stays a
 * real number; NaN and infinities become null. */
void vd_writer_double(vd_writer *w, double v);
void vd_writer_float(vd_writer *w, float v);

void vd_writer_bool(vd_writer *w, int v);
void vd_writer_nil(vd_writer *w);

/* Binary data: msgpack bin; JSON: a base64 string (RFC 4648, padded). */
void vd_writer_bin(vd_writer *w, const void *p, size_t len);

/*
 * Writes mp[0..len), which must be exactly one msgpack value, as the next
 * value: copied byte for byte into msgpack output, converted for JSON
 * output (bin as base64, integer map keys as decimal strings). Returns
 * VD_OK; VD_ERR_DECODE with nothing written when mp is not one
 * well-formed value, or (JSON) holds an ext value, a map key that is not
 * a string or integer, or nests deeper than VD_CODEC_MAX_DEPTH; or the
 * sticky error.
 */
vd_err vd_writer_raw(vd_writer *w, const void *mp, size_t len);

/* The bytes written so far (borrowed, valid until the next call). */
const uint8_t *vd_writer_data(const vd_writer *w, size_t *len);

/*
 * Hands the finished document to the caller: *buf is malloc'd (caller
 * frees; never NULL on success, even for 0 bytes) and the writer is reset.
 * Returns VD_OK or the sticky error (then *buf untouched), with err filled.
 */
vd_err vd_writer_take(vd_writer *w, uint8_t **buf, size_t *len, vd_error *err);

#endif
