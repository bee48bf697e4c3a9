/* wire.c — Celery protocol v2 messages and result-backend meta (see wire.h). */
#include "infra/celery/wire.h"
#include "core/base64.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- priorities and times ----------------------------------------------------------------- */

static int clamp9(int p)
{
    return p < 0 ? 0 : p > 9 ? 9 : p;
}

int gp_celery_kombu_priority(int genpulse_priority)
{
    return 9 - clamp9(genpulse_priority);
}

int gp_celery_genpulse_priority(int kombu_priority)
{
    return 9 - clamp9(kombu_priority);
}

int gp_celery_priority_step(int kombu_priority)
{
    int kp = clamp9(kombu_priority);
    return kp - kp % 3; /* kombu's PRIORITY_STEPS [0, 3, 6, 9] */
}

void gp_celery_list_name(const char *queue, int kombu_priority, char *out, size_t cap)
{
    int step = gp_celery_priority_step(kombu_priority);
    if (step)
        snprintf(out, cap, "%s" GP_CELERY_SEP "%d", queue, step);
    else
        snprintf(out, cap, "%s", queue);
}

/* "YYYY-MM-DDTHH:MM:SS" of unix ms, UTC; returns the milliseconds part. */
static int utc_seconds(int64_t ms, char *out, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    return (int)(ms % 1000);
}

void gp_celery_format_eta(int64_t ms, char *out, size_t cap)
{
    char base[32];
    int frac = utc_seconds(ms, base, sizeof base);
    snprintf(out, cap, "%s.%03d000+00:00", base, frac);
}

void gp_celery_format_date_done(int64_t ms, char *out, size_t cap)
{
    char base[32];
    int frac = utc_seconds(ms, base, sizeof base);
    snprintf(out, cap, "%s.%03d", base, frac);
}

/* ---- encoding ------------------------------------------------------------------------------ */

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
              put(p, "priority", json_integer(clamp9(t->kombu_priority))) &&
              put(p, "body_encoding", json_string("base64")) &&
              put(p, "delivery_tag", json_string(t->delivery_tag));
    if (!ok) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* body = base64([args, kwargs, embed]), with Python's json.dumps separators as Celery. */
static char *task_body(const gp_celery_task_t *t)
{
    json_t *kwargs = t->kwargs ? json_deep_copy(t->kwargs) : json_object();
    json_t *body = json_pack("[[], o, {s:n, s:n, s:n, s:n}]", kwargs, "callbacks", "errbacks",
                             "chain", "chord");
    char *text = body ? json_dumps(body, JSON_PRESERVE_ORDER) : NULL;
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

char *gp_celery_encode_meta(const char *task_id, const char *state, json_t *result,
                            const char *date_done)
{
    json_t *meta = json_object();
    if (!meta) {
        json_decref(result);
        return NULL;
    }
    bool ok = put(meta, "status", json_string(state)) &&
              put(meta, "result", result ? result : json_null()) &&
              put(meta, "traceback", json_null()) && put(meta, "children", json_array()) &&
              put(meta, "date_done", string_or_null(date_done)) &&
              put(meta, "task_id", json_string(task_id));
    char *text = ok ? json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(meta);
    return text;
}

json_t *gp_celery_exception(const char *type, const char *message, const char *module)
{
    return json_pack("{s:s, s:[s], s:o}", "exc_type", type, "exc_message", message, "exc_module",
                     string_or_null(module));
}

/* ---- decoding ------------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* v as a string of 1..max bytes without an embedded NUL, else NULL. */
static const char *bounded_string(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    return s && n > 0 && n <= max && strlen(s) == n ? s : NULL;
}

/* Absent and null count as absent. */
static const json_t *field(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

/* Loads a bounded JSON document; NULL with the reason in err. */
static json_t *load(const char *text, size_t len, const char *what, char *err, size_t cap)
{
    if (!text || len > GP_CELERY_MAX_MESSAGE) {
        fail(err, cap, "%s larger than %u bytes", what, GP_CELERY_MAX_MESSAGE);
        return NULL;
    }
    json_error_t e;
    json_t *v = json_loadb(text, len, 0, &e);
    if (!v)
        fail(err, cap, "%s is not JSON: %s at offset %d", what, e.text, e.position);
    return v;
}

/* The properties object's fields a consumer depends on; 0 or -1 (err). */
static int check_properties(const json_t *p, int *kombu_priority, char *err, size_t cap)
{
    *kombu_priority = 0;
    if (!p)
        return 0;
    if (!json_is_object(p))
        return fail(err, cap, "properties is not an object");
    const json_t *pr = field(p, "priority");
    if (pr && !json_is_integer(pr))
        return fail(err, cap, "properties.priority is not an integer");
    json_int_t kp = pr ? json_integer_value(pr) : 0;
    *kombu_priority = kp < 0 ? 0 : kp > 9 ? 9 : (int)kp;
    const json_t *enc = field(p, "body_encoding");
    if (enc && !(json_is_string(enc) && !strcmp(json_string_value(enc), "base64")))
        return fail(err, cap, "properties.body_encoding is not \"base64\"");
    return 0;
}

static int check_envelope(const json_t *m, gp_celery_decoded_t *out, char *err, size_t cap)
{
    if (!json_is_object(m))
        return fail(err, cap, "message is not a JSON object");
    const json_t *h = json_object_get(m, "headers");
    if (!json_is_object(h))
        return fail(err, cap, "headers is not an object");
    out->id = bounded_string(json_object_get(h, "id"), GP_CELERY_MAX_NAME);
    if (!out->id)
        return fail(err, cap, "headers.id is not a string of 1..%d bytes", GP_CELERY_MAX_NAME);
    const json_t *task = field(h, "task");
    out->task = bounded_string(task, GP_CELERY_MAX_NAME);
    if (task && !out->task)
        return fail(err, cap, "headers.task is not a string of 1..%d bytes", GP_CELERY_MAX_NAME);
    const json_t *ct = field(m, "content-type");
    if (ct && !(json_is_string(ct) && !strcmp(json_string_value(ct), "application/json")))
        return fail(err, cap, "content-type is not application/json");
    const json_t *body = field(m, "body");
    if (body && !json_is_string(body))
        return fail(err, cap, "body is not a string");
    out->headers = h;
    return check_properties(field(m, "properties"), &out->kombu_priority, err, cap);
}

int gp_celery_decode_task(const char *msg, size_t len, gp_celery_decoded_t *out, char *err,
                          size_t cap)
{
    memset(out, 0, sizeof *out);
    json_t *m = load(msg, len, "message", err, cap);
    if (!m)
        return -1;
    if (check_envelope(m, out, err, cap) != 0) {
        json_decref(m);
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->root = m;
    return 0;
}

void gp_celery_decoded_clear(gp_celery_decoded_t *d)
{
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

/* The body's bytes (base64-decoded when properties say so); malloc'd, NULL with err. */
static char *body_bytes(const gp_celery_decoded_t *d, size_t *n, char *err, size_t cap)
{
    const json_t *body = field(d->root, "body");
    if (!body) {
        fail(err, cap, "message has no body");
        return NULL;
    }
    const char *text = json_string_value(body);
    size_t len = json_string_length(body);
    if (field(json_object_get(d->root, "properties"), "body_encoding")) {
        char *raw = (char *)gp_base64_decode(text, len, n);
        if (!raw)
            fail(err, cap, "body is not base64 (or out of memory)");
        return raw;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        fail(err, cap, "out of memory");
        return NULL;
    }
    memcpy(copy, text, len + 1);
    *n = len;
    return copy;
}

json_t *gp_celery_decode_kwargs(const gp_celery_decoded_t *d, char *err, size_t cap)
{
    size_t n = 0;
    char *raw = body_bytes(d, &n, err, cap);
    json_t *body = raw ? load(raw, n, "body", err, cap) : NULL;
    free(raw);
    if (!body)
        return NULL;
    json_t *kwargs = json_array_get(body, 1);
    const json_t *embed = json_array_get(body, 2);
    if (!json_is_array(body) || json_array_size(body) != 3 ||
        !json_is_array(json_array_get(body, 0)) || !json_is_object(kwargs) ||
        !(json_is_object(embed) || json_is_null(embed))) {
        fail(err, cap, "body is not [args, kwargs, embed]");
        kwargs = NULL;
    }
    json_incref(kwargs);
    json_decref(body);
    return kwargs;
}

/* o[key] as an object, created (and attached) when absent or of another type. */
static json_t *object_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_object(v))
        return v;
    v = json_object();
    return v && json_object_set_new(o, key, v) == 0 ? v : NULL;
}

/* Marks the message redelivered, as kombu's restore does. false on OOM. */
static bool mark_redelivered(json_t *m)
{
    json_t *h = object_at(m, "headers"), *p = object_at(m, "properties");
    json_t *di = p ? object_at(p, "delivery_info") : NULL;
    return h && di && put(h, "redelivered", json_true()) && put(di, "redelivered", json_true());
}

int gp_celery_redeliver(const char *entry, size_t len, const char *queue, char **msg_out,
                        int *kombu_priority, char *err, size_t cap)
{
    json_t *arr = load(entry, len, "unacked entry", err, cap);
    if (!arr)
        return -1;
    json_t *m = json_array_get(arr, 0);
    const char *rk = json_string_value(json_array_get(arr, 2));
    int kp = 0, rc = 0;
    if (!json_is_array(arr) || json_array_size(arr) != 3 || !json_is_object(m) ||
        !json_is_string(json_array_get(arr, 1)) || !rk)
        rc = fail(err, cap, "unacked entry is not [message, exchange, routing_key]");
    else if (strcmp(rk, queue) != 0)
        rc = 1; /* another kombu queue's delivery: its own consumers restore it */
    else if (check_properties(field(m, "properties"), &kp, err, cap) != 0)
        rc = -1;
    else if (!mark_redelivered(m))
        rc = fail(err, cap, "out of memory");
    char *text = rc == 0 ? json_dumps(m, JSON_PRESERVE_ORDER) : NULL;
    json_decref(arr);
    if (rc == 0 && !text)
        return fail(err, cap, "out of memory");
    if (rc == 0) {
        *msg_out = text;
        *kombu_priority = kp;
    }
    return rc;
}

int gp_celery_decode_meta(const char *text, size_t len, gp_celery_meta_t *out, char *err,
                          size_t cap)
{
    memset(out, 0, sizeof *out);
    json_t *m = load(text, len, "result meta", err, cap);
    if (!m)
        return -1;
    const char *state = bounded_string(json_object_get(m, "status"), GP_CELERY_MAX_NAME);
    if (!json_is_object(m) || !state) {
        json_decref(m);
        return fail(err, cap, "result meta is not an object with a status string");
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

void gp_celery_meta_clear(gp_celery_meta_t *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

/* ---- envelopes, Python reprs, control messages --------------------------------------------- */

char *gp_celery_encode_envelope(const json_t *body, json_t *headers, const char *exchange,
                                const char *routing_key, const char *delivery_tag)
{
    char *text = json_dumps(body, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    char *b64 = text ? gp_base64_encode_or_null(text, strlen(text)) : NULL;
    free(text);
    json_t *msg = json_object(), *props = json_object();
    bool ok = b64 && msg && props && put(msg, "body", json_string(b64)) &&
              put(msg, "content-encoding", json_string("utf-8")) &&
              put(msg, "content-type", json_string("application/json")) &&
              put(msg, "headers", headers ? headers : json_object()) &&
              put(props, "delivery_mode", json_integer(1)) &&
              put(props, "delivery_info",
                  json_pack("{s:s, s:s}", "exchange", exchange, "routing_key", routing_key)) &&
              put(props, "priority", json_integer(0)) &&
              put(props, "body_encoding", json_string("base64")) &&
              put(props, "delivery_tag", json_string(delivery_tag));
    headers = NULL; /* stolen by put() (or dropped with msg) */
    if (ok) {
        ok = put(msg, "properties", props);
        props = NULL;
    }
    free(b64);
    char *out = ok ? json_dumps(msg, JSON_PRESERVE_ORDER) : NULL;
    json_decref(props);
    json_decref(msg);
    return out;
}

typedef struct repr_buf {
    char *s;
    size_t len, cap, max;
    bool cut, oom;
} repr_buf_t;

static void rb_add(repr_buf_t *b, const char *s, size_t n)
{
    if (b->cut || b->oom)
        return;
    if (b->len + n > b->max) {
        n = b->max - b->len;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* not inside a UTF-8 sequence: the repr stays valid text */
        b->cut = true;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void rb_str(repr_buf_t *b, const char *s)
{
    rb_add(b, s, strlen(s));
}

/* Python's str repr: single quotes unless the text has ' and no ". */
static void repr_string(repr_buf_t *b, const char *s, size_t n)
{
    char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
    rb_add(b, &q, 1);
    for (size_t i = 0; i < n && !b->cut; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '\\' || c == (unsigned char)q)
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (c == '\r')
            snprintf(esc, sizeof esc, "\\r");
        else if (c == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else if (c < 0x20 || c == 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", c);
        else {
            rb_add(b, (const char *)&s[i], 1);
            continue;
        }
        rb_str(b, esc);
    }
    rb_add(b, &q, 1);
}

static void repr_value(repr_buf_t *b, const json_t *v, int depth)
{
    char num[64];
    if (depth > 32) {
        rb_str(b, "...");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        rb_str(b, "{");
        const char *k;
        const json_t *x;
        bool first = true;
        json_object_foreach ((json_t *)v, k, x) {
            if (!first)
                rb_str(b, ", ");
            first = false;
            repr_string(b, k, strlen(k));
            rb_str(b, ": ");
            repr_value(b, x, depth + 1);
        }
        rb_str(b, "}");
        break;
    }
    case JSON_ARRAY:
        rb_str(b, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                rb_str(b, ", ");
            repr_value(b, json_array_get(v, i), depth + 1);
        }
        rb_str(b, "]");
        break;
    case JSON_STRING: repr_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        rb_str(b, num);
        break;
    case JSON_REAL: {
        char *t = json_dumps(v, JSON_ENCODE_ANY); /* shortest round trip, as Python's repr */
        rb_str(b, t ? t : "0.0");
        free(t);
        break;
    }
    case JSON_TRUE: rb_str(b, "True"); break;
    case JSON_FALSE: rb_str(b, "False"); break;
    default: rb_str(b, "None");
    }
}

char *gp_celery_pyrepr(const json_t *v, size_t max)
{
    repr_buf_t b = {.max = max > 3 ? max - 3 : 0};
    rb_add(&b, "", 0);
    if (v)
        repr_value(&b, v, 0);
    else
        rb_str(&b, "None");
    if (b.cut) {
        b.cut = false;
        b.max += 3;
        rb_str(&b, "...");
    }
    if (b.oom || !b.s) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* A bounded string of printable bytes (no control characters), else NULL. */
static const char *clean_string(const json_t *v, size_t max)
{
    const char *s = bounded_string(v, max);
    for (const char *p = s; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return NULL;
    return s;
}

static bool method_name(const char *s)
{
    for (; s && *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return false;
    return s != NULL;
}

/* The body's fields (d->root is the body object). 0 or -1 (err). */
static int check_control_body(gp_celery_control_t *d, char *err, size_t cap)
{
    const json_t *b = d->root;
    if (!json_is_object(b))
        return fail(err, cap, "control body is not an object");
    d->method = bounded_string(json_object_get(b, "method"), GP_CELERY_MAX_METHOD);
    if (!d->method || !method_name(d->method))
        return fail(err, cap, "method is not a name of 1..%d bytes [a-z_]", GP_CELERY_MAX_METHOD);
    const json_t *args = field(b, "arguments");
    if (args && !json_is_object(args))
        return fail(err, cap, "arguments is not an object");
    d->arguments = args;
    const json_t *dest = field(b, "destination");
    if (dest && !json_is_array(dest))
        return fail(err, cap, "destination is not a list");
    for (size_t i = 0; dest && i < json_array_size(dest); i++)
        if (!clean_string(json_array_get(dest, i), GP_CELERY_MAX_NAME))
            return fail(err, cap, "destination[%zu] is not a node name", i);
    d->destination = dest;
    const json_t *pat = field(b, "pattern"), *matcher = field(b, "matcher");
    d->pattern = pat ? clean_string(pat, GP_CELERY_MAX_NAME) : NULL;
    if (pat && !d->pattern)
        return fail(err, cap, "pattern is not a bounded string");
    if (matcher && !clean_string(matcher, 16))
        return fail(err, cap, "matcher is not a bounded string");
    d->pattern_pcre = matcher && !strcmp(json_string_value(matcher), "pcre");
    const json_t *ticket = field(b, "ticket"), *rt = field(b, "reply_to");
    if (ticket && !(d->ticket = clean_string(ticket, GP_CELERY_MAX_NAME)))
        return fail(err, cap, "ticket is not a bounded string");
    if (rt) {
        d->reply_exchange = json_is_object(rt)
                                ? clean_string(json_object_get(rt, "exchange"), GP_CELERY_MAX_NAME)
                                : NULL;
        d->reply_routing_key = json_is_object(rt) ? clean_string(json_object_get(rt, "routing_key"),
                                                                 GP_CELERY_MAX_NAME)
                                                  : NULL;
        if (!d->reply_exchange || !d->reply_routing_key)
            return fail(err, cap, "reply_to is not {exchange, routing_key} strings");
    }
    if (!d->reply_exchange)
        d->ticket = NULL; /* nowhere to reply */
    return 0;
}

/* headers.clock and headers.expires. 0 or -1 (err). */
static int check_control_headers(const json_t *h, gp_celery_control_t *d, char *err, size_t cap)
{
    if (!h)
        return 0;
    if (!json_is_object(h))
        return fail(err, cap, "headers is not an object");
    const json_t *clock = field(h, "clock"), *exp = field(h, "expires");
    if (clock && !json_is_integer(clock))
        return fail(err, cap, "headers.clock is not an integer");
    if (exp && !json_is_number(exp))
        return fail(err, cap, "headers.expires is not a number");
    json_int_t c = clock ? json_integer_value(clock) : 0;
    d->clock = c < 0 ? 0 : (long long)c;
    d->expires = exp ? json_number_value(exp) : 0;
    return 0;
}

int gp_celery_decode_control(const char *msg, size_t len, gp_celery_control_t *out, char *err,
                             size_t cap)
{
    memset(out, 0, sizeof *out);
    if (len > GP_CELERY_MAX_CONTROL)
        return fail(err, cap, "control message larger than %u bytes", GP_CELERY_MAX_CONTROL);
    json_t *m = load(msg, len, "control message", err, cap);
    if (!m)
        return -1;
    gp_celery_decoded_t env = {.root = m};
    int rc = 0;
    const json_t *body = field(m, "body");
    const json_t *ct = field(m, "content-type");
    int kp;
    if (!json_is_object(m))
        rc = fail(err, cap, "control message is not a JSON object");
    else if (!json_is_string(body))
        rc = fail(err, cap, "body is not a string");
    else if (!ct || !json_is_string(ct) || strcmp(json_string_value(ct), "application/json"))
        rc = fail(err, cap, "content-type is not application/json");
    else if (check_properties(field(m, "properties"), &kp, err, cap) != 0 ||
             check_control_headers(field(m, "headers"), out, err, cap) != 0)
        rc = -1;
    size_t n = 0;
    char *raw = rc == 0 ? body_bytes(&env, &n, err, cap) : NULL;
    if (rc == 0 && !raw)
        rc = -1;
    json_t *b = raw ? load(raw, n, "control body", err, cap) : NULL;
    free(raw);
    json_decref(m);
    long long clock = out->clock;
    double expires = out->expires;
    memset(out, 0, sizeof *out);
    if (rc == 0 && !b)
        rc = -1;
    if (rc == 0) {
        out->root = b;
        out->clock = clock;
        out->expires = expires;
        rc = check_control_body(out, err, cap);
    }
    if (rc != 0) {
        json_decref(b);
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

bool gp_celery_control_for(const gp_celery_control_t *c, const char *node)
{
    if (c->destination && json_array_size(c->destination) > 0) {
        for (size_t i = 0; i < json_array_size(c->destination); i++)
            if (!strcmp(json_string_value(json_array_get(c->destination, i)), node))
                return true;
        return false;
    }
    if (c->pattern)
        return !c->pattern_pcre && fnmatch(c->pattern, node, 0) == 0;
    return true;
}

void gp_celery_control_clear(gp_celery_control_t *c)
{
    json_decref(c->root);
    memset(c, 0, sizeof *c);
}
