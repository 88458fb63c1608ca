/*
 * http.h - the worker's small HTTP endpoint (libmicrohttpd): GET /metrics
 * (Prometheus text), /healthz, /readyz. What to say comes from callbacks,
 * so this module knows nothing of the worker.
 *
 * /healthz is answered here without a callback: it says the process is
 * alive and serving HTTP, nothing more. Each connection has its own
 * thread, so no request waits for another's callback (docs/worker.md,
 * "HTTP endpoints").
 */
#ifndef VD_HTTP_HTTP_H
#define VD_HTTP_HTTP_H

#include <stdio.h>

#include "common/service_error.h"

typedef struct vd_http vd_http;

/* The callbacks run on the connections' threads, several at once: they
 * must be thread-safe, and should not wait on locks a long operation
 * holds. */
typedef struct vd_http_handlers {
    void *ctx;
    /* Writes the Prometheus exposition text to out. */
    void (*metrics)(void *ctx, FILE *out);
    /* Returns 1 when ready; may write a reason to out either way. */
    int (*ready)(void *ctx, FILE *out);
} vd_http_handlers;

/*
 * Listens on "host:port" (port 0: any free port). On success *out runs
 * until vd_http_stop. Errors: VD_ERR_CONFIG (bad address, naming it),
 * VD_ERR_IO (cannot listen).
 */
vd_err vd_http_start(vd_http **out, const char *listen, const vd_http_handlers *h, vd_error *err);

/* The port actually bound. */
int vd_http_port(const vd_http *s);

/* Stops the server. NULL is accepted. */
void vd_http_stop(vd_http *s);

#endif
