/*
 * registry.c — task types and providers, and validation driven by their param declarations.
 *
 * DESIGN: one gp_param_spec_t table per task type and per provider is the only description of
 * a parameter. validate_param() enforces it, param_schema() turns it into JSON Schema, and the
 * 422 messages below are worded from it, so the three can never disagree.
 */
#include "core/registry.h"
#include "core/task.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TYPES 128
#define MAX_PROVIDERS 256

static const gp_task_type_t *g_types[MAX_TYPES + 1];
static const gp_provider_t *g_providers[MAX_PROVIDERS + 1];
static size_t g_n_types, g_n_providers;

static bool valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

static bool serves(const gp_provider_t *p, const char *type_name)
{
    for (const char *const *t = p->task_types; t && *t; t++)
        if (!strcmp(*t, type_name))
            return true;
    return false;
}

static size_t utf8_length(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Bytes of s to keep so that at most max bytes remain and no UTF-8 sequence is cut. */
static int utf8_clip(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

static void fmt_num(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%g", v);
}

/* NULL when ok, else a message (static or written into buf). *normalized may replace value. */
/* Media references: an uploaded asset id (a UUID) or a URL the worker can fetch. */
static const char *check_format(gp_param_format_t format, const char *v)
{
    bool url = !strncasecmp(v, "http://", 7) || !strncasecmp(v, "https://", 8);
    if (format == GP_FMT_URL && !url)
        return "must be an http:// or https:// URL";
    if (format == GP_FMT_MEDIA_REF && !url && strncasecmp(v, "data:", 5) != 0 && !gp_is_uuid(v))
        return "must be an asset id (from POST /v1/assets) or an http(s):// or data: URL";
    return NULL;
}

static const char *check_value(const gp_param_spec_t *sp, const json_t *v, json_t **normalized,
                               char *buf, size_t cap)
{
    *normalized = NULL;
    switch (sp->type) {
    case GP_PARAM_STRING: {
        if (!json_is_string(v))
            return "must be a string";
        size_t len = utf8_length(json_string_value(v), json_string_length(v));
        size_t max = sp->max_length ? sp->max_length : GP_PARAM_DEFAULT_MAX_LENGTH;
        if (memchr(json_string_value(v), '\0', json_string_length(v)))
            return "must not contain NUL characters";
        if (len < sp->min_length || len > max) {
            if (sp->min_length > 0)
                snprintf(buf, cap, "must be %zu to %zu characters long (got %zu)", sp->min_length,
                         max, len);
            else
                snprintf(buf, cap, "must be at most %zu characters long (got %zu)", max, len);
            return buf;
        }
        if (sp->choices) {
            for (const char *const *c = sp->choices; *c; c++)
                if (!strcmp(*c, json_string_value(v)))
                    return NULL;
            size_t o = (size_t)snprintf(buf, cap, "must be one of:");
            for (const char *const *c = sp->choices; *c && o < cap; c++)
                o += (size_t)snprintf(buf + o, cap - o, "%s %s", c == sp->choices ? "" : ",", *c);
            return buf;
        }
        return check_format(sp->format, json_string_value(v));
    }
    case GP_PARAM_INTEGER:
    case GP_PARAM_NUMBER: {
        double d;
        if (json_is_integer(v)) {
            d = (double)json_integer_value(v);
        } else if (json_is_real(v)) {
            d = json_real_value(v);
            if (sp->type == GP_PARAM_INTEGER) {
                if (d != floor(d) || fabs(d) > 9007199254740992.0)
                    return "must be an integer";
                *normalized = json_integer((json_int_t)d);
            }
        } else {
            return sp->type == GP_PARAM_INTEGER ? "must be an integer" : "must be a number";
        }
        if ((sp->has_minimum && d < sp->minimum) || (sp->has_maximum && d > sp->maximum)) {
            char lo[32] = "", hi[32] = "";
            fmt_num(sp->minimum, lo, sizeof lo);
            fmt_num(sp->maximum, hi, sizeof hi);
            const char *what = sp->type == GP_PARAM_INTEGER ? "an integer" : "a number";
            if (sp->has_minimum && sp->has_maximum)
                snprintf(buf, cap, "must be %s from %s to %s", what, lo, hi);
            else if (sp->has_minimum)
                snprintf(buf, cap, "must be %s of at least %s", what, lo);
            else
                snprintf(buf, cap, "must be %s of at most %s", what, hi);
            if (*normalized) {
                json_decref(*normalized);
                *normalized = NULL;
            }
            return buf;
        }
        return NULL;
    }
    case GP_PARAM_BOOLEAN: return json_is_boolean(v) ? NULL : "must be a boolean";
    case GP_PARAM_OBJECT: return json_is_object(v) ? NULL : "must be an object";
    }
    return "has an unknown type";
}

static int check_spec_table(const char *owner, const gp_param_spec_t *specs, char *err, size_t cap)
{
    for (const gp_param_spec_t *sp = specs; sp && sp->name; sp++) {
        if (!valid_name(sp->name) || !strcmp(sp->name, "provider")) {
            snprintf(err, cap, "%s: bad parameter name \"%s\"", owner, sp->name);
            return -1;
        }
        for (const gp_param_spec_t *q = specs; q != sp; q++)
            if (!strcmp(q->name, sp->name)) {
                snprintf(err, cap, "%s: parameter \"%s\" declared twice", owner, sp->name);
                return -1;
            }
        if (sp->default_json) {
            json_error_t jerr;
            json_t *d = json_loads(sp->default_json, JSON_DECODE_ANY, &jerr);
            char buf[256];
            json_t *norm = NULL;
            const char *msg = d ? check_value(sp, d, &norm, buf, sizeof buf) : jerr.text;
            json_decref(norm);
            json_decref(d);
            if (msg) {
                snprintf(err, cap, "%s: default of \"%s\" %s", owner, sp->name, msg);
                return -1;
            }
        }
    }
    return 0;
}

int gp_registry_init_from(const gp_task_type_t *const *types, const gp_provider_t *const *providers,
                          char *err, size_t cap)
{
    g_n_types = g_n_providers = 0;
    for (size_t i = 0; types[i]; i++) {
        const gp_task_type_t *t = types[i];
        if (g_n_types >= MAX_TYPES || !valid_name(t->name)) {
            snprintf(err, cap, "task type \"%s\": bad name or too many types", t->name);
            return -1;
        }
        for (size_t k = 0; k < g_n_types; k++)
            if (!strcmp(g_types[k]->name, t->name)) {
                snprintf(err, cap, "task type \"%s\" is defined twice", t->name);
                return -1;
            }
        if (check_spec_table(t->name, t->params, err, cap) != 0)
            return -1;
        g_types[g_n_types++] = t;
    }
    for (size_t i = 0; providers[i]; i++) {
        const gp_provider_t *p = providers[i];
        if (g_n_providers >= MAX_PROVIDERS || !valid_name(p->name) || !p->run) {
            snprintf(err, cap, "provider \"%s\": bad name, no run() or too many", p->name);
            return -1;
        }
        for (size_t k = 0; k < g_n_providers; k++)
            if (!strcmp(g_providers[k]->name, p->name)) {
                snprintf(err, cap, "provider \"%s\" is defined twice", p->name);
                return -1;
            }
        if (!p->task_types || !p->task_types[0]) {
            snprintf(err, cap, "provider \"%s\" serves no task type", p->name);
            return -1;
        }
        for (const char *const *tn = p->task_types; *tn; tn++) {
            const gp_task_type_t *t = NULL;
            for (size_t k = 0; k < g_n_types; k++)
                if (!strcmp(g_types[k]->name, *tn))
                    t = g_types[k];
            if (!t) {
                snprintf(err, cap, "provider \"%s\" serves unknown task type \"%s\"", p->name, *tn);
                return -1;
            }
            for (const gp_param_spec_t *sp = p->params; sp && sp->name; sp++)
                for (const gp_param_spec_t *q = t->params; q && q->name; q++)
                    if (!strcmp(q->name, sp->name)) {
                        snprintf(err, cap, "provider \"%s\" redeclares \"%s\" of task type \"%s\"",
                                 p->name, sp->name, t->name);
                        return -1;
                    }
        }
        if (check_spec_table(p->name, p->params, err, cap) != 0)
            return -1;
        g_providers[g_n_providers++] = p;
    }
    for (size_t i = 0; i < g_n_types; i++) {
        const gp_task_type_t *t = g_types[i];
        if (t->default_provider && !gp_registry_provider(t, t->default_provider)) {
            snprintf(err, cap, "task type \"%s\": default provider \"%s\" does not serve it",
                     t->name, t->default_provider);
            return -1;
        }
    }
    g_types[g_n_types] = NULL;
    g_providers[g_n_providers] = NULL;
    return 0;
}

int gp_registry_init(char *err, size_t cap)
{
    return gp_registry_init_from(gp_generated_task_types, gp_generated_providers, err, cap);
}

const gp_task_type_t *gp_registry_task_type(const char *name)
{
    for (size_t i = 0; i < g_n_types; i++)
        if (!strcmp(g_types[i]->name, name))
            return g_types[i];
    return NULL;
}

const gp_provider_t *gp_registry_provider(const gp_task_type_t *type, const char *name)
{
    for (size_t i = 0; i < g_n_providers; i++)
        if (!strcmp(g_providers[i]->name, name))
            return serves(g_providers[i], type->name) ? g_providers[i] : NULL;
    return NULL;
}

static void add_detail(json_t *details, const char *field, const char *message)
{
    json_t *d = json_pack("{s:s, s:s}", "field", field, "message", message);
    if (!d) /* never drop a detail: a request with one must not pass */
        d = json_pack("{s:s, s:s}", "field", "?", "message", "invalid field");
    json_array_append_new(details, d);
}

static const gp_param_spec_t *find_spec(const gp_param_spec_t *specs, const char *name)
{
    for (const gp_param_spec_t *sp = specs; sp && sp->name; sp++)
        if (!strcmp(sp->name, name))
            return sp;
    return NULL;
}

static void validate_spec_list(const gp_param_spec_t *specs, const json_t *params, json_t *out,
                               json_t *details)
{
    char field[160], buf[512];
    for (const gp_param_spec_t *sp = specs; sp && sp->name; sp++) {
        json_t *v = json_object_get(params, sp->name);
        snprintf(field, sizeof field, "params.%s", sp->name);
        if (!v || json_is_null(v)) {
            if (sp->required)
                add_detail(details, field, "is required");
            else if (sp->default_json)
                json_object_set_new(out, sp->name,
                                    json_loads(sp->default_json, JSON_DECODE_ANY, NULL));
            continue;
        }
        json_t *norm = NULL;
        const char *msg = check_value(sp, v, &norm, buf, sizeof buf);
        if (msg)
            add_detail(details, field, msg);
        else
            json_object_set_new(out, sp->name, norm ? norm : json_deep_copy(v));
    }
}

static char *known_params(const gp_task_type_t *t, const gp_provider_t *p)
{
    size_t cap = 1024, o = 0;
    char *s = gp_xmalloc(cap);
    s[0] = '\0';
    const gp_param_spec_t *lists[2] = {t->params, p ? p->params : NULL};
    for (int l = 0; l < 2; l++)
        for (const gp_param_spec_t *sp = lists[l]; sp && sp->name; sp++)
            if (o + strlen(sp->name) + 3 < cap)
                o += (size_t)snprintf(s + o, cap - o, "%s%s", o ? ", " : "", sp->name);
    if (o + 12 < cap)
        snprintf(s + o, cap - o, "%sprovider", o ? ", " : "");
    return s;
}

/* Envelope fields other than the four known ones. */
static void check_envelope_keys(const json_t *body, json_t *details)
{
    char buf[512];
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)body, key, value) {
        if (strcmp(key, "task_type") && strcmp(key, "params") && strcmp(key, "priority") &&
            strcmp(key, "max_retries") && strcmp(key, "webhook") &&
            strcmp(key, "webhook_events_filter")) {
            snprintf(buf, sizeof buf, "%.*s", utf8_clip(key, 100), key);
            add_detail(details, buf,
                       "is not a known field (known: task_type, params, priority, max_retries, "
                       "webhook, webhook_events_filter)");
        }
    }
}

/* priority and max_retries: the same rules as integer params (1.0 is 1). */
static void read_envelope_ints(const json_t *body, int default_max_retries, gp_submission_t *out,
                               json_t *details)
{
    static const gp_param_spec_t priority_spec =
        GP_P_INT("priority", false, GP_PRIORITY_MIN, GP_PRIORITY_MAX, "0", NULL);
    static const gp_param_spec_t retries_spec =
        GP_P_INT("max_retries", false, 0, GP_MAX_RETRIES_MAX, NULL, NULL);
    const gp_param_spec_t *envelope[2] = {&priority_spec, &retries_spec};
    int *targets[2] = {&out->priority, &out->max_retries};
    char buf[512];
    out->priority = 0;
    out->max_retries = default_max_retries;
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(body, envelope[i]->name);
        if (!v || json_is_null(v))
            continue;
        json_t *norm = NULL;
        const char *msg = check_value(envelope[i], v, &norm, buf, sizeof buf);
        if (msg)
            add_detail(details, envelope[i]->name, msg);
        else
            *targets[i] = (int)json_integer_value(norm ? norm : v);
        json_decref(norm);
    }
}

/* webhook: an http(s) URL without credentials or spaces; webhook_events_filter: a list of
 * distinct event names (all four when absent). Where it may be delivered (no private
 * addresses) is checked at delivery, on the address it resolves to then. */
static void read_webhook(const json_t *body, gp_submission_t *out, json_t *details)
{
    json_t *url = json_object_get(body, "webhook");
    json_t *filter = json_object_get(body, "webhook_events_filter");
    out->webhook_events = GP_WEBHOOK_EV_ALL;
    if (url && !json_is_null(url)) {
        const char *v = json_is_string(url) ? json_string_value(url) : NULL;
        size_t n = v ? json_string_length(url) : 0;
        bool http = v && !strncasecmp(v, "http://", 7), https = v && !strncasecmp(v, "https://", 8);
        const char *host = v ? v + (https ? 8 : 7) : NULL;
        if (!v)
            add_detail(details, "webhook", "must be a string (an http:// or https:// URL)");
        else if (!http && !https)
            add_detail(details, "webhook", "must be an http:// or https:// URL");
        else if (n > GP_WEBHOOK_URL_MAX)
            add_detail(details, "webhook", "must be at most 2048 bytes long");
        else if (strlen(v) != n || strpbrk(v, " \t\r\n\"<>\\^`{|}"))
            add_detail(details, "webhook", "must not contain spaces, control or unsafe characters");
        else if (!*host || *host == '/' || *host == '?' || *host == '#')
            add_detail(details, "webhook", "must name a host");
        else if (memchr(host, '@', strcspn(host, "/?#")))
            add_detail(details, "webhook", "must not carry credentials (user@host)");
        else
            out->webhook = gp_xstrdup(v);
    }
    if (filter && !json_is_null(filter)) {
        if (!json_is_array(filter) || json_array_size(filter) == 0) {
            add_detail(details, "webhook_events_filter",
                       "must be a non-empty list of: start, output, logs, completed");
            return;
        }
        unsigned mask = 0;
        size_t i;
        json_t *ev;
        char field[64];
        json_array_foreach (filter, i, ev) {
            unsigned bit = json_is_string(ev) ? gp_webhook_event_parse(json_string_value(ev)) : 0;
            snprintf(field, sizeof field, "webhook_events_filter[%zu]", i);
            if (!bit)
                add_detail(details, field, "must be one of: start, output, logs, completed");
            else if (mask & bit)
                add_detail(details, field, "is listed twice");
            mask |= bit;
        }
        out->webhook_events = mask;
    }
}

/* The task type named by body.task_type, or NULL with a detail. */
static const gp_task_type_t *resolve_task_type(const json_t *body, json_t *details)
{
    json_t *tt = json_object_get(body, "task_type");
    const gp_task_type_t *type = NULL;
    char buf[512];
    if (!tt) {
        add_detail(details, "task_type", "is required");
    } else if (!json_is_string(tt)) {
        add_detail(details, "task_type", "must be a string");
    } else if (!(type = gp_registry_task_type(json_string_value(tt)))) {
        size_t o = (size_t)snprintf(buf, sizeof buf, "unknown task type; known:");
        for (size_t i = 0; i < g_n_types && o < sizeof buf; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s %s", i ? "," : "", g_types[i]->name);
        add_detail(details, "task_type", buf);
    }
    return type;
}

/* The provider named by params.provider (or the type's default) into *provider; returns the
 * name asked for (NULL when none could be read), details for what is wrong. */
static const char *resolve_provider(const gp_task_type_t *type, const json_t *params,
                                    const gp_provider_t **provider, json_t *details)
{
    json_t *pv = json_object_get(params, "provider");
    const char *pname = NULL;
    char buf[512];
    *provider = NULL;
    if (pv && !json_is_null(pv)) {
        if (!json_is_string(pv))
            add_detail(details, "params.provider", "must be a string");
        else
            pname = json_string_value(pv);
    } else if (!type->default_provider) {
        add_detail(details, "params.provider", "is required for this task type");
    } else {
        pname = type->default_provider;
    }
    if (pname && !(*provider = gp_registry_provider(type, pname))) {
        size_t o = (size_t)snprintf(buf, sizeof buf, "unknown provider for %s; known:", type->name);
        int k = 0;
        for (size_t i = 0; i < g_n_providers && o < sizeof buf; i++)
            if (serves(g_providers[i], type->name))
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%s %s", k++ ? "," : "",
                                      g_providers[i]->name);
        add_detail(details, "params.provider", buf);
    }
    return pname;
}

/* Params that neither the type nor the provider declares. */
static void reject_unknown_params(const gp_task_type_t *type, const gp_provider_t *provider,
                                  const char *pname, const json_t *params, json_t *details)
{
    char buf[512];
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)params, key, value) {
        if (!strcmp(key, "provider") || find_spec(type->params, key) ||
            (provider && find_spec(provider->params, key)))
            continue;
        if (!provider && pname)
            continue; /* unknown provider already reported; its params are unknowable */
        char *known = known_params(type, provider);
        char field[160];
        snprintf(field, sizeof field, "params.%.*s", utf8_clip(key, 100), key);
        snprintf(buf, sizeof buf, "is not a parameter of %s%s%s (known: %s)", type->name,
                 provider ? " with provider " : "", provider ? provider->name : "", known);
        free(known);
        add_detail(details, field, buf);
    }
}

/* Validates params against the type's and the provider's specs; the normalized params
 * (defaults filled in, provider named) are returned, new reference. */
static json_t *validate_params(const gp_task_type_t *type, const json_t *params,
                               const gp_provider_t **provider, json_t *details)
{
    const char *pname = resolve_provider(type, params, provider, details);
    json_t *normalized = json_object();
    validate_spec_list(type->params, params, normalized, details);
    if (*provider)
        validate_spec_list((*provider)->params, params, normalized, details);
    reject_unknown_params(type, *provider, pname, params, details);
    if (*provider)
        json_object_set_new(normalized, "provider", json_string((*provider)->name));
    return normalized;
}

int gp_validate_submission(const json_t *body, int default_max_retries, gp_submission_t *out,
                           json_t **details_out)
{
    memset(out, 0, sizeof *out);
    json_t *details = json_array();
    if (!json_is_object(body)) {
        add_detail(details, "", "the body must be a JSON object");
        *details_out = details;
        return -1;
    }
    check_envelope_keys(body, details);
    read_envelope_ints(body, default_max_retries, out, details);
    read_webhook(body, out, details);
    json_t *params = json_object_get(body, "params");
    if (params && !json_is_null(params) && !json_is_object(params)) {
        add_detail(details, "params", "must be an object");
        params = NULL;
    }
    json_t *empty = NULL;
    if (!params || json_is_null(params))
        params = empty = json_object();
    const gp_task_type_t *type = resolve_task_type(body, details);
    const gp_provider_t *provider = NULL;
    if (type)
        out->params = validate_params(type, params, &provider, details);
    json_decref(empty);
    if (json_array_size(details) > 0) {
        json_decref(out->params);
        out->params = NULL;
        free(out->webhook);
        out->webhook = NULL;
        *details_out = details;
        return -1;
    }
    json_decref(details);
    out->task_type = type;
    out->provider = provider;
    *details_out = NULL;
    return 0;
}

void gp_submission_clear(gp_submission_t *s)
{
    json_decref(s->params);
    free(s->webhook);
    memset(s, 0, sizeof *s);
}

static json_t *param_schema(const gp_param_spec_t *sp)
{
    static const char *const patterns[] = {
        [GP_FMT_URL] = "^https?://",
        [GP_FMT_MEDIA_REF] = "^(https?://|data:|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                             "[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)",
    };
    json_t *o = json_object();
    static const char *const json_types[] = {"",       "string",  "integer",
                                             "number", "boolean", "object"};
    json_object_set_new(o, "type", json_string(json_types[sp->type]));
    if (sp->description)
        json_object_set_new(o, "description", json_string(sp->description));
    if (sp->type == GP_PARAM_STRING) {
        if (sp->min_length)
            json_object_set_new(o, "minLength", json_integer((json_int_t)sp->min_length));
        json_object_set_new(
            o, "maxLength",
            json_integer(
                (json_int_t)(sp->max_length ? sp->max_length : GP_PARAM_DEFAULT_MAX_LENGTH)));
        if (sp->format == GP_FMT_URL || sp->format == GP_FMT_MEDIA_REF)
            json_object_set_new(o, "pattern", json_string(patterns[sp->format]));
        if (sp->choices) {
            json_t *e = json_array();
            for (const char *const *c = sp->choices; *c; c++)
                json_array_append_new(e, json_string(*c));
            json_object_set_new(o, "enum", e);
        }
    }
    if (sp->type == GP_PARAM_INTEGER || sp->type == GP_PARAM_NUMBER) {
        bool integer = sp->type == GP_PARAM_INTEGER;
        if (sp->has_minimum)
            json_object_set_new(o, "minimum",
                                integer ? json_integer((json_int_t)sp->minimum)
                                        : json_real(sp->minimum));
        if (sp->has_maximum)
            json_object_set_new(o, "maximum",
                                integer ? json_integer((json_int_t)sp->maximum)
                                        : json_real(sp->maximum));
    }
    if (sp->default_json)
        json_object_set_new(o, "default", json_loads(sp->default_json, JSON_DECODE_ANY, NULL));
    if (sp->example_json)
        json_object_set_new(o, "examples",
                            json_pack("[o]", json_loads(sp->example_json, JSON_DECODE_ANY, NULL)));
    return o;
}

json_t *gp_params_schema(const gp_task_type_t *type, const gp_provider_t *provider)
{
    json_t *props = json_object(), *required = json_array();
    const gp_param_spec_t *lists[2] = {type->params, provider->params};
    for (int l = 0; l < 2; l++)
        for (const gp_param_spec_t *sp = lists[l]; sp && sp->name; sp++) {
            json_object_set_new(props, sp->name, param_schema(sp));
            if (sp->required)
                json_array_append_new(required, json_string(sp->name));
        }
    json_t *prov = json_pack("{s:s, s:s, s:s}", "type", "string", "const", provider->name,
                             "description", "Which provider runs the task.");
    if (type->default_provider && !strcmp(type->default_provider, provider->name))
        json_object_set_new(prov, "default", json_string(provider->name));
    else
        json_array_append_new(required, json_string("provider"));
    json_object_set_new(props, "provider", prov);
    char *title = gp_xasprintf("%s / %s", type->name, provider->name);
    json_t *schema =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:b}", "$schema",
                  "https://json-schema.org/draft/2020-12/schema", "title", title, "type", "object",
                  "properties", props, "required", required, "additionalProperties", 0);
    free(title);
    return schema;
}

const gp_task_type_t *gp_registry_task_type_at(size_t i)
{
    return i < g_n_types ? g_types[i] : NULL;
}

const gp_provider_t *gp_registry_provider_at(size_t i)
{
    return i < g_n_providers ? g_providers[i] : NULL;
}

const gp_provider_t *gp_registry_provider_named(const char *name)
{
    for (size_t i = 0; i < g_n_providers; i++)
        if (!strcmp(g_providers[i]->name, name))
            return g_providers[i];
    return NULL;
}

bool gp_registry_serves(const gp_provider_t *p, const char *type_name)
{
    return serves(p, type_name);
}

static double param_number(const json_t *params, const char *name, double fallback)
{
    const json_t *v = name ? json_object_get(params, name) : NULL;
    return json_is_number(v) ? json_number_value(v) : fallback;
}

int64_t gp_price_of(const gp_provider_t *p, const json_t *params)
{
    const gp_price_t *pr = &p->price;
    if (pr->unit == GP_PRICE_FREE || pr->credits <= 0)
        return 0;
    double units = 1;
    if (pr->unit == GP_PRICE_PER_MEGAPIXEL)
        units = param_number(params, "width", 1000) * param_number(params, "height", 1000) / 1e6;
    else if (pr->unit == GP_PRICE_PER_SECOND)
        units = param_number(params, pr->quantity_param ? pr->quantity_param : "duration", 1);
    units *= param_number(params, pr->count_param, 1);
    double cost = ceil(units * (double)pr->credits);
    if (cost < 1)
        cost = 1;
    return cost > 1e15 ? (int64_t)1e15 : (int64_t)cost;
}

json_t *gp_price_json(const gp_provider_t *p)
{
    static const char *const units[] = {"free", "task", "megapixel", "second"};
    const gp_price_t *pr = &p->price;
    json_t *o =
        json_pack("{s:s, s:I}", "unit", units[pr->unit <= GP_PRICE_PER_SECOND ? pr->unit : 0],
                  "credits", (json_int_t)(pr->unit ? pr->credits : 0));
    if (pr->unit == GP_PRICE_PER_SECOND)
        json_object_set_new(o, "per_param",
                            json_string(pr->quantity_param ? pr->quantity_param : "duration"));
    if (pr->count_param)
        json_object_set_new(o, "times_param", json_string(pr->count_param));
    return o;
}

json_t *gp_registry_describe(void)
{
    json_t *data = json_array();
    for (size_t i = 0; i < g_n_types; i++) {
        const gp_task_type_t *t = g_types[i];
        json_t *providers = json_array();
        for (size_t k = 0; k < g_n_providers; k++) {
            const gp_provider_t *p = g_providers[k];
            if (!serves(p, t->name))
                continue;
            json_array_append_new(providers,
                                  json_pack("{s:s, s:s, s:o, s:o}", "name", p->name, "description",
                                            p->description ? p->description : "", "params_schema",
                                            gp_params_schema(t, p), "price", gp_price_json(p)));
        }
        json_t *entry = json_pack("{s:s, s:s, s:o}", "name", t->name, "description",
                                  t->description ? t->description : "", "providers", providers);
        json_object_set_new(entry, "default_provider",
                            t->default_provider ? json_string(t->default_provider) : json_null());
        json_array_append_new(data, entry);
    }
    return json_pack("{s:o}", "data", data);
}
