/*
 * lhv1.h - LHV1 checkpoint files: one index, one file.
 *
 *   [ "LHV1" ][ envelope_len: uint32 big-endian ][ envelope: JSON ][ payload ]
 *
 * The envelope names the index, its params, counts, and the payload's
 * length and CRC-32C; the payload is the versioned binary index
 * (schemas/lhv1.md has both, byte by byte). A file written through this
 * header carries no stream position (the envelope's position field is
 * null); a file that has one reads like any other. A file is produced
 * whole (one buffer, one stream, or temp file + fsync + rename), and a
 * reader checks magic, lengths, checksum and every structural invariant
 * before it trusts a byte.
 */
#ifndef VECTORD_LHV1_H
#define VECTORD_LHV1_H

#include <stddef.h>
#include <stdint.h>

#include "vectord/api.h"
#include "vectord/error.h"
#include "vectord/index.h"

#define VD_LHV1_FORMAT_VERSION 1
#define VD_LHV1_MAX_ENVELOPE   (1u << 20)

/* Receives len bytes of output; returns 0, or -1 to abort the write. */
typedef int (*vd_lhv1_sink)(void *ctx, const void *buf, size_t len);

/*
 * Streams an LHV1 file of ix to sink. The index is read-locked for the
 * whole call (two passes: length and checksum, then the bytes), so writers
 * wait but searches go on. Errors: VD_ERR_IO (the sink failed), VD_ERR_NOMEM.
 */
VD_API vd_err vd_lhv1_write(vd_index *ix, vd_lhv1_sink sink, void *ctx, vd_error *err);

/* Same into a malloc'd buffer: *out (caller frees) and *len. */
VD_API vd_err vd_lhv1_write_buf(vd_index *ix, uint8_t **out, size_t *len, vd_error *err);

/*
 * Same into path, atomically: a temp file beside it, fsync, rename, fsync
 * of the directory. Readers see the old file or the new one, never a part.
 * Errors: VD_ERR_IO naming the path and errno, VD_ERR_NOMEM.
 */
VD_API vd_err vd_lhv1_write_file(vd_index *ix, const char *path, vd_error *err);

/*
 * Loads an index from buf[0..len). limits may be NULL (defaults). On
 * success *out owns the index (free it with vd_index_free); on failure
 * *out is untouched.
 * Errors: VD_ERR_CORRUPT (magic, truncation, checksum, structure),
 * VD_ERR_VERSION, VD_ERR_INVALID_PARAMS (params beyond limits), VD_ERR_NOMEM.
 */
VD_API vd_err vd_lhv1_read(const uint8_t *buf, size_t len, const vd_limits *limits, vd_index **out,
                           vd_error *err);

/* Same from a file (memory-mapped). Adds VD_ERR_IO. */
VD_API vd_err vd_lhv1_read_file(const char *path, const vd_limits *limits, vd_index **out,
                                vd_error *err);

/*
 * Checks magic, envelope and payload checksum without building the index,
 * and returns the envelope as JSON text in *envelope (malloc'd, caller
 * frees; may be NULL). For `vectorctl inspect`.
 * Errors: VD_ERR_CORRUPT, VD_ERR_VERSION, VD_ERR_NOMEM.
 */
VD_API vd_err vd_lhv1_verify(const uint8_t *buf, size_t len, char **envelope, vd_error *err);

#endif
