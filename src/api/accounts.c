/*
 * accounts.c — the identity surface: GET /v1/account (the caller), and the admin routes
 * /v1/users and /v1/keys (the same operations as `genpulse users|keys`, through
 * identity/accounts.h so both check fields alike).
 *
 * These are rare, small store calls, made on the event thread like task reads.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/accounts.h"
#include "identity/plans.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 100

static const char *const via_names[] = {"local", "api_key", "oidc", "session"};

static enum MHD_Result account(request_t *r)
{
    gp_store_t *st = r->http->rt->store;
    gp_user_t u;
    int rc = st->vt->user_get(st, r->principal.user_id, &u);
    if (rc != 0)
        return gp_send_error(r->conn, rc == -GP_E_NOT_FOUND ? GP_E_INVALID_KEY : GP_E_UNAVAILABLE,
                             NULL, NULL);
    char scopes[GP_SCOPES_TEXT_CAP];
    gp_scopes_format(r->principal.scopes, scopes, sizeof scopes);
    json_t *list = json_array();
    for (char *save = NULL, *tok = strtok_r(scopes, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        json_array_append_new(list, json_string(tok));
    const gp_plan_t *plan = gp_plan_find(u.plan);
    json_t *balance = plan->charged ? json_pack("{s:I, s:I}", "available", (json_int_t)u.credits,
                                                "reserved", (json_int_t)u.reserved)
                                    : json_null();
    json_t *body = json_pack(
        "{s:o, s:s, s:o, s:s, s:o, s:o, s:{s:b, s:I, s:i, s:i}}", "user", gp_user_json(&u), "plan",
        u.plan ? u.plan : "free", "scopes", list, "authenticated_by", via_names[r->principal.via],
        "key_id", r->principal.key_id[0] ? json_string(r->principal.key_id) : json_null(),
        "balance", balance, "limits", "charged", plan->charged, "monthly_grant",
        (json_int_t)plan->monthly_grant, "priority_boost", plan->priority_boost,
        "requests_per_minute", plan->requests_per_minute);
    gp_user_clear(&u);
    if (r->principal.via == GP_VIA_SESSION) /* a browser app sends it back as X-CSRF-Token */
        json_object_set_new(body, "csrf_token", json_string(r->principal.csrf));
    return gp_send_json(r->conn, 200, body, NULL, NULL);
}

/* The body's string fields named in `allowed` (NULL-ended) into out[] (borrowed from body);
 * anything else, or a non-string, is a 422 detail. */
static json_t *read_fields(json_t *body, const char *const *allowed, const char **out)
{
    json_t *details = json_array();
    if (!json_is_object(body)) {
        json_array_append_new(
            details, json_pack("{s:s, s:s}", "field", "body", "message", "must be a JSON object"));
        return details;
    }
    const char *key;
    json_t *v;
    json_object_foreach (body, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        char field[96];
        snprintf(field, sizeof field, "body.%s", key);
        if (!allowed[i])
            json_array_append_new(
                details, json_pack("{s:s, s:s}", "field", field, "message", "unknown field"));
        else if (json_is_string(v))
            out[i] = json_string_value(v);
        else if (!json_is_null(v))
            json_array_append_new(
                details, json_pack("{s:s, s:s}", "field", field, "message", "must be a string"));
    }
    return details;
}

static enum MHD_Result account_error(request_t *r, int rc, const gp_account_error_t *e)
{
    if (rc == -GP_E_VALIDATION || (rc == -GP_E_CONFLICT && e->field)) {
        char field[64];
        snprintf(field, sizeof field, "body.%s", e->field ? e->field : "");
        return gp_send_error(r->conn, rc, rc == -GP_E_CONFLICT ? e->why : NULL,
                             gp_one_detail(field, e->why));
    }
    return gp_send_error(r->conn, rc, e->why[0] ? e->why : NULL, NULL);
}

static enum MHD_Result create_user(request_t *r)
{
    enum MHD_Result ret;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    static const char *const allowed[] = {"email", "display_name", "plan", NULL};
    const char *f[3] = {NULL, NULL, NULL};
    json_t *details = read_fields(body, allowed, f);
    if (json_array_size(details) > 0) {
        json_decref(body);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    json_decref(details);
    gp_user_t u;
    gp_account_error_t e = {0};
    int rc = gp_accounts_create_user(r->http->rt->store, f[0], f[1], f[2], &u, &e);
    json_decref(body);
    if (rc != 0)
        return account_error(r, rc, &e);
    gp_log(GP_LOG_INFO, NULL, "user %s created by %s", u.id, r->principal.user_id);
    ret = gp_send_json(r->conn, 201, gp_user_json(&u), NULL, NULL);
    gp_user_clear(&u);
    return ret;
}

/* PATCH /v1/users/{id} {"plan"?, "disabled"?}: a disabled user's keys, tokens and sessions are
 * refused within the cache time on every gateway. */
static enum MHD_Result update_user(request_t *r)
{
    enum MHD_Result ret;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    json_t *details = json_array();
    const char *key;
    json_t *v;
    const char *plan = NULL;
    int disabled = -1;
    if (!json_is_object(body))
        json_array_append_new(
            details, json_pack("{s:s, s:s}", "field", "body", "message", "must be a JSON object"));
    json_object_foreach (body, key, v) {
        if (!strcmp(key, "plan") && json_is_string(v) && json_string_length(v) >= 1 &&
            json_string_length(v) <= 31)
            plan = json_string_value(v);
        else if (!strcmp(key, "disabled") && json_is_boolean(v))
            disabled = json_is_true(v) ? 1 : 0;
        else
            json_array_append_new(details,
                                  json_pack("{s:s+, s:s}", "field", "body.", key, "message",
                                            !strcmp(key, "plan")       ? "must be a plan name"
                                            : !strcmp(key, "disabled") ? "must be true or false"
                                                                       : "unknown field"));
    }
    if (json_array_size(details) > 0) {
        json_decref(body);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    json_decref(details);
    gp_store_t *st = r->http->rt->store;
    gp_user_t u;
    int rc = st->vt->user_get(st, r->path_params[0], &u);
    if (rc == 0) {
        rc = st->vt->user_update(st, u.id, plan, disabled);
        gp_user_clear(&u);
    }
    json_decref(body);
    if (rc == 0)
        rc = st->vt->user_get(st, r->path_params[0], &u);
    if (rc != 0)
        return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no such user" : NULL, NULL);
    gp_auth_forget(r->http->auth);
    gp_log(GP_LOG_INFO, NULL, "user %s updated by %s", u.id, r->principal.user_id);
    ret = gp_send_json(r->conn, 200, gp_user_json(&u), NULL, NULL);
    gp_user_clear(&u);
    return ret;
}

static enum MHD_Result get_user(request_t *r)
{
    gp_user_t u;
    gp_store_t *st = r->http->rt->store;
    int rc = st->vt->user_get(st, r->path_params[0], &u);
    if (rc != 0)
        return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no such user" : NULL, NULL);
    enum MHD_Result ret = gp_send_json(r->conn, 200, gp_user_json(&u), NULL, NULL);
    gp_user_clear(&u);
    return ret;
}

/* ?limit (1-100, default 20) and ?cursor (an id from the previous page's next_cursor). */
static bool page_args(request_t *r, size_t *limit, const char **cursor)
{
    *limit = 20;
    *cursor = gp_req_query(r, "cursor");
    if (*cursor && !**cursor)
        *cursor = NULL;
    const char *v = gp_req_query(r, "limit");
    if (!v)
        return true;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > PAGE_MAX)
        return false;
    *limit = (size_t)n;
    return true;
}

static json_t *page_json(json_t *data, size_t n, size_t limit, const char *last_id)
{
    return json_pack("{s:o, s:o}", "data", data, "next_cursor",
                     n == limit && n > 0 ? json_string(last_id) : json_null());
}

static enum MHD_Result list_users(request_t *r)
{
    size_t limit;
    const char *cursor;
    if (!page_args(r, &limit, &cursor))
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL,
                             gp_one_detail("limit", "must be an integer from 1 to 100"));
    gp_user_t rows[PAGE_MAX];
    size_t n = 0;
    gp_store_t *st = r->http->rt->store;
    if (st->vt->user_list(st, cursor, rows, limit, &n) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    json_t *data = json_array();
    char last[37] = "";
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(data, gp_user_json(&rows[i]));
        memcpy(last, rows[i].id, sizeof last);
        gp_user_clear(&rows[i]);
    }
    return gp_send_json(r->conn, 200, page_json(data, n, limit, last), NULL, NULL);
}

static enum MHD_Result create_key(request_t *r)
{
    enum MHD_Result ret;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    static const char *const allowed[] = {"user", "scopes", "name", "expires", NULL};
    const char *f[4] = {NULL, NULL, NULL, NULL};
    /* scopes may also be an array of names */
    json_t *scopes = json_object_get(body, "scopes");
    char joined[256] = "";
    if (json_is_array(scopes)) {
        size_t i;
        json_t *s;
        json_array_foreach (scopes, i, s) {
            size_t len = strlen(joined);
            snprintf(joined + len, sizeof joined - len, "%s%s", i ? "," : "",
                     json_is_string(s) ? json_string_value(s) : "?");
        }
        json_object_set_new(body, "scopes", json_string(joined));
    }
    json_t *details = read_fields(body, allowed, f);
    if (json_array_size(details) > 0) {
        json_decref(body);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    json_decref(details);
    char secret[GP_API_KEY_LEN + 1];
    gp_api_key_t k;
    gp_account_error_t e = {0};
    int rc = gp_accounts_create_key(r->http->rt->store, f[0], f[1], f[2], f[3], secret, &k, &e);
    json_decref(body);
    if (rc != 0)
        return account_error(r, rc, &e);
    gp_auth_forget(r->http->auth); /* the open rule may have just ended */
    gp_log(GP_LOG_INFO, NULL, "API key %s (%s) created for user %s by %s", k.id, k.prefix,
           k.user_id, r->principal.user_id);
    json_t *j = gp_api_key_json(&k);
    json_object_set_new(j, "key", json_string(secret));
    gp_api_key_clear(&k);
    return gp_send_json(r->conn, 201, j, NULL, NULL);
}

static enum MHD_Result list_keys(request_t *r)
{
    size_t limit;
    const char *cursor;
    if (!page_args(r, &limit, &cursor))
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL,
                             gp_one_detail("limit", "must be an integer from 1 to 100"));
    gp_store_t *st = r->http->rt->store;
    char user_id[37] = "";
    const char *user = gp_req_query(r, "user");
    if (user && *user) {
        gp_user_t u;
        if (st->vt->user_get(st, user, &u) != 0)
            return gp_send_error(r->conn, GP_E_VALIDATION, NULL,
                                 gp_one_detail("user", "no such user"));
        memcpy(user_id, u.id, sizeof user_id);
        gp_user_clear(&u);
    }
    gp_api_key_t rows[PAGE_MAX];
    size_t n = 0;
    if (st->vt->key_list(st, user_id[0] ? user_id : NULL, cursor, rows, limit, &n) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    json_t *data = json_array();
    char last[37] = "";
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(data, gp_api_key_json(&rows[i]));
        memcpy(last, rows[i].id, sizeof last);
        gp_api_key_clear(&rows[i]);
    }
    return gp_send_json(r->conn, 200, page_json(data, n, limit, last), NULL, NULL);
}

static enum MHD_Result revoke_key(request_t *r)
{
    gp_store_t *st = r->http->rt->store;
    int rc = st->vt->key_revoke(st, r->path_params[0], gp_now_ms());
    if (rc != 0)
        return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no key with this id" : NULL,
                             NULL);
    gp_auth_forget(r->http->auth); /* at once here; other gateways within the cache time */
    gp_log(GP_LOG_INFO, NULL, "API key %s revoked by %s", r->path_params[0], r->principal.user_id);
    return gp_send_json(r->conn, 200,
                        json_pack("{s:s, s:b}", "id", r->path_params[0], "revoked", 1), NULL, NULL);
}

static json_t *ledger_json(const gp_ledger_entry_t *e)
{
    char when[40];
    gp_format_time(e->created_at, when, sizeof when);
    return json_pack("{s:I, s:s, s:o, s:I, s:I, s:o, s:s}", "seq", (json_int_t)e->seq, "kind",
                     e->kind, "task_id", e->task_id[0] ? json_string(e->task_id) : json_null(),
                     "amount", (json_int_t)e->amount, "balance_after", (json_int_t)e->balance_after,
                     "note", e->note ? json_string(e->note) : json_null(), "created_at", when);
}

/* GET /v1/account/ledger: the caller's credit movements, newest first (keyset pages). */
static enum MHD_Result account_ledger(request_t *r)
{
    size_t limit;
    const char *cursor;
    json_t *details = json_array();
    if (!page_args(r, &limit, &cursor))
        json_array_append_new(details, json_pack("{s:s, s:s}", "field", "limit", "message",
                                                 "must be an integer from 1 to 100"));
    long long before = 0;
    if (cursor) {
        char *end = NULL;
        before = strtoll(cursor, &end, 10);
        if (*end || before < 1)
            json_array_append_new(details, json_pack("{s:s, s:s}", "field", "cursor", "message",
                                                     "is not a cursor from a previous page"));
    }
    if (json_array_size(details) > 0)
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    json_decref(details);
    gp_store_t *st = r->http->rt->store;
    gp_ledger_entry_t rows[PAGE_MAX];
    size_t n = 0;
    if (!st->vt->ledger_list ||
        st->vt->ledger_list(st, r->principal.user_id, before, rows, limit, &n) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, ledger_json(&rows[i]));
    char next[32] = "";
    if (n == limit && n > 0)
        snprintf(next, sizeof next, "%lld", (long long)rows[n - 1].seq);
    for (size_t i = 0; i < n; i++)
        gp_ledger_entry_clear(&rows[i]);
    return gp_send_json(r->conn, 200,
                        json_pack("{s:o, s:o}", "data", data, "next_cursor",
                                  next[0] ? json_string(next) : json_null()),
                        NULL, NULL);
}

/* POST /v1/users/{id}/credits {amount, note}: an admin grant. The Idempotency-Key header
 * (else a fresh id) keys it, so a retried request grants once. */
static enum MHD_Result grant_credits(request_t *r)
{
    enum MHD_Result ret;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    json_t *amount = json_object_get(body, "amount");
    json_t *note = json_object_get(body, "note");
    json_t *details = json_array();
    if (!json_is_integer(amount) || json_integer_value(amount) < 1 ||
        json_integer_value(amount) > 1000000000000LL)
        json_array_append_new(details, json_pack("{s:s, s:s}", "field", "body.amount", "message",
                                                 "must be an integer from 1 to 10^12"));
    if (note && !json_is_string(note))
        json_array_append_new(
            details, json_pack("{s:s, s:s}", "field", "body.note", "message", "must be a string"));
    const char *key;
    json_object_foreach (body, key, note)
        if (strcmp(key, "amount") && strcmp(key, "note"))
            json_array_append_new(details, json_pack("{s:s, s:s}", "field", "body", "message",
                                                     "only amount and note may be given"));
    note = json_object_get(body, "note");
    if (json_array_size(details) > 0) {
        json_decref(body);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    json_decref(details);
    gp_store_t *st = r->http->rt->store;
    gp_user_t u;
    int rc = st->vt->user_get(st, r->path_params[0], &u);
    if (rc != 0) {
        json_decref(body);
        return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no such user" : NULL, NULL);
    }
    char unique[300];
    const char *idem = gp_req_header(r, "Idempotency-Key");
    char fresh[37];
    gp_uuid7(fresh);
    snprintf(unique, sizeof unique, "grant:%s:%s", u.id, idem && *idem ? idem : fresh);
    int64_t balance = 0;
    rc = st->vt->credits_grant ? st->vt->credits_grant(st, u.id, json_integer_value(amount), unique,
                                                       json_string_value(note), &balance)
                               : -GP_E_UNAVAILABLE;
    json_decref(body);
    bool replay = rc == -GP_E_CONFLICT;
    if (rc == 0 || replay) {
        gp_user_t now;
        if (st->vt->user_get(st, u.id, &now) == 0) {
            balance = now.credits;
            gp_user_clear(&now);
        }
        gp_log(GP_LOG_INFO, NULL, "user %s: %s by %s", u.id,
               replay ? "grant replayed" : "credits granted", r->principal.user_id);
    }
    json_t *out = json_pack("{s:s, s:I, s:b}", "user_id", u.id, "balance", (json_int_t)balance,
                            "replayed", replay);
    gp_user_clear(&u);
    if (rc != 0 && !replay) {
        json_decref(out);
        return gp_send_error(r->conn, rc, NULL, NULL);
    }
    return gp_send_json(r->conn, replay ? 200 : 201, out, NULL, NULL);
}

const gp_route_t gp_routes_accounts[] = {
    {"GET", "/v1/account/ledger", GP_BODY_NONE, "", account_ledger, NULL},
    {"POST", "/v1/users/{}/credits", GP_BODY_JSON, "admin", grant_credits, NULL},
    {"GET", "/v1/account", GP_BODY_NONE, "", account, NULL},
    {"GET", "/v1/users", GP_BODY_NONE, "admin", list_users, NULL},
    {"POST", "/v1/users", GP_BODY_JSON, "admin", create_user, NULL},
    {"GET", "/v1/users/{}", GP_BODY_NONE, "admin", get_user, NULL},
    {"PATCH", "/v1/users/{}", GP_BODY_JSON, "admin", update_user, NULL},
    {"GET", "/v1/keys", GP_BODY_NONE, "admin", list_keys, NULL},
    {"POST", "/v1/keys", GP_BODY_JSON, "admin", create_key, NULL},
    {"POST", "/v1/keys/{}/revoke", GP_BODY_NONE, "admin", revoke_key, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
