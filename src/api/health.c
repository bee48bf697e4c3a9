/*
 * health.c — the discovery surface: GET /health, GET / and GET /v1/task-types.
 */
#include "api/reply.h"
#include "core/util.h"
#include "worker/worker.h"

#include <string.h>

static enum MHD_Result task_types(request_t *r)
{
    char *copy = gp_xmalloc(r->http->task_types_len);
    memcpy(copy, r->http->task_types_json, r->http->task_types_len);
    return gp_send_text(r->conn, 200, copy, r->http->task_types_len, "application/json", NULL);
}

static enum MHD_Result health(request_t *r)
{
    gp_runtime_t *rt = r->http->rt;
    json_t *workers = json_pack("{s:i, s:i}", "concurrency", gp_worker_pool_size(rt->workers),
                                "busy", gp_worker_pool_busy(rt->workers));
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:I, s:o}", "status", "ok", "version", GP_HTTP_VERSION,
                  "uptime_s", (json_int_t)((gp_now_ms() - rt->started_at) / 1000), "queue_depth",
                  (json_int_t)gp_queue_depth(rt->queue), "workers", workers);
    return gp_send_json(r->conn, 200, body, NULL, NULL);
}

static enum MHD_Result root(request_t *r)
{
    json_t *body = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "name", "genpulse", "version",
                             GP_HTTP_VERSION, "links", "tasks", "/v1/tasks", "task_types",
                             "/v1/task-types", "health", "/health");
    return gp_send_json(r->conn, 200, body, NULL, NULL);
}

/* Order matters only within a path (Allow lists methods in row order). */
const gp_route_t gp_routes_health[] = {
    {"GET", "/v1/task-types", GP_BODY_NONE, "tasks:read", task_types, NULL},
    {"GET", "/health", GP_BODY_NONE, NULL, health, NULL},
    {"GET", "/", GP_BODY_NONE, NULL, root, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
