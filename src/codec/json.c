/*
 * json.c - JSON text to msgpack in two passes of one tokenizer (json.h).
 *
 * Design note. msgpack writes an array's or a map's element count before
 * its elements, JSON only tells at the closing bracket. The first pass
 * (measuring) parses and validates everything, notes each container's
 * count in counts[] - indexed by the order in which containers open, known
 * at the opening bracket - and adds up the encoded size; the second pass
 * (writing) runs the same code over the same text, writes each header from
 * counts[] as its bracket opens, and the values after it, into a buffer of
 * exactly that size. Sharing the code means the passes cannot disagree
 * about the text; should they anyway (the text changed under us), the
 * writer's bounds checks turn it into an error, never an overrun.
 *
 * counts[] is sized before the first pass by counting the brackets outside
 * strings, so it is never reallocated. The tokenizer does not recurse: a
 * fixed stack of VD_JSON_MAX_DEPTH frames. Floats are converted only when
 * writing (the first pass needs their size, 9 bytes, not their value),
 * except a number that might exceed the double range, which the first
 * pass converts to refuse it before anything is written.
 */
#include "codec/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

typedef struct frame {
    uint8_t obj;    /* 1: object, 0: array */
    uint32_t count; /* elements (pairs) completed */
    size_t ci;      /* index in counts[] */
    size_t key_off; /* object: offset of the current key's quote; SIZE_MAX: none */
} frame;

typedef struct parser {
    const uint8_t *text, *end;
    uint32_t *counts; /* NULL: not kept */
    size_t n_counts;
    int writing; /* 0: first pass (measure), 1: second pass (write) */
    uint8_t *out;
    size_t cap; /* writing: room in out */
    size_t n;   /* bytes measured or written */
    size_t ci;  /* index of the next container to open */
    int depth;
    frame st[VD_JSON_MAX_DEPTH];
    /* First pass over a whole object: its top-level fields. */
    const char *const *keys;
    vd_json_field *fields;
    size_t n_keys;
    int cur;              /* keys[] index of the current top-level key, -1: none */
    size_t field_n;       /* n when the current field's value started */
    uint32_t last_closed; /* count of the container closed last */
    /* The first failure. */
    const uint8_t *at;
    const char *why;
    vd_err code;
} parser;

/* ------------------------------------------------------------------ */
/* Failures and output. */

static int fail(parser *ps, const uint8_t *at, const char *why)
{
    if (!ps->why) {
        ps->at = at;
        ps->why = why;
        ps->code = VD_ERR_DECODE;
    }
    return -1;
}

static void put(parser *ps, const void *b, size_t k)
{
    if (ps->writing) {
        if (ps->n > ps->cap || k > ps->cap - ps->n) {
            fail(ps, ps->text, "the text changed between the passes");
            ps->n = SIZE_MAX / 2; /* every later put fails too */
            return;
        }
        memcpy(ps->out + ps->n, b, k);
    }
    ps->n += k;
}

/* A tag and the low `bytes` bytes of v, big-endian. */
static void put_be(parser *ps, uint8_t tag, uint64_t v, int bytes)
{
    uint8_t b[9];
    b[0] = tag;
    for (int i = 0; i < bytes; i++) b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(ps, b, 1 + (size_t)bytes);
}

static void put_byte(parser *ps, uint8_t c)
{
    put(ps, &c, 1);
}

static void put_uint(parser *ps, uint64_t v)
{
    if (v < 128)
        put_byte(ps, (uint8_t)v);
    else if (v < 256)
        put_be(ps, 0xcc, v, 1);
    else if (v < 65536)
        put_be(ps, 0xcd, v, 2);
    else if (v <= UINT32_MAX)
        put_be(ps, 0xce, v, 4);
    else
        put_be(ps, 0xcf, v, 8);
}

/* The widths msgpack-c's msgpack_pack_int64() chooses. */
static void put_int(parser *ps, int64_t v)
{
    if (v >= 0)
        put_uint(ps, (uint64_t)v);
    else if (v >= -32)
        put_byte(ps, (uint8_t)v);
    else if (v >= INT8_MIN)
        put_be(ps, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN)
        put_be(ps, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN)
        put_be(ps, 0xd2, (uint64_t)v, 4);
    else
        put_be(ps, 0xd3, (uint64_t)v, 8);
}

static void put_double(parser *ps, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    put_be(ps, 0xcb, bits, 8);
}

static void put_container(parser *ps, int obj, uint32_t n)
{
    if (n < 16)
        put_byte(ps, (uint8_t)((obj ? 0x80 : 0x90) | n));
    else if (n < 65536)
        put_be(ps, obj ? 0xde : 0xdc, n, 2);
    else
        put_be(ps, obj ? 0xdf : 0xdd, n, 4);
}

static void put_str_header(parser *ps, uint32_t n)
{
    if (n < 32)
        put_byte(ps, (uint8_t)(0xa0 | n));
    else if (n < 256)
        put_be(ps, 0xd9, n, 1);
    else if (n < 65536)
        put_be(ps, 0xda, n, 2);
    else
        put_be(ps, 0xdb, n, 4);
}

/* ------------------------------------------------------------------ */
/* Tokens. */

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static int hex4(const uint8_t *p, const uint8_t *end)
{
    if (end - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t utf8_encode(uint32_t cp, uint8_t *u)
{
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    u[0] = (uint8_t)(0xf0 | cp >> 18);
    u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    u[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (a byte >= 0x80), 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end)
{
    size_t n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (size_t)(end - p) < n) return 0;
    return vd_utf8_valid((const char *)p, n) ? n : 0;
}

static void emit(uint8_t *dst, size_t cap, size_t at, const void *src, size_t k)
{
    if (dst && at < cap) memcpy(dst + at, src, k < cap - at ? k : cap - at);
}

/*
 * Reads the string whose opening quote is at p: its unescaped bytes go to
 * dst while they fit in cap (dst NULL: nowhere), *len gets their number.
 * Returns the byte after the closing quote, or NULL after fail().
 */
static const uint8_t *scan_string(parser *ps, const uint8_t *p, uint8_t *dst, size_t cap,
                                  size_t *len)
{
    const uint8_t *end = ps->end;
    size_t n = 0;
    p++;
    for (;;) {
        const uint8_t *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        emit(dst, cap, n, run, (size_t)(p - run));
        n += (size_t)(p - run);
        if (p == end) return fail(ps, p, "unterminated string"), NULL;
        if (*p == '"') {
            *len = n;
            return p + 1;
        }
        uint8_t u[4];
        size_t ul = 1;
        if (*p == '\\') {
            const uint8_t *esc = p;
            if (end - p < 2) return fail(ps, end, "unterminated string"), NULL;
            p += 2;
            switch (esc[1]) {
            case '"':
            case '\\':
            case '/':
                u[0] = esc[1];
                break;
            case 'b':
                u[0] = '\b';
                break;
            case 'f':
                u[0] = '\f';
                break;
            case 'n':
                u[0] = '\n';
                break;
            case 'r':
                u[0] = '\r';
                break;
            case 't':
                u[0] = '\t';
                break;
            case 'u': {
                int cp = hex4(p, end);
                if (cp < 0) return fail(ps, esc, "invalid \\u escape (4 hex digits)"), NULL;
                p += 4;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail(ps, esc, "unpaired surrogate \\u escape"), NULL;
                uint32_t c = (uint32_t)cp;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    int lo = end - p >= 2 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2, end) : -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail(ps, esc, "unpaired surrogate \\u escape"), NULL;
                    c = 0x10000 + ((uint32_t)(cp - 0xd800) << 10) + (uint32_t)(lo - 0xdc00);
                    p += 6;
                }
                ul = utf8_encode(c, u);
                break;
            }
            default:
                return fail(ps, esc, "invalid escape"), NULL;
            }
        } else if (*p < 0x20) {
            return fail(ps, p,
                        *p ? "control character in a string (must be escaped)"
                           : "NUL byte in a string"),
                   NULL;
        } else {
            ul = utf8_seq(p, end);
            if (!ul) return fail(ps, p, "invalid UTF-8 in a string"), NULL;
            memcpy(u, p, ul);
            p += ul;
        }
        emit(dst, cap, n, u, ul);
        n += ul;
    }
}

/* A string value or key at p, written as a msgpack str. */
static const uint8_t *string(parser *ps, const uint8_t *p, uint8_t *key, size_t key_cap,
                             size_t *key_len)
{
    size_t len;
    const uint8_t *q = scan_string(ps, p, key, key_cap, &len);
    if (!q) return NULL;
    if (key_len) *key_len = len;
    if (len > UINT32_MAX) return fail(ps, p, "string longer than 4 GiB"), NULL;
    put_str_header(ps, (uint32_t)len);
    if (!ps->writing) {
        ps->n += len;
    } else if (ps->n <= ps->cap && len <= ps->cap - ps->n) {
        scan_string(ps, p, ps->out + ps->n, len, &len);
        ps->n += len;
    } else {
        return fail(ps, p, "the text changed between the passes"), NULL;
    }
    return q;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* strtod of the number text s[0..n): it is not NUL-terminated. */
static int to_double(parser *ps, const uint8_t *s, size_t n, double *out)
{
    char small[64], *b = n < sizeof small ? small : malloc(n + 1);
    if (!b) {
        fail(ps, s, "out of memory");
        ps->code = VD_ERR_NOMEM;
        return -1;
    }
    memcpy(b, s, n);
    b[n] = '\0';
    *out = strtod(b, NULL);
    if (b != small) free(b);
    if (isinf(*out)) return fail(ps, s, "number out of range (beyond a double)");
    return 0;
}

/* A number at p (RFC 8259 grammar), written as an integer or a float64. */
static const uint8_t *number(parser *ps, const uint8_t *p)
{
    const uint8_t *s = p, *end = ps->end;
    int neg = 0, is_float = 0, big = 0;
    uint64_t m = 0;     /* the integer part, while it fits */
    uint64_t sig = 0;   /* all digits after leading zeros, while there are <= 19 */
    int sig_digits = 0; /* how many digits went into sig */
    int64_t int_digits = 0, frac_digits = 0, exp10 = 0;
    if (*p == '-') neg = 1, p++;
    if (p == end || *p < '0' || *p > '9') return fail(ps, p, "invalid number"), NULL;
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return fail(ps, p, "invalid number (leading zero)"), NULL;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned d = *p++ - '0';
            if (m > (UINT64_MAX - d) / 10)
                big = 1;
            else
                m = m * 10 + d;
            if (sig_digits < 19)
                sig = sig * 10 + d, sig_digits++;
            else
                sig_digits = 99; /* too many for the fast path */
            int_digits++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || *p < '0' || *p > '9')
            return fail(ps, p, "invalid number (digit expected after '.')"), NULL;
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned d = *p++ - '0';
            if (sig == 0 && d == 0) {
                frac_digits++; /* a leading zero: scales, adds no digit */
                continue;
            }
            if (sig_digits < 19)
                sig = sig * 10 + d, sig_digits++, frac_digits++;
            else
                sig_digits = 99;
        }
        is_float = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p == end || *p < '0' || *p > '9')
            return fail(ps, p, "invalid number (digit expected in the exponent)"), NULL;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exp10 < 100000000) exp10 = exp10 * 10 + (*p - '0');
            p++;
        }
        if (eneg) exp10 = -exp10;
        is_float = 1;
    }
    if (!is_float && !big) {
        if (!neg && m <= INT64_MAX)
            put_int(ps, (int64_t)m);
        else if (!neg)
            put_uint(ps, m);
        else if (m <= (uint64_t)INT64_MAX)
            put_int(ps, -(int64_t)m);
        else if (m == (uint64_t)INT64_MAX + 1)
            put_int(ps, INT64_MIN);
        else
            goto real;
        return p;
    }
real:;
    double d = 0;
    /* Below 10^308 a number cannot overflow: the first pass converts only
     * the rest, to refuse them before anything is written. */
    int may_overflow = int_digits + exp10 > 308;
    if (ps->writing || may_overflow) {
        int64_t scale = exp10 - frac_digits;
        if (sig_digits <= 15 && scale >= -22 && scale <= 22) {
            /* Exact: sig < 2^53 and 10^|scale| are doubles, one rounding. */
            d = scale < 0 ? (double)sig / pow10_exact[-scale] : (double)sig * pow10_exact[scale];
            if (neg) d = -d;
        } else if (to_double(ps, s, (size_t)(p - s), &d)) {
            return NULL;
        }
    }
    put_double(ps, d);
    return p;
}

static const uint8_t *literal(parser *ps, const uint8_t *p, const char *word, uint8_t tag)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - p) < n || memcmp(p, word, n) != 0)
        return fail(ps, p, "invalid literal (true, false or null expected)"), NULL;
    put_byte(ps, tag);
    return p + n;
}

/* ------------------------------------------------------------------ */
/* Top-level fields (first pass). */

static void field_begin(parser *ps, const uint8_t *p)
{
    vd_json_field *f = &ps->fields[ps->cur];
    f->off = (size_t)(p - ps->text);
    f->first_ci = ps->ci;
    f->kind = *p == '-' || (*p >= '0' && *p <= '9') ? '0' : (char)*p;
    ps->field_n = ps->n;
}

static void field_end(parser *ps)
{
    vd_json_field *f = &ps->fields[ps->cur];
    f->found = 1;
    f->mp_len = ps->n - ps->field_n;
    f->count = f->kind == '{' || f->kind == '[' ? ps->last_closed : 0;
    ps->cur = -1;
}

/* Which keys[] a top-level key is (the last match), -1 for none. */
static int match_key(const parser *ps, const uint8_t *key, size_t len)
{
    int hit = -1;
    for (size_t i = 0; i < ps->n_keys; i++) {
        if (strlen(ps->keys[i]) == len && memcmp(ps->keys[i], key, len) == 0) hit = (int)i;
    }
    return hit;
}

/* ------------------------------------------------------------------ */
/* The tokenizer. */

/*
 * Parses one value at p. whole: it must be all of the text (whitespace
 * around it allowed). Returns 0, or -1 after fail().
 */
static int parse(parser *ps, const uint8_t *p, int whole)
{
    const uint8_t *end = ps->end;
    frame *fr;
value:
    p = skip_ws(p, end);
    if (p == end) return fail(ps, p, "unexpected end of input (a value expected)");
    if (ps->cur >= 0 && ps->depth == 1) field_begin(ps, p);
    switch (*p) {
    case '{':
    case '[':
        if (ps->depth == VD_JSON_MAX_DEPTH) {
            fail(ps, p, "nested too deep");
            ps->code = VD_ERR_LIMIT;
            return -1;
        }
        fr = &ps->st[ps->depth++];
        fr->obj = *p == '{';
        fr->count = 0;
        fr->ci = ps->ci++;
        fr->key_off = SIZE_MAX;
        if (ps->counts && fr->ci >= ps->n_counts) return fail(ps, p, "more brackets than counted");
        if (ps->writing) {
            if (!ps->counts) return fail(ps, p, "element counts were not kept");
            put_container(ps, fr->obj, ps->counts[fr->ci]);
        }
        p = skip_ws(p + 1, end);
        if (p < end && *p == (fr->obj ? '}' : ']')) {
            p++;
            goto close;
        }
        if (fr->obj) goto key;
        goto value;
    case '"':
        p = string(ps, p, NULL, 0, NULL);
        break;
    case 't':
        p = literal(ps, p, "true", 0xc3);
        break;
    case 'f':
        p = literal(ps, p, "false", 0xc2);
        break;
    case 'n':
        p = literal(ps, p, "null", 0xc0);
        break;
    default:
        if (*p != '-' && (*p < '0' || *p > '9')) return fail(ps, p, "a value expected");
        p = number(ps, p);
    }
    if (!p) return -1;

after: /* a value ended just before p */
    if (ps->depth == 0) goto done;
    fr = &ps->st[ps->depth - 1];
    if (fr->count == UINT32_MAX) return fail(ps, p, "more than 2^32-1 elements");
    fr->count++;
    if (ps->cur >= 0 && ps->depth == 1) field_end(ps);
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
        p++;
        if (fr->obj) goto key;
        goto value;
    }
    if (p < end && *p == (fr->obj ? '}' : ']')) {
        p++;
        goto close;
    }
    return fail(ps, p, fr->obj ? "',' or '}' expected" : "',' or ']' expected");

close: /* the container on top ended just before p */
    fr = &ps->st[--ps->depth];
    if (ps->counts && !ps->writing) ps->counts[fr->ci] = fr->count;
    if (ps->writing && ps->counts[fr->ci] != fr->count)
        return fail(ps, p, "the text changed between the passes");
    if (!ps->writing) put_container(ps, fr->obj, fr->count); /* measures its header */
    ps->last_closed = fr->count;
    goto after;

key:
    fr->key_off = SIZE_MAX;
    p = skip_ws(p, end);
    if (p == end || *p != '"') return fail(ps, p, "a string key expected");
    fr->key_off = (size_t)(p - ps->text);
    if (ps->depth == 1 && ps->n_keys) {
        uint8_t name[32];
        size_t len;
        p = string(ps, p, name, sizeof name, &len);
        if (!p) return -1;
        ps->cur = len <= sizeof name ? match_key(ps, name, len) : -1;
    } else {
        p = string(ps, p, NULL, 0, NULL);
        if (!p) return -1;
    }
    p = skip_ws(p, end);
    if (p == end || *p != ':') return fail(ps, p, "':' expected");
    p++;
    goto value;

done:
    if (whole) {
        p = skip_ws(p, end);
        if (p != end) return fail(ps, p, "trailing bytes after the JSON value");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors. */

/* "items[3].vector": where the parser stood, for messages. */
static void where(const parser *ps, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < ps->depth && n + 1 < cap; i++) {
        const frame *fr = &ps->st[i];
        int w;
        if (fr->obj) {
            if (fr->key_off == SIZE_MAX) break;
            const uint8_t *k = ps->text + fr->key_off + 1;
            size_t kl = 0;
            while (k + kl < ps->end && kl < 40 && k[kl] >= 0x20 && k[kl] != '"' && k[kl] != '\\')
                kl++;
            w = snprintf(buf + n, cap - n, "%s%.*s", i ? "." : "", (int)kl, (const char *)k);
        } else {
            w = snprintf(buf + n, cap - n, "[%" PRIu32 "]", fr->count);
        }
        if (w < 0) break;
        n += (size_t)w;
    }
    if (n >= cap && cap > 4) memcpy(buf + cap - 4, "...", 4);
}

static vd_err report(const parser *ps, vd_error *err)
{
    char path[112], found[24], in[128] = "";
    where(ps, path, sizeof path);
    if (path[0]) snprintf(in, sizeof in, " (in %s)", path);
    size_t off = (size_t)(ps->at - ps->text);
    if (ps->at >= ps->end)
        snprintf(found, sizeof found, "end of input");
    else if (*ps->at == 0)
        snprintf(found, sizeof found, "a NUL byte");
    else if (*ps->at >= 0x20 && *ps->at < 0x7f)
        snprintf(found, sizeof found, "'%c'", *ps->at);
    else
        snprintf(found, sizeof found, "byte 0x%02x", *ps->at);
    if (ps->code == VD_ERR_LIMIT)
        return vd_error_set(err, VD_ERR_LIMIT,
                            "body: JSON nested deeper than %d levels at byte %zu%s",
                            VD_JSON_MAX_DEPTH, off, in);
    if (ps->code == VD_ERR_NOMEM) return vd_error_set(err, VD_ERR_NOMEM, "request: out of memory");
    return vd_error_set(err, VD_ERR_DECODE, "body: invalid JSON at byte %zu%s: %s (found %s)", off,
                        in, ps->why, found);
}

/* ------------------------------------------------------------------ */
/* Entry points. */

/* Arrays and objects in the text: its brackets outside strings. For valid
 * text this is exact; for invalid text it still covers every bracket the
 * tokenizer opens before it fails, since both agree on where strings are
 * up to that point. */
static size_t count_brackets(const uint8_t *t, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '[' || t[i] == '{') {
            n++;
        } else if (t[i] == '"') {
            for (i++; i < len && t[i] != '"'; i++) {
                if (t[i] == '\\') i++;
            }
        }
    }
    return n;
}

static void parser_init(parser *ps, const vd_json *j)
{
    memset(ps, 0, sizeof *ps);
    ps->text = j->text;
    ps->end = j->text + j->len;
    ps->counts = j->counts;
    ps->n_counts = j->n_counts;
    ps->cur = -1;
}

vd_err vd_json_scan(vd_json *j, const void *text, size_t len, const char *const *keys,
                    vd_json_field *fields, size_t n_keys, int with_counts, vd_error *err)
{
    vd_json t = {.text = text ? text : (const uint8_t *)"", .len = text ? len : 0};
    if (with_counts) {
        t.n_counts = count_brackets(t.text, t.len);
        t.counts = malloc(t.n_counts ? t.n_counts * sizeof *t.counts : 1);
        if (!t.counts) return vd_error_set(err, VD_ERR_NOMEM, "request: out of memory");
    }
    for (size_t i = 0; i < n_keys; i++) memset(&fields[i], 0, sizeof fields[i]);
    parser ps;
    parser_init(&ps, &t);
    ps.keys = keys;
    ps.fields = fields;
    const uint8_t *first = skip_ws(t.text, ps.end);
    if (first < ps.end && *first == '{') ps.n_keys = n_keys; /* only an object has fields */
    if (parse(&ps, t.text, 1)) {
        vd_err rc = report(&ps, err);
        free(t.counts);
        return rc;
    }
    t.kind = *first == '-' || (*first >= '0' && *first <= '9') ? '0' : (char)*first;
    t.mp_len = ps.n;
    *j = t;
    return VD_OK;
}

vd_err vd_json_write(const vd_json *j, const vd_json_field *f, uint8_t *out, vd_error *err)
{
    parser ps;
    parser_init(&ps, j);
    ps.writing = 1;
    ps.out = out;
    ps.cap = f ? f->mp_len : j->mp_len;
    ps.ci = f ? f->first_ci : 0;
    if (f && !f->found) return vd_error_set(err, VD_ERR_DECODE, "body: no such JSON field");
    if (parse(&ps, j->text + (f ? f->off : 0), !f) == 0 && ps.n != ps.cap)
        fail(&ps, ps.end, "the text changed between the passes");
    return ps.why ? report(&ps, err) : VD_OK;
}

void vd_json_release(vd_json *j)
{
    if (!j) return;
    free(j->counts);
    j->counts = NULL;
    j->n_counts = 0;
}

vd_err vd_json_to_msgpack(const void *text, size_t len, uint8_t **out, size_t *out_len,
                          vd_error *err)
{
    vd_json j;
    vd_err rc = vd_json_scan(&j, text, len, NULL, NULL, 0, 1, err);
    if (rc) return rc;
    uint8_t *mp = malloc(j.mp_len ? j.mp_len : 1);
    if (!mp)
        rc = vd_error_set(err, VD_ERR_NOMEM, "request: out of memory");
    else
        rc = vd_json_write(&j, NULL, mp, err);
    vd_json_release(&j);
    if (rc) {
        free(mp);
        return rc;
    }
    *out = mp;
    *out_len = j.mp_len;
    return VD_OK;
}
