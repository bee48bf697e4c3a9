/*
 * workers.c — the workers surface: GET /v1/workers (admin: the live and recently lost worker
 * processes, each with the tasks it runs) and GET /v1/tasks/{id}/attempts (a task's attempts
 * history, for its owner). Both read only: the presence registry and the store.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLDERS_MAX 10000 /* processing tasks read for the `running` lists */
#define ATTEMPTS_MAX 1000

static json_t *iso_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    gp_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

/* "a,b" -> ["a", "b"] */
static json_t *split_queues(const char *s)
{
    json_t *a = json_array();
    while (s && *s) {
        size_t n = strcspn(s, ",");
        if (n)
            json_array_append_new(a, json_stringn(s, n));
        s += n + (s[n] == ',');
    }
    return a;
}

static json_t *worker_json(const gp_worker_info_t *w, const gp_task_holder_t *h, size_t nh,
                           int64_t now)
{
    json_t *running = json_array();
    for (size_t i = 0; i < nh; i++)
        if (!strcmp(h[i].worker_id, w->id))
            json_array_append_new(running, json_string(h[i].task_id));
    int64_t age = now - w->last_beat;
    json_t *o =
        json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:o, s:o, s:o, s:f, s:s, s:o}", "id", w->id,
                  "host", w->host, "pid", w->pid, "version", w->version, "concurrency",
                  w->concurrency, "busy", w->busy, "queues", split_queues(w->queues), "started_at",
                  iso_or_null(w->started_at), "last_heartbeat_at", iso_or_null(w->last_beat),
                  "heartbeat_age_s", (double)(age > 0 ? age : 0) / 1000.0, "status",
                  w->alive ? "alive" : "lost", "running", running);
    return o ? o : json_object(); /* a field that is not UTF-8 (another writer's entry) */
}

static enum MHD_Result list_workers(request_t *r)
{
    gp_runtime_t *rt = r->http->rt;
    gp_worker_info_t *w = NULL;
    size_t n = 0;
    if (gp_presence_list(rt->presence, &w, &n) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, "the worker registry is unreachable", NULL);
    gp_task_holder_t *h = NULL;
    size_t nh = 0;
    if (rt->store->vt->holders_list) {
        h = gp_xcalloc(HOLDERS_MAX, sizeof *h);
        if (rt->store->vt->holders_list(rt->store, h, HOLDERS_MAX, &nh) != 0) {
            free(w);
            free(h);
            return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
        }
    }
    int64_t now = gp_now_ms();
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, worker_json(&w[i], h, nh, now));
    free(w);
    free(h);
    return gp_send_json(r->conn, 200, json_pack("{s:o}", "data", data), NULL, NULL);
}

static json_t *attempt_json(const gp_attempt_t *a)
{
    json_t *err = a->error_code[0] ? json_pack("{s:s, s:s?}", "code", a->error_code, "message",
                                               a->error_message[0] ? a->error_message : NULL)
                                   : NULL;
    json_t *o = json_object();
    json_object_set_new(o, "attempt", json_integer(a->attempt));
    json_object_set_new(o, "worker_id", a->worker_id[0] ? json_string(a->worker_id) : json_null());
    json_object_set_new(o, "started_at", iso_or_null(a->started_at));
    json_object_set_new(o, "completed_at", iso_or_null(a->ended_at));
    json_object_set_new(o, "duration_s",
                        a->ended_at ? json_real((double)(a->ended_at - a->started_at) / 1000.0)
                                    : json_null());
    json_object_set_new(o, "status", json_string(a->status));
    json_object_set_new(o, "error", err ? err : json_null());
    return o;
}

static enum MHD_Result list_attempts(request_t *r)
{
    gp_store_t *st = r->http->rt->store;
    gp_task_t t;
    int rc = gp_tasks_load_visible(r, r->path_params[0], &t);
    if (rc != 0)
        return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no task with this id" : NULL,
                             NULL);
    gp_task_clear(&t);
    gp_attempt_t *a = gp_xcalloc(ATTEMPTS_MAX, sizeof *a);
    size_t n = 0;
    rc = st->vt->attempts_list ? st->vt->attempts_list(st, r->path_params[0], a, ATTEMPTS_MAX, &n)
                               : 0;
    if (rc != 0) {
        free(a);
        return gp_send_error(r->conn, -rc, NULL, NULL);
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, attempt_json(&a[i]));
    free(a);
    return gp_send_json(r->conn, 200, json_pack("{s:o}", "data", data), NULL, NULL);
}

const gp_route_t gp_routes_workers[] = {
    {"GET", "/v1/workers", GP_BODY_NONE, "admin", list_workers, NULL},
    {"GET", "/v1/tasks/{}/attempts", GP_BODY_NONE, "tasks:read", list_attempts, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
