/*
 * stats.c — GET /v1/stats: the dashboard's charts (throughput, failures, queue depth and
 * queue wait over time) in time buckets computed from the store (store.h, "stats").
 * An admin sees every user's tasks; anyone else only their own.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define STATS_WINDOW_MAX_S (7 * 86400)
#define STATS_DEFAULT_WINDOW_S 3600
#define STATS_DEFAULT_BUCKET_S 60

/* ?name as whole seconds in [lo, hi]; a problem goes to details. */
static int64_t seconds_arg(request_t *r, const char *name, int64_t def, int64_t lo, int64_t hi,
                           json_t *details)
{
    const char *v = gp_req_query(r, name);
    if (!v || !*v)
        return def;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end || n < lo || n > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be a whole number of seconds from %lld to %lld",
                 (long long)lo, (long long)hi);
        json_array_append_new(details, json_pack("{s:s, s:s}", "field", name, "message", msg));
        return def;
    }
    return n;
}

static json_t *bucket_json(const gp_stats_bucket_t *b)
{
    char t[40];
    gp_format_time(b->start_ms, t, sizeof t);
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "t", t, "created",
                     (json_int_t)b->created, "succeeded", (json_int_t)b->succeeded, "failed",
                     (json_int_t)b->failed, "canceled", (json_int_t)b->canceled, "started",
                     (json_int_t)b->started, "pending", (json_int_t)b->pending, "processing",
                     (json_int_t)b->processing, "wait_p50_s", (double)b->wait_p50_ms / 1000.0,
                     "wait_avg_s", b->wait_avg_ms / 1000.0);
}

static enum MHD_Result get_stats(request_t *r)
{
    gp_store_t *st = r->http->rt->store;
    json_t *details = json_array();
    int64_t window =
        seconds_arg(r, "window", STATS_DEFAULT_WINDOW_S, 60, STATS_WINDOW_MAX_S, details);
    int64_t bucket =
        seconds_arg(r, "bucket", STATS_DEFAULT_BUCKET_S, 1, STATS_WINDOW_MAX_S, details);
    if (json_array_size(details) == 0 &&
        (window % bucket != 0 || window / bucket < 1 || window / bucket > GP_STATS_MAX_BUCKETS))
        json_array_append_new(details, json_pack("{s:s, s:s}", "field", "bucket", "message",
                                                 "must divide window into 1 to 1440 buckets"));
    if (json_array_size(details) > 0)
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    json_decref(details);
    if (!st->vt->stats)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, "this store keeps no stats", NULL);

    /* Buckets end on a bucket boundary after now, so the last one is the one being filled
     * and a refresh keeps earlier buckets in place. */
    int64_t bucket_ms = bucket * 1000, now = gp_now_ms();
    int64_t end = (now / bucket_ms + 1) * bucket_ms;
    gp_stats_query_t q = {.owner =
                              gp_principal_is_admin(&r->principal) ? NULL : r->principal.user_id,
                          .since_ms = end - window * 1000,
                          .bucket_ms = bucket_ms,
                          .n_buckets = (size_t)(window / bucket)};
    gp_stats_bucket_t *out = calloc(q.n_buckets, sizeof *out);
    if (!out)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    int rc = st->vt->stats(st, &q, out);
    if (rc != 0) {
        free(out);
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, "the store did not answer; try again",
                             NULL);
    }
    json_t *buckets = json_array();
    for (size_t i = 0; i < q.n_buckets; i++)
        json_array_append_new(buckets, bucket_json(&out[i]));
    free(out);
    char since[40], at[40];
    gp_format_time(q.since_ms, since, sizeof since);
    gp_format_time(now, at, sizeof at);
    return gp_send_json(r->conn, 200,
                        json_pack("{s:I, s:I, s:s, s:s, s:b, s:o}", "window", (json_int_t)window,
                                  "bucket", (json_int_t)bucket, "since", since, "now", at,
                                  "all_users", q.owner == NULL, "buckets", buckets),
                        NULL, NULL);
}

const gp_route_t gp_routes_stats[] = {
    {"GET", "/v1/stats", GP_BODY_NONE, "tasks:read", get_stats, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
