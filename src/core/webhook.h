/*
 * webhook.h — Standard Webhooks pieces shared by the store, the delivery loop and the API:
 * event type names and bits, secrets, signatures, the retry schedule and URL checks
 * (../shared/research/genai_apis.md §6).
 *
 * Event types (what a per-user endpoint subscribes to, and a delivery's "type"):
 *   task.started, task.output, task.logs, task.succeeded, task.failed, task.canceled.
 * A task's own webhook filters with Replicate's names (GP_WEBHOOK_EV_*, task.h): start,
 * output, logs, completed (= the three terminal types).
 *
 * Threading: every function is pure or uses the thread-safe CSPRNG; any thread.
 */
#ifndef GP_WEBHOOK_H
#define GP_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    GP_WH_TYPE_STARTED = 1u << 0,
    GP_WH_TYPE_OUTPUT = 1u << 1,
    GP_WH_TYPE_LOGS = 1u << 2,
    GP_WH_TYPE_SUCCEEDED = 1u << 3,
    GP_WH_TYPE_FAILED = 1u << 4,
    GP_WH_TYPE_CANCELED = 1u << 5,
    GP_WH_TYPE_ALL = 0x3fu
};

/* "whsec_" + base64 of 32 bytes (44 characters) + NUL. */
#define GP_WH_SECRET_LEN 51
/* Delivery ids "msg_" + 32 hex, endpoint ids "ep_" + 24 hex, and a NUL: room for both. */
#define GP_WH_ID_LEN 40
/* "v1," + base64 of a SHA-256 (44) + NUL. */
#define GP_WH_SIGNATURE_LEN 48
#define GP_WH_URL_MAX 2048

/* "task.started" → GP_WH_TYPE_STARTED …; 0 when unknown. */
unsigned gp_webhook_type_parse(const char *name);
/* The name of one bit ("task.started"), or NULL. */
const char *gp_webhook_type_name(unsigned bit);
/* The task-webhook filter bit (GP_WEBHOOK_EV_*) an event type falls under (0 = none). */
unsigned gp_webhook_type_task_event(unsigned bit);

/* A new random secret "whsec_<base64 of 32 bytes>". */
void gp_webhook_secret_new(char out[GP_WH_SECRET_LEN]);
/* A new id: prefix ("msg_", "ep_") + nhex random hex digits (out holds GP_WH_ID_LEN). */
void gp_webhook_id_new(const char *prefix, size_t nhex, char out[GP_WH_ID_LEN]);

/* The webhook-signature value "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" with key =
 * base64-decoded secret (after "whsec_" when present). 0, or -1 if the secret does not
 * decode to 1..64 bytes. */
int gp_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
                    size_t len, char out[GP_WH_SIGNATURE_LEN]);

/* The number of attempts the schedule allows (the first one included). */
#define GP_WH_MAX_ATTEMPTS 10
/* The wait before attempt n + 1 after n failed attempts (1 ≤ n < GP_WH_MAX_ATTEMPTS), in ms,
 * scaled by `scale`, with up to ±10 % jitter from rnd (uniform 64-bit); -1 when n attempts
 * are all the schedule allows. Schedule (Standard Webhooks' example): 5 s, 5 min, 30 min,
 * 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. */
int64_t gp_webhook_retry_delay_ms(int n, double scale, uint64_t rnd);

/* Checks a delivery URL: http(s), a host, no credentials, no spaces or unsafe characters,
 * at most GP_WH_URL_MAX bytes. NULL when fine, else why (static text). */
const char *gp_webhook_url_problem(const char *url);

#endif
