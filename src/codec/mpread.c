/*
 * mpread.c - zero-copy msgpack reader (see mpread.h for why it exists).
 */
#include "codec/mpread.h"

#include <string.h>

void vd_mp_reader_init(vd_mp_reader *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = buf ? r->p + len : r->p; /* no arithmetic on NULL */
}

size_t vd_mp_remaining(const vd_mp_reader *r)
{
    return (size_t)(r->end - r->p);
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

const char *vd_mp_type_name(vd_mp_type t)
{
    switch (t) {
    case VD_MP_NIL:
        return "nil";
    case VD_MP_BOOL:
        return "boolean";
    case VD_MP_INT:
    case VD_MP_UINT:
        return "integer";
    case VD_MP_FLOAT32:
    case VD_MP_FLOAT64:
        return "float";
    case VD_MP_STR:
        return "string";
    case VD_MP_BIN:
        return "binary";
    case VD_MP_EXT:
        return "extension";
    case VD_MP_ARRAY:
        return "array";
    case VD_MP_MAP:
        return "map";
    }
    return "unknown";
}

/*
 * Layout of a type byte: how many header bytes follow (hdr), and for
 * str/bin/ext how many of them hold the length (lenw) or the fixed payload
 * size (fixlen, fixext).
 */
int vd_mp_read(vd_mp_reader *r, vd_mp_value *out)
{
    const uint8_t *p = r->p;
    size_t left = (size_t)(r->end - p);
    if (left < 1) return -1;
    uint8_t c = *p++;
    left--;
    size_t need = 0; /* header bytes after the type byte */
    size_t lenw = 0; /* width of a str/bin/ext length */
    size_t body = 0; /* payload bytes (str/bin/ext) */
    memset(out, 0, sizeof *out);

    if (c <= 0x7f) {
        out->type = VD_MP_INT;
        out->v.i = c;
    } else if (c >= 0xe0) {
        out->type = VD_MP_INT;
        out->v.i = (int8_t)c;
    } else if (c >= 0x80 && c <= 0x8f) {
        out->type = VD_MP_MAP;
        out->v.n = c & 0x0f;
    } else if (c >= 0x90 && c <= 0x9f) {
        out->type = VD_MP_ARRAY;
        out->v.n = c & 0x0f;
    } else if (c >= 0xa0 && c <= 0xbf) {
        out->type = VD_MP_STR;
        body = c & 0x1f;
    } else {
        switch (c) {
        case 0xc0:
            out->type = VD_MP_NIL;
            break;
        case 0xc2:
        case 0xc3:
            out->type = VD_MP_BOOL;
            out->v.b = c == 0xc3;
            break;
        case 0xc4:
            out->type = VD_MP_BIN, lenw = 1;
            break;
        case 0xc5:
            out->type = VD_MP_BIN, lenw = 2;
            break;
        case 0xc6:
            out->type = VD_MP_BIN, lenw = 4;
            break;
        case 0xc7:
            out->type = VD_MP_EXT, lenw = 1;
            break;
        case 0xc8:
            out->type = VD_MP_EXT, lenw = 2;
            break;
        case 0xc9:
            out->type = VD_MP_EXT, lenw = 4;
            break;
        case 0xca:
            out->type = VD_MP_FLOAT32, need = 4;
            break;
        case 0xcb:
            out->type = VD_MP_FLOAT64, need = 8;
            break;
        case 0xcc:
            out->type = VD_MP_INT, need = 1;
            break;
        case 0xcd:
            out->type = VD_MP_INT, need = 2;
            break;
        case 0xce:
            out->type = VD_MP_INT, need = 4;
            break;
        case 0xcf:
            out->type = VD_MP_INT, need = 8;
            break;
        case 0xd0:
            out->type = VD_MP_INT, need = 1;
            break;
        case 0xd1:
            out->type = VD_MP_INT, need = 2;
            break;
        case 0xd2:
            out->type = VD_MP_INT, need = 4;
            break;
        case 0xd3:
            out->type = VD_MP_INT, need = 8;
            break;
        case 0xd4:
            out->type = VD_MP_EXT, body = 1;
            break;
        case 0xd5:
            out->type = VD_MP_EXT, body = 2;
            break;
        case 0xd6:
            out->type = VD_MP_EXT, body = 4;
            break;
        case 0xd7:
            out->type = VD_MP_EXT, body = 8;
            break;
        case 0xd8:
            out->type = VD_MP_EXT, body = 16;
            break;
        case 0xd9:
            out->type = VD_MP_STR, lenw = 1;
            break;
        case 0xda:
            out->type = VD_MP_STR, lenw = 2;
            break;
        case 0xdb:
            out->type = VD_MP_STR, lenw = 4;
            break;
        case 0xdc:
            out->type = VD_MP_ARRAY, need = 2;
            break;
        case 0xdd:
            out->type = VD_MP_ARRAY, need = 4;
            break;
        case 0xde:
            out->type = VD_MP_MAP, need = 2;
            break;
        case 0xdf:
            out->type = VD_MP_MAP, need = 4;
            break;
        default:
            return -1; /* 0xc1: never used */
        }
    }

    if (need) {
        if (left < need) return -1;
        uint64_t raw = be(p, (int)need);
        p += need;
        left -= need;
        switch (out->type) {
        case VD_MP_FLOAT32: {
            uint32_t bits = (uint32_t)raw;
            float f;
            memcpy(&f, &bits, sizeof f);
            out->v.f = f;
            break;
        }
        case VD_MP_FLOAT64:
            memcpy(&out->v.f, &raw, sizeof out->v.f);
            break;
        case VD_MP_ARRAY:
        case VD_MP_MAP:
            out->v.n = (uint32_t)raw;
            break;
        default: /* integers */
            if (c >= 0xd0) {
                /* signed, big-endian two's complement of need bytes */
                if (need == 1)
                    out->v.i = (int8_t)(uint8_t)raw;
                else if (need == 2)
                    out->v.i = (int16_t)(uint16_t)raw;
                else if (need == 4)
                    out->v.i = (int32_t)(uint32_t)raw;
                else
                    out->v.i = (int64_t)raw;
            } else if (raw > (uint64_t)INT64_MAX) {
                out->type = VD_MP_UINT;
                out->v.u = raw;
            } else {
                out->v.i = (int64_t)raw;
            }
        }
    }
    if (lenw) {
        if (left < lenw) return -1;
        body = (size_t)be(p, (int)lenw);
        p += lenw;
        left -= lenw;
    }
    if (out->type == VD_MP_EXT) {
        if (left < 1) return -1;
        out->ext_type = (int8_t)*p++;
        left--;
    }
    if (out->type == VD_MP_STR || out->type == VD_MP_BIN || out->type == VD_MP_EXT) {
        if (left < body) return -1;
        out->data = p;
        out->len = (uint32_t)body;
        p += body;
    }
    r->p = p;
    return 0;
}

int vd_mp_skip(vd_mp_reader *r)
{
    /* Values still to read. Each needs at least one byte, so a count above
     * the bytes left is a truncation we can report at once; and since every
     * header adds at most 2 * (2^32 - 1), a uint64_t cannot overflow. */
    uint64_t pending = 1;
    vd_mp_value v;
    while (pending) {
        if (pending > vd_mp_remaining(r)) return -1;
        if (vd_mp_read(r, &v)) return -1;
        pending--;
        if (v.type == VD_MP_ARRAY)
            pending += v.v.n;
        else if (v.type == VD_MP_MAP)
            pending += 2 * (uint64_t)v.v.n;
    }
    return 0;
}
