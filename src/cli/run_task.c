/*
 * run_task.c — `genpulse run`: send one task to the workers over Redis with the RPC client
 * library (include/genpulse/client.h) and, with --wait, block until it ends.
 *
 * The params are validated here with the same declarations the workers use, so a mistake
 * fails at once instead of on a worker. Exit status: 0 succeeded (or sent), 1 failed,
 * 2 bad usage, 3 timed out, 4 canceled, 5 Redis unreachable.
 */
#include "cli/cli.h"
#include "core/registry.h"

#include <genpulse/client.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_EXIT_USAGE 2
#define RUN_EXIT_UNREACHABLE 5
#define RUN_MAX_TIMEOUT_S (86400 * 7)

static const char run_usage[] =
    "Usage: genpulse run TASK_TYPE [key=value ...] [options]\n\n"
    "Send a task straight to the workers over Redis (no HTTP, no polling) and, with --wait,\n"
    "wait for it: progress goes to stderr, the result to stdout. A value is read as JSON\n"
    "when it parses (42, true, {\"a\":1}), else as a string.\n\n"
    "Options:\n"
    "  --provider P      the provider (default: the task type's default)\n"
    "  --priority N      0-9, higher runs first (default 0)\n"
    "  --wait            wait for the task to finish\n"
    "  --timeout S       give up waiting after S seconds (default 600)\n"
    "  --json            print the whole result as JSON (default: one asset URL per line)\n"
    "  --queue-url URL   redis://host:port/db [GENPULSE_QUEUE_URL]\n"
    "  --help            show this help\n\n"
    "Exit status: 0 succeeded (or sent, without --wait), 1 failed, 2 bad usage,\n"
    "3 timed out, 4 canceled, 5 Redis unreachable.\n";

typedef struct run_args {
    const char *task_type, *provider, *queue_url;
    bool wait, as_json, help;
    long priority, timeout_s;
    json_t *params; /* owned */
} run_args_t;

/* One numeric option value in [lo, hi]; false (and a message) otherwise. */
static bool parse_bounded(const char *flag, const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "genpulse run: %s must be %ld-%ld\n", flag, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

/* key=value → params[key]: JSON when it parses, else the string. */
static bool add_param(json_t *params, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "genpulse run: expected key=value, got \"%s\"\n", arg);
        return false;
    }
    char *key = strndup(arg, (size_t)(eq - arg));
    json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    json_object_set_new(params, key, v ? v : json_string(eq + 1));
    free(key);
    return true;
}

/* Fills a from argv; false on bad usage (the message is printed). */
static bool parse_args(int argc, char **argv, run_args_t *a)
{
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            a->help = true;
            return true;
        } else if (!strcmp(arg, "--wait")) {
            a->wait = true;
        } else if (!strcmp(arg, "--json")) {
            a->as_json = true;
        } else if (!strcmp(arg, "--provider") && next) {
            a->provider = argv[++i];
        } else if (!strcmp(arg, "--queue-url") && next) {
            a->queue_url = argv[++i];
        } else if (!strcmp(arg, "--priority") && next) {
            if (!parse_bounded("--priority", argv[++i], 0, 9, &a->priority))
                return false;
        } else if (!strcmp(arg, "--timeout") && next) {
            if (!parse_bounded("--timeout", argv[++i], 1, RUN_MAX_TIMEOUT_S, &a->timeout_s))
                return false;
        } else if (!strncmp(arg, "--", 2)) {
            fprintf(stderr, "genpulse run: unknown or incomplete option %s (see --help)\n", arg);
            return false;
        } else if (!a->task_type) {
            a->task_type = arg;
        } else if (!add_param(a->params, arg)) {
            return false;
        }
    }
    if (!a->task_type) {
        fputs(run_usage, stderr);
        return false;
    }
    if (!a->queue_url || !*a->queue_url) {
        fprintf(stderr, "genpulse run: set --queue-url or GENPULSE_QUEUE_URL (redis://...)\n");
        return false;
    }
    if (a->provider)
        json_object_set_new(a->params, "provider", json_string(a->provider));
    return true;
}

/* The validated params (defaults filled in) as compact JSON (caller frees), or NULL with the
 * problems printed one per line. */
static char *validated_params(const run_args_t *a)
{
    char err[512];
    if (gp_registry_init(err, sizeof err) != 0) {
        fprintf(stderr, "genpulse run: %s\n", err);
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:O, s:i}", "task_type", a->task_type, "params", a->params,
                             "priority", (int)a->priority);
    gp_submission_t sub;
    json_t *details = NULL;
    int valid = gp_validate_submission(body, 0, &sub, &details);
    json_decref(body);
    if (valid != 0) {
        size_t i;
        json_t *d;
        json_array_foreach (details, i, d)
            fprintf(stderr, "genpulse run: %s: %s\n",
                    json_string_value(json_object_get(d, "field")),
                    json_string_value(json_object_get(d, "message")));
        json_decref(details);
        return NULL;
    }
    char *text = json_dumps(sub.params, JSON_COMPACT);
    gp_submission_clear(&sub);
    return text;
}

static void print_progress(const char *id, int percent, const char *step, void *arg)
{
    (void)id, (void)arg;
    fprintf(stderr, "[%3d%%] %s\n", percent, step);
}

/* A finished task: the result (or its asset URLs) on stdout, anything else on stderr. */
static void print_result(const run_args_t *a, const gp_client_result_t *res)
{
    if (res->status == GP_CLIENT_TIMED_OUT) {
        fprintf(stderr, "genpulse run: %s did not finish within %ld s\n", res->id, a->timeout_s);
        return;
    }
    if (res->status != GP_CLIENT_SUCCEEDED) {
        fprintf(stderr, "genpulse run: %s %s: %s\n", res->id,
                res->status == GP_CLIENT_CANCELED ? "canceled" : "failed",
                res->error ? res->error : "");
        return;
    }
    json_t *result =
        json_loads(res->result_json ? res->result_json : "null", JSON_DECODE_ANY, NULL);
    json_t *assets = json_object_get(result, "assets");
    if (a->as_json || !json_array_size(assets)) {
        char *text = json_dumps(result, JSON_INDENT(2) | JSON_ENCODE_ANY);
        printf("%s\n", text ? text : "null");
        free(text);
    } else {
        size_t i;
        json_t *asset;
        json_array_foreach (assets, i, asset)
            printf("%s\n", json_string_value(json_object_get(asset, "url")));
    }
    json_decref(result);
}

/* Sends the task (and waits, with --wait); returns the exit status. */
static int send_task(const run_args_t *a, const char *params_text)
{
    char err[512];
    gp_client_t *client = gp_client_connect(a->queue_url, 5000, err, sizeof err);
    if (!client) {
        fprintf(stderr, "genpulse run: %s\n", err);
        return RUN_EXIT_UNREACHABLE;
    }
    int exit_code;
    if (!a->wait) {
        char id[37];
        int rc = gp_client_submit(client, a->task_type, params_text, (int)a->priority, id);
        if (rc == 0)
            printf("%s\n", id);
        exit_code = rc == 0 ? 0 : RUN_EXIT_UNREACHABLE;
    } else {
        gp_client_result_t res;
        int rc = gp_client_run(client, a->task_type, params_text, (int)a->priority,
                               (int)(a->timeout_s * 1000), print_progress, NULL, &res);
        if (rc != 0) {
            fprintf(stderr, "genpulse run: Redis is unreachable\n");
            exit_code = RUN_EXIT_UNREACHABLE;
        } else {
            exit_code = (int)res.status;
            print_result(a, &res);
            gp_client_result_clear(&res);
        }
    }
    gp_client_free(client);
    return exit_code;
}

int gp_cmd_run_task(int argc, char **argv)
{
    run_args_t a = {
        .queue_url = getenv("GENPULSE_QUEUE_URL"), .timeout_s = 600, .params = json_object()};
    int exit_code = RUN_EXIT_USAGE;
    if (!parse_args(argc, argv, &a))
        goto out;
    if (a.help) {
        fputs(run_usage, stdout);
        exit_code = 0;
        goto out;
    }
    char *params_text = validated_params(&a);
    if (params_text) {
        exit_code = send_task(&a, params_text);
        free(params_text);
    }
out:
    json_decref(a.params);
    return exit_code;
}
