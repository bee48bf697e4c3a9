/*
 * wire.h — the one home of the Celery wire format GenPulse speaks (research/queues.md §1):
 * protocol-v2 task messages in kombu's Redis envelope, and the result-backend state stored
 * and published under celery-task-meta-<id>. The Redis queue, the Redis event bus and the RPC
 * client library all go through here, so the layout is written once.
 *
 * Ownership: encoders return malloc'd JSON text (caller frees) and never abort: they return
 * NULL on OOM, because the client library runs inside other programs. Decoders fill a struct
 * that owns its JSON; release it with the matching _clear(). Inputs are borrowed.
 * Thread-safety: every function is pure and may be called from any thread.
 */
#ifndef GP_CELERY_WIRE_H
#define GP_CELERY_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define GP_CELERY_MAX_MESSAGE (16u << 20) /* larger messages are refused when decoding */
#define GP_CELERY_KEY_PREFIX "celery-task-meta-"

/* A task message to encode. Strings are borrowed; NULL optional fields are sent as null. */
typedef struct gp_celery_task {
    const char *task;            /* headers.task: the task name */
    const char *id;              /* headers.id, root_id and properties.correlation_id */
    const json_t *kwargs;        /* body[1]; NULL = {} */
    const char *kwargsrepr;      /* headers.kwargsrepr (Python repr, for tools); NULL = "{}" */
    int kombu_priority;          /* properties.priority: 0 (first) .. 9 */
    const char *eta;             /* headers.eta, ISO 8601; NULL = run now */
    const char *origin;          /* headers.origin; NULL = omitted */
    const char *delivery_tag;    /* properties.delivery_tag */
    const char *routing_key;     /* delivery_info.routing_key: the queue name */
    const json_t *extra_headers; /* merged into headers (GenPulse's own); NULL = none */
} gp_celery_task_t;

/* The message as JSON text, or NULL on OOM. */
char *gp_celery_encode_task(const gp_celery_task_t *t);

/* A decoded task message. Pointers are into `root`, valid until gp_celery_decoded_clear(). */
typedef struct gp_celery_decoded {
    json_t *root;          /* the whole message (owned) */
    const char *id;        /* headers.id: non-empty */
    const char *task;      /* headers.task, NULL when absent */
    int kombu_priority;    /* properties.priority clamped to 0..9 (0 when absent) */
    const json_t *headers; /* the headers object */
} gp_celery_decoded_t;

/* Parses the envelope (not the body). Returns 0, or -1 when msg is not a task message we can
 * read (not JSON, no headers object, no id, larger than GP_CELERY_MAX_MESSAGE); out is
 * cleared then. */
int gp_celery_decode_task(const char *msg, size_t len, gp_celery_decoded_t *out);
/* The body's kwargs object (body[1]), base64 or plain as properties.body_encoding says; new
 * reference, NULL when the body is malformed. */
json_t *gp_celery_decode_kwargs(const gp_celery_decoded_t *d);
void gp_celery_decoded_clear(gp_celery_decoded_t *d);

/* Result-backend states GenPulse writes and reads. */
#define GP_CELERY_SUCCESS "SUCCESS"
#define GP_CELERY_FAILURE "FAILURE"
#define GP_CELERY_REVOKED "REVOKED"
#define GP_CELERY_PROGRESS "PROGRESS" /* custom, like update_state(): {pct, step} */

/* The meta JSON {status, result, traceback, children, date_done, task_id}. result is stolen
 * (NULL = null); date_done NULL = null (naive UTC ISO 8601, as Celery writes it). NULL on OOM. */
char *gp_celery_encode_meta(const char *task_id, const char *state, json_t *result,
                            const char *date_done);
/* The exception object of a FAILURE/REVOKED result ({exc_type, exc_message: [msg], exc_module}),
 * new reference (NULL on OOM). module NULL = null. */
json_t *gp_celery_exception(const char *type, const char *message, const char *module);

typedef struct gp_celery_meta {
    json_t *root;         /* owned */
    const char *state;    /* "SUCCESS", …; never NULL after a successful decode */
    const json_t *result; /* may be NULL */
} gp_celery_meta_t;
/* 0, or -1 when text is not a meta object with a string status (out cleared then). */
int gp_celery_decode_meta(const char *text, size_t len, gp_celery_meta_t *out);
/* exc_message[0] of a FAILURE/REVOKED result, or NULL. Borrowed from m. */
const char *gp_celery_meta_error(const gp_celery_meta_t *m);
void gp_celery_meta_clear(gp_celery_meta_t *m);

#endif
