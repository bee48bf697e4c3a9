/*
 * backends.c — picks a backend of each family by URL scheme from the generated tables.
 * The core calls gp_*_open(settings) and never names a concrete backend.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/events/events.h"
#include "infra/limiter/limiter.h"
#include "infra/presence/presence.h"
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

#define DEFINE_OPEN(family, type, table, url_field, dflt)                                          \
    int gp_##family##_open(type **out, const gp_settings_t *s, char *err, size_t cap)              \
    {                                                                                              \
        char scheme[32];                                                                           \
        scheme_of(s->url_field, dflt, scheme, sizeof scheme);                                      \
        for (size_t i = 0; table[i]; i++)                                                          \
            if (!strcmp(table[i]->scheme, scheme))                                                 \
                return table[i]->open(out, s->url_field, s, err, cap);                             \
        snprintf(err, cap, #family ": no backend for \"%s\" in this build", scheme);               \
        return -GP_E_INTERNAL;                                                                     \
    }

DEFINE_OPEN(store, gp_store_t, gp_generated_store_backends, database_url, "sqlite")
DEFINE_OPEN(queue, gp_queue_t, gp_generated_queue_backends, queue_url, "memory")
DEFINE_OPEN(events, gp_events_t, gp_generated_events_backends, queue_url, "memory")
DEFINE_OPEN(storage, gp_storage_t, gp_generated_storage_backends, storage_url, "local")
DEFINE_OPEN(limiter, gp_limiter_t, gp_generated_limiter_backends, queue_url, "memory")
DEFINE_OPEN(presence, gp_presence_t, gp_generated_presence_backends, queue_url, "memory")
