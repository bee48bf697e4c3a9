/*
 * test_kling_jwt.c — the Kling provider's HS256 JWT against tokens made independently.
 *
 * The expected tokens were computed with Python's standard library, not with our code:
 *
 *   import hmac, hashlib, base64, json
 *   b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
 *   def jwt(ak, sk, now):
 *       h = b(b'{"alg":"HS256","typ":"JWT"}')
 *       c = b(json.dumps({"iss": ak, "exp": now + 1800, "nbf": now - 5},
 *                        separators=(",", ":"), ensure_ascii=False).encode())
 *       s = b(hmac.new(sk.encode(), (h + "." + c).encode(), hashlib.sha256).digest())
 *       return h + "." + c + "." + s
 *
 * and the primitives (HMAC-SHA256 + base64url) are also checked against the HS256 example
 * token published on jwt.io (secret "your-256-bit-secret").
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "providers/kling.h"

#include <string.h>

static void test_jwt_matches_python(void **state)
{
    (void)state;
    char token[512];
    long n = gp_kling_jwt("AKexample123", "SKexample456", 1700000000, token, sizeof token);
    const char *expected =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJpc3MiOiJBS2V4YW1wbGUxMjMiLCJleHAiOjE3MDAwMDE4MDAsIm5iZiI6MTY5OTk5OTk5NX0."
        "IOvSox6tVveSaPOsVCq8Mk2vaiENJg53gYF0Ev2G26g";
    assert_string_equal(token, expected);
    assert_int_equal(n, (long)strlen(expected));
}

/* A key with JSON specials and UTF-8 must be escaped, not pasted, into the claims. */
static void test_jwt_escapes_the_issuer(void **state)
{
    (void)state;
    char token[512];
    long n = gp_kling_jwt("a\"b\\\\c/\xc3\xa9", "k", 0, token, sizeof token);
    assert_true(n > 0);
    assert_string_equal(token, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                               "eyJpc3MiOiJhXCJiXFxcXGMvw6kiLCJleHAiOjE4MDAsIm5iZiI6LTV9."
                               "A5mkTq4HZg6PBR_lm2ZI6A6AxirB7O6PCR_qQsTms4E");
}

static void test_jwt_refuses_a_small_buffer(void **state)
{
    (void)state;
    char token[512];
    long n = gp_kling_jwt("AKexample123", "SKexample456", 1700000000, token, sizeof token);
    assert_true(n > 0);
    char small[512];
    assert_int_equal(gp_kling_jwt("AKexample123", "SKexample456", 1700000000, small, (size_t)n),
                     -1);
}

/* jwt.io's HS256 example: header.payload signed with "your-256-bit-secret". */
static void test_hs256_primitives_match_jwt_io(void **state)
{
    (void)state;
    const char *input =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";
    const char *secret = "your-256-bit-secret";
    uint8_t mac[GP_SHA256_LEN];
    gp_hmac_sha256(secret, strlen(secret), input, strlen(input), mac);
    char sig[64];
    size_t n = gp_base64url(mac, sizeof mac, sig);
    sig[n] = '\0';
    assert_string_equal(sig, "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_matches_python),
        cmocka_unit_test(test_jwt_escapes_the_issuer),
        cmocka_unit_test(test_jwt_refuses_a_small_buffer),
        cmocka_unit_test(test_hs256_primitives_match_jwt_io),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
