/*
 * golhv1.c - see golhv1.h and schemas/go-lhv1.md.
 *
 * vd_golhv1_open() walks the graph bytes twice per layer: once to check
 * every length and collect the layer's keys into a hash set, once more to
 * look up the neighbour keys in that set (a neighbour may come before the
 * node it names). Layer 0's set is kept to find upper-layer nodes and
 * metadata entries whose id is not in layer 0. Afterwards the buffer is
 * known good, and vd_golhv1_next() re-reads layer 0 without checks beyond
 * what cannot fail.
 */
#include "golhv1.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "common/utf8.h"

#define MAGIC          "LHV1"
#define GRAPH_VERSION  1
#define DEFAULT_EF     64
#define NOTES_MAX      2048
#define MAX_VARINT_LEN 10

/* Where the graph walk is. */
typedef struct cursor {
    const uint8_t *base; /* the whole file, for offsets in messages */
    const uint8_t *p;
    const uint8_t *end;
} cursor;

/* A set of keys (pointers into the file), open addressing. */
typedef struct keyset {
    const uint8_t **key;
    size_t *len;
    size_t cap; /* a power of two, 0: empty set */
} keyset;

struct vd_golhv1 {
    const uint8_t *buf;
    size_t len;
    json_t *env;
    json_t *meta; /* borrowed from env; NULL: none */
    vd_golhv1_info info;
    const uint8_t *l0; /* first node of layer 0 */
    size_t next;       /* items handed out */
    cursor cur;
    float *vec;
    char *meta_json;
    uint8_t *meta_mp;
    char notes[NOTES_MAX];
};

/* ---- primitives -------------------------------------------------------- */

static size_t off(const cursor *c)
{
    return (size_t)(c->p - c->base);
}

static size_t left(const cursor *c)
{
    return (size_t)(c->end - c->p);
}

/* Go's binary.ReadVarint: zigzag over unsigned LEB128, at most 10 bytes. */
static vd_err rd_varint(cursor *c, int64_t *v, const char *what, vd_error *err)
{
    uint64_t u = 0;
    unsigned shift = 0;
    size_t start = off(c);
    for (size_t i = 0;; i++) {
        if (c->p == c->end)
            return vd_error_set(err, VD_ERR_CORRUPT, "graph: %s: truncated varint at byte %zu",
                                what, start);
        uint8_t b = *c->p++;
        if (i == MAX_VARINT_LEN - 1 && b > 1)
            return vd_error_set(err, VD_ERR_CORRUPT,
                                "graph: %s: varint overflows 64 bits at byte %zu", what, start);
        u |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) break;
        shift += 7;
    }
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return VD_OK;
}

/* A varint count of items of `unit` bytes each (at least, unless exact):
 * 0 <= n and n * unit <= the bytes left. */
static vd_err rd_count(cursor *c, size_t *n, size_t unit, int exact, const char *what,
                       vd_error *err)
{
    size_t start = off(c);
    int64_t v;
    vd_err rc = rd_varint(c, &v, what, err);
    if (rc) return rc;
    if (v < 0)
        return vd_error_set(err, VD_ERR_CORRUPT,
                            "graph: %s: negative length %" PRId64 " at byte %zu", what, v, start);
    if ((uint64_t)v > left(c) / unit)
        return vd_error_set(
            err, VD_ERR_CORRUPT,
            "graph: %s: length %" PRId64 " needs %s%" PRIu64 " bytes, %zu left at byte %zu", what,
            v, exact ? "" : "at least ",
            (uint64_t)v > UINT64_MAX / unit ? UINT64_MAX : (uint64_t)v * unit, left(c), start);
    *n = (size_t)v;
    return VD_OK;
}

/* A Go string: varint length, bytes. */
static vd_err rd_str(cursor *c, const uint8_t **s, size_t *n, const char *what, vd_error *err)
{
    vd_err rc = rd_count(c, n, 1, 1, what, err);
    if (rc) return rc;
    *s = c->p;
    c->p += *n;
    return VD_OK;
}

/* ---- key sets ---------------------------------------------------------- */

static uint64_t hash_key(const uint8_t *k, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static void keyset_free(keyset *s)
{
    free(s->key);
    free(s->len);
    memset(s, 0, sizeof *s);
}

/* An empty set with room for n keys. */
static vd_err keyset_init(keyset *s, size_t n, vd_error *err)
{
    memset(s, 0, sizeof *s);
    if (n == 0) return VD_OK;
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    s->key = calloc(cap, sizeof *s->key);
    s->len = calloc(cap, sizeof *s->len);
    if (!s->key || !s->len) {
        keyset_free(s);
        return vd_error_set(err, VD_ERR_NOMEM, "graph: out of memory for %zu keys", n);
    }
    s->cap = cap;
    return VD_OK;
}

/* Whether k is in s; with add, inserts it when absent. Keys are never
 * NULL (an empty key points at the byte after its length). */
static int keyset_has(keyset *s, const uint8_t *k, size_t n, int add)
{
    if (s->cap == 0) return 0;
    for (size_t i = hash_key(k, n) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->key[i]) {
            if (add) {
                s->key[i] = k;
                s->len[i] = n;
            }
            return 0;
        }
        if (s->len[i] == n && memcmp(s->key[i], k, n) == 0) return 1;
    }
}

/* ---- notes ------------------------------------------------------------- */

static void note(vd_golhv1 *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(vd_golhv1 *r, const char *fmt, ...)
{
    size_t used = strlen(r->notes);
    if (used + 2 >= sizeof r->notes) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes + used, sizeof r->notes - used - 1, fmt, ap);
    va_end(ap);
    used = strlen(r->notes);
    r->notes[used] = '\n';
    r->notes[used + 1] = '\0';
}

/* ---- envelope ---------------------------------------------------------- */

static vd_err env_int(json_t *o, const char *key, int64_t *out, const char *where, vd_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = -1;
    if (!v || json_is_null(v)) return VD_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return vd_error_set(err, VD_ERR_CORRUPT, "envelope: %s%s: not a non-negative integer",
                            where, key);
    *out = json_integer_value(v);
    return VD_OK;
}

static vd_err read_envelope(vd_golhv1 *r, const uint8_t *text, size_t n, vd_error *err)
{
    vd_golhv1_info *in = &r->info;
    json_error_t jerr;
    r->env = json_loadb((const char *)text, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!r->env)
        return vd_error_set(err, VD_ERR_CORRUPT, "envelope: invalid JSON at byte %zu: %s",
                            (size_t)8 + (size_t)(jerr.position > 0 ? jerr.position : 0), jerr.text);
    if (!json_is_object(r->env))
        return vd_error_set(err, VD_ERR_CORRUPT, "envelope: not a JSON object");
    if (json_object_get(r->env, "format") || json_object_get(r->env, "format_version"))
        return vd_error_set(err, VD_ERR_CORRUPT,
                            "envelope: has \"format\": a vectord LHV1 file, not one of the Go "
                            "service (read it with vd_lhv1_read)");
    vd_err rc = env_int(r->env, "version", &in->version, "", err);
    if (rc) return rc;
    if (in->version != -1 && in->version != 1)
        return vd_error_set(err, VD_ERR_VERSION, "envelope: version %" PRId64 " (only 1 is known)",
                            in->version);
    in->env_dimension = in->env_m = in->env_ef_search = -1;
    json_t *params = json_object_get(r->env, "params");
    if (params && !json_is_null(params)) {
        if (!json_is_object(params))
            return vd_error_set(err, VD_ERR_CORRUPT, "envelope: params: not an object");
        json_t *name = json_object_get(params, "name");
        if (name && !json_is_null(name)) {
            if (!json_is_string(name))
                return vd_error_set(err, VD_ERR_CORRUPT, "envelope: params.name: not a string");
            in->name_len = json_string_length(name);
            snprintf(in->name, sizeof in->name, "%s", json_string_value(name));
        }
        json_t *dist = json_object_get(params, "distance");
        if (dist && !json_is_null(dist)) {
            if (!json_is_string(dist))
                return vd_error_set(err, VD_ERR_CORRUPT, "envelope: params.distance: not a string");
            snprintf(in->env_distance, sizeof in->env_distance, "%s", json_string_value(dist));
        }
        if ((rc = env_int(params, "dimension", &in->env_dimension, "params.", err)) ||
            (rc = env_int(params, "m", &in->env_m, "params.", err)) ||
            (rc = env_int(params, "ef_search", &in->env_ef_search, "params.", err)))
            return rc;
        const char *k;
        json_t *v;
        json_object_foreach(params, k, v)
        {
            if (strcmp(k, "name") && strcmp(k, "dimension") && strcmp(k, "m") &&
                strcmp(k, "ef_search") && strcmp(k, "distance")) {
                in->unknown_fields++;
                note(r, "envelope field \"params.%.64s\" not mapped", k);
            }
        }
    } else {
        note(r, "envelope has no params: dimension and distance taken from the graph");
    }
    r->meta = json_object_get(r->env, "metadata");
    if (r->meta && json_is_null(r->meta)) r->meta = NULL;
    if (r->meta && !json_is_object(r->meta))
        return vd_error_set(err, VD_ERR_CORRUPT, "envelope: metadata: not an object");
    const char *k;
    json_t *v;
    json_object_foreach(r->env, k, v)
    {
        if (strcmp(k, "version") && strcmp(k, "params") && strcmp(k, "metadata")) {
            in->unknown_fields++;
            note(r, "envelope field \"%.64s\" not mapped", k);
        }
    }
    return VD_OK;
}

/* ---- graph ------------------------------------------------------------- */

/* One node: key, vector, neighbours (skipped). */
typedef struct node {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *vec; /* dim little-endian float32 */
    size_t dim;
    const uint8_t *nbrs; /* first neighbour string */
    size_t n_nbrs;
} node;

static vd_err rd_node(cursor *c, size_t layer, size_t j, node *nd, vd_error *err)
{
    char what[96];
    vd_err rc;
    snprintf(what, sizeof what, "layer %zu node %zu key", layer, j);
    if ((rc = rd_str(c, &nd->key, &nd->key_len, what, err))) return rc;
    snprintf(what, sizeof what, "layer %zu node %zu vector length", layer, j);
    if ((rc = rd_count(c, &nd->dim, 4, 1, what, err))) return rc;
    nd->vec = c->p;
    c->p += nd->dim * 4;
    snprintf(what, sizeof what, "layer %zu node %zu neighbour count", layer, j);
    /* Each neighbour is at least its one-byte length. */
    if ((rc = rd_count(c, &nd->n_nbrs, 1, 0, what, err))) return rc;
    nd->nbrs = c->p;
    for (size_t k = 0; k < nd->n_nbrs; k++) {
        const uint8_t *s;
        size_t n;
        snprintf(what, sizeof what, "layer %zu node %zu neighbour %zu", layer, j, k);
        if ((rc = rd_str(c, &s, &n, what, err))) return rc;
    }
    return VD_OK;
}

static float le_float(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4); /* little-endian host (CMakeLists.txt refuses others) */
    return f;
}

/* A layer-0 vector must be usable: finite, non-zero under cosine. */
static vd_err check_vector(const vd_golhv1 *r, const node *nd, size_t j, vd_error *err)
{
    double ss = 0;
    for (size_t i = 0; i < nd->dim; i++) {
        float f = le_float(nd->vec + 4 * i);
        if (!isfinite(f))
            return vd_error_set(err, VD_ERR_INVALID_VECTOR,
                                "graph: layer 0 node %zu (id \"%.*s\") vector[%zu]: not a finite "
                                "number",
                                j, (int)(nd->key_len > 64 ? 64 : nd->key_len), nd->key, i);
        ss += (double)f * f;
    }
    if (r->info.distance == VD_DIST_COSINE && ss == 0)
        return vd_error_set(err, VD_ERR_INVALID_VECTOR,
                            "graph: layer 0 node %zu (id \"%.*s\"): zero vector under cosine", j,
                            (int)(nd->key_len > 64 ? 64 : nd->key_len), nd->key);
    return VD_OK;
}

/* One layer: checks it and counts what is tolerated. l0 is layer 0's set
 * (filled when layer == 0). */
static vd_err read_layer(vd_golhv1 *r, cursor *c, size_t layer, keyset *l0, vd_error *err)
{
    vd_golhv1_info *in = &r->info;
    char what[64];
    snprintf(what, sizeof what, "layer %zu node count", layer);
    size_t n;
    /* A node is at least three one-byte varints. */
    vd_err rc = rd_count(c, &n, 3, 0, what, err);
    if (rc) return rc;
    const uint8_t *start = c->p;
    if (layer == 0) {
        r->l0 = start;
        in->items = n;
    }
    if (n == 0) in->empty_layers++;
    keyset own, *set = layer == 0 ? l0 : &own;
    if ((rc = keyset_init(set, n, err))) return rc;
    for (size_t j = 0; j < n; j++) {
        node nd;
        size_t at = off(c);
        if ((rc = rd_node(c, layer, j, &nd, err))) goto out;
        if (layer == 0 && in->dimension == 0) {
            if (nd.dim == 0) {
                rc = vd_error_set(err, VD_ERR_CORRUPT,
                                  "graph: layer 0 node 0 vector length: 0 at byte %zu", at);
                goto out;
            }
            in->dimension = (uint32_t)(nd.dim > UINT32_MAX ? UINT32_MAX : nd.dim);
        }
        /* Upper layers of a file whose layer 0 is empty have nothing to match. */
        if (nd.dim != in->dimension && (layer == 0 || in->dimension != 0)) {
            rc = vd_error_set(err, VD_ERR_CORRUPT,
                              "graph: layer %zu node %zu vector length: %zu, layer 0 has %" PRIu32
                              " (node at byte %zu)",
                              layer, j, nd.dim, in->dimension, at);
            goto out;
        }
        if (layer == 0) {
            if (nd.key_len == 0 || !vd_utf8_valid((const char *)nd.key, nd.key_len)) {
                rc =
                    vd_error_set(err, VD_ERR_CORRUPT, "graph: layer 0 node %zu key: %s at byte %zu",
                                 j, nd.key_len ? "not valid UTF-8" : "empty", at);
                goto out;
            }
            if ((rc = check_vector(r, &nd, j, err))) goto out;
            if (keyset_has(set, nd.key, nd.key_len, 1)) in->duplicates++;
        } else {
            keyset_has(set, nd.key, nd.key_len, 1);
            if (!keyset_has(l0, nd.key, nd.key_len, 0)) in->upper_only++;
        }
    }
    /* Second walk: the neighbours against the complete set. */
    cursor c2 = *c;
    c2.p = start;
    for (size_t j = 0; j < n; j++) {
        node nd = {0};
        rd_node(&c2, layer, j, &nd, NULL); /* cannot fail: checked above */
        cursor nc = c2;
        nc.p = nd.nbrs;
        for (size_t k = 0; k < nd.n_nbrs; k++) {
            const uint8_t *s = NULL;
            size_t sl = 0;
            rd_str(&nc, &s, &sl, "", NULL);
            if (sl == nd.key_len && memcmp(s, nd.key, sl) == 0)
                in->self_loops++;
            else if (!keyset_has(set, s, sl, 0))
                in->dangling++;
        }
    }
out:
    if (set == &own) keyset_free(&own);
    return rc;
}

static vd_err map_distance(vd_golhv1 *r, vd_error *err)
{
    vd_golhv1_info *in = &r->info;
    vd_error e2;
    if (vd_distance_parse(in->distance_name, strlen(in->distance_name), &in->distance, &e2))
        return vd_error_set(err, VD_ERR_UNKNOWN_DISTANCE,
                            "graph: distance \"%s\": not one vectord has", in->distance_name);
    if (in->env_distance[0]) {
        vd_distance d;
        if (vd_distance_parse(in->env_distance, strlen(in->env_distance), &d, &e2) ||
            d != in->distance)
            return vd_error_set(err, VD_ERR_CORRUPT,
                                "envelope: params.distance \"%s\" but the graph's is \"%s\"",
                                in->env_distance, in->distance_name);
    }
    return VD_OK;
}

static vd_err read_graph(vd_golhv1 *r, cursor *c, vd_error *err)
{
    vd_golhv1_info *in = &r->info;
    int64_t version;
    vd_err rc;
    if ((rc = rd_varint(c, &version, "version", err))) return rc;
    if (version != GRAPH_VERSION)
        return vd_error_set(err, VD_ERR_VERSION, "graph: version %" PRId64 " (only 1 is known)",
                            version);
    if ((rc = rd_varint(c, &in->m, "M", err))) return rc;
    if (left(c) < 8)
        return vd_error_set(err, VD_ERR_CORRUPT, "graph: Ml: needs 8 bytes, %zu left at byte %zu",
                            left(c), off(c));
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) bits = bits << 8 | c->p[i];
    memcpy(&in->ml, &bits, 8);
    c->p += 8;
    if ((rc = rd_varint(c, &in->ef_search, "EfSearch", err))) return rc;
    const uint8_t *dn;
    size_t dl;
    if ((rc = rd_str(c, &dn, &dl, "distance", err))) return rc;
    if (dl >= sizeof in->distance_name)
        return vd_error_set(err, VD_ERR_UNKNOWN_DISTANCE,
                            "graph: distance: a %zu-byte name, not one vectord has", dl);
    memcpy(in->distance_name, dn, dl);
    in->distance_name[dl] = '\0';
    if ((rc = map_distance(r, err))) return rc;
    size_t n_layers;
    /* A layer is at least its one-byte node count. */
    if ((rc = rd_count(c, &n_layers, 1, 0, "layer count", err))) return rc;
    in->layers = n_layers;
    keyset l0 = {0};
    for (size_t i = 0; i < n_layers && !rc; i++) rc = read_layer(r, c, i, &l0, err);
    if (!rc && left(c))
        rc = vd_error_set(err, VD_ERR_CORRUPT, "graph: %zu bytes after the last layer, at byte %zu",
                          left(c), off(c));
    if (!rc && r->meta) {
        const char *k;
        size_t kl;
        json_t *v;
        json_object_keylen_foreach(r->meta, k, kl, v)
        {
            if (!keyset_has(&l0, (const uint8_t *)k, kl, 0))
                in->meta_orphans++;
            else if (!json_is_null(v))
                in->with_metadata++;
        }
    }
    keyset_free(&l0);
    return rc;
}

/* ---- public ------------------------------------------------------------ */

static void add_notes(vd_golhv1 *r)
{
    const vd_golhv1_info *in = &r->info;
    if (in->duplicates) note(r, "%zu duplicate layer-0 ids (the later one kept)", in->duplicates);
    if (in->empty_layers) note(r, "%zu empty layers", in->empty_layers);
    if (in->self_loops) note(r, "%zu self-loops (ignored)", in->self_loops);
    if (in->dangling) note(r, "%zu neighbour keys not in their layer (ignored)", in->dangling);
    if (in->upper_only) note(r, "%zu upper-layer nodes not in layer 0 (ignored)", in->upper_only);
    if (in->meta_orphans)
        note(r, "%zu metadata entries for ids not in layer 0 (ignored)", in->meta_orphans);
    if (in->env_m >= 0 && in->env_m != in->m)
        note(r, "params.m %" PRId64 " but the graph's M is %" PRId64 " (params.m used)", in->env_m,
             in->m);
}

vd_err vd_golhv1_open(vd_golhv1 **out, const void *buf, size_t len, vd_error *err)
{
    const uint8_t *b = buf;
    if (len < 8 || memcmp(b, MAGIC, 4) != 0)
        return vd_error_set(err, VD_ERR_CORRUPT,
                            len < 8 ? "file: %zu bytes, shorter than the header"
                                    : "file: magic is not \"LHV1\" (%zu bytes)",
                            len);
    size_t elen = (size_t)b[4] << 24 | (size_t)b[5] << 16 | (size_t)b[6] << 8 | b[7];
    if (elen > len - 8)
        return vd_error_set(err, VD_ERR_CORRUPT, "file: envelope length %zu, only %zu bytes follow",
                            elen, len - 8);
    vd_golhv1 *r = calloc(1, sizeof *r);
    if (!r) return vd_error_set(err, VD_ERR_NOMEM, "golhv1: out of memory");
    r->buf = b;
    r->len = len;
    r->info.version = -1;
    vd_err rc = read_envelope(r, b + 8, elen, err);
    cursor c = {b, b + 8 + elen, b + len};
    if (!rc) rc = read_graph(r, &c, err);
    vd_golhv1_info *in = &r->info;
    if (!rc && in->env_dimension >= 0) {
        if (in->dimension == 0 && in->env_dimension <= UINT32_MAX)
            in->dimension = (uint32_t)in->env_dimension;
        else if ((int64_t)in->dimension != in->env_dimension)
            rc = vd_error_set(err, VD_ERR_CORRUPT,
                              "envelope: params.dimension %" PRId64
                              " but the graph's vectors have %" PRIu32,
                              in->env_dimension, in->dimension);
    }
    if (!rc && in->dimension && !(r->vec = malloc((size_t)in->dimension * sizeof *r->vec)))
        rc = vd_error_set(err, VD_ERR_NOMEM, "golhv1: out of memory");
    if (rc) {
        vd_golhv1_close(r);
        return rc;
    }
    add_notes(r);
    vd_golhv1_rewind(r);
    *out = r;
    return VD_OK;
}

void vd_golhv1_close(vd_golhv1 *r)
{
    if (!r) return;
    json_decref(r->env);
    free(r->vec);
    free(r->meta_json);
    free(r->meta_mp);
    free(r);
}

const vd_golhv1_info *vd_golhv1_info_get(const vd_golhv1 *r)
{
    return &r->info;
}

const char *vd_golhv1_notes(const vd_golhv1 *r)
{
    return r->notes;
}

void vd_golhv1_rewind(vd_golhv1 *r)
{
    r->next = 0;
    r->cur.base = r->buf;
    r->cur.p = r->l0;
    r->cur.end = r->buf + r->len;
}

int vd_golhv1_next(vd_golhv1 *r, vd_golhv1_item *item, vd_error *err)
{
    if (r->next >= r->info.items) return 0;
    node nd = {0};
    rd_node(&r->cur, 0, r->next, &nd, NULL); /* checked by open */
    r->next++;
    for (size_t i = 0; i < nd.dim; i++) r->vec[i] = le_float(nd.vec + 4 * i);
    memset(item, 0, sizeof *item);
    item->id = (const char *)nd.key;
    item->id_len = nd.key_len;
    item->vector = r->vec;
    item->dimension = nd.dim;
    free(r->meta_json);
    free(r->meta_mp);
    r->meta_json = NULL;
    r->meta_mp = NULL;
    json_t *m = r->meta ? json_object_getn(r->meta, (const char *)nd.key, nd.key_len) : NULL;
    if (!m || json_is_null(m)) return 1;
    r->meta_json = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (!r->meta_json) {
        vd_error_set(err, VD_ERR_NOMEM, "golhv1: out of memory");
        return -1;
    }
    size_t jl = strlen(r->meta_json), ml;
    vd_error e2;
    vd_err rc = vd_json_to_msgpack(r->meta_json, jl, &r->meta_mp, &ml, &e2);
    if (rc) {
        vd_error_set(err, rc == VD_ERR_NOMEM || rc == VD_ERR_LIMIT ? rc : VD_ERR_CORRUPT,
                     "envelope: metadata of \"%.*s\": %s", (int)(nd.key_len > 64 ? 64 : nd.key_len),
                     nd.key, e2.msg);
        return -1;
    }
    item->meta_json = r->meta_json;
    item->meta_json_len = jl;
    item->metadata = r->meta_mp;
    item->metadata_len = ml;
    return 1;
}

void vd_golhv1_params(const vd_golhv1 *r, vd_index_params *p)
{
    const vd_golhv1_info *in = &r->info;
    vd_index_params_init(p);
    p->dimension = in->dimension;
    p->distance = in->distance;
    int64_t m = in->env_m > 0 ? in->env_m : in->m;
    p->m = m < 2 ? 2 : m > 100 ? 100 : (uint32_t)m;
    int64_t ef = in->env_ef_search > 0 ? in->env_ef_search : in->ef_search;
    p->ef_search = ef < DEFAULT_EF ? DEFAULT_EF : ef > VD_MAX_EF ? VD_MAX_EF : (uint32_t)ef;
}

vd_err vd_golhv1_build(vd_index **out, const void *buf, size_t len, const char *name,
                       size_t name_len, const vd_limits *limits, size_t batch, vd_golhv1_info *info,
                       vd_error *err)
{
    vd_golhv1 *r;
    vd_err rc = vd_golhv1_open(&r, buf, len, err);
    if (rc) return rc;
    const vd_golhv1_info *in = vd_golhv1_info_get(r);
    if (!name) {
        name = in->name;
        name_len = in->name_len;
        if (name_len == 0 || name_len >= sizeof in->name) {
            vd_golhv1_close(r);
            return vd_error_set(err, VD_ERR_INVALID_PARAMS,
                                "envelope: params.name %s: give the index a name",
                                name_len ? "too long" : "absent");
        }
    }
    vd_limits lim;
    if (limits)
        lim = *limits;
    else
        vd_limits_init(&lim);
    if (batch == 0 || batch > lim.max_batch) batch = lim.max_batch;
    vd_index_params p;
    vd_golhv1_params(r, &p);
    vd_index *ix = NULL;
    if ((rc = vd_index_new(&ix, name, name_len, &p, &lim, err))) {
        vd_golhv1_close(r);
        return rc;
    }
    /* Items of a batch point into per-item copies: next() reuses its buffers. */
    vd_item *items = calloc(batch, sizeof *items);
    float *vecs = malloc(batch * (size_t)(p.dimension ? p.dimension : 1) * sizeof *vecs);
    uint8_t **metas = calloc(batch, sizeof *metas);
    size_t n = 0;
    if (!items || !vecs || !metas) rc = vd_error_set(err, VD_ERR_NOMEM, "golhv1: out of memory");
    for (;;) {
        vd_golhv1_item it;
        vd_error e1;
        int more = rc ? 0 : vd_golhv1_next(r, &it, &e1);
        if (more < 0) rc = vd_error_set(err, e1.code, "%s", e1.msg);
        if (more > 0) {
            memcpy(vecs + n * p.dimension, it.vector, p.dimension * sizeof *vecs);
            items[n] = (vd_item){it.id, it.id_len, vecs + n * p.dimension, it.dimension, NULL, 0};
            if (it.metadata) {
                if (!(metas[n] = malloc(it.metadata_len ? it.metadata_len : 1))) {
                    rc = vd_error_set(err, VD_ERR_NOMEM, "golhv1: out of memory");
                    break;
                }
                memcpy(metas[n], it.metadata, it.metadata_len);
                items[n].metadata = metas[n];
                items[n].metadata_len = it.metadata_len;
            }
            n++;
        }
        if (!rc && n && (n == batch || more == 0)) {
            vd_error e2;
            if ((rc = vd_index_add(ix, items, n, &e2)))
                vd_error_set(err, rc, "%s (batch of %zu items from layer-0 node %zu)", e2.msg, n,
                             r->next - n);
            for (size_t i = 0; i < n; i++) {
                free(metas[i]);
                metas[i] = NULL;
            }
            n = 0;
        }
        if (rc || more == 0) break;
    }
    for (size_t i = 0; metas && i < n; i++) free(metas[i]);
    free(items);
    free(vecs);
    free(metas);
    if (!rc && info) *info = *in;
    vd_golhv1_close(r);
    if (rc) {
        vd_index_free(ix);
        return rc;
    }
    *out = ix;
    return VD_OK;
}
