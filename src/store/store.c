/*
 * store.c - backend selection by URL scheme, key rules, shared helpers.
 */
#include "store.h"

#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void vd_store_options_init(vd_store_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 5000;
    o->request_timeout_ms = 60000;
    o->retries = 3;
    o->retry_backoff_ms = 100;
    o->retry_backoff_max_ms = 2000;
    o->list_page_size = 1000;
}

vd_err vd_store_open(vd_store **out, const char *url, const vd_store_options *opts, vd_error *err)
{
    vd_store_options defaults;
    if (!opts) {
        vd_store_options_init(&defaults);
        opts = &defaults;
    }
    if (!url || !*url) return vd_error_set(err, VD_ERR_CONFIG, "store.url: empty");
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        return vd_store_storaged_open(out, url, opts, err);
    if (strncmp(url, "s3://", 5) == 0) return vd_store_s3_open(out, url, opts, err);
    if (strncmp(url, "file://", 7) == 0) {
        const char *root = url + 7;
        if (*root != '/')
            return vd_error_set(err, VD_ERR_CONFIG,
                                "store.url: \"%s\": a file URL needs an absolute path "
                                "(file:///var/lib/vectord)",
                                url);
        return vd_store_file_open(out, url, root, err);
    }
    if (!strstr(url, "://")) return vd_store_file_open(out, url, url, err);
    return vd_error_set(
        err, VD_ERR_CONFIG,
        "store.url: \"%.64s\": unsupported scheme (file://, http://, https://, s3://)", url);
}

void vd_store_close(vd_store *s)
{
    if (s) s->ops->close(s);
}

#define CHECK_KEY(key)                                                                             \
    do {                                                                                           \
        if (!vd_store_key_valid(key))                                                              \
            return vd_error_set(err, VD_ERR_INVALID_PARAMS, "store key \"%.200s\" is not valid",   \
                                key ? key : "(null)");                                             \
    } while (0)

vd_err vd_store_put(vd_store *s, const char *key, const void *buf, size_t len, vd_error *err)
{
    CHECK_KEY(key);
    return s->ops->put(s, key, buf, len, err);
}

vd_err vd_store_get(vd_store *s, const char *key, uint8_t **buf, size_t *len, vd_error *err)
{
    CHECK_KEY(key);
    return s->ops->get(s, key, buf, len, err);
}

vd_err vd_store_del(vd_store *s, const char *key, vd_error *err)
{
    CHECK_KEY(key);
    return s->ops->del(s, key, err);
}

vd_err vd_store_list(vd_store *s, const char *prefix, char ***keys, size_t *n, vd_error *err)
{
    return s->ops->list(s, prefix ? prefix : "", keys, n, err);
}

void vd_store_keys_free(char **keys, size_t n)
{
    if (!keys) return;
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

int vd_store_keylist_push(vd_store_keylist *l, const char *key, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **k = realloc(l->k, cap * sizeof *k);
        if (!k) return -1;
        l->k = k;
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, key, len);
    c[len] = '\0';
    l->k[l->n++] = c;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

vd_err vd_store_keylist_finish(vd_store_keylist *l, vd_err rc, char ***keys, size_t *n)
{
    if (rc) {
        vd_store_keys_free(l->k, l->n);
        return rc;
    }
    if (l->n > 1) {
        qsort(l->k, l->n, sizeof *l->k, key_cmp);
        size_t w = 1;
        for (size_t r = 1; r < l->n; r++) {
            if (strcmp(l->k[r], l->k[w - 1]) == 0)
                free(l->k[r]);
            else
                l->k[w++] = l->k[r];
        }
        l->n = w;
    }
    *keys = l->k;
    *n = l->n;
    return VD_OK;
}

int vd_store_key_valid(const char *key)
{
    if (!key || !*key || strlen(key) > 1024) return 0;
    const char *seg = key;
    for (const char *p = key;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t n = (size_t)(p - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (*p == '\0') return 1;
            seg = p + 1;
        } else if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
}

static int path_safe(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return 1;
    return strchr("-_.~$&+,:;=@", c) != NULL && c != '\0';
}

char *vd_store_escape(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(3 * len + 1), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (path_safe(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

char *vd_store_legacy_key(const char *name, size_t name_len)
{
    char *esc = vd_store_escape(name, name_len), *k = NULL;
    if (esc && asprintf(&k, "_vectors/%s.lhv1", esc) < 0) k = NULL;
    free(esc);
    return k;
}

char *vd_store_checkpoint_prefix(const char *topic, int32_t partition)
{
    char *et = vd_store_escape(topic, strlen(topic)), *k = NULL;
    if (et && asprintf(&k, "_vectors/%s/%" PRId32 "/", et, partition) < 0) k = NULL;
    free(et);
    return k;
}

char *vd_store_checkpoint_stem(const char *topic, int32_t partition, const char *name,
                               size_t name_len)
{
    char *pre = vd_store_checkpoint_prefix(topic, partition), *en = vd_store_escape(name, name_len);
    char *k = NULL;
    if (pre && en) {
        size_t len = strlen(en);
        char tail[24] = "";
        if (len > VD_STORE_NAME_MAX) {
            uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
            for (size_t i = 0; i < name_len; i++)
                h = (h ^ (unsigned char)name[i]) * 0x100000001b3ull;
            len = VD_STORE_NAME_MAX;
            if (en[len - 1] == '%')
                len -= 1; /* never inside a %XX */
            else if (en[len - 2] == '%')
                len -= 2;
            snprintf(tail, sizeof tail, "~%016" PRIx64, h);
        }
        if (asprintf(&k, "%s%.*s%s", pre, (int)len, en, tail) < 0) k = NULL;
    }
    free(pre);
    free(en);
    return k;
}

char *vd_store_checkpoint_key(const char *topic, int32_t partition, const char *name,
                              size_t name_len, int64_t offset)
{
    char *stem = vd_store_checkpoint_stem(topic, partition, name, name_len), *k = NULL;
    if (stem && offset >= 0 && asprintf(&k, "%s@%020" PRId64 ".lhv1", stem, offset) < 0) k = NULL;
    free(stem);
    return k;
}

char *vd_store_unversioned_key(const char *topic, int32_t partition, const char *name,
                               size_t name_len)
{
    char *stem = vd_store_checkpoint_stem(topic, partition, name, name_len), *k = NULL;
    if (stem && asprintf(&k, "%s.lhv1", stem) < 0) k = NULL;
    free(stem);
    return k;
}

int vd_store_checkpoint_key_parse(const char *key, size_t *stem_len, int64_t *offset)
{
    static const char ext[] = ".lhv1";
    size_t n = strlen(key), tail = 1 + VD_STORE_OFFSET_DIGITS + sizeof ext - 1;
    if (n <= tail || key[n - tail] != '@' || strcmp(key + n - sizeof ext + 1, ext) != 0) return 0;
    if (!vd_store_offset_parse(key + n - tail + 1, offset)) return 0;
    *stem_len = n - tail;
    return 1;
}

int vd_store_offset_parse(const char *s, int64_t *offset)
{
    int64_t v = 0;
    for (size_t i = 0; i < VD_STORE_OFFSET_DIGITS; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *offset = v;
    return 1;
}

const char *vd_store_key_brief(const char *key, char buf[84])
{
    size_t n = strlen(key);
    if (n <= 80)
        memcpy(buf, key, n + 1);
    else
        snprintf(buf, 84, "%.40s...%s", key, key + n - 36);
    return buf;
}
