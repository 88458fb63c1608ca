/*
 * curl.h - the HTTP client shared by the remote stores (storaged, S3):
 * one libcurl easy handle per store (connections are reused), connect and
 * total timeouts, and retries with exponential backoff and full jitter on
 * connection errors, 5xx and 429. Everything else is the caller's: a final
 * answer of any status is returned, and the caller decides what 404 or 403
 * means for its protocol.
 *
 * Bodies are never copied: an upload is read from the caller's buffer, a
 * download is written into one buffer sized from Content-Length when the
 * server sends it, so an object of several hundred MB is in memory once.
 */
#ifndef VD_STORE_CURL_H
#define VD_STORE_CURL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct vd_curl vd_curl;

typedef struct vd_curl_request {
    const char *method;   /* "GET", "PUT", "DELETE" */
    const char *url;      /* already escaped */
    const char *what;     /* for messages: "storaged PUT <key>" (no secrets) */
    const char **headers; /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;     /* PUT body (borrowed), body_len bytes */
    size_t body_len;
    /* S3: libcurl's SigV4 ("aws:amz:<region>:s3") and the key pair. */
    const char *sigv4;
    const char *user, *password;
} vd_curl_request;

typedef struct vd_curl_response {
    long status;   /* HTTP status of the final answer */
    uint8_t *body; /* malloc'd (caller frees with free), len bytes, NUL after */
    size_t len;
} vd_curl_response;

/* Creates a client with the timeouts and retry policy of o (its strings
 * are not kept). Errors: VD_ERR_NOMEM, VD_ERR_IO (libcurl cannot start). */
vd_err vd_curl_new(vd_curl **out, const vd_store_options *o, vd_error *err);

/* Frees the client and its connections. NULL is accepted. */
void vd_curl_free(vd_curl *h);

/*
 * Performs rq, retrying connection errors, timeouts, 5xx and 429 answers up
 * to the configured number of times. Returns VD_OK when an answer arrived
 * (any status, the last one if every attempt got 5xx: resp->status tells);
 * resp->body must then be freed by the caller. Errors when no answer came:
 * VD_ERR_TIMEOUT, VD_ERR_IO (connection refused, reset, TLS, an answer
 * over 5 GiB ...), VD_ERR_NOMEM; the message starts with rq->what. Thread-safe: requests on
 * one client are serialised.
 */
vd_err vd_curl_do(vd_curl *h, const vd_curl_request *rq, vd_curl_response *resp, vd_error *err);

/* Maps an answer that is not a success to an error naming what (the
 * backend's protocol: 404 is VD_ERR_NOT_FOUND). Returns the code. */
typedef vd_err (*vd_curl_status_fn)(const char *what, vd_curl_response *resp, vd_error *err);

/*
 * The part of a remote store that storaged and S3 share: the client, what
 * every request carries, how a key becomes a URL and an answer an error.
 * A backend's state starts with it, and vd_curl_store_put/get/del are its
 * object operations: a 2xx answer succeeds (GET: a 200), any other goes
 * through status, except that DELETE counts VD_ERR_NOT_FOUND as done.
 */
typedef struct vd_curl_store {
    vd_store base;
    vd_curl *http;
    const char *name;                    /* "storaged", "s3": starts every message */
    const char *shown_prefix;            /* before a key in messages: "" or the S3 prefix */
    const char *headers[3];              /* sent with every request; the first NULL ends them */
    const char *sigv4, *user, *password; /* S3's signing, or NULL */
    char *(*object_url)(const struct vd_curl_store *s, const char *key); /* malloc'd or NULL */
    vd_curl_status_fn status;
} vd_curl_store;

/* GET of url (malloc'd, freed here) for one page of a listing: VD_OK with
 * *resp a 200 answer whose body the caller frees; any other answer goes
 * through s->status. */
vd_err vd_curl_store_get_page(const vd_curl_store *s, char *url, const char *what,
                              vd_curl_response *resp, vd_error *err);

vd_err vd_curl_store_put(vd_store *st, const char *key, const void *buf, size_t len, vd_error *err);
vd_err vd_curl_store_get(vd_store *st, const char *key, uint8_t **buf, size_t *len, vd_error *err);
vd_err vd_curl_store_del(vd_store *st, const char *key, vd_error *err);

/*
 * Sets err for an answer that is not a success: "<what>: HTTP <status>
 * <reason>: <start of the body, printable>" with the given code. Returns
 * code.
 */
vd_err vd_curl_status_error(const char *what, const vd_curl_response *resp, vd_err code,
                            const char *reason, vd_error *err);

/* Appends t to *out (malloc'd, grown; *out may be NULL). Returns 0, or -1
 * when out of memory. */
int vd_curl_append(char **out, const char *t);

/* Appends s[0..len) percent-encoded to *out (malloc'd, grown; *out may be
 * NULL). Unreserved bytes A-Z a-z 0-9 - _ . ~ are kept, and '/' when
 * keep_slash. Returns 0, or -1 when out of memory. */
int vd_curl_escape_append(char **out, const char *s, size_t len, int keep_slash);

#endif
