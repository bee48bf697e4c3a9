/*
 * admin.c — the small operations listener of processes without the public API
 * (`--admin-port`, off by default): GET /health, /ready and /metrics for probes and
 * Prometheus, nothing else, no authentication (bind it to a private address).
 *
 * DESIGN: a thread per connection with a low connection cap, not the gateway's event
 * loop: /ready blocks on round trips, probes are few, and this must keep answering when the
 * rest of the process is busy.
 */
#include "api/admin.h"
#include "api/http_internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "runtime/readiness.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_MAX_CONNECTIONS 16
#define ADMIN_TIMEOUT_S 10

struct gp_admin_http {
    struct MHD_Daemon *daemon;
    gp_runtime_t *rt;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *text,
                             const char *type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    return reply(c, status, text, "application/json");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload;
    gp_admin_http_t *a = cls;
    if (!*con_cls) { /* first call: headers only */
        *con_cls = a;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* no route takes a body: drop it */
        return MHD_YES;
    }
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, "/health") && get) {
        return reply_json(c, 200, gp_liveness(a->rt, GP_HTTP_VERSION));
    }
    if (!strcmp(url, "/ready") && get) {
        bool ok = false;
        json_t *body = gp_readiness(a->rt, &ok);
        return reply_json(c, ok ? 200 : 503, body);
    }
    if (!strcmp(url, "/metrics") && get) {
        size_t len = 0;
        char *text = gp_metrics_text(a->rt, &len);
        return reply(c, 200, text, "text/plain; version=0.0.4; charset=utf-8");
    }
    bool known = !strcmp(url, "/health") || !strcmp(url, "/ready") || !strcmp(url, "/metrics");
    json_t *err = json_pack("{s:{s:s, s:s, s:[]}}", "error", "code",
                            known ? "method_not_allowed" : "not_found", "message",
                            known ? "use GET" : "this listener serves /health, /ready and /metrics",
                            "details");
    return reply_json(c, known ? 405 : 404, err);
}

gp_admin_http_t *gp_admin_http_start(gp_runtime_t *rt, char *err, size_t cap)
{
    const gp_settings_t *s = rt->settings;
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, s->admin_host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)s->admin_port);
    } else if (inet_pton(AF_INET6, s->admin_host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)s->admin_port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, cap, "--admin-host \"%s\" is not an IPv4 or IPv6 address", s->admin_host);
        return NULL;
    }
    gp_admin_http_t *a = gp_xcalloc(1, sizeof *a);
    a->rt = rt;
    a->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_TIMEOUT_S, MHD_OPTION_END);
    if (!a->daemon) {
        snprintf(err, cap, "cannot listen on %s:%lld (admin port)", s->admin_host,
                 (long long)s->admin_port);
        free(a);
        return NULL;
    }
    GP_INFO("admin listener on http://%s:%lld (/health, /ready, /metrics)", s->admin_host,
            (long long)s->admin_port);
    return a;
}

void gp_admin_http_stop(gp_admin_http_t *a)
{
    if (!a)
        return;
    MHD_stop_daemon(a->daemon);
    free(a);
}
