/*
 * store.h - object storage for checkpoints: put a whole object, get it,
 * delete it, list keys by prefix. Backends plug in through one table of
 * operations (vd_store_ops), chosen by the URL's scheme:
 *
 *   file:///var/lib/vectord   (or a plain path)   local files, atomic puts
 *   http(s)://host:port       storaged            (later)
 *   s3://bucket/prefix        S3 API              (later)
 *
 * Keys are '/'-separated relative paths of printable bytes without empty,
 * "." or ".." segments; a put is atomic: a reader sees the old object or
 * the new one, never a part.
 */
#ifndef VD_STORE_STORE_H
#define VD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "vectord/error.h"

typedef struct vd_store vd_store;

typedef struct vd_store_ops {
    const char *scheme;
    /* Stores len bytes under key, replacing any object. */
    vd_err (*put)(vd_store *s, const char *key, const void *buf, size_t len, vd_error *err);
    /* *buf is malloc'd (caller frees). VD_ERR_NOT_FOUND when absent. */
    vd_err (*get)(vd_store *s, const char *key, uint8_t **buf, size_t *len, vd_error *err);
    /* Deleting a missing key succeeds. */
    vd_err (*del)(vd_store *s, const char *key, vd_error *err);
    /* *keys: malloc'd array of malloc'd strings, sorted bytewise (free with
     * vd_store_keys_free). */
    vd_err (*list)(vd_store *s, const char *prefix, char ***keys, size_t *n, vd_error *err);
    void (*close)(vd_store *s);
} vd_store_ops;

/* Every backend's state starts with this. */
struct vd_store {
    const vd_store_ops *ops;
    char *url; /* as given, for logs; never holds secrets */
};

/*
 * Opens the store named by url. On success *out must be closed with
 * vd_store_close. Errors: VD_ERR_CONFIG (unknown scheme, bad URL, naming
 * it), VD_ERR_IO (cannot create the directory), VD_ERR_NOMEM.
 */
vd_err vd_store_open(vd_store **out, const char *url, vd_error *err);

/* Closes and frees. NULL is accepted. */
void vd_store_close(vd_store *s);

vd_err vd_store_put(vd_store *s, const char *key, const void *buf, size_t len, vd_error *err);
vd_err vd_store_get(vd_store *s, const char *key, uint8_t **buf, size_t *len, vd_error *err);
vd_err vd_store_del(vd_store *s, const char *key, vd_error *err);
vd_err vd_store_list(vd_store *s, const char *prefix, char ***keys, size_t *n, vd_error *err);
void vd_store_keys_free(char **keys, size_t n);

/* Returns 1 when key is acceptable to every backend (see above). */
int vd_store_key_valid(const char *key);

/*
 * Escapes s[0..len) as one path segment, like Go's url.PathEscape: bytes
 * outside A-Z a-z 0-9 - _ . ~ $ & + , : ; = @ become %XX ('/' is "%2F").
 * Returns a malloc'd string, or NULL when out of memory.
 */
char *vd_store_escape(const char *s, size_t len);

/*
 * The checkpoint key of an index: "_vectors/" + escaped name + ".lhv1",
 * escaped like Go's url.PathEscape (what the Go service did): bytes outside
 * A-Z a-z 0-9 - _ . ~ $ & + , : ; = @ become %XX, so '/' is "%2F".
 * Returns a malloc'd string, or NULL when out of memory.
 */
char *vd_store_index_key(const char *name, size_t name_len);

/* Backend constructors, used by vd_store_open. */
vd_err vd_store_file_open(vd_store **out, const char *url, const char *root, vd_error *err);

#endif
