/*
 * auth.h — who is calling: turns a request's Authorization header into a principal (user,
 * plan, scopes), for the gateway.
 *
 * The rule (docs/api.md "Authentication"):
 *   - A request with `Authorization: Bearer <key or ID token>` is that key's (or token's)
 *     user, whatever the mode.
 *   - A request without one but with a valid session cookie (browser sign-in) is that
 *     session's user; unsafe methods must then echo its CSRF token (checked by the gateway).
 *   - A request with neither is the built-in local user with every scope only while the server
 *     is open: mode "open"/"open-public", or mode "auto" while the listener is on loopback AND
 *     no active API key exists AND no OIDC issuer is configured. Otherwise it gets 401.
 *
 * Verified keys are cached for GP_AUTH_CACHE_MS (revocation and expiry take effect within that
 * time on every gateway); the "does any key exist" answer is refreshed as often. Key
 * last-use times are written by a background thread, never on the request path. Repeated
 * failures from one client address are answered 429 for a while (GP_AUTH_FAIL_*).
 *
 * Thread-safety: gp_auth_* may be called from any thread once gp_auth_new returned.
 */
#ifndef GP_IDENTITY_AUTH_H
#define GP_IDENTITY_AUTH_H

#include "infra/store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_AUTH_CACHE_MS 5000
#define GP_AUTH_FAIL_LIMIT 20           /* failed attempts per address per window … */
#define GP_AUTH_FAIL_WINDOW_S 60        /* … before 429 for the rest of the window */
#define GP_AUTH_TOUCH_INTERVAL_MS 60000 /* last_used_at is written at most this often */

typedef enum gp_auth_mode {
    GP_AUTH_AUTO,       /* open on loopback until a key exists; keys required otherwise */
    GP_AUTH_KEYS,       /* keys always required */
    GP_AUTH_OPEN,       /* no key needed (refused on a public address) */
    GP_AUTH_OPEN_PUBLIC /* no key needed, even on a public address: said in so many words */
} gp_auth_mode_t;

typedef enum gp_auth_via {
    GP_VIA_LOCAL, /* no credentials: the built-in user of an open server */
    GP_VIA_KEY,
    GP_VIA_OIDC,
    GP_VIA_SESSION, /* the browser session cookie of an OIDC sign-in */
} gp_auth_via_t;

typedef struct gp_principal {
    char user_id[37];
    char plan[32];
    unsigned scopes; /* GP_SCOPE_* bits (core/api_key.h) */
    gp_auth_via_t via;
    char key_id[37]; /* "" unless via a key */
    char csrf[48];   /* via a session: the token unsafe requests must echo in X-CSRF-Token */
} gp_principal_t;

typedef struct gp_auth gp_auth_t;
struct gp_oidc;

typedef struct gp_auth_config {
    gp_auth_mode_t mode;
    bool loopback_only;         /* the listener is on a loopback address */
    struct gp_oidc *oidc;       /* NULL = no OIDC issuer configured; borrowed, outlives the auth */
    const char *default_plan;   /* users created on first OIDC sign-in; borrowed */
    uint8_t session_secret[32]; /* verifies session cookies (core/session_token.h) */
} gp_auth_config_t;

/* NULL if the background thread cannot start. store is borrowed and must outlive it. */
gp_auth_t *gp_auth_new(gp_store_t *store, const gp_auth_config_t *cfg);
void gp_auth_free(gp_auth_t *a);

/* Whether a request without credentials is served now (the rule above). */
bool gp_auth_open(gp_auth_t *a);

/*
 * Authenticates one request. authorization: the header value or NULL; client: the peer
 * address as text (for the failure throttle; may be NULL). Returns 0 with *out filled, or
 * -GP_E_* with *code set to the machine code for error.code (static string) and msg the
 * reason for the client (never the credential itself). -GP_E_TOO_MANY_AUTH_FAILURES sets
 * *retry_after_s.
 */
int gp_auth_authenticate(gp_auth_t *a, const char *authorization, const char *session_cookie,
                         const char *client, gp_principal_t *out, const char **code, char *msg,
                         size_t cap, int *retry_after_s);

#define GP_SESSION_COOKIE "gp_session"
#define GP_SESSION_TTL_S (8 * 3600)

/* Whether p may use a route that needs `scope` (NULL: public, "": any signed-in caller). */
bool gp_principal_allows(const gp_principal_t *p, const char *scope);
/* Admins see and manage every user's resources. */
bool gp_principal_is_admin(const gp_principal_t *p);
/* Whether p may see a resource owned by owner ("" or NULL = the local user). */
bool gp_principal_owns(const gp_principal_t *p, const char *owner);

/* The per-user request rate of the caller's plan (fixed one-minute windows, counted in this
 * process). 0 = allowed; -1 = over the limit. Either way *remaining and *reset_s describe the
 * current window (for RateLimit headers). per_minute <= 0: always allowed. */
int gp_auth_rate(gp_auth_t *a, const char *user_id, int per_minute, int *remaining, int *reset_s);

/* Drops every cached verification (tests, and after a local revoke). */
void gp_auth_forget(gp_auth_t *a);

#endif
