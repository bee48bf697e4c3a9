/* task.c — task status names and the task's JSON forms. */
#include "core/task.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {"pending", "processing", "succeeded", "failed",
                                           "canceled"};

const char *gp_task_status_name(gp_task_status_t s)
{
    return (unsigned)s < 5 ? status_names[s] : "unknown";
}

int gp_task_status_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(status_names[i], s))
            return i;
    return -1;
}

bool gp_task_status_terminal(gp_task_status_t s)
{
    return s >= GP_TASK_SUCCEEDED;
}

void gp_task_clear(gp_task_t *t)
{
    free(t->task_type);
    free(t->provider);
    json_decref(t->params);
    json_decref(t->result);
    free(t->error_code);
    free(t->error_message);
    free(t->idempotency_key);
    free(t->request_hash);
    free(t->webhook);
    memset(t, 0, sizeof *t);
}

static char *dup_or_null(const char *s)
{
    return s ? gp_xstrdup(s) : NULL;
}

void gp_task_copy(gp_task_t *dst, const gp_task_t *src)
{
    *dst = *src;
    dst->task_type = dup_or_null(src->task_type);
    dst->provider = dup_or_null(src->provider);
    dst->params = src->params ? json_deep_copy(src->params) : NULL;
    dst->result = src->result ? json_deep_copy(src->result) : NULL;
    dst->error_code = dup_or_null(src->error_code);
    dst->error_message = dup_or_null(src->error_message);
    dst->idempotency_key = dup_or_null(src->idempotency_key);
    dst->request_hash = dup_or_null(src->request_hash);
    dst->webhook = dup_or_null(src->webhook);
}

static const char *const webhook_event_names[] = {"start", "output", "logs", "completed"};

unsigned gp_webhook_event_parse(const char *name)
{
    for (unsigned i = 0; i < 4; i++)
        if (!strcmp(name, webhook_event_names[i]))
            return 1u << i;
    return 0;
}

json_t *gp_webhook_events_json(unsigned mask)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < 4; i++)
        if (mask & (1u << i))
            json_array_append_new(a, json_string(webhook_event_names[i]));
    return a;
}

static json_t *time_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    gp_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

static int effective_progress(const gp_task_t *t, const gp_hot_state_t *hot)
{
    if (t->status == GP_TASK_SUCCEEDED)
        return 100;
    if (t->status == GP_TASK_PENDING && t->attempts == 0)
        return 0;
    return hot && hot->progress >= 0 ? hot->progress : 0;
}

static json_t *error_json(const gp_task_t *t)
{
    if (!t->error_code)
        return json_null();
    return json_pack("{s:s, s:s}", "code", t->error_code, "message",
                     t->error_message ? t->error_message : "");
}

static json_t *step_json(const gp_task_t *t, const gp_hot_state_t *hot)
{
    (void)t;
    if (hot && !strncmp(hot->step, GP_STEP_PREVIEW, strlen(GP_STEP_PREVIEW)))
        return json_string("preview");
    return hot && hot->step[0] ? json_string(hot->step) : json_null();
}

static void add_preview(json_t *o, const gp_hot_state_t *hot)
{
    size_t n = strlen(GP_STEP_PREVIEW);
    if (hot && !strncmp(hot->step, GP_STEP_PREVIEW, n))
        json_object_set_new(o, "preview_url", json_string(hot->step + n));
}

json_t *gp_task_snapshot(const gp_task_t *t, const gp_hot_state_t *hot)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "status", json_string(gp_task_status_name(t->status)));
    json_object_set_new(o, "progress", json_integer(effective_progress(t, hot)));
    json_object_set_new(o, "step", step_json(t, hot));
    add_preview(o, hot);
    json_object_set_new(o, "result", t->result ? json_incref(t->result) : json_null());
    json_object_set_new(o, "error", error_json(t));
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    return o;
}

const char *gp_task_request_id(const json_t *params)
{
    return json_string_value(json_object_get(params, GP_TASK_REQUEST_ID_PARAM));
}

/* params as clients sent them: without the request id kept inside (new reference). */
static json_t *client_params(const json_t *params)
{
    if (!params)
        return json_object();
    if (!gp_task_request_id(params) && !json_object_get(params, GP_TASK_SURFACE_PARAM))
        return json_incref((json_t *)params);
    json_t *copy = json_copy((json_t *)params); /* shallow: the values are shared */
    json_object_del(copy, GP_TASK_REQUEST_ID_PARAM);
    json_object_del(copy, GP_TASK_SURFACE_PARAM);
    return copy;
}

json_t *gp_task_to_json(const gp_task_t *t, const gp_hot_state_t *hot, const char *public_url)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "task_type", json_string(t->task_type));
    json_object_set_new(o, "provider", json_string(t->provider));
    json_object_set_new(o, "status", json_string(gp_task_status_name(t->status)));
    json_object_set_new(o, "progress", json_integer(effective_progress(t, hot)));
    json_object_set_new(o, "step", step_json(t, hot));
    add_preview(o, hot);
    json_object_set_new(o, "params", client_params(t->params));
    json_object_set_new(o, "result", t->result ? json_incref(t->result) : json_null());
    json_object_set_new(o, "error", error_json(t));
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    json_object_set_new(o, "max_retries", json_integer(t->max_retries));
    json_object_set_new(o, "priority", json_integer(t->priority));
    json_object_set_new(o, "cancel_requested", json_boolean(t->cancel_requested));
    const char *rid = gp_task_request_id(t->params);
    json_object_set_new(o, "request_id", rid ? json_string(rid) : json_null());
    json_object_set_new(o, "created_at", time_or_null(t->created_at));
    json_object_set_new(o, "started_at", time_or_null(t->started_at));
    json_object_set_new(o, "completed_at", time_or_null(t->completed_at));
    json_object_set_new(o, "worker_id", t->worker_id[0] ? json_string(t->worker_id) : json_null());
    if (t->webhook) {
        json_object_set_new(o, "webhook", json_string(t->webhook));
        json_object_set_new(o, "webhook_events_filter", gp_webhook_events_json(t->webhook_events));
    }
    char *get = gp_xasprintf("%s/v1/tasks/%s", public_url, t->id);
    char *cancel = gp_xasprintf("%s/cancel", get), *events = gp_xasprintf("%s/events", get);
    json_object_set_new(
        o, "urls", json_pack("{s:s, s:s, s:s}", "get", get, "cancel", cancel, "events", events));
    free(get);
    free(cancel);
    free(events);
    return o;
}
