/*
 * storaged.c - the http(s):// store: the lakehouse's storaged service
 * (protocol in schemas/storaged.md).
 *
 *   PUT|GET|DELETE <base>/storage/<key as one escaped path segment>
 *   GET <base>/storage?prefix=P&limit=N[&after=K] -> {"keys":[...], "truncated":bool}
 *
 * The key is escaped like Go's url.PathEscape (vd_store_escape), so '/'
 * travels as %2F and the server decodes it once. An optional bearer token
 * goes in the Authorization header only; it never appears in a message.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl.h"
#include "store.h"

typedef struct storaged {
    vd_curl_store c;
    char *root; /* "<url without trailing '/'>/storage" */
    char *auth; /* "Authorization: Bearer ..." or NULL */
    int page;
} storaged;

/* "<root>/<escaped key>" (malloc'd) or NULL. */
static char *object_url(const vd_curl_store *c, const char *key)
{
    const storaged *s = (const storaged *)c;
    char *esc = vd_store_escape(key, strlen(key)), *u = NULL;
    if (esc && asprintf(&u, "%s/%s", s->root, esc) < 0) u = NULL;
    free(esc);
    return u;
}

/* Maps a non-2xx answer to an error naming the key and the status. */
static vd_err status_error(const char *what, vd_curl_response *resp, vd_error *err)
{
    vd_err code = VD_ERR_IO;
    const char *reason = "";
    if (resp->status == 404) {
        code = VD_ERR_NOT_FOUND;
        reason = "(not found)";
    } else if (resp->status == 401 || resp->status == 403) {
        reason = "(check store.token)";
    }
    return vd_curl_status_error(what, resp, code, reason, err);
}

/* Parses one page; appends its keys to l. Sets *after to the last key
 * (borrowed from l) when the server says more remain. */
static vd_err parse_page(const char *what, const vd_curl_response *resp, const char *prefix,
                         const char *prev, vd_store_keylist *l, const char **after, vd_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb((const char *)resp->body, resp->len, 0, &je);
    json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
    if (!json_is_array(keys)) {
        json_decref(doc);
        return vd_error_set(err, VD_ERR_DECODE, "%s: answer is not {\"keys\": [...]}", what);
    }
    vd_err rc = VD_OK;
    const char *last = NULL;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *v = json_string_value(k);
        if (!v) {
            rc = vd_error_set(err, VD_ERR_DECODE, "%s: keys[%zu] is not a string", what, i);
            break;
        }
        /* A lax server: keys outside the prefix or already seen; and keys no
         * put of ours makes (a NUL inside, "a//b"). */
        if (strncmp(v, prefix, strlen(prefix)) != 0 || (prev && strcmp(v, prev) <= 0) ||
            strlen(v) != json_string_length(k) || !vd_store_key_valid(v))
            continue;
        if (vd_store_keylist_push(l, v, json_string_length(k))) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", what);
            break;
        }
        last = l->k[l->n - 1];
    }
    *after = NULL;
    if (!rc && json_is_true(json_object_get(doc, "truncated"))) {
        /* More remain: the next page starts after this one's last key,
         * which must move forward, or the listing would never end. */
        if (!last)
            rc = vd_error_set(
                err, VD_ERR_DECODE,
                "%s: \"truncated\" page without a new key (the server repeats itself)", what);
        *after = last;
    }
    json_decref(doc);
    return rc;
}

static vd_err sd_list(vd_store *st, const char *prefix, char ***keys, size_t *n, vd_error *err)
{
    storaged *s = (storaged *)st;
    vd_store_keylist l = {NULL, 0, 0};
    char what[300];
    snprintf(what, sizeof what, "storaged list prefix \"%s\"", prefix);
    const char *after = NULL;
    vd_err rc = VD_OK;
    do {
        /* Query values strictly encoded: keys may hold '&', '=', '+', ';'. */
        char *url = NULL, page[32];
        snprintf(page, sizeof page, "&limit=%d", s->page);
        int bad = vd_curl_append(&url, s->root) || vd_curl_append(&url, "?prefix=") ||
                  vd_curl_escape_append(&url, prefix, strlen(prefix), 0) ||
                  vd_curl_append(&url, page);
        if (!bad && after)
            bad = vd_curl_append(&url, "&after=") ||
                  vd_curl_escape_append(&url, after, strlen(after), 0);
        if (bad) {
            free(url);
            rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            break;
        }
        vd_curl_response resp;
        if ((rc = vd_curl_store_get_page(&s->c, url, what, &resp, err))) break;
        rc = parse_page(what, &resp, prefix, after, &l, &after, err);
        free(resp.body);
    } while (!rc && after);
    return vd_store_keylist_finish(&l, rc, keys, n);
}

static void sd_close(vd_store *st)
{
    storaged *s = (storaged *)st;
    vd_curl_free(s->c.http);
    free(s->root);
    if (s->auth) memset(s->auth, 0, strlen(s->auth));
    free(s->auth);
    free(s->c.base.url);
    free(s);
}

static const vd_store_ops storaged_ops = {"storaged",        vd_curl_store_put, vd_curl_store_get,
                                          vd_curl_store_del, sd_list,           sd_close};

vd_err vd_store_storaged_open(vd_store **out, const char *url, const vd_store_options *o,
                              vd_error *err)
{
    const char *host = strstr(url, "://") + 3;
    const char *slash = strchr(host, '/'), *at = strchr(host, '@');
    if (at && (!slash || at < slash))
        return vd_error_set(err, VD_ERR_CONFIG,
                            "store.url: %.*s...: user info in the URL is not supported; put the "
                            "token in store.token (or VECTORD_STORE_TOKEN)",
                            (int)(host - url), url);
    if (!*host || *host == '/' || strchr(url, '?') || strchr(url, '#'))
        return vd_error_set(err, VD_ERR_CONFIG,
                            "store.url: \"%.64s\": expected http(s)://host[:port][/base] "
                            "(no query or fragment)",
                            url);
    storaged *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    s->c.base.ops = &storaged_ops;
    s->c.name = "storaged";
    s->c.shown_prefix = "";
    s->c.object_url = object_url;
    s->c.status = status_error;
    s->page = o->list_page_size > 0 ? o->list_page_size : 1000;
    size_t n = strlen(url);
    while (n && url[n - 1] == '/') n--;
    int bad = !(s->c.base.url = strdup(url));
    if (!bad && asprintf(&s->root, "%.*s/storage", (int)n, url) < 0) s->root = NULL, bad = 1;
    if (!bad && o->token && *o->token &&
        asprintf(&s->auth, "Authorization: Bearer %s", o->token) < 0)
        s->auth = NULL, bad = 1;
    if (bad) {
        sd_close(&s->c.base);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    s->c.headers[0] = s->auth;
    vd_err rc = vd_curl_new(&s->c.http, o, err);
    if (rc) {
        sd_close(&s->c.base);
        return rc;
    }
    *out = &s->c.base;
    return VD_OK;
}
