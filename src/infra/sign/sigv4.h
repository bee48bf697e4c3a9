/*
 * sigv4.h — request signing in the AWS Signature Version 4 family.
 *
 * One signer serves AWS S3 (and every S3-compatible server) and VolcEngine's V4 variant;
 * they differ only in the parameters of gp_sigv4_profile_t:
 *
 *              algorithm           key prefix  scope end      date header    hash header
 *   AWS        "AWS4-HMAC-SHA256"  "AWS4"      "aws4_request" X-Amz-Date     x-amz-content-sha256
 *   Volc       "HMAC-SHA256"       ""          "request"      X-Date         X-Content-Sha256
 *
 * The canonical request follows the AWS spec: URI-encoded path (S3: not normalised and not
 * double-encoded; normalize_path=false), sorted RFC 3986-encoded query, lower-cased sorted
 * signed headers with trimmed values, and the payload hash (hex SHA-256 or
 * "UNSIGNED-PAYLOAD"). Checked against the aws-sig-v4-test-suite vectors and AWS's S3
 * examples (tests/unit/test_sigv4.c).
 *
 * Pure functions; thread-safe. Strings returned in out-structs are malloc'd and owned by the
 * caller (gp_sigv4_result_free).
 */
#ifndef GP_SIGV4_H
#define GP_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct gp_sigv4_profile {
    const char *algorithm;        /* "AWS4-HMAC-SHA256" */
    const char *key_prefix;       /* "AWS4" */
    const char *scope_terminator; /* "aws4_request" */
    const char *date_header;      /* "X-Amz-Date" (also the presign query key) */
    const char *hash_header;      /* "x-amz-content-sha256"; NULL: not sent */
    const char *token_header;     /* "X-Amz-Security-Token" */
    const char *query_prefix;     /* "X-Amz-" for presigned query keys */
    bool normalize_path;          /* false for S3 */
} gp_sigv4_profile_t;

extern const gp_sigv4_profile_t gp_sigv4_aws;
extern const gp_sigv4_profile_t gp_sigv4_s3; /* aws with normalize_path = false */
extern const gp_sigv4_profile_t gp_sigv4_volc;

typedef struct gp_sigv4_creds {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL when none */
    const char *region;        /* "us-east-1" */
    const char *service;       /* "s3", "cv" */
} gp_sigv4_creds_t;

typedef struct gp_sigv4_request {
    const char *method;         /* "GET" */
    const char *path;           /* raw (already URI-encoded as sent) path: "/bucket/key%20x" */
    const char *query;          /* raw query without '?', may be NULL/"" */
    const char *const *headers; /* "Name: value" lines to sign; host must be among them */
    const char *payload_sha256; /* hex, or "UNSIGNED-PAYLOAD"; NULL: hash of empty body */
    time_t when;                /* signing time (UTC seconds) */
} gp_sigv4_request_t;

typedef struct gp_sigv4_result {
    char *authorization;     /* full "Authorization" header value (header signing) */
    char *date;              /* the YYYYMMDD'T'HHMMSS'Z' stamp used */
    char *canonical_request; /* for tests and debug logs */
    char *string_to_sign;
    char signature[65];
} gp_sigv4_result_t;

/* Header signing. The caller must also send date_header: out->date (and hash_header with the
 * payload hash, and token_header when a session token is set) — those must be included in
 * req->headers already, since they are signed. Returns 0 or -1 on a malformed request. */
int gp_sigv4_sign_headers(const gp_sigv4_profile_t *p, const gp_sigv4_creds_t *c,
                          const gp_sigv4_request_t *req, gp_sigv4_result_t *out);

/* Query signing (presigned URL): returns the full query string to append after '?'
 * (the caller's query merged with the X-Amz-* keys, the signature last), or NULL on error.
 * Payload hash is "UNSIGNED-PAYLOAD" for S3 when req->payload_sha256 is NULL. */
char *gp_sigv4_presign_query(const gp_sigv4_profile_t *p, const gp_sigv4_creds_t *c,
                             const gp_sigv4_request_t *req, int64_t expires_s,
                             gp_sigv4_result_t *out /* may be NULL */);

void gp_sigv4_result_free(gp_sigv4_result_t *r);

/* RFC 3986 encoding as SigV4 wants it (unreserved kept; '/' kept when keep_slash).
 * Returns a malloc'd string. */
char *gp_sigv4_uri_encode(const char *s, size_t n, bool keep_slash);
/* Format t as "YYYYMMDDTHHMMSSZ" (17 bytes incl. NUL). */
void gp_sigv4_stamp(time_t t, char out[17]);

#endif
