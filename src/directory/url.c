/*
 * url.c - parses directory.redis_url (see url.h). Errors name the key and
 * never quote the URL, which may hold a password.
 */
#include "url.h"

#include <stdio.h>
#include <string.h>

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated); -1 when it
 * does not fit or an escape is malformed. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (j + 1 >= cap) return -1;
        out[j++] = (char)c;
    }
    out[j] = '\0';
    return 0;
}

/* A non-negative decimal integer s[0..n) at most max; -1 otherwise. */
static long parse_uint(const char *s, size_t n, long max)
{
    if (n == 0 || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

#define URL_FORMS "redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]"

vd_err vd_redis_url_parse(const char *url, vd_redis_url *out, vd_error *err)
{
    vd_redis_url u;
    memset(&u, 0, sizeof u);
    if (!url || !*url)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "directory.redis_url: empty (expected " URL_FORMS ")");
    if (strncmp(url, "rediss://", 9) == 0)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "directory.redis_url: rediss:// (TLS) is not supported by hiredis "
                            "0.14; use a TLS tunnel to a local port, or a unix socket");
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7, *q = strchr(path, '?');
        size_t n = q ? (size_t)(q - path) : strlen(path);
        if (n == 0 || path[0] != '/')
            return vd_error_set(err, VD_ERR_CONFIG,
                                "directory.redis_url: unix:// needs an absolute socket path "
                                "(unix:///run/redis/redis.sock)");
        if (n >= sizeof u.path)
            return vd_error_set(err, VD_ERR_CONFIG, "directory.redis_url: socket path too long");
        memcpy(u.path, path, n);
        if (q) {
            long db = strncmp(q, "?db=", 4) == 0 ? parse_uint(q + 4, strlen(q + 4), 1000000) : -1;
            if (db < 0)
                return vd_error_set(err, VD_ERR_CONFIG,
                                    "directory.redis_url: the only query a unix:// URL takes is "
                                    "?db=N (a database number)");
            u.db = (int)db;
        }
        *out = u;
        return VD_OK;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return vd_error_set(err, VD_ERR_CONFIG, "directory.redis_url: expected " URL_FORMS);
    const char *s = url + 8;
    /* userinfo ends at the last '@' (an unescaped '@' or '/' in a password
     * is tolerated); the host part ends at '/'. */
    const char *at = strrchr(s, '@');
    const char *hp = s;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon)
            return vd_error_set(err, VD_ERR_CONFIG,
                                "directory.redis_url: credentials must be [user]:password@ "
                                "(a ':' before the password)");
        if (unescape(s, (size_t)(colon - s), u.user, sizeof u.user) ||
            unescape(colon + 1, (size_t)(at - colon - 1), u.password, sizeof u.password))
            return vd_error_set(err, VD_ERR_CONFIG,
                                "directory.redis_url: user or password too long or badly "
                                "percent-escaped");
        hp = at + 1;
    }
    const char *slash = strchr(hp, '/');
    size_t hlen = slash ? (size_t)(slash - hp) : strlen(hp);
    if (memchr(hp, '?', hlen) || memchr(hp, '#', hlen) || (slash && strpbrk(slash, "?#")))
        return vd_error_set(
            err, VD_ERR_CONFIG,
            "directory.redis_url: query strings are not supported (expected " URL_FORMS ")");
    const char *host = hp, *port = NULL;
    size_t host_len = hlen;
    if (hlen && hp[0] == '[') {
        const char *close = memchr(hp, ']', hlen);
        if (!close)
            return vd_error_set(err, VD_ERR_CONFIG, "directory.redis_url: unclosed [ in the host");
        host = hp + 1;
        host_len = (size_t)(close - hp - 1);
        if (close + 1 < hp + hlen) {
            if (close[1] != ':')
                return vd_error_set(err, VD_ERR_CONFIG,
                                    "directory.redis_url: expected :port after ]");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', hlen);
        if (colon) {
            host_len = (size_t)(colon - hp);
            port = colon + 1;
        }
    }
    if (host_len == 0)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "directory.redis_url: no host (expected " URL_FORMS ")");
    if (host_len >= sizeof u.host)
        return vd_error_set(err, VD_ERR_CONFIG, "directory.redis_url: host too long");
    memcpy(u.host, host, host_len);
    u.port = 6379;
    if (port) {
        long p = parse_uint(port, (size_t)(hp + hlen - port), 65535);
        if (p < 1)
            return vd_error_set(err, VD_ERR_CONFIG,
                                "directory.redis_url: the port must be a number in 1..65535");
        u.port = (int)p;
    }
    if (slash && slash[1]) {
        long db = parse_uint(slash + 1, strlen(slash + 1), 1000000);
        if (db < 0)
            return vd_error_set(err, VD_ERR_CONFIG,
                                "directory.redis_url: the path must be a database number "
                                "(redis://host:6379/2)");
        u.db = (int)db;
    }
    *out = u;
    return VD_OK;
}

void vd_redis_url_where(const vd_redis_url *u, char *buf, size_t cap)
{
    if (u->path[0])
        snprintf(buf, cap, "unix:%s", u->path);
    else if (strchr(u->host, ':'))
        snprintf(buf, cap, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, cap, "%s:%d", u->host, u->port);
}
