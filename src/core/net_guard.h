/*
 * net_guard.h — which addresses a client-supplied URL (a task input, a webhook) may not
 * reach: the one rule behind both SSRF guards (infra/http/client.c, runtime/webhooks.c).
 * Pure; any thread.
 */
#ifndef GP_NET_GUARD_H
#define GP_NET_GUARD_H

#include <stdbool.h>
#include <sys/socket.h>

/* True for loopback, RFC 1918, link-local (cloud metadata), CGNAT, unspecified, multicast
 * and reserved IPv4; IPv6 loopback, unspecified, link-local, site-local, unique-local,
 * multicast, and the IPv4-mapped or -compatible forms of the IPv4 ones; and any other
 * address family. */
bool gp_addr_is_private(const struct sockaddr *sa);

#endif
