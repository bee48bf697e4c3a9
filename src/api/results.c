/*
 * results.c — GET /v1/tasks/{id}/result: a finished task's outcome in one read (seed 004's
 * result endpoint). Finished (succeeded, failed, canceled): 200 with {id, status, result,
 * error}, outputs linked afresh as in GET /v1/tasks/{id}; still pending or processing: 409
 * task_not_finished naming the status; unknown or another user's id: 404.
 *
 * A store read on the event thread, like GET /v1/tasks/{id}.
 */
#include "api/reply.h"
#include "core/errors.h"

#include <stdio.h>

static enum MHD_Result get_result(request_t *r)
{
    gp_task_t t;
    int rc = gp_tasks_load_visible(r, r->path_params[0], &t);
    if (rc != 0)
        return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no task with this id" : NULL,
                             NULL);
    const char *status = gp_task_status_name(t.status);
    if (!gp_task_status_terminal(t.status)) {
        char msg[128];
        snprintf(msg, sizeof msg, "the task is %s; its result is ready once it finishes", status);
        json_t *details = json_pack("[{s:s, s:s}]", "field", "status", "message", status);
        gp_task_clear(&t);
        return gp_send_error_full(r->conn, GP_E_TASK_NOT_FINISHED, NULL, msg, details,
                                  MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    json_t *full = gp_task_json(r->http, &t); /* fresh links to the outputs */
    gp_task_clear(&t);
    json_t *body =
        json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(full, "id"), "status",
                  json_object_get(full, "status"), "result", json_object_get(full, "result"),
                  "error", json_object_get(full, "error"));
    json_decref(full);
    return gp_send_json(r->conn, 200, body, NULL, NULL);
}

const gp_route_t gp_routes_results[] = {
    {"GET", "/v1/tasks/{}/result", GP_BODY_NONE, "tasks:read", get_result, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
