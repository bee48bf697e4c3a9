/*
 * readiness.c — the checks behind GET /ready (see readiness.h).
 */
#include "runtime/readiness.h"
#include "core/errors.h"
#include "core/util.h"
#include "worker/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READINESS_CACHE_MS 1000
/* Storage probes write an object: a fixed owner that no task can have (tasks get random
 * version-4 UUIDs), overwritten each time, so probing never grows storage. */
#define PROBE_OWNER "00000000-0000-0000-0000-000000000000"
#define PROBE_NAME "readiness-probe"

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *cached;    /* guarded by cache_lock */
static bool cached_ready; /* guarded by cache_lock */
static int64_t cached_at; /* mono ms; guarded by cache_lock */

/* Appends one check's entry; error NULL means it passed. */
static bool add_check(json_t *checks, const char *name, int64_t started, const char *error,
                      json_t *extra)
{
    json_t *c = json_pack("{s:s, s:s, s:I}", "name", name, "status", error ? "fail" : "ok",
                          "duration_ms", (json_int_t)(gp_mono_ms() - started));
    if (error)
        json_object_set_new(c, "error", json_string(error));
    if (extra)
        json_object_update(c, extra);
    json_decref(extra);
    json_array_append_new(checks, c);
    return error == NULL;
}

static bool check_store(gp_runtime_t *rt, json_t *checks)
{
    int64_t t0 = gp_mono_ms();
    int applied = 0, expected = 0;
    int rc = rt->store->vt->schema_status(rt->store, &applied, &expected);
    char msg[160];
    if (rc != 0) {
        snprintf(msg, sizeof msg, "the database does not answer (%s)", gp_err_code(rc));
        add_check(checks, "store", t0, msg, NULL);
        return add_check(checks, "migrations", t0, "unknown: the database does not answer", NULL);
    }
    bool ok = add_check(checks, "store", t0, NULL, NULL);
    const char *why = NULL;
    if (applied < expected) {
        snprintf(msg, sizeof msg, "schema version %d, this binary needs %d: run `genpulse migrate`",
                 applied, expected);
        why = msg;
    } else if (applied > expected) {
        snprintf(msg, sizeof msg,
                 "schema version %d is newer than this binary (%d): upgrade genpulse", applied,
                 expected);
        why = msg;
    }
    return add_check(checks, "migrations", t0, why,
                     json_pack("{s:i, s:i}", "applied", applied, "expected", expected)) &&
           ok;
}

static bool check_queue(gp_runtime_t *rt, json_t *checks)
{
    int64_t t0 = gp_mono_ms();
    int rc = gp_queue_ping(rt->queue);
    return add_check(checks, "queue", t0, rc == 0 ? NULL : "the queue does not answer", NULL);
}

static bool check_storage(gp_runtime_t *rt, json_t *checks)
{
    int64_t t0 = gp_mono_ms();
    char *url = NULL;
    int rc =
        gp_storage_put_bytes(rt->storage, PROBE_OWNER, PROBE_NAME, "ok\n", 3, "text/plain", &url);
    free(url);
    char msg[128];
    snprintf(msg, sizeof msg, "a test write failed (%s)", gp_err_code(rc));
    return add_check(checks, "storage", t0, rc == 0 ? NULL : msg, NULL);
}

/* At least one live worker: this process's own pool counts without asking anyone. */
static bool check_workers(gp_runtime_t *rt, json_t *checks)
{
    int64_t t0 = gp_mono_ms();
    gp_worker_info_t *list = NULL;
    size_t n = 0;
    int rc = gp_presence_list(rt->presence, &list, &n);
    int alive = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        alive += list[i].alive;
    free(list);
    bool own_pool = rt->workers != NULL;
    if (own_pool && alive == 0)
        alive = 1;
    const char *why = NULL;
    if (alive == 0)
        why = rc != 0 ? "cannot read the worker registry"
                      : "no live worker: queued tasks would wait (start `genpulse worker`)";
    return add_check(checks, "workers", t0, why, json_pack("{s:i}", "alive", alive));
}

static json_t *run_checks(gp_runtime_t *rt, bool *ready)
{
    json_t *checks = json_array();
    bool ok = check_store(rt, checks);
    ok = check_queue(rt, checks) && ok;
    ok = check_storage(rt, checks) && ok;
    ok = check_workers(rt, checks) && ok;
    *ready = ok;
    return json_pack("{s:s, s:o}", "status", ok ? "ready" : "not_ready", "checks", checks);
}

json_t *gp_readiness(gp_runtime_t *rt, bool *ready)
{
    pthread_mutex_lock(&cache_lock);
    int64_t now = gp_mono_ms();
    if (!cached || now - cached_at >= READINESS_CACHE_MS) {
        json_decref(cached);
        cached = run_checks(rt, &cached_ready);
        cached_at = gp_mono_ms();
    }
    json_t *copy = json_deep_copy(cached);
    *ready = cached_ready;
    pthread_mutex_unlock(&cache_lock);
    return copy;
}

json_t *gp_liveness(gp_runtime_t *rt, const char *version)
{
    json_t *body = json_pack("{s:s, s:s, s:I}", "status", "ok", "version", version, "uptime_s",
                             (json_int_t)((gp_now_ms() - rt->started_at) / 1000));
    if (rt->workers)
        json_object_set_new(body, "workers",
                            json_pack("{s:i, s:i}", "concurrency", gp_worker_pool_size(rt->workers),
                                      "busy", gp_worker_pool_busy(rt->workers)));
    return body;
}
