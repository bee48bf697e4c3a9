/*
 * http_internal.h — what the gateway's files share: the gateway and one request.
 *
 * Private to src/api/. A request_t belongs to its connection: it is created by on_request
 * on an MHD event thread and freed by on_completed. While its connection is suspended the
 * thread doing its asynchronous step (the committer, an offload worker) owns the fields
 * that step writes, until it resumes the connection; only then does `finish` read them.
 */
#ifndef GP_API_HTTP_INTERNAL_H
#define GP_API_HTTP_INTERNAL_H

#include "api/offload.h"
#include "api/router.h"
#include "api/server.h"
#include "core/registry.h"
#include "infra/events/events.h"
#include "identity/auth.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define GP_HTTP_VERSION "0.1.0"
#define GP_REQUEST_ID_LEN 64 /* X-Request-Id: longest accepted from a client */

typedef struct sse_client sse_client_t;
typedef struct gp_waits gp_waits_t;             /* wait.c: the waiting creates */
typedef struct gp_task_waiter gp_task_waiter_t; /* wait.c: one of them */

struct gp_http {
    gp_runtime_t *rt;
    struct MHD_Daemon *daemon;
    int port;
    char *task_types_json; /* built once: the registry never changes */
    char *upload_dir;      /* DATA_DIR/uploads: uploads in flight */
    size_t task_types_len;
    char *openapi_json; /* built once (openapi.c): the routes and the registry never change */
    size_t openapi_len;
    pthread_mutex_t clients_lock;
    sse_client_t *clients;
    atomic_int inflight;    /* suspended requests waiting for a commit or an offload job */
    MHD_socket quiesced_fd; /* listen socket handed back by quiesce; closed after stop */
    gp_offload_t *offload;  /* blocking work off the event threads */
    gp_auth_t *auth;        /* who is calling */
    struct gp_oidc *oidc;   /* ID token issuers; NULL = none configured */
    const char *issuers[2]; /* their names (borrowed from the settings), for sign-in */
    size_t n_issuers;
    uint8_t session_secret[32]; /* signs browser cookies (core/session_token.h) */
    uint8_t link_secret[32];    /* signs /files/ links (core/signed_link.h) */
    pthread_t heartbeat;
    pthread_mutex_t hb_lock;
    pthread_cond_t hb_cond;
    bool hb_stop;
    gp_waits_t *waits; /* Prefer: wait (wait.c) */

    struct gp_rep_catalog *replicate; /* the Replicate model catalog (api/replicate.h) */
    struct gp_webhooks *webhooks;     /* the delivery loop (webhooks.c); NULL = not run here */
};

typedef enum req_state {
    REQ_NEW,
    REQ_BODY,    /* headers admitted; reading the body */
    REQ_WAITING, /* suspended: a commit or an offload job is running */
    REQ_READY    /* resumed: the route's finish hook answers */
} req_state_t;

/* The outcome of an upload or asset read done on the offload pool: written by the job,
 * read by the route's finish hook. */
typedef struct asset_job {
    json_t *meta;        /* the asset's metadata on success (owned) */
    int err;             /* gp_err_t, 0 = success */
    const char *message; /* static; NULL = err's default */
    char detail[256];    /* the body.file detail, "" = none */
    const char *type;    /* sniffed media type of an upload (static) */
    char id[37];
} asset_job_t;

/* A browser sign-in step between its start and its offload job (login: the issuer's URL;
 * callback: redeeming the code). url is malloc'd by the job and freed by on_completed. */
typedef struct signin_job {
    int issuer;
    char state[48], nonce[48], verifier[48];
    char flow[640]; /* the signed gp_signin cookie value */
    char *url;
    char return_to[64];
    int rc;
    const char *code;
    char msg[256];
    gp_principal_t principal;
} signin_job_t;

typedef struct request {
    gp_http_t *http;
    struct MHD_Connection *conn;
    const gp_route_t *route;
    gp_path_params_t path_params;
    gp_principal_t principal; /* the caller, set at admission for routes with a scope */
    bool unsafe_method;       /* not GET/HEAD: needs CSRF proof with a session cookie */
    char request_hash[65];    /* create with Idempotency-Key: SHA-256 hex of the body */
    char *body;
    size_t body_len, body_cap, discarded;
    bool too_large;
    req_state_t state;
    gp_store_op_t op;
    gp_task_t task;
    bool dispatched; /* a created task was handed to the queue */
    bool wait_over;  /* gp_http_wait_task resumed r: r->task is as fresh as the store has it */
    int wait_s;      /* the Prefer: wait seconds being applied (0 = none) */
    gp_task_waiter_t *waiter; /* set while gp_http_wait_task waits (wait.c) */
    /* uploads: the "file" part streams into upload_path */
    struct MHD_PostProcessor *post;
    char *upload_path;
    FILE *upload_file;
    char upload_declared_type[128];
    uint64_t upload_bytes;
    bool upload_has_file, upload_failed;
    asset_job_t asset;
    signin_job_t signin;
    void (*offload_job)(struct request *r); /* the job gp_http_offload runs */
    json_t *job_body; /* a simple offload job's answer (owned; freed by on_completed) */
    bool job_ok;
    char *metrics_text; /* GET /metrics: built by the offload job, sent by finish */
    size_t metrics_len;
    /* Access log and metrics (server.c): when admission began, the request id. */
    double started;  /* gp_metrics_clock() */
    unsigned status; /* the response's status; 0 = none was queued */
    char method[8];  /* a known method or "other" (a label, so from a fixed set) */
    char request_id[GP_REQUEST_ID_LEN + 1];
} request_t;

/* server.c: suspends r (state REQ_WAITING, counted in inflight) and runs job on the offload
 * pool; when it returns the connection resumes and the route's finish hook answers. */
void gp_http_offload(request_t *r, void (*job)(request_t *r));
/* server.c: suspends r for the commit of r->op (already filled in), then finish answers. */
void gp_http_defer_commit(request_t *r);

/* tasks.c: the create path every surface that makes tasks shares (POST /v1/tasks, the
 * Replicate routes). begin turns a validated submission into r->task (owner, the plan's
 * priority, price and queue limit, the request id; body fingerprints an Idempotency-Key)
 * and suspends r for the commit; sub is consumed either way. Returns 0 (the route's finish
 * hook runs after the commit and calls gp_tasks_create_outcome), or -GP_E_TOO_MANY_QUEUED
 * with nothing suspended and the reason in msg. */
int gp_tasks_begin_create(request_t *r, const json_t *body, gp_submission_t *sub,
                          const char *idempotency_key, char *msg, size_t cap);
/* In that finish hook, first: ends the create (dispatch, metrics; a replay leaves r->task the
 * first request's row and r->op.replayed set), answers its errors (credits, conflict,
 * Idempotency-Key reuse, store down) in the request's error style, and begins the Prefer:
 * wait when one applies. Returns true when the caller answers now from r->task (created,
 * replayed, or re-read after a wait); false with *ret the hook's return (an error queued or
 * the wait begun). Event thread only. */
bool gp_tasks_create_outcome(request_t *r, enum MHD_Result *ret);

/* wait.c: Prefer: wait / wait=N (RFC 7240; Replicate's bounds). Returns 1..60 seconds, 0 when
 * the request asks no wait, or -1 when the wait preference is malformed (N not 1..60). */
int gp_prefer_wait(request_t *r);
/* wait.c: in a finish hook, with r->task a committed task: suspends r (no thread held) until
 * the task ends or `seconds` pass, then resumes it, re-reads r->task from the store, sets
 * r->wait_over and runs the route's finish hook again. */
void gp_http_wait_task(request_t *r, int seconds);

/* tasks.c: a create's answer headers: Preference-Applied (the wait as the client wrote it:
 * "wait" or "wait=N") and Idempotent-Replayed, written into headers from index n on (room
 * for 4 more entries and the NULL); applied (16 bytes) holds the value. */
void gp_tasks_create_headers(request_t *r, const char **headers, size_t n, char applied[16]);

/* wait.c: the timer thread (start), resuming every waiting request (end_all, at stop), and
 * freeing it all once no request waits (stop). gp_wait_release (server.c, on the request's
 * event thread) ends r's wait: before its finish hook runs again (reread: r->task is read
 * anew from the store) and when it completes (no reread). */
int gp_waits_start(gp_http_t *h);
void gp_waits_end_all(gp_http_t *h);
void gp_waits_stop(gp_http_t *h);
void gp_wait_release(request_t *r, bool reread);

/* openapi.c: builds h->openapi_json (GET /openapi.json) from the route table, the registry
 * and h's settings; at start, before the daemon. 0 or -GP_E_NOMEM. */
int gp_openapi_build(gp_http_t *h);

/* tasks.c: the task id names, if r's caller may see it (else -GP_E_NOT_FOUND); t to clear. */
int gp_tasks_load_visible(request_t *r, const char *id, gp_task_t *t);
/* tasks.c: a cancel's two halves, for every surface that cancels (the Replicate routes).
 * begin: the task id names, if r's caller may see it, goes to the committer as a cancel (r is
 * suspended; 0), else -GP_E_NOT_FOUND and nothing is suspended. announce: in the finish hook,
 * with t re-read after the commit, tells the bus (and a running worker) what the commit did. */
int gp_tasks_cancel_begin(request_t *r, const char *id);
void gp_tasks_cancel_announce(request_t *r, const gp_task_t *t);
/* tasks.c: an Idempotency-Key header value is 1..255 visible ASCII characters. */
bool gp_tasks_idempotency_key_ok(const char *key);
/* tasks.c: on_completed's part for the task routes (a created task whose client left). */
void gp_tasks_on_completed(request_t *r);

/* webhooks.c: registers the delivery bodies' renderers and starts the delivery loop
 * (--webhooks); 0, or -1 with err. stop ends the loop (before the gateway goes). */
int gp_webhooks_api_start(gp_http_t *h, char *err, size_t cap);
void gp_webhooks_api_stop(gp_http_t *h);

/* events.c: the heartbeat thread; gp_sse_end_all ends every stream (at stop). */
int gp_sse_start(gp_http_t *h);
void gp_sse_stop(gp_http_t *h);
void gp_sse_end_all(gp_http_t *h);

/* events.c: a task's event stream in another wire format (the Replicate stream). The
 * callbacks run with the stream locked and must not block; they write with gp_sse_write*
 * and may end the stream with gp_sse_close (it ends by itself after a terminal event). */
typedef struct gp_sse_format {
    /* Once, first: the stream's opening, for task t as read after subscribing (hot NULL =
     * no hot state). */
    void (*open)(sse_client_t *c, const gp_task_t *t, const gp_hot_state_t *hot, void *state);
    /* Each later bus event of the task, in order (ev->data: a gp_task_snapshot JSON text). */
    void (*event)(sse_client_t *c, const gp_event_t *ev, void *state);
    size_t state_size; /* bytes of per-stream state, zeroed, passed to both, freed at the end */
} gp_sse_format_t;
/* Answers r with the events of task id: fmt NULL = GenPulse's own format (with the snapshot
 * and Last-Event-ID rules). any_owner: the caller proved access otherwise (a signed link),
 * so the task is read without the owner check; else another user's task is a 404. fmt is
 * borrowed for the stream's life (static). */
enum MHD_Result gp_sse_task_stream(request_t *r, const char *id, bool any_owner,
                                   const gp_sse_format_t *fmt);
/* With the stream locked: raw text; one event (id NULL = no id line; data may hold
 * newlines, each line becomes a data: field); the end after what is buffered. */
void gp_sse_write(sse_client_t *c, const char *text, size_t n);
void gp_sse_write_event(sse_client_t *c, const char *id, const char *type, const char *data,
                        size_t n);
void gp_sse_close(sse_client_t *c);
/* The gateway a stream belongs to (for links), any thread. */
gp_http_t *gp_sse_http(const sse_client_t *c);

/* assets.c: multipart upload plumbing used by body reading in server.c. */
enum MHD_Result gp_upload_begin(request_t *r);
enum MHD_Result gp_upload_feed(request_t *r, const char *data, size_t n);
void gp_upload_cleanup(request_t *r);

#endif
