/*
 * log.h — one line per event on stderr, as text or JSON, with the task id when there is one.
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef GP_LOG_H
#define GP_LOG_H

#include <genpulse/handler.h>
#include <stdarg.h>

/* Set once at start, before threads exist. */
void gp_log_setup(gp_log_level_t min_level, bool json);
/* A worker process's id: every line then carries "worker=<id>" (JSON: "worker_id"). Set
 * once at start, before threads exist; NULL or "" = none. */
void gp_log_set_worker(const char *worker_id);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int gp_log_level_parse(const char *s);
bool gp_log_enabled(gp_log_level_t level);

/* The request id this thread is working for (NULL = none): every line it logs carries it
 * (req=… / "request_id"). The string is borrowed until the next call; clear it (NULL) before
 * the thread moves on to other work. */
void gp_log_set_request_id(const char *request_id);
const char *gp_log_request_id(void);

/* task_id may be NULL. */
void gp_log(gp_log_level_t level, const char *task_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gp_logv(gp_log_level_t level, const char *task_id, const char *fmt, va_list ap);

#define GP_DEBUG(...) gp_log(GP_LOG_DEBUG, NULL, __VA_ARGS__)
#define GP_INFO(...) gp_log(GP_LOG_INFO, NULL, __VA_ARGS__)
#define GP_WARN(...) gp_log(GP_LOG_WARN, NULL, __VA_ARGS__)
#define GP_ERROR(...) gp_log(GP_LOG_ERROR, NULL, __VA_ARGS__)

#endif
