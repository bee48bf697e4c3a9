/*
 * server.h — the HTTP gateway (libmicrohttpd, epoll, a pool of event threads).
 *
 * Threading: gp_http_start/stop are called from the main thread. Request handlers run on
 * the MHD event threads and never block on slow work: submissions wait for their commit
 * with the connection suspended, and event streams are suspended between events.
 */
#ifndef GP_API_SERVER_H
#define GP_API_SERVER_H

#include "runtime/runtime.h"

typedef struct gp_http gp_http_t;

/* Starts listening; on error writes err and returns NULL. */
gp_http_t *gp_http_start(gp_runtime_t *rt, char *err, size_t cap);
/* The port actually bound (useful with port 0). */
int gp_http_port(gp_http_t *h);
/* Stops accepting new connections (existing ones continue). */
void gp_http_quiesce(gp_http_t *h);
/* Ends event streams, waits (bounded) for in-flight commits, closes everything, frees h. */
void gp_http_stop(gp_http_t *h);

#endif
