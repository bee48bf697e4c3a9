/*
 * oidc_bridge.c — OIDC identities to users (oidc_bridge.h): the token is verified by
 * identity/oidc.c, then (iss, sub) names the user, created on first sight with the default
 * plan. The email is kept only when the issuer says it is verified and no other user holds
 * it: an address alone never joins an existing account.
 */
#include "identity/oidc_bridge.h"
#include "core/api_key.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/oidc.h"
#include "identity/plans.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

bool gp_oidc_bridge_is_token(const char *bearer)
{
    return gp_oidc_looks_like_jwt(bearer);
}

/* The user for identity id, created when first seen. */
static int user_for(gp_store_t *store, const gp_oidc_identity_t *id, const char *plan,
                    gp_user_t *out)
{
    int rc = store->vt->user_by_oidc(store, id->issuer, id->subject, out);
    if (rc != -GP_E_NOT_FOUND)
        return rc;
    gp_user_t u = {.created_at = gp_now_ms()};
    gp_uuid7(u.id);
    u.display_name = id->name;
    u.plan = (char *)plan;
    u.oidc_issuer = id->issuer;
    u.oidc_subject = id->subject;
    u.email = id->email_verified ? id->email : NULL;
    rc = store->vt->user_create(store, &u);
    if (rc == -GP_E_CONFLICT && u.email) { /* the address belongs to someone else */
        u.email = NULL;
        rc = store->vt->user_create(store, &u);
    }
    if (rc == 0)
        gp_log(GP_LOG_INFO, NULL, "user %s created on first sign-in through %s", u.id, id->issuer);
    /* a concurrent first request created it: read the winner */
    return store->vt->user_by_oidc(store, id->issuer, id->subject, out);
}

int gp_oidc_bridge_principal(gp_store_t *store, const struct gp_oidc_identity *id,
                             const char *default_plan, gp_principal_t *out, const char **code,
                             char *msg, size_t cap)
{
    gp_user_t u = {0};
    int rc = user_for(store, id, default_plan, &u);
    if (rc != 0) {
        *code = gp_err_code(GP_E_UNAVAILABLE);
        snprintf(msg, cap, "the user could not be read or created; try again");
        return -GP_E_UNAVAILABLE;
    }
    if (u.disabled) {
        gp_user_clear(&u);
        *code = gp_err_code(GP_E_USER_DISABLED);
        return -GP_E_USER_DISABLED;
    }
    gp_plan_grant_month(store, u.id, u.plan);
    memset(out, 0, sizeof *out);
    snprintf(out->user_id, sizeof out->user_id, "%s", u.id);
    snprintf(out->plan, sizeof out->plan, "%s", u.plan ? u.plan : "free");
    out->scopes = GP_SCOPE_TASKS_READ | GP_SCOPE_TASKS_WRITE;
    out->via = GP_VIA_OIDC;
    gp_user_clear(&u);
    return 0;
}

int gp_oidc_bridge_authenticate(struct gp_oidc *o, gp_store_t *store, const char *token,
                                const char *default_plan, gp_principal_t *out, const char **code,
                                char *msg, size_t cap)
{
    gp_oidc_identity_t id = {0};
    if (gp_oidc_verify(o, token, (int64_t)time(NULL), &id, code, msg, cap) != 0)
        return gp_oidc_code_status(*code) == 503 ? -GP_E_UNAVAILABLE : -GP_E_INVALID_TOKEN;
    int rc = gp_oidc_bridge_principal(store, &id, default_plan, out, code, msg, cap);
    gp_oidc_identity_clear(&id);
    return rc;
}
