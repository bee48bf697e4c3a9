/*
 * health.c — the discovery surface: GET /health, GET / and GET /v1/task-types.
 */
#include "api/reply.h"
#include "core/util.h"
#include "runtime/readiness.h"
#include "worker/worker.h"

#include <string.h>

static enum MHD_Result task_types(request_t *r)
{
    char *copy = gp_xmalloc(r->http->task_types_len);
    memcpy(copy, r->http->task_types_json, r->http->task_types_len);
    return gp_send_text(r->conn, 200, copy, r->http->task_types_len, "application/json", NULL);
}

/* Liveness: answers from memory, touches no dependency (that is /ready's job), so a slow
 * database never gets a healthy process restarted. */
static enum MHD_Result health(request_t *r)
{
    return gp_send_json(r->conn, 200, gp_liveness(r->http->rt, GP_HTTP_VERSION), NULL, NULL);
}

static void readiness_job(request_t *r)
{
    r->job_body = gp_readiness(r->http->rt, &r->job_ok);
}

/* Readiness runs store, queue and storage round trips: on the offload pool. */
static enum MHD_Result ready(request_t *r)
{
    gp_http_offload(r, readiness_job);
    return MHD_YES;
}

static enum MHD_Result ready_finish(request_t *r)
{
    json_t *body = r->job_body;
    r->job_body = NULL;
    return gp_send_json(r->conn, r->job_ok ? 200 : 503, body, NULL, NULL);
}

static enum MHD_Result root(request_t *r)
{
    json_t *body = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "name", "genpulse", "version",
                             GP_HTTP_VERSION, "links", "tasks", "/v1/tasks", "task_types",
                             "/v1/task-types", "health", "/health");
    json_object_set_new(json_object_get(body, "links"), "ready", json_string("/ready"));
    return gp_send_json(r->conn, 200, body, NULL, NULL);
}

/* Order matters only within a path (Allow lists methods in row order). */
const gp_route_t gp_routes_health[] = {
    {"GET", "/v1/task-types", GP_BODY_NONE, "tasks:read", task_types, NULL},
    {"GET", "/health", GP_BODY_NONE, NULL, health, NULL},
    {"GET", "/ready", GP_BODY_NONE, NULL, ready, ready_finish},
    {"GET", "/", GP_BODY_NONE, NULL, root, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
