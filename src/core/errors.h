/*
 * errors.h — the one error list. Each entry gives the enum, the stable machine code sent to
 * clients, the HTTP status and a default human message. Functions return 0 or -GP_E_*.
 */
#ifndef GP_ERRORS_H
#define GP_ERRORS_H

#define GP_ERROR_LIST(X)                                                                           \
    X(OK, "ok", 200, "ok")                                                                         \
    X(INVALID_JSON, "invalid_json", 400, "the request body is not valid JSON")                     \
    X(BAD_REQUEST, "bad_request", 400, "the request is malformed")                                 \
    X(UNAUTHENTICATED, "unauthenticated", 401, "send Authorization: Bearer <key>")                 \
    X(INVALID_KEY, "invalid_key", 401, "the API key is not valid")                                 \
    X(KEY_REVOKED, "key_revoked", 401, "the API key was revoked")                                  \
    X(KEY_EXPIRED, "key_expired", 401, "the API key has expired")                                  \
    X(INVALID_TOKEN, "invalid_token", 401, "the bearer token is not valid")                        \
    X(USER_DISABLED, "user_disabled", 403, "this account is disabled")                             \
    X(FORBIDDEN, "insufficient_scope", 403, "the key lacks the scope this route needs")            \
    X(INVALID_SIGNATURE, "invalid_signature", 403, "the link's signature is missing or wrong")     \
    X(CSRF, "csrf_token_invalid", 403, "send the session's CSRF token in X-CSRF-Token")            \
    X(LINK_EXPIRED, "link_expired", 403, "the signed link has expired")                            \
    X(INSUFFICIENT_CREDITS, "insufficient_credits", 402,                                           \
      "the account does not have the credits this task costs")                                     \
    X(NOT_FOUND, "not_found", 404, "no such resource")                                             \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", 405, "method not allowed on this resource")        \
    X(CONFLICT, "conflict", 409, "the resource is in a state that does not allow this")            \
    X(PAYLOAD_TOO_LARGE, "payload_too_large", 413, "the request body is too large")                \
    X(UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 415, "the body must be application/json")  \
    X(VALIDATION, "validation_error", 422, "the request has invalid fields")                       \
    X(IDEMPOTENCY_MISMATCH, "idempotency_key_reused", 422,                                         \
      "this Idempotency-Key was used with a different request")                                    \
    X(RATE_LIMITED, "rate_limited", 429, "too many requests for this account's plan; slow down")   \
    X(TOO_MANY_QUEUED, "too_many_queued", 429,                                                     \
      "the account has as many pending tasks as its plan allows; wait for some to start")          \
    X(TOO_MANY_AUTH_FAILURES, "too_many_auth_failures", 429,                                       \
      "too many failed authentication attempts; wait and retry")                                   \
    X(INTERNAL, "internal_error", 500, "internal error")                                           \
    X(UNAVAILABLE, "unavailable", 503, "a backend is unavailable; try again")                      \
    X(SHUTTING_DOWN, "shutting_down", 503, "the server is shutting down")                          \
    X(NOMEM, "out_of_memory", 500, "out of memory")                                                \
    X(IO, "io_error", 500, "input/output error")                                                   \
    X(TIMEOUT, "timeout", 504, "the operation timed out")                                          \
    X(CANCELED, "canceled", 409, "the task was canceled")                                          \
    X(TASK_NOT_FINISHED, "task_not_finished", 409, "the task has not finished yet")

typedef enum gp_err {
#define GP__ERR_ENUM(name, code, status, msg) GP_E_##name,
    GP_ERROR_LIST(GP__ERR_ENUM)
#undef GP__ERR_ENUM
    GP_E__COUNT
} gp_err_t;

/* Stable machine code ("validation_error"); never NULL. */
const char *gp_err_code(int err);
/* HTTP status for the error. */
int gp_err_http_status(int err);
/* Default message. */
const char *gp_err_message(int err);

#endif
