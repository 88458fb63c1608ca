/*
 * s3.c - the s3://bucket[/prefix] store: any S3 API (AWS, MinIO, s3proxy,
 * Ceph RGW ...). Requests are signed with SigV4 by libcurl
 * (CURLOPT_AWS_SIGV4); the payload is sent as UNSIGNED-PAYLOAD so a large
 * object needs no hashing pass, and it is covered by the LHV1 checksum.
 *
 * Where things come from (docs/stores.md):
 *   credentials  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *                else profile AWS_PROFILE (default "default") of the shared
 *                credentials file (AWS_SHARED_CREDENTIALS_FILE,
 *                ~/.aws/credentials), then of the config file
 *                (AWS_CONFIG_FILE, ~/.aws/config)
 *   region       store.s3.region, AWS_REGION, AWS_DEFAULT_REGION, the
 *                profile's region in the config file, us-east-1
 *   endpoint     store.s3.endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
 *                https://s3.<region>.amazonaws.com
 *   addressing   store.s3.addressing: path (endpoint/bucket/key), virtual
 *                (bucket.endpoint/key), auto = path for a custom endpoint
 *
 * Object keys are encoded with the SigV4 rules (unreserved bytes kept, '/'
 * kept), which is also the canonical form the signature covers, and list
 * queries are sent with their parameters sorted and strictly encoded for
 * the same reason: what libcurl signs is exactly what goes on the wire.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl.h"
#include "store.h"

typedef struct s3 {
    vd_curl_store c;
    char *base_url; /* where keys are appended: ".../bucket" or "scheme://bucket.host" */
    char *prefix;   /* "" or "some/prefix/" */
    char *sigv4;    /* "aws:amz:<region>:s3" */
    char *access_key, *secret_key;
    char *token_hdr; /* "x-amz-security-token: ..." or NULL */
    int page;
} s3;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static const char *first(const char *a, const char *b, const char *c)
{
    if (a && *a) return a;
    if (b && *b) return b;
    return c;
}

/* ------------------------------------------------------------------ */
/* The AWS shared files (~/.aws/credentials, ~/.aws/config). */

typedef struct aws_profile {
    char key_id[256], secret[256], token[4096], region[64];
    int found; /* the section exists */
} aws_profile;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

/* The settings of section [name] of an INI-style AWS file into *p (keys
 * already set are kept: the first file read wins). Returns 0, or -1 when
 * the file cannot be read (a missing file is no error: 0, nothing found). */
static int read_aws_file(const char *path, const char *name, aws_profile *p)
{
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -1;
    char line[8192];
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        char *l = trim(line);
        if (*l == '#' || *l == ';' || !*l) continue;
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (end) *end = 0;
            in = strcmp(trim(l + 1), name) == 0;
            p->found |= in;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!in || !eq) continue;
        *eq = 0;
        char *k = trim(l), *v = trim(eq + 1);
        struct {
            const char *key;
            char *out;
            size_t cap;
        } want[] = {{"aws_access_key_id", p->key_id, sizeof p->key_id},
                    {"aws_secret_access_key", p->secret, sizeof p->secret},
                    {"aws_session_token", p->token, sizeof p->token},
                    {"region", p->region, sizeof p->region}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            if (strcmp(k, want[i].key) == 0 && !want[i].out[0])
                snprintf(want[i].out, want[i].cap, "%s", v);
    }
    fclose(f);
    return 0;
}

/* Profile name's settings: the credentials file's [name], then the config
 * file's [profile name] ([default] for "default"). *cred_path gets the
 * credentials file's path for messages. Returns 0 or -1 (a file that
 * exists but cannot be read). */
static int read_aws_profile(const char *name, aws_profile *p, char *cred_path, size_t cap)
{
    const char *home = env("HOME");
    char conf_path[4096], section[300];
    if (env("AWS_SHARED_CREDENTIALS_FILE"))
        snprintf(cred_path, cap, "%s", env("AWS_SHARED_CREDENTIALS_FILE"));
    else
        snprintf(cred_path, cap, "%s/.aws/credentials", home ? home : "");
    if (env("AWS_CONFIG_FILE"))
        snprintf(conf_path, sizeof conf_path, "%s", env("AWS_CONFIG_FILE"));
    else
        snprintf(conf_path, sizeof conf_path, "%s/.aws/config", home ? home : "");
    memset(p, 0, sizeof *p);
    if ((home || env("AWS_SHARED_CREDENTIALS_FILE")) && read_aws_file(cred_path, name, p))
        return -1;
    if (strcmp(name, "default") == 0)
        snprintf(section, sizeof section, "default");
    else
        snprintf(section, sizeof section, "profile %s", name);
    if ((home || env("AWS_CONFIG_FILE")) && read_aws_file(conf_path, section, p)) return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Requests. */

/* The text of the first <tag>...</tag> in xml[0..len), entities decoded,
 * into out (truncated to cap - 1). Returns 1 when found. */
static int xml_text(const char *xml, size_t len, const char *tag, char *out, size_t cap,
                    const char **end)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = memmem(xml, len, open, strlen(open));
    if (!a) return 0;
    a += strlen(open);
    const char *b = memmem(a, len - (size_t)(a - xml), close, strlen(close));
    if (!b) return 0;
    if (end) *end = b + strlen(close);
    size_t n = 0;
    for (const char *p = a; p < b && n + 1 < cap; p++) {
        char c = *p;
        if (c == '&') {
            static const struct {
                const char *ent;
                char c;
            } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
            size_t i;
            for (i = 0; i < 5; i++) {
                size_t el = strlen(ents[i].ent);
                if ((size_t)(b - p) >= el && memcmp(p, ents[i].ent, el) == 0) {
                    c = ents[i].c;
                    p += el - 1;
                    break;
                }
            }
            if (i == 5 && p[1] == '#') {
                /* &#NNN; or &#xHH;: a code point, written as UTF-8. */
                char *stop;
                unsigned long cp =
                    p[2] == 'x' ? strtoul(p + 3, &stop, 16) : strtoul(p + 2, &stop, 10);
                if (*stop == ';' && cp > 0 && cp < 0x110000 && n + 5 < cap) {
                    if (cp < 0x80) {
                        out[n++] = (char)cp;
                    } else if (cp < 0x800) {
                        out[n++] = (char)(0xc0 | cp >> 6);
                        out[n++] = (char)(0x80 | (cp & 63));
                    } else if (cp < 0x10000) {
                        out[n++] = (char)(0xe0 | cp >> 12);
                        out[n++] = (char)(0x80 | (cp >> 6 & 63));
                        out[n++] = (char)(0x80 | (cp & 63));
                    } else {
                        out[n++] = (char)(0xf0 | cp >> 18);
                        out[n++] = (char)(0x80 | (cp >> 12 & 63));
                        out[n++] = (char)(0x80 | (cp >> 6 & 63));
                        out[n++] = (char)(0x80 | (cp & 63));
                    }
                    p = stop;
                    continue;
                }
            }
        }
        out[n++] = c;
    }
    out[n] = 0;
    return 1;
}

/* An S3 error answer: "<what>: HTTP <status> <Code>: <Message>". */
static vd_err status_error(const char *what, vd_curl_response *resp, vd_error *err)
{
    char code[64] = "", msg[160] = "";
    xml_text((const char *)resp->body, resp->len, "Code", code, sizeof code, NULL);
    xml_text((const char *)resp->body, resp->len, "Message", msg, sizeof msg, NULL);
    vd_err rc = resp->status == 404 && (!*code || strcmp(code, "NoSuchKey") == 0) ? VD_ERR_NOT_FOUND
                                                                                  : VD_ERR_IO;
    if (*code)
        return vd_error_set(err, rc, "%s: HTTP %ld %s%s%s", what, resp->status, code,
                            *msg ? ": " : "", msg);
    return vd_curl_status_error(what, resp, rc, "", err);
}

static char *object_url(const vd_curl_store *c, const char *key)
{
    const s3 *s = (const s3 *)c;
    char *u = NULL;
    if (asprintf(&u, "%s/", s->base_url) < 0) return NULL;
    if (vd_curl_escape_append(&u, s->prefix, strlen(s->prefix), 1) ||
        vd_curl_escape_append(&u, key, strlen(key), 1)) {
        free(u);
        return NULL;
    }
    return u;
}

/* One ListObjectsV2 page: its keys (the store prefix stripped) go to l;
 * *next gets the continuation token (malloc'd) when the listing is
 * truncated, else NULL. */
static vd_err parse_page(s3 *s, const char *what, const vd_curl_response *resp, vd_store_keylist *l,
                         char **next, vd_error *err)
{
    const char *xml = (const char *)resp->body, *p = xml, *end = xml + resp->len;
    size_t plen = strlen(s->prefix);
    char *key = malloc(4096);
    if (!key) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    *next = NULL;
    const char *c;
    while ((c = memmem(p, (size_t)(end - p), "<Contents>", 10))) {
        const char *after;
        if (!xml_text(c, (size_t)(end - c), "Key", key, 4096, &after)) break;
        p = after;
        /* Skip what no put of ours makes: "folder/" markers (consoles and
         * filesystem-backed servers show directories so) and other keys. */
        if (strncmp(key, s->prefix, plen) != 0 || !vd_store_key_valid(key + plen)) continue;
        if (vd_store_keylist_push(l, key + plen, strlen(key + plen))) {
            free(key);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    }
    char trunc[16] = "";
    xml_text(xml, resp->len, "IsTruncated", trunc, sizeof trunc, NULL);
    vd_err rc = VD_OK;
    if (strcmp(trunc, "true") == 0) {
        if (!xml_text(xml, resp->len, "NextContinuationToken", key, 4096, NULL) || !*key)
            rc = vd_error_set(err, VD_ERR_DECODE,
                              "%s: truncated listing without NextContinuationToken", what);
        else if (!(*next = strdup(key)))
            rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    } else if (!memmem(xml, resp->len, "<ListBucketResult", 17)) {
        rc = vd_error_set(err, VD_ERR_DECODE, "%s: answer is not a ListBucketResult", what);
    }
    free(key);
    return rc;
}

static vd_err s3_list(vd_store *st, const char *prefix, char ***keys, size_t *n, vd_error *err)
{
    s3 *s = (s3 *)st;
    vd_store_keylist l = {NULL, 0, 0};
    char what[300], *token = NULL, *prev = NULL;
    snprintf(what, sizeof what, "s3 list prefix \"%s%s\"", s->prefix, prefix);
    vd_err rc = VD_OK;
    do {
        /* Parameters in canonical (sorted) order, values strictly encoded. */
        char *url = NULL, page[48];
        snprintf(page, sizeof page, "list-type=2&max-keys=%d&prefix=", s->page);
        int bad = vd_curl_append(&url, s->base_url) || vd_curl_append(&url, "/?");
        if (!bad && token)
            bad = vd_curl_append(&url, "continuation-token=") ||
                  vd_curl_escape_append(&url, token, strlen(token), 0) || vd_curl_append(&url, "&");
        if (!bad)
            bad = vd_curl_append(&url, page) ||
                  vd_curl_escape_append(&url, s->prefix, strlen(s->prefix), 0) ||
                  vd_curl_escape_append(&url, prefix, strlen(prefix), 0);
        free(prev);
        prev = token; /* a server handing back the same token would loop */
        token = NULL;
        if (bad) {
            free(url);
            rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            break;
        }
        vd_curl_response resp;
        if ((rc = vd_curl_store_get_page(&s->c, url, what, &resp, err))) break;
        rc = parse_page(s, what, &resp, &l, &token, err);
        free(resp.body);
        if (!rc && token && prev && strcmp(token, prev) == 0)
            rc = vd_error_set(err, VD_ERR_DECODE, "%s: the server repeats its continuation token",
                              what);
    } while (!rc && token);
    free(prev);
    free(token);
    return vd_store_keylist_finish(&l, rc, keys, n);
}

static void s3_close(vd_store *st)
{
    s3 *s = (s3 *)st;
    vd_curl_free(s->c.http);
    free(s->base_url);
    free(s->prefix);
    free(s->sigv4);
    free(s->access_key);
    if (s->secret_key) memset(s->secret_key, 0, strlen(s->secret_key));
    free(s->secret_key);
    free(s->token_hdr);
    free(s->c.base.url);
    free(s);
}

static const vd_store_ops s3_ops = {
    "s3", vd_curl_store_put, vd_curl_store_get, vd_curl_store_del, s3_list, s3_close};

/* Bucket names as S3 defines them: 3-63 of a-z 0-9 . -, starting and
 * ending with a letter or digit. */
static int bucket_valid(const char *b, size_t n)
{
    if (n < 3 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-') return 0;
        if ((i == 0 || i == n - 1) && !alnum) return 0;
    }
    return 1;
}

vd_err vd_store_s3_open(vd_store **out, const char *url, const vd_store_options *o, vd_error *err)
{
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    if (!bucket_valid(b, blen) || strchr(url, '?') || strchr(url, '#'))
        return vd_error_set(err, VD_ERR_CONFIG,
                            "store.url: \"%.64s\": expected s3://bucket[/prefix] with a valid "
                            "bucket name (3-63 of a-z 0-9 . -)",
                            url);
    /* Credentials: the environment, else the profile in the shared files
     * (read once, at start). */
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    const char *tok = env("AWS_SESSION_TOKEN");
    const char *profile = first(env("AWS_PROFILE"), NULL, "default");
    char cred_path[4096];
    aws_profile pf;
    if (read_aws_profile(profile, &pf, cred_path, sizeof cred_path))
        return vd_error_set(err, VD_ERR_CONFIG, "store.url: AWS profile \"%.64s\": %s: %s", profile,
                            cred_path, strerror(errno));
    if (!ak || !sk) {
        if (!pf.key_id[0] || !pf.secret[0])
            return vd_error_set(
                err, VD_ERR_CONFIG,
                "store.url: \"%.64s\": no S3 credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or aws_access_key_id and aws_secret_access_key in profile "
                "\"%.64s\" of %.200s%s",
                url, profile, cred_path,
                env("AWS_PROFILE") && !pf.found ? " (no such profile)" : "");
        ak = pf.key_id;
        sk = pf.secret;
        tok = pf.token[0] ? pf.token : NULL;
    }
    const char *region = first(o->s3_region, env("AWS_REGION"),
                               first(env("AWS_DEFAULT_REGION"), pf.region, "us-east-1"));
    const char *endpoint =
        first(o->s3_endpoint, env("AWS_ENDPOINT_URL_S3"), env("AWS_ENDPOINT_URL"));
    const char *addressing = o->s3_addressing && *o->s3_addressing ? o->s3_addressing : "auto";
    int path_style = strcmp(addressing, "path") == 0 ||
                     (strcmp(addressing, "auto") == 0 && (endpoint || memchr(b, '.', blen)));
    if (endpoint && strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "store.s3.endpoint: \"%.64s\": expected http(s)://host[:port]",
                            endpoint);
    if (endpoint) {
        const char *h = strstr(endpoint, "://") + 3, *sl = strchr(h, '/'), *at = strchr(h, '@');
        if (at && (!sl || at < sl))
            return vd_error_set(err, VD_ERR_CONFIG,
                                "store.s3.endpoint: user info in the URL is not supported; "
                                "credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
    }
    if (slash && slash[1]) {
        /* The prefix must be a key itself ("a/b", not "a//b" or "a/./b"):
         * URL normalisation would otherwise put objects where listings
         * do not look. */
        char pre[1100];
        snprintf(pre, sizeof pre, "%s", slash + 1);
        size_t pl = strlen(pre);
        while (pl && pre[pl - 1] == '/') pre[--pl] = 0;
        if (!vd_store_key_valid(pre))
            return vd_error_set(err, VD_ERR_CONFIG,
                                "store.url: \"%.64s\": the prefix must be '/'-separated names "
                                "without empty, \".\" or \"..\" segments",
                                url);
    }
    s3 *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    s->c.base.ops = &s3_ops;
    s->c.name = "s3";
    s->c.object_url = object_url;
    s->c.status = status_error;
    s->page = o->list_page_size > 0 ? o->list_page_size : 1000;
    char *ep = NULL;
    int bad = (endpoint ? asprintf(&ep, "%s", endpoint)
                        : asprintf(&ep, "https://s3.%s.amazonaws.com", region)) < 0;
    if (bad) ep = NULL;
    if (!bad) {
        size_t n = strlen(ep);
        while (n && ep[n - 1] == '/') ep[--n] = 0;
        const char *host = strstr(ep, "://") + 3;
        if (path_style)
            bad = asprintf(&s->base_url, "%s/%.*s", ep, (int)blen, b) < 0;
        else
            bad =
                asprintf(&s->base_url, "%.*s%.*s.%s", (int)(host - ep), ep, (int)blen, b, host) < 0;
        if (bad) s->base_url = NULL;
    }
    free(ep);
    /* The prefix: no leading or trailing '/', then one '/' to end it. */
    const char *pre = slash ? slash : "";
    while (*pre == '/') pre++;
    size_t pl = strlen(pre);
    while (pl && pre[pl - 1] == '/') pl--;
    if (!bad && asprintf(&s->prefix, "%.*s%s", (int)pl, pre, pl ? "/" : "") < 0)
        s->prefix = NULL, bad = 1;
    if (!bad && asprintf(&s->sigv4, "aws:amz:%s:s3", region) < 0) s->sigv4 = NULL, bad = 1;
    if (!bad) bad = !(s->access_key = strdup(ak)) || !(s->secret_key = strdup(sk));
    if (!bad && tok && asprintf(&s->token_hdr, "x-amz-security-token: %s", tok) < 0)
        s->token_hdr = NULL, bad = 1;
    if (!bad) bad = !(s->c.base.url = strdup(url));
    if (bad) {
        s3_close(&s->c.base);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    /* Every request is signed with the payload declared unsigned: a large
     * checkpoint is not hashed twice, and the LHV1 CRC covers it. */
    s->c.shown_prefix = s->prefix;
    s->c.headers[0] = "x-amz-content-sha256: UNSIGNED-PAYLOAD";
    s->c.headers[1] = s->token_hdr;
    s->c.sigv4 = s->sigv4;
    s->c.user = s->access_key;
    s->c.password = s->secret_key;
    vd_err rc = vd_curl_new(&s->c.http, o, err);
    if (rc) {
        s3_close(&s->c.base);
        return rc;
    }
    *out = &s->c.base;
    return VD_OK;
}
