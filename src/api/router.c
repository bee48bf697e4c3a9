/*
 * router.c — route matching and the list of surfaces.
 *
 * A new surface is a new file that exports gp_routes_<name>[] plus one line in `surfaces`.
 * Rows are tried in order: the surface order, then the order inside a file. That order is
 * also the order of the methods in a 405's Allow header.
 */
#include "api/router.h"

#include <stdio.h>
#include <string.h>

/* One line per added surface keeps merges simple. */
/* clang-format off */
static const gp_route_t *const surfaces[] = {
    gp_routes_tasks,  gp_routes_events,  gp_routes_health, gp_routes_assets,    gp_routes_accounts,
    gp_routes_signin, gp_routes_metrics, gp_routes_stats,  gp_routes_dashboard, gp_routes_workers,
    gp_routes_replicate, gp_routes_replicate_models, gp_routes_replicate_stream,
    gp_routes_openapi, gp_routes_docs, gp_routes_providers, gp_routes_results,
    gp_routes_webhooks,
};
/* clang-format on */
#define N_SURFACES (sizeof surfaces / sizeof surfaces[0])

const gp_route_t *const *gp_route_surfaces(size_t *n)
{
    *n = N_SURFACES;
    return surfaces;
}

bool gp_route_match(const char *pattern, const char *path, gp_path_params_t params)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '/' && *s == '/') {
            p++;
            s++;
            continue;
        }
        if (!strncmp(p, "{}", 2)) {
            const char *end = strchr(s, '/');
            size_t n = end ? (size_t)(end - s) : strlen(s);
            if (n == 0 || n >= GP_PATH_PARAM_LEN || np >= GP_PATH_PARAMS_MAX)
                return false;
            memcpy(params[np], s, n);
            params[np++][n] = '\0';
            p += 2;
            s += n;
            continue;
        }
        const char *pend = strchr(p, '/'), *send = strchr(s, '/');
        size_t pn = pend ? (size_t)(pend - p) : strlen(p);
        size_t sn = send ? (size_t)(send - s) : strlen(s);
        if (pn != sn || strncmp(p, s, pn) != 0)
            return false;
        p += pn;
        s += sn;
    }
    if (*s == '/' && s[1] == '\0' && s != path)
        s++; /* tolerate one trailing slash */
    return *p == '\0' && *s == '\0';
}

const gp_route_t *gp_route_find(const char *method, const char *path, gp_path_params_t params,
                                char *allow, size_t cap)
{
    allow[0] = '\0';
    bool head = !strcmp(method, "HEAD");
    for (size_t i = 0; i < N_SURFACES; i++) {
        for (const gp_route_t *rt = surfaces[i]; rt->method; rt++) {
            gp_path_params_t got;
            if (!gp_route_match(rt->pattern, path, got))
                continue;
            if (!strcmp(rt->method, method) || (head && !strcmp(rt->method, "GET"))) {
                memcpy(params, got, sizeof got);
                return rt;
            }
            size_t o = strlen(allow);
            if (o + 1 < cap)
                snprintf(allow + o, cap - o, "%s%s", o ? ", " : "", rt->method);
        }
    }
    return NULL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

size_t gp_path_unescape(char *s)
{
    char *out = s;
    for (const char *in = s; *in;) {
        int hi, lo;
        if (in[0] == '%' && (hi = hexval(in[1])) >= 0 && (lo = hexval(in[2])) >= 0 &&
            (hi | lo) != 0) {
            *out++ = (char)(hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}
