/*
 * test_identity.c — API keys (format, checksum, hash, display prefix), scopes, the Bearer
 * header, --expires durations, signed links and the link secret file.
 *
 * The reference keys below were made independently with Python's zlib.crc32, and the hash
 * vector with `printf %s KEY | sha256sum`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/api_key.h"
#include "core/crypto.h"
#include "core/signed_link.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- API keys ---- */

static const char *const REF_KEYS[] = {
    "gp_0123456789ABCDEFGHIJKLMNOPQRSTUV0kO87M",
    "gp_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz2NxnST",
    "gp_09AZaz09AZaz09AZaz09AZaz09AZaz090CLsMZ",
    "gp_000000000000000000000000000000003sp5jv",
};
#define N_REF (sizeof REF_KEYS / sizeof REF_KEYS[0])
#define B62 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

#define N_GEN 10000

static void test_key_generate_many(void **state)
{
    (void)state;
    char(*keys)[GP_API_KEY_LEN + 1] = calloc(N_GEN, sizeof *keys);
    assert_non_null(keys);
    size_t counts[256] = {0};
    for (size_t i = 0; i < N_GEN; i++) {
        memset(keys[i], 'X', sizeof keys[i]);
        assert_int_equal(gp_api_key_generate(keys[i]), 0);
        assert_int_equal(strlen(keys[i]), GP_API_KEY_LEN);
        assert_int_equal(GP_API_KEY_LEN, 41);
        assert_memory_equal(keys[i], "gp_", 3);
        assert_true(gp_api_key_well_formed(keys[i]));
        for (size_t k = GP_API_KEY_PREFIX_LEN; k < GP_API_KEY_PREFIX_LEN + 32; k++)
            counts[(unsigned char)keys[i][k]]++;
    }
    qsort(keys, N_GEN, sizeof *keys, cmp_key);
    for (size_t i = 1; i < N_GEN; i++)
        assert_string_not_equal(keys[i - 1], keys[i]);
    /* Uniform characters: 320,000 draws give about 5,161 of each (σ ≈ 71). A modulo bias
     * (256 mod 62 = 8) would put the first 8 characters 25% above the rest. */
    const double expect = N_GEN * 32.0 / 62;
    size_t total = 0;
    for (const char *c = B62; *c; c++) {
        double n = (double)counts[(unsigned char)*c];
        assert_true(n > expect * 0.9 && n < expect * 1.1);
        total += counts[(unsigned char)*c];
    }
    assert_int_equal(total, N_GEN * 32);
    free(keys);
}

static void test_key_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_REF; i++) {
        assert_true(gp_api_key_well_formed(REF_KEYS[i]));
        char k[GP_API_KEY_LEN + 1];
        assert_int_equal(gp_api_key_assemble(REF_KEYS[i] + 3, k), 0);
        assert_string_equal(k, REF_KEYS[i]);
    }
}

static void test_key_flip(void **state)
{
    (void)state;
    /* Every single-character change anywhere — prefix, random part, checksum — is caught:
     * CRC-32 detects every error burst up to 32 bits, and the checksum digits are a
     * bijection. */
    for (size_t r = 0; r < N_REF; r++) {
        for (size_t i = 0; i < GP_API_KEY_LEN; i++) {
            char k[GP_API_KEY_LEN + 1];
            for (const char *c = B62 "_-"; *c; c++) {
                memcpy(k, REF_KEYS[r], sizeof k);
                if (k[i] == *c)
                    continue;
                k[i] = *c;
                assert_false(gp_api_key_well_formed(k));
            }
        }
    }
    /* two neighbours swapped */
    char k[GP_API_KEY_LEN + 1];
    memcpy(k, REF_KEYS[0], sizeof k);
    char t = k[10];
    k[10] = k[11];
    k[11] = t;
    assert_false(gp_api_key_well_formed(k));
}

static void test_key_alphabet_boundaries(void **state)
{
    (void)state;
    /* 0 9 A Z a z are in; their ASCII neighbours / : @ [ ` { and bytes >= 0x80 are out. */
    char random[GP_API_KEY_RANDOM_LEN], k[GP_API_KEY_LEN + 1];
    memcpy(random, "09AZaz09AZaz09AZaz09AZaz09AZaz09", sizeof random);
    assert_int_equal(gp_api_key_assemble(random, k), 0);
    assert_string_equal(k, REF_KEYS[2]);
    static const char outside[] = {'/', ':', '@', '[', '`', '{', ' ', '\x7f', '\x80', '\xff'};
    for (size_t o = 0; o < sizeof outside; o++) {
        for (size_t pos = 0; pos < GP_API_KEY_RANDOM_LEN; pos += 7) {
            memcpy(random, "09AZaz09AZaz09AZaz09AZaz09AZaz09", sizeof random);
            random[pos] = outside[o];
            memset(k, 'Q', sizeof k);
            assert_int_equal(gp_api_key_assemble(random, k), -1);
            assert_int_equal(k[0], 'Q'); /* untouched */
        }
        /* in a key whose checksum would otherwise match the altered body */
        memcpy(k, REF_KEYS[2], sizeof k);
        for (size_t pos = 3; pos < GP_API_KEY_LEN; pos++) {
            char save = k[pos];
            k[pos] = outside[o];
            assert_false(gp_api_key_well_formed(k));
            k[pos] = save;
        }
    }
}

static void test_key_shape(void **state)
{
    (void)state;
    char k[64];
    assert_false(gp_api_key_well_formed(NULL));
    assert_false(gp_api_key_well_formed(""));
    assert_false(gp_api_key_well_formed("gp_"));
    snprintf(k, sizeof k, "%s", REF_KEYS[0]);
    k[0] = 'G';
    assert_false(gp_api_key_well_formed(k));
    k[0] = 'g';
    k[2] = '-';
    assert_false(gp_api_key_well_formed(k));
    snprintf(k, sizeof k, "%sA", REF_KEYS[0]); /* too long */
    assert_false(gp_api_key_well_formed(k));
    snprintf(k, sizeof k, "%.40s", REF_KEYS[0]); /* too short */
    assert_false(gp_api_key_well_formed(k));
    snprintf(k, sizeof k, " %s", REF_KEYS[0]);
    assert_false(gp_api_key_well_formed(k));
    snprintf(k, sizeof k, "%s\n", REF_KEYS[0]);
    assert_false(gp_api_key_well_formed(k));
}

static void test_key_hash_prefix(void **state)
{
    (void)state;
    char h[65];
    gp_api_key_hash(REF_KEYS[0], h);
    assert_string_equal(h, "76af36046176b3b1df719d951e21f17b3f89239c509adad04fae613cc7723499");
    char p[GP_API_KEY_DISPLAY_CAP];
    gp_api_key_prefix(REF_KEYS[0], p);
    assert_string_equal(p, "gp_01234567");
    assert_int_equal(strlen(p), GP_API_KEY_DISPLAY_LEN);
    gp_api_key_prefix("gp_ab", p);
    assert_string_equal(p, "gp_ab");
    gp_api_key_prefix(NULL, p);
    assert_string_equal(p, "");
}

/* ---- scopes ---- */

static void test_scopes_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned want;
    } ok[] = {
        {"tasks:read", GP_SCOPE_TASKS_READ},
        {"tasks:write", GP_SCOPE_TASKS_WRITE},
        {"admin", GP_SCOPE_ADMIN},
        {"tasks:read,tasks:write,admin", GP_SCOPE_ALL},
        {"admin,tasks:read", GP_SCOPE_ADMIN | GP_SCOPE_TASKS_READ},
        {" tasks:read , tasks:write ", GP_SCOPE_TASKS_READ | GP_SCOPE_TASKS_WRITE},
        {"\ttasks:read\t", GP_SCOPE_TASKS_READ},
        {"admin,admin,admin", GP_SCOPE_ADMIN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        unsigned set = 99;
        char why[128] = "";
        assert_int_equal(gp_scopes_parse(ok[i].in, &set, why, sizeof why), 0);
        assert_int_equal(set, ok[i].want);
    }
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "scope 1 is empty"},
        {"   ", "scope 1 is empty"},
        {",admin", "scope 1 is empty"},
        {"admin,", "scope 2 is empty"},
        {"admin,,tasks:read", "scope 2 is empty"},
        {"admin, ,tasks:read", "scope 2 is empty"},
        {"Admin", "unknown scope \"Admin\" (known: tasks:read,tasks:write,admin)"},
        {"tasks:read,tasks:delete",
         "unknown scope \"tasks:delete\" (known: tasks:read,tasks:write,admin)"},
        {"tasks: read", "unknown scope \"tasks: read\" (known: tasks:read,tasks:write,admin)"},
        {"tasks", "unknown scope \"tasks\" (known: tasks:read,tasks:write,admin)"},
        {"admin\n", "unknown scope \"admin?\" (known: tasks:read,tasks:write,admin)"},
        {"admin;tasks:read",
         "unknown scope \"admin;tasks:read\" (known: tasks:read,tasks:write,admin)"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "unknown scope \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" (known: "
         "tasks:read,tasks:write,admin)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned set = 99;
        char why[128] = "";
        assert_int_equal(gp_scopes_parse(bad[i].in, &set, why, sizeof why), -1);
        assert_int_equal(set, 99);
        assert_string_equal(why, bad[i].why);
    }
    unsigned set = 99;
    assert_int_equal(gp_scopes_parse(NULL, &set, NULL, 0), -1);
    assert_int_equal(gp_scopes_parse("nope", &set, NULL, 0), -1);
    char tiny[8];
    assert_int_equal(gp_scopes_parse("nope", &set, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "unknown");
    assert_int_equal(set, 99);
}

static void test_scopes_format(void **state)
{
    (void)state;
    static const struct {
        unsigned set;
        const char *want;
    } rows[] = {
        {0, ""},
        {GP_SCOPE_TASKS_READ, "tasks:read"},
        {GP_SCOPE_TASKS_WRITE, "tasks:write"},
        {GP_SCOPE_ADMIN, "admin"},
        {GP_SCOPE_ADMIN | GP_SCOPE_TASKS_READ, "tasks:read,admin"},
        {GP_SCOPE_ALL, "tasks:read,tasks:write,admin"},
        {0xFFFFFFFFu, "tasks:read,tasks:write,admin"}, /* unknown bits dropped */
        {8, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[GP_SCOPES_TEXT_CAP];
        gp_scopes_format(rows[i].set, out, sizeof out);
        assert_string_equal(out, rows[i].want);
        /* and back */
        unsigned set = 0;
        if (*out) {
            assert_int_equal(gp_scopes_parse(out, &set, NULL, 0), 0);
            assert_int_equal(set, rows[i].set & GP_SCOPE_ALL);
        }
    }
    char small[6];
    gp_scopes_format(GP_SCOPE_ALL, small, sizeof small);
    assert_string_equal(small, "tasks");
    gp_scopes_format(GP_SCOPE_ALL, small, 0); /* writes nothing */
}

static void test_scopes_allow(void **state)
{
    (void)state;
    static const char *const names[] = {"tasks:read", "tasks:write", "admin", NULL, "bogus", ""};
    /* columns: names[]; rows: held sets */
    static const struct {
        unsigned held;
        bool allow[6];
    } rows[] = {
        {0, {false, false, false, true, false, false}},
        {GP_SCOPE_TASKS_READ, {true, false, false, true, false, false}},
        {GP_SCOPE_TASKS_WRITE, {false, true, false, true, false, false}}, /* write ⇏ read */
        {GP_SCOPE_TASKS_READ | GP_SCOPE_TASKS_WRITE, {true, true, false, true, false, false}},
        {GP_SCOPE_ADMIN, {true, true, true, true, false, false}},
        {GP_SCOPE_ALL, {true, true, true, true, false, false}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (size_t c = 0; c < 6; c++)
            assert_int_equal(gp_scopes_allow(rows[r].held, names[c]), rows[r].allow[c]);
}

/* ---- Authorization: Bearer ---- */

static void test_bearer_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        const char *token; /* when rc == 0 */
    } rows[] = {
        {"Bearer abc", GP_BEARER_OK, "abc"},
        {"bearer abc", GP_BEARER_OK, "abc"},
        {"BEARER abc", GP_BEARER_OK, "abc"},
        {"bEaReR abc", GP_BEARER_OK, "abc"},
        {"Bearer    abc", GP_BEARER_OK, "abc"},
        {"Bearer abc  ", GP_BEARER_OK, "abc"},
        {"Bearer abc\t", GP_BEARER_OK, "abc"},
        {"  Bearer abc", GP_BEARER_OK, "abc"},
        {"Bearer gp_0123456789ABCDEFGHIJKLMNOPQRSTUV0kO87M", GP_BEARER_OK,
         "gp_0123456789ABCDEFGHIJKLMNOPQRSTUV0kO87M"},
        {"Bearer aZ09-._~+/", GP_BEARER_OK, "aZ09-._~+/"},
        {"Bearer abc=", GP_BEARER_OK, "abc="},
        {"Bearer abc==", GP_BEARER_OK, "abc=="},
        {"Bearer abc= ", GP_BEARER_OK, "abc="},
        {"Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", GP_BEARER_OK, "eyJhbGciOiJIUzI1NiJ9.e30.sig"},
        {"Bearer a", GP_BEARER_OK, "a"},
        /* other schemes */
        {NULL, GP_BEARER_NOT_BEARER, NULL},
        {"", GP_BEARER_NOT_BEARER, NULL},
        {"   ", GP_BEARER_NOT_BEARER, NULL},
        {"Basic dXNlcjpwYXNz", GP_BEARER_NOT_BEARER, NULL},
        {"Bearerabc", GP_BEARER_NOT_BEARER, NULL},
        {"Bear abc", GP_BEARER_NOT_BEARER, NULL},
        {"Bearer,abc", GP_BEARER_NOT_BEARER, NULL},
        {"gp_0123456789ABCDEFGHIJKLMNOPQRSTUV0kO87M", GP_BEARER_NOT_BEARER, NULL},
        {"Token abc", GP_BEARER_NOT_BEARER, NULL},
        /* malformed Bearer */
        {"Bearer", GP_BEARER_MALFORMED, NULL},
        {"Bearer ", GP_BEARER_MALFORMED, NULL},
        {"Bearer    ", GP_BEARER_MALFORMED, NULL},
        {"Bearer\tabc", GP_BEARER_MALFORMED, NULL}, /* only SP separates */
        {"Bearer \tabc", GP_BEARER_MALFORMED, NULL},
        {"Bearer abc def", GP_BEARER_MALFORMED, NULL},
        {"Bearer abc,def", GP_BEARER_MALFORMED, NULL},
        {"Bearer ab\"c", GP_BEARER_MALFORMED, NULL},
        {"Bearer ab%20c", GP_BEARER_MALFORMED, NULL},
        {"Bearer ab@c", GP_BEARER_MALFORMED, NULL},
        {"Bearer abc\r\n", GP_BEARER_MALFORMED, NULL},
        {"Bearer ab\xc3\xa9", GP_BEARER_MALFORMED, NULL},
        {"Bearer =", GP_BEARER_MALFORMED, NULL},
        {"Bearer ==abc", GP_BEARER_MALFORMED, NULL},
        {"Bearer ab=c", GP_BEARER_MALFORMED, NULL},
        {"Bearer abc=d=", GP_BEARER_MALFORMED, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *tok = "untouched";
        size_t len = 12345;
        int rc = gp_bearer_parse(rows[i].in, &tok, &len);
        if (rc != rows[i].rc)
            fail_msg("row %zu \"%s\": rc %d, want %d", i, rows[i].in ? rows[i].in : "(null)", rc,
                     rows[i].rc);
        if (rc == GP_BEARER_OK) {
            assert_int_equal(len, strlen(rows[i].token));
            assert_memory_equal(tok, rows[i].token, len);
            assert_true(tok >= rows[i].in && tok + len <= rows[i].in + strlen(rows[i].in));
        } else {
            assert_string_equal(tok, "untouched");
            assert_int_equal(len, 12345);
        }
    }
}

static void test_bearer_oversize(void **state)
{
    (void)state;
    char *v = malloc(GP_BEARER_MAX + 16);
    assert_non_null(v);
    /* exactly GP_BEARER_MAX bytes is fine */
    memcpy(v, "Bearer ", 7);
    memset(v + 7, 'a', GP_BEARER_MAX - 7);
    v[GP_BEARER_MAX] = '\0';
    const char *tok;
    size_t len;
    assert_int_equal(gp_bearer_parse(v, &tok, &len), GP_BEARER_OK);
    assert_int_equal(len, GP_BEARER_MAX - 7);
    /* one more is refused, and so is much more */
    v[GP_BEARER_MAX] = 'a';
    v[GP_BEARER_MAX + 1] = '\0';
    assert_int_equal(gp_bearer_parse(v, &tok, &len), GP_BEARER_MALFORMED);
    memset(v + GP_BEARER_MAX, 'a', 15);
    v[GP_BEARER_MAX + 15] = '\0';
    assert_int_equal(gp_bearer_parse(v, &tok, &len), GP_BEARER_MALFORMED);
    /* an oversize value of another scheme is still "not Bearer" */
    memcpy(v, "Basic  ", 7);
    assert_int_equal(gp_bearer_parse(v, &tok, &len), GP_BEARER_NOT_BEARER);
    free(v);
}

/* ---- durations ---- */

static void test_duration_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        int64_t ms;
    } rows[] = {
        {"1s", 0, 1000},
        {"3600s", 0, 3600 * 1000},
        {"90m", 0, 90 * 60 * 1000},
        {"12h", 0, 12 * 3600 * 1000LL},
        {"30d", 0, 30 * 86400000LL},
        {"2w", 0, 14 * 86400000LL},
        {"1y", 0, 365 * 86400000LL},
        {"10y", 0, GP_DURATION_MAX_MS},
        {"3650d", 0, GP_DURATION_MAX_MS},
        {"007d", 0, 7 * 86400000LL},
        {"315360000s", 0, GP_DURATION_MAX_MS},
        {"315360001s", -1, 0},
        {"11y", -1, 0},
        {"3651d", -1, 0},
        {"0s", -1, 0},
        {"0d", -1, 0},
        {"000h", -1, 0},
        {"-1d", -1, 0},
        {"+1d", -1, 0},
        {"", -1, 0},
        {"d", -1, 0},
        {"30", -1, 0},
        {"30D", -1, 0},
        {"30 d", -1, 0},
        {" 30d", -1, 0},
        {"30d ", -1, 0},
        {"30dd", -1, 0},
        {"1d12h", -1, 0},
        {"1.5h", -1, 0},
        {"30x", -1, 0},
        {"30ms", -1, 0},
        {"99999999999999999999999999s", -1, 0},
        {"9223372036854775807s", -1, 0},
        {"18446744073709551616d", -1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t ms = -7;
        int rc = gp_duration_parse(rows[i].in, &ms);
        if (rc != rows[i].rc)
            fail_msg("\"%s\": rc %d, want %d", rows[i].in, rc, rows[i].rc);
        assert_true(ms == (rc == 0 ? rows[i].ms : -7));
    }
    int64_t ms = -7;
    assert_int_equal(gp_duration_parse(NULL, &ms), -1);
    assert_true(ms == -7);
}

/* ---- signed links ---- */

static const uint8_t SECRET[32] = "0123456789abcdef0123456789abcdef";
#define T0 1767225600LL /* 2026-01-01T00:00:00Z */

/* Splits a link's "expires=…&signature=…" tail off into its two values (in place). */
static void split_link(char *link, const char *base, char **path, char **expires, char **sig)
{
    assert_memory_equal(link, base, strlen(base));
    *path = link + strlen(base);
    char *e = NULL; /* the last one: the path's own query may contain "expires=" */
    for (char *f = *path; (f = strstr(f, "expires=")); f++)
        e = f;
    assert_non_null(e);
    assert_true(e[-1] == '?' || e[-1] == '&');
    e[-1] = '\0';
    *expires = e + 8;
    char *s = strstr(*expires, "&signature=");
    assert_non_null(s);
    *s = '\0';
    *sig = s + 11;
}

static void test_link_round_trip(void **state)
{
    (void)state;
    const char *base = "https://gp.example.com";
    const char *path = "/files/0190b0a8-1c4e-7c3a-9d2f-3b1e5a7c9d01/image.png";
    char *link = gp_signed_link(SECRET, sizeof SECRET, base, path, T0 + 600);
    assert_non_null(link);
    assert_int_equal(strlen(link), strlen(base) + strlen(path) + strlen("?expires=1767226200") +
                                       strlen("&signature=") + GP_SIGNATURE_LEN);
    char *p, *e, *s;
    split_link(link, base, &p, &e, &s);
    assert_string_equal(p, path);
    assert_string_equal(e, "1767226200");
    assert_int_equal(strlen(s), GP_SIGNATURE_LEN);
    /* the signature is HMAC-SHA256 over "GET\n" path "\n" expires */
    char msg[256], want[GP_SIGNATURE_LEN + 1];
    uint8_t mac[32];
    int n = snprintf(msg, sizeof msg, "GET\n%s\n%s", path, e);
    gp_hmac_sha256(SECRET, sizeof SECRET, msg, (size_t)n, mac);
    gp_base64url(mac, sizeof mac, want);
    assert_string_equal(s, want);

    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0), GP_LINK_OK);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0 + 599), GP_LINK_OK);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0 + 600),
                     GP_LINK_EXPIRED);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0 + 86400),
                     GP_LINK_EXPIRED);
    /* the same value with leading zeros is the same instant */
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, "001767226200", s, T0),
                     GP_LINK_OK);
    free(link);

    /* relative link, longer secret */
    uint8_t long_secret[64];
    memset(long_secret, 7, sizeof long_secret);
    link = gp_signed_link(long_secret, sizeof long_secret, NULL, "/files/a/b", 0);
    assert_non_null(link);
    split_link(link, "", &p, &e, &s);
    assert_string_equal(p, "/files/a/b");
    assert_string_equal(e, "0");
    assert_int_equal(gp_signed_link_check(long_secret, sizeof long_secret, p, e, s, -1),
                     GP_LINK_OK);
    assert_int_equal(gp_signed_link_check(long_secret, sizeof long_secret, p, e, s, 0),
                     GP_LINK_EXPIRED);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, -1), GP_LINK_BAD);
    free(link);
}

static void test_link_tampered(void **state)
{
    (void)state;
    char *link = gp_signed_link(SECRET, sizeof SECRET, "", "/files/t1/a.png", T0 + 60);
    char *p, *e, *s;
    split_link(link, "", &p, &e, &s);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0), GP_LINK_OK);
    /* another path, another expiry, another secret */
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, "/files/t1/b.png", e, s, T0),
                     GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, "/files/t1/a.pn", e, s, T0),
                     GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, "/files/t2/a.png", e, s, T0),
                     GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, "1767225661", s, T0),
                     GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, "9999999999", s, T0),
                     GP_LINK_BAD);
    uint8_t other[32];
    memcpy(other, SECRET, sizeof other);
    other[31] ^= 1;
    assert_int_equal(gp_signed_link_check(other, sizeof other, p, e, s, T0), GP_LINK_BAD);
    /* every character of the signature */
    for (size_t i = 0; i < GP_SIGNATURE_LEN; i++) {
        char save = s[i];
        s[i] = save == 'A' ? 'B' : 'A';
        assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0), GP_LINK_BAD);
        s[i] = save;
    }
    /* a tampered link that has also expired says "bad", not "expired" */
    s[0] = s[0] == 'A' ? 'B' : 'A';
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0 + 3600), GP_LINK_BAD);
    free(link);
}

static void test_link_malformed(void **state)
{
    (void)state;
    char *link = gp_signed_link(SECRET, sizeof SECRET, "", "/files/t1/a.png", T0 + 60);
    char *p, *e, *s;
    split_link(link, "", &p, &e, &s);
    char sig[64];
    /* missing parts */
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, NULL, s, T0), GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, NULL, T0), GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, NULL, e, s, T0), GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(NULL, 32, p, e, s, T0), GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, "", s, T0), GP_LINK_BAD);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, "", T0), GP_LINK_BAD);
    /* short secret refused even with its own signature */
    assert_int_equal(gp_signed_link_check(SECRET, 31, p, e, s, T0), GP_LINK_BAD);
    /* non-decimal expires */
    static const char *const bad_expires[] = {
        "+1767225660",
        "-1767225660",
        " 1767225660",
        "1767225660 ",
        "1767225660\n",
        "0x69",
        "1767225660.0",
        "1e10",
        "１",
        "17672256６0",
        "99999999999999999999", /* > INT64_MAX */
        "9223372036854775808",
        "000000000000000000001767225660", /* > 20 digits */
    };
    for (size_t i = 0; i < sizeof bad_expires / sizeof bad_expires[0]; i++)
        assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, bad_expires[i], s, T0),
                         GP_LINK_BAD);
    /* 20 digits within int64 parse (and then fail the signature) */
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, "09223372036854775807", s, T0),
                     GP_LINK_BAD);
    /* signature of the wrong length */
    snprintf(sig, sizeof sig, "%.42s", s);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, sig, T0), GP_LINK_BAD);
    snprintf(sig, sizeof sig, "%s=", s);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, sig, T0), GP_LINK_BAD);
    /* paths that cannot be signed */
    static const char *const bad_paths[] = {"",
                                            "files/a",
                                            "/files/a b",
                                            "/files/a\n",
                                            "/files/a#x",
                                            "/files/\xc3\xa9",
                                            "/f?expires=1",
                                            "/f?a=1&signature=x",
                                            "/f?x&expires="};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        assert_null(gp_signed_link(SECRET, sizeof SECRET, "", bad_paths[i], T0));
        assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, bad_paths[i], e, s, T0),
                         GP_LINK_BAD);
    }
    char *huge = malloc(GP_LINK_PATH_MAX + 2);
    huge[0] = '/';
    memset(huge + 1, 'a', GP_LINK_PATH_MAX);
    huge[GP_LINK_PATH_MAX + 1] = '\0';
    assert_null(gp_signed_link(SECRET, sizeof SECRET, "", huge, T0));
    huge[GP_LINK_PATH_MAX] = '\0'; /* exactly the limit */
    char *ok = gp_signed_link(SECRET, sizeof SECRET, "", huge, T0);
    assert_non_null(ok);
    free(ok);
    free(huge);
    /* bad arguments to the signer */
    assert_null(gp_signed_link(SECRET, 31, "", "/files/a", T0));
    assert_null(gp_signed_link(NULL, 32, "", "/files/a", T0));
    assert_null(gp_signed_link(SECRET, sizeof SECRET, "", NULL, T0));
    assert_null(gp_signed_link(SECRET, sizeof SECRET, "", "/files/a", -1));
    free(link);
}

static void test_link_with_query(void **state)
{
    (void)state;
    const char *path = "/files/t1/a.png?download=1";
    char *link = gp_signed_link(SECRET, sizeof SECRET, "http://127.0.0.1:8080", path, T0 + 5);
    assert_non_null(link);
    assert_non_null(strstr(link, "/files/t1/a.png?download=1&expires=1767225605&signature="));
    assert_null(strstr(link, "?expires"));
    char *p, *e, *s;
    split_link(link, "http://127.0.0.1:8080", &p, &e, &s);
    assert_string_equal(p, path);
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0), GP_LINK_OK);
    /* the query is signed: without it, or changed, the link fails */
    assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, "/files/t1/a.png", e, s, T0),
                     GP_LINK_BAD);
    assert_int_equal(
        gp_signed_link_check(SECRET, sizeof SECRET, "/files/t1/a.png?download=0", e, s, T0),
        GP_LINK_BAD);
    free(link);
    /* names that merely contain a reserved one are fine */
    static const char *const fine[] = {"/f?myexpires=1", "/f?a=expires=1", "/f?signatures=2", "/f?",
                                       "/f?a&b"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        link = gp_signed_link(SECRET, sizeof SECRET, "", fine[i], T0 + 5);
        assert_non_null(link);
        split_link(link, "", &p, &e, &s);
        assert_string_equal(p, fine[i]);
        assert_int_equal(gp_signed_link_check(SECRET, sizeof SECRET, p, e, s, T0), GP_LINK_OK);
        free(link);
    }
}

/* ---- the secret file ---- */

static char *tmp_dir(void)
{
    char *d = strdup("/tmp/gp-test-identity-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void test_secret_parse_hex(void **state)
{
    (void)state;
    uint8_t s[32], want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (uint8_t)(i * 8 + 7);
    char hex[65];
    gp_hex(want, 32, hex);
    assert_int_equal(gp_secret_parse_hex(hex, s), 0);
    assert_memory_equal(s, want, 32);
    for (char *c = hex; *c; c++)
        if (*c >= 'a')
            *c = (char)(*c - 'a' + 'A');
    memset(s, 0, sizeof s);
    assert_int_equal(gp_secret_parse_hex(hex, s), 0);
    assert_memory_equal(s, want, 32);

    static const char *const bad[] = {
        NULL,
        "",
        "00",
        "000000000000000000000000000000000000000000000000000000000000000",   /* 63 */
        "00000000000000000000000000000000000000000000000000000000000000000", /* 65 */
        "000000000000000000000000000000000000000000000000000000000000000g",
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        " 000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(s, 0x5a, sizeof s);
        assert_int_equal(gp_secret_parse_hex(bad[i], s), -1);
        for (int k = 0; k < 32; k++)
            assert_int_equal(s[k], 0x5a);
    }
}

static void test_secret_create_load(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/link.secret", dir);
    uint8_t a[32], b[32];
    assert_int_equal(gp_secret_load_or_create(path, a), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    char hex[65];
    gp_hex(a, 32, hex);
    char want[80];
    snprintf(want, sizeof want, "%s\n", hex);
    assert_string_equal(read_text(path), want);
    assert_int_equal(dir_entries(dir), 1); /* no temporary file left */
    /* loaded again, the same */
    assert_int_equal(gp_secret_load_or_create(path, b), 0);
    assert_memory_equal(a, b, 32);
    /* a hand-written file without the newline, in upper case */
    write_text(path, "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff");
    assert_int_equal(gp_secret_load_or_create(path, b), 0);
    assert_int_equal(b[0], 0x00);
    assert_int_equal(b[10], 0xaa);
    assert_int_equal(b[31], 0xff);
    /* two secrets in two files differ */
    char path2[256];
    snprintf(path2, sizeof path2, "%s/other.secret", dir);
    assert_int_equal(gp_secret_load_or_create(path2, b), 0);
    assert_memory_not_equal(a, b, 32);
    unlink(path2);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void test_secret_corrupt(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/link.secret", dir);
    static const char *const corrupt[] = {
        "",
        "xyz\n",
        "000000000000000000000000000000000000000000000000000000000000000\n",
        "00000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000\n\n",
        "0000000000000000000000000000000000000000000000000000000000000000\r\n",
        " 0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000z\n",
    };
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        write_text(path, corrupt[i]);
        uint8_t s[32];
        memset(s, 0x5a, sizeof s);
        assert_int_equal(gp_secret_load_or_create(path, s), -EINVAL);
        assert_int_equal(s[0], 0x5a);
        assert_string_equal(read_text(path), corrupt[i]); /* never overwritten */
    }
    unlink(path);
    /* a directory where the file should be */
    assert_int_equal(mkdir(path, 0700), 0);
    uint8_t s[32];
    assert_int_equal(gp_secret_load_or_create(path, s), -EINVAL);
    rmdir(path);
    /* a directory that does not exist */
    snprintf(path, sizeof path, "%s/missing/link.secret", dir);
    assert_int_equal(gp_secret_load_or_create(path, s), -ENOENT);
    assert_int_equal(gp_secret_load_or_create("", s), -EINVAL);
    assert_int_equal(dir_entries(dir), 0);
    rmdir(dir);
    free(dir);
}

#define RACERS 6
#define ROUNDS 20

/* RACERS processes released at once on a missing file must all come back with the secret
 * that ends up in it. */
static void test_secret_race(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    for (int round = 0; round < ROUNDS; round++) {
        char path[256];
        snprintf(path, sizeof path, "%s/secret-%d", dir, round);
        int gate[2], results[2];
        assert_int_equal(pipe(gate), 0);
        assert_int_equal(pipe(results), 0);
        pid_t pids[RACERS];
        for (int i = 0; i < RACERS; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                close(gate[1]);
                close(results[0]);
                char c;
                while (read(gate[0], &c, 1) < 0 && errno == EINTR)
                    ;
                uint8_t rec[33];
                rec[0] = (uint8_t)(gp_secret_load_or_create(path, rec + 1) == 0);
                _exit(write(results[1], rec, sizeof rec) == (ssize_t)sizeof rec ? 0 : 1);
            }
        }
        close(gate[0]);
        close(results[1]);
        close(gate[1]); /* EOF releases every racer at once */
        uint8_t recs[RACERS][33];
        for (int i = 0; i < RACERS; i++) {
            size_t got = 0;
            while (got < sizeof recs[i]) {
                ssize_t r = read(results[0], (uint8_t *)recs[i] + got, sizeof recs[i] - got);
                assert_true(r > 0); /* records are written whole: 33 bytes < PIPE_BUF */
                got += (size_t)r;
            }
        }
        close(results[0]);
        for (int i = 0; i < RACERS; i++) {
            int st;
            assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        uint8_t file[32];
        assert_int_equal(gp_secret_load_or_create(path, file), 0);
        for (int i = 0; i < RACERS; i++) {
            assert_int_equal(recs[i][0], 1);
            assert_memory_equal(recs[i] + 1, file, 32);
        }
        assert_int_equal(dir_entries(dir), 1); /* every loser removed its temporary file */
        unlink(path);
    }
    rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_generate_many), cmocka_unit_test(test_key_reference),
        cmocka_unit_test(test_key_flip),          cmocka_unit_test(test_key_alphabet_boundaries),
        cmocka_unit_test(test_key_shape),         cmocka_unit_test(test_key_hash_prefix),
        cmocka_unit_test(test_scopes_parse),      cmocka_unit_test(test_scopes_format),
        cmocka_unit_test(test_scopes_allow),      cmocka_unit_test(test_bearer_parse),
        cmocka_unit_test(test_bearer_oversize),   cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_link_round_trip),   cmocka_unit_test(test_link_tampered),
        cmocka_unit_test(test_link_malformed),    cmocka_unit_test(test_link_with_query),
        cmocka_unit_test(test_secret_parse_hex),  cmocka_unit_test(test_secret_create_load),
        cmocka_unit_test(test_secret_corrupt),    cmocka_unit_test(test_secret_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
