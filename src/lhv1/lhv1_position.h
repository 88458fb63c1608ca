/*
 * lhv1_position.h - LHV1 files that carry a Kafka position (service only).
 *
 * The vectord service records in every checkpoint the Kafka position the
 * index is complete through (the envelope's "kafka" object,
 * schemas/lhv1.md), so a restarted worker replays from there. The embeddable
 * API (include/vectord/lhv1.h) writes that field null and does not return
 * it; these are the same functions with the position. They are compiled
 * into libvectord but not exported from the shared library nor installed:
 * the service links the library statically.
 */
#ifndef VD_LHV1_POSITION_H
#define VD_LHV1_POSITION_H

#include <stdint.h>

#include "vectord/lhv1.h"

/* Where in Kafka the checkpoint is complete through. offset -1: nowhere. */
typedef struct vd_lhv1_kafka {
    char topic[256];
    int32_t partition;
    int64_t offset;
} vd_lhv1_kafka;

/*
 * vd_lhv1_write, vd_lhv1_write_buf and vd_lhv1_write_file with a position:
 * kafka may be NULL, and an offset below 0 writes "kafka": null, as the
 * public functions do. Same errors.
 */
vd_err vd_lhv1_write_pos(vd_index *ix, const vd_lhv1_kafka *kafka, vd_lhv1_sink sink, void *ctx,
                         vd_error *err);
vd_err vd_lhv1_write_buf_pos(vd_index *ix, const vd_lhv1_kafka *kafka, uint8_t **out, size_t *len,
                             vd_error *err);
vd_err vd_lhv1_write_file_pos(vd_index *ix, const vd_lhv1_kafka *kafka, const char *path,
                              vd_error *err);

/*
 * vd_lhv1_read and vd_lhv1_read_file that also return the position: on
 * success *kafka (may be NULL) holds it, offset -1 and partition -1 when
 * the file has none. A malformed "kafka" object is VD_ERR_CORRUPT (only
 * checked when kafka is not NULL). Same errors otherwise.
 */
vd_err vd_lhv1_read_pos(const uint8_t *buf, size_t len, const vd_limits *limits, vd_index **out,
                        vd_lhv1_kafka *kafka, vd_error *err);
vd_err vd_lhv1_read_file_pos(const char *path, const vd_limits *limits, vd_index **out,
                             vd_lhv1_kafka *kafka, vd_error *err);

#endif
