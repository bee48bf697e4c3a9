/* wire.c — Celery protocol v2 messages and result-backend meta (see wire.h). */
#include "infra/celery/wire.h"
#include "core/base64.h"

#include <stdlib.h>
#include <string.h>

/* json_object_set_new that reports failure (OOM) instead of hiding it. */
static bool put(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0;
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* headers: the fields Celery 5 sends, in its order, plus extra. */
static json_t *task_headers(const gp_celery_task_t *t)
{
    json_t *h = json_object();
    bool ok = h && put(h, "lang", json_string("py")) && put(h, "task", json_string(t->task)) &&
              put(h, "id", json_string(t->id)) && put(h, "shadow", json_null()) &&
              put(h, "eta", string_or_null(t->eta)) && put(h, "expires", json_null()) &&
              put(h, "group", json_null()) && put(h, "group_index", json_null()) &&
              put(h, "retries", json_integer(0)) && put(h, "timelimit", json_pack("[n, n]")) &&
              put(h, "root_id", json_string(t->id)) && put(h, "parent_id", json_null()) &&
              put(h, "argsrepr", json_string("[]")) &&
              put(h, "kwargsrepr", json_string(t->kwargsrepr ? t->kwargsrepr : "{}")) &&
              (!t->origin || put(h, "origin", json_string(t->origin))) &&
              put(h, "ignore_result", json_false());
    if (ok && t->extra_headers)
        ok = json_object_update(h, (json_t *)t->extra_headers) == 0;
    if (!ok) {
        json_decref(h);
        return NULL;
    }
    return h;
}

static json_t *task_properties(const gp_celery_task_t *t)
{
    json_t *p = json_object();
    bool ok = p && put(p, "correlation_id", json_string(t->id)) &&
              put(p, "delivery_mode", json_integer(2)) &&
              put(p, "delivery_info",
                  json_pack("{s:s, s:s}", "exchange", "", "routing_key", t->routing_key)) &&
              put(p, "priority", json_integer(t->kombu_priority)) &&
              put(p, "body_encoding", json_string("base64")) &&
              put(p, "delivery_tag", json_string(t->delivery_tag));
    if (!ok) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* body = base64([args, kwargs, embed]) */
static char *task_body(const gp_celery_task_t *t)
{
    json_t *kwargs = t->kwargs ? json_deep_copy(t->kwargs) : json_object();
    json_t *body = json_pack("[[], o, {s:n, s:n, s:n, s:n}]", kwargs, "callbacks", "errbacks",
                             "chain", "chord");
    char *text = body ? json_dumps(body, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    json_decref(body);
    char *b64 = text ? gp_base64_encode_or_null(text, strlen(text)) : NULL;
    free(text);
    return b64;
}

char *gp_celery_encode_task(const gp_celery_task_t *t)
{
    char *b64 = task_body(t);
    json_t *msg = json_object();
    bool ok = b64 && msg && put(msg, "body", json_string(b64)) &&
              put(msg, "content-encoding", json_string("utf-8")) &&
              put(msg, "content-type", json_string("application/json")) &&
              put(msg, "headers", task_headers(t)) && put(msg, "properties", task_properties(t));
    free(b64);
    char *out = ok ? json_dumps(msg, JSON_PRESERVE_ORDER) : NULL;
    json_decref(msg);
    return out;
}

void gp_celery_decoded_clear(gp_celery_decoded_t *d)
{
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

int gp_celery_decode_task(const char *msg, size_t len, gp_celery_decoded_t *out)
{
    memset(out, 0, sizeof *out);
    if (!msg || len > GP_CELERY_MAX_MESSAGE)
        return -1;
    json_t *m = json_loadb(msg, len, 0, NULL);
    json_t *h = json_object_get(m, "headers");
    const char *id = json_string_value(json_object_get(h, "id"));
    if (!json_is_object(m) || !json_is_object(h) || !id || !*id) {
        json_decref(m);
        return -1;
    }
    out->root = m;
    out->headers = h;
    out->id = id;
    out->task = json_string_value(json_object_get(h, "task"));
    json_t *pr = json_object_get(json_object_get(m, "properties"), "priority");
    json_int_t kp = json_is_integer(pr) ? json_integer_value(pr) : 0;
    out->kombu_priority = kp < 0 ? 0 : kp > 9 ? 9 : (int)kp;
    return 0;
}

json_t *gp_celery_decode_kwargs(const gp_celery_decoded_t *d)
{
    json_t *body = json_object_get(d->root, "body");
    const char *enc =
        json_string_value(json_object_get(json_object_get(d->root, "properties"), "body_encoding"));
    if (!json_is_string(body))
        return NULL;
    json_t *decoded;
    if (enc && !strcmp(enc, "base64")) {
        size_t n = 0;
        unsigned char *raw =
            gp_base64_decode(json_string_value(body), json_string_length(body), &n);
        if (!raw)
            return NULL;
        decoded = json_loadb((const char *)raw, n, 0, NULL);
        free(raw);
    } else {
        decoded = json_loadb(json_string_value(body), json_string_length(body), 0, NULL);
    }
    json_t *kwargs = json_array_get(decoded, 1);
    if (json_is_object(kwargs))
        json_incref(kwargs);
    else
        kwargs = NULL;
    json_decref(decoded);
    return kwargs;
}

char *gp_celery_encode_meta(const char *task_id, const char *state, json_t *result,
                            const char *date_done)
{
    json_t *meta = json_object();
    bool ok = meta && put(meta, "status", json_string(state)) &&
              put(meta, "result", result ? result : json_null()) &&
              put(meta, "traceback", json_null()) && put(meta, "children", json_array()) &&
              put(meta, "date_done", string_or_null(date_done)) &&
              put(meta, "task_id", json_string(task_id));
    if (!meta)
        json_decref(result);
    char *text = ok ? json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(meta);
    return text;
}

json_t *gp_celery_exception(const char *type, const char *message, const char *module)
{
    return json_pack("{s:s, s:[s], s:o}", "exc_type", type, "exc_message", message, "exc_module",
                     string_or_null(module));
}

void gp_celery_meta_clear(gp_celery_meta_t *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

int gp_celery_decode_meta(const char *text, size_t len, gp_celery_meta_t *out)
{
    memset(out, 0, sizeof *out);
    if (!text || len > GP_CELERY_MAX_MESSAGE)
        return -1;
    json_t *m = json_loadb(text, len, 0, NULL);
    const char *state = json_string_value(json_object_get(m, "status"));
    if (!json_is_object(m) || !state) {
        json_decref(m);
        return -1;
    }
    out->root = m;
    out->state = state;
    out->result = json_object_get(m, "result");
    return 0;
}

const char *gp_celery_meta_error(const gp_celery_meta_t *m)
{
    return json_string_value(json_array_get(json_object_get(m->result, "exc_message"), 0));
}
