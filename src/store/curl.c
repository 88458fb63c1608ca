/*
 * curl.c - the HTTP client of the remote stores (see curl.h).
 *
 * Design note: one easy handle per store, behind a mutex. The worker calls
 * the store from its store thread only (checkpoints and loads, one at a
 * time: src/worker/taskq.h), so the lock is uncontended there; reusing the
 * handle keeps the connection (and TLS session) alive between the many
 * small objects of a checkpoint. curl_easy_reset between requests
 * clears options but keeps the connection cache.
 */
#include "curl.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct vd_curl {
    pthread_mutex_t mu;
    CURL *easy;
    vd_store_options o;
    uint64_t rng; /* jitter */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

vd_err vd_curl_new(vd_curl **out, const vd_store_options *o, vd_error *err)
{
    pthread_once(&global_once, global_init);
    if (global_rc)
        return vd_error_set(err, VD_ERR_IO, "libcurl: %s", curl_easy_strerror(global_rc));
    vd_curl *h = calloc(1, sizeof *h);
    if (!h) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    h->easy = curl_easy_init();
    if (!h->easy) {
        free(h);
        return vd_error_set(err, VD_ERR_NOMEM, "libcurl: cannot create a handle");
    }
    pthread_mutex_init(&h->mu, NULL);
    h->o = *o; /* the numbers; the strings are the backends' business */
    h->o.token = h->o.s3_endpoint = h->o.s3_region = h->o.s3_addressing = NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    *out = h;
    return VD_OK;
}

void vd_curl_free(vd_curl *h)
{
    if (!h) return;
    curl_easy_cleanup(h->easy);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ------------------------------------------------------------------ */
/* Bodies. */

typedef struct upload {
    const uint8_t *p;
    size_t len, pos;
} upload;

static size_t read_cb(char *dst, size_t size, size_t n, void *ctx)
{
    upload *u = ctx;
    size_t want = size * n, left = u->len - u->pos;
    if (want > left) want = left;
    memcpy(dst, u->p + u->pos, want);
    u->pos += want;
    return want;
}

/* libcurl rewinds when it must resend (a redirect, an auth round trip). */
static int seek_cb(void *ctx, curl_off_t off, int origin)
{
    upload *u = ctx;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > u->len) return CURL_SEEKFUNC_FAIL;
    u->pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* The largest answer accepted: S3's largest single PUT. A bigger
 * Content-Length (or a chunked answer that never ends) is refused, not
 * allocated. */
#define MAX_BODY ((size_t)5 << 30)

typedef struct download {
    CURL *easy;
    uint8_t *buf;
    size_t len, cap;
    int oom, too_big;
} download;

static size_t write_cb(char *src, size_t size, size_t n, void *ctx)
{
    download *d = ctx;
    size_t got = size * n;
    if (got > MAX_BODY - d->len) {
        d->too_big = 1;
        return 0;
    }
    if (d->len + got + 1 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 0;
        if (!d->cap) {
            /* First bytes: size the buffer from Content-Length, so a large
             * object is received into its final place without regrowing. */
            curl_off_t cl = -1;
            if (curl_easy_getinfo(d->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
                cl > 0) {
                if ((uint64_t)cl > MAX_BODY) {
                    d->too_big = 1;
                    return 0;
                }
                cap = (size_t)cl + 1;
            }
        }
        if (cap < d->len + got + 1) cap = d->len + got + 1 < 4096 ? 4096 : (d->len + got + 1) * 2;
        uint8_t *b = realloc(d->buf, cap);
        if (!b) {
            d->oom = 1;
            return 0; /* aborts the transfer */
        }
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, src, got);
    d->len += got;
    d->buf[d->len] = 0;
    return got;
}

/* ------------------------------------------------------------------ */
/* Retries. */

static int retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return 1;
    default:
        return 0;
    }
}

static int retryable_status(long status)
{
    return status >= 500 || status == 429;
}

static uint64_t next_rand(vd_curl *h)
{
    /* xorshift64*: enough for jitter. */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * 2685821657736338717ull;
}

/* Full jitter: a uniform delay in [0, min(max, base * 2^attempt)]. */
static void backoff(vd_curl *h, int attempt)
{
    double cap = (double)h->o.retry_backoff_ms;
    for (int i = 0; i < attempt && cap < (double)h->o.retry_backoff_max_ms; i++) cap *= 2;
    if (cap > (double)h->o.retry_backoff_max_ms) cap = (double)h->o.retry_backoff_max_ms;
    double ms = cap * (double)(next_rand(h) >> 11) / 9007199254740992.0;
    struct timespec ts = {(time_t)(ms / 1000),
                          (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static CURLcode perform_once(vd_curl *h, const vd_curl_request *rq, struct curl_slist *hdrs,
                             upload *up, download *down, long *status)
{
    CURL *e = h->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->o.request_timeout_ms);
    /* A stalled transfer (a black-holed peer) is cut well before the total
     * timeout: under 1 KB/s for 30 s. */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, down);
    if (rq->sigv4) {
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, rq->sigv4);
        curl_easy_setopt(e, CURLOPT_USERNAME, rq->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, rq->password);
    }
    if (strcmp(rq->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, up);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, up);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->len);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    CURLcode c = curl_easy_perform(e);
    *status = 0;
    if (c == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    return c;
}

vd_err vd_curl_do(vd_curl *h, const vd_curl_request *rq, vd_curl_response *resp, vd_error *err)
{
    struct curl_slist *hdrs = NULL;
    for (const char **p = rq->headers; p && *p; p++) {
        struct curl_slist *n = curl_slist_append(hdrs, *p);
        if (!n) {
            curl_slist_free_all(hdrs);
            return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", rq->what);
        }
        hdrs = n;
    }
    pthread_mutex_lock(&h->mu);
    upload up = {rq->body, rq->body ? rq->body_len : 0, 0};
    download down = {.easy = h->easy};
    vd_err rc = VD_OK;
    long status = 0;
    for (int attempt = 0;; attempt++) {
        up.pos = 0;
        down.len = 0;
        CURLcode c = perform_once(h, rq, hdrs, &up, &down, &status);
        int last = attempt >= h->o.retries;
        if (down.oom) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory for the answer", rq->what);
            break;
        }
        if (down.too_big) {
            rc = vd_error_set(err, VD_ERR_IO, "%s: the answer is larger than %zu bytes", rq->what,
                              MAX_BODY);
            break;
        }
        if (c == CURLE_OK && !retryable_status(status)) break;
        if (c == CURLE_OK && last) break; /* the caller reports the 5xx */
        if (c != CURLE_OK && (last || !retryable_curl(c))) {
            rc = vd_error_set(err, c == CURLE_OPERATION_TIMEDOUT ? VD_ERR_TIMEOUT : VD_ERR_IO,
                              "%s: %s (after %d attempt%s)", rq->what, curl_easy_strerror(c),
                              attempt + 1, attempt ? "s" : "");
            break;
        }
        backoff(h, attempt);
    }
    pthread_mutex_unlock(&h->mu);
    curl_slist_free_all(hdrs);
    if (rc) {
        free(down.buf);
        return rc;
    }
    if (!down.buf) {
        down.buf = malloc(1);
        if (!down.buf) return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", rq->what);
        down.buf[0] = 0;
    }
    resp->status = status;
    resp->body = down.buf;
    resp->len = down.len;
    return VD_OK;
}

/* Fills *rq for a request of s: its headers, and a Content-Type when there
 * is a body. hdrs needs room for 5 entries and must outlive *rq. */
static void store_request(const vd_curl_store *s, vd_curl_request *rq, const char **hdrs,
                          const char *method, const char *url, const char *what, const void *body,
                          size_t len)
{
    size_t nh = 0;
    for (size_t i = 0; i < 3 && s->headers[i]; i++) hdrs[nh++] = s->headers[i];
    if (body) hdrs[nh++] = "Content-Type: application/octet-stream";
    hdrs[nh] = NULL;
    *rq = (vd_curl_request){.method = method,
                            .url = url,
                            .what = what,
                            .headers = hdrs,
                            .body = body,
                            .body_len = len,
                            .sigv4 = s->sigv4,
                            .user = s->user,
                            .password = s->password};
}

/* One request of s to url (freed here). */
static vd_err send_request(const vd_curl_store *s, const char *method, char *url, const char *what,
                           const void *body, size_t len, vd_curl_response *resp, vd_error *err)
{
    const char *hdrs[5];
    vd_curl_request rq;
    store_request(s, &rq, hdrs, method, url, what, body, len);
    vd_err rc = vd_curl_do(s->http, &rq, resp, err);
    free(url);
    return rc;
}

vd_err vd_curl_store_get_page(const vd_curl_store *s, char *url, const char *what,
                              vd_curl_response *resp, vd_error *err)
{
    vd_err rc = send_request(s, "GET", url, what, NULL, 0, resp, err);
    if (rc || resp->status == 200) return rc;
    rc = s->status(what, resp, err);
    free(resp->body);
    resp->body = NULL;
    return rc;
}

/* PUT body, GET into *out (malloc'd), or DELETE of key. */
static vd_err object(vd_curl_store *s, const char *method, const char *key, const void *body,
                     size_t len, uint8_t **out, size_t *out_len, vd_error *err)
{
    char *url = s->object_url(s, key), what[300];
    if (!url) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    char kb[84];
    snprintf(what, sizeof what, "%s %s %s%s", s->name, method, s->shown_prefix,
             vd_store_key_brief(key, kb));
    vd_curl_response resp;
    vd_err rc = send_request(s, method, url, what, body, len, &resp, err);
    if (rc) return rc;
    if (resp.status / 100 == 2 && (!out || resp.status == 200)) {
        if (out) {
            *out = resp.body;
            *out_len = resp.len;
            return VD_OK;
        }
        free(resp.body);
        return VD_OK;
    }
    rc = s->status(what, &resp, err);
    free(resp.body);
    return rc == VD_ERR_NOT_FOUND && strcmp(method, "DELETE") == 0 ? VD_OK : rc;
}

vd_err vd_curl_store_put(vd_store *st, const char *key, const void *buf, size_t len, vd_error *err)
{
    /* A zero-length object still needs a non-NULL body to be a PUT. */
    return object((vd_curl_store *)st, "PUT", key, len ? buf : "", len, NULL, NULL, err);
}

vd_err vd_curl_store_get(vd_store *st, const char *key, uint8_t **buf, size_t *len, vd_error *err)
{
    return object((vd_curl_store *)st, "GET", key, NULL, 0, buf, len, err);
}

vd_err vd_curl_store_del(vd_store *st, const char *key, vd_error *err)
{
    return object((vd_curl_store *)st, "DELETE", key, NULL, 0, NULL, NULL, err);
}

vd_err vd_curl_status_error(const char *what, const vd_curl_response *resp, vd_err code,
                            const char *reason, vd_error *err)
{
    char snippet[96];
    size_t n = 0;
    for (size_t i = 0; i < resp->len && n + 1 < sizeof snippet; i++) {
        unsigned char c = resp->body[i];
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        if (c < 0x20 || c >= 0x7f) continue;
        if (c == ' ' && n && snippet[n - 1] == ' ') continue;
        snippet[n++] = (char)c;
    }
    while (n && snippet[n - 1] == ' ') n--;
    snippet[n] = 0;
    return vd_error_set(err, code, "%s: HTTP %ld%s%s%s%s", what, resp->status,
                        reason && *reason ? " " : "", reason ? reason : "", n ? ": " : "", snippet);
}

/* ------------------------------------------------------------------ */
/* Escaping. */

int vd_curl_append(char **out, const char *t)
{
    size_t a = *out ? strlen(*out) : 0, b = strlen(t);
    char *p = realloc(*out, a + b + 1);
    if (!p) return -1;
    memcpy(p + a, t, b + 1);
    *out = p;
    return 0;
}

int vd_curl_escape_append(char **out, const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t old = *out ? strlen(*out) : 0;
    char *b = realloc(*out, old + 3 * len + 1);
    if (!b) return -1;
    char *p = b + old;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = 0;
    *out = b;
    return 0;
}
