/*
 * dashboard.h — the dashboard's assets, compiled into the binary (tools/embed.sh writes
 * BUILD/gen/dashboard_gen.c from dashboard/). Immutable data: safe from any thread.
 */
#ifndef GP_API_DASHBOARD_H
#define GP_API_DASHBOARD_H

#include <stddef.h>

typedef struct gp_dashboard_file {
    const char *name; /* base name ("app.js"); NULL ends the table */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} gp_dashboard_file_t;

extern const gp_dashboard_file_t gp_dashboard_files[];

#endif
