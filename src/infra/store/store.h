/*
 * store.h — the state store: the source of truth for tasks.
 *
 * A backend is a const gp_store_vt_t named gp_store_backend_<stem> in src/infra/store/;
 * the build collects them (tools/gen_registry.sh) and gp_store_open() picks one by the URL
 * scheme, so the core never names a backend. An instance's first member is its vtable.
 *
 * Writes are gp_store_op_t batches: apply_batch() runs all of them in ONE transaction
 * (group commit, see runtime/committer.h) and sets each op's result independently: a failed
 * compare-and-set in one op does not undo the others. Every transition is a compare-and-set
 * on (status, attempts), so a duplicate execution commits nothing twice.
 *
 * Credits ride on the same ops, in the same transaction, so a crash can never separate a
 * task's state from its money. A user row holds `credits` (available) and `reserved`; the
 * append-only ledger has one row per movement with a unique key per (task, kind, round):
 *   CREATE with price > 0      reserve: credits -= price, reserved += price; if credits <
 *                              price, the op fails with -GP_E_INSUFFICIENT_CREDITS and no task
 *                              row is written (a replayed idempotency key reserves nothing)
 *   → succeeded                capture: reserved -= price
 *   → failed / canceled        release: reserved -= price, credits += price (unless
 *     (CANCEL of a pending       keep_reservation)
 *     task included)
 *   failed → pending with      reserve again (charge_round + 1)
 *     reserve_again
 * The unique keys make every step happen at most once, whatever is replayed or redelivered;
 * credits never go below zero.
 *
 * Threading: apply_batch() is called by one thread at a time (the committer). get(), list()
 * and scan_unfinished() may be called from any thread concurrently with it.
 */
#ifndef GP_STORE_H
#define GP_STORE_H

#include "core/settings.h"
#include "core/task.h"
#include "core/webhook.h"

#include <stddef.h>

typedef struct gp_store gp_store_t;

typedef enum gp_store_op_kind {
    GP_OP_CREATE,     /* insert task (or find the one with the same idempotency key) */
    GP_OP_TRANSITION, /* compare-and-set status/attempts and set fields */
    GP_OP_CANCEL,     /* pending → canceled, or processing → cancel_requested */
    GP_OP_CLAIM,      /* pending(n) → processing(n+1), returning the row */
} gp_store_op_kind_t;

typedef struct gp_transition {
    char id[37];
    gp_task_status_t from_status;
    int from_attempts;
    gp_task_status_t to_status;
    int to_attempts;
    int64_t started_at;     /* 0 = keep */
    int64_t completed_at;   /* 0 = keep, -1 = clear */
    int64_t not_before;     /* written as is */
    json_t *result;         /* borrowed; NULL = keep */
    const char *error_code; /* NULL = clear */
    const char *error_message;
    /* From processing: if a cancel was requested meanwhile, end canceled instead (so a
     * cancel answered 202 never ends succeeded). The status written is reported back. */
    bool honor_cancel;
    /* Credits (tasks with a price): ending failed/canceled releases the reservation unless
     * keep_reservation (the outcome at the provider is unknown: it may have been billed).
     * reserve_again (a manual retry, failed → pending) reserves the price anew; without the
     * balance the op fails with -GP_E_INSUFFICIENT_CREDITS and nothing changes. */
    bool keep_reservation;
    bool reserve_again;
    /* The caller read the task and its price is 0: no credit can move, so the store skips
     * the settlement work (the common case stays as cheap as before credits existed). */
    bool known_free;
    gp_task_status_t applied_status; /* out */
} gp_transition_t;

typedef enum gp_cancel_outcome {
    GP_CANCEL_DONE,      /* was pending, now canceled */
    GP_CANCEL_REQUESTED, /* is processing; the worker was asked to stop */
    GP_CANCEL_TOO_LATE,  /* already terminal */
} gp_cancel_outcome_t;

typedef struct gp_store_op gp_store_op_t;
struct gp_store_op {
    gp_store_op_kind_t kind;
    gp_task_t *task;          /* CREATE: in = new row; out = stored row (the first one on replay) */
    bool replayed;            /* CREATE: an earlier task had the same idempotency key */
    gp_transition_t tr;       /* TRANSITION */
    char cancel_id[37];       /* CANCEL; also the id for CLAIM */
    int64_t claim_started_at; /* CLAIM; op->task receives the claimed row */
    bool claim_takeover;      /* CLAIM: also take a processing task (its holder's lease expired) */
    /* CLAIM: the claiming worker process (borrowed; NULL = none). Written to tasks.worker_id
     * and to the new task_attempts row, in the claim's transaction. */
    const char *claim_worker_id;
    gp_cancel_outcome_t cancel_outcome;
    int result; /* 0, -GP_E_CONFLICT (CAS lost), -GP_E_NOT_FOUND, other -GP_E_* */
    /* Out: webhook deliveries the op added to the outbox, in its transaction (see
     * "webhooks" below); the committer wakes the delivery loop when any batch adds some. */
    int webhooks_added;
    /* Completion, called on the committer thread after the transaction ends. */
    void (*done)(gp_store_op_t *op, void *arg);
    void *done_arg;
    gp_store_op_t *next; /* committer's queue link */
};

/* ---- attempts history (migration 3) -------------------------------------------------------
 * One row per attempt: CLAIM inserts it ("running"; a takeover first ends the open one as
 * "lost"), and the TRANSITION or CANCEL that ends the attempt fills ended_at, status and the
 * error, all in the op's own transaction. Statuses: running, succeeded, failed, canceled,
 * retried (failed, another attempt follows), interrupted (handed back or recovered after a
 * crash), lost (its worker stopped heartbeating; another worker took the task over). */
typedef struct gp_attempt {
    int attempt; /* 1, 2, ... */
    char worker_id[GP_WORKER_ID_LEN];
    int64_t started_at, ended_at; /* ms; ended_at 0 = still running */
    char status[16];
    char error_code[64];     /* "" = none */
    char error_message[512]; /* "" = none; cut to fit */
} gp_attempt_t;

/* A processing task and the worker that holds it ("" = unknown: a row from before
 * migration 3). */
typedef struct gp_task_holder {
    char task_id[37];
    char worker_id[GP_WORKER_ID_LEN];
} gp_task_holder_t;

/* The attempt status a transition ending an attempt leaves (see above). */
const char *gp_attempt_status_for(gp_task_status_t to, const char *error_code);

typedef struct gp_task_filter {
    const char *owner;     /* NULL = every user's tasks */
    int status;            /* -1 = any */
    const char *task_type; /* NULL = any */
    int64_t before_seq;    /* 0 = from the newest; else seq < before_seq */
    size_t limit;
    const char *id;         /* NULL = any; else only the task with this id */
    const char *provider;   /* NULL = any */
    const char *error_code; /* NULL = any; else tasks whose error has this code */
    /* NULL = any; else some top-level params value, as text, contains it (ASCII letters
     * compared case-insensitively): a word of the prompt, a model name. */
    const char *params_text;
} gp_task_filter_t;

/* ---- stats (the dashboard's charts) --------------------------------------------------------
 * Buckets of `bucket_ms` covering [since, since + n * bucket_ms). A task counts in a bucket
 * when the event happened inside it: created (created_at), succeeded / failed / canceled
 * (completed_at, by final status), started (started_at: the latest attempt's start, whose
 * queue wait started_at - created_at is averaged; a retried task's wait includes its earlier
 * runs). pending / processing are the tasks in that state at the bucket's end, judged from
 * the same three times. Aggregation is shared (stats.c); a backend only selects the rows. */
typedef struct gp_stats_bucket {
    int64_t start_ms;
    int64_t created, succeeded, failed, canceled, started;
    int64_t pending, processing; /* at the bucket's end */
    double wait_avg_ms;          /* over `started`; 0 when none */
    int64_t wait_p50_ms;         /* median wait; 0 when none */
} gp_stats_bucket_t;

typedef struct gp_stats_query {
    const char *owner; /* NULL = every user's tasks */
    int64_t since_ms;
    int64_t bucket_ms; /* > 0 */
    size_t n_buckets;  /* 1..GP_STATS_MAX_BUCKETS */
} gp_stats_query_t;

#define GP_STATS_MAX_BUCKETS 1440

/* The accumulator a backend feeds one row at a time (stats.c). Not thread-safe: one per
 * call. gp_stats_finish writes out[0..n_buckets) and frees what begin allocated. */
typedef struct gp_stats_acc gp_stats_acc_t;
gp_stats_acc_t *gp_stats_begin(const gp_stats_query_t *q);
/* A task's times (ms, 0 = unset) and its current status. */
void gp_stats_add(gp_stats_acc_t *a, int64_t created_at, int64_t started_at, int64_t completed_at,
                  gp_task_status_t status);
void gp_stats_finish(gp_stats_acc_t *a, gp_stats_bucket_t *out);

/* ---- identity records (users and API keys) ------------------------------------------------
 * Owned strings are freed by gp_user_clear / gp_api_key_clear (store.c). The built-in user
 * GP_LOCAL_USER_ID is created by the migration that creates the users table. */
typedef struct gp_user {
    char id[37];        /* a UUID, or GP_LOCAL_USER_ID */
    char *email;        /* stored lower-case, unique; NULL = none */
    char *display_name; /* NULL = none */
    char *plan;         /* never NULL once read ("free" by default) */
    int64_t created_at; /* ms since epoch */
    bool disabled;
    char *oidc_issuer, *oidc_subject; /* both set for users first seen through OIDC; unique pair */
    int64_t credits;                  /* available balance */
    int64_t reserved;                 /* held by unfinished tasks */
} gp_user_t;

typedef struct gp_ledger_entry {
    int64_t seq; /* store-assigned, increasing: orders the ledger */
    char user_id[37];
    char task_id[37];      /* "" for grants */
    char kind[16];         /* "grant", "reserve", "capture", "release" */
    int64_t amount;        /* > 0; the kind says which way it moved */
    int64_t balance_after; /* credits (available) after this entry */
    char *note;            /* NULL = none */
    int64_t created_at;
} gp_ledger_entry_t;

typedef struct gp_api_key {
    char id[37];      /* UUID */
    char user_id[37]; /* the owner */
    char *name;       /* NULL = none */
    char prefix[24];  /* the first characters of the key ("gp_AbCd1234"), shown in lists */
    char hash[65];    /* SHA-256 hex of the whole key: the key itself is never stored */
    char *scopes;     /* canonical, comma-separated ("tasks:read,tasks:write") */
    int64_t created_at, last_used_at, expires_at, revoked_at; /* ms; 0 = unset / never */
} gp_api_key_t;

void gp_user_clear(gp_user_t *u);
void gp_api_key_clear(gp_api_key_t *k);
void gp_ledger_entry_clear(gp_ledger_entry_t *e);

/* ---- webhooks (migration 4) ---------------------------------------------------------------
 * A durable outbox. The ops that start a task (CLAIM of attempt 1: task.started) or end it
 * (TRANSITION or CANCEL to succeeded / failed / canceled) add, in THEIR OWN transaction, one
 * delivery row for the task's own webhook (if its filter takes the event) and one per
 * enabled endpoint of the task's owner subscribed to the type. A row is keyed unique by
 * (task, type, the time of the start or the end, target), so a replayed op adds nothing
 * twice while a manually retried task announces its new run. task.output and task.logs rows
 * are added best-effort by wh_enqueue (outside any batch).
 *
 * The delivery loop claims due pending rows with a lease (next_attempt_at moves to the
 * lease's end; PostgreSQL: FOR UPDATE SKIP LOCKED, so several gateways share the work),
 * renders the payload once (wh_set_payload), and records each attempt (wh_record). A process
 * killed mid-attempt leaves the row leased: it is due again when the lease ends. */
typedef struct gp_webhook_endpoint {
    char id[GP_WH_ID_LEN]; /* "ep_…" */
    char owner[37];
    char *url;
    char secret[GP_WH_SECRET_LEN];
    unsigned event_types; /* GP_WH_TYPE_* */
    char *description;    /* NULL = none */
    bool disabled;
    char disabled_reason[160]; /* "" = none (set by hand, or "410 Gone from the endpoint") */
    int64_t created_at, updated_at;
} gp_webhook_endpoint_t;

typedef struct gp_webhook_delivery {
    int64_t seq;           /* store-assigned; orders the list (newest first) and is its cursor */
    char id[GP_WH_ID_LEN]; /* the stable webhook-id "msg_…" */
    char owner[37];
    char endpoint_id[GP_WH_ID_LEN]; /* "" = the task's own webhook */
    char task_id[37];
    char event_type[24]; /* "task.started" … */
    char *url;
    int format;              /* GP_WEBHOOK_FORMAT_* */
    char *payload;           /* NULL = not rendered yet */
    char status[12];         /* "pending", "succeeded", "failed" */
    int attempts;            /* made so far */
    int round_start;         /* attempts when the current schedule began (a resend restarts it) */
    int64_t next_attempt_at; /* ms; while claimed, the lease's end */
    int last_status_code;    /* 0 = none */
    char last_error[256];    /* "" = none */
    int64_t created_at, completed_at; /* ms; completed_at 0 = not yet */
} gp_webhook_delivery_t;

typedef struct gp_webhook_attempt {
    int attempt; /* 1, 2, ... */
    int64_t started_at;
    int64_t duration_ms;
    int status_code;     /* 0 = no HTTP answer */
    char error[256];     /* "" = none */
    char response[1025]; /* the start of the response body ("" = none) */
} gp_webhook_attempt_t;

typedef struct gp_webhook_filter {
    const char *owner;       /* NULL = every user's */
    const char *endpoint_id; /* NULL = any; "" = task webhooks only */
    const char *task_id;     /* NULL = any */
    const char *status;      /* NULL = any */
    int64_t before_seq;      /* 0 = from the newest */
    size_t limit;
} gp_webhook_filter_t;

/* What one attempt left (wh_record). */
typedef struct gp_webhook_outcome {
    const char *status;      /* "pending" (retry at next_attempt_at), "succeeded", "failed" */
    int64_t next_attempt_at; /* for "pending" */
    bool disable_endpoint;   /* a 410 from a per-user endpoint: disable it, with reason */
    const char *reason;
} gp_webhook_outcome_t;

void gp_webhook_endpoint_clear(gp_webhook_endpoint_t *e);
void gp_webhook_delivery_clear(gp_webhook_delivery_t *d);

typedef struct gp_store_vt {
    const char *scheme; /* URL scheme this backend serves ("sqlite") */
    int (*open)(gp_store_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap);
    void (*close)(gp_store_t *st);
    /* Applies pending schema migrations; safe to run at every start. */
    int (*migrate)(gp_store_t *st, char *err, size_t cap);
    /* Returns 0 if the transaction committed (ops carry their own results) or -GP_E_*. */
    int (*apply_batch)(gp_store_t *st, gp_store_op_t **ops, size_t n);
    /* 0 and fills out (caller clears), or -GP_E_NOT_FOUND / -GP_E_*. */
    int (*get)(gp_store_t *st, const char *id, gp_task_t *out);
    /* Fills out[0..*n) newest first (caller clears each). */
    int (*list)(gp_store_t *st, const gp_task_filter_t *f, gp_task_t *out, size_t *n);
    /* Calls fn for every pending or processing task, oldest first. */
    int (*scan_unfinished)(gp_store_t *st, void (*fn)(const gp_task_t *t, void *arg), void *arg);

    /* Identity. Each call is its own short transaction, from any thread, concurrently with
     * apply_batch. Results: 0, -GP_E_NOT_FOUND, -GP_E_CONFLICT (a unique field is taken),
     * other -GP_E_*. Getters fill *out (caller clears). */
    int (*user_create)(gp_store_t *st, const gp_user_t *u);
    /* By id, else by email (case-insensitive). */
    int (*user_get)(gp_store_t *st, const char *id_or_email, gp_user_t *out);
    int (*user_by_oidc)(gp_store_t *st, const char *issuer, const char *subject, gp_user_t *out);
    /* Oldest first, after the user whose id is after_id (NULL = from the start); at most cap. */
    int (*user_list)(gp_store_t *st, const char *after_id, gp_user_t *out, size_t cap, size_t *n);
    int (*key_create)(gp_store_t *st, const gp_api_key_t *k);
    int (*key_by_hash)(gp_store_t *st, const char *hash_hex, gp_api_key_t *out);
    /* Oldest first; user_id NULL = every user's keys; after_id as in user_list. */
    int (*key_list)(gp_store_t *st, const char *user_id, const char *after_id, gp_api_key_t *out,
                    size_t cap, size_t *n);
    /* Sets revoked_at (kept if already revoked). -GP_E_NOT_FOUND for an unknown id. */
    int (*key_revoke)(gp_store_t *st, const char *id, int64_t now_ms);
    int (*key_touch)(gp_store_t *st, const char *id, int64_t now_ms); /* last_used_at */
    /* Keys neither revoked nor expired at now_ms. */
    int (*keys_active)(gp_store_t *st, int64_t now_ms, int64_t *count);
    /* The user's pending tasks, counted up to cap (the plan's queue limit): *n <= cap. */
    int (*count_pending)(gp_store_t *st, const char *owner, int64_t cap, int64_t *n);
    /* Changes a user's plan (NULL = keep) and disabled flag (-1 = keep). */
    int (*user_update)(gp_store_t *st, const char *id, const char *plan, int disabled);

    /* Credits. grant adds amount (> 0) to the user's available credits with a ledger row
     * keyed unique_key: the same key twice grants once (the second call returns
     * -GP_E_CONFLICT and changes nothing). *balance_out (may be NULL) = credits after. */
    int (*credits_grant)(gp_store_t *st, const char *user_id, int64_t amount,
                         const char *unique_key, const char *note, int64_t *balance_out);
    /* The user's ledger, newest first, entries with seq < before_seq (0 = from the newest). */
    int (*ledger_list)(gp_store_t *st, const char *user_id, int64_t before_seq,
                       gp_ledger_entry_t *out, size_t cap, size_t *n);

    /* Readiness: a round trip to the database that reads the applied schema version
     * (*applied) and the version this binary expects (*expected). 0 or -GP_E_*. */
    int (*schema_status)(gp_store_t *st, int *applied, int *expected);

    /* Stats: fills out[0..q->n_buckets) (see gp_stats_bucket_t); any thread. 0 or -GP_E_*. */
    int (*stats)(gp_store_t *st, const gp_stats_query_t *q, gp_stats_bucket_t *out);
    /* Attempts history, any thread. The task's attempts, oldest first, at most cap (*n). */
    int (*attempts_list)(gp_store_t *st, const char *task_id, gp_attempt_t *out, size_t cap,
                         size_t *n);
    /* The processing tasks and their workers, oldest first, at most cap (*n). */
    int (*holders_list)(gp_store_t *st, gp_task_holder_t *out, size_t cap, size_t *n);

    /* Webhooks (see "webhooks" above). Each call is its own short transaction, any thread.
     * Results: 0, -GP_E_NOT_FOUND, -GP_E_CONFLICT, other -GP_E_*; getters fill *out (caller
     * clears). Endpoints: */
    int (*wh_endpoint_create)(gp_store_t *st, const gp_webhook_endpoint_t *e);
    int (*wh_endpoint_get)(gp_store_t *st, const char *id, gp_webhook_endpoint_t *out);
    /* Oldest first; owner NULL = every user's; at most cap (*n). */
    int (*wh_endpoint_list)(gp_store_t *st, const char *owner, gp_webhook_endpoint_t *out,
                            size_t cap, size_t *n);
    /* Rewrites url, secret, event_types, description, disabled(+reason), updated_at. */
    int (*wh_endpoint_update)(gp_store_t *st, const gp_webhook_endpoint_t *e);
    int (*wh_endpoint_delete)(gp_store_t *st, const char *id);
    /* The owner's default secret (signs task webhooks): stored as `candidate` if the owner
     * has none yet, then read back into out. */
    int (*wh_default_secret)(gp_store_t *st, const char *owner, const char *candidate,
                             char out[GP_WH_SECRET_LEN]);
    /* Best-effort event (GP_WH_TYPE_OUTPUT / _LOGS) of a task now: rows for its webhook and
     * its owner's endpoints; *added (may be NULL) = how many. */
    int (*wh_enqueue)(gp_store_t *st, const char *task_id, unsigned type, int64_t now_ms,
                      int *added);
    /* Claims up to cap pending rows due at now_ms, leasing them until now_ms + lease_ms. */
    int (*wh_claim)(gp_store_t *st, int64_t now_ms, int64_t lease_ms, gp_webhook_delivery_t *out,
                    size_t cap, size_t *n);
    int (*wh_set_payload)(gp_store_t *st, const char *id, const char *payload);
    /* One attempt: its row, and the delivery's new state (attempts + 1). */
    int (*wh_record)(gp_store_t *st, const char *id, const gp_webhook_attempt_t *a,
                     const gp_webhook_outcome_t *o);
    int (*wh_delivery_get)(gp_store_t *st, const char *id, gp_webhook_delivery_t *out);
    int (*wh_delivery_list)(gp_store_t *st, const gp_webhook_filter_t *f,
                            gp_webhook_delivery_t *out, size_t *n);
    /* The delivery's attempts, oldest first, at most cap. */
    int (*wh_attempts_list)(gp_store_t *st, const char *id, gp_webhook_attempt_t *out, size_t cap,
                            size_t *n);
    /* Due again now, with a new schedule (same id, same payload). */
    int (*wh_resend)(gp_store_t *st, const char *id, int64_t now_ms);
    /* Ends every lease (embedded start: no other process can hold one). */
    int (*wh_release_leases)(gp_store_t *st);
    /* Optional (NULL = none): waits up to timeout_ms for another process to commit new
     * deliveries; 1 = some may be due, 0 = timeout, -1 = the database is unreachable (the
     * caller should not query it until a call returns >= 0). One thread at a time. */
    int (*wh_wait)(gp_store_t *st, int64_t timeout_ms);
} gp_store_vt_t;

struct gp_store {
    const gp_store_vt_t *vt;
};

extern const gp_store_vt_t *const gp_generated_store_backends[];

/* Picks the backend by URL scheme (empty URL: "sqlite" in data_dir). */
int gp_store_open(gp_store_t **out, const gp_settings_t *s, char *err, size_t cap);

static inline void gp_store_close(gp_store_t *st)
{
    if (st)
        st->vt->close(st);
}
static inline int gp_store_migrate(gp_store_t *st, char *err, size_t cap)
{
    return st->vt->migrate(st, err, cap);
}
static inline int gp_store_apply_batch(gp_store_t *st, gp_store_op_t **ops, size_t n)
{
    return st->vt->apply_batch(st, ops, n);
}
static inline int gp_store_get(gp_store_t *st, const char *id, gp_task_t *out)
{
    return st->vt->get(st, id, out);
}
static inline int gp_store_list(gp_store_t *st, const gp_task_filter_t *f, gp_task_t *out,
                                size_t *n)
{
    return st->vt->list(st, f, out, n);
}
static inline int gp_store_scan_unfinished(gp_store_t *st, void (*fn)(const gp_task_t *, void *),
                                           void *arg)
{
    return st->vt->scan_unfinished(st, fn, arg);
}

#endif
