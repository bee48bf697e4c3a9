/*
 * replicate.c — the Replicate-compatible predictions: create (POST /v1/predictions and
 * POST /v1/models/{owner}/{name}/predictions), get, list, cancel; a task as a prediction.
 *
 * DESIGN
 * - A prediction is a task. Create translates the Replicate body into a GenPulse submission
 *   (the model's task type, its provider and fixed params, the input renamed and filtered as
 *   the model table says) and goes through the create path /v1/tasks uses
 *   (gp_tasks_begin_create / gp_tasks_create_outcome): same validation, plans, credits,
 *   idempotency, commit. What Replicate clients see of it (the model name they asked for, the
 *   version, the input as given) rides in params under GP_REPLICATE_PARAM, so any task,
 *   whichever surface made it, renders as a prediction.
 * - Prefer: wait suspends the create's connection (gp_http_wait_task: no thread held) and
 *   answers when the task ends or the wait runs out. A wait that ran out answers status
 *   "starting" whatever the task is doing: both official clients take any other status after
 *   a blocking create as final (research/genai_apis.md §1.3).
 * - Errors on these paths are problem+json (reply.c's style, chosen in server.c by path).
 */
#include "api/replicate.h"
#include "api/reply.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/signed_link.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_DEFAULT 100 /* Replicate's page size */

/* ---------------------------------------------------------------- rendering */

void gp_replicate_stream_path(const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "/v1/predictions/%s/stream", id);
}

static const json_t *rep_view(const gp_task_t *t)
{
    return json_object_get(t->params, GP_REPLICATE_PARAM);
}

/* The model a task renders as: the one its prediction named, else genpulse/<task type>. */
static const gp_rep_model_t *task_model(gp_http_t *h, const gp_task_t *t)
{
    const char *name = json_string_value(json_object_get(rep_view(t), "model"));
    const gp_rep_model_t *m = name ? gp_replicate_model_find(h->replicate, name, NULL) : NULL;
    return m ? m : gp_replicate_model_find(h->replicate, "genpulse", t->task_type);
}

static json_t *input_json(const gp_task_t *t)
{
    json_t *in = json_object_get(rep_view(t), "input");
    if (json_is_object(in))
        return json_incref(in);
    json_t *copy = t->params ? json_copy(t->params) : json_object();
    json_object_del(copy, GP_TASK_REQUEST_ID_PARAM);
    json_object_del(copy, GP_REPLICATE_PARAM);
    json_object_del(copy, "provider");
    return copy;
}

/* File outputs as their links (one, or a list, per the model's output schema); a result
 * without files is the result itself. */
static json_t *output_json(const gp_rep_model_t *m, const json_t *result)
{
    if (!json_is_object(result))
        return json_null();
    json_t *assets = json_object_get(result, "assets");
    if (json_is_array(assets) && json_array_size(assets) > 0) {
        json_t *urls = json_array();
        size_t i;
        json_t *a;
        json_array_foreach (assets, i, a) {
            json_t *u = json_object_get(a, "url");
            if (json_is_string(u))
                json_array_append(urls, u);
        }
        bool list = m ? m->output == GP_REP_OUTPUT_FILES : json_array_size(urls) > 1;
        if (!list && json_array_size(urls) == 1) {
            json_t *one = json_incref(json_array_get(urls, 0));
            json_decref(urls);
            return one;
        }
        return urls;
    }
    json_t *copy = json_copy((json_t *)result);
    json_object_del(copy, "assets");
    return copy;
}

void gp_replicate_tqdm_line(int pct, char *out, size_t cap)
{
    static const char *const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    char bar[64] = "";
    size_t len = 0;
    int full = pct / 10, cells = 0;
    for (; cells < full; cells++)
        len += (size_t)snprintf(bar + len, sizeof bar - len, "█");
    if (cells < 10) {
        int part = (pct % 10) * 8 / 10;
        len += (size_t)snprintf(bar + len, sizeof bar - len, "%s", part ? eighths[part] : " ");
        cells++;
    }
    for (; cells < 10; cells++)
        len += (size_t)snprintf(bar + len, sizeof bar - len, " ");
    snprintf(out, cap, "%3d%%|%s| %d/100", pct, bar, pct);
}

static json_t *logs_json(const gp_task_t *t, const json_t *task)
{
    if (t->status == GP_TASK_PENDING && t->attempts == 0)
        return json_string("");
    char buf[1024];
    size_t n = 0;
    n += (size_t)snprintf(buf, sizeof buf, "running %s on %s (attempt %d)\n", t->task_type,
                          t->provider, t->attempts > 0 ? t->attempts : 1);
    const char *step = json_string_value(json_object_get(task, "step"));
    if (step && strcmp(step, "preview") != 0 && n < sizeof buf)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%.200s\n", step);
    json_t *progress = json_object_get(task, "progress");
    int pct = json_is_integer(progress) ? (int)json_integer_value(progress) : 0;
    if (pct < 0 || pct > 100)
        pct = 0;
    if ((pct > 0 || t->status == GP_TASK_SUCCEEDED) && n + 2 < sizeof buf) {
        gp_replicate_tqdm_line(t->status == GP_TASK_SUCCEEDED ? 100 : pct, buf + n,
                               sizeof buf - n - 1);
        n = strlen(buf);
        buf[n++] = '\n';
        buf[n] = '\0';
    }
    return json_string(buf);
}

static const char *status_name(gp_task_status_t s)
{
    return s == GP_TASK_PENDING ? "starting" : gp_task_status_name(s);
}

static json_t *time_json(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    gp_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *urls_json(gp_http_t *h, const gp_task_t *t)
{
    const char *base = h->rt->public_url;
    char *get = gp_xasprintf("%s/v1/predictions/%s", base, t->id);
    char *cancel = gp_xasprintf("%s/cancel", get);
    char *web = gp_xasprintf("%s/dashboard#/tasks/%s", base, t->id);
    char path[96];
    gp_replicate_stream_path(t->id, path, sizeof path);
    char *stream = gp_signed_link(h->link_secret, sizeof h->link_secret, base, path,
                                  (int64_t)time(NULL) + h->rt->settings->link_ttl_s);
    json_t *o = json_pack("{s:s, s:s, s:s}", "get", get, "cancel", cancel, "web", web);
    if (stream)
        json_object_set_new(o, "stream", json_string(stream));
    free(get);
    free(cancel);
    free(web);
    free(stream);
    return o;
}

static json_t *metrics_json(const gp_task_t *t)
{
    if (!gp_task_status_terminal(t->status) || !t->completed_at)
        return json_object();
    double predict = t->started_at ? (double)(t->completed_at - t->started_at) / 1000.0 : 0.0;
    double total = (double)(t->completed_at - t->created_at) / 1000.0;
    return json_pack("{s:f, s:f}", "predict_time", predict < 0 ? 0.0 : predict, "total_time",
                     total < 0 ? 0.0 : total);
}

json_t *gp_replicate_prediction_json(gp_http_t *h, const gp_task_t *t)
{
    json_t *task = gp_task_json(h, t); /* hot state and fresh links, as /v1/tasks shows them */
    const gp_rep_model_t *m = task_model(h, t);
    const json_t *view = rep_view(t);
    const char *model = json_string_value(json_object_get(view, "model"));
    const char *version = json_string_value(json_object_get(view, "version"));
    char vid[GP_REPLICATE_VERSION_LEN + 1];
    if (!version) {
        gp_replicate_version_id(t->task_type, t->provider, vid);
        version = vid;
    }
    char *fallback = model ? NULL : gp_xasprintf("genpulse/%s", t->task_type);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "model", json_string(model ? model : fallback));
    json_object_set_new(o, "version", json_string(version));
    json_object_set_new(o, "input", input_json(t));
    json_object_set_new(o, "output", output_json(m, json_object_get(task, "result")));
    json_object_set_new(o, "logs", logs_json(t, task));
    const char *err = t->status == GP_TASK_FAILED
                          ? (t->error_message && *t->error_message ? t->error_message
                             : t->error_code                       ? t->error_code
                                                                   : "the prediction failed")
                          : NULL;
    json_object_set_new(o, "error", err ? json_string(err) : json_null());
    json_object_set_new(o, "status", json_string(status_name(t->status)));
    json_object_set_new(o, "created_at", time_json(t->created_at));
    json_object_set_new(o, "started_at", time_json(t->started_at));
    json_object_set_new(o, "completed_at", time_json(t->completed_at));
    json_object_set_new(o, "urls", urls_json(h, t));
    json_object_set_new(o, "metrics", metrics_json(t));
    json_object_set_new(o, "data_removed", json_false());
    json_object_set_new(o, "source", json_string("api"));
    if (t->webhook) {
        json_object_set_new(o, "webhook", json_string(t->webhook));
        json_object_set_new(o, "webhook_events_filter", gp_webhook_events_json(t->webhook_events));
    }
    free(fallback);
    json_decref(task);
    return o;
}

/* ---------------------------------------------------------------- answers */

static enum MHD_Result no_prediction(request_t *r, int rc)
{
    return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no prediction with this id" : NULL,
                         NULL);
}

static void add_detail(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* ---------------------------------------------------------------- create */

/* Both create routes: model NULL = POST /v1/predictions (the body names the version). */
static enum MHD_Result create(request_t *r, const gp_rep_model_t *model)
{
    const char *key = gp_req_header(r, "Idempotency-Key");
    if (key && !gp_tasks_idempotency_key_ok(key))
        return gp_send_error(
            r->conn, GP_E_BAD_REQUEST, "invalid Idempotency-Key header",
            gp_one_detail("headers.Idempotency-Key", "must be 1 to 255 visible ASCII characters"));
    int wait = gp_prefer_wait(r);
    if (wait < 0)
        return gp_send_error(r->conn, GP_E_BAD_REQUEST, "invalid Prefer header",
                             gp_one_detail("headers.Prefer", "wait or wait=N, N from 1 to 60"));
    r->wait_s = wait;
    enum MHD_Result ret = MHD_NO;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    gp_submission_t sub;
    json_t *details = NULL;
    if (gp_replicate_translate(r->http->replicate, model, body,
                               (int)r->http->rt->settings->default_max_retries, &sub,
                               &details) != 0) {
        json_decref(body);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    char msg[160];
    int rc = gp_tasks_begin_create(r, body, &sub, key, msg, sizeof msg);
    json_decref(body);
    if (rc == -GP_E_TOO_MANY_QUEUED)
        return gp_send_error_full(r->conn, GP_E_TOO_MANY_QUEUED, NULL, msg, NULL,
                                  MHD_HTTP_HEADER_RETRY_AFTER, "5");
    return MHD_YES;
}

static enum MHD_Result create_start(request_t *r)
{
    return create(r, NULL);
}

static enum MHD_Result model_create_start(request_t *r)
{
    const gp_rep_model_t *m =
        gp_replicate_model_find(r->http->replicate, r->path_params[0], r->path_params[1]);
    if (!m)
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no model with this name", NULL);
    return create(r, m);
}

static enum MHD_Result create_finish(request_t *r)
{
    gp_http_t *h = r->http;
    enum MHD_Result ret;
    if (!gp_tasks_create_outcome(r, &ret)) /* an error answered, or a Prefer: wait begun */
        return ret;
    json_t *p = gp_replicate_prediction_json(h, &r->task);
    bool done = gp_task_status_terminal(r->task.status);
    if (r->wait_s > 0 && !done) /* the wait ran out: "starting", so clients poll on */
        json_object_set_new(p, "status", json_string("starting"));
    const char *get = json_string_value(json_object_get(json_object_get(p, "urls"), "get"));
    char *location = gp_xstrdup(get ? get : "");
    const char *headers[7] = {MHD_HTTP_HEADER_LOCATION, location, NULL};
    char applied[16];
    gp_tasks_create_headers(r, headers, 2, applied);
    ret = gp_send_json_headers(r->conn, 201, p, headers);
    free(location);
    return ret;
}

/* ---------------------------------------------------------------- get, list, cancel */

static enum MHD_Result get_prediction(request_t *r)
{
    gp_task_t t;
    int rc = gp_tasks_load_visible(r, r->path_params[0], &t);
    if (rc != 0)
        return no_prediction(r, rc);
    json_t *j = gp_replicate_prediction_json(r->http, &t);
    gp_task_clear(&t);
    return gp_send_json(r->conn, 200, j, NULL, NULL);
}

/* ?cursor (a previous page's next) and ?limit (1..100; GenPulse's, default 100). */
static void list_query(request_t *r, gp_task_filter_t *f, json_t *details)
{
    const char *v;
    if ((v = gp_req_query(r, "cursor")) && *v) {
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (*end || n < 1)
            add_detail(details, "cursor", "is not a cursor from a previous page's next");
        else
            f->before_seq = n;
    }
    if ((v = gp_req_query(r, "limit"))) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > 100)
            add_detail(details, "limit", "must be an integer from 1 to 100");
        else
            f->limit = (size_t)n;
    }
    static const char *const unsupported[] = {"created_after", "created_before", "source"};
    for (size_t i = 0; i < 3; i++)
        if (gp_req_query(r, unsupported[i]))
            add_detail(details, unsupported[i], "is not supported by GenPulse");
}

static enum MHD_Result list_predictions(request_t *r)
{
    gp_http_t *h = r->http;
    json_t *details = json_array();
    gp_task_filter_t f = {.status = -1, .limit = LIST_DEFAULT};
    list_query(r, &f, details);
    if (!gp_principal_is_admin(&r->principal))
        f.owner = r->principal.user_id;
    if (json_array_size(details) > 0)
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    json_decref(details);
    gp_task_t *rows = gp_xcalloc(f.limit, sizeof *rows);
    size_t n = 0;
    if (gp_store_list(h->rt->store, &f, rows, &n) != 0) {
        free(rows);
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    }
    json_t *results = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(results, gp_replicate_prediction_json(h, &rows[i]));
    json_t *next = json_null();
    if (n == f.limit && n > 0) {
        json_decref(next);
        char *url = f.limit == LIST_DEFAULT
                        ? gp_xasprintf("%s/v1/predictions?cursor=%lld", h->rt->public_url,
                                       (long long)rows[n - 1].seq)
                        : gp_xasprintf("%s/v1/predictions?cursor=%lld&limit=%zu", h->rt->public_url,
                                       (long long)rows[n - 1].seq, f.limit);
        next = json_string(url);
        free(url);
    }
    for (size_t i = 0; i < n; i++)
        gp_task_clear(&rows[i]);
    free(rows);
    return gp_send_json(r->conn, 200,
                        json_pack("{s:o, s:n, s:o}", "next", next, "previous", "results", results),
                        NULL, NULL);
}

static enum MHD_Result cancel_start(request_t *r)
{
    int rc = gp_tasks_cancel_begin(r, r->path_params[0]);
    return rc != 0 ? no_prediction(r, rc) : MHD_YES;
}

/* Replicate answers a cancel with the prediction, 200, whatever state it was in. */
static enum MHD_Result cancel_finish(request_t *r)
{
    gp_http_t *h = r->http;
    const char *id = r->path_params[0];
    if (r->op.result == -GP_E_NOT_FOUND)
        return no_prediction(r, -GP_E_NOT_FOUND);
    if (r->op.result != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    gp_task_t t;
    if (gp_store_get(h->rt->store, id, &t) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    gp_tasks_cancel_announce(r, &t);
    json_t *j = gp_replicate_prediction_json(h, &t);
    gp_task_clear(&t);
    return gp_send_json(r->conn, 200, j, NULL, NULL);
}

const gp_route_t gp_routes_replicate[] = {
    {"POST", "/v1/predictions", GP_BODY_JSON, "tasks:write", create_start, create_finish},
    {"GET", "/v1/predictions", GP_BODY_NONE, "tasks:read", list_predictions, NULL},
    {"GET", "/v1/predictions/{}", GP_BODY_NONE, "tasks:read", get_prediction, NULL},
    {"POST", "/v1/predictions/{}/cancel", GP_BODY_NONE, "tasks:write", cancel_start, cancel_finish},
    {"POST", "/v1/models/{}/{}/predictions", GP_BODY_JSON, "tasks:write", model_create_start,
     create_finish},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
