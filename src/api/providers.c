/*
 * providers.c — GET /v1/providers and /v1/providers/{name}: what each provider compiled into
 * this binary offers, for front ends that render a form per provider (seed 001's
 * /meta/schemas/{provider}): its task types with the params JSON Schema of each (the same
 * schema as /v1/task-types and /openapi.json), the settings it reads (names, kinds, bounds,
 * whether configured — never a value), its price and its limits.
 *
 * Built per request from the read-only registry and settings: no store, no lock.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [GP_SETTING_STRING] = "string", [GP_SETTING_SECRET] = "secret",
    [GP_SETTING_URL] = "url",       [GP_SETTING_INT] = "integer",
    [GP_SETTING_BOOL] = "boolean",  [GP_SETTING_DURATION_MS] = "duration_ms",
    [GP_SETTING_NUMBER] = "number",
};

static bool numeric(gp_setting_kind_t k)
{
    return k == GP_SETTING_INT || k == GP_SETTING_DURATION_MS || k == GP_SETTING_NUMBER;
}

/* {name, kind, description, flag, env, secret, configured, has_default[, minimum, maximum]}:
 * a value is never shown, only whether it has one (given or by default). */
static json_t *setting_json(const gp_settings_t *s, const gp_provider_t *p,
                            const gp_provider_setting_t *ps)
{
    char env[160];
    int n = snprintf(env, sizeof env, "GENPULSE_%s_%s", p->name, ps->name);
    for (int i = 0; i < n && i < (int)sizeof env; i++)
        env[i] = env[i] == '-' ? '_' : (char)toupper((unsigned char)env[i]);
    char *flag = gp_xasprintf("--%s-%s", p->name, ps->name);
    const char *value = gp_settings_provider(s, p->name, ps->name);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "name", ps->name, "kind",
                  kind_names[ps->kind], "description", ps->doc ? ps->doc : "", "flag", flag, "env",
                  env, "secret", ps->kind == GP_SETTING_SECRET, "configured", value[0] != '\0');
    free(flag);
    json_object_set_new(o, "has_default", json_boolean(ps->default_value[0] != '\0'));
    if (numeric(ps->kind)) {
        json_object_set_new(o, "minimum", json_real(ps->min));
        json_object_set_new(o, "maximum", json_real(ps->max));
    }
    return o;
}

/* The limits the core enforces from the provider's settings: concurrency and requests per
 * minute (0 = unlimited) and its timeouts in ms. Numbers, never secrets. */
static json_t *limits_json(const gp_settings_t *s, const gp_provider_t *p)
{
    json_t *o = json_object(), *timeouts = json_object();
    for (const gp_provider_setting_t *ps = p->settings; ps && ps->name; ps++) {
        gp_setting_value_t v = gp_settings_provider_value(s, p->name, ps->name);
        if (!strcmp(ps->name, "concurrency") && ps->kind == GP_SETTING_INT)
            json_object_set_new(o, "concurrency", json_integer(v.i));
        else if (!strcmp(ps->name, "rate-per-minute") && ps->kind == GP_SETTING_INT)
            json_object_set_new(o, "requests_per_minute", json_integer(v.i));
        else if (ps->kind == GP_SETTING_DURATION_MS)
            json_object_set_new(timeouts, ps->name, json_integer(v.i));
    }
    json_object_set_new(o, "timeouts_ms", timeouts);
    json_object_set_new(o, "max_string_length", json_integer(GP_PARAM_DEFAULT_MAX_LENGTH));
    return o;
}

static json_t *provider_json(const gp_settings_t *s, const gp_provider_t *p)
{
    json_t *types = json_array();
    for (const char *const *tn = p->task_types; tn && *tn; tn++) {
        const gp_task_type_t *t = gp_registry_task_type(*tn);
        if (!t)
            continue;
        json_array_append_new(
            types, json_pack("{s:s, s:s, s:b, s:o}", "name", t->name, "description",
                             t->description ? t->description : "", "default",
                             t->default_provider && !strcmp(t->default_provider, p->name),
                             "params_schema", gp_params_schema(t, p)));
    }
    json_t *settings = json_array();
    for (const gp_provider_setting_t *ps = p->settings; ps && ps->name; ps++)
        json_array_append_new(settings, setting_json(s, p, ps));
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", p->name, "description",
                     p->description ? p->description : "", "task_types", types, "price",
                     gp_price_json(p), "settings", settings, "limits", limits_json(s, p));
}

static enum MHD_Result list_providers(request_t *r)
{
    json_t *data = json_array();
    const gp_provider_t *p;
    for (size_t i = 0; (p = gp_registry_provider_at(i)); i++)
        json_array_append_new(data, provider_json(r->http->rt->settings, p));
    return gp_send_json(r->conn, 200, json_pack("{s:o}", "data", data), NULL, NULL);
}

static enum MHD_Result get_provider(request_t *r)
{
    const gp_provider_t *p = gp_registry_provider_named(r->path_params[0]);
    if (!p)
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no provider with this name", NULL);
    return gp_send_json(r->conn, 200, provider_json(r->http->rt->settings, p), NULL, NULL);
}

const gp_route_t gp_routes_providers[] = {
    {"GET", "/v1/providers", GP_BODY_NONE, "tasks:read", list_providers, NULL},
    {"GET", "/v1/providers/{}", GP_BODY_NONE, "tasks:read", get_provider, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
