/*
 * url.h - directory.redis_url: where the fleet directory's Redis is and how
 * to log in (docs/directory.md). Pure string handling, no I/O: conn.c
 * dials what vd_redis_url_parse returns, and every message or log line that
 * names the server uses vd_redis_url_where, which never shows the password.
 */
#ifndef VD_DIRECTORY_URL_H
#define VD_DIRECTORY_URL_H

#include <stddef.h>

#include "common/service_error.h"

/*
 * A parsed directory.redis_url:
 *   redis://[[user]:password@]host[:port][/db]   (port 6379, db 0 by default;
 *                                                 host may be [IPv6])
 *   unix:///path/to/redis.sock[?db=N]
 * Percent-escapes in user and password are decoded.
 */
typedef struct vd_redis_url {
    char host[256];     /* empty for a unix socket */
    int port;           /* 0 for a unix socket */
    char path[256];     /* the unix socket, or empty */
    char user[128];     /* empty: AUTH with the password alone (or no AUTH) */
    char password[256]; /* empty: no AUTH */
    int db;
} vd_redis_url;

/*
 * Parses url into *out; *out is untouched on failure. Errors: VD_ERR_CONFIG
 * with a message that starts with "directory.redis_url: " and never
 * contains the password.
 */
vd_err vd_redis_url_parse(const char *url, vd_redis_url *out, vd_error *err);

/* Writes "host:port", "[v6]:port" or "unix:<path>" (never the password)
 * into buf (cap bytes, NUL-terminated, truncated to fit). */
void vd_redis_url_where(const vd_redis_url *u, char *buf, size_t cap);

#endif
