/*
 * settings.h — every setting, declared once in settings.c's table. The table drives the
 * command-line flags (--name value / --name=value), the GENPULSE_* environment variables,
 * bounds checking, --help and docs/settings.md. Precedence: flag > environment > default.
 * A gp_settings_t is filled once at start and read-only afterwards (safe to share).
 */
#ifndef GP_SETTINGS_H
#define GP_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <genpulse/handler.h>

typedef struct gp_settings {
    char *host;
    int64_t port;
    char *data_dir;
    char *database_url;
    char *queue_url;
    char *storage_url;
    char *public_url;
    char *admin_host;
    int64_t admin_port;
    int64_t concurrency;
    int64_t http_threads;
    int64_t max_body_bytes;
    int64_t max_upload_bytes;
    int64_t allow_private_inputs;
    int64_t max_connections;
    char *log_level;
    char *log_format;
    int64_t task_timeout_s;
    int64_t default_max_retries;
    int64_t retry_base_ms;
    int64_t retry_max_ms;
    int64_t grace_period_s;
    int64_t sse_heartbeat_s;
    int64_t lease_s;
    int64_t commit_batch_max;
    char *sqlite_synchronous;
    char *auth_mode;
    char *service_user;
    char *link_secret;
    int64_t link_ttl_s;
    char *cors_origins;
    char *plans_file;
    char *oidc_google_client_id;
    char *oidc_issuer;
    char *oidc_client_id;
    char *oidc_google_client_secret;
    char *oidc_client_secret;
    char *oidc_hosted_domain;
    char *default_plan;
    char *replicate_models;  /* --replicate-models: the Replicate model table, "" = built in */
    int64_t metrics;         /* 0/1: record metrics (core/metrics.h) */
    int64_t webhooks;        /* 0/1: run the webhook delivery loop (serve, api) */
    int64_t webhook_threads; /* deliveries in flight at once */
    int64_t webhook_allow_private; /* 0/1: deliver to loopback/private addresses */
    char *webhook_retry_scale;     /* a positive number multiplying the retry schedule */
    int64_t webhook_poll_ms;       /* how often the loop looks for rows other processes added */
    int64_t webhook_max_endpoints; /* per user */
    /* Providers' own settings (gp_provider_setting_t), "provider.name" → char*; owned. */
    struct gp_strmap *provider_values;
} gp_settings_t;

/* A provider setting's value: "" when unset, never NULL. */
const char *gp_settings_provider(const gp_settings_t *s, const char *provider, const char *name);

/* A setting's value parsed against its kind: i for integers, durations (ms) and booleans
 * (0/1), d for numbers. */
typedef struct gp_setting_value {
    int64_t i;
    double d;
} gp_setting_value_t;

/* The parsed value of a provider setting, checked by gp_settings_load(); zero when the
 * provider declares no such setting. */
gp_setting_value_t gp_settings_provider_value(const gp_settings_t *s, const char *provider,
                                              const char *name);

/*
 * The one value parser behind both tables: parses text as a `kind` value (genpulse/handler.h)
 * within [min, max] (integers, durations, numbers). Returns 0 and sets *out, or -1 with *out
 * untouched and the reason written to why ("is not an integer from 100 to 60000").
 * empty_ok lets "" through as unset (strings and URLs). Any thread.
 */
int gp_setting_parse(gp_setting_kind_t kind, double min, double max, bool empty_ok,
                     const char *text, gp_setting_value_t *out, char *why, size_t why_cap);

/* Which commands a setting applies to (bit flags). */
enum {
    GP_CMD_SERVE = 1,
    GP_CMD_API = 2,
    GP_CMD_WORKER = 4,
    GP_CMD_MIGRATE = 8
};

/*
 * Fills s from defaults, then the environment, then argv[first..argc) for command `cmd`.
 * Unknown flags or bad values print a message to stderr and return -1; --help prints the
 * help for `cmd_name` to stdout and returns 1. Strings in s are owned by s
 * (gp_settings_free).
 */
int gp_settings_load(gp_settings_t *s, unsigned cmd, const char *cmd_name, const char *cmd_doc,
                     int argc, char **argv, int first);
void gp_settings_free(gp_settings_t *s);
/* The settings table as a Markdown table (docs/settings.md). */
void gp_settings_write_markdown(FILE *out);
void gp_settings_print_help(FILE *out, unsigned cmd, const char *cmd_name, const char *cmd_doc);

#endif
