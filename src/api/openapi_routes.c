/*
 * openapi_routes.c — the route documentation: data only, one entry per (method, pattern) of
 * the route table (openapi.h says how it is used), and the component schemas the entries
 * name. Schemas are JSON written with single quotes (openapi.c turns ' into "), so no text
 * here may use an apostrophe; use a typographic one (’) instead.
 *
 * Entries for routes other surfaces add (webhooks, the Replicate-compatible API) are here
 * too; they are emitted once their rows exist in the route table.
 */
#include "api/openapi.h"

#include <string.h>

/* ------------------------------------------------------------------ shared parameters */

#define S_UUID "{'type':'string','format':'uuid','maxLength':36}"
#define P_TASK_ID                                                                                  \
    {                                                                                              \
        "id", "path", S_UUID, "The task id (a UUID).", true                                        \
    }
#define P_ID(what)                                                                                 \
    {                                                                                              \
        "id", "path", "{'type':'string','minLength':1,'maxLength':159}", what, true                \
    }
#define Q_LIMIT                                                                                    \
    {                                                                                              \
        "limit", "query", "{'type':'integer','minimum':1,'maximum':100,'default':20}",             \
            "Page size (1 to 100).", false                                                         \
    }
#define Q_CURSOR                                                                                   \
    {                                                                                              \
        "cursor", "query", "{'type':'string','maxLength':64}",                                     \
            "The `next_cursor` of the previous page; absent for the first page.", false            \
    }
#define H_IDEMPOTENCY                                                                              \
    {                                                                                              \
        "Idempotency-Key", "header", "{'type':'string','minLength':1,'maxLength':255}",            \
            "Makes a retried request safe: the same key with the same body answers the first "     \
            "request’s result (header `Idempotent-Replayed: true`); with another body, 422.",      \
            false                                                                                  \
    }
#define H_PREFER                                                                                   \
    {                                                                                              \
        "Prefer", "header", "{'type':'string','maxLength':200}",                                   \
            "`wait` or `wait=N` (N = 1 to 60 seconds; bare `wait` = 60): answer when the task "    \
            "ends or after N seconds, whichever is first (RFC 7240). The response carries "        \
            "`Preference-Applied`.",                                                               \
            false                                                                                  \
    }
#define H_LAST_EVENT_ID                                                                            \
    {                                                                                              \
        "Last-Event-ID", "header", "{'type':'string','maxLength':32}",                             \
            "Resume after this event id (EventSource sends it on reconnect).", false               \
    }
#define P_OWNER                                                                                    \
    {                                                                                              \
        "owner", "path", "{'type':'string','minLength':1,'maxLength':159}", "Model owner.", true   \
    }
#define P_NAME                                                                                     \
    {                                                                                              \
        "name", "path", "{'type':'string','minLength':1,'maxLength':159}", "Model name.", true     \
    }

#define R_JSON(st, desc, schema)                                                                   \
    {                                                                                              \
        st, desc, schema, NULL                                                                     \
    }

/* ------------------------------------------------------------------ the routes */

const gp_route_doc_t gp_route_docs[] = {
    /* ---- tasks */
    {.method = "POST",
     .pattern = "/v1/tasks",
     .tag = "Tasks",
     .operation_id = "createTask",
     .summary = "Create a task",
     .description =
         "Validates the body against the task type’s and the provider’s declared params (one "
         "422 detail per bad field), stores the task and queues it. The body is one of the "
         "`CreateTask.<task type>` schemas, chosen by `task_type`; inside `params`, `provider` "
         "chooses the provider’s schema (it may be omitted for the task type’s default "
         "provider). With `Prefer: wait[=N]` the answer waits for the task to finish.",
     .params = {H_IDEMPOTENCY, H_PREFER},
     .request = "CreateTask",
     .responses = {R_JSON(200, "The task finished within the `Prefer: wait` time.", "Task"),
                   R_JSON(202, "Accepted: the task is queued (or still running after the wait).",
                          "Task")},
     .errors = "402 409 422 429 503"},
    {.method = "GET",
     .pattern = "/v1/tasks",
     .tag = "Tasks",
     .operation_id = "listTasks",
     .summary = "List tasks",
     .description = "The caller’s tasks, newest first, in keyset pages (an admin sees every "
                    "user’s, or one user’s with `user`).",
     .params =
         {{"status", "query",
           "{'type':'string','enum':['pending','processing','succeeded','failed','canceled']}",
           "Only tasks in this status.", false},
          {"task_type", "query", "{'type':'string','maxLength':64}",
           "Only tasks of this task type.", false},
          {"provider", "query", "{'type':'string','pattern':'^[a-z0-9_.-]{1,64}$'}",
           "Only tasks run by this provider.", false},
          {"id", "query", S_UUID, "Only the task with this id.", false},
          {"error_code", "query", "{'type':'string','pattern':'^[a-z0-9_.-]{1,64}$'}",
           "Only failed tasks with this error code.", false},
          {"q", "query", "{'type':'string','maxLength':200}", "Text searched in the tasks’ params.",
           false},
          {"user", "query", "{'type':'string','maxLength':64}",
           "A user id: only an admin may name another user.", false},
          Q_LIMIT,
          Q_CURSOR},
     .responses = {R_JSON(200, "A page of tasks.", "TaskList")},
     .errors = "422 503"},
    {.method = "GET",
     .pattern = "/v1/tasks/{}",
     .tag = "Tasks",
     .operation_id = "getTask",
     .summary = "Get a task",
     .description = "The task with its live progress and fresh links to its outputs. Another "
                    "user’s task is 404.",
     .params = {P_TASK_ID},
     .responses = {R_JSON(200, "The task.", "Task")},
     .errors = "404 503"},
    {.method = "POST",
     .pattern = "/v1/tasks/{}/cancel",
     .tag = "Tasks",
     .operation_id = "cancelTask",
     .summary = "Cancel a task",
     .description = "A pending task is canceled at once (200); a running one is asked to stop "
                    "(202, `cancel_requested: true`); a finished one is 409.",
     .params = {P_TASK_ID},
     .responses = {R_JSON(200, "Canceled.", "Task"),
                   R_JSON(202, "Cancel requested: the worker stops it soon.", "Task")},
     .errors = "404 409 503"},
    {.method = "POST",
     .pattern = "/v1/tasks/{}/retry",
     .tag = "Tasks",
     .operation_id = "retryTask",
     .summary = "Retry a failed task",
     .description = "Puts a failed task back in the queue with a fresh retry budget; any other "
                    "status is 409.",
     .params = {P_TASK_ID},
     .responses = {R_JSON(202, "Queued again.", "Task")},
     .errors = "402 404 409 503"},
    {.method = "GET",
     .pattern = "/v1/tasks/{}/result",
     .tag = "Tasks",
     .operation_id = "getTaskResult",
     .summary = "Get a finished task’s result",
     .description = "When the task has finished (succeeded, failed or canceled): its result "
                    "with fresh output links and its error. While it is pending or processing: "
                    "409 `task_not_finished`, the status in the message and in "
                    "`details[0].message`.",
     .params = {P_TASK_ID},
     .responses = {R_JSON(200, "The task finished.", "TaskResult")},
     .errors = "404 409 503"},
    {.method = "GET",
     .pattern = "/v1/tasks/{}/attempts",
     .tag = "Tasks",
     .operation_id = "listTaskAttempts",
     .summary = "List a task’s attempts",
     .description = "Every run of the task: which worker, when, how it ended.",
     .params = {P_TASK_ID},
     .responses = {R_JSON(200, "The attempts, first first.", "AttemptList")},
     .errors = "404 503"},
    {.method = "GET",
     .pattern = "/v1/tasks/{}/events",
     .tag = "Events",
     .operation_id = "streamTaskEvents",
     .summary = "Stream a task’s events (SSE)",
     .description =
         "Server-Sent Events: first the current state, then every change, then the stream ends "
         "after a terminal status. `event: status` on status changes, `event: progress` on "
         "progress; each `data:` is a full `TaskEvent` snapshot and `id:` the task’s event "
         "sequence. Comment heartbeats keep proxies from closing it.",
     .params = {P_TASK_ID, H_LAST_EVENT_ID},
     .responses = {{200, "An event stream.",
                    "{'type':'string','contentMediaType':'application/"
                    "json','contentSchema':{'$ref':'#/components/"
                    "schemas/TaskEvent'}}",
                    "text/event-stream"}},
     .errors = "404 503"},
    {.method = "GET",
     .pattern = "/v1/events",
     .tag = "Events",
     .operation_id = "streamEvents",
     .summary = "Stream every visible task’s events (SSE)",
     .description = "One stream for every task the caller may see (an admin: all), numbered by "
                    "the stream; the dashboard’s live view. Events as in "
                    "`/v1/tasks/{id}/events`.",
     .responses = {{200, "An event stream.",
                    "{'type':'string','contentMediaType':'application/"
                    "json','contentSchema':{'$ref':'#/components/"
                    "schemas/TaskEvent'}}",
                    "text/event-stream"}},
     .errors = "503"},

    /* ---- discovery */
    {.method = "GET",
     .pattern = "/v1/task-types",
     .tag = "Discovery",
     .operation_id = "listTaskTypes",
     .summary = "List task types and their providers",
     .description = "Every task type with each provider’s params JSON Schema and price.",
     .responses = {R_JSON(200, "The task types.", "TaskTypeList")}},
    {.method = "GET",
     .pattern = "/v1/providers",
     .tag = "Discovery",
     .operation_id = "listProviders",
     .summary = "List providers",
     .description = "Every provider: its task types with their params JSON Schema (the same as "
                    "in this document), the settings it reads (names, kinds, whether they have "
                    "a value; never the values), its price and limits.",
     .responses = {R_JSON(200, "The providers.", "ProviderList")}},
    {.method = "GET",
     .pattern = "/v1/providers/{}",
     .tag = "Discovery",
     .operation_id = "getProvider",
     .summary = "Get one provider",
     .description = "One provider, as in the list; for rendering a form per provider.",
     .params = {{"name", "path", "{'type':'string','pattern':'^[a-z0-9_-]{1,64}$'}",
                 "The provider’s name.", true}},
     .responses = {R_JSON(200, "The provider.", "Provider")},
     .errors = "404"},
    {.method = "GET",
     .pattern = "/openapi.json",
     .tag = "Discovery",
     .operation_id = "getOpenApi",
     .summary = "This OpenAPI document",
     .description = "OpenAPI 3.1, generated at start from the route table and the declared "
                    "params.",
     .responses = {R_JSON(200, "The document.", "{'type':'object'}")}},
    {.method = "GET",
     .pattern = "/docs",
     .tag = "Discovery",
     .operation_id = "getDocs",
     .summary = "Interactive API documentation",
     .description = "Swagger UI (served from the binary) on this document: authorize with a key "
                    "and try every route.",
     .responses = {{200, "The page.", "{'type':'string'}", "text/html"}}},
    {.method = "GET",
     .pattern = "/docs/{}",
     .tag = "Discovery",
     .operation_id = "getDocsFile",
     .summary = "A file of the documentation page",
     .params = {{"file", "path", "{'type':'string','maxLength':64}", "The file name.", true}},
     .responses = {{200, "The file (script, style or license).", "{'type':'string'}",
                    "text/plain"}},
     .errors = "404"},

    /* ---- assets and files */
    {.method = "POST",
     .pattern = "/v1/assets",
     .tag = "Assets",
     .operation_id = "uploadAsset",
     .summary = "Upload an input file",
     .description = "`multipart/form-data` with one part named `file`. The type is sniffed from "
                    "the bytes: PNG, JPEG, GIF, WebP, MP4, WebM, WAV, MP3; anything else is 415. "
                    "Larger than `--max-upload-bytes` is 413. Use the answer’s `id` in a media "
                    "param.",
     .request = "{'type':'object','required':['file'],'properties':{'file':{'type':'string',"
                "'contentMediaType':'application/octet-stream','description':'The file.'}}}",
     .request_media = "multipart/form-data",
     .responses = {R_JSON(201, "Stored.", "Asset")},
     .errors = "413 415 422 500 503"},
    {.method = "GET",
     .pattern = "/v1/assets/{}",
     .tag = "Assets",
     .operation_id = "getAsset",
     .summary = "Get an uploaded asset",
     .params = {{"id", "path", S_UUID, "The asset id.", true}},
     .responses = {R_JSON(200, "The asset with a fresh link.", "Asset")},
     .errors = "404 503"},
    {.method = "GET",
     .pattern = "/files/{}/{}",
     .tag = "Assets",
     .operation_id = "getFile",
     .summary = "Download a stored file by signed link",
     .description = "Outputs and uploads, to signed links only (the `url` fields of tasks and "
                    "assets). Object storage answers 302 to a presigned URL.",
     .params = {{"owner", "path", "{'type':'string','maxLength':64}",
                 "The task or asset id the file belongs to.", true},
                {"file", "path", "{'type':'string','maxLength':128}", "The file name.", true},
                {"expires", "query", "{'type':'integer'}", "Unix time the link expires.", true},
                {"signature", "query", "{'type':'string','maxLength':128}", "The link’s signature.",
                 true}},
     .responses = {{200, "The file.",
                    "{'type':'string','contentMediaType':'application/"
                    "octet-stream'}",
                    "application/octet-stream"},
                   {302, "Redirect to the object store’s presigned URL.", NULL, NULL}},
     .errors = "403 404"},

    /* ---- account */
    {.method = "GET",
     .pattern = "/v1/account",
     .tag = "Account",
     .operation_id = "getAccount",
     .summary = "Who am I",
     .description = "The caller: user, plan, scopes, how it authenticated, balance and limits "
                    "(with a session cookie also the `csrf_token` to send as `X-CSRF-Token`).",
     .responses = {R_JSON(200, "The caller.", "Account")},
     .errors = "503"},
    {.method = "GET",
     .pattern = "/v1/account/ledger",
     .tag = "Account",
     .operation_id = "getLedger",
     .summary = "The caller’s credit movements",
     .params = {Q_LIMIT, Q_CURSOR},
     .responses = {R_JSON(200, "A page of ledger entries, newest first.", "LedgerPage")},
     .errors = "422 503"},
    {.method = "POST",
     .pattern = "/v1/users/{}/credits",
     .tag = "Admin",
     .operation_id = "grantCredits",
     .summary = "Grant credits to a user",
     .description = "An admin grant; the `Idempotency-Key` header makes a retry grant once "
                    "(200 `replayed: true`).",
     .params = {P_ID("The user id."), H_IDEMPOTENCY},
     .request = "{'type':'object','required':['amount'],'additionalProperties':false,"
                "'properties':{'amount':{'type':'integer','minimum':1,'maximum':1000000000000},"
                "'note':{'type':'string'}}}",
     .responses = {R_JSON(201, "Granted.", "CreditGrant"),
                   R_JSON(200, "A replay of an earlier grant.", "CreditGrant")},
     .errors = "404 422 503"},
    {.method = "GET",
     .pattern = "/v1/users",
     .tag = "Admin",
     .operation_id = "listUsers",
     .summary = "List users",
     .params = {Q_LIMIT, Q_CURSOR},
     .responses = {R_JSON(200, "A page of users.", "UserPage")},
     .errors = "422 503"},
    {.method = "POST",
     .pattern = "/v1/users",
     .tag = "Admin",
     .operation_id = "createUser",
     .summary = "Create a user",
     .request = "{'type':'object','additionalProperties':false,'properties':{'email':{'type':"
                "'string'},'display_name':{'type':'string'},'plan':{'type':'string'}}}",
     .responses = {R_JSON(201, "Created.", "User")},
     .errors = "409 422 503"},
    {.method = "GET",
     .pattern = "/v1/users/{}",
     .tag = "Admin",
     .operation_id = "getUser",
     .summary = "Get a user",
     .params = {P_ID("The user id.")},
     .responses = {R_JSON(200, "The user.", "User")},
     .errors = "404 503"},
    {.method = "PATCH",
     .pattern = "/v1/users/{}",
     .tag = "Admin",
     .operation_id = "updateUser",
     .summary = "Change a user’s plan or disable it",
     .description = "A disabled user’s keys, tokens and sessions are refused.",
     .params = {P_ID("The user id.")},
     .request = "{'type':'object','additionalProperties':false,'properties':{'plan':{'type':"
                "'string','minLength':1,'maxLength':31},'disabled':{'type':'boolean'}}}",
     .responses = {R_JSON(200, "The user as it is now.", "User")},
     .errors = "404 422 503"},
    {.method = "GET",
     .pattern = "/v1/keys",
     .tag = "Admin",
     .operation_id = "listKeys",
     .summary = "List API keys",
     .params = {{"user", "query", "{'type':'string','maxLength':64}",
                 "Only this user’s keys (id or email).", false},
                Q_LIMIT,
                Q_CURSOR},
     .responses = {R_JSON(200, "A page of keys (never their secrets).", "ApiKeyPage")},
     .errors = "422 503"},
    {.method = "POST",
     .pattern = "/v1/keys",
     .tag = "Admin",
     .operation_id = "createKey",
     .summary = "Create an API key",
     .description = "The secret (`key`, `gp_…`) is in this answer only.",
     .request = "{'type':'object','required':['user'],'additionalProperties':false,"
                "'properties':{'user':{'type':'string','description':'User id or email.'},"
                "'scopes':{'description':'Comma-separated or a list: tasks:read, tasks:write, "
                "admin.','oneOf':[{'type':'string'},{'type':'array','items':{'type':'string'}}]},"
                "'name':{'type':'string'},'expires':{'type':'string','description':'A duration "
                "(30d, 12h) or a date.'}}}",
     .responses = {R_JSON(201, "Created; `key` is shown once.", "ApiKeyCreated")},
     .errors = "409 422 503"},
    {.method = "POST",
     .pattern = "/v1/keys/{}/revoke",
     .tag = "Admin",
     .operation_id = "revokeKey",
     .summary = "Revoke an API key",
     .params = {P_ID("The key id.")},
     .responses = {R_JSON(200, "Revoked.",
                          "{'type':'object','required':['id','revoked'],"
                          "'properties':{'id':{'type':'string'},'revoked':{"
                          "'type':'boolean'}}}")},
     .errors = "404 503"},

    /* ---- browser sign-in */
    {.method = "GET",
     .pattern = "/v1/auth/login",
     .tag = "Account",
     .operation_id = "signInStart",
     .summary = "Start a browser sign-in (OIDC)",
     .description = "Redirects to the ID token issuer; the callback sets the session cookie.",
     .params = {{"issuer", "query", "{'type':'string','maxLength':200}",
                 "Which configured issuer (default: the first).", false},
                {"return_to", "query", "{'type':'string','maxLength':60}",
                 "A path on this server to land on afterwards.", false}},
     .responses = {{302, "To the issuer’s sign-in page.", NULL, NULL}},
     .errors = "404 422 500"},
    {.method = "GET",
     .pattern = "/v1/auth/callback",
     .tag = "Account",
     .operation_id = "signInCallback",
     .summary = "The issuer’s redirect back (OIDC)",
     .params = {{"code", "query", "{'type':'string','maxLength':2048}", "The authorization code.",
                 false},
                {"state", "query", "{'type':'string','maxLength':128}", "The state sent at login.",
                 false},
                {"error", "query", "{'type':'string','maxLength':200}",
                 "The issuer’s error, if sign-in failed there.", false}},
     .responses = {{302, "Signed in: the session cookie is set; to `return_to`.", NULL, NULL}},
     .errors = "401 403 404 500 503"},
    {.method = "POST",
     .pattern = "/v1/auth/logout",
     .tag = "Account",
     .operation_id = "signOut",
     .summary = "End the browser session",
     .responses = {{204, "Signed out; the cookie is cleared.", NULL, NULL}}},

    /* ---- operations */
    {.method = "GET",
     .pattern = "/v1/stats",
     .tag = "Operations",
     .operation_id = "getStats",
     .summary = "Task counts in time buckets",
     .params = {{"window", "query",
                 "{'type':'integer','minimum':60,'maximum':604800,'default':3600}",
                 "Seconds back from now.", false},
                {"bucket", "query", "{'type':'integer','minimum':1,'default':60}",
                 "Bucket size in seconds; must divide `window` into 1 to 1440 buckets.", false}},
     .responses = {R_JSON(200, "The buckets.", "Stats")},
     .errors = "422 503"},
    {.method = "GET",
     .pattern = "/v1/workers",
     .tag = "Operations",
     .operation_id = "listWorkers",
     .summary = "List worker processes",
     .description = "Workers alive now and those lost within the last hour.",
     .responses = {R_JSON(200, "The workers.", "WorkerList")},
     .errors = "503"},
    {.method = "GET",
     .pattern = "/metrics",
     .tag = "Operations",
     .operation_id = "getMetrics",
     .summary = "Prometheus metrics",
     .responses = {{200, "Prometheus text format.", "{'type':'string'}", "text/plain"}}},
    {.method = "GET",
     .pattern = "/health",
     .tag = "Operations",
     .operation_id = "getHealth",
     .summary = "Liveness",
     .description = "Always 200 while the process runs; touches no dependency.",
     .responses = {R_JSON(200, "Alive.", "Health")}},
    {.method = "GET",
     .pattern = "/ready",
     .tag = "Operations",
     .operation_id = "getReady",
     .summary = "Readiness",
     .description = "Store, migrations, queue, storage and workers checked (shared for 1 s).",
     .responses = {R_JSON(200, "Ready.", "Ready"), R_JSON(503, "Not ready.", "Ready")}},
    {.method = "GET",
     .pattern = "/",
     .tag = "Operations",
     .operation_id = "getRoot",
     .summary = "Name, version and links",
     .responses = {R_JSON(200, "The server.",
                          "{'type':'object','properties':{'name':{'type':"
                          "'string'},'version':{'type':'string'},'links':{"
                          "'type':'object'}}}")}},
    {.method = "GET",
     .pattern = "/dashboard",
     .tag = "Operations",
     .operation_id = "getDashboard",
     .summary = "The web dashboard",
     .responses = {{200, "The page.", "{'type':'string'}", "text/html"}}},
    {.method = "GET",
     .pattern = "/dashboard/{}",
     .tag = "Operations",
     .operation_id = "getDashboardFile",
     .summary = "A file of the dashboard",
     .params = {{"file", "path", "{'type':'string','maxLength':64}", "The file name.", true}},
     .responses = {{200, "The file.", "{'type':'string'}", "text/plain"}},
     .errors = "404"},

    /* ---- webhooks (Standard Webhooks) */
    {.method = "GET",
     .pattern = "/v1/webhooks",
     .tag = "Webhooks",
     .operation_id = "listWebhooks",
     .summary = "List the caller’s webhook endpoints",
     .description = "Oldest first; an admin sees every user’s, or one user’s with `user`.",
     .params = {{"user", "query", "{'type':'string','maxLength':64}",
                 "A user id: only an admin may name another user.", false}},
     .responses = {R_JSON(200, "The endpoints (without secrets).", "WebhookEndpointList")},
     .errors = "422 503"},
    {.method = "POST",
     .pattern = "/v1/webhooks",
     .tag = "Webhooks",
     .operation_id = "createWebhook",
     .summary = "Register a webhook endpoint",
     .description = "Deliveries are signed by the Standard Webhooks scheme (`webhook-id`, "
                    "`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`) with "
                    "the endpoint’s own `whsec_…` secret, shown in this answer.",
     .request = "WebhookEndpointCreate",
     .responses = {R_JSON(201, "Registered; `secret` is included.", "WebhookEndpointCreated")},
     .errors = "409 422 503"},
    {.method = "GET",
     .pattern = "/v1/webhooks/{}",
     .tag = "Webhooks",
     .operation_id = "getWebhook",
     .summary = "Get a webhook endpoint",
     .params = {P_ID("The endpoint id.")},
     .responses = {R_JSON(200, "The endpoint.", "WebhookEndpoint")},
     .errors = "404 503"},
    {.method = "PATCH",
     .pattern = "/v1/webhooks/{}",
     .tag = "Webhooks",
     .operation_id = "updateWebhook",
     .summary = "Change a webhook endpoint",
     .params = {P_ID("The endpoint id.")},
     .request = "WebhookEndpointUpdate",
     .responses = {R_JSON(200, "The endpoint as it is now.", "WebhookEndpoint")},
     .errors = "404 422 503"},
    {.method = "DELETE",
     .pattern = "/v1/webhooks/{}",
     .tag = "Webhooks",
     .operation_id = "deleteWebhook",
     .summary = "Delete a webhook endpoint",
     .params = {P_ID("The endpoint id.")},
     .responses = {{204, "Deleted.", NULL, NULL}},
     .errors = "404 503"},
    {.method = "GET",
     .pattern = "/v1/webhooks/{}/secret",
     .tag = "Webhooks",
     .operation_id = "getWebhookSecret",
     .summary = "Get an endpoint’s signing secret",
     .params = {P_ID("The endpoint id.")},
     .responses = {R_JSON(200, "The secret.", "WebhookSecret")},
     .errors = "404 503"},
    {.method = "POST",
     .pattern = "/v1/webhooks/{}/rotate-secret",
     .tag = "Webhooks",
     .operation_id = "rotateWebhookSecret",
     .summary = "Replace an endpoint’s signing secret",
     .params = {P_ID("The endpoint id.")},
     .responses = {R_JSON(200, "The new secret.", "WebhookSecret")},
     .errors = "404 503"},
    {.method = "GET",
     .pattern = "/v1/webhooks/default/secret",
     .tag = "Webhooks",
     .operation_id = "getDefaultWebhookSecret",
     .summary = "The secret signing per-task webhooks",
     .description = "Signs the webhooks a task names in its own `webhook` field (Replicate’s "
                    "`webhooks.default.secret.get`; created on first read). Errors are "
                    "problem+json, as on the other Replicate routes.",
     .responses = {R_JSON(200, "The secret.", "WebhookSecret")},
     .errors = "503",
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/webhook-deliveries",
     .tag = "Webhooks",
     .operation_id = "listWebhookDeliveries",
     .summary = "List webhook deliveries",
     .params = {{"endpoint_id", "query", "{'type':'string','maxLength':64}",
                 "Only deliveries to this endpoint.", false},
                {"task_id", "query", S_UUID, "Only deliveries about this task.", false},
                {"status", "query", "{'type':'string','enum':['pending','succeeded','failed']}",
                 "Only deliveries in this state.", false},
                Q_LIMIT,
                Q_CURSOR},
     .responses = {R_JSON(200, "A page of deliveries, newest first.", "WebhookDeliveryPage")},
     .errors = "422 503"},
    {.method = "GET",
     .pattern = "/v1/webhook-deliveries/{}",
     .tag = "Webhooks",
     .operation_id = "getWebhookDelivery",
     .summary = "Get a delivery with its attempts",
     .params = {P_ID("The delivery id.")},
     .responses = {R_JSON(200, "The delivery.", "WebhookDelivery")},
     .errors = "404 503"},
    {.method = "POST",
     .pattern = "/v1/webhook-deliveries/{}/resend",
     .tag = "Webhooks",
     .operation_id = "resendWebhookDelivery",
     .summary = "Send a delivery again",
     .params = {P_ID("The delivery id.")},
     .responses = {R_JSON(202, "Queued for delivery again (same `webhook-id`).",
                          "WebhookDelivery")},
     .errors = "404 409 503"},

    /* ---- the Replicate-compatible API */
    {.method = "POST",
     .pattern = "/v1/predictions",
     .tag = "Replicate",
     .operation_id = "createPrediction",
     .summary = "Create a prediction (Replicate)",
     .description = "Replicate’s `predictions.create`: `version` names a model "
                    "(`genpulse/<task type>` with a provider version, or a mapped model name). "
                    "With `Prefer: wait[=N]` the answer waits; a timed-out wait answers with "
                    "`status: starting`. Auth also as `Authorization: Token <key>`.",
     .params = {H_PREFER},
     .request = "PredictionRequest",
     .responses = {R_JSON(201, "Created (final when `Prefer: wait` finished in time).",
                          "Prediction"),
                   R_JSON(202, "Created; not finished yet.", "Prediction")},
     .errors = "402 404 422 429 503",
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/predictions",
     .tag = "Replicate",
     .operation_id = "listPredictions",
     .summary = "List predictions (Replicate)",
     .params = {{"cursor", "query", "{'type':'string','maxLength':128}",
                 "From the previous page’s `next` URL.", false},
                {"limit", "query", "{'type':'integer','minimum':1,'maximum':100,'default':100}",
                 "Page size (GenPulse’s; Replicate pages by 100).", false}},
     .responses = {R_JSON(200, "A cursor page, newest first.", "PredictionPage")},
     .errors = "422 503",
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/predictions/{}",
     .tag = "Replicate",
     .operation_id = "getPrediction",
     .summary = "Get a prediction (Replicate)",
     .params = {P_ID("The prediction id.")},
     .responses = {R_JSON(200, "The prediction.", "Prediction")},
     .errors = "404 503",
     .problem = true},
    {.method = "POST",
     .pattern = "/v1/predictions/{}/cancel",
     .tag = "Replicate",
     .operation_id = "cancelPrediction",
     .summary = "Cancel a prediction (Replicate)",
     .params = {P_ID("The prediction id.")},
     .responses = {R_JSON(200, "The prediction.", "Prediction")},
     .errors = "404 409 503",
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/predictions/{}/stream",
     .tag = "Replicate",
     .operation_id = "streamPrediction",
     .summary = "Stream a prediction (Replicate SSE)",
     .description = "The prediction’s `urls.stream`: events `output`, `logs`, `error` and "
                    "`done`, each with an `id:`. A signed URL: no Authorization needed.",
     .params = {P_ID("The prediction id."),
                {"expires", "query", "{'type':'integer'}", "Unix time the link expires.", false},
                {"signature", "query", "{'type':'string','maxLength':128}", "The link’s signature.",
                 false}},
     .responses = {{200, "An event stream.", "{'type':'string'}", "text/event-stream"}},
     .errors = "403 404",
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/models",
     .tag = "Replicate",
     .operation_id = "listModels",
     .summary = "List models (Replicate)",
     .description = "Every task type as `genpulse/<task type>`, and the mapped model names.",
     .params = {{"cursor", "query", "{'type':'string','maxLength':128}",
                 "From the previous page’s `next` URL.", false}},
     .responses = {R_JSON(200, "A cursor page of models.", "ModelPage")},
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/models/{}/{}",
     .tag = "Replicate",
     .operation_id = "getModel",
     .summary = "Get a model (Replicate)",
     .params = {P_OWNER, P_NAME},
     .responses = {R_JSON(200, "The model with its `latest_version`.", "Model")},
     .errors = "404",
     .problem = true},
    {.method = "POST",
     .pattern = "/v1/models/{}/{}/predictions",
     .tag = "Replicate",
     .operation_id = "createModelPrediction",
     .summary = "Create a prediction of a model (Replicate)",
     .description = "As `POST /v1/predictions`, the model named by the path (its latest "
                    "version).",
     .params = {P_OWNER, P_NAME, H_PREFER},
     .request = "ModelPredictionRequest",
     .responses = {R_JSON(201, "Created (final when `Prefer: wait` finished in time).",
                          "Prediction"),
                   R_JSON(202, "Created; not finished yet.", "Prediction")},
     .errors = "402 404 422 429 503",
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/models/{}/{}/versions",
     .tag = "Replicate",
     .operation_id = "listModelVersions",
     .summary = "List a model’s versions (Replicate)",
     .description = "One version per provider of the task type.",
     .params = {P_OWNER, P_NAME},
     .responses = {R_JSON(200, "A cursor page of versions.", "ModelVersionPage")},
     .errors = "404",
     .problem = true},
    {.method = "GET",
     .pattern = "/v1/models/{}/{}/versions/{}",
     .tag = "Replicate",
     .operation_id = "getModelVersion",
     .summary = "Get a model version (Replicate)",
     .params = {P_OWNER,
                P_NAME,
                {"version", "path", "{'type':'string','maxLength':159}", "The version id.", true}},
     .responses = {R_JSON(200, "The version with its input schema.", "ModelVersion")},
     .errors = "404",
     .problem = true},
    {.method = NULL},
};

const gp_route_doc_t *gp_route_doc_find(const char *method, const char *pattern)
{
    for (const gp_route_doc_t *d = gp_route_docs; d->method; d++)
        if (!strcmp(d->method, method) && !strcmp(d->pattern, pattern))
            return d;
    return NULL;
}
