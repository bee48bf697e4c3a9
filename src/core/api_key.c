/*
 * api_key.c — API keys, scopes, Bearer credentials and durations (see api_key.h).
 *
 * Keys: the 32 random characters come from RAND_bytes by rejection sampling (a byte is used
 * only when it is below 248 = 4·62, then taken mod 62), so every character is uniform. The
 * CRC-32 is written out here (the reflected 0xEDB88320 polynomial, as zlib and PNG use) so
 * that core/ does not depend on zlib being linked by chance; it runs over 35 bytes per check.
 */
#include "core/api_key.h"
#include "core/crypto.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define KEY_BODY_LEN (GP_API_KEY_PREFIX_LEN + GP_API_KEY_RANDOM_LEN)

static bool is_b62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static uint32_t crc32_zlib(const char *data, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned char)data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

/* 62^6 > 2^32, so six digits hold any CRC. */
static void checksum_b62(const char *body, char out[GP_API_KEY_CHECK_LEN])
{
    uint32_t v = crc32_zlib(body, KEY_BODY_LEN);
    for (int i = GP_API_KEY_CHECK_LEN - 1; i >= 0; i--) {
        out[i] = B62[v % 62];
        v /= 62;
    }
}

int gp_api_key_assemble(const char random[GP_API_KEY_RANDOM_LEN], char out[GP_API_KEY_LEN + 1])
{
    for (size_t i = 0; i < GP_API_KEY_RANDOM_LEN; i++)
        if (!is_b62(random[i]))
            return -1;
    memcpy(out, GP_API_KEY_PREFIX, GP_API_KEY_PREFIX_LEN);
    memcpy(out + GP_API_KEY_PREFIX_LEN, random, GP_API_KEY_RANDOM_LEN);
    checksum_b62(out, out + KEY_BODY_LEN);
    out[GP_API_KEY_LEN] = '\0';
    return 0;
}

int gp_api_key_generate(char out[GP_API_KEY_LEN + 1])
{
    char body[GP_API_KEY_RANDOM_LEN];
    unsigned char buf[48]; /* one draw nearly always suffices: 97% of bytes are accepted */
    size_t n = 0;
    while (n < sizeof body && RAND_bytes(buf, (int)sizeof buf) == 1)
        for (size_t i = 0; i < sizeof buf && n < sizeof body; i++)
            if (buf[i] < 248)
                body[n++] = B62[buf[i] % 62];
    int rc = n < sizeof body ? -1 : gp_api_key_assemble(body, out);
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(body, sizeof body);
    return rc;
}

bool gp_api_key_well_formed(const char *s)
{
    if (!s || strnlen(s, GP_API_KEY_LEN + 1) != GP_API_KEY_LEN)
        return false;
    if (memcmp(s, GP_API_KEY_PREFIX, GP_API_KEY_PREFIX_LEN) != 0)
        return false;
    for (size_t i = GP_API_KEY_PREFIX_LEN; i < GP_API_KEY_LEN; i++)
        if (!is_b62(s[i]))
            return false;
    char check[GP_API_KEY_CHECK_LEN];
    checksum_b62(s, check);
    return memcmp(check, s + KEY_BODY_LEN, sizeof check) == 0;
}

void gp_api_key_hash(const char *key, char out[65])
{
    gp_sha256_hex(key, strlen(key), out);
}

void gp_api_key_prefix(const char *key, char out[GP_API_KEY_DISPLAY_CAP])
{
    size_t n = key ? strnlen(key, GP_API_KEY_DISPLAY_LEN) : 0;
    if (n)
        memcpy(out, key, n);
    out[n] = '\0';
}

/* ---- scopes ---- */

/* Canonical order: gp_scopes_format writes them in this order. */
static const struct {
    const char *name;
    unsigned bit;
} SCOPES[] = {
    {"tasks:read", GP_SCOPE_TASKS_READ},
    {"tasks:write", GP_SCOPE_TASKS_WRITE},
    {"admin", GP_SCOPE_ADMIN},
};
#define N_SCOPES (sizeof SCOPES / sizeof SCOPES[0])

static unsigned scope_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SCOPES; i++)
        if (strlen(SCOPES[i].name) == len && memcmp(SCOPES[i].name, name, len) == 0)
            return SCOPES[i].bit;
    return 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The bad item for a message: at most 40 bytes, unprintable bytes shown as '?'. */
static void quote_item(const char *item, size_t len, char out[48])
{
    size_t n = len < 40 ? len : 40;
    for (size_t i = 0; i < n; i++)
        out[i] = item[i] >= 0x20 && item[i] < 0x7f ? item[i] : '?';
    memcpy(out + n, len > n ? "..." : "", len > n ? 4 : 1);
}

static int scopes_fail(char *why, size_t cap, size_t index, const char *item, size_t len)
{
    if (!why || cap == 0)
        return -1;
    if (len == 0) {
        snprintf(why, cap, "scope %zu is empty", index);
        return -1;
    }
    char q[48], known[GP_SCOPES_TEXT_CAP];
    quote_item(item, len, q);
    gp_scopes_format(GP_SCOPE_ALL, known, sizeof known);
    snprintf(why, cap, "unknown scope \"%s\" (known: %s)", q, known);
    return -1;
}

int gp_scopes_parse(const char *csv, unsigned *out, char *why, size_t cap)
{
    if (!csv)
        return scopes_fail(why, cap, 1, "", 0);
    unsigned set = 0;
    size_t index = 1;
    for (const char *p = csv;; index++) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && is_ows(*a))
            a++;
        while (b > a && is_ows(b[-1]))
            b--;
        unsigned bit = scope_bit(a, (size_t)(b - a));
        if (!bit)
            return scopes_fail(why, cap, index, a, (size_t)(b - a));
        set |= bit;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = set;
    return 0;
}

void gp_scopes_format(unsigned set, char *out, size_t cap)
{
    char buf[GP_SCOPES_TEXT_CAP];
    size_t n = 0;
    for (size_t i = 0; i < N_SCOPES; i++) {
        if (!(set & SCOPES[i].bit))
            continue;
        size_t len = strlen(SCOPES[i].name);
        if (n)
            buf[n++] = ',';
        memcpy(buf + n, SCOPES[i].name, len);
        n += len;
    }
    buf[n] = '\0';
    if (cap)
        snprintf(out, cap, "%s", buf);
}

bool gp_scopes_allow(unsigned held, const char *required_scope_name)
{
    if (!required_scope_name)
        return true;
    unsigned bit = scope_bit(required_scope_name, strlen(required_scope_name));
    return bit && ((held & bit) || (held & GP_SCOPE_ADMIN));
}

/* ---- Authorization: Bearer ---- */

static bool is_b64token_char(char c)
{
    return is_b62(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* Is the first word of p (up to SP, HTAB or end) "bearer", in any case? */
static bool scheme_is_bearer(const char *p, const char *end)
{
    static const char want[] = "bearer";
    for (size_t i = 0; i < 6; i++, p++) {
        if (p >= end)
            return false;
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p + ('a' - 'A')) : *p;
        if (c != want[i])
            return false;
    }
    return p == end || is_ows(*p);
}

int gp_bearer_parse(const char *header_value, const char **token, size_t *len)
{
    if (!header_value)
        return GP_BEARER_NOT_BEARER;
    size_t n = strnlen(header_value, GP_BEARER_MAX + 1);
    const char *p = header_value, *end = header_value + n;
    while (p < end && is_ows(*p))
        p++;
    if (!scheme_is_bearer(p, end))
        return GP_BEARER_NOT_BEARER;
    if (n > GP_BEARER_MAX)
        return GP_BEARER_MALFORMED;
    p += 6;
    if (p == end || *p != ' ')
        return GP_BEARER_MALFORMED;
    while (p < end && *p == ' ')
        p++;
    const char *t = p;
    while (p < end && is_b64token_char(*p))
        p++;
    if (p == t)
        return GP_BEARER_MALFORMED;
    while (p < end && *p == '=')
        p++;
    const char *t_end = p;
    while (p < end && is_ows(*p))
        p++;
    if (p != end)
        return GP_BEARER_MALFORMED;
    *token = t;
    *len = (size_t)(t_end - t);
    return GP_BEARER_OK;
}

/* ---- durations ---- */

static const struct {
    char unit;
    int64_t ms;
} UNITS[] = {
    {'s', 1000LL},     {'m', 60000LL},        {'h', 3600000LL},
    {'d', 86400000LL}, {'w', 7 * 86400000LL}, {'y', 365 * 86400000LL},
};

int gp_duration_parse(const char *s, int64_t *ms)
{
    if (!s)
        return -1;
    int64_t n = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (n > GP_DURATION_MAX_MS) /* already too long; stop before it could overflow */
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    if (i == 0 || n == 0 || s[i] == '\0' || s[i + 1] != '\0')
        return -1;
    for (size_t u = 0; u < sizeof UNITS / sizeof UNITS[0]; u++) {
        if (UNITS[u].unit != s[i])
            continue;
        if (n > GP_DURATION_MAX_MS / UNITS[u].ms)
            return -1;
        *ms = n * UNITS[u].ms;
        return 0;
    }
    return -1;
}
