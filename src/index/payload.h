/*
 * payload.h - the versioned binary form of a vd_index (the LHV1 payload).
 *
 * The layout is documented byte by byte in schemas/lhv1.md. Writing walks
 * the index in slot order and emits exactly what defines it (slots,
 * tombstones, free list, links, RNG state), so the same command sequence
 * always gives the same bytes. Reading validates every count, offset and
 * link before anything is trusted: a damaged payload is refused with
 * VD_ERR_CORRUPT, never read out of bounds.
 */
#ifndef VD_INDEX_PAYLOAD_H
#define VD_INDEX_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "vectord/index.h"

#define VD_PAYLOAD_VERSION 1

/* Receives len bytes of output; returns 0, or -1 to abort the write. */
typedef int (*vd_sink_fn)(void *ctx, const void *buf, size_t len);

/* Takes and releases the index's read lock, so that several passes over
 * the index (length/checksum, then the bytes) see the same state. */
void vd_index_read_lock(vd_index *ix);
void vd_index_read_unlock(vd_index *ix);

/* Facts the LHV1 envelope repeats; read under the read lock. */
typedef struct vd_payload_summary {
    uint64_t live, deleted, slots;
    uint64_t rng;
} vd_payload_summary;

void vd_index_payload_summary(const vd_index *ix, vd_payload_summary *out);

/*
 * Streams the payload to sink. The caller holds the read lock.
 * Errors: VD_ERR_IO when the sink fails, VD_ERR_NOMEM.
 */
vd_err vd_index_payload_write(const vd_index *ix, vd_sink_fn sink, void *ctx, vd_error *err);

/*
 * Builds an index named name from buf[0..len). limits may be NULL. On
 * success *out owns the new index; on failure it is untouched.
 * Errors: VD_ERR_VERSION, VD_ERR_CORRUPT, VD_ERR_INVALID_PARAMS, VD_ERR_NOMEM.
 */
vd_err vd_index_payload_read(vd_index **out, const char *name, size_t name_len,
                             const uint8_t *buf, size_t len, const vd_limits *limits,
                             vd_error *err);

#endif
