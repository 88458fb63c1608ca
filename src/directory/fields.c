/*
 * fields.c - the directory's records as Redis hash fields and back (see
 * fields.h). Decoding is lenient where a newer vectord may have added
 * fields (unknown names are skipped) and strict about numbers (a malformed
 * one is an error naming the field).
 */
#include "fields.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vd_dir_index_clear(vd_dir_index *ix)
{
    if (!ix) return;
    free(ix->name);
    ix->name = NULL;
}

void vd_dir_worker_clear(vd_dir_worker *w)
{
    if (!w) return;
    free(w->parts);
    w->parts = NULL;
    w->nparts = 0;
}

void vd_dir_snapshot_clear(vd_dir_snapshot *s)
{
    if (!s) return;
    vd_dir_worker_clear(&s->worker);
    for (size_t i = 0; i < s->n; i++) vd_dir_index_clear(&s->indexes[i]);
    free(s->indexes);
    s->indexes = NULL;
    s->n = 0;
}

const char *vd_dir_fields_value(const vd_dir_fields *f, size_t i)
{
    return f->buf + f->off[i];
}

void vd_dir_fields_clear(vd_dir_fields *f)
{
    if (!f) return;
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* Appends one field; the value is printf-formatted (NUL-terminated in buf). */
static vd_err add_field(vd_dir_fields *f, vd_error *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static vd_err add_field(vd_dir_fields *f, vd_error *err, const char *name, const char *fmt, ...)
{
    if (f->n == VD_DIR_MAX_FIELDS)
        return vd_error_set(err, VD_ERR_NOMEM, "directory: too many fields");
    for (;;) {
        size_t room = f->cap - f->used;
        va_list ap;
        va_start(ap, fmt);
        int len = f->buf ? vsnprintf(f->buf + f->used, room, fmt, ap) : -2;
        va_end(ap);
        if (len >= 0 && (size_t)len < room) {
            f->name[f->n] = name;
            f->off[f->n] = f->used;
            f->len[f->n] = (size_t)len;
            f->n++;
            f->used += (size_t)len + 1;
            return VD_OK;
        }
        size_t need = f->used + (len > 0 ? (size_t)len : 0) + 1;
        size_t cap = f->cap ? f->cap * 2 : 512;
        while (cap < need) cap *= 2;
        char *b = realloc(f->buf, cap);
        if (!b) return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
        f->buf = b;
        f->cap = cap;
    }
}

vd_err vd_dir_index_encode(const vd_dir_index *ix, vd_dir_fields *f, vd_error *err)
{
    vd_err rc = VD_OK;
    f->n = f->used = 0;
    if (!rc) rc = add_field(f, err, "name", "%s", ix->name ? ix->name : "");
    if (!rc) rc = add_field(f, err, "partition", "%" PRId32, ix->partition);
    if (!rc) rc = add_field(f, err, "owner", "%s", ix->owner);
    if (!rc) rc = add_field(f, err, "dimension", "%" PRIu32, ix->params.dimension);
    if (!rc) rc = add_field(f, err, "m", "%" PRIu32, ix->params.m);
    if (!rc) rc = add_field(f, err, "ef_construction", "%" PRIu32, ix->params.ef_construction);
    if (!rc) rc = add_field(f, err, "ef_search", "%" PRIu32, ix->params.ef_search);
    if (!rc) rc = add_field(f, err, "distance", "%s", vd_distance_name(ix->params.distance));
    if (!rc) rc = add_field(f, err, "length", "%" PRIu64, ix->length);
    if (!rc) rc = add_field(f, err, "deleted", "%" PRIu64, ix->deleted);
    if (!rc) rc = add_field(f, err, "applied_offset", "%" PRId64, ix->applied_offset);
    if (!rc) rc = add_field(f, err, "checkpointed_offset", "%" PRId64, ix->checkpointed_offset);
    if (!rc) rc = add_field(f, err, "updated", "%" PRId64, ix->updated_ms);
    return rc;
}

vd_err vd_dir_worker_encode(const vd_dir_worker *w, vd_dir_fields *f, vd_error *err)
{
    vd_err rc = VD_OK;
    f->n = f->used = 0;
    if (!rc) rc = add_field(f, err, "id", "%s", w->id);
    if (!rc) rc = add_field(f, err, "host", "%s", w->host);
    if (!rc) rc = add_field(f, err, "version", "%s", w->version);
    if (!rc) rc = add_field(f, err, "pid", "%ld", w->pid);
    if (!rc) rc = add_field(f, err, "started", "%" PRId64, w->started_ms);
    if (!rc) rc = add_field(f, err, "updated", "%" PRId64, w->updated_ms);
    if (!rc) rc = add_field(f, err, "partition_count", "%" PRId32, w->partition_count);
    if (!rc) rc = add_field(f, err, "lag", "%" PRId64, w->lag);
    if (rc) return rc;
    /* partitions: "id:state:applied:lag" joined by ',' (one field, so a
     * heartbeat is one fixed set of fields whatever the assignment). */
    /* The widest entry: ',' + id (11) + ':' + state (15) + ':' + two
     * int64 (20 each) + ':' = 70 bytes. */
    enum { PART_MAX = 1 + 11 + 1 + 15 + 1 + 20 + 1 + 20 };
    size_t cap = 1 + w->nparts * (PART_MAX + 1), len = 0;
    char *s = malloc(cap);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
    s[0] = '\0';
    for (size_t i = 0; i < w->nparts; i++) {
        const vd_dir_partition *p = &w->parts[i];
        int n = snprintf(s + len, cap - len, "%s%" PRId32 ":%.15s:%" PRId64 ":%" PRId64,
                         i ? "," : "", p->id, p->state, p->applied, p->lag);
        if (n < 0 || (size_t)n >= cap - len) { /* cannot happen: PART_MAX is the widest */
            free(s);
            return vd_error_set(err, VD_ERR_NOMEM, "directory: partitions field too long");
        }
        len += (size_t)n;
    }
    rc = add_field(f, err, "partitions", "%s", s);
    free(s);
    return rc;
}

/* Copies a field value into buf as a C string; -1 when it does not fit or
 * holds a NUL (which would hide the bytes after it from strtoll). */
static int field_cstr(const char *v, size_t n, char *buf, size_t cap)
{
    if (n == 0 || n >= cap || memchr(v, '\0', n)) return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return 0;
}

/* Parses a signed decimal field value within min..max; 0 when it is one.
 * Out of range is an error, never a value wrapped into a narrower type. */
static int field_int(const char *v, size_t n, int64_t min, int64_t max, int64_t *out)
{
    char buf[32];
    if (field_cstr(v, n, buf, sizeof buf)) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno || *end || x < min || x > max) return -1;
    *out = x;
    return 0;
}

/* Parses an unsigned decimal field value (no minus sign); 0 when it is one. */
static int field_uint(const char *v, size_t n, uint64_t *out)
{
    char buf[32];
    if (field_cstr(v, n, buf, sizeof buf) || memchr(buf, '-', n)) return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

int vd_dir_pin_decode(const char *v, size_t n, int32_t *partition)
{
    int64_t x;
    if (field_int(v, n, 0, INT32_MAX, &x)) return -1;
    *partition = (int32_t)x;
    return 0;
}

#define FIELD_IS(i, lit) (lens[i] == sizeof(lit) - 1 && memcmp(fields[i], lit, lens[i]) == 0)

void vd_dir_field_copy(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

vd_err vd_dir_index_decode(const char *name, size_t name_len, const char *const *fields,
                           const size_t *lens, size_t nfields, vd_dir_index *ix, vd_error *err)
{
    /* Every number field with the range of the struct member it fills. */
    static const struct {
        const char *name;
        int64_t min, max; /* min > max: an unsigned 64-bit field */
    } nums[] = {
        {"partition", INT32_MIN, INT32_MAX},
        {"dimension", 0, UINT32_MAX},
        {"m", 0, UINT32_MAX},
        {"ef_construction", 0, UINT32_MAX},
        {"ef_search", 0, UINT32_MAX},
        {"length", 1, 0},
        {"deleted", 1, 0},
        {"applied_offset", INT64_MIN, INT64_MAX},
        {"checkpointed_offset", INT64_MIN, INT64_MAX},
        {"updated", INT64_MIN, INT64_MAX},
    };
    enum { NINTS = sizeof nums / sizeof nums[0] };
    int64_t v[NINTS] = {0, 0, 0, 0, 0, 0, 0, -1, -1, 0};
    uint64_t u[NINTS] = {0};
    memset(ix, 0, sizeof *ix);
    ix->params.distance = VD_DIST_COSINE;
    for (size_t i = 0; i + 1 < nfields; i += 2) {
        if (FIELD_IS(i, "owner")) {
            vd_dir_field_copy(ix->owner, sizeof ix->owner, fields[i + 1], lens[i + 1]);
            continue;
        }
        if (FIELD_IS(i, "distance")) {
            vd_distance d;
            if (vd_distance_parse(fields[i + 1], lens[i + 1], &d, NULL) == VD_OK)
                ix->params.distance = d;
            continue;
        }
        size_t k = 0;
        while (k < NINTS &&
               !(lens[i] == strlen(nums[k].name) && !memcmp(fields[i], nums[k].name, lens[i])))
            k++;
        if (k == NINTS) continue; /* name, or a field of a newer version */
        int bad = nums[k].min > nums[k].max
                      ? field_uint(fields[i + 1], lens[i + 1], &u[k])
                      : field_int(fields[i + 1], lens[i + 1], nums[k].min, nums[k].max, &v[k]);
        if (bad)
            return vd_error_set(err, VD_ERR_DECODE,
                                "index entry %.*s: field %s: not an integer in its range",
                                (int)(name_len > 100 ? 100 : name_len), name, nums[k].name);
    }
    ix->partition = (int32_t)v[0];
    ix->params.dimension = (uint32_t)v[1];
    ix->params.m = (uint32_t)v[2];
    ix->params.ef_construction = (uint32_t)v[3];
    ix->params.ef_search = (uint32_t)v[4];
    ix->length = u[5];
    ix->deleted = u[6];
    ix->applied_offset = v[7];
    ix->checkpointed_offset = v[8];
    ix->updated_ms = v[9];
    ix->pinned = -1;
    if (!(ix->name = strndup(name, name_len)))
        return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
    return VD_OK;
}

/* Parses "id:state:applied:lag,..." into w->parts. */
static vd_err parse_partitions(const char *v, size_t n, vd_dir_worker *w, vd_error *err)
{
    size_t count = n ? 1 : 0;
    for (size_t i = 0; i < n; i++) count += v[i] == ',';
    if (!count) return VD_OK;
    if (!(w->parts = calloc(count, sizeof *w->parts)))
        return vd_error_set(err, VD_ERR_NOMEM, "directory: out of memory");
    const char *s = v, *end = v + n;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        const char *c1 = memchr(s, ':', (size_t)(e - s));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(e - c1 - 1)) : NULL;
        const char *c3 = c2 ? memchr(c2 + 1, ':', (size_t)(e - c2 - 1)) : NULL;
        vd_dir_partition *p = &w->parts[w->nparts];
        int64_t id, applied, lag;
        if (!c3 || field_int(s, (size_t)(c1 - s), INT32_MIN, INT32_MAX, &id) ||
            field_int(c2 + 1, (size_t)(c3 - c2 - 1), INT64_MIN, INT64_MAX, &applied) ||
            field_int(c3 + 1, (size_t)(e - c3 - 1), INT64_MIN, INT64_MAX, &lag))
            return vd_error_set(err, VD_ERR_DECODE,
                                "heartbeat %s: field partitions: expected id:state:applied:lag",
                                w->id);
        p->id = (int32_t)id;
        vd_dir_field_copy(p->state, sizeof p->state, c1 + 1, (size_t)(c2 - c1 - 1));
        p->applied = applied;
        p->lag = lag;
        w->nparts++;
        s = comma ? comma + 1 : end;
    }
    return VD_OK;
}

vd_err vd_dir_worker_decode(const char *const *fields, const size_t *lens, size_t nfields,
                            vd_dir_worker *w, vd_error *err)
{
    memset(w, 0, sizeof *w);
    w->ttl_ms = -1;
    const char *parts = NULL;
    size_t parts_len = 0;
    for (size_t i = 0; i + 1 < nfields; i += 2) {
        const char *v = fields[i + 1];
        size_t n = lens[i + 1];
        int64_t x = 0;
        if (FIELD_IS(i, "id"))
            vd_dir_field_copy(w->id, sizeof w->id, v, n);
        else if (FIELD_IS(i, "host"))
            vd_dir_field_copy(w->host, sizeof w->host, v, n);
        else if (FIELD_IS(i, "version"))
            vd_dir_field_copy(w->version, sizeof w->version, v, n);
        else if (FIELD_IS(i, "partitions"))
            parts = v, parts_len = n;
        else if (FIELD_IS(i, "pid") || FIELD_IS(i, "started") || FIELD_IS(i, "updated") ||
                 FIELD_IS(i, "partition_count") || FIELD_IS(i, "lag")) {
            int narrow = FIELD_IS(i, "partition_count");
            if (field_int(v, n, narrow ? INT32_MIN : INT64_MIN, narrow ? INT32_MAX : INT64_MAX, &x))
                return vd_error_set(err, VD_ERR_DECODE,
                                    "heartbeat %s: field %.*s: not an integer in its range", w->id,
                                    (int)lens[i], fields[i]);
            if (FIELD_IS(i, "pid"))
                w->pid = (long)x;
            else if (FIELD_IS(i, "started"))
                w->started_ms = x;
            else if (FIELD_IS(i, "updated"))
                w->updated_ms = x;
            else if (FIELD_IS(i, "partition_count"))
                w->partition_count = (int32_t)x;
            else
                w->lag = x;
        }
    }
    if (parts) {
        vd_err rc = parse_partitions(parts, parts_len, w, err);
        if (rc) {
            vd_dir_worker_clear(w);
            return rc;
        }
    }
    return VD_OK;
}
