/*
 * accounts.h — creating and showing users and API keys, shared by the command line
 * (`genpulse users|keys`) and the admin routes (/v1/users, /v1/keys), so both check the same
 * fields the same way.
 *
 * Errors: functions return 0 or -GP_E_*, with `field` (a request field name: "email",
 * "scopes", …) and `why` filled for -GP_E_VALIDATION, and why for the others.
 * Thread-safety: any thread (the store calls are).
 */
#ifndef GP_IDENTITY_ACCOUNTS_H
#define GP_IDENTITY_ACCOUNTS_H

#include "core/api_key.h"
#include "infra/store/store.h"

#include <jansson.h>

typedef struct gp_account_error {
    const char *field; /* static; NULL = not about one field */
    char why[200];
} gp_account_error_t;

/* Creates a user; plan NULL = "free". *out is the stored user (caller clears). */
int gp_accounts_create_user(gp_store_t *st, const char *email, const char *display_name,
                            const char *plan, gp_user_t *out, gp_account_error_t *e);

/* Creates a key for the user named by user_ref (id or email). scopes NULL =
 * "tasks:read,tasks:write"; expires NULL = never (else a duration, "30d"). The secret is
 * written to key_out, shown once: only its hash is stored. *out is the record. */
int gp_accounts_create_key(gp_store_t *st, const char *user_ref, const char *scopes,
                           const char *name, const char *expires, char key_out[GP_API_KEY_LEN + 1],
                           gp_api_key_t *out, gp_account_error_t *e);

/* JSON forms (new references): a user; a key record (never the secret or its hash). */
json_t *gp_user_json(const gp_user_t *u);
json_t *gp_api_key_json(const gp_api_key_t *k);

#endif
