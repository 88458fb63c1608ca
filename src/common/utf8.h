/*
 * utf8.h - strict UTF-8 validation (no overlongs, no surrogates, <= U+10FFFF).
 */
#ifndef VD_COMMON_UTF8_H
#define VD_COMMON_UTF8_H

#include <stddef.h>

/* Returns 1 when s[0..len) is valid UTF-8, else 0. */
int vd_utf8_valid(const char *s, size_t len);

#endif
