/*
 * manifest.c - see manifest.h and docs/checkpoints.md.
 */
#include "manifest.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define FORMAT  "vectord-manifest"
#define VERSION 1

void vd_manifest_init(vd_manifest *m, const char *topic, int32_t partition)
{
    memset(m, 0, sizeof *m);
    snprintf(m->topic, sizeof m->topic, "%s", topic);
    m->partition = partition;
    m->offset = -1;
    m->generation = -1;
}

void vd_manifest_clear(vd_manifest *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->entries[i].name);
    free(m->entries);
    m->entries = NULL;
    m->n = m->cap = 0;
}

/* Index of the first entry whose name is >= name. */
static size_t lower_bound(const vd_manifest *m, const char *name)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(m->entries[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

vd_manifest_entry *vd_manifest_find(const vd_manifest *m, const char *name)
{
    size_t i = lower_bound(m, name);
    return i < m->n && strcmp(m->entries[i].name, name) == 0 ? &m->entries[i] : NULL;
}

vd_err vd_manifest_set(vd_manifest *m, const char *name, int64_t file_offset, int64_t complete,
                       vd_error *err)
{
    size_t i = lower_bound(m, name);
    if (i < m->n && strcmp(m->entries[i].name, name) == 0) {
        m->entries[i].file_offset = file_offset;
        m->entries[i].complete = complete;
        return VD_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        vd_manifest_entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e) return vd_error_set(err, VD_ERR_NOMEM, "manifest: out of memory");
        m->entries = e;
        m->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return vd_error_set(err, VD_ERR_NOMEM, "manifest: out of memory");
    memmove(m->entries + i + 1, m->entries + i, (m->n - i) * sizeof *m->entries);
    m->entries[i] = (vd_manifest_entry){copy, file_offset, complete};
    m->n++;
    return VD_OK;
}

void vd_manifest_remove(vd_manifest *m, const char *name)
{
    vd_manifest_entry *e = vd_manifest_find(m, name);
    if (!e) return;
    size_t i = (size_t)(e - m->entries);
    free(e->name);
    memmove(m->entries + i, m->entries + i + 1, (m->n - i - 1) * sizeof *m->entries);
    m->n--;
}

vd_err vd_manifest_encode(const vd_manifest *m, char **out, size_t *len, vd_error *err)
{
    json_t *idx = json_object();
    for (size_t i = 0; idx && i < m->n; i++) {
        json_t *e = json_pack("{s:I, s:I}", "file_offset", (json_int_t)m->entries[i].file_offset,
                              "complete", (json_int_t)m->entries[i].complete);
        if (!e || json_object_set_new(idx, m->entries[i].name, e)) {
            json_decref(idx);
            idx = NULL;
        }
    }
    json_t *doc =
        idx ? json_pack("{s:s, s:i, s:s, s:i, s:I, s:s, s:{s:s, s:i}, s:o}", "format", FORMAT,
                        "version", VERSION, "topic", m->topic, "partition", (int)m->partition,
                        "offset", (json_int_t)m->offset, "cluster_id", m->cluster_id, "writer",
                        "worker", m->worker, "generation", (int)m->generation, "indexes", idx)
            : NULL;
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (!text) return vd_error_set(err, VD_ERR_NOMEM, "manifest: out of memory");
    *out = text;
    *len = strlen(text);
    return VD_OK;
}

#define CORRUPT(...) vd_error_set(err, VD_ERR_CORRUPT, "manifest: " __VA_ARGS__)

vd_err vd_manifest_decode(const void *buf, size_t len, vd_manifest *m, vd_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) return CORRUPT("not JSON: %s", jerr.text);
    const char *format, *topic, *worker = "", *cluster = "";
    json_int_t version, offset;
    int partition, generation = -1;
    json_t *idx;
    vd_err rc = VD_OK;
    if (json_unpack_ex(doc, &jerr, 0, "{s:s, s:I, s:s, s:i, s:I, s?s, s?{s?s, s?i}, s:o}",
                       "format", &format, "version", &version, "topic", &topic, "partition",
                       &partition, "offset", &offset, "cluster_id", &cluster, "writer", "worker",
                       &worker, "generation", &generation, "indexes", &idx)) {
        rc = CORRUPT("%s", jerr.text);
    } else if (strcmp(format, FORMAT) != 0) {
        rc = CORRUPT("format is \"%.40s\"", format);
    } else if (version != VERSION) {
        rc = vd_error_set(err, VD_ERR_VERSION, "manifest: version %lld is not supported",
                          (long long)version);
    } else if (!json_is_object(idx) || offset < -1 || strlen(topic) >= sizeof m->topic) {
        rc = CORRUPT("bad indexes, offset or topic");
    }
    if (rc) {
        json_decref(doc);
        return rc;
    }
    vd_manifest_clear(m);
    snprintf(m->topic, sizeof m->topic, "%s", topic);
    snprintf(m->worker, sizeof m->worker, "%s", worker);
    snprintf(m->cluster_id, sizeof m->cluster_id, "%s", cluster);
    m->partition = partition;
    m->generation = generation;
    m->offset = offset;
    const char *name;
    json_t *e;
    json_object_foreach(idx, name, e)
    {
        json_int_t fo, co;
        if (json_unpack_ex(e, &jerr, 0, "{s:I, s:I}", "file_offset", &fo, "complete", &co) ||
            fo < -1 || co < fo) {
            rc = CORRUPT("index \"%.100s\": bad file_offset/complete", name);
            break;
        }
        if ((rc = vd_manifest_set(m, name, fo, co, err))) break;
    }
    json_decref(doc);
    if (rc) vd_manifest_clear(m);
    return rc;
}

char *vd_manifest_prefix(const char *topic, int32_t partition)
{
    char *esc = vd_store_escape(topic, strlen(topic)), *out = NULL;
    if (esc && asprintf(&out, "_manifests/%s/%d/", esc, (int)partition) < 0) out = NULL;
    free(esc);
    return out;
}

char *vd_manifest_key(const char *topic, int32_t partition, int64_t offset)
{
    char *pre = vd_manifest_prefix(topic, partition), *out = NULL;
    if (pre && offset >= 0 && asprintf(&out, "%s%020" PRId64 ".json", pre, offset) < 0)
        out = NULL;
    free(pre);
    return out;
}

int vd_manifest_key_parse(const char *prefix, const char *key, int64_t *offset)
{
    size_t n = strlen(prefix);
    if (strncmp(key, prefix, n) != 0 || strlen(key + n) != VD_STORE_OFFSET_DIGITS + 5 ||
        strcmp(key + n + VD_STORE_OFFSET_DIGITS, ".json") != 0)
        return 0;
    return vd_store_offset_parse(key + n, offset);
}

char *vd_manifest_legacy_key(const char *topic, int32_t partition)
{
    char *esc = vd_store_escape(topic, strlen(topic)), *out = NULL;
    if (esc && asprintf(&out, "_manifests/%s/%d.json", esc, (int)partition) < 0) out = NULL;
    free(esc);
    return out;
}

int vd_manifest_file_garbage(int64_t manifest_offset, int64_t ref, int64_t file_offset,
                             int rebased)
{
    if (file_offset == ref) return 0;
    if (rebased) return 1; /* another cluster's offsets: only this manifest's files count */
    if (ref < -1) return file_offset <= manifest_offset; /* the index is not in the manifest */
    return file_offset < ref && ref <= manifest_offset;
}

int vd_manifest_garbage(int64_t manifest_offset, int64_t other, int rebased)
{
    return rebased ? other != manifest_offset : other < manifest_offset;
}

int64_t vd_manifest_complete(const vd_manifest_entry *e, int64_t file_offset)
{
    if (file_offset < e->file_offset) return file_offset; /* stale file: trust only its content */
    return file_offset > e->complete ? file_offset : e->complete;
}

int64_t vd_manifest_start(const vd_manifest *m, const int64_t *complete)
{
    int64_t lo = m->offset;
    for (size_t i = 0; i < m->n; i++)
        if (complete[i] < lo) lo = complete[i];
    return lo + 1;
}
