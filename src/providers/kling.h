/*
 * kling.h — the piece of the Kling provider that unit tests reach: its JWT.
 */
#ifndef GP_PROVIDERS_KLING_H
#define GP_PROVIDERS_KLING_H

#include <stddef.h>
#include <stdint.h>

/*
 * The bearer token Kling wants on every request: an HS256 JWT with header
 * {"alg":"HS256","typ":"JWT"} and claims {"iss": access_key, "exp": now+1800, "nbf": now-5},
 * signed with secret_key. Writes the NUL-terminated token into out and returns its length,
 * or -1 when cap is too small or memory runs out. Pure and thread-safe.
 */
long gp_kling_jwt(const char *access_key, const char *secret_key, int64_t now, char *out,
                  size_t cap);

#endif
