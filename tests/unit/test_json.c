/*
 * test_json.c - unit tests for src/codec/json.c, the JSON to msgpack
 * converter: every construct and its exact msgpack bytes, the width
 * boundaries of every msgpack header, escapes and UTF-8, numbers (integer
 * widths, unsigned, -0, exponents, the nearest double against strtod, out
 * of range), invalid text with the byte offset and path the error names,
 * nesting, top-level fields, and equality with the jansson conversion it
 * replaced, on valid documents and on thousands of mutated ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>

#include "codec/json.h"
#include "codec/mpread.h"
#include "codec/writer.h"

/* ------------------------------------------------------------------ */
/* Helpers. */

/* Converts text (n bytes) and checks the result is exactly want[0..want_len). */
static void conv_n(const char *text, size_t n, const char *want, size_t want_len)
{
    uint8_t *mp = NULL;
    size_t len = 0;
    vd_error e = {0};
    vd_err rc = vd_json_to_msgpack(text, n, &mp, &len, &e);
    if (rc) print_message("%.*s: %s\n", (int)n, text, e.msg);
    assert_int_equal(rc, VD_OK);
    if (len != want_len || memcmp(mp, want, len) != 0) {
        print_message("%.*s converted to", (int)n, text);
        for (size_t i = 0; i < len; i++) print_message(" %02x", mp[i]);
        print_message("\n");
    }
    assert_int_equal(len, want_len);
    assert_memory_equal(mp, want, len);
    free(mp);
}

#define CONV(text, want) conv_n(text, strlen(text), want, sizeof want - 1)

/* Conversion must fail with code and a message containing substr. */
static void bad_n(const char *text, size_t n, vd_err code, const char *substr)
{
    uint8_t *sentinel = (uint8_t *)"", *mp = sentinel;
    size_t len = 7;
    vd_error e = {0};
    vd_err rc = vd_json_to_msgpack(text, n, &mp, &len, &e);
    if (rc != code || !strstr(e.msg, substr))
        print_message("%.*s: got %s \"%s\", wanted %s with \"%s\"\n", (int)(n > 80 ? 80 : n), text,
                      vd_err_code(rc), e.msg, vd_err_code(code), substr);
    assert_int_equal(rc, code);
    assert_non_null(strstr(e.msg, substr));
    assert_ptr_equal(mp, sentinel);
    assert_int_equal(len, 7);
}

static void bad(const char *text, const char *substr)
{
    bad_n(text, strlen(text), VD_ERR_DECODE, substr);
}

/* Converts text and reads back its one value. */
static vd_mp_value conv_value(const char *text, uint8_t **mp)
{
    size_t len;
    vd_error e = {0};
    vd_err rc = vd_json_to_msgpack(text, strlen(text), mp, &len, &e);
    if (rc) print_message("%s: %s\n", text, e.msg);
    assert_int_equal(rc, VD_OK);
    vd_mp_reader r;
    vd_mp_value v;
    vd_mp_reader_init(&r, *mp, len);
    assert_int_equal(vd_mp_read(&r, &v), 0);
    assert_int_equal(vd_mp_remaining(&r), 0);
    return v;
}

/* The value of a converted number, whatever its msgpack type. */
static double conv_double_or_int(const char *text)
{
    uint8_t *mp;
    vd_mp_value v = conv_value(text, &mp);
    free(mp);
    if (v.type == VD_MP_INT) return (double)v.v.i;
    if (v.type == VD_MP_UINT) return (double)v.v.u;
    assert_int_equal(v.type, VD_MP_FLOAT64);
    return v.v.f;
}

static double conv_double(const char *text)
{
    uint8_t *mp;
    vd_mp_value v = conv_value(text, &mp);
    assert_int_equal(v.type, VD_MP_FLOAT64);
    free(mp);
    return v.v.f;
}

/* The conversion codec.c did before json.c: jansson's tree, written with
 * vd_writer. NULL when jansson refuses the text (why in *why). */
static void ref_write(vd_writer *w, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        vd_writer_map_begin(w, (uint32_t)json_object_size(j));
        json_object_foreach(j, key, val)
        {
            vd_writer_key(w, key);
            ref_write(w, val);
        }
        vd_writer_map_end(w);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *val;
        vd_writer_array_begin(w, (uint32_t)json_array_size(j));
        json_array_foreach(j, i, val) ref_write(w, val);
        vd_writer_array_end(w);
        break;
    }
    case JSON_STRING:
        vd_writer_str(w, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        vd_writer_int(w, json_integer_value(j));
        break;
    case JSON_REAL:
        vd_writer_double(w, json_real_value(j));
        break;
    case JSON_TRUE:
        vd_writer_bool(w, 1);
        break;
    case JSON_FALSE:
        vd_writer_bool(w, 0);
        break;
    case JSON_NULL:
        vd_writer_nil(w);
        break;
    }
}

static uint8_t *ref_convert(const char *text, size_t n, size_t *len, char *why, size_t why_cap)
{
    json_error_t je;
    json_t *j = json_loadb(text, n, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(why, why_cap, "%s", je.text);
        return NULL;
    }
    vd_writer *w;
    assert_int_equal(vd_writer_new(&w, VD_CT_MSGPACK), VD_OK);
    ref_write(w, j);
    uint8_t *buf;
    assert_int_equal(vd_writer_take(w, &buf, len, NULL), VD_OK);
    vd_writer_free(w);
    json_decref(j);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Constructs. */

static void test_scalars_and_containers(void **state)
{
    (void)state;
    CONV("true", "\xc3");
    CONV("false", "\xc2");
    CONV("null", "\xc0");
    CONV("0", "\x00");
    CONV("\"\"", "\xa0");
    CONV("\"ab\"", "\xa2"
                   "ab");
    CONV("[]", "\x90");
    CONV("{}", "\x80");
    CONV(" \t\r\n[ 1 , [ ] , { } ] \n", "\x93\x01\x90\x80");
    CONV("{\"a\":[true,false,null],\"b\":{\"c\":\"d\"}}", "\x82\xa1"
                                                          "a\x93\xc3\xc2\xc0\xa1"
                                                          "b\x81\xa1"
                                                          "c\xa1"
                                                          "d");
    /* Keys in text order; a repeated key is kept (the decoder takes the last). */
    CONV("{\"b\":1,\"a\":2,\"b\":3}", "\x83\xa1"
                                      "b\x01\xa1"
                                      "a\x02\xa1"
                                      "b\x03");
    CONV("[[[[]]]]", "\x91\x91\x91\x90");
}

/* Builds "[0,0,...]" with n elements, or {"k0":0,...} with n keys. */
static char *many(size_t n, int obj)
{
    char *s = malloc(16 * n + 8), *p = s;
    assert_non_null(s);
    *p++ = obj ? '{' : '[';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        p += obj ? sprintf(p, "\"%zu\":0", i) : sprintf(p, "0");
    }
    *p++ = obj ? '}' : ']';
    *p = '\0';
    return s;
}

static void test_header_widths(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        uint8_t arr[5], map[5];
        size_t hl;
    } cases[] = {
        {15, {0x9f}, {0x8f}, 1},
        {16, {0xdc, 0x00, 0x10}, {0xde, 0x00, 0x10}, 3},
        {65535, {0xdc, 0xff, 0xff}, {0xde, 0xff, 0xff}, 3},
        {65536, {0xdd, 0x00, 0x01, 0x00, 0x00}, {0xdf, 0x00, 0x01, 0x00, 0x00}, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int obj = 0; obj < 2; obj++) {
            char *s = many(cases[i].n, obj);
            uint8_t *mp;
            size_t len;
            assert_int_equal(vd_json_to_msgpack(s, strlen(s), &mp, &len, NULL), VD_OK);
            assert_memory_equal(mp, obj ? cases[i].map : cases[i].arr, cases[i].hl);
            vd_mp_reader r;
            vd_mp_value v;
            vd_mp_reader_init(&r, mp, len);
            assert_int_equal(vd_mp_read(&r, &v), 0);
            assert_int_equal(v.v.n, cases[i].n);
            vd_mp_reader_init(&r, mp, len);
            assert_int_equal(vd_mp_skip(&r), 0);
            assert_int_equal(vd_mp_remaining(&r), 0);
            free(mp);
            free(s);
        }
    }
    /* Strings: fixstr, str8, str16, str32. */
    static const struct {
        size_t n;
        uint8_t h[5];
        size_t hl;
    } str[] = {
        {31, {0xbf}, 1},
        {32, {0xd9, 32}, 2},
        {255, {0xd9, 0xff}, 2},
        {256, {0xda, 0x01, 0x00}, 3},
        {65535, {0xda, 0xff, 0xff}, 3},
        {65536, {0xdb, 0x00, 0x01, 0x00, 0x00}, 5},
    };
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++) {
        char *s = malloc(str[i].n + 3);
        s[0] = '"';
        memset(s + 1, 'x', str[i].n);
        s[str[i].n + 1] = '"';
        uint8_t *mp;
        size_t len;
        assert_int_equal(vd_json_to_msgpack(s, str[i].n + 2, &mp, &len, NULL), VD_OK);
        assert_int_equal(len, str[i].hl + str[i].n);
        assert_memory_equal(mp, str[i].h, str[i].hl);
        free(mp);
        free(s);
    }
}

/* ------------------------------------------------------------------ */
/* Strings. */

static void test_escapes(void **state)
{
    (void)state;
    CONV("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\xa8\"\\/\b\f\n\r\t");
    CONV("\"\\u0041\\u00e9\\u00E9\\u20ac\"", "\xa8"
                                             "A\xc3\xa9\xc3\xa9\xe2\x82\xac");
    CONV("\"\\ud83d\\ude00\"", "\xa4\xf0\x9f\x98\x80"); /* U+1F600 */
    CONV("\"\\uDBFF\\uDFFF\"", "\xa4\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    CONV("\"a\\u0000b\"", "\xa3"
                          "a\x00"
                          "b"); /* NUL, as msgpack strings may hold */
    CONV("\"\\u07ff\\u0800\\uffff\"", "\xa8\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
    /* Raw UTF-8 passes as it is. */
    CONV("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "\xae"
                                                          "caf\xc3\xa9 \xe2\x82\xac "
                                                          "\xf0\x9f\x98\x80");
    /* A key is a string like any other. */
    CONV("{\"\\u006b\":1}", "\x81\xa1k\x01");

    bad("\"\\ud83d\"", "unpaired surrogate");
    bad("\"\\ud83dx\"", "unpaired surrogate");
    bad("\"\\ud83d\\u0041\"", "unpaired surrogate");
    bad("\"\\ud83d\\ud83d\"", "unpaired surrogate");
    bad("\"\\ude00\"", "unpaired surrogate");
    bad("\"\\u12\"", "invalid \\u escape");
    bad("\"\\u12g4\"", "invalid \\u escape");
    bad("\"\\x\"", "invalid escape");
    bad("\"\\'\"", "invalid escape");
    bad("\"\\", "unterminated string");
    bad("\"abc", "unterminated string");
    bad("\"a\x01\"", "control character");
    bad("\"a\tb\"", "control character");
    bad_n("\"a\0b\"", 5, VD_ERR_DECODE, "NUL byte in a string");
    bad("\"\xff\"", "invalid UTF-8");
    bad("\"\xc0\x80\"", "invalid UTF-8");         /* overlong NUL */
    bad("\"\xe0\x80\xaf\"", "invalid UTF-8");     /* overlong '/' */
    bad("\"\xed\xa0\x80\"", "invalid UTF-8");     /* an encoded surrogate */
    bad("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    bad("\"\xe2\x82\"", "invalid UTF-8");         /* cut short */
    bad("\"\x80\"", "invalid UTF-8");             /* a lone continuation byte */
    bad("\"\xe2\x82", "invalid UTF-8");
}

/* ------------------------------------------------------------------ */
/* Numbers. */

static void test_integers(void **state)
{
    (void)state;
    CONV("0", "\x00");
    CONV("-0", "\x00"); /* an integer, as jansson read it */
    CONV("1", "\x01");
    CONV("127", "\x7f");
    CONV("128", "\xcc\x80");
    CONV("255", "\xcc\xff");
    CONV("256", "\xcd\x01\x00");
    CONV("65535", "\xcd\xff\xff");
    CONV("65536", "\xce\x00\x01\x00\x00");
    CONV("4294967295", "\xce\xff\xff\xff\xff");
    CONV("4294967296", "\xcf\x00\x00\x00\x01\x00\x00\x00\x00");
    CONV("9223372036854775807", "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff");
    CONV("-1", "\xff");
    CONV("-32", "\xe0");
    CONV("-33", "\xd0\xdf");
    CONV("-128", "\xd0\x80");
    CONV("-129", "\xd1\xff\x7f");
    CONV("-32768", "\xd1\x80\x00");
    CONV("-32769", "\xd2\xff\xff\x7f\xff");
    CONV("-2147483648", "\xd2\x80\x00\x00\x00");
    CONV("-2147483649", "\xd3\xff\xff\xff\xff\x7f\xff\xff\xff");
    CONV("-9223372036854775808", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00");

    /* Above INT64_MAX: unsigned, as a msgpack producer would send it. */
    uint8_t *mp;
    vd_mp_value v = conv_value("9223372036854775808", &mp);
    assert_int_equal(v.type, VD_MP_UINT);
    assert_true(v.v.u == (uint64_t)INT64_MAX + 1);
    free(mp);
    v = conv_value("18446744073709551615", &mp);
    assert_int_equal(v.type, VD_MP_UINT);
    assert_true(v.v.u == UINT64_MAX);
    free(mp);
    /* Beyond 64 bits: the nearest double. */
    assert_true(conv_double("18446744073709551616") == 18446744073709551616.0);
    assert_true(conv_double("-9223372036854775809") == -9223372036854775808.0);
    assert_true(conv_double("123456789012345678901234567890") == 1.2345678901234568e29);
    assert_true(conv_double("-123456789012345678901234567890") == -1.2345678901234568e29);
    /* Each width round-trips through the reader. */
    static const int64_t ints[] = {
        0,         5,         -5,       100,          -100,          300,
        -300,      70000,     -70000,   5000000000LL, -5000000000LL, INT64_MAX,
        INT64_MIN, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char s[32];
        snprintf(s, sizeof s, "%lld", (long long)ints[i]);
        v = conv_value(s, &mp);
        assert_int_equal(v.type, VD_MP_INT);
        assert_true(v.v.i == ints[i]);
        free(mp);
    }
}

static void test_floats(void **state)
{
    (void)state;
    CONV("1.5", "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00");
    CONV("1.0", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00");
    CONV("-0.0", "\xcb\x80\x00\x00\x00\x00\x00\x00\x00");
    CONV("0.0", "\xcb\x00\x00\x00\x00\x00\x00\x00\x00");
    CONV("-0e5", "\xcb\x80\x00\x00\x00\x00\x00\x00\x00");
    assert_true(conv_double("1e2") == 100.0);
    assert_true(conv_double("1E+2") == 100.0);
    assert_true(conv_double("1e-2") == 0.01);
    assert_true(conv_double("-2.5E-3") == -0.0025);
    assert_true(conv_double("0.1") == 0.1);
    assert_true(conv_double("0.30000000000000004") == 0.30000000000000004);
    assert_true(conv_double("3.141592653589793") == 3.141592653589793);
    assert_true(conv_double("1.7976931348623157e308") == 1.7976931348623157e308);
    assert_true(conv_double("-1.7976931348623157e308") == -1.7976931348623157e308);
    assert_true(conv_double("2.2250738585072014e-308") == 2.2250738585072014e-308);
    assert_true(conv_double("4.9e-324") == 4.9e-324); /* the least denormal */
    assert_true(conv_double("1e-400") == 0.0);        /* underflow: 0, as jansson */
    assert_true(conv_double("0.1000000000000000055511151231257827") == 0.1);
    assert_true(conv_double("100000000000000000000000e-23") == 1.0);
    assert_true(conv_double("0.00000000000000000000000000000001") == 1e-32);
    assert_true(conv_double("1e0000000000000000000000000000000000002") == 100.0);
    assert_true(conv_double("9007199254740993.0") == 9007199254740992.0); /* ties to even */
    double z = conv_double("-0.0");
    assert_true(z == 0.0 && signbit(z));

    bad("1.8e308", "number out of range");
    bad("1e400", "number out of range");
    bad("-1e400", "number out of range");
    bad("1e99999999999999999999", "number out of range");
    char digits[400];
    memset(digits, '9', sizeof digits - 1);
    digits[sizeof digits - 1] = '\0';
    bad(digits, "number out of range");

    bad("01", "leading zero");
    bad("-01", "leading zero");
    bad("-", "invalid number");
    bad("--1", "invalid number");
    bad("+1", "a value expected");
    bad(".5", "a value expected");
    bad("1.", "digit expected after '.'");
    bad("1.e5", "digit expected after '.'");
    bad("1e", "digit expected in the exponent");
    bad("1e+", "digit expected in the exponent");
    bad("0x10", "trailing bytes");
    bad("NaN", "a value expected");
    bad("Infinity", "a value expected");
    bad("-Infinity", "invalid number");
    bad("[1 2]", "',' or ']' expected");
}

/* The converted double is strtod's for random decimal texts (the fast
 * path for short ones, strtod for the rest). */
static void test_floats_match_strtod(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char s[80];
        int n = 0, int_digits = 1 + (int)(x % 20), frac = (int)((x >> 8) % 24);
        if (x >> 20 & 1) s[n++] = '-';
        uint64_t y = x * 0x9E3779B97F4A7C15ULL;
        s[n++] = (char)('1' + y % 9);
        for (int d = 1; d < int_digits; d++) s[n++] = (char)('0' + (y >> (d % 60)) % 10);
        if (frac) {
            s[n++] = '.';
            for (int d = 0; d < frac; d++) s[n++] = (char)('0' + (y >> ((d * 7) % 60)) % 10);
        }
        if (x >> 30 & 1) n += sprintf(s + n, "e%d", (int)((x >> 32) % 80) - 40);
        s[n] = '\0';
        double got = conv_double_or_int(s);
        double want = strtod(s, NULL);
        if (got != want) print_message("%s: %.17g, strtod %.17g\n", s, got, want);
        assert_true(got == want);
    }
}

/* ------------------------------------------------------------------ */
/* Invalid text, positions, nesting. */

static void test_invalid_text(void **state)
{
    (void)state;
    bad("", "unexpected end of input");
    bad(" \n ", "unexpected end of input");
    bad("{", "a string key expected (found end of input)");
    bad("[", "unexpected end of input");
    bad("[1,", "unexpected end of input");
    bad("[1", "',' or ']' expected (found end of input)");
    bad("{\"a\" 1}", "':' expected (found '1')");
    bad("{\"a\":}", "a value expected (found '}')");
    bad("{1:2}", "a string key expected (found '1')");
    bad("{\"a\":1,}", "a string key expected (found '}')");
    bad("[1,]", "a value expected (found ']')");
    bad("]", "a value expected");
    bad("}", "a value expected");
    bad("tru", "invalid literal");
    bad("nul", "invalid literal");
    bad("True", "a value expected");
    bad("[1]x", "trailing bytes after the JSON value (found 'x')");
    bad("[1][2]", "trailing bytes");
    bad("{}{}", "trailing bytes");
    bad("\xef\xbb\xbf{}", "a value expected (found byte 0xef)"); /* no BOM */
    bad_n("{}\0", 3, VD_ERR_DECODE, "trailing bytes after the JSON value (found a NUL byte)");
    bad_n("[1,\0]", 5, VD_ERR_DECODE, "(found a NUL byte)");
    bad("{\"a\":1 \"b\":2}", "',' or '}' expected (found '\"')");
    bad("[\"a\" : 1]", "',' or ']' expected (found ':')");
    /* NULL text is empty text. */
    assert_int_equal(vd_json_to_msgpack(NULL, 5, &(uint8_t *){NULL}, &(size_t){0}, NULL),
                     VD_ERR_DECODE);
}

static void test_error_positions(void **state)
{
    (void)state;
    bad("{\"items\":[{\"id\":\"a\",\"vector\":[1,2,x]}]}",
        "invalid JSON at byte 34 (in items[0].vector[2]): a value expected (found 'x')");
    bad("{\"a\":{\"b\":[[\"\\q\"]]}}", "at byte 13 (in a.b[0][0]): invalid escape (found '\\')");
    bad("[0,1,2,\"\xff\"]", "at byte 8 (in [3]): invalid UTF-8 in a string (found byte 0xff)");
    bad("{\"k\":1e999}", "at byte 5 (in k): number out of range (beyond a double) (found '1')");
    /* A long key is cut in the path. */
    bad("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":?}",
        "(in aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa): a value expected");
}

static char *nested(size_t depth, const char *inner)
{
    char *s = malloc(2 * depth + strlen(inner) + 1);
    assert_non_null(s);
    memset(s, '[', depth);
    strcpy(s + depth, inner);
    memset(s + depth + strlen(inner), ']', depth);
    s[2 * depth + strlen(inner)] = '\0';
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    char *s = nested(VD_JSON_MAX_DEPTH, "1");
    uint8_t *mp;
    size_t len;
    assert_int_equal(vd_json_to_msgpack(s, strlen(s), &mp, &len, NULL), VD_OK);
    assert_int_equal(len, VD_JSON_MAX_DEPTH + 1);
    free(mp);
    free(s);
    s = nested(VD_JSON_MAX_DEPTH + 1, "1");
    bad_n(s, strlen(s), VD_ERR_LIMIT, "body: JSON nested deeper than 48 levels at byte 48 (in [0]");
    free(s);
    /* Objects count too. */
    char obj[512] = "";
    for (int i = 0; i <= VD_JSON_MAX_DEPTH; i++) strcat(obj, "{\"a\":");
    bad_n(obj, strlen(obj), VD_ERR_LIMIT, "nested deeper than 48 levels at byte 240 (in a.a.a.a");
    /* A million brackets: refused at the 49th, no recursion. */
    s = nested(1000000, "");
    bad_n(s, strlen(s), VD_ERR_LIMIT, "nested deeper");
    free(s);
}

/* ------------------------------------------------------------------ */
/* Top-level fields. */

static void test_fields(void **state)
{
    (void)state;
    static const char *const keys[] = {"op", "index", "items", "absent", "n"};
    const char *t = "{\"op\":\"add\",\"\\u0069ndex\":\"a\",\"nested\":{\"op\":\"x\",\"items\":1},"
                    "\"items\":[{\"id\":\"x\"},2,3],\"op\":\"delete\",\"n\":-5}";
    vd_json j;
    vd_json_field f[5];
    vd_error e = {0};
    assert_int_equal(vd_json_scan(&j, t, strlen(t), keys, f, 5, 1, &e), VD_OK);
    assert_int_equal(j.kind, '{');
    /* op: the last one wins, the nested "op" is not top-level */
    assert_true(f[0].found);
    assert_int_equal(f[0].kind, '"');
    assert_int_equal(f[0].off, strstr(t, "\"delete\"") - t);
    assert_int_equal(f[0].mp_len, 7);
    uint8_t buf[64];
    assert_int_equal(vd_json_write(&j, &f[0], buf, &e), VD_OK);
    assert_memory_equal(buf,
                        "\xa6"
                        "delete",
                        7);
    /* index, written with an escape */
    assert_true(f[1].found);
    assert_int_equal(vd_json_write(&j, &f[1], buf, &e), VD_OK);
    assert_memory_equal(buf,
                        "\xa1"
                        "a",
                        2);
    /* items: an array of 3, written alone */
    assert_true(f[2].found);
    assert_int_equal(f[2].kind, '[');
    assert_int_equal(f[2].count, 3);
    assert_int_equal(f[2].mp_len, 9);
    assert_int_equal(vd_json_write(&j, &f[2], buf, &e), VD_OK);
    assert_memory_equal(buf, "\x93\x81\xa2id\xa1x\x02\x03", 9);
    assert_false(f[3].found);
    assert_int_equal(vd_json_write(&j, &f[3], buf, &e), VD_ERR_DECODE);
    assert_true(f[4].found);
    assert_int_equal(f[4].kind, '0');
    vd_json_release(&j);
    vd_json_release(&j); /* twice is fine */

    /* Without counts: scalars can be written, containers cannot. */
    assert_int_equal(vd_json_scan(&j, t, strlen(t), keys, f, 5, 0, &e), VD_OK);
    assert_null(j.counts);
    assert_int_equal(vd_json_write(&j, &f[0], buf, &e), VD_OK);
    assert_int_equal(vd_json_write(&j, &f[2], buf, &e), VD_ERR_DECODE);
    vd_json_release(&j);

    /* A top level that is not an object has no fields. */
    t = "[{\"op\":\"add\"}]";
    assert_int_equal(vd_json_scan(&j, t, strlen(t), keys, f, 5, 1, &e), VD_OK);
    assert_int_equal(j.kind, '[');
    assert_false(f[0].found);
    vd_json_release(&j);
    static const struct {
        const char *t;
        char kind;
    } kinds[] = {{"1", '0'},     {"-1", '0'},   {"\"s\"", '"'}, {"true", 't'},
                 {"false", 'f'}, {"null", 'n'}, {" {} ", '{'}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        assert_int_equal(vd_json_scan(&j, kinds[i].t, strlen(kinds[i].t), NULL, NULL, 0, 1, &e),
                         VD_OK);
        assert_int_equal(j.kind, kinds[i].kind);
        vd_json_release(&j);
    }
}

/* ------------------------------------------------------------------ */
/* Equality with the jansson conversion. */

/* Valid documents: the request bodies of test_codec and more. */
static const char *const corpus[] = {
    "{\"op\":\"create\",\"index\":\"docs\",\"dimension\":2,\"m\":4}",
    "{\"op\":\"add\",\"index\":\"docs\",\"items\":[{\"id\":\"a\",\"vector\":[1,-2.5e-3],"
    "\"metadata\":{\"t\":\"caf\\u00e9\",\"n\":[1,2,{\"z\":null}]}},{\"id\":\"b\",\"vector\":[0,1]}]"
    "}",
    "{\"op\":\"delete\",\"index\":\"docs\",\"ids\":[\"a\",\"b\"]}",
    "{\"op\":\"search\",\"index\":\"docs\",\"vector\":[0.1,0.2],\"k\":3,\"min_offset\":7}",
    "{\"op\":\"info\",\"index\":\"docs\"}",
    "{\"items\":[{\"id\":\"x\",\"vector\":[1,2.5,-3e-2],\"metadata\":{\"k\":[1,\"v\"]}},"
    "{\"vector\":[0,0,1],\"id\":\"y\"}],\"index\":\"i\",\"op\":\"add\",\"extra\":{\"deep\":[[[]]]}"
    "}",
    "{\"op\":\"create\",\"index\":\"docs\",\"dimension\":3,\"distance\":\"dot\",\"m\":8,"
    "\"ef_construction\":100,\"ef_search\":20,\"if_not_exists\":true}",
    "{\"op\":\"search\",\"index\":\"docs\",\"vector\":[1],\"k\":1,\"ef\":0,\"min_offset\":0,"
    "\"include_metadata\":false}",
    "{\"op\":\"info\",\"index\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
    "{\"m\":{\"i\":[0,-1,-32,-33,127,128,255,256,65535,65536,-129,-32768,-32769,4294967295,"
    "4294967296,-2147483648,-2147483649,9223372036854775807,-9223372036854775808],"
    "\"f\":[0.0,-0.0,1e300,-1e-300,4.9e-324,1.7976931348623157e308,0.1,1E2,12.5e+1],"
    "\"s\":\"\xe2\x82\xac\xf0\x9f\x98\x80\",\"l\":[true,false,null,{},[],\"\"]}}",
    " [ 1 , \"two\" , { \"three\" : [ 3 ] } ] ",
    "\"just a string\"",
    "-12.75",
    "null",
};

static void check_same_as_jansson(const char *t, size_t n, int *both_ok, int *only_ours)
{
    uint8_t *mp = NULL;
    size_t len = 0;
    vd_error e = {0};
    vd_err rc = vd_json_to_msgpack(t, n, &mp, &len, &e);
    char why[160];
    size_t ref_len = 0;
    uint8_t *ref = ref_convert(t, n, &ref_len, why, sizeof why);
    if (ref && rc) print_message("jansson accepts, json.c refuses (%s): %.*s\n", e.msg, (int)n, t);
    if (ref) assert_int_equal(rc, VD_OK);
    if (rc == VD_OK) {
        /* Well-formed msgpack, exactly one value. */
        vd_mp_reader r;
        vd_mp_reader_init(&r, mp, len);
        assert_int_equal(vd_mp_skip(&r), 0);
        assert_int_equal(vd_mp_remaining(&r), 0);
    }
    if (ref) {
        if (len != ref_len || memcmp(mp, ref, len) != 0)
            print_message("different msgpack for %.*s\n", (int)n, t);
        assert_int_equal(len, ref_len);
        assert_memory_equal(mp, ref, len);
        ++*both_ok;
    } else if (rc == VD_OK) {
        /* Only where the two differ on purpose: jansson refuses duplicate
         * keys here (kept by json.c), integers beyond int64, \u0000 in a
         * key. */
        int expected = strstr(why, "duplicate") || strstr(why, "too big") ||
                       strstr(why, "NUL byte in object key");
        if (!expected)
            print_message("json.c accepts, jansson refuses (%s): %.*s\n", why, (int)n, t);
        assert_true(expected);
        ++*only_ours;
    }
    free(mp);
    free(ref);
}

static void test_same_as_jansson(void **state)
{
    (void)state;
    int both = 0, ours = 0;
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++)
        check_same_as_jansson(corpus[i], strlen(corpus[i]), &both, &ours);
    assert_int_equal(both, sizeof corpus / sizeof corpus[0]);
    assert_int_equal(ours, 0);
}

/* Every prefix, and every byte replaced by each of a set of bytes that
 * matter to JSON: both parsers agree on what is JSON and on its msgpack. */
static void test_mutations_same_as_jansson(void **state)
{
    (void)state;
    static const char subst[] = "{}[],:\"\\ 0159-+.eEtfnua\x01\x7f\x80\xc3\xff";
    int both = 0, ours = 0, total = 0;
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        size_t n = strlen(corpus[i]);
        char *t = malloc(n + 1);
        for (size_t cut = 0; cut < n; cut++, total++)
            check_same_as_jansson(corpus[i], cut, &both, &ours);
        for (size_t at = 0; at < n; at++) {
            for (size_t k = 0; k < sizeof subst - 1; k++, total++) {
                memcpy(t, corpus[i], n);
                t[at] = subst[k];
                check_same_as_jansson(t, n, &both, &ours);
            }
            /* and with the byte deleted */
            memcpy(t, corpus[i], at);
            memcpy(t + at, corpus[i] + at + 1, n - at - 1);
            check_same_as_jansson(t, n - 1, &both, &ours);
            total++;
        }
        free(t);
    }
    print_message("%d texts: %d valid for both with equal msgpack, %d only for json.c\n", total,
                  both, ours);
    assert_true(both > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_and_containers),
        cmocka_unit_test(test_header_widths),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_floats_match_strtod),
        cmocka_unit_test(test_invalid_text),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_same_as_jansson),
        cmocka_unit_test(test_mutations_same_as_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
