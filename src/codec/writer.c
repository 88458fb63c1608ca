/*
 * writer.c - the reply encoder: msgpack through msgpack-c's packer, JSON
 * by hand (jansson builds trees; a reply is written once, in order, and
 * needs float formatting of its own, so a tree would only add copies).
 *
 * Both formats share one growable buffer. The msgpack packer writes into
 * it through a callback; the JSON side appends text directly. A stack of
 * open containers tracks commas, keys and declared counts.
 *
 * Numbers in JSON are formatted with printf("%g"), which follows
 * LC_NUMERIC: vectord never calls setlocale(), so it is always "C".
 */
#include "codec/writer.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mpread.h"
#include "common/utf8.h"

typedef struct frame {
    uint8_t map;        /* 1: map, 0: array */
    uint8_t want_value; /* map: a key was written, its value is next */
    uint32_t n;         /* declared elements (pairs for a map) */
    uint32_t count;     /* written so far */
} frame;

struct vd_writer {
    vd_content_type ct;
    vd_err err;
    uint8_t *buf;
    size_t len, cap;
    msgpack_packer pk;
    int depth;
    int top_done;
    frame st[VD_WRITER_MAX_DEPTH];
};

/* ------------------------------------------------------------------ */
/* Buffer. */

static int reserve(vd_writer *w, size_t more)
{
    if (w->err) return -1;
    if (more > SIZE_MAX / 2 - w->len) {
        w->err = VD_ERR_NOMEM;
        return -1;
    }
    size_t need = w->len + more;
    if (need <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *b = realloc(w->buf, cap);
    if (!b) {
        w->err = VD_ERR_NOMEM;
        return -1;
    }
    w->buf = b;
    w->cap = cap;
    return 0;
}

static void put(vd_writer *w, const void *p, size_t n)
{
    if (!n || reserve(w, n)) return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void puts_(vd_writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static int pk_write(void *data, const char *buf, size_t len)
{
    vd_writer *w = data;
    put(w, buf, len);
    return w->err ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle. */

vd_err vd_writer_new(vd_writer **out, vd_content_type ct)
{
    vd_writer *w = calloc(1, sizeof *w);
    if (!w) return VD_ERR_NOMEM;
    w->ct = ct == VD_CT_JSON ? VD_CT_JSON : VD_CT_MSGPACK;
    msgpack_packer_init(&w->pk, w, pk_write);
    *out = w;
    return VD_OK;
}

void vd_writer_free(vd_writer *w)
{
    if (!w) return;
    free(w->buf);
    free(w);
}

void vd_writer_reset(vd_writer *w)
{
    w->err = VD_OK;
    w->len = 0;
    w->depth = 0;
    w->top_done = 0;
}

vd_content_type vd_writer_content_type(const vd_writer *w)
{
    return w->ct;
}

vd_err vd_writer_status(const vd_writer *w)
{
    return w->err;
}

const uint8_t *vd_writer_data(const vd_writer *w, size_t *len)
{
    *len = w->len;
    return w->buf;
}

vd_err vd_writer_take(vd_writer *w, uint8_t **buf, size_t *len, vd_error *err)
{
    assert(w->depth == 0 && "vd_writer_take with containers still open");
    if (w->err) {
        vd_err rc = vd_error_set(err, w->err, "reply: %s", vd_strerror(w->err));
        vd_writer_reset(w);
        return rc;
    }
    if (!w->buf) {
        w->buf = malloc(1);
        if (!w->buf) return vd_error_set(err, VD_ERR_NOMEM, "reply: out of memory");
        w->cap = 1;
    }
    *buf = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->cap = 0;
    vd_writer_reset(w);
    return VD_OK;
}

/* ------------------------------------------------------------------ */
/* Structure. */

/* Accounts for the value about to be written and emits a JSON comma. */
static void begin_value(vd_writer *w)
{
    if (w->depth == 0) {
        assert(!w->top_done && "a writer holds one document");
        w->top_done = 1;
        return;
    }
    frame *f = &w->st[w->depth - 1];
    if (f->map) {
        assert(f->want_value && "map value written without a key");
        f->want_value = 0;
    } else {
        assert(f->count < f->n && "more array elements than declared");
        if (w->ct == VD_CT_JSON && f->count) put(w, ",", 1);
    }
    f->count++;
}

static void open_container(vd_writer *w, int map, uint32_t n)
{
    begin_value(w);
    assert(w->depth < VD_WRITER_MAX_DEPTH && "writer nesting too deep");
    w->st[w->depth++] = (frame){.map = (uint8_t)map, .n = n};
    if (w->ct == VD_CT_JSON)
        put(w, map ? "{" : "[", 1);
    else if (!w->err && map)
        msgpack_pack_map(&w->pk, n);
    else if (!w->err)
        msgpack_pack_array(&w->pk, n);
}

static void close_container(vd_writer *w, int map)
{
    assert(w->depth > 0 && "end without begin");
    frame *f = &w->st[w->depth - 1];
    assert(f->map == map && "mismatched container end");
    assert(f->count == f->n && !f->want_value && "fewer elements than declared");
    (void)f;
    (void)map;
    w->depth--;
    if (w->ct == VD_CT_JSON) put(w, map ? "}" : "]", 1);
}

void vd_writer_map_begin(vd_writer *w, uint32_t n_pairs)
{
    open_container(w, 1, n_pairs);
}

void vd_writer_map_end(vd_writer *w)
{
    close_container(w, 1);
}

void vd_writer_array_begin(vd_writer *w, uint32_t n)
{
    open_container(w, 0, n);
}

void vd_writer_array_end(vd_writer *w)
{
    close_container(w, 0);
}

/* ------------------------------------------------------------------ */
/* Strings. */

/* Length of the valid UTF-8 sequence starting at p, 0 when it is invalid. */
static size_t utf8_seq(const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || n > left) return 0;
    return n == 1 || vd_utf8_valid((const char *)p, n) ? n : 0;
}

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

static void json_str(vd_writer *w, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    size_t run = 0; /* bytes of s[i - run .. i) pending a plain copy */
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++, run++;
            continue;
        }
        size_t n = c < 0x80 ? 1 : utf8_seq(s + i, len - i);
        if (n > 1) {
            i += n, run += n;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        if (n == 0) {
            put(w, replacement, 3);
        } else {
            char esc[7] = {'\\', 0};
            size_t el = 2;
            switch (c) {
            case '"':
                esc[1] = '"';
                break;
            case '\\':
                esc[1] = '\\';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
            put(w, esc, el);
        }
        i++;
    }
    put(w, s + i - run, run);
    put(w, "\"", 1);
}

static void mp_str(vd_writer *w, const uint8_t *s, size_t len)
{
    if (vd_utf8_valid((const char *)s, len)) {
        if (!w->err) msgpack_pack_str_with_body(&w->pk, s, len);
        return;
    }
    /* Invalid sequences become U+FFFD: count the result first (msgpack
     * needs the length in the header), then write it piecewise. */
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, len - i);
        out += n ? n : 3;
        i += n ? n : 1;
    }
    if (w->err || msgpack_pack_str(&w->pk, out)) return;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, len - i);
        if (n)
            put(w, s + i, n);
        else
            put(w, replacement, 3);
        i += n ? n : 1;
    }
}

static void str_any(vd_writer *w, const void *s, size_t len)
{
    if (w->ct == VD_CT_JSON)
        json_str(w, s, len);
    else
        mp_str(w, s, len);
}

void vd_writer_key(vd_writer *w, const char *key)
{
    assert(w->depth > 0 && w->st[w->depth - 1].map && "key outside a map");
    frame *f = &w->st[w->depth - 1];
    assert(!f->want_value && f->count < f->n && "key out of place");
    if (w->ct == VD_CT_JSON && f->count) put(w, ",", 1);
    str_any(w, key, strlen(key));
    if (w->ct == VD_CT_JSON) put(w, ":", 1);
    f->want_value = 1;
}

void vd_writer_str(vd_writer *w, const char *s, size_t len)
{
    if (!s) s = "", len = 0;
    begin_value(w);
    str_any(w, s, len);
}

void vd_writer_cstr(vd_writer *w, const char *s)
{
    if (!s)
        vd_writer_nil(w);
    else
        vd_writer_str(w, s, strlen(s));
}

/* ------------------------------------------------------------------ */
/* Scalars. */

static void json_int(vd_writer *w, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    put(w, b, (size_t)n);
}

static void json_uint(vd_writer *w, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%" PRIu64, v);
    put(w, b, (size_t)n);
}

/* Shortest "%.Ng" that reads back to the same value; keeps it a JSON real. */
static void json_real(vd_writer *w, double v, int is_float)
{
    if (!isfinite(v)) {
        puts_(w, "null");
        return;
    }
    char b[40];
    int maxp = is_float ? 9 : 17;
    for (int p = 1; p <= maxp; p++) {
        snprintf(b, sizeof b, "%.*g", p, v);
        if (is_float ? strtof(b, NULL) == (float)v : strtod(b, NULL) == v) break;
    }
    if (!strpbrk(b, ".e")) strcat(b, ".0");
    puts_(w, b);
}

void vd_writer_int(vd_writer *w, int64_t v)
{
    begin_value(w);
    if (w->ct == VD_CT_JSON)
        json_int(w, v);
    else if (!w->err)
        msgpack_pack_int64(&w->pk, v);
}

void vd_writer_uint(vd_writer *w, uint64_t v)
{
    begin_value(w);
    if (w->ct == VD_CT_JSON)
        json_uint(w, v);
    else if (!w->err)
        msgpack_pack_uint64(&w->pk, v);
}

void vd_writer_double(vd_writer *w, double v)
{
    begin_value(w);
    if (w->ct == VD_CT_JSON)
        json_real(w, v, 0);
    else if (!w->err)
        msgpack_pack_double(&w->pk, v);
}

void vd_writer_float(vd_writer *w, float v)
{
    begin_value(w);
    if (w->ct == VD_CT_JSON)
        json_real(w, v, 1);
    else if (!w->err)
        msgpack_pack_float(&w->pk, v);
}

void vd_writer_bool(vd_writer *w, int v)
{
    begin_value(w);
    if (w->ct == VD_CT_JSON)
        puts_(w, v ? "true" : "false");
    else if (!w->err && v)
        msgpack_pack_true(&w->pk);
    else if (!w->err)
        msgpack_pack_false(&w->pk);
}

void vd_writer_nil(vd_writer *w)
{
    begin_value(w);
    if (w->ct == VD_CT_JSON)
        puts_(w, "null");
    else if (!w->err)
        msgpack_pack_nil(&w->pk);
}

static void json_base64(vd_writer *w, const uint8_t *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    put(w, "\"", 1);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], i + 1 < len ? tab[(v >> 6) & 63] : '=',
                     i + 2 < len ? tab[v & 63] : '='};
        put(w, q, 4);
    }
    put(w, "\"", 1);
}

void vd_writer_bin(vd_writer *w, const void *p, size_t len)
{
    begin_value(w);
    if (w->ct == VD_CT_JSON)
        json_base64(w, p, len);
    else if (!w->err)
        msgpack_pack_bin_with_body(&w->pk, p, len);
}

/* ------------------------------------------------------------------ */
/* Raw msgpack values. */

/* Converts one msgpack value to JSON. depth: containers around it. */
static int raw_json(vd_writer *w, vd_mp_reader *r, int depth)
{
    vd_mp_value v;
    if (vd_mp_read(r, &v)) return -1;
    switch (v.type) {
    case VD_MP_NIL:
        puts_(w, "null");
        return 0;
    case VD_MP_BOOL:
        puts_(w, v.v.b ? "true" : "false");
        return 0;
    case VD_MP_INT:
        json_int(w, v.v.i);
        return 0;
    case VD_MP_UINT:
        json_uint(w, v.v.u);
        return 0;
    case VD_MP_FLOAT32:
        json_real(w, v.v.f, 1);
        return 0;
    case VD_MP_FLOAT64:
        json_real(w, v.v.f, 0);
        return 0;
    case VD_MP_STR:
        json_str(w, v.data, v.len);
        return 0;
    case VD_MP_BIN:
        json_base64(w, v.data, v.len);
        return 0;
    case VD_MP_EXT:
        return -1;
    case VD_MP_ARRAY:
        if (depth >= VD_CODEC_MAX_DEPTH) return -1;
        put(w, "[", 1);
        for (uint32_t i = 0; i < v.v.n; i++) {
            if (i) put(w, ",", 1);
            if (raw_json(w, r, depth + 1)) return -1;
        }
        put(w, "]", 1);
        return 0;
    case VD_MP_MAP:
        if (depth >= VD_CODEC_MAX_DEPTH) return -1;
        put(w, "{", 1);
        for (uint32_t i = 0; i < v.v.n; i++) {
            vd_mp_value k;
            if (i) put(w, ",", 1);
            if (vd_mp_read(r, &k)) return -1;
            if (k.type == VD_MP_STR) {
                json_str(w, k.data, k.len);
            } else if (k.type == VD_MP_INT || k.type == VD_MP_UINT) {
                put(w, "\"", 1);
                if (k.type == VD_MP_INT)
                    json_int(w, k.v.i);
                else
                    json_uint(w, k.v.u);
                put(w, "\"", 1);
            } else {
                return -1;
            }
            put(w, ":", 1);
            if (raw_json(w, r, depth + 1)) return -1;
        }
        put(w, "}", 1);
        return 0;
    }
    return -1;
}

vd_err vd_writer_raw(vd_writer *w, const void *mp, size_t len)
{
    if (w->err) return w->err;
    vd_mp_reader r;
    vd_mp_reader_init(&r, mp, len);
    if (w->ct == VD_CT_MSGPACK) {
        if (vd_mp_skip(&r) || vd_mp_remaining(&r)) return VD_ERR_DECODE;
        begin_value(w);
        put(w, mp, len);
        return w->err;
    }
    /* JSON: convert in place and roll back on failure, so that nothing of
     * a bad value reaches the output. */
    size_t len0 = w->len;
    int top0 = w->top_done;
    frame f0 = w->depth ? w->st[w->depth - 1] : (frame){0};
    begin_value(w);
    if (raw_json(w, &r, 0) || vd_mp_remaining(&r)) {
        if (w->err) return w->err;
        w->len = len0;
        w->top_done = top0;
        if (w->depth) w->st[w->depth - 1] = f0;
        return VD_ERR_DECODE;
    }
    return w->err;
}
