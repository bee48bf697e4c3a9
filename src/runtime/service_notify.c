/*
 * service_notify.c — sd_notify(3) from libsystemd (see service_notify.h).
 */
#include "runtime/service_notify.h"
#include "core/log.h"
#include "core/util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

struct gp_service_watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    int64_t every_ms; /* half the watchdog interval, as sd_watchdog_enabled(3) advises */
    bool (*probe)(void *arg);
    void *arg;
};

void gp_service_ready(const char *status)
{
    char msg[320];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status ? status : "serving");
    sd_notify(0, msg);
}

void gp_service_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
}

static void *watchdog_main(void *arg)
{
    gp_service_watchdog_t *w = arg;
    pthread_setname_np(pthread_self(), "gp-sd-watchdog");
    bool warned = false;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        pthread_mutex_unlock(&w->lock);
        bool alive = w->probe(w->arg);
        if (alive)
            sd_notify(0, "WATCHDOG=1");
        else if (!warned)
            GP_WARN("watchdog: the process made no progress; keep-alives to systemd stop");
        warned = !alive;
        pthread_mutex_lock(&w->lock);
        struct timespec ts = gp_deadline_in(CLOCK_REALTIME, w->every_ms);
        if (!w->stop)
            pthread_cond_timedwait(&w->wake, &w->lock, &ts);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

gp_service_watchdog_t *gp_service_watchdog_start(bool (*probe)(void *arg), void *arg)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return NULL;
    gp_service_watchdog_t *w = gp_xcalloc(1, sizeof *w);
    w->every_ms = (int64_t)(usec / 2000);
    if (w->every_ms < 1)
        w->every_ms = 1;
    w->probe = probe;
    w->arg = arg;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(w);
        return NULL;
    }
    GP_INFO("watchdog: keep-alive to systemd every %lld ms", (long long)w->every_ms);
    return w;
}

void gp_service_watchdog_stop(gp_service_watchdog_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
