/*
 * backends.c — picks a backend of each family by URL scheme from the generated tables.
 * The core calls gp_*_open(settings) and never names a concrete backend.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/events/events.h"
#include "infra/limiter/limiter.h"
#include "infra/queue/queue.h"
#include "infra/storage/storage.h"
#include "infra/store/store.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Scheme of url ("postgres" of "postgres://..."), or dflt when url is empty. */
static void scheme_of(const char *url, const char *dflt, char *out, size_t cap)
{
    if (!url || !*url) {
        snprintf(out, cap, "%s", dflt);
        return;
    }
    const char *colon = strchr(url, ':');
    size_t n = colon ? (size_t)(colon - url) : strlen(url);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, url, n);
    out[n] = '\0';
    if (!strcmp(out, "postgresql"))
        snprintf(out, cap, "postgres");
    if (!strcmp(out, "rediss"))
        snprintf(out, cap, "redis");
}

#define DEFINE_OPEN(family, type, table, url_field, dflt)                                      \
    int gp_##family##_open(type **out, const gp_settings_t *s, char *err, size_t cap)          \
    {                                                                                          \
        char scheme[32];                                                                       \
        scheme_of(s->url_field, dflt, scheme, sizeof scheme);                                  \
        for (size_t i = 0; table[i]; i++)                                                      \
            if (!strcmp(table[i]->scheme, scheme))                                             \
                return table[i]->open(out, s->url_field, s, err, cap);                         \
        snprintf(err, cap, #family ": no backend for \"%s\" in this build", scheme);          \
        return -GP_E_INTERNAL;                                                                 \
    }

DEFINE_OPEN(store, gp_store_t, gp_generated_store_backends, database_url, "sqlite")
DEFINE_OPEN(queue, gp_queue_t, gp_generated_queue_backends, queue_url, "memory")
DEFINE_OPEN(events, gp_events_t, gp_generated_events_backends, queue_url, "memory")
DEFINE_OPEN(storage, gp_storage_t, gp_generated_storage_backends, storage_url, "local")
DEFINE_OPEN(limiter, gp_limiter_t, gp_generated_limiter_backends, queue_url, "memory")

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

const char *gp_storage_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".png", "image/png"},   {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},
        {".webp", "image/webp"}, {".gif", "image/gif"},   {".wav", "audio/wav"},
        {".mp3", "audio/mpeg"},  {".ogg", "audio/ogg"},   {".flac", "audio/flac"},
        {".mp4", "video/mp4"},   {".webm", "video/webm"}, {".mov", "video/quicktime"},
        {".json", "application/json"}, {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}
