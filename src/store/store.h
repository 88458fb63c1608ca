/*
 * store.h - object storage for checkpoints: put a whole object, get it,
 * delete it, list keys by prefix. Backends plug in through one table of
 * operations (vd_store_ops), chosen by the URL's scheme:
 *
 *   file:///var/lib/vectord   (or a plain path)   local files, atomic puts
 *   http(s)://host:port[/base] storaged (schemas/storaged.md)    storaged.c
 *   s3://bucket[/prefix]      any S3 API, SigV4 signed by libcurl  s3.c
 *
 * The two remote backends share curl.c: timeouts, retries with backoff and
 * jitter, status-code handling. docs/stores.md is the user's page.
 *
 * Keys are '/'-separated relative paths of printable bytes without empty,
 * "." or ".." segments; a put is atomic: a reader sees the old object or
 * the new one, never a part.
 */
#ifndef VD_STORE_STORE_H
#define VD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/service_error.h"

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

/* Settings of the remote backends (the file backend ignores them). The
 * worker fills them from the store.* configuration keys. Strings are
 * borrowed for the duration of vd_store_open only. */
typedef struct vd_store_options {
    const char *token;          /* storaged bearer token; NULL/"": none */
    const char *s3_endpoint;    /* NULL/"": AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS */
    const char *s3_region;      /* NULL/"": AWS_REGION, AWS_DEFAULT_REGION, us-east-1 */
    const char *s3_addressing;  /* "auto" (NULL), "path" or "virtual" */
    int64_t connect_timeout_ms; /* per connection attempt */
    int64_t request_timeout_ms; /* per request, transfer included */
    int retries;                /* after a connection error, 5xx or 429 */
    int64_t retry_backoff_ms;   /* first delay; doubles; full jitter */
    int64_t retry_backoff_max_ms;
    int list_page_size; /* keys asked for per list request (S3 max-keys, storaged limit) */
} vd_store_options;

/* The defaults: the same as the configuration's defaults. */
void vd_store_options_init(vd_store_options *o);

/*
 * Opens the store named by url with options opts (NULL: defaults). On
 * success *out must be closed with vd_store_close; on failure *out is
 * untouched. Errors: VD_ERR_CONFIG (unknown scheme, bad URL, missing S3
 * credentials; the message names store.url or the variable),
 * VD_ERR_IO (cannot create the directory), VD_ERR_NOMEM.
 */
vd_err vd_store_open(vd_store **out, const char *url, const vd_store_options *opts, vd_error *err);

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

/* The longest escaped index name a checkpoint key carries whole. */
#define VD_STORE_NAME_MAX 120

/* "_vectors/" escaped topic "/" partition "/": where every checkpoint file
 * of a commands partition lives (malloc'd, NULL when out of memory). */
char *vd_store_checkpoint_prefix(const char *topic, int32_t partition);

/*
 * The part of index name's checkpoint keys before the offset: the prefix
 * above and the name escaped like vd_store_escape. An escaped name longer
 * than VD_STORE_NAME_MAX bytes is cut there (never inside a %XX) and
 * followed by "~" and the 16 hex digits of the FNV-1a 64-bit hash of the
 * whole name: every path segment stays far below the 255 bytes file
 * systems allow, whatever the name (the LHV1 envelope carries it whole).
 * Returns a malloc'd string, or NULL when out of memory.
 */
char *vd_store_checkpoint_stem(const char *topic, int32_t partition, const char *name,
                               size_t name_len);

/*
 * The key of index name's checkpoint file holding its state through
 * command `offset` (>= 0) of partition `partition` of the commands topic:
 *   stem "@" offset in 20 digits ".lhv1"
 * A key is written once per state: every writer of the same index at the
 * same offset writes the same bytes, so a zombie can never replace a newer
 * file (docs/checkpoints.md). Two partitions never share a key. Returns a
 * malloc'd string, or NULL when out of memory or offset < 0.
 */
char *vd_store_checkpoint_key(const char *topic, int32_t partition, const char *name,
                              size_t name_len, int64_t offset);

/* Offsets in keys are written in this many digits (zero-padded, so that
 * keys sort by offset). */
#define VD_STORE_OFFSET_DIGITS 20

/* Reads the VD_STORE_OFFSET_DIGITS digits at s into *offset. Returns 1, or
 * 0 when one is not a digit or the value exceeds INT64_MAX. */
int vd_store_offset_parse(const char *s, int64_t *offset);

/* Whether key ends like a vd_store_checkpoint_key ("@" 20 digits ".lhv1");
 * then *stem_len is the length of its stem and *offset its offset. */
int vd_store_checkpoint_key_parse(const char *key, size_t *stem_len, int64_t *offset);

/* The key of the release before offsets were in it: stem ".lhv1", one
 * file per index overwritten in place. Read at load time only, to migrate.
 * Returns a malloc'd string, or NULL. */
char *vd_store_unversioned_key(const char *topic, int32_t partition, const char *name,
                               size_t name_len);

/*
 * The key checkpoints had before the partition was in it, the Go
 * service's: "_vectors/" + escaped name + ".lhv1". Read at load time only,
 * to migrate (docs/checkpoints.md). Returns a malloc'd string, or NULL.
 */
char *vd_store_legacy_key(const char *name, size_t name_len);

/* key shortened for a message: whole up to 80 bytes, else its first 40
 * and last 36 bytes around "...", so a long key never pushes the cause
 * out of a vd_error. Returns buf. */
const char *vd_store_key_brief(const char *key, char buf[84]);

/* For backends: a growing list of keys. */
typedef struct vd_store_keylist {
    char **k;
    size_t n, cap;
} vd_store_keylist;

/* Appends a copy of key[0..len). Returns 0, or -1 when out of memory. */
int vd_store_keylist_push(vd_store_keylist *l, const char *key, size_t len);

/* Ends a listing that got rc: on VD_OK the keys, sorted bytewise without
 * duplicates, go to *keys and *n; on an error they are freed. Returns rc. */
vd_err vd_store_keylist_finish(vd_store_keylist *l, vd_err rc, char ***keys, size_t *n);

/* Backend constructors, used by vd_store_open. */
vd_err vd_store_file_open(vd_store **out, const char *url, const char *root, vd_error *err);
vd_err vd_store_storaged_open(vd_store **out, const char *url, const vd_store_options *o,
                              vd_error *err);
vd_err vd_store_s3_open(vd_store **out, const char *url, const vd_store_options *o, vd_error *err);

#endif
