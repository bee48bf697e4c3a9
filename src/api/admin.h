/*
 * admin.h — the operations listener (`--admin-port`): /health, /ready and /metrics without
 * the public API, for worker processes (see admin.c).
 *
 * Threading: start/stop from the main thread. Requests run on the listener's own threads.
 */
#ifndef GP_API_ADMIN_H
#define GP_API_ADMIN_H

#include "runtime/runtime.h"

#include <stddef.h>

typedef struct gp_admin_http gp_admin_http_t;

/* Listens on --admin-host:--admin-port; NULL with err set when it cannot. */
gp_admin_http_t *gp_admin_http_start(gp_runtime_t *rt, char *err, size_t cap);
void gp_admin_http_stop(gp_admin_http_t *a);

#endif
