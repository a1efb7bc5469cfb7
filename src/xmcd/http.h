/* http.h: the local HTTP endpoint that serves xmcd's metrics in Prometheus text format (GET /metrics).
 *
 * libmicrohttpd runs it on its own thread and reads the stats' atomics; /healthz answers "ok". */
#ifndef XMCD_HTTP_H
#define XMCD_HTTP_H

#include <stddef.h>

#include "stats.h"

typedef struct xmcd_http xmcd_http;

/* Listens on addr:port (port 0 = nothing started, NULL returned with err empty). NULL + err on failure. */
xmcd_http *xmcd_http_start(const char *addr, int port, xmcd_stats *stats, char *err, size_t errlen);
/* The same with another program's metrics: render writes the Prometheus text into buf (64 KiB) and returns its
 * length; it runs on MHD's thread. */
typedef size_t (*xmcd_http_render_fn)(void *ctx, char *buf, size_t size);
xmcd_http *xmcd_http_start_render(const char *addr, int port, xmcd_http_render_fn render, void *ctx, char *err,
                                  size_t errlen);
void xmcd_http_stop(xmcd_http *http);

#endif
