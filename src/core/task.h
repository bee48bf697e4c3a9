/*
 * task.h — the task record as the store keeps it, and its JSON form for clients.
 * A gp_task_t owns its strings and JSON (gp_task_clear frees them). Not shared across
 * threads without copying.
 */
#ifndef GP_TASK_H
#define GP_TASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum gp_task_status {
    GP_TASK_PENDING,
    GP_TASK_PROCESSING,
    GP_TASK_SUCCEEDED,
    GP_TASK_FAILED,
    GP_TASK_CANCELED,
} gp_task_status_t;

const char *gp_task_status_name(gp_task_status_t s);
/* Returns the status or -1 when unknown. */
int gp_task_status_parse(const char *s);
bool gp_task_status_terminal(gp_task_status_t s);

/* The built-in user: owns the work of a zero-configuration server and, unless
 * --service-user says otherwise, the work that enters through Redis. */
#define GP_LOCAL_USER_ID "local"

/* Room for a worker id "<host>:<pid>:<8 hex>" and its NUL (see infra/presence/presence.h). */
#define GP_WORKER_ID_LEN 96

typedef struct gp_task {
    char id[37];
    char owner[37]; /* the user id the task belongs to ("" read as GP_LOCAL_USER_ID) */
    int64_t seq;    /* store-assigned, orders the list endpoint */
    char *task_type;
    char *provider;
    gp_task_status_t status;
    json_t *params;   /* owned */
    json_t *result;   /* owned; NULL = none */
    char *error_code; /* NULL = no error */
    char *error_message;
    int attempts; /* runs started so far */
    int max_retries;
    int priority;
    bool cancel_requested;
    char *idempotency_key; /* NULL = none; per owner */
    char *request_hash; /* SHA-256 hex of the creating request (idempotency check); NULL = none */
    /* Credits reserved when the task was accepted (0 = free): captured when it succeeds,
     * released when it fails or is canceled (store.h, "credits"). */
    int64_t price;
    int charge_round; /* 0, +1 for each manual retry that reserved again */
    int64_t created_at, started_at, completed_at, not_before; /* ms since epoch; 0 = unset */
    /* The worker process of the current or latest attempt (presence.h's id); "" = none yet,
     * or a row from before the store's migration 3. */
    char worker_id[GP_WORKER_ID_LEN];
    /* The task's own webhook (Replicate's per-prediction webhook): an http(s) URL, NULL =
     * none; webhook_events = the GP_WEBHOOK_EV_* it asked for (0 with no webhook). */
    char *webhook;
    unsigned webhook_events;
    /* How the task's own webhook renders its body: the surface that created the task
     * (GP_WEBHOOK_FORMAT_*: a GenPulse task, or a Replicate prediction). */
    int webhook_format;
} gp_task_t;

enum {
    GP_WEBHOOK_FORMAT_TASK = 0,
    GP_WEBHOOK_FORMAT_REPLICATE = 1
};

/* A task webhook's event filter, as Replicate names the events (webhook_events_filter). */
enum {
    GP_WEBHOOK_EV_START = 1u << 0,     /* the task started running */
    GP_WEBHOOK_EV_OUTPUT = 1u << 1,    /* new output (progress with a preview or outputs) */
    GP_WEBHOOK_EV_LOGS = 1u << 2,      /* new log/progress text */
    GP_WEBHOOK_EV_COMPLETED = 1u << 3, /* the task ended: succeeded, failed or canceled */
    GP_WEBHOOK_EV_ALL = 0xfu
};
/* "start" → GP_WEBHOOK_EV_START …; 0 when the name is unknown. */
unsigned gp_webhook_event_parse(const char *name);
/* The names of the bits in mask, in the order start, output, logs, completed (new array). */
json_t *gp_webhook_events_json(unsigned mask);

/* The id of the HTTP request that created a task travels in its params under this key (no
 * store column needed; submissions cannot set it: unknown params are refused). Clients see
 * it as the task's "request_id", handlers never see it (gp_ctx_init removes it). */
#define GP_TASK_REQUEST_ID_PARAM "_request_id"
/* A surface's own view of the task (the Replicate API's model, version and input as given)
 * travels in params under this key, the same way: gp_ctx_init removes it, /v1/tasks hides it. */
#define GP_TASK_SURFACE_PARAM "_replicate"
/* The request id kept in params, or NULL; borrowed from params. */
const char *gp_task_request_id(const json_t *params);

void gp_task_clear(gp_task_t *t);
/* Deep copy into dst (which is overwritten, not cleared). */
void gp_task_copy(gp_task_t *dst, const gp_task_t *src);

/* Fast-changing state kept outside the database (seed 003's split state). */
typedef struct gp_hot_state {
    int progress;   /* -1 = unknown */
    char step[256]; /* "" = none */
    uint64_t seq;   /* last event id published for the task */
} gp_hot_state_t;

/* The client-facing task object (GET /v1/tasks/{id}). hot may be NULL. New reference. */
/* A preview published mid-run travels in the hot state's step as GP_STEP_PREVIEW "<url>";
 * snapshots show it as step "preview" plus preview_url (see gp_ctx_publish_preview). */
#define GP_STEP_PREVIEW "preview:"

json_t *gp_task_to_json(const gp_task_t *t, const gp_hot_state_t *hot, const char *public_url);

/* How tasks and snapshots go on the wire (HTTP answers, events): compact, with reals at 15
 * significant digits, so a duration of 0.025 s reads 0.025 rather than 0.025000000000000001. */
#define GP_JSON_WIRE (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* The compact snapshot carried by events: id, status, progress, step, result, error, attempts. */
json_t *gp_task_snapshot(const gp_task_t *t, const gp_hot_state_t *hot);

#endif
