/*
 * oidc_bridge.h — from a verified OpenID Connect ID token to a GenPulse user: (iss, sub) maps
 * to a user, created on first sight with the default plan. Used by auth.c.
 * Thread-safety: any thread.
 */
#ifndef GP_IDENTITY_OIDC_BRIDGE_H
#define GP_IDENTITY_OIDC_BRIDGE_H

#include "identity/auth.h"

/* Cheap shape test: does this bearer look like a JWT (three base64url parts)? */
bool gp_oidc_bridge_is_token(const char *bearer);

/* Verifies token with o and fills out (scopes tasks:read + tasks:write); a new user gets
 * default_plan. Returns 0 or -GP_E_INVALID_TOKEN / -GP_E_USER_DISABLED / -GP_E_UNAVAILABLE
 * with *code (identity/oidc.h's precise code for token refusals) and msg set. */
int gp_oidc_bridge_authenticate(struct gp_oidc *o, gp_store_t *store, const char *token,
                                const char *default_plan, gp_principal_t *out, const char **code,
                                char *msg, size_t cap);

/* The principal for an already verified identity (the browser sign-in's callback). */
struct gp_oidc_identity;
int gp_oidc_bridge_principal(gp_store_t *store, const struct gp_oidc_identity *id,
                             const char *default_plan, gp_principal_t *out, const char **code,
                             char *msg, size_t cap);

#endif
