/*
 * client.c — libgenpulse, the RPC client (see include/genpulse/client.h).
 *
 * DESIGN: two Redis connections per client. `cmd` sends the task (LPUSH of a Celery
 * protocol v2 message onto kombu's list for the priority, plus a token on the wake list the
 * GenPulse workers block on, in one MULTI) and reads stored states; `sub` holds the
 * SUBSCRIBE on celery-task-meta-<id>. Order for a run: SUBSCRIBE, then send, then GET the
 * key once (a state written before the subscription took effect is still seen), then read
 * published states until a ready one (SUCCESS, FAILURE, REVOKED) or the deadline.
 */
#include <genpulse/client.h>

#include "core/util.h"
#include "infra/celery/wire.h"
#include "infra/redis/conn.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define QUEUE "celery"
#define WAKE_LIST "celery.wake"
#define WAKE_CAP "64"
#define CANCEL_CHANNEL "genpulse:cancel"

struct gp_client {
    gp_redis_url_t url;
    int timeout_ms;
    redisContext *cmd, *sub;
};

static redisContext *ensure(gp_client_t *c, redisContext **slot)
{
    if (!*slot) {
        char err[256];
        *slot = gp_redis_connect(&c->url, c->timeout_ms, c->timeout_ms, NULL, err, sizeof err);
    }
    return *slot;
}

static void drop(redisContext **slot)
{
    if (*slot) {
        redisFree(*slot);
        *slot = NULL;
    }
}

gp_client_t *gp_client_connect(const char *redis_url, int timeout_ms, char *err, size_t cap)
{
    gp_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    if (gp_redis_url_parse(redis_url ? redis_url : "", &c->url, err, cap) != 0) {
        free(c);
        return NULL;
    }
    c->cmd = gp_redis_connect(&c->url, c->timeout_ms, c->timeout_ms, NULL, err, cap);
    if (!c->cmd) {
        free(c);
        return NULL;
    }
    return c;
}

void gp_client_free(gp_client_t *c)
{
    if (!c)
        return;
    drop(&c->cmd);
    drop(&c->sub);
    free(c);
}

void gp_client_result_clear(gp_client_result_t *r)
{
    free(r->result_json);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/* The task's message (malloc'd) in *text_out: 0, GP_CLIENT_EINVAL or GP_CLIENT_ENOMEM. */
static int encode_task(const char *task_type, const char *params_json, int priority, const char *id,
                       char **text_out)
{
    if (!task_type || !*task_type || strlen(task_type) > 64 || priority < 0 || priority > 9)
        return GP_CLIENT_EINVAL;
    json_error_t e;
    json_t *kwargs = params_json ? json_loads(params_json, 0, &e) : json_object();
    if (!json_is_object(kwargs)) {
        json_decref(kwargs);
        bool oom = !params_json || (!kwargs && json_error_code(&e) == json_error_out_of_memory);
        return oom ? GP_CLIENT_ENOMEM : GP_CLIENT_EINVAL;
    }
    char *kwrepr = json_dumps(kwargs, JSON_COMPACT);
    char tag[37];
    gp_uuid7(tag);
    gp_celery_task_t t = {.task = task_type,
                          .id = id,
                          .kwargs = kwargs,
                          .kwargsrepr = kwrepr,
                          .kombu_priority = gp_celery_kombu_priority(priority),
                          .delivery_tag = tag,
                          .routing_key = QUEUE};
    *text_out = kwrepr ? gp_celery_encode_task(&t) : NULL;
    free(kwrepr);
    json_decref(kwargs);
    return *text_out ? 0 : GP_CLIENT_ENOMEM;
}

static int send_task(gp_client_t *c, const char *task_type, const char *params_json, int priority,
                     const char *id)
{
    char *text = NULL;
    int rc = encode_task(task_type, params_json, priority, id, &text);
    if (rc != 0)
        return rc;
    char list[32];
    gp_celery_list_name(QUEUE, gp_celery_kombu_priority(priority), list, sizeof list);
    redisContext *r = ensure(c, &c->cmd);
    rc = r ? 0 : GP_CLIENT_EUNAVAILABLE;
    if (r) {
        redisAppendCommand(r, "MULTI");
        redisAppendCommand(r, "LPUSH %s %s", list, text);
        redisAppendCommand(r, "LPUSH %s 1", WAKE_LIST);
        redisAppendCommand(r, "LTRIM %s 0 %s", WAKE_LIST, WAKE_CAP);
        redisAppendCommand(r, "EXEC");
        for (int i = 0; i < 5 && rc == 0; i++) {
            void *reply = NULL;
            if (redisGetReply(r, &reply) != REDIS_OK) {
                rc = GP_CLIENT_EUNAVAILABLE;
                drop(&c->cmd);
            }
            freeReplyObject(reply);
        }
    }
    free(text);
    return rc;
}

int gp_client_submit(gp_client_t *c, const char *task_type, const char *params_json, int priority,
                     char id_out[37])
{
    gp_uuid7(id_out);
    return send_task(c, task_type, params_json, priority, id_out);
}

/* Applies one stored/published state: 1 when it is a ready (final) state, 0 when not (or
 * not a state at all: ignored), GP_CLIENT_ENOMEM when its result could not be copied. */
static int apply_state(const char *text, size_t len, gp_client_progress_cb progress, void *arg,
                       gp_client_result_t *out)
{
    gp_celery_meta_t m;
    if (gp_celery_decode_meta(text, len, &m, NULL, 0) != 0)
        return 0;
    int rc = 0;
    if (!strcmp(m.state, GP_CELERY_SUCCESS)) {
        out->status = GP_CLIENT_SUCCEEDED;
        out->result_json = m.result ? json_dumps(m.result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        rc = out->result_json || !m.result ? 1 : GP_CLIENT_ENOMEM;
    } else if (!strcmp(m.state, GP_CELERY_FAILURE) || !strcmp(m.state, GP_CELERY_REVOKED)) {
        out->status = !strcmp(m.state, GP_CELERY_REVOKED) ? GP_CLIENT_CANCELED : GP_CLIENT_FAILED;
        const char *msg = gp_celery_meta_error(&m);
        out->error = strdup(msg ? msg : m.state);
        rc = out->error ? 1 : GP_CLIENT_ENOMEM;
    } else if (!strcmp(m.state, GP_CELERY_PROGRESS) && progress) {
        json_t *pct = json_object_get(m.result, "pct");
        const char *step = json_string_value(json_object_get(m.result, "step"));
        progress(out->id, json_is_integer(pct) ? (int)json_integer_value(pct) : 0, step ? step : "",
                 arg);
    }
    gp_celery_meta_clear(&m);
    return rc;
}

static int64_t now_ms(void)
{
    return gp_mono_ms();
}

/* A state stored before the subscription took effect: apply_state()'s result, or
 * GP_CLIENT_EUNAVAILABLE. */
static int read_stored(gp_client_t *c, const char *key, gp_client_progress_cb progress, void *arg,
                       gp_client_result_t *out)
{
    redisContext *r = ensure(c, &c->cmd);
    if (!r)
        return GP_CLIENT_EUNAVAILABLE;
    redisReply *got = redisCommand(r, "GET %s", key);
    if (!got) {
        drop(&c->cmd);
        return GP_CLIENT_EUNAVAILABLE;
    }
    int rc = got->type == REDIS_REPLY_STRING
                 ? apply_state(got->str, (size_t)got->len, progress, arg, out)
                 : 0;
    freeReplyObject(got);
    return rc;
}

/* Reads published states until a ready one: apply_state()'s result, or 2 at the deadline,
 * or GP_CLIENT_EUNAVAILABLE. */
static int read_published(gp_client_t *c, int64_t deadline, gp_client_progress_cb progress,
                          void *arg, gp_client_result_t *out)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 2;
        struct timeval tv = {.tv_sec = (time_t)(left / 1000),
                             .tv_usec = (suseconds_t)((left % 1000) * 1000)};
        redisSetTimeout(c->sub, tv);
        void *reply = NULL;
        if (redisGetReply(c->sub, &reply) != REDIS_OK)
            return now_ms() >= deadline ? 2 : GP_CLIENT_EUNAVAILABLE;
        redisReply *m = reply;
        int rc = 0;
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
            m->element[0]->type == REDIS_REPLY_STRING && !strcmp(m->element[0]->str, "message") &&
            m->element[2]->type == REDIS_REPLY_STRING)
            rc = apply_state(m->element[2]->str, (size_t)m->element[2]->len, progress, arg, out);
        freeReplyObject(reply);
        if (rc != 0)
            return rc;
    }
}

static int wait_subscribed(gp_client_t *c, const char *key, int64_t deadline,
                           gp_client_progress_cb progress, void *arg, gp_client_result_t *out)
{
    int rc = read_stored(c, key, progress, arg, out);
    if (rc == 0)
        rc = read_published(c, deadline, progress, arg, out);
    if (rc == 2) {
        out->status = GP_CLIENT_TIMED_OUT;
        rc = 0;
    } else if (rc == 1) {
        /* Leave the channel; the connection stays for the next call. */
        redisReply *u = redisCommand(c->sub, "UNSUBSCRIBE %s", key);
        if (u) {
            freeReplyObject(u);
            return 0;
        }
        rc = 0;
    } else if (rc == GP_CLIENT_ENOMEM) {
        free(out->result_json);
        free(out->error);
        out->result_json = out->error = NULL;
    }
    drop(&c->sub); /* it may still deliver (or be broken): start clean next time */
    return rc;
}

static int subscribe(gp_client_t *c, const char *key)
{
    redisContext *s = ensure(c, &c->sub);
    if (!s)
        return GP_CLIENT_EUNAVAILABLE;
    redisReply *r = redisCommand(s, "SUBSCRIBE %s", key);
    if (!r) {
        drop(&c->sub);
        return GP_CLIENT_EUNAVAILABLE;
    }
    freeReplyObject(r);
    return 0;
}

int gp_client_run(gp_client_t *c, const char *task_type, const char *params_json, int priority,
                  int timeout_ms, gp_client_progress_cb progress, void *arg,
                  gp_client_result_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    gp_uuid7(out->id);
    char key[80];
    snprintf(key, sizeof key, GP_CELERY_KEY_PREFIX "%s", out->id);
    int rc = subscribe(c, key); /* before sending: an early finish cannot slip by */
    if (rc == 0)
        rc = send_task(c, task_type, params_json, priority, out->id);
    if (rc == 0)
        rc = wait_subscribed(c, key, deadline, progress, arg, out);
    else
        drop(&c->sub);
    return rc;
}

int gp_client_wait(gp_client_t *c, const char *task_id, int timeout_ms,
                   gp_client_progress_cb progress, void *arg, gp_client_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (!task_id || strlen(task_id) != 36)
        return GP_CLIENT_EINVAL;
    memcpy(out->id, task_id, 37);
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    char key[80];
    snprintf(key, sizeof key, GP_CELERY_KEY_PREFIX "%s", task_id);
    int rc = subscribe(c, key);
    return rc ? rc : wait_subscribed(c, key, deadline, progress, arg, out);
}

int gp_client_cancel(gp_client_t *c, const char *task_id)
{
    if (!task_id || strlen(task_id) != 36)
        return GP_CLIENT_EINVAL;
    redisContext *r = ensure(c, &c->cmd);
    if (!r)
        return GP_CLIENT_EUNAVAILABLE;
    redisReply *rep = redisCommand(r, "PUBLISH %s %s", CANCEL_CHANNEL, task_id);
    if (!rep) {
        drop(&c->cmd);
        return GP_CLIENT_EUNAVAILABLE;
    }
    freeReplyObject(rep);
    return 0;
}
