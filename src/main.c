/*
 * main.c — the genpulse command line: serve | api | worker | run | users | keys | migrate |
 * settings | errors | version.
 *
 * `serve` is the embedded default: gateway, group committer and worker pool in one process
 * on SQLite, an in-process queue and event bus, and a local output folder. The pieces only
 * meet through the runtime's backend interfaces, so gateway-only and worker-only processes
 * are the same code with parts left out.
 */
#include "api/admin.h"
#include "api/server.h"
#include "cli/cli.h"
#include "core/errors.h"
#include "core/link_secret.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/util.h"
#include "identity/plans.h"
#include "infra/http/http_internal.h"
#include "media/media.h"
#include "runtime/service_notify.h"
#include "worker/worker.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERSION "0.1.0"

static const char serve_doc[] =
    "Run the whole system in one process: HTTP API, worker pool, SQLite state, in-process\n"
    "queue and event bus, outputs in DATA_DIR/outputs. No configuration needed.";
static const char migrate_doc[] = "Apply pending database schema migrations and exit.";
static const char api_doc[] =
    "Run an HTTP gateway only (distributed mode): it stores and queues tasks and streams\n"
    "events; `genpulse worker` processes run them. Needs a shared queue (--queue-url).";
static const char worker_doc[] =
    "Run workers only (distributed mode): take tasks from the shared queue and run them.\n"
    "Needs a shared queue (--queue-url).";

typedef struct run_mode {
    const char *name;
    unsigned cmd;
    const char *doc;
    bool http, workers;
} run_mode_t;

static void usage(FILE *out)
{
    fprintf(out,
            "genpulse %s — a generative-AI task backend\n\n"
            "Usage: genpulse <command> [options]\n\n"
            "Commands:\n"
            "  serve      run API + workers in one process (embedded default)\n"
            "  api        run an HTTP gateway only (distributed mode)\n"
            "  worker     run workers only (distributed mode)\n"
            "  run        send a task over Redis and (with --wait) wait for its result\n"
            "  users      create and list users (genpulse users --help)\n"
            "  keys       create, list and revoke API keys (genpulse keys --help)\n"
            "  credits    grant credits and show a user's ledger (genpulse credits --help)\n"
            "  migrate    apply database migrations and exit\n"
            "  settings   print the settings table (Markdown) and exit\n"
            "  errors     print the task error codes (Markdown) and exit\n"
            "  version    print the version and exit\n\n"
            "Run `genpulse <command> --help` for the options of a command.\n"
            "Every option can also be set with a GENPULSE_* environment variable.\n",
            VERSION);
}

static int setup_common(gp_settings_t *s)
{
    gp_log_setup((gp_log_level_t)gp_log_level_parse(s->log_level), !strcmp(s->log_format, "json"));
    gp_metrics_setup(s->metrics != 0, VERSION, gp_now_ms());
    if (!s->public_url[0]) {
        free(s->public_url);
        s->public_url = strchr(s->host, ':')
                            ? gp_xasprintf("http://[%s]:%lld", s->host, (long long)s->port)
                            : gp_xasprintf("http://%s:%lld", s->host, (long long)s->port);
    }
    size_t n = strlen(s->public_url);
    while (n > 0 && s->public_url[n - 1] == '/')
        s->public_url[--n] = '\0';
    int rc = gp_mkdirs(s->data_dir, 0755);
    if (rc != 0) {
        GP_ERROR("cannot create data dir %s: %s", s->data_dir, strerror(-rc));
        return -1;
    }
    char err[512];
    if (gp_registry_init(err, sizeof err) != 0) {
        GP_ERROR("registry: %s", err);
        return -1;
    }
    return 0;
}

static int open_store(const gp_settings_t *s, gp_store_t **store)
{
    char err[512] = "";
    if (gp_store_open(store, s, err, sizeof err) != 0) {
        GP_ERROR("store: %s", err);
        return -1;
    }
    if (gp_store_migrate(*store, err, sizeof err) != 0) {
        GP_ERROR("store: %s", err);
        gp_store_close(*store);
        *store = NULL; /* the caller's exit path closes it too */
        return -1;
    }
    return 0;
}

/* The id of --service-user (an id or an email), which must exist. */
static int resolve_service_user(const gp_settings_t *s, gp_store_t *store, char out[37], char *err,
                                size_t cap)
{
    gp_user_t u;
    int rc = store->vt->user_get(store, s->service_user, &u);
    if (rc != 0) {
        snprintf(err, cap,
                 "--service-user %s: %s (create it with `genpulse users create --email …`)",
                 s->service_user, rc == -GP_E_NOT_FOUND ? "no such user" : gp_err_message(rc));
        return -1;
    }
    snprintf(out, 37, "%s", u.id);
    gp_user_clear(&u);
    return 0;
}

static int cmd_migrate(int argc, char **argv)
{
    gp_settings_t s;
    int rc = gp_settings_load(&s, GP_CMD_MIGRATE, "migrate", migrate_doc, argc, argv, 2);
    if (rc != 0) {
        gp_settings_free(&s);
        return rc > 0 ? 0 : 2;
    }
    gp_store_t *store = NULL;
    int exit_code = setup_common(&s) == 0 && open_store(&s, &store) == 0 ? 0 : 1;
    if (exit_code == 0)
        GP_INFO("migrations applied");
    gp_store_close(store);
    gp_settings_free(&s);
    return exit_code;
}

/* Distributed mode with local storage: a worker writes outputs into its own DATA_DIR and
 * links them at --public-url, so unless it is told the address of gateways that serve that
 * same directory, every link it writes is dead. Refuse rather than lose outputs quietly. */
static int check_distributed_storage(const run_mode_t *mode, const gp_settings_t *s,
                                     bool public_url_given)
{
    if (!s->queue_url[0] || mode->http || s->storage_url[0] || public_url_given)
        return 0;
    fprintf(stderr,
            "genpulse %s: distributed mode needs output storage every process can reach.\n"
            "  Set --storage-url s3://... (GENPULSE_STORAGE_URL) to an S3-compatible bucket, or\n"
            "  share --data-dir with the gateways (a shared volume) and set --public-url\n"
            "  (GENPULSE_PUBLIC_URL) to the gateways' address, which serves that directory.\n",
            mode->name);
    return -1;
}

/* What the systemd watchdog asks before each keep-alive: the worker pool's watchdog thread
 * went round recently, and the HTTP listener answers /health over loopback. */
typedef struct liveness {
    gp_runtime_t *rt;
    gp_http_t *http;
    char health_url[128];
} liveness_t;

static size_t discard_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

static bool process_alive(void *arg)
{
    liveness_t *l = arg;
    if (l->rt->workers && gp_worker_pool_progress_ms(l->rt->workers) > 5000)
        return false;
    if (!l->http)
        return true;
    CURL *c = curl_easy_init();
    if (!c)
        return true; /* no memory is not a hang */
    curl_easy_setopt(c, CURLOPT_URL, l->health_url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    long status = 0;
    bool ok = curl_easy_perform(c) == CURLE_OK &&
              curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200;
    curl_easy_cleanup(c);
    return ok;
}

static void loopback_health_url(const gp_settings_t *s, int port, char *out, size_t cap)
{
    const char *host = s->host;
    if (!strcmp(host, "0.0.0.0"))
        host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        host = "::1";
    if (strchr(host, ':'))
        snprintf(out, cap, "http://[%s]:%d/health", host, port);
    else
        snprintf(out, cap, "http://%s:%d/health", host, port);
}

static int cmd_run(const run_mode_t *mode, int argc, char **argv)
{
    gp_settings_t s;
    int rc = gp_settings_load(&s, mode->cmd, mode->name, mode->doc, argc, argv, 2);
    if (rc != 0) {
        gp_settings_free(&s);
        return rc > 0 ? 0 : 2;
    }
    bool embedded = !s.queue_url[0];
    if (embedded && mode->cmd != GP_CMD_SERVE) {
        fprintf(
            stderr,
            "genpulse %s: needs a shared queue: set --queue-url (e.g. redis://127.0.0.1:6379/0)\n",
            mode->name);
        gp_settings_free(&s);
        return 2;
    }
    /* Signals are taken synchronously by this thread; every other thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = 1;
    char err[512] = "";
    gp_runtime_t rt = {.settings = &s, .started_at = gp_now_ms()};
    gp_http_t *http = NULL;
    gp_admin_http_t *admin = NULL;
    if (check_distributed_storage(mode, &s, s.public_url[0] != '\0') != 0) {
        gp_settings_free(&s);
        return 2;
    }
    gp_heartbeat_t *heartbeat = NULL;
    if (mode->workers) { /* before any thread: every log line of a worker process names it */
        gp_worker_id_make(rt.worker_id);
        gp_log_set_worker(rt.worker_id);
    }
    if (setup_common(&s) != 0 || open_store(&s, &rt.store) != 0)
        goto out;
    rt.public_url = s.public_url;
    if (s.plans_file[0] && gp_plans_load(s.plans_file, err, sizeof err) != 0) {
        GP_ERROR("%s", err);
        goto out;
    }
    if (gp_link_secret_load(&s, rt.link_secret, err, sizeof err) != 0 ||
        (mode->workers &&
         resolve_service_user(&s, rt.store, rt.service_user, err, sizeof err) != 0)) {
        GP_ERROR("%s", err);
        goto out;
    }
    if (gp_queue_open(&rt.queue, &s, err, sizeof err) != 0 ||
        gp_events_open(&rt.events, &s, err, sizeof err) != 0 ||
        gp_presence_open(&rt.presence, &s, err, sizeof err) != 0 ||
        gp_storage_open(&rt.storage, &s, err, sizeof err) != 0) {
        GP_ERROR("%s", err);
        goto out;
    }
    if (gp_media_init(err, sizeof err) != 0) {
        GP_ERROR("%s", err);
        goto out;
    }
    if (mode->workers) {
        if (gp_limiter_open(&rt.limiter, &s, err, sizeof err) != 0) {
            GP_ERROR("%s", err);
            goto out;
        }
        gp_http_set_limiter(rt.limiter);
    }
    rt.committer = gp_committer_start(rt.store, (size_t)s.commit_batch_max);
    if (embedded) { /* this process is the only one: what it left unfinished is its own */
        int recovered = gp_recover_embedded(&rt);
        if (recovered < 0)
            GP_ERROR("recovery scan failed: %s", gp_err_code(recovered));
        else if (recovered > 0)
            GP_INFO("recovered %d unfinished task(s)", recovered);
    }
    if (mode->workers) {
        rt.workers = gp_worker_pool_start(&rt, (int)s.concurrency);
        heartbeat = gp_heartbeat_start(&rt, VERSION, embedded ? "embedded" : "celery");
    }
    if (mode->http)
        http = gp_http_start(&rt, err, sizeof err);
    if (mode->http && !http) {
        GP_ERROR("http: %s", err);
        gp_heartbeat_stop(heartbeat);
        gp_worker_pool_stop(rt.workers, 0);
        rt.workers = NULL;
        goto out;
    }
    if (s.admin_port && !(admin = gp_admin_http_start(&rt, err, sizeof err))) {
        GP_ERROR("%s", err);
        gp_http_stop(http);
        gp_worker_pool_stop(rt.workers, 0);
        rt.workers = NULL;
        goto out;
    }
    gp_reconciler_t *reconciler = !embedded && mode->workers ? gp_reconciler_start(&rt) : NULL;
    char status[256];
    if (http)
        snprintf(status, sizeof status, "genpulse %s %s on %s (data: %s, workers: %lld)", VERSION,
                 mode->name, s.public_url, s.data_dir,
                 mode->workers ? (long long)s.concurrency : 0LL);
    else
        snprintf(status, sizeof status, "genpulse %s worker running %lld task slot(s)", VERSION,
                 (long long)s.concurrency);
    GP_INFO("%s", status);
    liveness_t live = {.rt = &rt, .http = http};
    if (http)
        loopback_health_url(&s, gp_http_port(http), live.health_url, sizeof live.health_url);
    gp_service_ready(status);
    gp_service_watchdog_t *watchdog = gp_service_watchdog_start(process_alive, &live);

    int sig = 0;
    sigwait(&sigs, &sig);
    GP_INFO("%s: draining (grace period %lld s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            (long long)s.grace_period_s);
    gp_service_stopping();
    gp_service_watchdog_stop(watchdog);
    gp_http_quiesce(http);
    gp_reconciler_stop(reconciler);
    gp_worker_pool_drain(rt.workers, s.grace_period_s * 1000);
    gp_heartbeat_stop(heartbeat); /* after the drain: a draining worker is still alive */
    gp_http_stop(http);
    gp_admin_http_stop(admin);
    gp_worker_pool_free(rt.workers); /* nothing reads it any more: /health, metrics, beats */
    rt.workers = NULL;
    exit_code = 0;
    GP_INFO("stopped");
out:
    gp_committer_stop(rt.committer);
    gp_http_set_limiter(NULL);
    gp_limiter_close(rt.limiter);
    gp_storage_close(rt.storage);
    gp_presence_close(rt.presence);
    gp_events_close(rt.events);
    gp_queue_close(rt.queue);
    gp_store_close(rt.store);
    gp_settings_free(&s);
    return exit_code;
}

/* The "Task error codes" section of docs/api.md, from the one list (make docs splices it). */
static void write_task_errors_markdown(FILE *out)
{
    static const char *const retry_text[] = {"no", "yes", "depends"};
    fprintf(out, "| code | retried | meaning |\n|---|---|---|\n");
    for (int e = 0; e < GP_TE__COUNT; e++)
        fprintf(out, "| `%s` | %s | %s |\n", gp_task_error_code((gp_task_error_t)e),
                retry_text[gp_task_error_retry((gp_task_error_t)e)],
                gp_task_error_meaning((gp_task_error_t)e));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("genpulse %s\n", VERSION);
        return 0;
    }
    static const run_mode_t modes[] = {
        {"serve", GP_CMD_SERVE, serve_doc, true, true},
        {"api", GP_CMD_API, api_doc, true, false},
        {"worker", GP_CMD_WORKER, worker_doc, false, true},
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(cmd, modes[i].name))
            return cmd_run(&modes[i], argc, argv);
    if (!strcmp(cmd, "migrate"))
        return cmd_migrate(argc, argv);
    if (!strcmp(cmd, "run"))
        return gp_cmd_run_task(argc, argv);
    if (!strcmp(cmd, "users"))
        return gp_cmd_users(argc, argv);
    if (!strcmp(cmd, "keys"))
        return gp_cmd_keys(argc, argv);
    if (!strcmp(cmd, "credits"))
        return gp_cmd_credits(argc, argv);
    if (!strcmp(cmd, "settings")) {
        gp_settings_write_markdown(stdout);
        return 0;
    }
    if (!strcmp(cmd, "errors")) {
        write_task_errors_markdown(stdout);
        return 0;
    }
    fprintf(stderr, "genpulse: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
