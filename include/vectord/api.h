/*
 * api.h - what marks a declaration as part of libvectord's ABI.
 *
 * libvectord is compiled with hidden visibility: of its functions, the
 * shared library exports only those declared with VD_API in the public
 * headers (include/vectord/), so the internal ones (payload codec, CRC,
 * UTF-8, the service's checkpoint entry points) stay free to change.
 */
#ifndef VECTORD_API_H
#define VECTORD_API_H

#if defined(__GNUC__) || defined(__clang__)
#define VD_API __attribute__((visibility("default")))
#else
#define VD_API
#endif

#endif
