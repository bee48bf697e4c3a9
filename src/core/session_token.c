/* session_token.c — signed cookie values (session_token.h). */
#include "core/session_token.h"
#include "core/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_B64_LEN 43 /* base64url of 32 bytes, no padding */

static void sign(const uint8_t secret[32], const char *data, size_t len, char out[SIG_B64_LEN + 1])
{
    uint8_t mac[GP_SHA256_LEN];
    gp_hmac_sha256(secret, 32, data, len, mac);
    gp_base64url(mac, sizeof mac, out);
}

int gp_token_sign(const uint8_t secret[32], const char *const *fields, size_t n, int64_t expires_s,
                  char *out, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr(fields[i], '.'))
            return -1;
        int w = snprintf(out + len, cap > len ? cap - len : 0, "%s.", fields[i]);
        if (w < 0 || len + (size_t)w >= cap)
            return -1;
        len += (size_t)w;
    }
    int w = snprintf(out + len, cap - len, "%lld", (long long)expires_s);
    if (w < 0 || len + (size_t)w + SIG_B64_LEN + 2 > cap)
        return -1;
    len += (size_t)w;
    char sig[SIG_B64_LEN + 1];
    sign(secret, out, len, sig);
    snprintf(out + len, cap - len, ".%s", sig);
    return 0;
}

int gp_token_check(const uint8_t secret[32], const char *value, size_t n, int64_t now_s,
                   char fields_out[][128], size_t field_cap)
{
    if (!value || n > GP_TOKEN_FIELDS_MAX)
        return -1;
    size_t vlen = strlen(value);
    if (vlen > GP_TOKEN_MAX || vlen < SIG_B64_LEN + 2)
        return -1;
    const char *dot = strrchr(value, '.');
    if (!dot || strlen(dot + 1) != SIG_B64_LEN)
        return -1;
    char want[SIG_B64_LEN + 1];
    sign(secret, value, (size_t)(dot - value), want);
    if (!gp_ct_equal(want, dot + 1, SIG_B64_LEN))
        return -1;
    /* signed, so well-formed by construction; parse defensively anyway */
    const char *p = value;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(p, '.');
        if (!e || e >= dot || (size_t)(e - p) >= field_cap)
            return -1;
        memcpy(fields_out[i], p, (size_t)(e - p));
        fields_out[i][e - p] = '\0';
        p = e + 1;
    }
    char *end = NULL;
    long long exp = strtoll(p, &end, 10);
    if (end != dot || exp <= 0)
        return -1;
    return now_s >= exp ? -2 : 0;
}

void gp_token_derive_secret(const uint8_t link_secret[32], uint8_t out[32])
{
    static const char label[] = "genpulse browser session v1";
    gp_hmac_sha256(link_secret, 32, label, sizeof label - 1, out);
}
