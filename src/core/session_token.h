/*
 * session_token.h — signed, expiring values for browser cookies: the session of a user who
 * signed in through OIDC, and the short-lived state of a sign-in in progress. Both are
 * dot-separated fields followed by base64url(HMAC-SHA256(secret, everything before it)), so
 * the server keeps no session table; a session ends when it expires (8 h) or when its user
 * is disabled (checked on use).
 *
 * Fields must not contain '.'. Pure and thread-safe; strings are the caller's.
 */
#ifndef GP_SESSION_TOKEN_H
#define GP_SESSION_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define GP_TOKEN_MAX 1024
#define GP_TOKEN_FIELDS_MAX 8

/* "f0.f1.….<expires unix s>.<sig>" into out (cap bytes). 0, or -1 if it does not fit or a
 * field contains '.'. */
int gp_token_sign(const uint8_t secret[32], const char *const *fields, size_t n, int64_t expires_s,
                  char *out, size_t cap);

/* Checks value's signature (constant time) and expiry at now_s; on success copies the n
 * fields into fields_out[i] (each field_cap bytes). 0, -1 (bad or malformed), -2 (expired). */
int gp_token_check(const uint8_t secret[32], const char *value, size_t n, int64_t now_s,
                   char fields_out[][128], size_t field_cap);

/* The key for session cookies, derived from the link secret (so no other secret to keep). */
void gp_token_derive_secret(const uint8_t link_secret[32], uint8_t out[32]);

#endif
