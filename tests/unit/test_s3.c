/*
 * test_s3.c — the S3 storage backend against a real S3-compatible server (s3rver, started by
 * tools/test-services.sh; GENPULSE_TEST_S3_URL). Without that variable only the URL checks,
 * which need no server, run. GENPULSE_TEST_S3_BENCH=1 also times a 50 MiB upload/download.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/util.h"
#include "infra/storage/s3_url.h"
#include "infra/storage/storage.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const gp_storage_vt_t gp_storage_backend_s3;

static const char *s3_url(void)
{
    const char *u = getenv("GENPULSE_TEST_S3_URL");
    return u && *u ? u : NULL;
}

#define NEED_S3()                                                                                  \
    do {                                                                                           \
        if (!s3_url()) {                                                                           \
            print_message("GENPULSE_TEST_S3_URL is not set (sh tools/test-services.sh start "      \
                          "DIR): skipped\n");                                                      \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static gp_storage_t *open_with(const char *extra)
{
    const char *base = s3_url();
    char *url = gp_xasprintf("%s%s%s", base, strchr(base, '?') ? "&" : "?", extra ? extra : "");
    gp_settings_t settings = {0};
    gp_storage_t *st = NULL;
    char err[512] = "";
    int rc = gp_storage_backend_s3.open(&st, url, &settings, err, sizeof err);
    if (rc != 0)
        print_message("open failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(st);
    free(url);
    return st;
}

static char *tmp_path(const char *tag)
{
    return gp_xasprintf("/tmp/genpulse-test-s3-%d-%s", (int)getpid(), tag);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
} mem_t;

static size_t mem_write(char *d, size_t sz, size_t nm, void *u)
{
    mem_t *m = u;
    size_t n = sz * nm;
    if (m->n + n > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 65536;
        while (cap < m->n + n)
            cap *= 2;
        unsigned char *np = realloc(m->p, cap);
        if (!np)
            return 0;
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->n, d, n);
    m->n += n;
    return n;
}

/* Plain libcurl GET, as a browser or a client library would fetch an asset. */
static long fetch(const char *url, mem_t *out)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    memset(out, 0, sizeof *out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static void test_put_bytes_get_file(void **state)
{
    (void)state;
    NEED_S3();
    gp_storage_t *st = open_with("prefix=unit");
    char owner[37];
    gp_uuid7(owner);
    const char data[] = "hello from genpulse \x00\x01\x02 binary";
    char *url = NULL;
    assert_int_equal(gp_storage_put_bytes(st, owner, "hello.txt", data, sizeof data, NULL, &url),
                     0);
    assert_non_null(url);
    assert_non_null(strstr(url, "X-Amz-Signature="));
    assert_non_null(strstr(url, "/unit/"));
    assert_non_null(strstr(url, "X-Amz-Expires=3600"));

    char *dest = tmp_path("bytes");
    assert_int_equal(gp_storage_get_file(st, owner, "hello.txt", dest), 0);
    size_t n = 0;
    unsigned char *got = read_all(dest, &n);
    assert_int_equal(n, sizeof data);
    assert_memory_equal(got, data, n);
    free(got);

    /* the returned link works for any HTTP client */
    mem_t m;
    assert_int_equal(fetch(url, &m), 200);
    assert_int_equal(m.n, sizeof data);
    assert_memory_equal(m.p, data, m.n);
    free(m.p);

    /* overwrite, empty object */
    free(url);
    assert_int_equal(gp_storage_put_bytes(st, owner, "hello.txt", "", 0, "text/plain", &url), 0);
    assert_int_equal(gp_storage_get_file(st, owner, "hello.txt", dest), 0);
    struct stat sb;
    assert_int_equal(stat(dest, &sb), 0);
    assert_int_equal(sb.st_size, 0);

    unlink(dest);
    free(dest);
    free(url);
    gp_storage_close(st);
}

static void test_multipart_round_trip(void **state)
{
    (void)state;
    NEED_S3();
    gp_storage_t *st = open_with("multipart_threshold=5M");
    char owner[37];
    gp_uuid7(owner);
    /* 12 MiB + 17 bytes: parts of 5, 5 and 2 MiB + 17 */
    size_t size = 12u * 1024 * 1024 + 17;
    unsigned char *data = malloc(size);
    assert_non_null(data);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    char *src = tmp_path("mp-src"), *dest = tmp_path("mp-dst");
    assert_int_equal(gp_write_file_atomic(src, data, size), 0);
    char *url = NULL;
    assert_int_equal(gp_storage_put_file(st, owner, "big.bin", src, NULL, &url), 0);
    assert_int_equal(gp_storage_get_file(st, owner, "big.bin", dest), 0);
    size_t n = 0;
    unsigned char *got = read_all(dest, &n);
    assert_int_equal(n, size);
    assert_memory_equal(got, data, size);
    free(got);

    mem_t m;
    assert_int_equal(fetch(url, &m), 200);
    assert_int_equal(m.n, size);
    assert_memory_equal(m.p, data, size);
    free(m.p);

    /* a small file with the same settings goes up in one PUT */
    free(url);
    assert_int_equal(gp_write_file_atomic(src, data, 1000), 0);
    assert_int_equal(gp_storage_put_file(st, owner, "small.bin", src, "application/x-test", &url),
                     0);
    assert_int_equal(gp_storage_get_file(st, owner, "small.bin", dest), 0);
    got = read_all(dest, &n);
    assert_int_equal(n, 1000);
    assert_memory_equal(got, data, 1000);
    free(got);

    unlink(src);
    unlink(dest);
    free(src);
    free(dest);
    free(url);
    free(data);
    gp_storage_close(st);
}

/* tools/s3rver/server.js fails part 2 of "*inject-part-failure*" and answers the completion
 * of "*inject-complete-error*" with 200 and an <Error> body. */
static void test_multipart_failures(void **state)
{
    (void)state;
    NEED_S3();
    gp_storage_t *st = open_with("multipart_threshold=5M");
    char owner[37];
    gp_uuid7(owner);
    size_t size = 11u * 1024 * 1024;
    unsigned char *data = calloc(1, size);
    assert_non_null(data);
    char *src = tmp_path("mpf-src"), *dest = tmp_path("mpf-dst");
    assert_int_equal(gp_write_file_atomic(src, data, size), 0);
    char *url = NULL;
    int rc = gp_storage_put_file(st, owner, "inject-part-failure.bin", src, NULL, &url);
    assert_int_not_equal(rc, 0);
    assert_null(url);
    assert_int_equal(gp_storage_get_file(st, owner, "inject-part-failure.bin", dest),
                     -GP_E_NOT_FOUND);
    rc = gp_storage_put_file(st, owner, "inject-complete-error.bin", src, NULL, &url);
    assert_int_equal(rc, -GP_E_UNAVAILABLE);
    assert_null(url);
    assert_int_equal(gp_storage_get_file(st, owner, "inject-complete-error.bin", dest),
                     -GP_E_NOT_FOUND);
    unlink(src);
    free(src);
    free(dest);
    free(data);
    gp_storage_close(st);
}

static void test_presign_and_expiry(void **state)
{
    (void)state;
    NEED_S3();
    gp_storage_t *st = open_with(NULL);
    char owner[37];
    gp_uuid7(owner);
    char *url = NULL;
    assert_int_equal(gp_storage_put_bytes(st, owner, "p.png", "\x89PNG", 4, "image/png", &url), 0);
    free(url);

    assert_int_equal(st->vt->presign(st, owner, "p.png", 600, &url), 0);
    assert_non_null(strstr(url, "X-Amz-Expires=600"));
    mem_t m;
    assert_int_equal(fetch(url, &m), 200);
    assert_int_equal(m.n, 4);
    assert_memory_equal(m.p, "\x89PNG", 4);
    free(m.p);
    free(url);

    /* a tampered link is refused */
    assert_int_equal(st->vt->presign(st, owner, "p.png", 600, &url), 0);
    char *sig = strstr(url, "X-Amz-Signature=");
    assert_non_null(sig);
    sig += strlen("X-Amz-Signature=");
    *sig = *sig == '0' ? '1' : '0';
    assert_int_equal(fetch(url, &m), 403);
    free(m.p);
    free(url);

    assert_int_equal(st->vt->presign(st, owner, "p.png", 1, &url), 0);
    sleep(2);
    assert_int_equal(fetch(url, &m), 403);
    free(m.p);
    free(url);

    /* invalid names are not presigned */
    assert_int_equal(st->vt->presign(st, owner, "../x", 60, &url), -GP_E_NOT_FOUND);
    assert_int_equal(st->vt->presign(st, "not-a-uuid", "p.png", 60, &url), -GP_E_NOT_FOUND);
    gp_storage_close(st);
}

static void test_missing_object_and_bad_names(void **state)
{
    (void)state;
    NEED_S3();
    gp_storage_t *st = open_with(NULL);
    char owner[37];
    gp_uuid7(owner);
    char *dest = tmp_path("missing");
    assert_int_equal(gp_storage_get_file(st, owner, "nothing.png", dest), -GP_E_NOT_FOUND);
    assert_int_equal(access(dest, F_OK), -1); /* no file left behind */
    char *part = gp_xasprintf("%s.part", dest);
    assert_int_equal(access(part, F_OK), -1);
    free(part);
    char *url = NULL;
    assert_int_equal(gp_storage_put_bytes(st, owner, "a/b", "x", 1, NULL, &url), -GP_E_BAD_REQUEST);
    assert_int_equal(gp_storage_put_bytes(st, "x", "a.txt", "x", 1, NULL, &url), -GP_E_BAD_REQUEST);
    assert_int_equal(gp_storage_put_file(st, owner, "a.txt", "/nonexistent/file", NULL, &url),
                     -GP_E_IO);
    assert_null(url);
    free(dest);
    gp_storage_close(st);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    NEED_S3();
    const char *base = s3_url();
    const char *at = strchr(base, '@');
    assert_non_null(at);
    char *url = gp_xasprintf("s3://S3RVER:not-the-secret%s", at);
    gp_settings_t settings = {0};
    gp_storage_t *st = NULL;
    char err[512] = "";
    int rc = gp_storage_backend_s3.open(&st, url, &settings, err, sizeof err);
    print_message("wrong secret: %s\n", err);
    assert_int_not_equal(rc, 0);
    assert_null(st);
    assert_non_null(strstr(err, "SignatureDoesNotMatch"));
    assert_null(strstr(err, "not-the-secret"));
    free(url);

    /* a missing bucket */
    const char *slash = strchr(at, '/');
    char *nb = gp_xasprintf("%.*s/no-such-bucket-here?tls=false&path_style=true",
                            (int)(slash - base), base);
    rc = gp_storage_backend_s3.open(&st, nb, &settings, err, sizeof err);
    print_message("missing bucket: %s\n", err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "NoSuchBucket"));
    free(nb);
}

/* The URL parser alone (no server): what each part of the URL turns into. */
static void test_url_parse(void **state)
{
    (void)state;
    static const struct {
        const char *url, *origin, *host, *base_path, *prefix, *region;
        int64_t expires;
        size_t part;
    } cases[] = {
        {"s3://k:s@127.0.0.1:9000/b", "https://127.0.0.1:9000", "127.0.0.1:9000", "/b", "",
         "us-east-1", 3600, 16u << 20},
        {"s3://k:s@minio:443/b/out/x?tls=true&prefix=//p/q", "https://minio", "minio", "/b", "p/q/",
         "us-east-1", 3600, 16u << 20},
        {"s3://k:s@h:80/b/out?tls=false&path_style=false&presign_expires=60", "http://b.h", "b.h",
         "", "out/", "us-east-1", 60, 16u << 20},
        {"s3://k:s@/b?region=eu-west-1&multipart_threshold=5MiB&&",
         "https://b.s3.eu-west-1.amazonaws.com", "b.s3.eu-west-1.amazonaws.com", "", "",
         "eu-west-1", 3600, 5u << 20},
        {"s3://k:s@/b", "https://b.s3.amazonaws.com", "b.s3.amazonaws.com", "", "", "us-east-1",
         3600, 16u << 20},
        {"s3://k:s@[::1]:9000/b?path_style=1", "https://[::1]:9000", "[::1]:9000", "/b", "",
         "us-east-1", 3600, 16u << 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gp_s3_url_t u;
        char err[512] = "";
        int rc = gp_s3_url_parse(cases[i].url, &u, err, sizeof err);
        if (rc != 0)
            print_message("%s -> %s\n", cases[i].url, err);
        assert_int_equal(rc, 0);
        assert_string_equal(u.origin, cases[i].origin);
        assert_string_equal(u.host, cases[i].host);
        assert_string_equal(u.base_path, cases[i].base_path);
        assert_string_equal(u.bucket, "b");
        assert_string_equal(u.prefix, cases[i].prefix);
        assert_string_equal(u.region, cases[i].region);
        assert_string_equal(u.access_key, "k");
        assert_string_equal(u.secret_key, "s");
        assert_int_equal(u.presign_expires, cases[i].expires);
        assert_int_equal(u.part_size, cases[i].part);
        gp_s3_url_clear(&u);
        assert_null(u.origin);
    }
    /* a secret holding '@' and '/', percent-decoded credentials */
    gp_s3_url_t u;
    char err[512] = "";
    assert_int_equal(gp_s3_url_parse("s3://a%2Bk:se/c@ret@h/b", &u, err, sizeof err), 0);
    assert_string_equal(u.access_key, "a+k");
    assert_string_equal(u.secret_key, "se/c@ret");
    gp_s3_url_clear(&u);
    /* on failure the output is cleared */
    memset(&u, 0xff, sizeof u);
    assert_int_not_equal(gp_s3_url_parse("s3://k:s@h/b?x=1", &u, err, sizeof err), 0);
    assert_null(u.origin);
    assert_null(u.access_key);
    assert_true(strncmp(err, "storage url: ", 13) == 0);
}

static void test_bad_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *want;
    } cases[] = {
        {"s3://", "missing /bucket"},
        {"http://k:s@h/b", "must start with s3://"},
        {"s3://k:s@127.0.0.1:1", "missing /bucket"},
        {"s3://k:s@127.0.0.1:1/", "bucket"},
        {"s3://ks@127.0.0.1:1/b", "ACCESS_KEY:SECRET_KEY"},
        {"s3://:s@127.0.0.1:1/b", "empty"},
        {"s3://k:s@127.0.0.1:1/b?colour=blue", "unknown option"},
        {"s3://k:s@127.0.0.1:1/b?tls=maybe", "tls"},
        {"s3://k:s@127.0.0.1:1/b?multipart_threshold=1M", "multipart_threshold"},
        {"s3://k:s@127.0.0.1:1/b?multipart_threshold=lots", "multipart_threshold"},
        {"s3://k:s@127.0.0.1:1/b?presign_expires=0", "presign_expires"},
        {"s3://k:s@127.0.0.1:1/b?presign_expires=604801", "presign_expires"},
        {"s3://k:s@127.0.0.1:1/b?prefix=a/../b", "prefix"},
        {"s3://k:s@127.0.0.1:99999/b", "port"},
        {"s3://k:s@bad host/b", "host"},
        {"s3://k:s@127.0.0.1:1/b?region", "needs a value"},
        {"s3://k%00:s@127.0.0.1:1/b", "malformed"},
        {"s3://k%0D%0AX:s@127.0.0.1:1/b", "visible ASCII"},
        {"s3://k:s%20x@127.0.0.1:1/b", "visible ASCII"},
        {"s3://k/x:s@127.0.0.1:1/b", "access key"},
        {"s3://k:s@127.0.0.1:1/b?session_token=a%0Ab", "session_token"},
        {"s3://k:s@127.0.0.1:1/b?region=us/east", "region"},
        /* well-formed, but nothing listens on port 1 */
        {"s3://k:s@127.0.0.1:1/b?tls=false", "cannot reach"},
    };
    gp_settings_t settings = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gp_storage_t *st = NULL;
        char err[512] = "";
        int rc = gp_storage_backend_s3.open(&st, cases[i].url, &settings, err, sizeof err);
        if (rc == 0 || !strstr(err, cases[i].want))
            print_message("%s -> rc %d, \"%s\" (want \"%s\")\n", cases[i].url, rc, err,
                          cases[i].want);
        assert_int_not_equal(rc, 0);
        assert_null(st);
        assert_non_null(strstr(err, cases[i].want));
        assert_null(strstr(err, ":s@")); /* the secret never appears */
    }
    /* no credentials in the URL nor in the environment */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    gp_storage_t *st = NULL;
    char err[512] = "";
    assert_int_not_equal(
        gp_storage_backend_s3.open(&st, "s3://127.0.0.1:1/b", &settings, err, sizeof err), 0);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
}

static void test_env_credentials(void **state)
{
    (void)state;
    NEED_S3();
    const char *base = s3_url();
    const char *at = strchr(base, '@');
    char *url = gp_xasprintf("s3://%s", at + 1);
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    gp_settings_t settings = {0};
    gp_storage_t *st = NULL;
    char err[512] = "";
    int rc = gp_storage_backend_s3.open(&st, url, &settings, err, sizeof err);
    if (rc)
        print_message("%s\n", err);
    assert_int_equal(rc, 0);
    gp_storage_close(st);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    free(url);
}

static void test_virtual_host_style(void **state)
{
    (void)state;
    NEED_S3();
    /* s3rver (tools/s3rver/server.js) serves BUCKET.s3.localhost */
    const char *base = s3_url();
    const char *ip = strstr(base, "127.0.0.1");
    assert_non_null(ip);
    char *url = gp_xasprintf("%.*ss3.localhost%s&path_style=false", (int)(ip - base), base,
                             ip + strlen("127.0.0.1"));
    gp_settings_t settings = {0};
    gp_storage_t *st = NULL;
    char err[512] = "";
    int rc = gp_storage_backend_s3.open(&st, url, &settings, err, sizeof err);
    if (rc)
        print_message("%s\n", err);
    assert_int_equal(rc, 0);
    char owner[37];
    gp_uuid7(owner);
    char *link = NULL;
    assert_int_equal(gp_storage_put_bytes(st, owner, "v.txt", "vhost", 5, NULL, &link), 0);
    assert_non_null(strstr(link, "://genpulse-test.s3.localhost:"));
    mem_t m;
    assert_int_equal(fetch(link, &m), 200);
    assert_int_equal(m.n, 5);
    assert_memory_equal(m.p, "vhost", 5);
    free(m.p);
    free(link);
    gp_storage_close(st);
    /* and the object is the same one path-style access sees */
    st = open_with(NULL);
    char *dest = tmp_path("vhost");
    assert_int_equal(gp_storage_get_file(st, owner, "v.txt", dest), 0);
    size_t n = 0;
    unsigned char *got = read_all(dest, &n);
    assert_int_equal(n, 5);
    free(got);
    unlink(dest);
    free(dest);
    gp_storage_close(st);
    free(url);
}

static double now_s(void)
{
    return (double)gp_mono_ms() / 1000.0;
}

static void test_bench_50mib(void **state)
{
    (void)state;
    NEED_S3();
    const char *b = getenv("GENPULSE_TEST_S3_BENCH");
    if (!b || strcmp(b, "1")) {
        print_message("GENPULSE_TEST_S3_BENCH=1 not set: skipped\n");
        skip();
    }
    size_t size = 50u * 1024 * 1024;
    unsigned char *data = malloc(size);
    assert_non_null(data);
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    char *src = tmp_path("bench-src"), *dest = tmp_path("bench-dst");
    assert_int_equal(gp_write_file_atomic(src, data, size), 0);
    const char *modes[] = {"multipart_threshold=64M", "multipart_threshold=16M"};
    for (size_t k = 0; k < 2; k++) {
        gp_storage_t *st = open_with(modes[k]);
        char owner[37];
        gp_uuid7(owner);
        char *url = NULL;
        double t0 = now_s();
        assert_int_equal(gp_storage_put_file(st, owner, "bench.bin", src, NULL, &url), 0);
        double t1 = now_s();
        assert_int_equal(gp_storage_get_file(st, owner, "bench.bin", dest), 0);
        double t2 = now_s();
        print_message("50 MiB, %s: PUT %.2f s (%.1f MiB/s), GET %.2f s (%.1f MiB/s)\n", modes[k],
                      t1 - t0, 50 / (t1 - t0), t2 - t1, 50 / (t2 - t1));
        free(url);
        gp_storage_close(st);
    }
    unlink(src);
    unlink(dest);
    free(src);
    free(dest);
    free(data);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_put_bytes_get_file),
        cmocka_unit_test(test_multipart_round_trip),
        cmocka_unit_test(test_multipart_failures),
        cmocka_unit_test(test_presign_and_expiry),
        cmocka_unit_test(test_missing_object_and_bad_names),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_env_credentials),
        cmocka_unit_test(test_virtual_host_style),
        cmocka_unit_test(test_bench_50mib),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
