/*
 * store.c - backend selection by URL scheme, key rules, shared helpers.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vd_err vd_store_open(vd_store **out, const char *url, vd_error *err)
{
    if (!url || !*url) return vd_error_set(err, VD_ERR_CONFIG, "store.url: empty");
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
    return vd_error_set(err, VD_ERR_CONFIG,
                        "store.url: \"%.64s\": unsupported scheme (this build has file://)", url);
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

char *vd_store_index_key(const char *name, size_t name_len)
{
    char *esc = vd_store_escape(name, name_len), *k = NULL;
    if (esc && asprintf(&k, "_vectors/%s.lhv1", esc) < 0) k = NULL;
    free(esc);
    return k;
}
