/*
 * dashboard.c — GET /dashboard and /dashboard/{file}: the web dashboard's page, script and
 * style, served from the binary (dashboard.h). Public: the assets hold no data; the page
 * signs in (session cookie or a pasted API key) and then calls the API like any client.
 */
#include "api/dashboard.h"
#include "api/reply.h"
#include "core/errors.h"

#include <stdio.h>
#include <string.h>

/* Everything the page loads is its own; outputs may live on an object store (any origin). */
#define DASHBOARD_CSP                                                                              \
    "default-src 'self'; img-src * data: blob:; media-src * data: blob:; style-src 'self'; "       \
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"

enum MHD_Result gp_send_embedded(request_t *r, const gp_dashboard_file_t *files, const char *name,
                                 const char *csp, const char *what)
{
    for (const gp_dashboard_file_t *f = files; f->name; f++) {
        if (strcmp(f->name, name) != 0)
            continue;
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
        /* no-cache, not no-store: revalidated each load, so a new binary shows at once. */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "Content-Security-Policy", csp);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
        enum MHD_Result ret = gp_queue_response(r->conn, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "no such %s", what);
    return gp_send_error(r->conn, GP_E_NOT_FOUND, msg, NULL);
}

static enum MHD_Result send_file(request_t *r, const char *name)
{
    return gp_send_embedded(r, gp_dashboard_files, name, DASHBOARD_CSP, "dashboard file");
}

static enum MHD_Result page(request_t *r)
{
    return send_file(r, "index.html");
}

static enum MHD_Result asset(request_t *r)
{
    return send_file(r, r->path_params[0]);
}

const gp_route_t gp_routes_dashboard[] = {
    {"GET", "/dashboard", GP_BODY_NONE, NULL, page, NULL},
    {"GET", "/dashboard/{}", GP_BODY_NONE, NULL, asset, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};
