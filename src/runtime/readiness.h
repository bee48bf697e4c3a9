/*
 * readiness.h — GET /ready: can this process do its job right now?
 *
 * Liveness (/health) only says the process answers. Readiness checks the parts a request
 * needs: the store answers and its schema is the one this binary expects, the queue answers,
 * the output storage takes a write, and at least one worker is alive to run what is queued.
 * A load balancer or orchestrator takes the process out of rotation while any fails.
 *
 * Threading: gp_readiness() blocks (store, Redis and storage round trips, each bounded by its
 * backend's timeouts): call it off HTTP event threads. It is thread-safe; results are shared
 * for READINESS_CACHE_MS so a probe flood costs one round of checks, never one per request.
 */
#ifndef GP_READINESS_H
#define GP_READINESS_H

#include "runtime/runtime.h"

#include <jansson.h>
#include <stdbool.h>

/* Liveness (GET /health): {"status":"ok","version","uptime_s","workers"?} from memory only,
 * so it never waits on a dependency. Any thread. New reference. */
json_t *gp_liveness(gp_runtime_t *rt, const char *version);

/* {"status":"ready"|"not_ready","checks":[{"name","status":"ok"|"fail","duration_ms",
 * "error"?: "…", …}]}; *ready tells which. New reference (caller decrefs). */
json_t *gp_readiness(gp_runtime_t *rt, bool *ready);

#endif
