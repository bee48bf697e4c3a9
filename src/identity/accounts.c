/* accounts.c — users and API keys, created and shown the same way everywhere (accounts.h). */
#include "identity/accounts.h"
#include "core/errors.h"
#include "core/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMAIL_MAX 254
#define NAME_MAX_LEN 200
#define PLAN_MAX 31

static int invalid(gp_account_error_t *e, const char *field, const char *why)
{
    e->field = field;
    snprintf(e->why, sizeof e->why, "%s", why);
    return -GP_E_VALIDATION;
}

/* A deliberately loose address check: one '@', something on both sides, a dot in the domain,
 * no spaces or controls. Ownership of the address is the sign-in provider's business. */
static bool email_ok(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n < 3 || n > EMAIL_MAX || !at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.'))
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return at[1] != '.' && s[n - 1] != '.';
}

static bool plain_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool plan_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PLAN_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

int gp_accounts_create_user(gp_store_t *st, const char *email, const char *display_name,
                            const char *plan, gp_user_t *out, gp_account_error_t *e)
{
    e->field = NULL;
    e->why[0] = '\0';
    if (!email || !email_ok(email))
        return invalid(e, "email", "must be an email address (name@example.com)");
    if (display_name && !plain_text_ok(display_name, NAME_MAX_LEN))
        return invalid(e, "display_name", "must be 1 to 200 characters, no control characters");
    if (plan && !plan_ok(plan))
        return invalid(e, "plan", "must be 1 to 31 of a-z, 0-9, - and _");
    char lower[EMAIL_MAX + 1];
    size_t i = 0;
    for (; email[i]; i++)
        lower[i] = (char)tolower((unsigned char)email[i]);
    lower[i] = '\0';
    gp_user_t u = {.created_at = gp_now_ms()};
    gp_uuid7(u.id);
    u.email = lower;
    u.display_name = (char *)display_name;
    u.plan = (char *)(plan ? plan : "free");
    int rc = st->vt->user_create(st, &u);
    if (rc == -GP_E_CONFLICT) {
        snprintf(e->why, sizeof e->why, "a user with this email exists");
        e->field = "email";
        return rc;
    }
    if (rc != 0) {
        snprintf(e->why, sizeof e->why, "the user could not be stored: %s", gp_err_message(rc));
        return rc;
    }
    return st->vt->user_get(st, u.id, out);
}

int gp_accounts_create_key(gp_store_t *st, const char *user_ref, const char *scopes,
                           const char *name, const char *expires, char key_out[GP_API_KEY_LEN + 1],
                           gp_api_key_t *out, gp_account_error_t *e)
{
    e->field = NULL;
    e->why[0] = '\0';
    unsigned set = 0;
    char why[160];
    if (!user_ref || !*user_ref)
        return invalid(e, "user", "required: the user's id or email");
    if (gp_scopes_parse(scopes ? scopes : "tasks:read,tasks:write", &set, why, sizeof why) != 0)
        return invalid(e, "scopes", why);
    if (name && !plain_text_ok(name, NAME_MAX_LEN))
        return invalid(e, "name", "must be 1 to 200 characters, no control characters");
    int64_t ttl = 0;
    if (expires && gp_duration_parse(expires, &ttl) != 0)
        return invalid(e, "expires", "must be a duration like 3600s, 90m, 12h, 30d, 2w or 1y");
    gp_user_t u;
    int rc = st->vt->user_get(st, user_ref, &u);
    if (rc != 0) {
        if (rc == -GP_E_NOT_FOUND)
            return invalid(e, "user", "no such user");
        snprintf(e->why, sizeof e->why, "the store is unavailable: %s", gp_err_message(rc));
        return rc;
    }
    char text[GP_SCOPES_TEXT_CAP];
    gp_scopes_format(set, text, sizeof text);
    gp_api_key_t k = {.created_at = gp_now_ms()};
    gp_uuid7(k.id);
    memcpy(k.user_id, u.id, sizeof k.user_id);
    gp_user_clear(&u);
    if (gp_api_key_generate(key_out) != 0) {
        snprintf(e->why, sizeof e->why, "no randomness available");
        return -GP_E_INTERNAL;
    }
    gp_api_key_prefix(key_out, k.prefix);
    gp_api_key_hash(key_out, k.hash);
    k.name = (char *)name;
    k.scopes = text;
    k.expires_at = ttl ? k.created_at + ttl : 0;
    rc = st->vt->key_create(st, &k);
    if (rc != 0) {
        snprintf(e->why, sizeof e->why, "the key could not be stored: %s", gp_err_message(rc));
        return rc;
    }
    *out = k;
    out->name = name ? gp_xstrdup(name) : NULL;
    out->scopes = gp_xstrdup(text);
    return 0;
}

static json_t *time_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    gp_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *gp_user_json(const gp_user_t *u)
{
    json_t *o =
        json_pack("{s:s, s:o, s:o, s:s, s:o, s:b}", "id", u->id, "email", str_or_null(u->email),
                  "display_name", str_or_null(u->display_name), "plan", u->plan ? u->plan : "free",
                  "created_at", time_or_null(u->created_at), "disabled", u->disabled);
    json_object_set_new(o, "credits",
                        json_pack("{s:I, s:I}", "available", (json_int_t)u->credits, "reserved",
                                  (json_int_t)u->reserved));
    if (u->oidc_issuer)
        json_object_set_new(o, "oidc",
                            json_pack("{s:s, s:s}", "issuer", u->oidc_issuer, "subject",
                                      u->oidc_subject ? u->oidc_subject : ""));
    return o;
}

json_t *gp_api_key_json(const gp_api_key_t *k)
{
    json_t *scopes = json_array();
    char *copy = gp_xstrdup(k->scopes ? k->scopes : "");
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        json_array_append_new(scopes, json_string(tok));
    free(copy);
    return json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "id", k->id, "user_id",
                     k->user_id, "name", str_or_null(k->name), "prefix", k->prefix, "scopes",
                     scopes, "created_at", time_or_null(k->created_at), "last_used_at",
                     time_or_null(k->last_used_at), "expires_at", time_or_null(k->expires_at),
                     "revoked_at", time_or_null(k->revoked_at));
}
