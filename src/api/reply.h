/*
 * reply.h — what every route answers with: JSON and text responses, the JSON error body,
 * request body parsing, and a task as clients see it (with fresh asset links).
 *
 * Threading: call on the thread that owns the request (an MHD event thread, in a route's
 * start or finish hook). Every gp_send_* returns what the MHD access handler must return.
 */
#ifndef GP_API_REPLY_H
#define GP_API_REPLY_H

#include "api/http_internal.h"

#include <jansson.h>

/* Every response goes out through this: it adds the CORS headers an allowed Origin gets and
 * X-Request-Id (the thread's gp_log_request_id), and remembers its status for
 * gp_reply_status. */
enum MHD_Result gp_queue_response(struct MHD_Connection *c, unsigned status,
                                  struct MHD_Response *resp);
/* server.c brackets each call into a request's hooks: begin forgets the last status, status
 * is the one queued on this thread since (0 = none). */
void gp_reply_begin(void);
unsigned gp_reply_status(void);
/* The answer to a CORS preflight (OPTIONS with Origin): 204 with the allowed methods and
 * headers, or 403 for an origin not in --cors-origins. */
enum MHD_Result gp_send_preflight(struct MHD_Connection *c);
/* Sets the allowed origins (comma-separated, "*" = any; NULL/"" = no CORS). Call before the
 * daemon starts. */
void gp_reply_set_cors(const char *origins);

/* Queues body (len bytes, freed by MHD) with Cache-Control: no-store; allow may be NULL. */
enum MHD_Result gp_send_text(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *content_type, const char *allow);
/* Queues body (stolen) as compact JSON in insertion order; one optional extra header. */
enum MHD_Result gp_send_json(struct MHD_Connection *c, unsigned status, json_t *body,
                             const char *extra_header, const char *extra_value);
/* The same with any number of headers: name, value, ..., NULL. */
enum MHD_Result gp_send_json_headers(struct MHD_Connection *c, unsigned status, json_t *body,
                                     const char *const *headers);
/* {"error":{code,message,details}} with err's HTTP status. err: a gp_err_t; message NULL =
 * err's default; details stolen (NULL = []); allow (NULL = none) becomes the Allow header. */
enum MHD_Result gp_send_error_allow(struct MHD_Connection *c, int err, const char *message,
                                    json_t *details, const char *allow);
enum MHD_Result gp_send_error(struct MHD_Connection *c, int err, const char *message,
                              json_t *details);
/* The same with error.code overridden by code (NULL = err's) and one extra header (or NULL). */
enum MHD_Result gp_send_error_full(struct MHD_Connection *c, int err, const char *code,
                                   const char *message, json_t *details, const char *header,
                                   const char *value);
/* The error style of the requests this thread serves: false = GenPulse's {"error": …}, true =
 * RFC 9457 problem+json as Replicate sends it ({"title", "detail", "status"}, and
 * "invalid_fields" for 422). server.c sets it per request call from the path (the Replicate
 * routes); every gp_send_error* and the gateway's own refusals follow it. */
void gp_reply_set_problem(bool on);
bool gp_reply_problem(void);
/* The error body in this thread's style (new reference; details stolen, NULL = []), and
 * its Content-Type in *content_type (static). */
json_t *gp_error_body(int err, const char *code, const char *message, json_t *details,
                      const char **content_type);

/* [{"field": field, "message": message}], new reference. */
json_t *gp_one_detail(const char *field, const char *message);

/* A request header or query argument, NULL when absent; valid for the request's life. */
const char *gp_req_header(request_t *r, const char *name);
const char *gp_req_query(request_t *r, const char *name);

/* True for "application/json" with optional parameters, case-insensitive. */
bool gp_is_json_content_type(const char *ct);
/* Parses r's JSON body (new reference); on failure queues the 400 into *ret, returns NULL. */
json_t *gp_parse_body(request_t *r, enum MHD_Result *ret);

/* A link to a stored object as this gateway serves it: a fresh presigned URL for object
 * stores (stored links expire), else this gateway's /files/ route. Caller frees. */
char *gp_object_link(gp_http_t *h, const char *owner, const char *name);
/* The client-facing task (new reference), with hot state and fresh asset links. */
json_t *gp_task_json(gp_http_t *h, const gp_task_t *t);

#endif
