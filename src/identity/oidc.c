/*
 * oidc.c — OpenID Connect ID-token verification and the sign-in helpers (see oidc.h).
 *
 * DESIGN
 *   - The token never picks its own verification. The header's `alg` must be RS256 or ES256
 *     (checked before anything else is decoded), the key is looked up by `kid` in the
 *     issuer's JWKS, and the key's type decides the algorithm (RSA → RS256, EC P-256 →
 *     ES256, a JWK `alg` must agree); a token whose alg differs from its key's is refused.
 *     Symmetric (`oct`) JWKs are never loaded, so there is no HMAC path at all.
 *   - The unverified payload is read once before the signature check, only to find which
 *     configured issuer's keys to use (`iss`); every claim is checked after the signature.
 *   - Base64url is decoded strictly (alphabet, no padding, zero trailing bits) so one token
 *     has exactly one encoding.
 *   - Key cache, per issuer, under its mutex: the parsed keys, when they were fetched and
 *     until when they are fresh, when the last fetch started. A fetch runs with the mutex
 *     released and `fetching` set; other callers wait on the condition variable (bounded),
 *     or use the key they already have when it is merely stale. A lookup takes its own
 *     reference to the EVP_PKEY, so a refresh may free the old set while a signature check
 *     is still using one of its keys.
 *   - Fetch triggers: no keys yet, keys past their max-age, or a kid (or kid-less token) the
 *     cache does not know. Every fetch after the first obeys REFETCH_MIN_S per issuer. A
 *     fetch that fails keeps the old keys (usable KEYS_STALE_S past their expiry) and forgets
 *     the discovered jwks_uri so the next attempt rediscovers it.
 *   - Time is the caller's now_s everywhere, claim checks and cache alike.
 */
#include "identity/oidc.h"

#include "core/base64.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/util.h"

#include <genpulse/http.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEYS_MIN_TTL_S 60
#define KEYS_MAX_TTL_S 86400
#define KEYS_DEFAULT_TTL_S 3600
#define KEYS_STALE_S 86400   /* how long stale keys serve while refreshes fail */
#define REFETCH_MIN_S 10     /* between two fetches of one issuer */
#define FETCH_BUDGET_MS 8000 /* discovery + JWKS, all attempts */
#define WAIT_EXTRA_MS 2000   /* a waiter's margin over FETCH_BUDGET_MS */
#define MAX_KEYS 64
#define MAX_DOC_BYTES (256 * 1024)
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define MAX_SKEW_S 600
#define MAX_DATE 253402300799LL /* 9999-12-31: keeps date arithmetic far from overflow */
#define MAX_SUB_LEN 255         /* OIDC Core §2 */

#define GP__OIDC_CODE_DEF(name, code, status, text) const char GP_OIDC_E_##name[] = code;
GP_OIDC_CODES(GP__OIDC_CODE_DEF)
#undef GP__OIDC_CODE_DEF

static const struct {
    const char *code;
    int status;
} code_table[] = {
#define GP__OIDC_CODE_ROW(name, code, status, text) {GP_OIDC_E_##name, status},
    GP_OIDC_CODES(GP__OIDC_CODE_ROW)
#undef GP__OIDC_CODE_ROW
};

int gp_oidc_code_status(const char *code)
{
    for (size_t i = 0; code && i < sizeof code_table / sizeof code_table[0]; i++)
        if (!strcmp(code_table[i].code, code))
            return code_table[i].status;
    return 401;
}

enum {
    ALG_RS256 = 1,
    ALG_ES256 = 2
};

static const char *alg_name(int alg)
{
    return alg == ALG_RS256 ? "RS256" : "ES256";
}

typedef struct jwk {
    char *kid; /* NULL when the JWK has none */
    int alg;
    EVP_PKEY *pkey;
} jwk_t;

typedef struct keyset {
    jwk_t *v;
    size_t n;
} keyset_t;

typedef struct issuer {
    /* configuration, immutable after gp_oidc_new() */
    char *name, *alias, *client_id, *client_secret, *hd, *jwks_uri_cfg;
    pthread_mutex_t mu;
    pthread_cond_t fetched; /* broadcast when a fetch ends */
    /* under mu */
    bool fetching, pinned, have_keys, attempted, discovered;
    keyset_t keys;
    int64_t fetched_at, expires_at, last_attempt; /* caller's clock, seconds */
    char *jwks_uri, *auth_ep, *token_ep;          /* configured or discovered */
    char last_error[256];
} issuer_t;

struct gp_oidc {
    issuer_t *iss;
    size_t n;
    int64_t skew;
};

/* Where a refusal goes: the code and the caller's message buffer. */
typedef struct err {
    const char **code;
    char *msg;
    size_t cap;
} err_t;

__attribute__((format(printf, 3, 4))) static int refuse(err_t *e, const char *code, const char *fmt,
                                                        ...)
{
    if (e->code)
        *e->code = code;
    if (e->msg && e->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, e->cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* RFC 7515 base64url: the URL alphabet only, no padding, unused trailing bits zero. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
    if (n % 4 == 1)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return NULL;
    if (n % 4 && (b64url_value((unsigned char)s[n - 1]) & (n % 4 == 2 ? 0x0f : 0x03)))
        return NULL;
    return gp_base64_decode(s, n, out_len);
}

static json_t *b64url_json(const char *s, size_t n)
{
    size_t len = 0;
    unsigned char *raw = b64url_decode(s, n, &len);
    if (!raw)
        return NULL;
    json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static bool is_loopback_host(const char *host)
{
    unsigned char a[16];
    if (!strcasecmp(host, "localhost"))
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    static const unsigned char v6_loopback[16] = {[15] = 1};
    return inet_pton(AF_INET6, host, a) == 1 && !memcmp(a, v6_loopback, 16);
}

/* https:// anywhere; http:// only to a loopback host (the fakes in tests). No userinfo, no
 * spaces or controls: these URLs decide whose keys are trusted. */
static bool url_allowed(const char *url)
{
    bool https = !strncmp(url, "https://", 8);
    if (!https && strncmp(url, "http://", 7))
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    const char *auth = url + (https ? 8 : 7);
    size_t al = strcspn(auth, "/?#");
    if (al == 0 || memchr(auth, '@', al))
        return false;
    if (https)
        return true;
    char host[64];
    const char *h = auth, *he;
    if (*h == '[') {
        he = memchr(h, ']', al);
        if (!he)
            return false;
        h++;
    } else {
        he = memchr(h, ':', al);
        if (!he)
            he = auth + al;
    }
    if ((size_t)(he - h) >= sizeof host)
        return false;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    return is_loopback_host(host);
}

/* application/x-www-form-urlencoded and query values: RFC 3986 unreserved kept. */
static char *pct_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = gp_xmalloc(3 * n + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static char *dup_or_null(const char *s)
{
    return s ? gp_xstrdup(s) : NULL;
}

/* ---- JWKs --------------------------------------------------------------------------------- */

static unsigned char *jwk_bytes(const json_t *k, const char *member, size_t *len)
{
    const char *s = jstr(k, member);
    return s ? b64url_decode(s, strlen(s), len) : NULL;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!c || EVP_PKEY_fromdata_init(c) <= 0 ||
        EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(c);
    return pk;
}

static EVP_PKEY *rsa_from_jwk(const json_t *k)
{
    size_t nl = 0, el = 0;
    unsigned char *n = jwk_bytes(k, "n", &nl), *e = jwk_bytes(k, "e", &el);
    EVP_PKEY *pk = NULL;
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL,
           *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
    /* Weak or absurd keys are not keys: 2048..8192-bit moduli, an odd exponent below 2^64. */
    if (bn && be && BN_num_bits(bn) >= RSA_MIN_BITS && BN_num_bits(bn) <= RSA_MAX_BITS &&
        BN_num_bits(be) >= 2 && BN_num_bits(be) <= 64 && BN_is_odd(be)) {
        OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        if (b && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
            OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be))
            params = OSSL_PARAM_BLD_to_param(b);
        if (params)
            pk = pkey_fromdata("RSA", params);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(b);
    }
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pk;
}

static EVP_PKEY *ec_from_jwk(const json_t *k)
{
    const char *crv = jstr(k, "crv");
    if (!crv || strcmp(crv, "P-256"))
        return NULL;
    size_t xl = 0, yl = 0;
    unsigned char *x = jwk_bytes(k, "x", &xl), *y = jwk_bytes(k, "y", &yl);
    EVP_PKEY *pk = NULL;
    if (x && y && xl == 32 && yl == 32) {
        unsigned char point[65] = {0x04};
        memcpy(point + 1, x, 32);
        memcpy(point + 33, y, 32);
        char group[] = "prime256v1";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
            OSSL_PARAM_construct_end(),
        };
        pk = pkey_fromdata("EC", params);
        EVP_PKEY_CTX *c = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL) : NULL;
        if (pk && (!c || EVP_PKEY_public_check(c) != 1)) { /* a point off the curve */
            EVP_PKEY_free(pk);
            pk = NULL;
        }
        EVP_PKEY_CTX_free(c);
    }
    free(x);
    free(y);
    return pk;
}

/* One JWK into *out; -1 for a key we do not use (other types, other uses, bad values). */
static int jwk_parse(const json_t *k, jwk_t *out)
{
    if (!json_is_object(k))
        return -1;
    const char *kty = jstr(k, "kty"), *use = jstr(k, "use"), *alg = jstr(k, "alg");
    const json_t *kid = json_object_get(k, "kid");
    if ((kid && !json_is_string(kid)) ||
        (json_object_get(k, "use") && (!use || strcmp(use, "sig"))))
        return -1;
    int a = kty && !strcmp(kty, "RSA") ? ALG_RS256 : kty && !strcmp(kty, "EC") ? ALG_ES256 : 0;
    if (!a || (json_object_get(k, "alg") && (!alg || strcmp(alg, alg_name(a)))))
        return -1;
    EVP_PKEY *pk = a == ALG_RS256 ? rsa_from_jwk(k) : ec_from_jwk(k);
    ERR_clear_error();
    if (!pk)
        return -1;
    out->kid = kid ? gp_xstrdup(json_string_value(kid)) : NULL;
    out->alg = a;
    out->pkey = pk;
    return 0;
}

static void keyset_clear(keyset_t *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->v[i].kid);
        EVP_PKEY_free(ks->v[i].pkey);
    }
    free(ks->v);
    ks->v = NULL;
    ks->n = 0;
}

/* The usable keys of a JWKS document (unusable ones skipped); -1 when it is not a JWKS. */
static int jwks_parse(const json_t *doc, keyset_t *out, char *why, size_t cap)
{
    const json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        snprintf(why, cap, "the JWKS has no \"keys\" array");
        return -1;
    }
    size_t n = json_array_size(keys) < MAX_KEYS ? json_array_size(keys) : MAX_KEYS;
    out->v = gp_xcalloc(n ? n : 1, sizeof *out->v);
    out->n = 0;
    for (size_t i = 0; i < n; i++)
        if (jwk_parse(json_array_get(keys, i), &out->v[out->n]) == 0)
            out->n++;
    return 0;
}

enum {
    KEY_FOUND,
    KEY_NONE,
    KEY_WRONG_ALG,
    KEY_AMBIGUOUS
};

/* The key for kid (or, for a kid-less token, the only key of the token's type). */
static int keyset_find(const keyset_t *ks, const char *kid, int alg, EVP_PKEY **out)
{
    bool kid_seen = false;
    size_t count = 0;
    for (size_t i = 0; i < ks->n; i++) {
        const jwk_t *k = &ks->v[i];
        if (kid && (!k->kid || strcmp(k->kid, kid)))
            continue;
        kid_seen = true;
        if (k->alg != alg)
            continue;
        if (kid) {
            *out = k->pkey;
            return KEY_FOUND;
        }
        *out = k->pkey;
        count++;
    }
    if (kid)
        return kid_seen ? KEY_WRONG_ALG : KEY_NONE;
    return count == 1 ? KEY_FOUND : count ? KEY_AMBIGUOUS : KEY_NONE;
}

/* ---- fetching ----------------------------------------------------------------------------- */

/* Cache lifetime from Cache-Control: max-age bounded; no-cache/no-store mean the minimum. */
static int64_t keys_ttl(const char *cache_control)
{
    int64_t ttl = -1;
    for (const char *p = cache_control; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        if (len >= 8 && !strncasecmp(p, "max-age=", 8)) {
            const char *d = p + 8 + (p[8] == '"');
            int64_t v = 0;
            bool any = false;
            for (; *d >= '0' && *d <= '9'; d++, any = true)
                v = v < KEYS_MAX_TTL_S ? v * 10 + (*d - '0') : v;
            if (any)
                ttl = v;
        } else if ((len >= 8 && !strncasecmp(p, "no-cache", 8)) ||
                   (len >= 8 && !strncasecmp(p, "no-store", 8))) {
            ttl = 0;
        }
        p += len;
    }
    if (ttl < 0)
        return KEYS_DEFAULT_TTL_S;
    return ttl < KEYS_MIN_TTL_S ? KEYS_MIN_TTL_S : ttl > KEYS_MAX_TTL_S ? KEYS_MAX_TTL_S : ttl;
}

/* GET url → a JSON object (and its Cache-Control when wanted); 0 or -1 with why. */
static int fetch_json(const char *url, int64_t deadline_ms, json_t **out, char *cache_control,
                      size_t cc_cap, char *why, size_t cap)
{
    const char *headers[] = {"Accept: application/json", NULL};
    gp_http_request_t req = {
        .url = url,
        .headers = headers,
        .max_response_bytes = MAX_DOC_BYTES,
        .connect_timeout_ms = 3000,
        .timeout_ms = 5000,
        .deadline_ms = deadline_ms,
        .max_attempts = 2,
        .retry_base_ms = 200,
        .retry_max_ms = 1000,
    };
    gp_http_response_t resp;
    int rc = gp_http_do(&req, &resp);
    json_t *doc = NULL;
    if (rc != GP_HTTP_OK)
        snprintf(why, cap, "%s", resp.error[0] ? resp.error : gp_http_strerror(rc));
    else if (resp.status != 200)
        snprintf(why, cap, "HTTP %ld", resp.status);
    else if (!(doc = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, NULL)) ||
             !json_is_object(doc))
        snprintf(why, cap, "the answer is not a JSON object");
    if (doc && json_is_object(doc) && cache_control &&
        !gp_http_header(&resp, "Cache-Control", cache_control, cc_cap))
        cache_control[0] = '\0';
    gp_http_response_free(&resp);
    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
    }
    *out = doc;
    return doc ? 0 : -1;
}

typedef struct discovery {
    char *jwks_uri, *auth_ep, *token_ep;
} discovery_t;

static void discovery_clear(discovery_t *d)
{
    free(d->jwks_uri);
    free(d->auth_ep);
    free(d->token_ep);
    memset(d, 0, sizeof *d);
}

/* ISSUER/.well-known/openid-configuration (OIDC Discovery §4), naming the same issuer. */
static int discover(const char *issuer, int64_t deadline_ms, discovery_t *d, char *why, size_t cap)
{
    size_t l = strlen(issuer);
    while (l && issuer[l - 1] == '/')
        l--;
    char *url = gp_xasprintf("%.*s/.well-known/openid-configuration", (int)l, issuer);
    json_t *doc = NULL;
    int rc = fetch_json(url, deadline_ms, &doc, NULL, 0, why, cap);
    free(url);
    if (rc)
        return -1;
    const char *iss = jstr(doc, "issuer"), *jwks = jstr(doc, "jwks_uri");
    const char *auth = jstr(doc, "authorization_endpoint"), *tok = jstr(doc, "token_endpoint");
    rc = -1;
    if (!iss || strcmp(iss, issuer))
        snprintf(why, cap, "the discovery document names another issuer");
    else if (!jwks || !url_allowed(jwks))
        snprintf(why, cap, "the discovery document has no usable jwks_uri (https required)");
    else
        rc = 0;
    if (rc == 0) {
        d->jwks_uri = gp_xstrdup(jwks);
        d->auth_ep = auth && url_allowed(auth) ? gp_xstrdup(auth) : NULL;
        d->token_ep = tok && url_allowed(tok) ? gp_xstrdup(tok) : NULL;
    }
    json_decref(doc);
    return rc;
}

static int fetch_jwks(const char *url, int64_t deadline_ms, keyset_t *ks, int64_t *ttl, char *why,
                      size_t cap)
{
    char cc[256];
    json_t *doc = NULL;
    if (fetch_json(url, deadline_ms, &doc, cc, sizeof cc, why, cap))
        return -1;
    int rc = jwks_parse(doc, ks, why, cap);
    json_decref(doc);
    *ttl = keys_ttl(cc);
    return rc;
}

/*
 * One fetch for the issuer, called and returning with is->mu held: discovery when the
 * jwks_uri is unknown (or when only the endpoints are wanted), then the JWKS if want_keys.
 * The network part runs unlocked with is->fetching set; waiters are woken at the end.
 */
static void run_fetch(issuer_t *is, bool want_keys, int64_t now)
{
    is->fetching = true;
    if (want_keys) {
        is->attempted = true;
        is->last_attempt = now;
    }
    char *jwks_uri = dup_or_null(is->jwks_uri);
    bool need_discovery = !jwks_uri || !want_keys;
    pthread_mutex_unlock(&is->mu);

    int64_t deadline = gp_mono_ms() + FETCH_BUDGET_MS;
    discovery_t d = {0};
    keyset_t ks = {0};
    int64_t ttl = 0;
    char why[sizeof is->last_error] = "";
    int drc = need_discovery ? discover(is->name, deadline, &d, why, sizeof why) : 0;
    if (drc == 0 && !jwks_uri)
        jwks_uri = gp_xstrdup(d.jwks_uri);
    int krc =
        want_keys && drc == 0 ? fetch_jwks(jwks_uri, deadline, &ks, &ttl, why, sizeof why) : -1;

    pthread_mutex_lock(&is->mu);
    if (need_discovery && drc == 0) {
        if (!is->jwks_uri_cfg) {
            free(is->jwks_uri);
            is->jwks_uri = d.jwks_uri;
            d.jwks_uri = NULL;
        }
        free(is->auth_ep);
        free(is->token_ep);
        is->auth_ep = d.auth_ep;
        is->token_ep = d.token_ep;
        d.auth_ep = d.token_ep = NULL;
        is->discovered = true;
    }
    if (want_keys && krc == 0) {
        keyset_clear(&is->keys);
        is->keys = ks;
        is->have_keys = true;
        is->fetched_at = now;
        is->expires_at = now + ttl;
        is->last_error[0] = '\0';
        GP_INFO("oidc: %s: %zu keys, fresh for %llds", is->name, ks.n, (long long)ttl);
    } else if (drc != 0 || want_keys) {
        snprintf(is->last_error, sizeof is->last_error, "%s", why);
        if (want_keys && !is->jwks_uri_cfg) { /* perhaps it moved: rediscover next time */
            free(is->jwks_uri);
            is->jwks_uri = NULL;
        }
        GP_WARN("oidc: %s: %s failed: %s", is->name, want_keys ? "JWKS fetch" : "discovery", why);
    }
    is->fetching = false;
    pthread_cond_broadcast(&is->fetched);
    discovery_clear(&d);
    free(jwks_uri);
}

/* Waits (is->mu held) until the fetch in flight ends or wait_until passes. */
static void wait_fetch(issuer_t *is, int64_t wait_until)
{
    while (is->fetching) {
        int64_t left = wait_until - gp_mono_ms();
        if (left <= 0)
            return;
        struct timespec ts = gp_deadline_in(CLOCK_MONOTONIC, left);
        if (pthread_cond_timedwait(&is->fetched, &is->mu, &ts) == ETIMEDOUT)
            return;
    }
}

static bool may_fetch(const issuer_t *is, int64_t now)
{
    if (is->pinned || is->fetching)
        return false;
    /* A clock that jumped back far also allows one, or the cache could stall for that long. */
    return !is->attempted || now - is->last_attempt >= REFETCH_MIN_S ||
           now < is->last_attempt - REFETCH_MIN_S;
}

/* The key for (kid, alg) at now, up-ref'd into *pk: from the cache, or after at most one
 * fetch (or one wait for another caller's fetch). */
static int issuer_key(issuer_t *is, const char *kid, int alg, int64_t now, EVP_PKEY **pk, err_t *e)
{
    int64_t wait_until = gp_mono_ms() + FETCH_BUDGET_MS + WAIT_EXTRA_MS;
    bool fetched = false;
    pthread_mutex_lock(&is->mu);
    for (;;) {
        EVP_PKEY *found = NULL;
        int r = is->have_keys ? keyset_find(&is->keys, kid, alg, &found) : KEY_NONE;
        bool fresh = is->pinned || (is->have_keys && now >= is->fetched_at - REFETCH_MIN_S &&
                                    now < is->expires_at);
        bool usable = is->pinned || (is->have_keys && now < is->expires_at + KEYS_STALE_S);
        bool want = !fresh || r == KEY_NONE;
        if (want && !fetched && may_fetch(is, now)) {
            run_fetch(is, true, now);
            fetched = true;
            continue;
        }
        if (want && !fetched && is->fetching && !(usable && r == KEY_FOUND)) {
            wait_fetch(is, wait_until);
            fetched = true;
            continue;
        }
        if (usable && r == KEY_FOUND) {
            EVP_PKEY_up_ref(found);
            *pk = found;
            pthread_mutex_unlock(&is->mu);
            return 0;
        }
        char why[sizeof is->last_error];
        snprintf(why, sizeof why, "%s", is->last_error[0] ? is->last_error : "no answer yet");
        pthread_mutex_unlock(&is->mu);
        if (!usable)
            return refuse(e, GP_OIDC_E_JWKS_UNAVAILABLE,
                          "the issuer's signing keys could not be fetched (%s); retry later", why);
        if (r == KEY_WRONG_ALG)
            return refuse(e, GP_OIDC_E_ALG_NOT_ALLOWED,
                          "the token's algorithm does not match the issuer's key");
        if (r == KEY_AMBIGUOUS)
            return refuse(e, GP_OIDC_E_UNKNOWN_KID,
                          "the token has no kid and the issuer has several keys");
        return refuse(e, GP_OIDC_E_UNKNOWN_KID, "the issuer publishes no key with this kid");
    }
}

/* ---- the token ---------------------------------------------------------------------------- */

typedef struct jws {
    json_t *header, *claims;
    size_t signing_len; /* header.payload: the signing input is the token's first bytes */
    unsigned char *sig;
    size_t sig_len;
    int alg;
    const char *kid; /* in header; NULL when absent */
} jws_t;

static void jws_clear(jws_t *j)
{
    json_decref(j->header);
    json_decref(j->claims);
    free(j->sig);
}

/* Splits and decodes the compact JWS: exactly three parts, a header saying RS256/ES256. */
static int jws_parse(const char *token, jws_t *j, err_t *e)
{
    memset(j, 0, sizeof *j);
    size_t n = token ? strnlen(token, GP_OIDC_MAX_TOKEN + 1) : 0;
    if (n == 0 || n > GP_OIDC_MAX_TOKEN)
        return refuse(e, GP_OIDC_E_MALFORMED, "the token is empty or longer than %d bytes",
                      GP_OIDC_MAX_TOKEN);
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) || d1 == token || d2 == d1 + 1)
        return refuse(e, GP_OIDC_E_MALFORMED, "the token is not three base64url parts");
    if (!(j->header = b64url_json(token, (size_t)(d1 - token))))
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's header is not base64url JSON");
    const char *alg = jstr(j->header, "alg");
    const json_t *kid = json_object_get(j->header, "kid");
    if (!alg)
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's header has no alg");
    j->alg = !strcmp(alg, "RS256") ? ALG_RS256 : !strcmp(alg, "ES256") ? ALG_ES256 : 0;
    if (!j->alg)
        return refuse(e, GP_OIDC_E_ALG_NOT_ALLOWED, "only RS256 and ES256 tokens are accepted");
    const char *typ = jstr(j->header, "typ");
    if (typ && (!strcasecmp(typ, "at+jwt") || !strcasecmp(typ, "application/at+jwt")))
        return refuse(e, GP_OIDC_E_MALFORMED, "an access token is not an ID token");
    if (json_object_get(j->header, "crit"))
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's header has unsupported crit fields");
    if (kid && !json_is_string(kid))
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's kid is not a string");
    j->kid = json_string_value(kid);
    if (!(j->claims = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1))))
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's payload is not base64url JSON");
    j->signing_len = (size_t)(d2 - token);
    j->sig = b64url_decode(d2 + 1, n - j->signing_len - 1, &j->sig_len);
    if (!j->sig || j->sig_len == 0)
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's signature is not base64url");
    return 0;
}

/* JWS ES256 signatures are r || s (RFC 7518 §3.4); OpenSSL wants DER. */
static unsigned char *es256_der(const unsigned char *sig, size_t *der_len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *sv = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    if (s && r && sv && ECDSA_SIG_set0(s, r, sv) == 1) {
        r = sv = NULL; /* owned by s now */
        int len = i2d_ECDSA_SIG(s, &der);
        *der_len = len > 0 ? (size_t)len : 0;
        if (len <= 0)
            der = NULL;
    }
    BN_free(r);
    BN_free(sv);
    ECDSA_SIG_free(s);
    return der;
}

static bool signature_ok(EVP_PKEY *pk, int alg, const char *input, size_t len,
                         const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    if (alg == ALG_ES256) {
        if (sig_len != 64 || !(der = es256_der(sig, &der_len)))
            return false;
        sig = der;
        sig_len = der_len;
    } else if (sig_len != (size_t)EVP_PKEY_get_size(pk)) {
        return false;
    }
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pk) == 1 &&
              EVP_DigestVerify(m, sig, sig_len, (const unsigned char *)input, len) == 1;
    EVP_MD_CTX_free(m);
    OPENSSL_free(der);
    ERR_clear_error(); /* a refused signature leaves errors on this thread's queue */
    return ok;
}

/* ---- claims ------------------------------------------------------------------------------- */

/* A NumericDate claim; 0 absent, 1 present (*out set), -1 not a sane date. */
static int claim_date(const json_t *claims, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return -1;
    if (!(d >= 0 && d <= (double)MAX_DATE))
        return -1;
    *out = (int64_t)floor(d);
    return 1;
}

static int check_times(const json_t *c, int64_t now, int64_t skew, err_t *e)
{
    int64_t exp = 0, iat = 0, nbf = 0;
    int he = claim_date(c, "exp", &exp), hi = claim_date(c, "iat", &iat);
    int hn = claim_date(c, "nbf", &nbf);
    if (he != 1 || hi != 1 || hn < 0)
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's exp, iat or nbf is missing or invalid");
    if (now >= exp + skew)
        return refuse(e, GP_OIDC_E_EXPIRED, "the token expired %lld s ago", (long long)(now - exp));
    if (hn && nbf > now + skew)
        return refuse(e, GP_OIDC_E_NOT_YET_VALID, "the token is not valid before its nbf");
    if (iat > now + skew)
        return refuse(e, GP_OIDC_E_NOT_YET_VALID, "the token's iat is in the future");
    return 0;
}

/* `aud` names the client; with several audiences, an `azp` must be the client too. */
static int check_audience(const json_t *c, const char *client_id, err_t *e)
{
    const json_t *aud = json_object_get(c, "aud");
    bool found = false;
    if (json_is_string(aud)) {
        found = !strcmp(json_string_value(aud), client_id);
    } else if (json_is_array(aud) && json_array_size(aud) > 0) {
        for (size_t i = 0; i < json_array_size(aud); i++) {
            const char *a = json_string_value(json_array_get(aud, i));
            if (!a)
                return refuse(e, GP_OIDC_E_MALFORMED, "the token's aud is not strings");
            found = found || !strcmp(a, client_id);
        }
        const char *azp = jstr(c, "azp");
        if (found && json_array_size(aud) > 1 && azp && strcmp(azp, client_id))
            found = false;
    } else {
        return refuse(e, GP_OIDC_E_MALFORMED, "the token has no aud");
    }
    return found ? 0
                 : refuse(e, GP_OIDC_E_WRONG_AUDIENCE, "the token was issued for another client");
}

static int check_claims(const gp_oidc_t *o, const issuer_t *is, const json_t *c, int64_t now,
                        const char *nonce, err_t *e)
{
    if (check_times(c, now, o->skew, e) || check_audience(c, is->client_id, e))
        return -1;
    const char *sub = jstr(c, "sub");
    if (!sub || !*sub || strlen(sub) > MAX_SUB_LEN)
        return refuse(e, GP_OIDC_E_MALFORMED, "the token's sub is missing or invalid");
    const char *hd = jstr(c, "hd");
    if (is->hd && (!hd || strcasecmp(hd, is->hd)))
        return refuse(e, GP_OIDC_E_WRONG_DOMAIN, "the account is not in the %s domain", is->hd);
    if (nonce) {
        const char *tn = jstr(c, "nonce");
        if (!tn || strlen(tn) != strlen(nonce) || !gp_ct_equal(tn, nonce, strlen(nonce)))
            return refuse(e, GP_OIDC_E_BAD_NONCE, "the token's nonce does not match the sign-in");
    }
    return 0;
}

static void identity_fill(const issuer_t *is, const json_t *c, gp_oidc_identity_t *out)
{
    const json_t *ev = json_object_get(c, "email_verified");
    int64_t exp = 0;
    claim_date(c, "exp", &exp);
    *out = (gp_oidc_identity_t){
        .issuer = gp_xstrdup(is->name),
        .subject = gp_xstrdup(jstr(c, "sub")),
        .email = dup_or_null(jstr(c, "email")),
        .name = dup_or_null(jstr(c, "name")),
        .hd = dup_or_null(jstr(c, "hd")),
        /* some issuers send the string "true" */
        .email_verified =
            json_is_true(ev) || (json_is_string(ev) && !strcmp(jstr(c, "email_verified"), "true")),
        .exp = exp,
    };
}

void gp_oidc_identity_clear(gp_oidc_identity_t *id)
{
    if (!id)
        return;
    free(id->issuer);
    free(id->subject);
    free(id->email);
    free(id->name);
    free(id->hd);
    memset(id, 0, sizeof *id);
}

static issuer_t *issuer_for_iss(gp_oidc_t *o, const char *iss)
{
    for (size_t i = 0; iss && i < o->n; i++)
        if (!strcmp(o->iss[i].name, iss) || (o->iss[i].alias && !strcmp(o->iss[i].alias, iss)))
            return &o->iss[i];
    return NULL;
}

static issuer_t *issuer_by_name(gp_oidc_t *o, const char *name)
{
    for (size_t i = 0; name && i < o->n; i++)
        if (!strcmp(o->iss[i].name, name))
            return &o->iss[i];
    return NULL;
}

/* The whole check; `only` (may be NULL) restricts the issuer, `nonce` (may be NULL) is required. */
static int verify(gp_oidc_t *o, const char *token, issuer_t *only, const char *nonce, int64_t now,
                  gp_oidc_identity_t *out, err_t *e)
{
    jws_t j;
    int rc = jws_parse(token, &j, e);
    issuer_t *is = NULL;
    if (rc == 0 && !jstr(j.claims, "iss"))
        rc = refuse(e, GP_OIDC_E_MALFORMED, "the token has no iss");
    if (rc == 0 && (!(is = issuer_for_iss(o, jstr(j.claims, "iss"))) || (only && is != only)))
        rc = refuse(e, GP_OIDC_E_WRONG_ISSUER, "the token's issuer is not accepted here");
    EVP_PKEY *pk = NULL;
    if (rc == 0)
        rc = issuer_key(is, j.kid, j.alg, now, &pk, e);
    if (rc == 0) {
        bool ok = signature_ok(pk, j.alg, token, j.signing_len, j.sig, j.sig_len);
        EVP_PKEY_free(pk);
        if (!ok)
            rc = refuse(e, GP_OIDC_E_BAD_SIGNATURE, "the token's signature is not valid");
    }
    if (rc == 0)
        rc = check_claims(o, is, j.claims, now, nonce, e);
    if (rc == 0)
        identity_fill(is, j.claims, out);
    jws_clear(&j);
    return rc;
}

int gp_oidc_verify(gp_oidc_t *o, const char *token, int64_t now_s, gp_oidc_identity_t *out,
                   const char **code, char *msg, size_t cap)
{
    err_t e = {code, msg, cap};
    return verify(o, token, NULL, NULL, now_s, out, &e);
}

int gp_oidc_verify_login(gp_oidc_t *o, const char *id_token, const char *issuer, const char *nonce,
                         int64_t now_s, gp_oidc_identity_t *out, const char **code, char *msg,
                         size_t cap)
{
    err_t e = {code, msg, cap};
    issuer_t *is = issuer_by_name(o, issuer);
    if (!is)
        return refuse(&e, GP_OIDC_E_ISSUER_UNKNOWN, "no such issuer is configured");
    if (!nonce || !*nonce)
        return refuse(&e, GP_OIDC_E_BAD_NONCE, "the sign-in has no nonce");
    return verify(o, id_token, is, nonce, now_s, out, &e);
}

bool gp_oidc_looks_like_jwt(const char *bearer)
{
    if (!bearer || strncmp(bearer, "eyJ", 3))
        return false;
    int dots = 0;
    size_t n = 0;
    for (const char *p = bearer; *p; p++, n++) {
        if (n >= GP_OIDC_MAX_TOKEN)
            return false;
        if (*p == '.')
            dots++;
        else if (b64url_value((unsigned char)*p) < 0)
            return false;
    }
    return dots == 2;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int issuer_init(issuer_t *is, const gp_oidc_issuer_cfg_t *c, char *err, size_t cap)
{
    if (!c->issuer || !url_allowed(c->issuer) || strpbrk(c->issuer, "?#")) {
        snprintf(err, cap, "oidc: issuer %s: must be an https:// URL without query or fragment",
                 c->issuer ? c->issuer : "(null)");
        return -1;
    }
    if (!c->client_id || !*c->client_id) {
        snprintf(err, cap, "oidc: issuer %s: a client id is required", c->issuer);
        return -1;
    }
    if (c->jwks_uri && !url_allowed(c->jwks_uri)) {
        snprintf(err, cap, "oidc: issuer %s: jwks_uri must be https://", c->issuer);
        return -1;
    }
    is->name = gp_xstrdup(c->issuer);
    is->alias =
        !strcmp(c->issuer, GP_OIDC_GOOGLE_ISSUER) ? gp_xstrdup("accounts.google.com") : NULL;
    is->client_id = gp_xstrdup(c->client_id);
    is->client_secret = dup_or_null(c->client_secret);
    is->hd = c->hosted_domain && *c->hosted_domain ? gp_xstrdup(c->hosted_domain) : NULL;
    is->jwks_uri_cfg = dup_or_null(c->jwks_uri);
    is->jwks_uri = dup_or_null(c->jwks_uri);
    pthread_mutex_init(&is->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&is->fetched, &attr);
    pthread_condattr_destroy(&attr);
    return 0;
}

static void issuer_destroy(issuer_t *is)
{
    if (!is->name)
        return;
    pthread_mutex_destroy(&is->mu);
    pthread_cond_destroy(&is->fetched);
    keyset_clear(&is->keys);
    free(is->name);
    free(is->alias);
    free(is->client_id);
    free(is->client_secret);
    free(is->hd);
    free(is->jwks_uri_cfg);
    free(is->jwks_uri);
    free(is->auth_ep);
    free(is->token_ep);
}

gp_oidc_t *gp_oidc_new(const gp_oidc_issuer_cfg_t *issuers, size_t n, int64_t skew_s, char *err,
                       size_t cap)
{
    if (!issuers || n == 0) {
        snprintf(err, cap, "oidc: no issuer configured");
        return NULL;
    }
    gp_oidc_t *o = gp_xcalloc(1, sizeof *o);
    o->iss = gp_xcalloc(n, sizeof *o->iss);
    o->skew = skew_s < 0 ? GP_OIDC_DEFAULT_SKEW_S : skew_s > MAX_SKEW_S ? MAX_SKEW_S : skew_s;
    for (size_t i = 0; i < n; i++) {
        o->n = i + 1; /* so that gp_oidc_free() sees what was set up */
        if (issuer_init(&o->iss[i], &issuers[i], err, cap) != 0) {
            gp_oidc_free(o);
            return NULL;
        }
        if (issuer_for_iss(o, o->iss[i].name) != &o->iss[i] ||
            (o->iss[i].alias && issuer_for_iss(o, o->iss[i].alias) != &o->iss[i])) {
            snprintf(err, cap, "oidc: issuer %s is configured twice", o->iss[i].name);
            gp_oidc_free(o);
            return NULL;
        }
    }
    return o;
}

void gp_oidc_free(gp_oidc_t *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++)
        issuer_destroy(&o->iss[i]);
    free(o->iss);
    free(o);
}

int gp_oidc_add_jwks(gp_oidc_t *o, const char *issuer, const char *json, char *err, size_t cap)
{
    issuer_t *is = issuer_by_name(o, issuer);
    if (!is) {
        snprintf(err, cap, "oidc: no issuer %s is configured", issuer ? issuer : "(null)");
        return -1;
    }
    json_t *doc = json ? json_loads(json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    keyset_t ks = {0};
    int rc = json_is_object(doc) ? jwks_parse(doc, &ks, err, cap) : -1;
    json_decref(doc);
    if (rc == 0 && ks.n == 0) {
        keyset_clear(&ks);
        rc = -1;
    }
    if (rc != 0) {
        snprintf(err, cap, "oidc: %s: not a JWKS with a usable RS256/ES256 key", issuer);
        return -1;
    }
    pthread_mutex_lock(&is->mu);
    keyset_clear(&is->keys);
    is->keys = ks;
    is->have_keys = is->pinned = true;
    pthread_mutex_unlock(&is->mu);
    return 0;
}

/* ---- browser sign-in ---------------------------------------------------------------------- */

int gp_oidc_random(char out[GP_OIDC_RANDOM_LEN])
{
    unsigned char b[32];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    out[gp_base64url(b, sizeof b, out)] = '\0';
    return 0;
}

void gp_oidc_pkce_challenge(const char *verifier, char out[GP_OIDC_RANDOM_LEN])
{
    uint8_t d[GP_SHA256_LEN];
    gp_sha256(verifier, strlen(verifier), d);
    out[gp_base64url(d, sizeof d, out)] = '\0';
}

int gp_oidc_endpoints(gp_oidc_t *o, const char *issuer, char **authorization_endpoint,
                      char **token_endpoint, const char **code, char *msg, size_t cap)
{
    err_t e = {code, msg, cap};
    issuer_t *is = issuer_by_name(o, issuer);
    if (!is)
        return refuse(&e, GP_OIDC_E_ISSUER_UNKNOWN, "no such issuer is configured");
    int64_t wait_until = gp_mono_ms() + FETCH_BUDGET_MS + WAIT_EXTRA_MS;
    bool ran = false, waited = false;
    pthread_mutex_lock(&is->mu);
    while (!is->discovered) {
        if (is->fetching && !waited) {
            wait_fetch(is, wait_until);
            waited = true;
            continue;
        }
        if (is->fetching || ran)
            break;
        run_fetch(is, false, 0);
        ran = true;
    }
    bool ok = is->auth_ep && is->token_ep;
    char *a = ok && authorization_endpoint ? gp_xstrdup(is->auth_ep) : NULL;
    char *t = ok && token_endpoint ? gp_xstrdup(is->token_ep) : NULL;
    char why[sizeof is->last_error];
    snprintf(why, sizeof why, "%s",
             is->discovered ? "no usable authorization/token endpoint" : is->last_error);
    pthread_mutex_unlock(&is->mu);
    if (!ok)
        return refuse(&e, GP_OIDC_E_ISSUER_UNAVAILABLE, "the issuer's discovery failed: %s", why);
    if (authorization_endpoint)
        *authorization_endpoint = a;
    if (token_endpoint)
        *token_endpoint = t;
    return 0;
}

char *gp_oidc_authorization_url(gp_oidc_t *o, const char *issuer, const char *redirect_uri,
                                const char *state, const char *nonce, const char *verifier,
                                const char **code, char *msg, size_t cap)
{
    err_t e = {code, msg, cap};
    issuer_t *is = issuer_by_name(o, issuer);
    char *auth = NULL;
    if (!redirect_uri || !state || !nonce || !verifier) {
        refuse(&e, GP_OIDC_E_MALFORMED, "redirect_uri, state, nonce and verifier are required");
        return NULL;
    }
    if (!is || gp_oidc_endpoints(o, issuer, &auth, NULL, code, msg, cap) != 0) {
        if (!is)
            refuse(&e, GP_OIDC_E_ISSUER_UNKNOWN, "no such issuer is configured");
        return NULL;
    }
    char challenge[GP_OIDC_RANDOM_LEN];
    gp_oidc_pkce_challenge(verifier, challenge);
    char *cid = pct_encode(is->client_id), *ru = pct_encode(redirect_uri);
    char *st = pct_encode(state), *no = pct_encode(nonce);
    char *url = gp_xasprintf("%s%cresponse_type=code&client_id=%s&redirect_uri=%s"
                             "&scope=openid%%20email%%20profile&state=%s&nonce=%s"
                             "&code_challenge=%s&code_challenge_method=S256",
                             auth, strchr(auth, '?') ? '&' : '?', cid, ru, st, no, challenge);
    free(auth);
    free(cid);
    free(ru);
    free(st);
    free(no);
    return url;
}

/* The token endpoint's answer: the id_token, or why not (its `error`, kept to [a-z_]). */
static int token_reply(const gp_http_response_t *resp, char **id_token, err_t *e)
{
    json_t *doc = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const char *tok = jstr(doc, "id_token"), *error = jstr(doc, "error");
    int rc;
    if (resp->status >= 500 || resp->status == 429) {
        rc = refuse(e, GP_OIDC_E_ISSUER_UNAVAILABLE, "the token endpoint answered HTTP %ld",
                    resp->status);
    } else if (resp->status != 200 || !tok || !*tok || strlen(tok) > GP_OIDC_MAX_TOKEN) {
        char why[48] = "";
        for (size_t i = 0; error && error[i] && i < sizeof why - 1; i++)
            why[i] = (error[i] >= 'a' && error[i] <= 'z') || error[i] == '_' ? error[i] : '?';
        rc = refuse(e, GP_OIDC_E_CODE_REJECTED, "the issuer refused the code (HTTP %ld%s%s)",
                    resp->status, why[0] ? ", " : "", why);
    } else {
        *id_token = gp_xstrdup(tok);
        rc = 0;
    }
    json_decref(doc);
    return rc;
}

int gp_oidc_exchange_code(gp_oidc_t *o, const char *issuer, const char *auth_code,
                          const char *redirect_uri, const char *verifier, char **id_token,
                          const char **code, char *msg, size_t cap)
{
    err_t e = {code, msg, cap};
    issuer_t *is = issuer_by_name(o, issuer);
    if (!auth_code || !redirect_uri || !verifier)
        return refuse(&e, GP_OIDC_E_MALFORMED, "code, redirect_uri and verifier are required");
    char *token_ep = NULL;
    if (!is)
        return refuse(&e, GP_OIDC_E_ISSUER_UNKNOWN, "no such issuer is configured");
    if (gp_oidc_endpoints(o, issuer, NULL, &token_ep, code, msg, cap) != 0)
        return -1;
    char *c = pct_encode(auth_code), *ru = pct_encode(redirect_uri),
         *cid = pct_encode(is->client_id);
    char *v = pct_encode(verifier), *sec = is->client_secret ? pct_encode(is->client_secret) : NULL;
    char *body = gp_xasprintf("grant_type=authorization_code&code=%s&redirect_uri=%s&client_id=%s"
                              "&code_verifier=%s%s%s",
                              c, ru, cid, v, sec ? "&client_secret=" : "", sec ? sec : "");
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json", NULL};
    gp_http_request_t req = {
        .method = "POST",
        .url = token_ep,
        .headers = headers,
        .body = body,
        .body_len = strlen(body),
        .max_response_bytes = MAX_DOC_BYTES,
        .connect_timeout_ms = 3000,
        .timeout_ms = 10000,
        .max_attempts = 2, /* a POST is retried only when it provably was not processed */
    };
    gp_http_response_t resp;
    int hrc = gp_http_do(&req, &resp);
    int rc = hrc == GP_HTTP_OK ? token_reply(&resp, id_token, &e)
                               : refuse(&e, GP_OIDC_E_ISSUER_UNAVAILABLE, "the token endpoint: %s",
                                        resp.error[0] ? resp.error : gp_http_strerror(hrc));
    gp_http_response_free(&resp);
    free(token_ep);
    free(c);
    free(ru);
    free(cid);
    free(v);
    free(sec);
    free(body);
    return rc;
}
