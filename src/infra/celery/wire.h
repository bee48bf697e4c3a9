/*
 * wire.h — the one home of the Celery wire format GenPulse speaks (research/queues.md §1):
 * protocol-v2 task messages in kombu's Redis envelope, kombu's priority lists and `unacked`
 * entries, and the result-backend state stored and published under celery-task-meta-<id>.
 * The Redis queue, the Redis event bus and the RPC client library all go through here, so the
 * layout is written once. (The queue's Lua scripts still read properties.priority,
 * delivery_tag and delivery_info inside Redis; they say so where they do.)
 *
 * Ownership: encoders return malloc'd JSON text (caller frees) and never abort: they return
 * NULL on OOM, because the client library runs inside other programs. Decoders fill a struct
 * that owns its JSON; release it with the matching _clear() (also safe after a failed
 * decode). Inputs are borrowed. Every decoder is strict: a size bound, the type of every
 * field it reads, and on anything malformed -1 with a one-line reason in err.
 * Thread-safety: every function is pure and may be called from any thread.
 */
#ifndef GP_CELERY_WIRE_H
#define GP_CELERY_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_CELERY_MAX_MESSAGE (16u << 20) /* larger messages are refused when decoding */
#define GP_CELERY_MAX_NAME 255            /* longest headers.id / headers.task / status read */
#define GP_CELERY_KEY_PREFIX "celery-task-meta-"
#define GP_CELERY_SEP "\x06\x16" /* kombu's Channel.sep: "<queue><sep><step>" lists */

/* ---- kombu's priority emulation (§1.3): 0 is served first, lists step 0/3/6/9 ---------- */

/* properties.priority for a GenPulse priority (0-9, 9 first; clamped). */
int gp_celery_kombu_priority(int genpulse_priority);
/* The inverse, for a message's properties.priority (clamped to 0-9). */
int gp_celery_genpulse_priority(int kombu_priority);
/* The list step (0, 3, 6 or 9) a kombu priority is queued under. */
int gp_celery_priority_step(int kombu_priority);
/* The list name: "<queue>" for step 0, else "<queue>\x06\x16<step>". Truncated to cap. */
void gp_celery_list_name(const char *queue, int kombu_priority, char *out, size_t cap);

/* ---- times, as Celery writes them ---------------------------------------------------------- */

/* headers.eta: "2026-11-23T08:59:21.402000+00:00" (unix ms, UTC). cap >= 40. */
void gp_celery_format_eta(int64_t ms, char *out, size_t cap);
/* Result meta date_done: naive UTC "2026-11-23T08:59:21.402". cap >= 32. */
void gp_celery_format_date_done(int64_t ms, char *out, size_t cap);

/* ---- task messages ------------------------------------------------------------------------- */

/* A task message to encode. Strings are borrowed; NULL optional fields are sent as null. */
typedef struct gp_celery_task {
    const char *task;            /* headers.task: the task name */
    const char *id;              /* headers.id, root_id and properties.correlation_id */
    const json_t *kwargs;        /* body[1]; NULL = {} */
    const char *kwargsrepr;      /* headers.kwargsrepr (Python repr, for tools); NULL = "{}" */
    int kombu_priority;          /* properties.priority: 0 (first) .. 9 */
    const char *eta;             /* headers.eta (gp_celery_format_eta); NULL = run now */
    const char *origin;          /* headers.origin; NULL = omitted */
    const char *delivery_tag;    /* properties.delivery_tag */
    const char *routing_key;     /* delivery_info.routing_key: the queue name */
    const json_t *extra_headers; /* merged into headers (GenPulse's own); NULL = none */
} gp_celery_task_t;

/* The message as JSON text (Celery 5's field order and separators), or NULL on OOM. */
char *gp_celery_encode_task(const gp_celery_task_t *t);

/* A decoded task message. Pointers are into `root`, valid until gp_celery_decoded_clear(). */
typedef struct gp_celery_decoded {
    json_t *root;          /* the whole message (owned) */
    const char *id;        /* headers.id: non-empty, <= GP_CELERY_MAX_NAME bytes, no NUL */
    const char *task;      /* headers.task (same bounds), NULL when absent or null */
    int kombu_priority;    /* properties.priority clamped to 0..9 (0 when absent or null) */
    const json_t *headers; /* the headers object */
} gp_celery_decoded_t;

/* Parses the envelope (not the body). Returns 0, or -1 with the reason in err (out cleared)
 * when msg is larger than GP_CELERY_MAX_MESSAGE, not a JSON object, has no headers object or
 * usable headers.id, a headers.task that is not a bounded string, properties that are not an
 * object, a priority that is not an integer, a content-type other than application/json, a
 * body_encoding other than base64, or a body that is not a string. */
int gp_celery_decode_task(const char *msg, size_t len, gp_celery_decoded_t *out, char *err,
                          size_t cap);
/* The body's kwargs object (body = [args, kwargs, embed], base64 or plain as
 * properties.body_encoding says); new reference, or NULL with the reason in err when the body
 * is absent or malformed (or on OOM). */
json_t *gp_celery_decode_kwargs(const gp_celery_decoded_t *d, char *err, size_t cap);
void gp_celery_decoded_clear(gp_celery_decoded_t *d);

/* An `unacked` hash value, [message, exchange, routing_key] (kombu QoS.append), put back for
 * redelivery: returns 0 with *msg_out (malloc'd JSON) = the message with headers.redelivered
 * and properties.delivery_info.redelivered set and *kombu_priority = its priority; 1 when the
 * routing key is not `queue` (another queue's delivery, left alone); -1 with the reason in
 * err when the entry is malformed or memory ran out. Outputs are untouched unless 0. */
int gp_celery_redeliver(const char *entry, size_t len, const char *queue, char **msg_out,
                        int *kombu_priority, char *err, size_t cap);

/* ---- result-backend meta (§1.7) ---------------------------------------------------------- */

/* Result-backend states GenPulse writes and reads. */
#define GP_CELERY_SUCCESS "SUCCESS"
#define GP_CELERY_FAILURE "FAILURE"
#define GP_CELERY_REVOKED "REVOKED"
#define GP_CELERY_PROGRESS "PROGRESS" /* custom, like update_state(): {pct, step} */

/* The meta JSON {status, result, traceback, children, date_done, task_id}. result is stolen
 * (NULL = null); date_done NULL = null (gp_celery_format_date_done). NULL on OOM. */
char *gp_celery_encode_meta(const char *task_id, const char *state, json_t *result,
                            const char *date_done);
/* The exception object of a FAILURE/REVOKED result ({exc_type, exc_message: [msg], exc_module}),
 * new reference (NULL on OOM). module NULL = null. */
json_t *gp_celery_exception(const char *type, const char *message, const char *module);

typedef struct gp_celery_meta {
    json_t *root;         /* owned */
    const char *state;    /* "SUCCESS", …; non-empty, no NUL, after a successful decode */
    const json_t *result; /* may be NULL */
} gp_celery_meta_t;
/* 0, or -1 with the reason in err (out cleared) when text is larger than
 * GP_CELERY_MAX_MESSAGE or not a meta object with a bounded string status. */
int gp_celery_decode_meta(const char *text, size_t len, gp_celery_meta_t *out, char *err,
                          size_t cap);
/* exc_message[0] of a FAILURE/REVOKED result when it is a string, or NULL. Borrowed from m. */
const char *gp_celery_meta_error(const gp_celery_meta_t *m);
void gp_celery_meta_clear(gp_celery_meta_t *m);

/* ---- kombu fanout envelopes: Celery events and remote control (§1.6, §1.8, §1.9) -------- */

#define GP_CELERY_MAX_CONTROL (1u << 20) /* larger control messages are refused */
#define GP_CELERY_MAX_METHOD 64          /* longest control method name */

/* The envelope kombu's Redis transport writes for events and pidbox replies: body = base64 of
 * the JSON text of `body`, headers (stolen; NULL = {}), delivery_mode 1, priority 0,
 * delivery_info {exchange, routing_key}, a delivery tag. Field order as kombu's. NULL on OOM. */
char *gp_celery_encode_envelope(const json_t *body, json_t *headers, const char *exchange,
                                const char *routing_key, const char *delivery_tag);

/* Python's repr() of a JSON value ({'a': 1, 'b': True, 'c': None}), which Celery's events and
 * `inspect active` carry for args, kwargs and results. Cut at max bytes (then ends in
 * "..."). malloc'd; NULL on OOM. */
char *gp_celery_pyrepr(const json_t *v, size_t max);

/* A decoded pidbox (remote control) message. Pointers are into `root` (owned), valid until
 * gp_celery_control_clear(). */
typedef struct gp_celery_control {
    json_t *root;               /* the decoded body object */
    const char *method;         /* 1..GP_CELERY_MAX_METHOD bytes of [a-z_] */
    const json_t *arguments;    /* an object, or NULL when absent or null */
    const json_t *destination;  /* an array of node-name strings, or NULL = every node */
    const char *pattern;        /* NULL, or a glob over node names (matcher "glob"/null) */
    bool pattern_pcre;          /* matcher "pcre": not supported, matches no node */
    const char *ticket;         /* NULL = no reply wanted */
    const char *reply_exchange; /* set with ticket */
    const char *reply_routing_key;
    long long clock; /* headers.clock (0 when absent) */
    double expires;  /* headers.expires, unix seconds (0 = none) */
} gp_celery_control_t;

/* Parses a pidbox envelope and its base64 body. 0, or -1 with the reason in err (out cleared)
 * on anything malformed: larger than GP_CELERY_MAX_CONTROL, not an envelope object with an
 * application/json base64 body, a body that is not an object with a method name, arguments
 * that are not an object, a destination that is not null or a list of bounded strings, a
 * reply_to without string exchange and routing_key, ticket/routing key/pattern longer than
 * GP_CELERY_MAX_NAME or holding control characters, clock/expires of the wrong type. */
int gp_celery_decode_control(const char *msg, size_t len, gp_celery_control_t *out, char *err,
                             size_t cap);
/* Whether the message is addressed to node (destination list, else pattern, else all). */
bool gp_celery_control_for(const gp_celery_control_t *c, const char *node);
void gp_celery_control_clear(gp_celery_control_t *c);

#endif
