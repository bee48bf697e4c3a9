/*
 * router.h — the gateway's route table and the matcher that reads it.
 *
 * A surface of the API is one file under src/api/ that exports its rows as a NULL-ended
 * gp_route_t array (gp_routes_<surface>); router.c lists the surfaces in the order they
 * are tried. A route runs in phases: `start` when the request (headers and body) is complete,
 * and `finish` when a connection that `start` suspended (for a commit or for blocking work on
 * the offload pool) is resumed.
 *
 * Threading: the table is immutable; every function here is pure and thread-safe.
 */
#ifndef GP_API_ROUTER_H
#define GP_API_ROUTER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#define GP_PATH_PARAMS_MAX 3
#define GP_PATH_PARAM_LEN 160

typedef struct request gp_request_t;
typedef enum MHD_Result (*gp_route_fn)(gp_request_t *r);

typedef enum gp_body_kind {
    GP_BODY_NONE,  /* any body is read into memory (bounded) and ignored */
    GP_BODY_JSON,  /* requires Content-Type: application/json */
    GP_BODY_UPLOAD /* multipart/form-data; the "file" part streams to disk */
} gp_body_kind_t;

typedef struct gp_route {
    const char *method;
    const char *pattern; /* '/'-separated segments; "{}" captures one segment */
    gp_body_kind_t body;
    /* "tasks:read", "tasks:write", "admin"; "" = any authenticated caller; NULL = public */
    const char *scope;
    gp_route_fn start;  /* the request is complete */
    gp_route_fn finish; /* resumed after the asynchronous step `start` began; NULL = none */
} gp_route_t;

typedef char gp_path_params_t[GP_PATH_PARAMS_MAX][GP_PATH_PARAM_LEN];

/* Surfaces (one file each); each array ends with a row whose method is NULL. */
extern const gp_route_t gp_routes_tasks[];
extern const gp_route_t gp_routes_events[];
extern const gp_route_t gp_routes_health[];
extern const gp_route_t gp_routes_assets[];
extern const gp_route_t gp_routes_accounts[];
extern const gp_route_t gp_routes_signin[];
extern const gp_route_t gp_routes_metrics[];
extern const gp_route_t gp_routes_stats[];
extern const gp_route_t gp_routes_dashboard[];
extern const gp_route_t gp_routes_workers[];
extern const gp_route_t gp_routes_replicate[];
extern const gp_route_t gp_routes_replicate_models[];
extern const gp_route_t gp_routes_replicate_stream[];
extern const gp_route_t gp_routes_openapi[];
extern const gp_route_t gp_routes_docs[];
extern const gp_route_t gp_routes_providers[];
extern const gp_route_t gp_routes_results[];

/* Every surface's rows, in the order they are tried: returns the surfaces (each a NULL-ended
 * array) and their count in *n (the OpenAPI document and its tests walk them). */
const gp_route_t *const *gp_route_surfaces(size_t *n);
extern const gp_route_t gp_routes_webhooks[];

/* Matches path against pattern, capturing "{}" segments (NUL-terminated, shorter than
 * GP_PATH_PARAM_LEN) into params. One trailing slash is tolerated. params may be written
 * even when it returns false. */
bool gp_route_match(const char *pattern, const char *path, gp_path_params_t params);

/* The route for method and path (HEAD is served by a GET route), with its params copied into
 * params. NULL when none: allow (cap bytes) then holds the methods the path does take,
 * ", "-separated, or "" when no route has this path (404). params untouched on NULL. */
const gp_route_t *gp_route_find(const char *method, const char *path, gp_path_params_t params,
                                char *allow, size_t cap);

/* Percent-decodes the NUL-terminated s in place, like libmicrohttpd's default, except that
 * %00 stays as its three literal characters (a decoded NUL would cut a path short:
 * "/health%00x" matching "/health"). Returns the new length, never more than the old. */
size_t gp_path_unescape(char *s);

#endif
