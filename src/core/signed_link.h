/*
 * signed_link.h — HMAC-signed, expiring links to files GenPulse serves (like S3 presigned
 * URLs), and the server secret they are signed with.
 *
 * A link is  base_url + path + "?expires=<unix s>&signature=<sig>"  ('&' instead of '?' when
 * path already has a query), where
 *   sig = base64url, unpadded (43 characters), of HMAC-SHA256(secret, "GET\n" path "\n" expires)
 * and expires is the decimal Unix time in seconds at which the link stops working. The host is
 * not signed, so a link works through any address of the same deployment.
 *
 * Paths are signed byte for byte and never decoded here: the caller passes them already
 * URL-safe ("/files/<task id>/<name>", names percent-encoded), starting with '/', made of
 * visible ASCII other than '#', at most GP_LINK_PATH_MAX bytes. A query inside path is signed
 * as part of it (so it may not have expires or signature parameters of its own); the checker
 * must be given the same string (the request's path and query without the expires and
 * signature parameters, the rest in their order).
 *
 * Ownership: gp_signed_link returns a malloc'd string the caller frees; nothing else allocates
 * anything the caller keeps.
 * Thread-safety: gp_signed_link, gp_signed_link_check and gp_secret_parse_hex are pure and
 * thread-safe. gp_secret_load_or_create is safe across processes (several may start at once
 * on the same file: all end with the same secret) and across threads.
 * On failure, out-parameters are left untouched.
 */
#ifndef GP_SIGNED_LINK_H
#define GP_SIGNED_LINK_H

#include <stddef.h>
#include <stdint.h>

#define GP_SECRET_LEN 32      /* bytes of a secret made or loaded here */
#define GP_SECRET_MIN_LEN 32  /* shorter secrets are refused by the signer and the checker */
#define GP_SIGNATURE_LEN 43   /* base64url of 32 bytes, unpadded */
#define GP_LINK_PATH_MAX 4096 /* longest path (query included) signed or checked, in bytes */

/* The signed link, or NULL when secret_len < GP_SECRET_MIN_LEN, path is not as described
 * above, expires_unix_s < 0, or memory ran out. base_url may be NULL or "" (a relative link)
 * and should not end with '/'. */
char *gp_signed_link(const uint8_t *secret, size_t secret_len, const char *base_url,
                     const char *path, int64_t expires_unix_s);

enum {
    GP_LINK_OK = 0,
    GP_LINK_BAD = -1,     /* missing or malformed expires or signature, bad path, wrong
                           * signature, or a secret shorter than GP_SECRET_MIN_LEN */
    GP_LINK_EXPIRED = -2, /* the signature is right but now_unix_s >= expires */
};
/* Checks the query values of a link (NULL = absent). expires must be plain decimal (no sign,
 * no spaces, at most 20 digits, within int64_t). The signature is compared in constant time,
 * and before the expiry, so GP_LINK_EXPIRED is only ever said of a link this secret signed. */
int gp_signed_link_check(const uint8_t *secret, size_t secret_len, const char *path,
                         const char *expires, const char *signature, int64_t now_unix_s);

/* Exactly 64 hex digits (either case) → out. 0, or -1. For a secret given in a setting. */
int gp_secret_parse_hex(const char *hex, uint8_t out[GP_SECRET_LEN]);

/* Reads the secret from path (64 hex digits and an optional "\n"), or when path does not
 * exist creates it with a new random secret: written to a mode-0600 temporary file
 * (O_CREAT|O_EXCL) in the same directory, fsynced, then published with link(2), which fails
 * rather than replace a file another process published first — the loser drops its own and
 * reads the winner's. A file never appears half-written.
 * Returns 0; -EINVAL if the file exists but does not hold a secret (it is never overwritten);
 * -EIO if the CSPRNG failed; or another -errno from the file system. */
int gp_secret_load_or_create(const char *path, uint8_t out[GP_SECRET_LEN]);

#endif
