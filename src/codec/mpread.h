/*
 * mpread.h - a zero-copy, allocation-free msgpack reader.
 *
 * Why not msgpack-c's unpacker: msgpack_unpack_next() allocates room for
 * every element of an array or map as soon as it reads the header, before
 * the elements arrive, so a 5-byte body declaring 2^32-1 elements asks the
 * allocator for ~100 GB (under ASan that aborts the process). This reader
 * never allocates, never recurses in vd_mp_skip(), and never reads past
 * `end`. It also hands out the exact byte span of a value, which is how
 * item metadata is stored byte-identical to what the producer sent.
 * msgpack-c is still used for writing (writer.c) and by the tests.
 */
#ifndef VD_CODEC_MPREAD_H
#define VD_CODEC_MPREAD_H

#include <stddef.h>
#include <stdint.h>

typedef enum vd_mp_type {
    VD_MP_NIL,
    VD_MP_BOOL,
    VD_MP_INT,  /* any integer that fits int64_t (v.i) */
    VD_MP_UINT, /* an unsigned integer above INT64_MAX (v.u) */
    VD_MP_FLOAT32,
    VD_MP_FLOAT64,
    VD_MP_STR,
    VD_MP_BIN,
    VD_MP_EXT,
    VD_MP_ARRAY, /* v.n elements follow */
    VD_MP_MAP,   /* v.n key/value pairs follow */
} vd_mp_type;

typedef struct vd_mp_value {
    vd_mp_type type;
    union {
        int b;
        int64_t i;
        uint64_t u;
        double f; /* FLOAT32 widened exactly */
        uint32_t n;
    } v;
    const uint8_t *data; /* STR, BIN, EXT: points into the reader's buffer */
    uint32_t len;
    int8_t ext_type;
} vd_mp_value;

typedef struct vd_mp_reader {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the last byte */
} vd_mp_reader;

/* Starts reading buf[0..len). The buffer is borrowed, not copied. */
void vd_mp_reader_init(vd_mp_reader *r, const void *buf, size_t len);

/* Bytes left to read. */
size_t vd_mp_remaining(const vd_mp_reader *r);

/*
 * Reads one value: scalars, str, bin and ext whole; for an array or map
 * only its header (the elements follow in the stream). Returns 0, or -1
 * when the bytes run out or the type byte is the reserved 0xc1; on -1 the
 * reader is not advanced.
 */
int vd_mp_read(vd_mp_reader *r, vd_mp_value *out);

/*
 * Skips one complete value, whatever its nesting, with a counter instead
 * of recursion. Returns 0, or -1 when it is truncated or malformed (the
 * reader is then left somewhere inside the value).
 */
int vd_mp_skip(vd_mp_reader *r);

/* "nil", "boolean", "integer", "float", "string", "binary", "extension",
 * "array" or "map": for error messages. */
const char *vd_mp_type_name(vd_mp_type t);

#endif
