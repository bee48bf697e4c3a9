/*
 * docs.c — GET /docs and /docs/{file}: Swagger UI (third_party/swagger-ui, swagger-ui-dist
 * 5.35.0) on this server's /openapi.json, with our page and initializer (apidocs/), all
 * compiled into the binary (tools/embed_incbin.sh → BUILD/gen/docs_gen.c). Public: the files
 * hold no data; "Authorize" with a key, then "Try it out" calls the API from the browser.
 */
#include "api/dashboard.h"
#include "api/reply.h"
#include "core/errors.h"
#include "core/settings.h"
#include "identity/oidc.h"

#include <stdio.h>

#include <string.h>

extern const gp_dashboard_file_t gp_docs_files[];

/* Everything loads from this server. Swagger UI sets inline style attributes (React's style
 * objects go through the CSSOM, which CSP allows) and shows inline SVG icons; try-it-out
 * calls this origin and the public URL's (servers[0] is "/" or --public-url). With an ID
 * token issuer configured, the Authorize dialog also reads its discovery document: its origin
 * is allowed too. */
#define DOCS_CSP                                                                                   \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "              \
    "connect-src 'self'%s%s%s%s; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "     \
    "base-uri 'none'; form-action 'self'"

/* The origin (scheme://host[:port]) of an http(s) URL into out, "" when it is not one or has
 * characters a CSP source cannot carry. */
static void url_origin(const char *url, char *out, size_t cap)
{
    out[0] = '\0';
    const char *rest = !strncmp(url, "https://", 8)  ? url + 8
                       : !strncmp(url, "http://", 7) ? url + 7
                                                     : NULL;
    if (!rest)
        return;
    size_t n = strcspn(rest, "/?#");
    size_t total = (size_t)(rest - url) + n;
    for (size_t i = 0; i < total; i++)
        if (url[i] <= ' ' || url[i] == ';' || url[i] == ',' || url[i] == '\'' || url[i] >= 0x7f)
            return;
    if (n > 0 && total < cap)
        snprintf(out, cap, "%.*s", (int)total, url);
}
static enum MHD_Result send_file(request_t *r, const char *name)
{
    const gp_settings_t *st = r->http->rt->settings;
    char issuer[256], server[256], csp[900];
    url_origin(st->oidc_issuer[0]             ? st->oidc_issuer
               : st->oidc_google_client_id[0] ? GP_OIDC_GOOGLE_ISSUER
                                              : "",
               issuer, sizeof issuer);
    url_origin(st->public_url, server, sizeof server);
    snprintf(csp, sizeof csp, DOCS_CSP, server[0] ? " " : "", server, issuer[0] ? " " : "", issuer);
    return gp_send_embedded(r, gp_docs_files, name, csp, "docs file");
}

static enum MHD_Result page(request_t *r)
{
    return send_file(r, "index.html");
}

static enum MHD_Result file(request_t *r)
{
    return send_file(r, r->path_params[0]);
}

const gp_route_t gp_routes_docs[] = {
    {"GET", "/docs", GP_BODY_NONE, NULL, page, NULL},
    {"GET", "/docs/{}", GP_BODY_NONE, NULL, file, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
