/*
 * test_common.c - unit tests for src/common: CRC-32C (hardware and table
 * versions against published vectors and a bit-at-a-time reference),
 * strict UTF-8 validation, and the error names and vd_error helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/service_error.h"
#include "common/utf8.h"

/* ------------------------------------------------------------------ */
/* CRC-32C */

/* Bit-at-a-time CRC-32C: slow, obviously right, independent of src/. */
static uint32_t crc_ref(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_known_vectors(crc_fn f)
{
    static const struct {
        const char *data;
        size_t len;
        uint32_t crc;
    } v[] = {
        {"123456789", 9, 0xE3069283u},
        {"", 0, 0x00000000u},
        {"a", 1, 0xC1D04330u},
        {"The quick brown fox jumps over the lazy dog", 43, 0x22620404u},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(f(0, v[i].data, v[i].len), v[i].crc);

    /* RFC 3720 (iSCSI) B.4 test vectors. */
    unsigned char buf[32];
    memset(buf, 0, sizeof buf);
    assert_int_equal(f(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    assert_int_equal(f(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
    assert_int_equal(f(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
    assert_int_equal(f(0, buf, 32), 0x113FDB5Cu);
}

static void test_crc32c_known_vectors(void **state)
{
    (void)state;
    check_known_vectors(vd_crc32c);
    check_known_vectors(vd_crc32c_sw);
    check_known_vectors(crc_ref);
}

static void test_crc32c_empty_keeps_crc(void **state)
{
    (void)state;
    /* Zero bytes continue nothing: the running value comes back unchanged. */
    const uint32_t seeds[] = {0, 1, 0xE3069283u, 0xFFFFFFFFu, 0x80000000u};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        assert_int_equal(vd_crc32c(seeds[i], "x", 0), seeds[i]);
        assert_int_equal(vd_crc32c_sw(seeds[i], "x", 0), seeds[i]);
    }
}

static void test_crc32c_incremental(void **state)
{
    (void)state;
    unsigned char buf[200];
    uint64_t s = 42;
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)rng_next(&s);
    uint32_t whole = crc_ref(0, buf, sizeof buf);
    assert_int_equal(vd_crc32c(0, buf, sizeof buf), whole);
    /* Every split point, and a three-way split, in both versions. */
    for (size_t cut = 0; cut <= sizeof buf; cut++) {
        assert_int_equal(vd_crc32c(vd_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
        assert_int_equal(vd_crc32c_sw(vd_crc32c_sw(0, buf, cut), buf + cut, sizeof buf - cut),
                         whole);
        /* Mixing the two versions mid-stream must also work. */
        assert_int_equal(vd_crc32c_sw(vd_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
        size_t cut2 = cut + (sizeof buf - cut) / 3;
        uint32_t c = vd_crc32c(0, buf, cut);
        c = vd_crc32c(c, buf + cut, cut2 - cut);
        c = vd_crc32c(c, buf + cut2, sizeof buf - cut2);
        assert_int_equal(c, whole);
    }
    /* Byte at a time. */
    uint32_t c = 0;
    for (size_t i = 0; i < sizeof buf; i++) c = vd_crc32c(c, buf + i, 1);
    assert_int_equal(c, whole);
}

static void test_crc32c_hw_equals_sw(void **state)
{
    (void)state;
    enum { MAXLEN = 300 };
    uint64_t s = 7;
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t align = 0; align < 8; align++) {
            /* Exact-size allocation at an odd offset: ASan sees any over-read. */
            unsigned char *blk = malloc(align + len + 1);
            assert_non_null(blk);
            unsigned char *p = blk + align;
            for (size_t i = 0; i < len; i++) p[i] = (unsigned char)rng_next(&s);
            uint32_t seed = (uint32_t)rng_next(&s);
            uint32_t want = crc_ref(0, p, len);
            assert_int_equal(vd_crc32c(0, p, len), want);
            assert_int_equal(vd_crc32c_sw(0, p, len), want);
            want = crc_ref(seed, p, len);
            assert_int_equal(vd_crc32c(seed, p, len), want);
            assert_int_equal(vd_crc32c_sw(seed, p, len), want);
            free(blk);
        }
    }
}

static void test_crc32c_detects_single_bit_flips(void **state)
{
    (void)state;
    unsigned char buf[64];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 37 + 11);
    uint32_t base = vd_crc32c(0, buf, sizeof buf);
    for (size_t bit = 0; bit < sizeof buf * 8; bit++) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_int_not_equal(vd_crc32c(0, buf, sizeof buf), base);
        assert_int_not_equal(vd_crc32c_sw(0, buf, sizeof buf), base);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
}

/* ------------------------------------------------------------------ */
/* UTF-8 */

/* Validates a copy in an exact-size heap block, so ASan flags over-reads. */
static int utf8_ok(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    int r = vd_utf8_valid(copy, len);
    free(copy);
    return r;
}

#define U8(lit) (lit), (sizeof(lit) - 1)

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(utf8_ok("", 0));
    assert_true(vd_utf8_valid(NULL, 0));
    assert_true(utf8_ok(U8("plain ascii 0123456789 ~!@#")));
    assert_true(utf8_ok(U8("a\0b"))); /* NUL is a valid code point */
    assert_true(utf8_ok(U8("\x7F")));
    assert_true(utf8_ok(U8("\xC2\x80")));         /* U+0080, smallest 2-byte */
    assert_true(utf8_ok(U8("\xC3\xA9")));         /* é */
    assert_true(utf8_ok(U8("\xDF\xBF")));         /* U+07FF */
    assert_true(utf8_ok(U8("\xE0\xA0\x80")));     /* U+0800, smallest 3-byte */
    assert_true(utf8_ok(U8("\xE2\x82\xAC")));     /* € */
    assert_true(utf8_ok(U8("\xED\x9F\xBF")));     /* U+D7FF, just below surrogates */
    assert_true(utf8_ok(U8("\xEE\x80\x80")));     /* U+E000, just above surrogates */
    assert_true(utf8_ok(U8("\xEF\xBF\xBF")));     /* U+FFFF */
    assert_true(utf8_ok(U8("\xF0\x90\x80\x80"))); /* U+10000, smallest 4-byte */
    assert_true(utf8_ok(U8("\xF0\x9D\x84\x9E"))); /* 𝄞 */
    assert_true(utf8_ok(U8("\xF4\x8F\xBF\xBF"))); /* U+10FFFF, the last code point */
    assert_true(utf8_ok(U8("caf\xC3\xA9 \xE2\x82\xAC 5 \xF0\x9F\x98\x80!")));
}

static void test_utf8_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        const char *why;
    } bad[] = {
        /* Overlong encodings. */
        {U8("\xC0\x80"), "overlong NUL"},
        {U8("\xC0\xAF"), "overlong /"},
        {U8("\xC1\xBF"), "overlong U+007F"},
        {U8("\xE0\x80\x80"), "overlong 3-byte NUL"},
        {U8("\xE0\x9F\xBF"), "overlong U+07FF"},
        {U8("\xF0\x80\x80\x80"), "overlong 4-byte NUL"},
        {U8("\xF0\x8F\xBF\xBF"), "overlong U+FFFF"},
        /* UTF-16 surrogates. */
        {U8("\xED\xA0\x80"), "U+D800"},
        {U8("\xED\xAD\xBF"), "U+DB7F"},
        {U8("\xED\xB0\x80"), "U+DC00"},
        {U8("\xED\xBF\xBF"), "U+DFFF"},
        {U8("\xED\xA0\xBD\xED\xB8\x80"), "surrogate pair (CESU-8)"},
        /* Beyond U+10FFFF. */
        {U8("\xF4\x90\x80\x80"), "U+110000"},
        {U8("\xF5\x80\x80\x80"), "lead F5"},
        {U8("\xF7\xBF\xBF\xBF"), "lead F7"},
        {U8("\xF8\x88\x80\x80\x80"), "5-byte form"},
        {U8("\xFC\x84\x80\x80\x80\x80"), "6-byte form"},
        {U8("\xFE"), "FE"},
        {U8("\xFF"), "FF"},
        /* Stray continuation bytes. */
        {U8("\x80"), "lone continuation"},
        {U8("\xBF"), "lone continuation BF"},
        {U8("a\x80z"), "continuation after ascii"},
        {U8("\xC3\xA9\xA9"), "extra continuation"},
        /* Truncated sequences, alone, at the end, and followed by ascii. */
        {U8("\xC3"), "truncated 2-byte"},
        {U8("\xE2\x82"), "truncated 3-byte"},
        {U8("\xE2"), "truncated 3-byte (lead only)"},
        {U8("\xF0\x9D\x84"), "truncated 4-byte"},
        {U8("\xF0\x9D"), "truncated 4-byte (2 of 4)"},
        {U8("\xF0"), "truncated 4-byte (lead only)"},
        {U8("abc\xE2\x82"), "truncated at end"},
        {U8("\xC3(x"), "2-byte with ascii continuation"},
        {U8("\xE2(\xA1"), "3-byte bad second byte"},
        {U8("\xE2\x82("), "3-byte bad third byte"},
        {U8("\xF0\x9D\x84("), "4-byte bad fourth byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (utf8_ok(bad[i].s, bad[i].len)) fail_msg("accepted invalid UTF-8: %s", bad[i].why);
    }
    /* Valid text made invalid by cutting its length. */
    assert_false(utf8_ok("\xC3\xA9", 1));
    assert_false(utf8_ok("\xE2\x82\xAC", 2));
    assert_false(utf8_ok("\xF0\x9D\x84\x9E", 3));
    assert_true(utf8_ok("\xF0\x9D\x84\x9E", 4));
}

/* Every 1- and 2-byte string, against an independent decoder's verdict. */
static int utf8_ref(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i], n, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        if (len - i < n + 1) return 0;
        for (unsigned k = 1; k <= n; k++) {
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
        if (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
        i += n + 1;
    }
    return 1;
}

static void test_utf8_exhaustive_short(void **state)
{
    (void)state;
    unsigned char b[3];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        assert_int_equal(utf8_ok((char *)b, 1), utf8_ref(b, 1));
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            if (utf8_ok((char *)b, 2) != utf8_ref(b, 2)) fail_msg("mismatch for %02X %02X", x, y);
        }
    }
    /* All 3-byte strings starting with a 3-byte lead. */
    for (unsigned x = 0xE0; x <= 0xEF; x++) {
        for (unsigned y = 0x70; y < 0xD0; y++) {
            for (unsigned z = 0x70; z < 0xD0; z++) {
                b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = (unsigned char)z;
                if (vd_utf8_valid((char *)b, 3) != utf8_ref(b, 3))
                    fail_msg("mismatch for %02X %02X %02X", x, y, z);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Errors */

static void test_err_names(void **state)
{
    (void)state;
    static const struct {
        vd_err code;
        const char *name;
    } want[] = {
        {VD_OK, "ok"},
        {VD_ERR_NOMEM, "out_of_memory"},
        {VD_ERR_INVALID_PARAMS, "invalid_params"},
        {VD_ERR_UNKNOWN_DISTANCE, "unknown_distance"},
        {VD_ERR_INVALID_VECTOR, "invalid_vector"},
        {VD_ERR_LIMIT, "limit_exceeded"},
        {VD_ERR_NOT_FOUND, "not_found"},
        {VD_ERR_ALREADY_EXISTS, "already_exists"},
        {VD_ERR_CORRUPT, "corrupt_checkpoint"},
        {VD_ERR_VERSION, "unsupported_version"},
        {VD_ERR_IO, "io_error"},
        {VD_ERR_DECODE, "decode_error"},
        {VD_ERR_INVALID_REQUEST, "invalid_request"},
        {VD_ERR_UNKNOWN_OP, "unknown_op"},
        {VD_ERR_KEY_MISMATCH, "key_mismatch"},
        {VD_ERR_WRONG_PARTITION, "wrong_partition"},
        {VD_ERR_TIMEOUT, "timeout"},
        {VD_ERR_UNAVAILABLE, "unavailable"},
        {VD_ERR_CONFIG, "config_error"},
    };
    /* Codes added later are covered by the generic checks below. */
    assert_true(sizeof want / sizeof want[0] <= VD_ERR__COUNT);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(vd_err_code(want[i].code), want[i].name);

    for (int c = 0; c < VD_ERR__COUNT; c++) {
        const char *code = vd_err_code((vd_err)c), *text = vd_strerror((vd_err)c);
        assert_non_null(code);
        assert_non_null(text);
        assert_true(strlen(code) > 0);
        assert_true(strlen(text) > 0);
        /* Wire names are snake_case. */
        for (const char *p = code; *p; p++) assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        /* Distinct names and descriptions: a client can tell codes apart. */
        for (int d = 0; d < c; d++) {
            assert_string_not_equal(code, vd_err_code((vd_err)d));
            assert_string_not_equal(text, vd_strerror((vd_err)d));
        }
    }
}

static void test_err_out_of_range(void **state)
{
    (void)state;
    const int bad[] = {VD_ERR__COUNT, VD_ERR__COUNT + 1, 1000, -1, -1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *code = vd_err_code((vd_err)bad[i]), *text = vd_strerror((vd_err)bad[i]);
        assert_non_null(code);
        assert_non_null(text);
        assert_true(strlen(code) > 0);
        assert_true(strlen(text) > 0);
        /* Not mistaken for any real code. */
        for (int c = 0; c < VD_ERR__COUNT; c++) assert_string_not_equal(code, vd_err_code(c));
    }
}

static void test_error_set(void **state)
{
    (void)state;
    vd_error err;
    memset(&err, 0x5A, sizeof err);
    vd_err rc = vd_error_set(&err, VD_ERR_INVALID_VECTOR, "items[%d].vector[%zu]: %s", 3,
                             (size_t)17, "NaN");
    assert_int_equal(rc, VD_ERR_INVALID_VECTOR);
    assert_int_equal(err.code, VD_ERR_INVALID_VECTOR);
    assert_string_equal(err.msg, "items[3].vector[17]: NaN");

    /* Overwrites, does not append. */
    rc = vd_error_set(&err, VD_ERR_LIMIT, "x");
    assert_int_equal(rc, VD_ERR_LIMIT);
    assert_int_equal(err.code, VD_ERR_LIMIT);
    assert_string_equal(err.msg, "x");

    /* A message longer than the buffer is truncated and terminated. */
    char longs[600];
    memset(longs, 'q', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    rc = vd_error_set(&err, VD_ERR_IO, "%s", longs);
    assert_int_equal(rc, VD_ERR_IO);
    assert_int_equal(strlen(err.msg), VD_ERROR_MSG_MAX - 1);
    assert_memory_equal(err.msg, longs, VD_ERROR_MSG_MAX - 1);

    /* VD_OK can be set too (callers use it to reset). */
    assert_int_equal(vd_error_set(&err, VD_OK, "fine"), VD_OK);
    assert_int_equal(err.code, VD_OK);

    vd_error_clear(&err);
    assert_int_equal(err.code, VD_OK);
    assert_string_equal(err.msg, "");
}

static void test_error_set_null(void **state)
{
    (void)state;
    /* NULL err: the code still comes back, nothing is dereferenced. */
    assert_int_equal(vd_error_set(NULL, VD_ERR_NOT_FOUND, "id %s", "x"), VD_ERR_NOT_FOUND);
    assert_int_equal(vd_error_set(NULL, VD_OK, "nothing"), VD_OK);
    vd_error_clear(NULL);
}

/* An optional argument selects tests by name (cmocka pattern, e.g. "test_search*"). */
int main(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_vectors),
        cmocka_unit_test(test_crc32c_empty_keeps_crc),
        cmocka_unit_test(test_crc32c_incremental),
        cmocka_unit_test(test_crc32c_hw_equals_sw),
        cmocka_unit_test(test_crc32c_detects_single_bit_flips),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_utf8_exhaustive_short),
        cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_err_out_of_range),
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_error_set_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
