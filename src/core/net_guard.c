/* net_guard.c — the private-address rule of the SSRF guards (see net_guard.h). */
#include "core/net_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* a: an IPv4 address in host order. */
static bool v4_private(uint32_t a)
{
    return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 24) == 0 || (a >> 20) == (172u << 4 | 1) ||
           (a >> 16) == (192u << 8 | 168) || (a >> 16) == (169u << 8 | 254) ||
           (a >> 22) == (100u << 2 | 1) || a >= 0xE0000000u;
}

bool gp_addr_is_private(const struct sockaddr *sa)
{
    /* Copied out rather than read through casts: the compiler may not assume a struct
     * sockaddr and a struct sockaddr_in6 alias (with -O2 it once did not). */
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        return v4_private(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        const struct in6_addr *a = &in6.sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
            uint32_t v4;
            memcpy(&v4, a->s6_addr + 12, 4);
            return v4_private(ntohl(v4));
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_SITELOCAL(a) || (a->s6_addr[0] & 0xFE) == 0xFC ||
               IN6_IS_ADDR_MULTICAST(a);
    }
    return true;
}
