/*
 * genpulse/task_errors.h — the one list of task error codes: what a failed task's
 * `error.code` may be. Providers, engines and the worker name a code from this list
 * (gp_ctx_fail takes a gp_task_error_t, so a typo does not compile); `genpulse errors` prints
 * it as the "Task error codes" section of docs/api.md, and `make test` checks that section.
 *
 * Each row: enum suffix, the stable code string clients see, whether a failure with this
 * code is retried, and what it means.
 *   ALWAYS  the task is retried (with backoff, up to max_retries) whatever the call site says;
 *   NEVER   the task fails at once;
 *   CALLER  the call site decides (the meaning says how).
 * Adding a row is safe; renaming or removing one breaks clients that match on the code.
 */
#ifndef GENPULSE_TASK_ERRORS_H
#define GENPULSE_TASK_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gp_retry_class {
    GP_RETRY_NEVER,
    GP_RETRY_ALWAYS,
    GP_RETRY_CALLER
} gp_retry_class_t;

/* clang-format off */
#define GP_TASK_ERROR_LIST(X)                                                                  \
    /* set by the worker itself */                                                             \
    X(CANCELED, "canceled", NEVER, "canceled by request")                                     \
    X(TIMEOUT, "timeout", ALWAYS, "the attempt passed its hard deadline (--task-timeout), or waited too long for a provider slot") \
    X(INTERRUPTED, "interrupted", CALLER, "the process running the attempt stopped (a crash or a restart) and no retries were left; a ComfyUI server that interrupted the prompt itself is retried") \
    X(INTERNAL_ERROR, "internal_error", NEVER, "an unexpected state inside GenPulse; the logs carry the task id") \
    X(VALIDATION_ERROR, "validation_error", NEVER, "a task that arrived as a Celery message has params that do not validate") \
    X(UNKNOWN_PROVIDER, "unknown_provider", NEVER, "the task names a provider this worker does not have (a worker older than the gateway)") \
    X(PROVIDER_ERROR, "provider_error", CALLER, "the provider failed without saying why (the default code)") \
    /* inputs and outputs */                                                                   \
    X(INVALID_PARAMS, "invalid_params", NEVER, "params the schema accepts but the provider refuses (an unsupported size, a bad model reference, …)") \
    X(INVALID_INPUT, "invalid_input", CALLER, "an input media param cannot be read: no such asset, a malformed data: URL, a failed download (retried when the source may recover)") \
    X(INPUT_TOO_LARGE, "input_too_large", NEVER, "an input is larger than the engine or provider accepts") \
    X(INVALID_OUTPUT, "invalid_output", NEVER, "the provider produced an output GenPulse cannot store (a bad name, a missing file, a malformed data: URL)") \
    X(EMPTY_OUTPUT, "empty_output", NEVER, "the provider finished but produced nothing") \
    X(TOO_MANY_OUTPUTS, "too_many_outputs", NEVER, "the provider produced more outputs than allowed") \
    X(OUTPUT_TOO_LARGE, "output_too_large", NEVER, "an output is larger than allowed") \
    X(OUTPUT_TOO_LONG, "output_too_long", NEVER, "the rendered audio would be longer than allowed") \
    X(DOWNLOAD_FAILED, "download_failed", CALLER, "an output could not be downloaded from the provider (retried on timeouts, connection errors and 5xx)") \
    X(STORAGE_ERROR, "storage_error", CALLER, "the output storage or the scratch directory failed (retried unless the file itself is unreadable)") \
    X(OUT_OF_MEMORY, "out_of_memory", ALWAYS, "the worker ran out of memory") \
    /* local engines */                                                                        \
    X(ENGINE_ERROR, "engine_error", CALLER, "a local engine failed (retried when the failure is transient, e.g. the command provider's exit status 75)") \
    X(ENGINE_UNAVAILABLE, "engine_unavailable", NEVER, "a local engine is not installed or cannot start (e.g. espeak-ng data missing)") \
    X(INVALID_VOICE, "invalid_voice", NEVER, "espeak: the voice does not exist") \
    X(NOT_CONFIGURED, "not_configured", NEVER, "command: no --command-program is set") \
    X(SIMULATED_FAILURE, "simulated_failure", NEVER, "simulator: the `fail` param asked for a failure") \
    X(SIMULATED_TRANSIENT, "simulated_transient", ALWAYS, "simulator: the `fail_times` param asked for a transient failure") \
    /* remote providers */                                                                     \
    X(PROVIDER_NOT_CONFIGURED, "provider_not_configured", NEVER, "the provider's required settings (token, base URL, keys) are not set") \
    X(PROVIDER_MISCONFIGURED, "provider_misconfigured", NEVER, "a provider setting is set but unusable (e.g. a ComfyUI workflow file that does not parse)") \
    X(PROVIDER_AUTH, "provider_auth", NEVER, "the provider refused GenPulse's credentials (HTTP 401 or its own auth codes)") \
    X(PROVIDER_RATE_LIMITED, "provider_rate_limited", ALWAYS, "the provider throttled the request (HTTP 429 or its own throttle codes)") \
    X(PROVIDER_UNAVAILABLE, "provider_unavailable", CALLER, "the provider could not be reached or answered 5xx (retried unless the request itself was invalid)") \
    X(PROVIDER_BAD_RESPONSE, "provider_bad_response", CALLER, "the provider's reply is not what its API documents (retried when a fresh attempt may get a good one)") \
    X(PROVIDER_REJECTED, "provider_rejected", NEVER, "the provider refused the request (a 4xx other than 401/404/429)") \
    X(PROVIDER_INVALID_INPUT, "provider_invalid_input", NEVER, "the provider validated the input and refused it (HTTP 422)") \
    X(PROVIDER_NOT_FOUND, "provider_not_found", NEVER, "the provider does not know the model, version or task (HTTP 404)") \
    X(PROVIDER_FAILED, "provider_failed", NEVER, "the provider ran the job and reports that it failed") \
    X(PROVIDER_CANCELED, "provider_canceled", NEVER, "the job was canceled on the provider's side, not by GenPulse") \
    X(PROVIDER_ABORTED, "provider_aborted", ALWAYS, "the provider aborted the job before it started (Replicate's `aborted`)") \
    X(GENERATION_FAILED, "generation_failed", CALLER, "ComfyUI: executing the workflow failed (retried when the server ran out of memory)") \
    X(INVALID_WORKFLOW, "invalid_workflow", NEVER, "ComfyUI: the server refused the workflow (missing nodes, bad inputs)")
/* clang-format on */

typedef enum gp_task_error {
#define GP__TASK_ERR_ENUM(name, code, retry, meaning) GP_TE_##name,
    GP_TASK_ERROR_LIST(GP__TASK_ERR_ENUM)
#undef GP__TASK_ERR_ENUM
    GP_TE__COUNT
} gp_task_error_t;

/* The stable code string ("provider_auth"); "provider_error" for a value off the list. */
const char *gp_task_error_code(gp_task_error_t e);
/* Its retry class. */
gp_retry_class_t gp_task_error_retry(gp_task_error_t e);
/* What it means (one sentence, for docs). */
const char *gp_task_error_meaning(gp_task_error_t e);
/* The final retry decision: the class unless it is GP_RETRY_CALLER, then `caller`. */
int gp_task_error_retryable(gp_task_error_t e, int caller);

#ifdef __cplusplus
}
#endif
#endif
