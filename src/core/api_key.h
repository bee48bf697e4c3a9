/*
 * api_key.h — API keys, scopes, the Authorization header and --expires durations: the pure
 * pieces of the identity layer, with no I/O.
 *
 * Ownership: nothing here allocates. Outputs go to caller-provided buffers of the sizes named
 * below; pointers returned by gp_bearer_parse point into the caller's string.
 * Thread-safety: every function is pure and thread-safe (gp_api_key_generate draws from
 * OpenSSL's RAND_bytes, which is thread-safe).
 * On failure, out-parameters are left untouched.
 *
 * Key format (like GitHub's tokens, so a secret scanner can spot one and check it offline):
 *   "gp_" + 32 base62 characters of randomness (about 190 bits)
 *         + 6 base62 characters of checksum = CRC-32 (zlib's) of the first 35 characters,
 *           big-endian, zero-padded.
 * The base62 alphabet is ASCII order: 0-9, A-Z, a-z. Total length GP_API_KEY_LEN (41).
 */
#ifndef GP_API_KEY_H
#define GP_API_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_API_KEY_PREFIX "gp_"
#define GP_API_KEY_PREFIX_LEN 3
#define GP_API_KEY_RANDOM_LEN 32
#define GP_API_KEY_CHECK_LEN 6
#define GP_API_KEY_LEN (GP_API_KEY_PREFIX_LEN + GP_API_KEY_RANDOM_LEN + GP_API_KEY_CHECK_LEN)
/* "gp_" + the first 8 random characters: enough to tell keys apart in a list, far too few
 * to guess the rest. */
#define GP_API_KEY_DISPLAY_LEN (GP_API_KEY_PREFIX_LEN + 8)
#define GP_API_KEY_DISPLAY_CAP 16

/* A fresh key into out (NUL-terminated). 0, or -1 if the CSPRNG failed (out untouched). */
int gp_api_key_generate(char out[GP_API_KEY_LEN + 1]);
/* The key made of the given 32 base62 characters (not NUL-terminated) plus their checksum.
 * 0, or -1 if one of them is not base62. For tests and tools; real keys come from
 * gp_api_key_generate. */
int gp_api_key_assemble(const char random[GP_API_KEY_RANDOM_LEN], char out[GP_API_KEY_LEN + 1]);
/* True if s (NULL allowed) has the prefix, the length, the alphabet and a matching checksum.
 * Says nothing about whether the key exists: it only spares the store a look-up for typos
 * and garbage. Not constant time; nothing secret depends on the checksum. */
bool gp_api_key_well_formed(const char *s);
/* SHA-256 hex of the whole key string: what the store keeps instead of the key. */
void gp_api_key_hash(const char *key, char out[65]);
/* "gp_" + the first 8 random characters, for display; a shorter key is copied whole. */
void gp_api_key_prefix(const char *key, char out[GP_API_KEY_DISPLAY_CAP]);

/* ---- scopes: a bit set ----
 * admin implies every scope. tasks:write implies nothing else, not even tasks:read: a key
 * that may only submit (a form, a webhook sender) should not read other tasks back — the
 * OpenAI restricted-key model. Grant both for a key that does both. */
#define GP_SCOPE_TASKS_READ 1u
#define GP_SCOPE_TASKS_WRITE 2u
#define GP_SCOPE_ADMIN 4u
#define GP_SCOPE_ALL (GP_SCOPE_TASKS_READ | GP_SCOPE_TASKS_WRITE | GP_SCOPE_ADMIN)
/* The longest canonical text ("tasks:read,tasks:write,admin") fits. */
#define GP_SCOPES_TEXT_CAP 32

/* Parses a comma-separated list ("tasks:read, admin"); spaces and tabs around items are
 * allowed, duplicates are harmless. 0 with *out set, or -1 with a reason naming the bad item
 * (empty or unknown) in why (cap bytes, NUL-terminated; why may be NULL when cap is 0). An
 * empty string is one empty item, so it is refused: a key with no scope is useless. */
int gp_scopes_parse(const char *csv, unsigned *out, char *why, size_t cap);
/* The canonical text, in the order tasks:read,tasks:write,admin; unknown bits are dropped
 * and the empty set is "". Truncated to cap - 1 bytes like snprintf (GP_SCOPES_TEXT_CAP
 * always suffices). */
void gp_scopes_format(unsigned set, char *out, size_t cap);
/* May a key holding `held` use a route needing `required_scope_name`? NULL = a public route:
 * always true. A name that is not a scope is false for everyone, admin included, so a typo in
 * a route table locks the route rather than opening it. */
bool gp_scopes_allow(unsigned held, const char *required_scope_name);

/* ---- Authorization: Bearer (RFC 6750 §2.1) ----
 *   credentials = "Bearer" 1*SP b64token
 *   b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 * The scheme is case-insensitive. Leading and trailing spaces and tabs around the whole value
 * are ignored (RFC 9110 §5.5 strips them from field values anyway); between the scheme and
 * the token only spaces count. */
#define GP_BEARER_MAX 8192 /* longest header value considered, in bytes */
enum {
    GP_BEARER_OK = 0,
    GP_BEARER_NOT_BEARER = -1, /* NULL, empty, or another scheme ("Basic …"): try another */
    GP_BEARER_MALFORMED = -2,  /* "Bearer" but no valid token, or longer than GP_BEARER_MAX */
};
/* On GP_BEARER_OK, *token points into header_value and *len is the token's length (the token
 * is not NUL-terminated there). */
int gp_bearer_parse(const char *header_value, const char **token, size_t *len);

/* ---- durations (--expires) ----
 * A positive decimal count and one unit: s, m, h, d (24 h), w (7 d), y (365 d) — "3600s",
 * "90m", "12h", "30d", "2w", "1y". Lower-case units only, no sign, no spaces, no fractions,
 * no compounds ("1d12h"). Zero is refused, and so is anything over GP_DURATION_MAX_MS. */
#define GP_DURATION_MAX_MS (10 * 365 * 86400000LL) /* 10 years of 365 days */
/* 0 with *ms set, or -1. */
int gp_duration_parse(const char *s, int64_t *ms);

#endif
