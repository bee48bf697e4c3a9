/* link_secret.c — the /files/ link key and the links it signs (link_secret.h). */
#include "core/link_secret.h"
#include "core/signed_link.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int gp_link_secret_load(const gp_settings_t *s, uint8_t out[GP_LINK_SECRET_LEN], char *err,
                        size_t cap)
{
    if (s->link_secret && s->link_secret[0]) {
        if (gp_secret_parse_hex(s->link_secret, out) != 0) {
            snprintf(err, cap, "--link-secret (GENPULSE_LINK_SECRET) must be 64 hex digits");
            return -1;
        }
        return 0;
    }
    char *path = gp_xasprintf("%s/link-secret", s->data_dir);
    int rc = gp_secret_load_or_create(path, out);
    if (rc != 0)
        snprintf(err, cap, "cannot read or create %s (64 hex digits); set --link-secret instead",
                 path);
    free(path);
    return rc == 0 ? 0 : -1;
}

char *gp_files_link(const uint8_t secret[GP_LINK_SECRET_LEN], const char *public_url,
                    const char *owner, const char *name, int64_t ttl_s)
{
    char *path = gp_xasprintf("/files/%s/%s", owner, name);
    char *link = gp_signed_link(secret, GP_LINK_SECRET_LEN, public_url ? public_url : "", path,
                                (int64_t)time(NULL) + ttl_s);
    free(path);
    return link;
}
