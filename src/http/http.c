/*
 * http.c - see http.h.
 *
 * One thread per connection (libmicrohttpd's listening thread accepts and
 * starts it): a request never waits for another one's handler, so a slow
 * /metrics scrape cannot delay the liveness probe. A thread pool would
 * still let a few slow scrapes occupy every thread. Threads are bounded by
 * MAX_CONNECTIONS; beyond it libmicrohttpd refuses connections, and idle
 * keep-alive connections close after TIMEOUT_S. poll() rather than
 * select() (MHD_USE_AUTO), so a descriptor above FD_SETSIZE is no problem.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CONNECTIONS = 64, TIMEOUT_S = 10 };

struct vd_http {
    struct MHD_Daemon *d;
    vd_http_handlers h;
    int port;
};

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    vd_http *s = cls;
    char *body = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&body, &len);
    if (!out) return MHD_NO;
    unsigned status = 200;
    const char *type = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = 405;
        fputs("method not allowed\n", out);
    } else if (strcmp(url, "/metrics") == 0) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        s->h.metrics(s->h.ctx, out);
    } else if (strcmp(url, "/healthz") == 0) {
        fputs("ok\n", out);
    } else if (strcmp(url, "/readyz") == 0) {
        int ready = s->h.ready(s->h.ctx, out);
        status = ready ? 200 : 503;
        fputs(ready ? "ready\n" : "not ready\n", out);
    } else {
        status = 404;
        fputs("not found: try /metrics, /healthz or /readyz\n", out);
    }
    fclose(out);
    return respond(c, status, type, body, len);
}

vd_err vd_http_start(vd_http **out, const char *listen, const vd_http_handlers *h, vd_error *err)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return vd_error_set(err, VD_ERR_CONFIG, "http.listen: \"%s\" is not host:port", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return vd_error_set(err, VD_ERR_CONFIG,
                            "http.listen: \"%s\" is not an IPv4 host:port (e.g. 127.0.0.1:9464)",
                            listen);
    vd_http *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "http: out of memory");
    s->h = *h;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_AUTO | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TIMEOUT_S, MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return vd_error_set(err, VD_ERR_IO, "http.listen: cannot listen on %s", listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (int)port;
    *out = s;
    return VD_OK;
}

int vd_http_port(const vd_http *s)
{
    return s->port;
}

void vd_http_stop(vd_http *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s);
}
