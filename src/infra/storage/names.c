/*
 * names.c — the asset naming and link rules shared by the worker (which stores outputs and
 * their derived thumbnails) and the gateway (which links them): one place, so the two cannot
 * drift apart.
 */
#include "core/util.h"
#include "infra/storage/storage.h"

#include <string.h>

bool gp_storage_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 128 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

char *gp_storage_derived_name(const char *name, const char *content_type)
{
    bool video = content_type && !strncmp(content_type, "video/", 6);
    return gp_xasprintf("%s.%s.jpg", name, video ? "preview" : "thumb");
}
