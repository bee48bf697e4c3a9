/*
 * replicate_stream.c — GET /v1/predictions/{id}/stream: a prediction's events in Replicate's
 * Server-Sent Events format (urls.stream).
 *
 * DESIGN
 * - The official JS client fetches urls.stream without Authorization, so the link carries its
 *   own credential: it is signed and expires (core/signed_link.h, like /files/ links); the
 *   route is public and checks the signature before anything else.
 * - Only the four event names Replicate sends, each with an id: line (the Python client
 *   drops events without one and raises on an unknown name): `logs` (tqdm-style progress
 *   lines), `output` (each file's link, or the result as JSON), `error` ({"detail": …}), and
 *   `done` ({} or {"reason": "canceled"|"error"}), after which the stream ends.
 * - The stream is events.c's (gp_sse_task_stream: suspended connection, heartbeat comments);
 *   this file only formats.
 */
#include "api/replicate.h"
#include "api/reply.h"
#include "core/errors.h"
#include "core/signed_link.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rep_stream {
    int last_pct;    /* the progress last written as a logs line */
    bool said_start; /* the "running …" line went out */
    unsigned n;      /* events written: the id's second part */
} rep_stream_t;

static void write_event(sse_client_t *c, rep_stream_t *st, uint64_t seq, const char *type,
                        const char *data)
{
    char id[48];
    snprintf(id, sizeof id, "%llu:%u", (unsigned long long)seq, st->n++);
    gp_sse_write_event(c, id, type, data, strlen(data));
}

static void write_progress(sse_client_t *c, rep_stream_t *st, uint64_t seq, const char *status,
                           int pct, const char *step)
{
    if (!strcmp(status, "pending"))
        return;
    char line[512];
    if (!st->said_start) {
        st->said_start = true;
        write_event(c, st, seq, "logs", "starting");
    }
    if (step && *step && strcmp(step, "preview") != 0) {
        snprintf(line, sizeof line, "%.400s", step);
        write_event(c, st, seq, "logs", line);
    }
    if (pct > st->last_pct && pct <= 100) {
        st->last_pct = pct;
        gp_replicate_tqdm_line(pct, line, sizeof line);
        write_event(c, st, seq, "logs", line);
    }
}

/* The end: outputs (fresh links), the error, then done; the stream closes after it. */
static void write_end(sse_client_t *c, rep_stream_t *st, uint64_t seq, const char *task_id,
                      const char *status, const json_t *result, const char *error)
{
    if (!strcmp(status, "succeeded")) {
        write_progress(c, st, seq, status, 100, NULL);
        json_t *assets = json_object_get(result, "assets");
        size_t i;
        json_t *a;
        json_array_foreach (assets, i, a) {
            const char *name = json_string_value(json_object_get(a, "name"));
            if (!name || !gp_storage_name_ok(name))
                continue;
            char *link = gp_object_link(gp_sse_http(c), task_id, name);
            write_event(c, st, seq, "output", link);
            free(link);
        }
        if (json_array_size(assets) == 0 && json_is_object(result)) {
            json_t *copy = json_copy((json_t *)result);
            json_object_del(copy, "assets");
            char *text = json_dumps(copy, GP_JSON_WIRE);
            json_decref(copy);
            write_event(c, st, seq, "output", text ? text : "{}");
            free(text);
        }
        write_event(c, st, seq, "done", "{}");
    } else if (!strcmp(status, "failed")) {
        json_t *e = json_pack("{s:s}", "detail", error && *error ? error : "the prediction failed");
        char *text = json_dumps(e, GP_JSON_WIRE);
        json_decref(e);
        write_event(c, st, seq, "error", text ? text : "{}");
        free(text);
        write_event(c, st, seq, "done", "{\"reason\":\"error\"}");
    } else {
        write_event(c, st, seq, "done", "{\"reason\":\"canceled\"}");
    }
    gp_sse_close(c);
}

static void rep_open(sse_client_t *c, const gp_task_t *t, const gp_hot_state_t *hot, void *state)
{
    rep_stream_t *st = state;
    uint64_t seq = hot ? hot->seq : 0;
    const char *status = gp_task_status_name(t->status);
    gp_sse_write(c, ": prediction\n\n", 14); /* the headers go out at once */
    if (t->status != GP_TASK_PENDING || t->attempts > 0) {
        int pct = hot && hot->progress > 0 ? hot->progress : 0;
        bool preview = hot && !strncmp(hot->step, GP_STEP_PREVIEW, strlen(GP_STEP_PREVIEW));
        write_progress(c, st, seq, status, pct, hot && !preview ? hot->step : NULL);
    }
    if (gp_task_status_terminal(t->status))
        write_end(c, st, seq, t->id, status, t->result, t->error_message);
}

static void rep_event(sse_client_t *c, const gp_event_t *ev, void *state)
{
    rep_stream_t *st = state;
    json_t *snap = json_loadb(ev->data, ev->data_len, 0, NULL);
    const char *status = json_string_value(json_object_get(snap, "status"));
    if (!status) {
        json_decref(snap);
        return;
    }
    json_t *pj = json_object_get(snap, "progress");
    int pct = json_is_integer(pj) ? (int)json_integer_value(pj) : 0;
    const char *step = json_string_value(json_object_get(snap, "step"));
    if (ev->terminal) {
        json_t *err = json_object_get(snap, "error");
        write_end(c, st, ev->seq, ev->task_id, status, json_object_get(snap, "result"),
                  json_string_value(json_object_get(err, "message")));
    } else {
        write_progress(c, st, ev->seq, status, pct, step);
    }
    json_decref(snap);
}

static const gp_sse_format_t replicate_format = {
    .open = rep_open,
    .event = rep_event,
    .state_size = sizeof(rep_stream_t),
};

static enum MHD_Result stream(request_t *r)
{
    const char *id = r->path_params[0];
    char path[96];
    if (strlen(id) >= 40)
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no prediction with this id", NULL);
    gp_replicate_stream_path(id, path, sizeof path);
    int rc = gp_signed_link_check(r->http->link_secret, sizeof r->http->link_secret, path,
                                  gp_req_query(r, "expires"), gp_req_query(r, "signature"),
                                  (int64_t)time(NULL));
    if (rc != GP_LINK_OK)
        return gp_send_error(
            r->conn, rc == GP_LINK_EXPIRED ? GP_E_LINK_EXPIRED : GP_E_INVALID_SIGNATURE,
            rc == GP_LINK_EXPIRED ? "this stream link has expired: get the prediction again"
                                  : "open the stream with the prediction's urls.stream link",
            NULL);
    return gp_sse_task_stream(r, id, true, &replicate_format);
}

const gp_route_t gp_routes_replicate_stream[] = {
    {"GET", "/v1/predictions/{}/stream", GP_BODY_NONE, NULL, stream, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
