/* log.c — text or JSON log lines on stderr. */
#include "core/log.h"
#include "core/util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gp_log_level_t g_min_level = GP_LOG_INFO;
static bool g_json;
static char g_worker[128]; /* "" = not a worker process */

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static _Thread_local const char *t_request_id;

void gp_log_set_request_id(const char *request_id)
{
    t_request_id = request_id && *request_id ? request_id : NULL;
}

const char *gp_log_request_id(void)
{
    return t_request_id;
}

void gp_log_setup(gp_log_level_t min_level, bool json)
{
    g_min_level = min_level;
    g_json = json;
}

void gp_log_set_worker(const char *worker_id)
{
    snprintf(g_worker, sizeof g_worker, "%s", worker_id ? worker_id : "");
}

int gp_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

bool gp_log_enabled(gp_log_level_t level)
{
    return level >= g_min_level;
}

void gp_logv(gp_log_level_t level, const char *task_id, const char *fmt, va_list ap)
{
    if (level < g_min_level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char ts[40];
    gp_format_time(gp_now_ms(), ts, sizeof ts);
    char line[4096];
    int n;
    if (g_json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level_names[level], "msg", msg);
        if (g_worker[0])
            json_object_set_new(o, "worker_id", json_string(g_worker));
        if (task_id)
            json_object_set_new(o, "task_id", json_string(task_id));
        if (t_request_id)
            json_object_set_new(o, "request_id", json_string(t_request_id));
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        n = snprintf(line, sizeof line, "%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        /* "worker=<id> task=<id> req=<id>" prefixes, each when known: grep for one to
         * follow a worker, a task or a request. */
        char prefix[320] = "";
        size_t pn = 0;
        if (g_worker[0])
            pn += (size_t)snprintf(prefix, sizeof prefix, "worker=%s ", g_worker);
        if (task_id && pn < sizeof prefix)
            pn += (size_t)snprintf(prefix + pn, sizeof prefix - pn, "task=%s ", task_id);
        if (t_request_id && pn < sizeof prefix)
            snprintf(prefix + pn, sizeof prefix - pn, "req=%s ", t_request_id);
        n = snprintf(line, sizeof line, "%s %-5s %s%s\n", ts, level_names[level], prefix, msg);
    }
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (len > 0 && line[len - 1] != '\n')
        line[len - 1] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}

void gp_log(gp_log_level_t level, const char *task_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(level, task_id, fmt, ap);
    va_end(ap);
}
