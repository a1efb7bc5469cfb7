/* http.c: GET /metrics (Prometheus text) and /healthz on a local port, served by libmicrohttpd; see http.h.
 *
 * The daemon binds to a configured address (127.0.0.1 by default) with MHD's internal polling thread; each
 * request renders the stats into a fresh buffer that MHD frees after sending. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xmcd_http {
    struct MHD_Daemon *daemon;
    xmcd_http_render_fn render;
    void *ctx;
};

static size_t xmcd_http_render_stats(void *ctx, char *buf, size_t size) { return xmcd_stats_prometheus(ctx, buf, size); }

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result xmcd_mhd_result;
#else
typedef int xmcd_mhd_result;
#endif

#define XMCD_HTTP_TIMEOUT_S 10
#define XMCD_HTTP_MAX_CONN 64

static xmcd_mhd_result xmcd_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version, const char *upload_data,
                                        size_t *upload_data_size, void **con_cls)
{
    xmcd_http *http = cls;
    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        resp = MHD_create_response_from_buffer(19, (void *)"method not allowed\n", MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, "Allow", "GET, HEAD");
    } else if (!strcmp(url, "/metrics")) {
        size_t cap = 64 * 1024;
        char *buf = malloc(cap);
        if (!buf) return MHD_NO;
        size_t len = http->render(http->ctx, buf, cap);
        resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(buf);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    } else if (!strcmp(url, "/healthz")) {
        resp = MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        resp = MHD_create_response_from_buffer(10, (void *)"not found\n", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    xmcd_mhd_result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

xmcd_http *xmcd_http_start(const char *addr, int port, xmcd_stats *stats, char *err, size_t errlen)
{
    return xmcd_http_start_render(addr, port, xmcd_http_render_stats, stats, err, errlen);
}

xmcd_http *xmcd_http_start_render(const char *addr, int port, xmcd_http_render_fn render, void *ctx, char *err,
                                  size_t errlen)
{
    err[0] = 0;
    if (port <= 0) return NULL;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "stats.http_addr %s is not an IPv4 address", addr);
        return NULL;
    }
    xmcd_http *http = calloc(1, sizeof *http);
    if (!http) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    http->render = render;
    http->ctx = ctx;
    /* a scraper needs one short request at a time: a client that sends nothing for XMCD_HTTP_TIMEOUT_S is
     * dropped, and past XMCD_HTTP_MAX_CONN connections new ones are refused, so idle or slow clients cannot hold
     * the endpoint (or the process's descriptors) */
    http->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
                                    xmcd_http_handle, http, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)XMCD_HTTP_TIMEOUT_S,
                                    MHD_OPTION_CONNECTION_LIMIT, (unsigned)XMCD_HTTP_MAX_CONN, MHD_OPTION_END);
    if (!http->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d", addr, port);
        free(http);
        return NULL;
    }
    return http;
}

void xmcd_http_stop(xmcd_http *http)
{
    if (!http) return;
    MHD_stop_daemon(http->daemon);
    free(http);
}
