/*
 * service_notify.h — systemd's service protocol (Type=notify): READY=1 once the process
 * serves, STOPPING=1 when it drains, and WATCHDOG=1 keep-alives while it proves it still
 * makes progress. Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op.
 *
 * Threading: ready/stopping from the main thread. The watchdog runs its own thread, which
 * calls probe(arg) before each keep-alive and skips the keep-alive when it returns false, so
 * a process whose loops are stuck is restarted by systemd (WatchdogSec=) instead of lingering.
 */
#ifndef GP_SERVICE_NOTIFY_H
#define GP_SERVICE_NOTIFY_H

#include <stdbool.h>

/* status: a one-line human description shown by `systemctl status` (may be NULL). */
void gp_service_ready(const char *status);
void gp_service_stopping(void);

typedef struct gp_service_watchdog gp_service_watchdog_t;
/* NULL when systemd asked for no watchdog (WATCHDOG_USEC unset or for another pid). */
gp_service_watchdog_t *gp_service_watchdog_start(bool (*probe)(void *arg), void *arg);
void gp_service_watchdog_stop(gp_service_watchdog_t *w);

#endif
