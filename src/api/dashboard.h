/*
 * dashboard.h — the dashboard's assets, compiled into the binary (tools/embed.sh writes
 * BUILD/gen/dashboard_gen.c from dashboard/). Immutable data: safe from any thread.
 */
#ifndef GP_API_DASHBOARD_H
#define GP_API_DASHBOARD_H

#include <microhttpd.h>
#include <stddef.h>

typedef struct gp_dashboard_file {
    const char *name; /* base name ("app.js"); NULL ends the table */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} gp_dashboard_file_t;

extern const gp_dashboard_file_t gp_dashboard_files[];

struct request;
/* dashboard.c: answers the file `name` of files (a NULL-ended table) with the headers every
 * page built into the binary gets (no-cache, csp, nosniff, no-referrer, no framing, its own
 * browsing context), or a 404 JSON error naming `what` ("dashboard file"). On the
 * request's event thread. */
enum MHD_Result gp_send_embedded(struct request *r, const gp_dashboard_file_t *files,
                                 const char *name, const char *csp, const char *what);

#endif
