/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum Kafka uses for record
 * batches; here it guards LHV1 payloads. Hardware (SSE4.2) when present,
 * slicing-by-8 tables otherwise; both give the same value.
 */
#ifndef VD_COMMON_CRC32C_H
#define VD_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over len bytes. Start with crc = 0. */
uint32_t vd_crc32c(uint32_t crc, const void *buf, size_t len);

/* Same, forced to the portable table version (for tests). */
uint32_t vd_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
