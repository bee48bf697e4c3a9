/* settings.c — the settings table and its generic parser. */
#include "core/settings.h"
#include "core/util.h"

#include <genpulse/handler.h>

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    SET_INT,
    SET_STRING
} setting_kind_t;

typedef struct setting {
    const char *name; /* flag name; env var is GENPULSE_ + upper(name) with '-' → '_' */
    setting_kind_t kind;
    size_t offset;
    const char *default_value;
    int64_t min, max;           /* SET_INT */
    const char *const *choices; /* SET_STRING enum; NULL = free text */
    unsigned commands;
    const char *doc;
} setting_t;

#define ALL (GP_CMD_SERVE | GP_CMD_API | GP_CMD_WORKER | GP_CMD_MIGRATE)
#define RUNNING (GP_CMD_SERVE | GP_CMD_API | GP_CMD_WORKER)
#define HTTP (GP_CMD_SERVE | GP_CMD_API)
#define WORK (GP_CMD_SERVE | GP_CMD_WORKER)
#define OFF(f) offsetof(gp_settings_t, f)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const sync_modes[] = {"normal", "full", NULL};
static const char *const auth_modes[] = {"auto", "keys", "open", "open-public", NULL};

static const setting_t settings_table[] = {
    {"host", SET_STRING, OFF(host), "127.0.0.1", 0, 0, NULL, HTTP,
     "Address the HTTP server binds to (IPv4 or IPv6 literal)."},
    {"port", SET_INT, OFF(port), "8080", 1, 65535, NULL, HTTP, "TCP port of the HTTP server."},
    {"data-dir", SET_STRING, OFF(data_dir), "./data", 0, 0, NULL, ALL,
     "Directory for the embedded database and locally stored outputs."},
    {"database-url", SET_STRING, OFF(database_url), "", 0, 0, NULL, ALL,
     "State store. Empty: SQLite at DATA_DIR/genpulse.db; sqlite:///path/file.db: another "
     "SQLite file; postgres://user:pass@host:5432/db: PostgreSQL (distributed mode)."},
    {"queue-url", SET_STRING, OFF(queue_url), "", 0, 0, NULL, RUNNING,
     "Dispatch queue and event bus. Empty: in-process (embedded mode); "
     "redis://[:password@]host:6379/0: Redis, shared by api and worker processes."},
    {"storage-url", SET_STRING, OFF(storage_url), "", 0, 0, NULL, RUNNING,
     "Output storage. Empty: DATA_DIR/outputs served by this server under /files/."},
    {"public-url", SET_STRING, OFF(public_url), "", 0, 0, NULL, RUNNING,
     "Base URL clients use to reach the gateway, used in links. Empty: http://HOST:PORT. A "
     "distributed worker with local storage must be given it (the gateways' address, serving "
     "the DATA_DIR it shares)."},
    {"admin-host", SET_STRING, OFF(admin_host), "127.0.0.1", 0, 0, NULL, RUNNING,
     "Address of the operations listener (--admin-port)."},
    {"admin-port", SET_INT, OFF(admin_port), "0", 0, 65535, NULL, RUNNING,
     "TCP port of a small operations listener serving /health, /ready and /metrics without "
     "the API or authentication (for worker processes). 0: off."},
    {"concurrency", SET_INT, OFF(concurrency), "16", 1, 1024, NULL, WORK,
     "Tasks run at once by this process's worker pool."},
    {"http-threads", SET_INT, OFF(http_threads), "2", 2, 64, NULL, HTTP,
     "HTTP event-loop threads (at least 2)."},
    {"max-body-bytes", SET_INT, OFF(max_body_bytes), "1048576", 1024, 1073741824, NULL, HTTP,
     "Largest accepted request body in bytes; larger bodies get 413."},
    {"max-upload-bytes", SET_INT, OFF(max_upload_bytes), "52428800", 1024, 4294967296LL, NULL, HTTP,
     "Largest file accepted by POST /v1/assets in bytes; larger uploads get 413."},
    {"max-connections", SET_INT, OFF(max_connections), "20000", 16, 1000000, NULL, HTTP,
     "Most simultaneous HTTP connections (event streams included)."},
    {"log-level", SET_STRING, OFF(log_level), "info", 0, 0, log_levels, ALL,
     "Least severe level logged: debug, info, warn or error."},
    {"log-format", SET_STRING, OFF(log_format), "text", 0, 0, log_formats, ALL,
     "Log line format: text or json (one object per line)."},
    {"task-timeout", SET_INT, OFF(task_timeout_s), "600", 1, 604800, NULL, WORK,
     "Hard time limit of one attempt, in seconds; a task past it fails with `timeout` "
     "(retryable)."},
    {"max-retries", SET_INT, OFF(default_max_retries), "3", 0, 100, NULL, HTTP,
     "Retries of a task whose request does not set max_retries."},
    {"retry-base-ms", SET_INT, OFF(retry_base_ms), "1000", 0, 3600000, NULL, WORK,
     "Backoff base: retry n waits a random time in [0, min(retry-max-ms, base * 2^(n-1))]."},
    {"retry-max-ms", SET_INT, OFF(retry_max_ms), "300000", 0, 86400000, NULL, WORK,
     "Backoff cap in milliseconds."},
    {"allow-private-inputs", SET_INT, OFF(allow_private_inputs), "0", 0, 1, NULL, WORK,
     "1: tasks may fetch input URLs on loopback, private or link-local addresses. 0 (default): "
     "refused, so a client cannot make workers read internal services."},
    {"grace-period", SET_INT, OFF(grace_period_s), "30", 0, 3600, NULL, RUNNING,
     "On SIGTERM/SIGINT, seconds to let running tasks finish before they are handed back "
     "to the queue."},
    {"lease", SET_INT, OFF(lease_s), "30", 3, 3600, NULL, RUNNING,
     "Distributed mode: seconds a running task's delivery stays reserved without a heartbeat; "
     "a worker killed mid-task has its tasks run again within about this long."},
    {"webhooks", SET_INT, OFF(webhooks), "1", 0, 1, NULL, HTTP,
     "1: this process runs the webhook delivery loop (several gateways may; they share the "
     "outbox). 0: it only adds deliveries; another process sends them."},
    {"webhook-threads", SET_INT, OFF(webhook_threads), "4", 1, 64, NULL, HTTP,
     "Webhook deliveries in flight at once in this process."},
    {"webhook-allow-private", SET_INT, OFF(webhook_allow_private), "0", 0, 1, NULL, HTTP,
     "1: webhooks may be delivered to loopback, private, link-local or CGNAT addresses. 0 "
     "(default): such deliveries are refused (checked on the address connected to)."},
    {"webhook-retry-scale", SET_STRING, OFF(webhook_retry_scale), "1", 0, 0, NULL, HTTP,
     "Multiplies the webhook retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, "
     "24 h): e.g. 0.001 for tests. A number from 0.0001 to 100."},
    {"webhook-poll-ms", SET_INT, OFF(webhook_poll_ms), "250", 50, 60000, NULL, HTTP,
     "How often the delivery loop looks for due deliveries it was not woken for (retries "
     "falling due; commits wake it at once, PostgreSQL ones from other processes too): one "
     "indexed query each."},
    {"webhook-max-endpoints", SET_INT, OFF(webhook_max_endpoints), "20", 1, 1000, NULL, HTTP,
     "Most webhook endpoints one user may register."},
    {"sse-heartbeat", SET_INT, OFF(sse_heartbeat_s), "15", 1, 300, NULL, HTTP,
     "Seconds between comment heartbeats on event streams."},
    {"commit-batch-max", SET_INT, OFF(commit_batch_max), "512", 1, 10000, NULL, RUNNING,
     "Most state changes committed in one database transaction (group commit)."},
    {"auth", SET_STRING, OFF(auth_mode), "auto", 0, 0, auth_modes, HTTP,
     "Who may call without a key. auto: nobody once an API key exists or when the server "
     "listens beyond loopback (or an OIDC issuer is configured), else the built-in local user; "
     "keys: a key (or ID token) always; open: anyone, as the local user, on loopback only; "
     "open-public: anyone, even on a public address."},
    {"service-user", SET_STRING, OFF(service_user), "local", 0, 0, NULL, WORK,
     "User (id or email) that owns work entering through Redis (Celery send_task, "
     "`genpulse run`)."},
    {"link-secret", SET_STRING, OFF(link_secret), "", 0, 0, NULL, RUNNING,
     "64 hex digits: the key that signs /files/ links. Empty: DATA_DIR/link-secret, created "
     "on first start. Processes that serve or write the same files need the same secret."},
    {"link-ttl", SET_INT, OFF(link_ttl_s), "604800", 60, 31536000, NULL, RUNNING,
     "Seconds a signed /files/ link stays valid (task reads hand out fresh ones)."},
    {"oidc-google-client-id", SET_STRING, OFF(oidc_google_client_id), "", 0, 0, NULL, HTTP,
     "Accept Google ID tokens issued for this OAuth client id as bearer tokens (Google "
     "sign-in). Setting it also ends the open-server rule of --auth auto."},
    {"oidc-google-client-secret", SET_STRING, OFF(oidc_google_client_secret), "", 0, 0, NULL, HTTP,
     "The Google OAuth client's secret, for the browser sign-in (/v1/auth/login)."},
    {"oidc-issuer", SET_STRING, OFF(oidc_issuer), "", 0, 0, NULL, HTTP,
     "Accept ID tokens from this OpenID Connect issuer (its exact `iss`, e.g. "
     "https://login.example.com); keys come from ISSUER/.well-known/openid-configuration."},
    {"oidc-client-id", SET_STRING, OFF(oidc_client_id), "", 0, 0, NULL, HTTP,
     "The audience tokens from --oidc-issuer must name (its client id for this app)."},
    {"oidc-client-secret", SET_STRING, OFF(oidc_client_secret), "", 0, 0, NULL, HTTP,
     "--oidc-issuer's client secret, for the browser sign-in (empty: a public client, PKCE "
     "only)."},
    {"oidc-hosted-domain", SET_STRING, OFF(oidc_hosted_domain), "", 0, 0, NULL, HTTP,
     "Only accept ID tokens whose `hd` claim is this domain (Google Workspace). Empty: any."},
    {"default-plan", SET_STRING, OFF(default_plan), "free", 0, 0, NULL, HTTP,
     "Plan of users created on their first OIDC sign-in."},
    {"plans", SET_STRING, OFF(plans_file), "", 0, 0, NULL, RUNNING,
     "A JSON file of plans replacing the built-in ones (free, pro, payg, unlimited): "
     "{\"name\": {\"charged\", \"monthly_grant\", \"priority_boost\", "
     "\"requests_per_minute\", \"max_running\", \"max_queued\"}}; the first is the fallback. "
     "Gateways and workers need the same file."},
    {"cors-origins", SET_STRING, OFF(cors_origins), "", 0, 0, NULL, HTTP,
     "Comma-separated origins browsers may call the API from (https://app.example.com), or "
     "*. Empty: no CORS headers."},
    {"replicate-models", SET_STRING, OFF(replicate_models), "", 0, 0, NULL, HTTP,
     "A JSON file mapping Replicate model names onto task types for the Replicate-compatible "
     "API: {\"owner/name\": {\"task_type\", \"provider\", \"params\" (fixed), "
     "\"ignore\" (input names dropped), \"rename\" ({input: param}), \"output\" (object, "
     "file or files), \"description\"}}. Empty: the built-in table (docs/api.md)."},
    {"metrics", SET_INT, OFF(metrics), "1", 0, 1, NULL, RUNNING,
     "1 (default): count the Prometheus metrics served at GET /metrics. 0: record nothing "
     "(to measure what counting costs); /metrics still answers, with the gauges only."},
    {"sqlite-synchronous", SET_STRING, OFF(sqlite_synchronous), "normal", 0, 0, sync_modes, ALL,
     "SQLite durability: normal survives a killed process; full also survives power loss, "
     "at a lower commit rate."},
};
#define N_SETTINGS (sizeof settings_table / sizeof settings_table[0])

#define MAX_VALUE_LEN 4096

/* Decimal integer, whole text (strtoll's leading blanks and sign allowed, as before). */
static bool parse_int(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* "1500", "1500ms", "2s", "5m", "1h" → ms. */
static bool parse_duration_ms(const char *text, int64_t *out)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text)
        return false;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
        if (strcmp(end, units[u].suffix) == 0) {
            if (v > INT64_MAX / units[u].ms || v < INT64_MIN / units[u].ms)
                return false;
            *out = v * units[u].ms;
            return true;
        }
    return false;
}

static bool parse_bool(const char *text, int64_t *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++) {
        if (strcasecmp(text, yes[k]) == 0) {
            *out = 1;
            return true;
        }
        if (strcasecmp(text, no[k]) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

static bool parse_number(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* http(s)://host..., printable ASCII, no spaces: the providers build request URLs from it. */
static bool parse_url(const char *text)
{
    size_t skip = strncmp(text, "http://", 7) == 0 ? 7 : strncmp(text, "https://", 8) == 0 ? 8 : 0;
    if (skip == 0 || text[skip] == '\0' || text[skip] == '/')
        return false;
    for (const char *p = text; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

/*
 * Each kind in words: in --help ("integer 0–1000"), after its doc in docs/settings.md, and
 * after a refused value. Each format takes (min, max), used or not.
 */
static const struct {
    const char *help, *doc, *why;
} kind_text[] = {
    [GP_SETTING_STRING] = {"string", "", "is not valid"},
    [GP_SETTING_SECRET] = {"secret", " Secret: never printed or logged.", "is not valid"},
    [GP_SETTING_URL] = {"http(s) URL", " An http:// or https:// URL.",
                        "is not an http:// or https:// URL"},
    [GP_SETTING_INT] = {"integer %.0f–%.0f", " Integer, %.0f–%.0f.",
                        "is not an integer from %.0f to %.0f"},
    [GP_SETTING_BOOL] = {"boolean", " Boolean: true/false, 1/0, yes/no, on/off.",
                         "is not a boolean (true/false, 1/0, yes/no, on/off)"},
    [GP_SETTING_DURATION_MS] = {"duration %.0f–%.0f ms",
                                " Duration in ms, %.0f–%.0f (a suffix ms, s, m or h is also "
                                "accepted).",
                                "is not an integer from %.0f to %.0f (milliseconds)"},
    [GP_SETTING_NUMBER] = {"number %g–%g", " Number, %g–%g.", "is not a number from %g to %g"},
};
#define N_KINDS (sizeof kind_text / sizeof kind_text[0])

typedef struct {
    char text[160];
} kind_words_t;

/* which: 0 help, 1 doc, 2 why. */
static kind_words_t kind_words(gp_setting_kind_t kind, double min, double max, int which)
{
    kind_words_t w = {""};
    size_t k = (size_t)kind < N_KINDS ? (size_t)kind : GP_SETTING_STRING;
    const char *fmt = which == 0   ? kind_text[k].help
                      : which == 1 ? kind_text[k].doc
                                   : kind_text[k].why;
    snprintf(w.text, sizeof w.text, fmt, min, max);
    return w;
}

int gp_setting_parse(gp_setting_kind_t kind, double min, double max, bool empty_ok,
                     const char *text, gp_setting_value_t *out, char *why, size_t why_cap)
{
    gp_setting_value_t v = {0};
    bool ok, bounded = kind == GP_SETTING_INT || kind == GP_SETTING_DURATION_MS;
    if (strlen(text) > MAX_VALUE_LEN) {
        snprintf(why, why_cap, "is longer than %d bytes", MAX_VALUE_LEN);
        return -1;
    }
    switch (kind) {
    case GP_SETTING_INT: ok = parse_int(text, &v.i); break;
    case GP_SETTING_DURATION_MS: ok = parse_duration_ms(text, &v.i); break;
    case GP_SETTING_BOOL: ok = parse_bool(text, &v.i); break;
    case GP_SETTING_NUMBER: ok = parse_number(text, &v.d) && v.d >= min && v.d <= max; break;
    case GP_SETTING_URL: ok = (empty_ok && text[0] == '\0') || parse_url(text); break;
    default: ok = true; break;
    }
    if (ok && bounded)
        ok = (double)v.i >= min && (double)v.i <= max;
    if (!ok) {
        snprintf(why, why_cap, "%s", kind_words(kind, min, max, 2).text);
        return -1;
    }
    *out = v;
    return 0;
}

static void env_name(const char *name, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "GENPULSE_");
    for (const char *p = name; *p && o + 1 < cap; p++)
        out[o++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    out[o] = '\0';
}

static int apply(gp_settings_t *s, const setting_t *st, const char *value, const char *source)
{
    char *base = (char *)s;
    if (st->kind == SET_INT) {
        gp_setting_value_t v;
        char why[128];
        if (gp_setting_parse(GP_SETTING_INT, (double)st->min, (double)st->max, false, value, &v,
                             why, sizeof why) != 0) {
            fprintf(stderr, "genpulse: %s: %s must be an integer from %lld to %lld (got \"%s\")\n",
                    source, st->name, (long long)st->min, (long long)st->max, value);
            return -1;
        }
        *(int64_t *)(void *)(base + st->offset) = v.i;
        return 0;
    }
    if (st->choices) {
        bool ok = false;
        for (const char *const *c = st->choices; *c; c++)
            ok = ok || !strcmp(*c, value);
        if (!ok) {
            fprintf(stderr, "genpulse: %s: %s must be one of:", source, st->name);
            for (const char *const *c = st->choices; *c; c++)
                fprintf(stderr, " %s", *c);
            fprintf(stderr, " (got \"%s\")\n", value);
            return -1;
        }
    }
    if (strlen(value) > MAX_VALUE_LEN) {
        fprintf(stderr, "genpulse: %s: %s is too long\n", source, st->name);
        return -1;
    }
    char **slot = (char **)(void *)(base + st->offset);
    free(*slot);
    *slot = gp_xstrdup(value);
    return 0;
}

extern const gp_provider_t *const gp_generated_providers[];

/* A provider setting's text as given, and its value once check_providers() parsed it. */
typedef struct provider_value {
    char *text;
    gp_setting_value_t value;
} provider_value_t;

static void free_value(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    provider_value_t *pv = value;
    if (pv)
        free(pv->text);
    free(pv);
}

/* --<provider>-<name> and GENPULSE_<PROVIDER>_<NAME>. */
static void provider_names(const char *provider, const char *name, char *flag, char *env,
                           size_t cap)
{
    snprintf(flag, cap, "%s-%s", provider, name);
    env_name(flag, env, cap);
}

static const char *const provider_cmds = "serve, worker";

void gp_settings_print_help(FILE *out, unsigned cmd, const char *cmd_name, const char *cmd_doc)
{
    fprintf(out,
            "Usage: genpulse %s [options]\n\n%s\n\nOptions (each also read from the "
            "environment variable shown):\n",
            cmd_name, cmd_doc);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *st = &settings_table[i];
        if (!(st->commands & cmd))
            continue;
        char env[64];
        env_name(st->name, env, sizeof env);
        fprintf(out, "  --%-20s %s\n  %-22s [%s; default: \"%s\"]\n", st->name, st->doc, "", env,
                st->default_value);
    }
    if (cmd & (GP_CMD_SERVE | GP_CMD_WORKER)) {
        fprintf(out, "\nProvider settings:\n");
        for (size_t p = 0; gp_generated_providers[p]; p++) {
            const gp_provider_t *pr = gp_generated_providers[p];
            for (const gp_provider_setting_t *ps = pr->settings; ps && ps->name; ps++) {
                char flag[128], env[128];
                provider_names(pr->name, ps->name, flag, env, sizeof flag);
                fprintf(out, "  --%-20s %s\n  %-22s [%s; %s; default: \"%s\"]\n", flag, ps->doc, "",
                        env, kind_words(ps->kind, ps->min, ps->max, 0).text, ps->default_value);
            }
        }
    }
    fprintf(out, "  --%-20s %s\n", "help", "Show this help and exit.");
}

void gp_settings_write_markdown(FILE *out)
{
    fprintf(out, "| flag | environment | default | commands | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *st = &settings_table[i];
        char env[64];
        env_name(st->name, env, sizeof env);
        char cmds[64] = "";
        static const char *const names[] = {"serve", "api", "worker", "migrate"};
        for (int b = 0; b < 4; b++)
            if (st->commands & (1u << b)) {
                if (cmds[0])
                    strcat(cmds, ", ");
                strcat(cmds, names[b]);
            }
        fprintf(out, "| `--%s` | `%s` | `%s` | %s | %s", st->name, env, st->default_value, cmds,
                st->doc);
        if (st->kind == SET_INT)
            fprintf(out, " Range %lld–%lld.", (long long)st->min, (long long)st->max);
        fprintf(out, " |\n");
    }
    for (size_t p = 0; gp_generated_providers[p]; p++) {
        const gp_provider_t *pr = gp_generated_providers[p];
        for (const gp_provider_setting_t *ps = pr->settings; ps && ps->name; ps++) {
            char flag[128], env[128];
            provider_names(pr->name, ps->name, flag, env, sizeof flag);
            fprintf(out, "| `--%s` | `%s` | `%s` | %s | Provider %s: %s%s |\n", flag, env,
                    ps->default_value, provider_cmds, pr->name, ps->doc,
                    kind_words(ps->kind, ps->min, ps->max, 1).text);
        }
    }
}

/* Sets a provider setting by flag name ("replicate-api-token"); 1 if the flag is not one. */
static int apply_provider(gp_settings_t *s, const char *flag, size_t flag_len, const char *value,
                          bool check_only)
{
    for (size_t p = 0; gp_generated_providers[p]; p++) {
        const gp_provider_t *pr = gp_generated_providers[p];
        for (const gp_provider_setting_t *ps = pr->settings; ps && ps->name; ps++) {
            char f[128], env[128];
            provider_names(pr->name, ps->name, f, env, sizeof f);
            if (strlen(f) != flag_len || strncmp(f, flag, flag_len) != 0)
                continue;
            if (check_only)
                return 0;
            char *key = gp_xasprintf("%s.%s", pr->name, ps->name);
            provider_value_t *pv = gp_strmap_get(s->provider_values, key);
            free(key);
            free(pv->text);
            pv->text = gp_xstrdup(value);
            return 0;
        }
    }
    return 1;
}

static void load_provider_defaults(gp_settings_t *s, unsigned cmd)
{
    s->provider_values = gp_strmap_new();
    for (size_t p = 0; gp_generated_providers[p]; p++) {
        const gp_provider_t *pr = gp_generated_providers[p];
        for (const gp_provider_setting_t *ps = pr->settings; ps && ps->name; ps++) {
            char key[128], flag[128], env[128];
            snprintf(key, sizeof key, "%s.%s", pr->name, ps->name);
            provider_names(pr->name, ps->name, flag, env, sizeof flag);
            const char *v = getenv(env);
            if (!v || !(cmd & (GP_CMD_SERVE | GP_CMD_WORKER)))
                v = ps->default_value ? ps->default_value : "";
            provider_value_t *pv = gp_xcalloc(1, sizeof *pv);
            pv->text = gp_xstrdup(v);
            free_value(NULL, gp_strmap_put(s->provider_values, key, pv), NULL);
        }
    }
}

/*
 * Every provider setting, default first (a bad declaration is the code's fault, so it is
 * caught on every start, not when a task first reads it), then the value in force. The
 * message names the flag and the variable; a secret's value is never echoed.
 */
static int check_providers(gp_settings_t *s)
{
    for (size_t p = 0; gp_generated_providers[p]; p++) {
        const gp_provider_t *pr = gp_generated_providers[p];
        for (const gp_provider_setting_t *ps = pr->settings; ps && ps->name; ps++) {
            char key[128], flag[128], env[128], why[160] = "no default, or min > max";
            snprintf(key, sizeof key, "%s.%s", pr->name, ps->name);
            provider_names(pr->name, ps->name, flag, env, sizeof flag);
            bool empty_ok = ps->default_value && ps->default_value[0] == '\0';
            gp_setting_value_t v;
            if (!ps->default_value || ps->min > ps->max ||
                gp_setting_parse(ps->kind, ps->min, ps->max, true, ps->default_value, &v, why,
                                 sizeof why) != 0) {
                fprintf(stderr,
                        "genpulse: provider %s declares --%s with a bad default or bounds (%s)\n",
                        pr->name, flag, why);
                return -1;
            }
            provider_value_t *pv = gp_strmap_get(s->provider_values, key);
            if (gp_setting_parse(ps->kind, ps->min, ps->max, empty_ok, pv->text, &pv->value, why,
                                 sizeof why) != 0) {
                if (ps->kind == GP_SETTING_SECRET)
                    fprintf(stderr, "genpulse: --%s (%s): the value %s\n", flag, env, why);
                else
                    fprintf(stderr, "genpulse: --%s (%s): \"%.200s\" %s\n", flag, env, pv->text,
                            why);
                return -1;
            }
        }
    }
    return 0;
}

const char *gp_settings_provider(const gp_settings_t *s, const char *provider, const char *name)
{
    if (!s || !s->provider_values)
        return "";
    char key[128];
    snprintf(key, sizeof key, "%s.%s", provider, name);
    const provider_value_t *pv = gp_strmap_get(s->provider_values, key);
    return pv ? pv->text : "";
}

gp_setting_value_t gp_settings_provider_value(const gp_settings_t *s, const char *provider,
                                              const char *name)
{
    gp_setting_value_t zero = {0};
    if (!s || !s->provider_values)
        return zero;
    char key[128];
    snprintf(key, sizeof key, "%s.%s", provider, name);
    const provider_value_t *pv = gp_strmap_get(s->provider_values, key);
    return pv ? pv->value : zero;
}

int gp_settings_load(gp_settings_t *s, unsigned cmd, const char *cmd_name, const char *cmd_doc,
                     int argc, char **argv, int first)
{
    memset(s, 0, sizeof *s);
    load_provider_defaults(s, cmd);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (apply(s, &settings_table[i], settings_table[i].default_value, "default") != 0)
            return -1;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *st = &settings_table[i];
        char env[64];
        env_name(st->name, env, sizeof env);
        const char *v = getenv(env);
        if (v && (st->commands & cmd) && apply(s, st, v, env) != 0)
            return -1;
    }
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            gp_settings_print_help(stdout, cmd, cmd_name, cmd_doc);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "genpulse %s: unexpected argument \"%s\" (see --help)\n", cmd_name,
                    arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const setting_t *st = NULL;
        for (size_t k = 0; k < N_SETTINGS; k++)
            if ((settings_table[k].commands & cmd) && strlen(settings_table[k].name) == name_len &&
                !strncmp(settings_table[k].name, name, name_len))
                st = &settings_table[k];
        if (!st && (cmd & (GP_CMD_SERVE | GP_CMD_WORKER)) &&
            apply_provider(s, name, name_len, "", true) == 0) {
            const char *pv = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!pv) {
                fprintf(stderr, "genpulse %s: option --%.*s needs a value\n", cmd_name,
                        (int)name_len, name);
                return -1;
            }
            if (apply_provider(s, name, name_len, pv, false) != 0)
                return -1;
            continue;
        }
        if (!st) {
            fprintf(stderr, "genpulse %s: unknown option \"%s\" (see --help)\n", cmd_name, arg);
            return -1;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            fprintf(stderr, "genpulse %s: option --%s needs a value\n", cmd_name, st->name);
            return -1;
        }
        if (apply(s, st, value, "command line") != 0)
            return -1;
    }
    return check_providers(s);
}

void gp_settings_free(gp_settings_t *s)
{
    if (s->provider_values) {
        gp_strmap_each(s->provider_values, free_value, NULL);
        gp_strmap_free(s->provider_values);
        s->provider_values = NULL;
    }
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings_table[i].kind == SET_STRING) {
            char **slot = (char **)(void *)((char *)s + settings_table[i].offset);
            free(*slot);
            *slot = NULL;
        }
}
