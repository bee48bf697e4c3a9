/*
 * genpulse/client.h — the RPC client (libgenpulse): run GenPulse tasks from C over Redis,
 * with no HTTP and no polling.
 *
 * A task is sent as a Celery protocol v2 message whose task name is the GenPulse task type
 * and whose kwargs are its params; a GenPulse worker adopts it, runs it, and writes its
 * state the way Celery's Redis result backend does. gp_client_run() subscribes to the
 * task's result channel BEFORE it sends the task, and reads the stored state once after
 * subscribing, so a task that finishes early is never missed.
 *
 * Ownership: every gp_client_t is freed with gp_client_free(); a gp_client_result_t's
 * strings are freed with gp_client_result_clear(). Strings passed in are copied; nothing
 * passed in is retained after a call returns.
 *
 * Thread-safety: a gp_client_t is used by one thread at a time (it owns two Redis
 * connections). Separate clients in separate threads are independent. Callbacks run on the
 * calling thread, inside gp_client_run()/gp_client_wait().
 */
#ifndef GENPULSE_CLIENT_H
#define GENPULSE_CLIENT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_client gp_client_t;

typedef enum gp_client_status {
    GP_CLIENT_SUCCEEDED = 0,
    GP_CLIENT_FAILED = 1,
    GP_CLIENT_TIMED_OUT = 3, /* the wait ended; the task may still finish later */
    GP_CLIENT_CANCELED = 4,
} gp_client_status_t;

/* Return codes of the functions below (besides 0). The library never aborts its host: an
 * allocation that fails makes the call return GP_CLIENT_ENOMEM (gp_client_connect: NULL
 * with "out of memory" in err), with nothing sent if it happened before sending. */
#define GP_CLIENT_EINVAL (-1)       /* bad argument (message in the err buffer if any) */
#define GP_CLIENT_EUNAVAILABLE (-2) /* Redis unreachable or timed out */
#define GP_CLIENT_ENOMEM (-3)       /* out of memory */

typedef struct gp_client_result {
    char id[37];
    gp_client_status_t status;
    char *result_json; /* SUCCEEDED: the task's result object as JSON text; else NULL */
    char *error;       /* FAILED/CANCELED: the error message; else NULL */
} gp_client_result_t;

/* Progress: percent 0-100 and the provider's step text ("" when none). */
typedef void (*gp_client_progress_cb)(const char *task_id, int percent, const char *step,
                                      void *arg);

/* Connects to redis://[:password@]host[:port][/db]; every network call then times out after
 * timeout_ms. NULL on error, with a message in err. */
gp_client_t *gp_client_connect(const char *redis_url, int timeout_ms, char *err, size_t cap);
void gp_client_free(gp_client_t *c);

/* Sends a task without waiting. params_json: a JSON object (NULL = {}). priority 0-9.
 * Writes the new task's id into id_out. */
int gp_client_submit(gp_client_t *c, const char *task_type, const char *params_json, int priority,
                     char id_out[37]);

/* Sends a task and waits up to timeout_ms for it to finish; progress (may be NULL) is
 * called for every progress update. Returns 0 with out filled (status says how it ended,
 * GP_CLIENT_TIMED_OUT included), or a negative GP_CLIENT_E* code (out->id is still the
 * task's id; out's strings are NULL). */
int gp_client_run(gp_client_t *c, const char *task_type, const char *params_json, int priority,
                  int timeout_ms, gp_client_progress_cb progress, void *arg,
                  gp_client_result_t *out);

/* Waits for a task sent earlier (by anyone). Same results as gp_client_run. */
int gp_client_wait(gp_client_t *c, const char *task_id, int timeout_ms,
                   gp_client_progress_cb progress, void *arg, gp_client_result_t *out);

/* Asks the workers to cancel the task (running or still queued). */
int gp_client_cancel(gp_client_t *c, const char *task_id);

void gp_client_result_clear(gp_client_result_t *r);

#ifdef __cplusplus
}
#endif
#endif
