/*
 * test_oidc.c — the OpenID Connect verifier (src/identity/oidc.c) against the fake issuer
 * tests/fakes/oidc.py, whose tokens are made by an independent implementation (PyJWT +
 * python3-cryptography): discovery, JWKS caching and rotation, every refusal code, the
 * algorithm-confusion attacks, the authorization code flow with PKCE.
 *
 * The fake is started once (python3 on a free port). Without python3-jwt the tests that need
 * it are skipped. The verifier takes the clock as an argument, so cache lifetimes and rate
 * limits are tested by moving `now`, not by sleeping.
 *
 * oidc.c is included to reach a few static helpers (Cache-Control parsing, strict base64url);
 * the library's copy of the object is then never linked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "identity/oidc.c"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLIENT "test-client"
#define SECRET "test-secret"

static pid_t fake_pid;
static char fake_base[64]; /* http://127.0.0.1:PORT, also the issuer */

/* ---- the fake ------------------------------------------------------------------------------ */

static int start_fake(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null") != 0)
        return 0; /* tests needing the fake skip */
    int out[2];
    if (pipe(out) != 0)
        return -1;
    fake_pid = fork();
    if (fake_pid < 0)
        return -1;
    if (fake_pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl("/usr/bin/python3", "python3", "tests/fakes/oidc.py", "--port", "0", "--client-id",
              CLIENT, "--client-secret", SECRET, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    int port = 0;
    if (!f || fscanf(f, "fake-oidc ready port=%d", &port) != 1) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
        fake_pid = 0;
        return -1;
    }
    fclose(f);
    snprintf(fake_base, sizeof fake_base, "http://127.0.0.1:%d", port);
    return 0;
}

static int stop_fake(void **state)
{
    (void)state;
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
    return 0;
}

#define NEED_FAKE()                                                                                \
    do {                                                                                           \
        if (fake_pid <= 0) {                                                                       \
            print_message("fake OIDC issuer unavailable (python3-jwt?): skipped\n");               \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* One request to the fake; returns its body (caller frees) and asserts the status. */
static char *fake_call(const char *method, const char *path, const char *body, long want)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", fake_base, path);
    const char *headers[] = {"Content-Type: application/json", NULL};
    gp_http_request_t req = {.method = method,
                             .url = url,
                             .headers = headers,
                             .body = body,
                             .body_len = body ? strlen(body) : 0,
                             .timeout_ms = 10000,
                             .max_attempts = 1};
    gp_http_response_t resp;
    assert_int_equal(gp_http_do(&req, &resp), GP_HTTP_OK);
    assert_int_equal(resp.status, want);
    char *out = gp_xstrdup(resp.body ? resp.body : "");
    gp_http_response_free(&resp);
    return out;
}

static void fake_config(const char *json)
{
    free(fake_call("POST", "/_fake/config", json, 200));
}

static long fake_stat(const char *name)
{
    char *body = fake_call("GET", "/_stats", NULL, 200);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    long v = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
    free(body);
    return v;
}

static long jwks_fetches(void)
{
    return fake_stat("jwks_fetches");
}

/* A token from the fake: req is /_mint's JSON (printf format). */
__attribute__((format(printf, 1, 2))) static char *mint(const char *fmt, ...)
{
    char req[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req, sizeof req, fmt, ap);
    va_end(ap);
    char *body = fake_call("POST", "/_mint", req, 200);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    char *tok = gp_xstrdup(json_string_value(json_object_get(j, "token")));
    json_decref(j);
    free(body);
    return tok;
}

static gp_oidc_t *new_oidc(const char *hd, const char *jwks_uri)
{
    gp_oidc_issuer_cfg_t cfg = {.issuer = fake_base,
                                .client_id = CLIENT,
                                .client_secret = SECRET,
                                .hosted_domain = hd,
                                .jwks_uri = jwks_uri};
    char err[256];
    gp_oidc_t *o = gp_oidc_new(&cfg, 1, -1, err, sizeof err);
    if (!o)
        print_message("gp_oidc_new: %s\n", err);
    assert_non_null(o);
    return o;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Verifies at now; returns the refusal code, or "ok". */
static const char *check(gp_oidc_t *o, const char *token, int64_t now)
{
    gp_oidc_identity_t id = {0};
    const char *code = NULL;
    char msg[256] = "";
    int rc = gp_oidc_verify(o, token, now, &id, &code, msg, sizeof msg);
    if (rc == 0) {
        assert_non_null(id.subject);
        gp_oidc_identity_clear(&id);
        return "ok";
    }
    assert_int_equal(rc, -1);
    assert_non_null(code);
    assert_true(msg[0] != '\0');
    assert_null(strstr(msg, token)); /* never echoed */
    return code;
}

/* ---- valid tokens -------------------------------------------------------------------------- */

static void test_valid_rs256_and_es256(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_t *o = new_oidc(NULL, NULL);
    int64_t now = now_s();
    char *rs = mint("{\"claims\": {\"email\": \"a@example.com\", \"email_verified\": true, "
                    "\"name\": \"A B\", \"exp\": %lld}}",
                    (long long)now + 900);
    gp_oidc_identity_t id = {0};
    const char *code = NULL;
    char msg[256];
    int rc = gp_oidc_verify(o, rs, now, &id, &code, msg, sizeof msg);
    if (rc)
        print_message("%s: %s\n", code, msg);
    assert_int_equal(rc, 0);
    assert_string_equal(id.issuer, fake_base);
    assert_string_equal(id.subject, "user-1");
    assert_string_equal(id.email, "a@example.com");
    assert_true(id.email_verified);
    assert_string_equal(id.name, "A B");
    assert_null(id.hd);
    assert_int_equal(id.exp, now + 900);
    gp_oidc_identity_clear(&id);

    char *es = mint("{\"alg\": \"ES256\", \"claims\": {\"email_verified\": \"true\", "
                    "\"aud\": [\"other\", \"" CLIENT "\"], \"azp\": \"" CLIENT "\"}}");
    rc = gp_oidc_verify(o, es, now, &id, &code, msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_null(id.email);
    assert_true(id.email_verified);
    gp_oidc_identity_clear(&id);
    /* within the clock skew on both sides */
    char *skewed = mint("{\"claims\": {\"exp\": %lld, \"iat\": %lld, \"nbf\": %lld}}",
                        (long long)now - 30, (long long)now + 30, (long long)now + 30);
    assert_string_equal(check(o, skewed, now), "ok");
    free(rs);
    free(es);
    free(skewed);
    gp_oidc_free(o);
}

/* ---- refusals ------------------------------------------------------------------------------ */

static void test_refusals(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_t *o = new_oidc(NULL, NULL);
    long long now = (long long)now_s();
    struct {
        const char *req, *code;
    } cases[] = {
        {"{\"claims\": {\"aud\": \"other-client\"}}", "token_wrong_audience"},
        {"{\"claims\": {\"aud\": [\"a\", \"b\"]}}", "token_wrong_audience"},
        {"{\"claims\": {\"aud\": [\"a\", \"" CLIENT "\"], \"azp\": \"a\"}}",
         "token_wrong_audience"},
        {"{\"claims\": {\"aud\": null}}", "token_malformed"},
        {"{\"claims\": {\"iss\": \"https://evil.example\"}}", "token_wrong_issuer"},
        {"{\"claims\": {\"iss\": null}}", "token_malformed"},
        {"{\"claims\": {\"sub\": null}}", "token_malformed"},
        {"{\"claims\": {\"sub\": \"\"}}", "token_malformed"},
        {"{\"claims\": {\"exp\": null}}", "token_malformed"},
        {"{\"claims\": {\"exp\": \"tomorrow\"}}", "token_malformed"},
        {"{\"claims\": {\"iat\": null}}", "token_malformed"},
        {"{\"alg\": \"none\"}", "token_alg_not_allowed"},
        {"{\"alg\": \"HS256\"}", "token_alg_not_allowed"},
        {"{\"alg\": \"HS256\", \"kid\": null}", "token_alg_not_allowed"},
        {"{\"kid\": \"no-such-kid\"}", "token_unknown_kid"},
        {"{\"kid\": \"ec-1\"}", "token_alg_not_allowed"},                      /* RS256 on EC key */
        {"{\"alg\": \"ES256\", \"kid\": \"rsa-1\"}", "token_alg_not_allowed"}, /* and back */
        {"{\"key\": \"stranger\"}", "token_bad_signature"},
        {"{\"alg\": \"ES256\", \"key\": \"stranger\"}", "token_bad_signature"},
        {"{\"header\": {\"crit\": [\"exp\"]}}", "token_malformed"},
        {"{\"header\": {\"typ\": \"at+jwt\"}}", "token_malformed"}, /* RFC 9068 access token */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = mint("%s", cases[i].req);
        const char *got = check(o, tok, now);
        if (strcmp(got, cases[i].code))
            print_message("case %zu %s: got %s\n", i, cases[i].req, got);
        assert_string_equal(got, cases[i].code);
        free(tok);
    }
    /* times, each just past the 60 s skew */
    char *t = mint("{\"claims\": {\"exp\": %lld, \"iat\": %lld}}", now - 61, now - 900);
    assert_string_equal(check(o, t, now), "token_expired");
    free(t);
    t = mint("{\"claims\": {\"nbf\": %lld}}", now + 61);
    assert_string_equal(check(o, t, now), "token_not_yet_valid");
    free(t);
    t = mint("{\"claims\": {\"iat\": %lld}}", now + 61);
    assert_string_equal(check(o, t, now), "token_not_yet_valid");
    free(t);
    gp_oidc_free(o);
}

/* token with part `which` (0..2) replaced by base64url(bytes). */
static char *splice(const char *token, int which, const void *bytes, size_t n)
{
    const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
    const char *p[3] = {token, d1 + 1, d2 + 1};
    int len[3] = {(int)(d1 - token), (int)(d2 - d1 - 1), (int)strlen(d2 + 1)};
    char *enc = gp_xmalloc(4 * n / 3 + 4);
    len[which] = (int)gp_base64url(bytes, n, enc);
    p[which] = enc;
    char *out = gp_xasprintf("%.*s.%.*s.%.*s", len[0], p[0], len[1], p[1], len[2], p[2]);
    free(enc);
    return out;
}

static unsigned char *part(const char *token, int which, size_t *len)
{
    const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
    const char *s = which == 0 ? token : which == 1 ? d1 + 1 : d2 + 1;
    const char *e = which == 0 ? d1 : which == 1 ? d2 : token + strlen(token);
    return b64url_decode(s, (size_t)(e - s), len);
}

static void test_tampering(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_t *o = new_oidc(NULL, NULL);
    int64_t now = now_s();
    const char *algs[] = {"RS256", "ES256"};
    for (int a = 0; a < 2; a++) {
        char *tok = mint("{\"alg\": \"%s\"}", algs[a]);
        assert_string_equal(check(o, tok, now), "ok");
        /* another subject, re-encoded properly: only the signature can tell */
        size_t len = 0;
        unsigned char *claims = part(tok, 1, &len);
        json_t *c = json_loadb((const char *)claims, len, 0, NULL);
        json_object_set_new(c, "sub", json_string("admin"));
        char *forged = json_dumps(c, JSON_COMPACT);
        char *t2 = splice(tok, 1, forged, strlen(forged));
        assert_string_equal(check(o, t2, now), "token_bad_signature");
        free(t2);
        /* one bit of the signature */
        unsigned char *sig = part(tok, 2, &len);
        sig[len / 2] ^= 0x01;
        t2 = splice(tok, 2, sig, len);
        assert_string_equal(check(o, t2, now), "token_bad_signature");
        free(t2);
        /* a signature one byte short */
        t2 = splice(tok, 2, sig, len - 1);
        assert_string_equal(check(o, t2, now), "token_bad_signature");
        free(t2);
        /* the header switched to the other algorithm, same kid */
        char hdr[128];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\"}", a ? "RS256" : "ES256",
                 a ? "ec-1" : "rsa-1");
        t2 = splice(tok, 0, hdr, strlen(hdr));
        assert_string_equal(check(o, t2, now), "token_alg_not_allowed");
        free(t2);
        free(sig);
        free(forged);
        json_decref(c);
        free(claims);
        free(tok);
    }
    gp_oidc_free(o);
}

static void test_malformed_and_shape(void **state)
{
    (void)state;
    gp_oidc_issuer_cfg_t cfg = {.issuer = "https://issuer.example", .client_id = CLIENT};
    char err[256];
    gp_oidc_t *o = gp_oidc_new(&cfg, 1, -1, err, sizeof err);
    assert_non_null(o);
    const char *h = "eyJhbGciOiJSUzI1NiJ9"; /* {"alg":"RS256"} */
    char *bad[] = {
        gp_xstrdup(""),
        gp_xstrdup("abc"),
        gp_xstrdup("a.b"),
        gp_xasprintf("%s.e30.c2ln.x", h),     /* four parts */
        gp_xasprintf("%s..c2ln", h),          /* empty payload */
        gp_xasprintf(".e30.c2ln"),            /* empty header */
        gp_xasprintf("%s.e30.", h),           /* empty signature */
        gp_xasprintf("%s=.e30.c2ln", h),      /* padding */
        gp_xasprintf("%s.e30.c2l+", h),       /* standard alphabet */
        gp_xasprintf("%s.e31.c2ln", h),       /* non-canonical trailing bits ("{}" is e30) */
        gp_xasprintf("bm90IGpzb24.e30.c2ln"), /* header not JSON */
        gp_xasprintf("WzFd.e30.c2ln"),        /* header an array */
        gp_xasprintf("%s.WzFd.c2ln", h),      /* payload an array */
        gp_xasprintf("e30.e30.c2ln"),         /* no alg */
        gp_xasprintf("eyJhbGciOiJSUzI1NiIsImtpZCI6N30.e30.c2ln"),                /* kid 7 */
        gp_xasprintf("eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiYiJdLCJiIjoxfQ.e30.c2ln"), /* crit */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *code = NULL;
        char msg[128] = "";
        gp_oidc_identity_t id = {0};
        assert_int_equal(gp_oidc_verify(o, bad[i], 0, &id, &code, msg, sizeof msg), -1);
        if (strcmp(code, "token_malformed"))
            print_message("case %zu: %s\n", i, code);
        assert_string_equal(code, "token_malformed");
        assert_null(id.subject); /* untouched */
        free(bad[i]);
    }
    /* too long */
    char *huge = gp_xmalloc(GP_OIDC_MAX_TOKEN + 10);
    memset(huge, 'A', GP_OIDC_MAX_TOKEN + 9);
    memcpy(huge, "eyJ.", 4);
    huge[GP_OIDC_MAX_TOKEN + 5] = '.';
    huge[GP_OIDC_MAX_TOKEN + 9] = '\0';
    assert_string_equal(check(o, huge, 0), "token_malformed");
    assert_false(gp_oidc_looks_like_jwt(huge));
    free(huge);
    assert_int_equal(
        gp_oidc_verify(o, NULL, 0, &(gp_oidc_identity_t){0}, &(const char *){NULL}, NULL, 0), -1);

    assert_true(gp_oidc_looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
    assert_false(gp_oidc_looks_like_jwt("gp_AbCd1234efgh5678"));
    assert_false(gp_oidc_looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.e30"));
    assert_false(gp_oidc_looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.e30.c2ln.x"));
    assert_false(gp_oidc_looks_like_jwt("eyJhbGc iOiJSUzI1NiJ9.e30.c2ln"));
    assert_false(gp_oidc_looks_like_jwt(NULL));
    gp_oidc_free(o);
}

static void test_hosted_domain(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_t *o = new_oidc("example.com", NULL);
    int64_t now = now_s();
    char *t = mint("{\"claims\": {\"hd\": \"example.com\"}}");
    gp_oidc_identity_t id = {0};
    const char *code = NULL;
    char msg[128];
    assert_int_equal(gp_oidc_verify(o, t, now, &id, &code, msg, sizeof msg), 0);
    assert_string_equal(id.hd, "example.com");
    gp_oidc_identity_clear(&id);
    free(t);
    t = mint("{\"claims\": {\"hd\": \"other.com\"}}");
    assert_string_equal(check(o, t, now), "token_wrong_domain");
    free(t);
    t = mint("{}");
    assert_string_equal(check(o, t, now), "token_wrong_domain");
    free(t);
    gp_oidc_free(o);
}

/* ---- the key cache ------------------------------------------------------------------------- */

static void test_rotation_and_rate_limit(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_t *o = new_oidc(NULL, NULL);
    int64_t t0 = now_s();
    long f0 = jwks_fetches();
    char *old = mint("{\"claims\": {\"exp\": %lld}}", (long long)t0 + 7200);
    assert_string_equal(check(o, old, t0), "ok");
    assert_int_equal(jwks_fetches(), f0 + 1);
    assert_string_equal(check(o, old, t0 + 1), "ok"); /* cached */
    assert_int_equal(jwks_fetches(), f0 + 1);

    /* bogus kids within 10 s of the last fetch: refused without asking the issuer */
    for (int i = 0; i < 20; i++) {
        char *b = mint("{\"kid\": \"bogus-%d\"}", i);
        assert_string_equal(check(o, b, t0 + i / 3), "token_unknown_kid");
        free(b);
    }
    assert_int_equal(jwks_fetches(), f0 + 1);

    free(fake_call("POST", "/_rotate", "{}", 200));
    char *fresh = mint("{\"claims\": {\"exp\": %lld}}", (long long)t0 + 7200);
    assert_string_equal(check(o, fresh, t0 + 9), "token_unknown_kid"); /* rate-limited */
    assert_int_equal(jwks_fetches(), f0 + 1);
    assert_string_equal(check(o, fresh, t0 + 10), "ok"); /* the new kid refetches */
    assert_int_equal(jwks_fetches(), f0 + 2);
    char *es = mint("{\"alg\": \"ES256\"}");
    assert_string_equal(check(o, es, t0 + 11), "ok"); /* and the new EC key came with it */
    /* the old keys are gone from the JWKS, so from the cache */
    assert_string_equal(check(o, old, t0 + 12), "token_unknown_kid");
    assert_int_equal(jwks_fetches(), f0 + 2);
    /* one refetch per 10 s, however many bogus kids */
    for (int i = 0; i < 30; i++) {
        char *b = mint("{\"kid\": \"bogus-%d\"}", i);
        assert_string_equal(check(o, b, t0 + 20 + i / 3), "token_unknown_kid");
        free(b);
    }
    assert_int_equal(jwks_fetches(), f0 + 3); /* at t0+20 only, as t0+20+9 < t0+30 */
    free(es);
    free(old);
    free(fresh);
    gp_oidc_free(o);
}

static void test_cache_control(void **state)
{
    (void)state;
    NEED_FAKE();
    struct {
        const char *config;
        int64_t keep, refetch; /* no fetch at t0+keep, a fetch at t0+refetch */
    } cases[] = {
        {"{\"max_age\": 120}", 119, 120},
        {"{\"max_age\": 5}", 59, 60},               /* bounded below: 60 s */
        {"{\"max_age\": null}", 3599, 3600},        /* absent: 1 h */
        {"{\"max_age\": 999999999}", 86399, 86400}, /* bounded above: 1 day */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_config(cases[i].config);
        gp_oidc_t *o = new_oidc(NULL, NULL);
        int64_t t0 = now_s();
        char *t = mint("{\"claims\": {\"exp\": %lld}}", (long long)t0 + 200000);
        long f0 = jwks_fetches();
        assert_string_equal(check(o, t, t0), "ok");
        assert_string_equal(check(o, t, t0 + cases[i].keep), "ok");
        assert_int_equal(jwks_fetches(), f0 + 1);
        assert_string_equal(check(o, t, t0 + cases[i].refetch), "ok");
        assert_int_equal(jwks_fetches(), f0 + 2);
        free(t);
        gp_oidc_free(o);
    }
    fake_config("{\"max_age\": 3600}");

    assert_int_equal(keys_ttl("public, max-age=7200, must-revalidate"), 7200);
    assert_int_equal(keys_ttl("max-age=\"300\""), 300);
    assert_int_equal(keys_ttl("no-cache"), KEYS_MIN_TTL_S);
    assert_int_equal(keys_ttl("private"), KEYS_DEFAULT_TTL_S);
    assert_int_equal(keys_ttl("max-age=99999999999999999999999"), KEYS_MAX_TTL_S);
    assert_int_equal(keys_ttl(""), KEYS_DEFAULT_TTL_S);
}

static void test_unavailable_and_stale(void **state)
{
    (void)state;
    NEED_FAKE();
    int64_t t0 = now_s();
    char *t = mint("{\"claims\": {\"exp\": %lld}}", (long long)t0 + 200000);
    /* nothing listens on port 1 */
    gp_oidc_t *o = new_oidc(NULL, "http://127.0.0.1:1/jwks");
    assert_string_equal(check(o, t, t0), "jwks_unavailable");
    assert_string_equal(check(o, t, t0 + 1), "jwks_unavailable"); /* rate-limited, fast */
    gp_oidc_free(o);

    /* keys that expire while the issuer fails are kept (for a day) */
    o = new_oidc(NULL, NULL);
    assert_string_equal(check(o, t, t0), "ok");
    long f0 = jwks_fetches();
    fake_config("{\"fail_500\": 20}");
    assert_string_equal(check(o, t, t0 + 3700), "ok");
    assert_string_equal(check(o, t, t0 + 3600 + 86399), "ok");
    assert_string_equal(check(o, t, t0 + 3600 + 86400), "jwks_unavailable");
    fake_config("{\"fail_500\": 0}");
    assert_string_equal(check(o, t, t0 + 3600 + 86400 + 10), "ok");
    assert_int_equal(jwks_fetches(), f0 + 1);
    gp_oidc_free(o);

    /* a discovery document for another issuer is not trusted */
    fake_config("{\"discovery_issuer\": \"https://other.example\"}");
    o = new_oidc(NULL, NULL);
    assert_string_equal(check(o, t, t0), "jwks_unavailable");
    gp_oidc_free(o);
    fake_config("{\"discovery_issuer\": null}");
    free(fake_call("POST", "/_fake/reset", "{}", 200));
    free(t);
}

typedef struct flood {
    gp_oidc_t *o;
    const char *token;
    int64_t now;
    const char *want;
    int bad;
} flood_t;

static void *flood_thread(void *arg)
{
    flood_t *f = arg;
    for (int i = 0; i < 25; i++) {
        const char *code = NULL;
        char msg[128];
        gp_oidc_identity_t id = {0};
        int rc = gp_oidc_verify(f->o, f->token, f->now, &id, &code, msg, sizeof msg);
        if (strcmp(rc == 0 ? "ok" : code, f->want))
            f->bad++;
        gp_oidc_identity_clear(&id);
    }
    return NULL;
}

/* Many threads at once: one fetch in flight per issuer, whatever they need. */
static void test_concurrent_single_flight(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_t *o = new_oidc(NULL, NULL);
    int64_t t0 = now_s();
    char *good = mint("{\"claims\": {\"exp\": %lld}}", (long long)t0 + 200000);
    char *bogus = mint("{\"kid\": \"bogus\", \"claims\": {\"exp\": %lld}}", (long long)t0 + 200000);
    long f0 = jwks_fetches();
    const struct {
        const char *token;
        int64_t now;
        const char *want;
        long fetches;
    } rounds[] = {
        {good, t0, "ok", 1},                       /* cold cache */
        {bogus, t0 + 100, "token_unknown_kid", 1}, /* unknown kid */
        {good, t0 + 5000, "ok", 1},                /* expired cache */
    };
    long expect = f0;
    for (size_t r = 0; r < sizeof rounds / sizeof rounds[0]; r++) {
        pthread_t th[8];
        flood_t f[8];
        for (int i = 0; i < 8; i++) {
            f[i] = (flood_t){o, rounds[r].token, rounds[r].now, rounds[r].want, 0};
            assert_int_equal(pthread_create(&th[i], NULL, flood_thread, &f[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(f[i].bad, 0);
        }
        expect += rounds[r].fetches;
        assert_int_equal(jwks_fetches(), expect);
    }
    free(good);
    free(bogus);
    gp_oidc_free(o);
}

/* ---- pinned keys, the Google preset, kid-less tokens --------------------------------------- */

static void test_google_alias_and_pinned_keys(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_issuer_cfg_t cfg = {.issuer = GP_OIDC_GOOGLE_ISSUER, .client_id = CLIENT};
    char err[256];
    gp_oidc_t *o = gp_oidc_new(&cfg, 1, -1, err, sizeof err);
    assert_non_null(o);
    char *jwks = fake_call("GET", "/jwks", NULL, 200);
    assert_int_equal(gp_oidc_add_jwks(o, GP_OIDC_GOOGLE_ISSUER, jwks, err, sizeof err), 0);
    assert_int_equal(gp_oidc_add_jwks(o, "https://nope.example", jwks, err, sizeof err), -1);
    assert_int_equal(gp_oidc_add_jwks(o, GP_OIDC_GOOGLE_ISSUER, "{\"keys\": []}", err, sizeof err),
                     -1);
    assert_int_equal(gp_oidc_add_jwks(o, GP_OIDC_GOOGLE_ISSUER, "[", err, sizeof err), -1);
    free(jwks);
    int64_t now = now_s();
    long f0 = jwks_fetches();
    const char *isses[] = {"accounts.google.com", "https://accounts.google.com"};
    for (int i = 0; i < 2; i++) {
        char *t = mint("{\"claims\": {\"iss\": \"%s\", \"hd\": \"x.com\"}}", isses[i]);
        gp_oidc_identity_t id = {0};
        const char *code = NULL;
        char msg[128];
        assert_int_equal(gp_oidc_verify(o, t, now, &id, &code, msg, sizeof msg), 0);
        assert_string_equal(id.issuer, GP_OIDC_GOOGLE_ISSUER);
        assert_string_equal(id.hd, "x.com");
        gp_oidc_identity_clear(&id);
        free(t);
    }
    char *t = mint("{\"claims\": {\"iss\": \"http://accounts.google.com\"}}");
    assert_string_equal(check(o, t, now), "token_wrong_issuer");
    free(t);
    /* pinned: an unknown kid does not fetch */
    t = mint("{\"kid\": \"bogus\", \"claims\": {\"iss\": \"accounts.google.com\"}}");
    assert_string_equal(check(o, t, now + 100), "token_unknown_kid");
    free(t);
    /* no kid: the only key of the token's type */
    t = mint("{\"kid\": null, \"alg\": \"ES256\", \"claims\": {\"iss\": \"accounts.google.com\"}}");
    assert_string_equal(check(o, t, now), "ok");
    free(t);
    assert_int_equal(jwks_fetches(), f0 + 0);

    /* ... but not when there are several */
    free(fake_call("POST", "/_rotate", "{\"keep_previous\": true}", 200));
    jwks = fake_call("GET", "/jwks", NULL, 200);
    assert_int_equal(gp_oidc_add_jwks(o, GP_OIDC_GOOGLE_ISSUER, jwks, err, sizeof err), 0);
    free(jwks);
    t = mint("{\"kid\": null, \"claims\": {\"iss\": \"accounts.google.com\"}}");
    assert_string_equal(check(o, t, now), "token_unknown_kid");
    free(t);
    t = mint("{\"key\": \"previous\", \"claims\": {\"iss\": \"accounts.google.com\"}}");
    assert_string_equal(check(o, t, now), "ok"); /* both generations listed */
    free(t);
    gp_oidc_free(o);
}

/* ---- configuration ------------------------------------------------------------------------- */

static void test_config(void **state)
{
    (void)state;
    char err[256];
    const char *bad_issuers[] = {"http://issuer.example",
                                 "ftp://x",
                                 "https://",
                                 "issuer.example",
                                 "http://127.0.0.1@evil.example",
                                 "https://a.example/?q=1",
                                 "https://a b.example"};
    for (size_t i = 0; i < sizeof bad_issuers / sizeof bad_issuers[0]; i++) {
        gp_oidc_issuer_cfg_t cfg = {.issuer = bad_issuers[i], .client_id = CLIENT};
        err[0] = '\0';
        assert_null(gp_oidc_new(&cfg, 1, -1, err, sizeof err));
        assert_true(err[0] != '\0');
    }
    gp_oidc_issuer_cfg_t two[] = {{.issuer = "https://a.example", .client_id = "x"},
                                  {.issuer = "https://a.example", .client_id = "y"}};
    assert_null(gp_oidc_new(two, 2, -1, err, sizeof err));
    assert_non_null(strstr(err, "twice"));
    gp_oidc_issuer_cfg_t noid = {.issuer = "https://a.example"};
    assert_null(gp_oidc_new(&noid, 1, -1, err, sizeof err));
    gp_oidc_issuer_cfg_t jw = {
        .issuer = "https://a.example", .client_id = "x", .jwks_uri = "http://keys.example/jwks"};
    assert_null(gp_oidc_new(&jw, 1, -1, err, sizeof err));
    assert_null(gp_oidc_new(NULL, 0, -1, err, sizeof err));
    gp_oidc_issuer_cfg_t ok[] = {{.issuer = "https://a.example", .client_id = "x"},
                                 {.issuer = "http://[::1]:8080", .client_id = "x"},
                                 {.issuer = "http://localhost:9", .client_id = "x"},
                                 {.issuer = GP_OIDC_GOOGLE_ISSUER, .client_id = "x"}};
    gp_oidc_t *o = gp_oidc_new(ok, 4, 5, err, sizeof err);
    assert_non_null(o);
    gp_oidc_free(o);

    assert_int_equal(gp_oidc_code_status(GP_OIDC_E_JWKS_UNAVAILABLE), 503);
    assert_int_equal(gp_oidc_code_status("token_expired"), 401);
    assert_int_equal(gp_oidc_code_status("issuer_unknown"), 400);
    assert_int_equal(gp_oidc_code_status("whatever"), 401);
}

/* ---- sign-in ------------------------------------------------------------------------------- */

static void test_pkce_and_random(void **state)
{
    (void)state;
    char c[GP_OIDC_RANDOM_LEN];
    gp_oidc_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", c); /* RFC 7636 B */
    assert_string_equal(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    char a[GP_OIDC_RANDOM_LEN], b[GP_OIDC_RANDOM_LEN];
    assert_int_equal(gp_oidc_random(a), 0);
    assert_int_equal(gp_oidc_random(b), 0);
    assert_int_equal(strlen(a), 43);
    assert_string_not_equal(a, b);
    for (const char *p = a; *p; p++)
        assert_true(b64url_value((unsigned char)*p) >= 0);
}

/* Follows the authorization URL at the fake (no browser); returns the code, checks state. */
static char *authorize(const char *url, const char *state)
{
    gp_http_request_t req = {.url = url, .timeout_ms = 10000, .max_attempts = 1};
    gp_http_response_t resp;
    assert_int_equal(gp_http_do(&req, &resp), GP_HTTP_OK);
    assert_int_equal(resp.status, 302);
    char loc[1024];
    assert_true(gp_http_header(&resp, "Location", loc, sizeof loc));
    gp_http_response_free(&resp);
    assert_true(!strncmp(loc, "http://127.0.0.1:9/cb?", 22));
    char *code = NULL;
    bool state_ok = false;
    for (char *tok = strtok(loc + 22, "&"); tok; tok = strtok(NULL, "&")) {
        if (!strncmp(tok, "code=", 5))
            code = gp_xstrdup(tok + 5);
        else if (!strncmp(tok, "state=", 6))
            state_ok = !strcmp(tok + 6, state);
    }
    assert_true(state_ok);
    assert_non_null(code);
    return code;
}

static void test_code_flow(void **state)
{
    (void)state;
    NEED_FAKE();
    gp_oidc_t *o = new_oidc(NULL, NULL);
    const char *redirect = "http://127.0.0.1:9/cb";
    char st[GP_OIDC_RANDOM_LEN], nonce[GP_OIDC_RANDOM_LEN], verifier[GP_OIDC_RANDOM_LEN];
    assert_int_equal(gp_oidc_random(st) | gp_oidc_random(nonce) | gp_oidc_random(verifier), 0);
    const char *code = NULL;
    char msg[256];
    char *url = gp_oidc_authorization_url(o, fake_base, redirect, st, nonce, verifier, &code, msg,
                                          sizeof msg);
    assert_non_null(url);
    char want[128];
    snprintf(want, sizeof want, "%s/authorize?response_type=code&client_id=" CLIENT, fake_base);
    assert_true(!strncmp(url, want, strlen(want)));
    assert_non_null(strstr(url, "&scope=openid%20email%20profile&"));
    assert_non_null(strstr(url, "&code_challenge_method=S256"));
    assert_non_null(strstr(url, "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&"));
    char *auth_code = authorize(url, st);
    free(url);

    char *id_token = NULL;
    int rc = gp_oidc_exchange_code(o, fake_base, auth_code, redirect, verifier, &id_token, &code,
                                   msg, sizeof msg);
    if (rc)
        print_message("%s: %s\n", code, msg);
    assert_int_equal(rc, 0);
    gp_oidc_identity_t id = {0};
    int64_t now = now_s();
    assert_int_equal(
        gp_oidc_verify_login(o, id_token, fake_base, nonce, now, &id, &code, msg, sizeof msg), 0);
    assert_string_equal(id.email, "user@example.com");
    assert_true(id.email_verified);
    gp_oidc_identity_clear(&id);
    assert_int_equal(
        gp_oidc_verify_login(o, id_token, fake_base, st, now, &id, &code, msg, sizeof msg), -1);
    assert_string_equal(code, "token_bad_nonce");
    assert_int_equal(gp_oidc_verify_login(o, id_token, "https://x.example", nonce, now, &id, &code,
                                          msg, sizeof msg),
                     -1);
    assert_string_equal(code, "issuer_unknown");
    free(id_token);

    /* a code is single-use */
    id_token = NULL;
    assert_int_equal(gp_oidc_exchange_code(o, fake_base, auth_code, redirect, verifier, &id_token,
                                           &code, msg, sizeof msg),
                     -1);
    assert_string_equal(code, "code_rejected");
    assert_null(id_token);
    free(auth_code);

    /* the wrong verifier fails PKCE */
    url = gp_oidc_authorization_url(o, fake_base, redirect, st, nonce, verifier, &code, msg,
                                    sizeof msg);
    auth_code = authorize(url, st);
    assert_int_equal(gp_oidc_exchange_code(o, fake_base, auth_code, redirect, nonce, &id_token,
                                           &code, msg, sizeof msg),
                     -1);
    assert_string_equal(code, "code_rejected");
    free(url);
    free(auth_code);

    char *ae = NULL, *te = NULL;
    assert_int_equal(gp_oidc_endpoints(o, fake_base, &ae, &te, &code, msg, sizeof msg), 0);
    assert_non_null(strstr(ae, "/authorize"));
    assert_non_null(strstr(te, "/token"));
    free(ae);
    free(te);
    gp_oidc_free(o);

    /* an unreachable issuer */
    gp_oidc_issuer_cfg_t cfg = {.issuer = "http://127.0.0.1:1", .client_id = CLIENT};
    o = gp_oidc_new(&cfg, 1, -1, msg, sizeof msg);
    assert_null(gp_oidc_authorization_url(o, cfg.issuer, redirect, st, nonce, verifier, &code, msg,
                                          sizeof msg));
    assert_string_equal(code, "issuer_unavailable");
    gp_oidc_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_rs256_and_es256),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_malformed_and_shape),
        cmocka_unit_test(test_hosted_domain),
        cmocka_unit_test(test_rotation_and_rate_limit),
        cmocka_unit_test(test_cache_control),
        cmocka_unit_test(test_unavailable_and_stale),
        cmocka_unit_test(test_concurrent_single_flight),
        cmocka_unit_test(test_google_alias_and_pinned_keys),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_pkce_and_random),
        cmocka_unit_test(test_code_flow),
    };
    gp_log_setup(GP_LOG_ERROR, false); /* the fetch failures tested here warn */
    return cmocka_run_group_tests(tests, start_fake, stop_fake);
}
