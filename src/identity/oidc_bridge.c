/* oidc_bridge.c — OIDC identities to users (oidc_bridge.h). */
#include "identity/oidc_bridge.h"
#include "core/errors.h"

#include <stdio.h>
#include <string.h>

bool gp_oidc_bridge_is_token(const char *bearer)
{
    const char *dot1 = strchr(bearer, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    return !strncmp(bearer, "eyJ", 3) && dot2 && !strchr(dot2 + 1, '.');
}

int gp_oidc_bridge_authenticate(struct gp_oidc *o, gp_store_t *store, const char *token,
                                gp_principal_t *out, const char **code, char *msg, size_t cap)
{
    (void)o, (void)store, (void)token, (void)out;
    *code = gp_err_code(GP_E_INVALID_TOKEN);
    snprintf(msg, cap, "ID tokens are not accepted yet");
    return -GP_E_INVALID_TOKEN;
}
