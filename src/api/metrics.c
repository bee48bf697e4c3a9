/*
 * metrics.c — GET /metrics: the Prometheus text exposition (core/metrics.h).
 *
 * The scrape reads the queue and the worker registry, which in distributed mode are Redis
 * round trips, so the text is built on the offload pool and sent when the connection
 * resumes. Scope admin: an open loopback server answers anyone, otherwise Prometheus sends
 * an admin key as its bearer token (docs/api.md "Metrics").
 */
#include "api/reply.h"
#include "core/metrics.h"

#include <stdlib.h>

#define EXPOSITION_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void build_text(request_t *r)
{
    r->metrics_text = gp_metrics_text(r->http->rt, &r->metrics_len);
}

static enum MHD_Result metrics_start(request_t *r)
{
    gp_http_offload(r, build_text);
    return MHD_YES;
}

static enum MHD_Result metrics_finish(request_t *r)
{
    char *text = r->metrics_text;
    r->metrics_text = NULL; /* gp_send_text frees it, also on failure */
    return gp_send_text(r->conn, 200, text, r->metrics_len, EXPOSITION_TYPE, NULL);
}

const gp_route_t gp_routes_metrics[] = {
    {"GET", "/metrics", GP_BODY_NONE, "admin", metrics_start, metrics_finish},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
