/*
 * signed_link.c — signed, expiring file links and the secret behind them (see signed_link.h).
 *
 * The string to sign is "GET\n" path "\n" expires, with expires in canonical decimal (the
 * checker re-formats the value it parsed), so "0012" and "12" name the same instant and the
 * same signature. The method is in it so that a future signed PUT cannot be replayed as a
 * GET; the newline cannot occur in a path, so (path, expires) is read back unambiguously.
 *
 * The secret file is published with link(2) rather than rename(2): rename replaces, so two
 * processes starting together would each keep the secret it made while only one survives in
 * the file; link fails with EEXIST, the loser reads the winner's.
 */
#include "core/signed_link.h"
#include "core/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINK_DECIMAL_MAX 20 /* digits of expires accepted */

/* Does the query of path already have an expires or signature parameter? The checking side
 * takes those two out of the request's query to rebuild the signed path, so such a link could
 * never be checked. */
static bool link_query_reserved(const char *path)
{
    const char *q = strchr(path, '?');
    for (const char *p = q; p; p = strchr(p + 1, '&'))
        if (!strncmp(p + 1, "expires=", 8) || !strncmp(p + 1, "signature=", 10))
            return true;
    return false;
}

static bool link_path_ok(const char *p)
{
    if (!p || p[0] != '/' || strnlen(p, GP_LINK_PATH_MAX + 1) > GP_LINK_PATH_MAX)
        return false;
    for (const char *c = p; *c; c++)
        if (*c < 0x21 || *c > 0x7e || *c == '#')
            return false;
    return !link_query_reserved(p);
}

/* sig = base64url(HMAC-SHA256(secret, "GET\n" path "\n" expires)); path is link_path_ok. */
static void link_sign(const uint8_t *secret, size_t secret_len, const char *path, int64_t expires,
                      char sig[GP_SIGNATURE_LEN + 1])
{
    char msg[4 + GP_LINK_PATH_MAX + 1 + LINK_DECIMAL_MAX + 1];
    int n = snprintf(msg, sizeof msg, "GET\n%s\n%lld", path, (long long)expires);
    uint8_t mac[GP_SHA256_LEN];
    gp_hmac_sha256(secret, secret_len, msg, (size_t)n, mac);
    gp_base64url(mac, sizeof mac, sig);
}

/* Plain decimal, 1 to LINK_DECIMAL_MAX digits, within int64_t. */
static int link_parse_expires(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    int64_t v = 0;
    size_t i = 0;
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= LINK_DECIMAL_MAX)
            return -1;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (i == 0)
        return -1;
    *out = v;
    return 0;
}

char *gp_signed_link(const uint8_t *secret, size_t secret_len, const char *base_url,
                     const char *path, int64_t expires_unix_s)
{
    if (!secret || secret_len < GP_SECRET_MIN_LEN || !link_path_ok(path) || expires_unix_s < 0)
        return NULL;
    if (!base_url)
        base_url = "";
    char sig[GP_SIGNATURE_LEN + 1];
    link_sign(secret, secret_len, path, expires_unix_s, sig);
    const char *sep = strchr(path, '?') ? "&" : "?";
    size_t cap = strlen(base_url) + strlen(path) +
                 sizeof "?expires=&signature=" + LINK_DECIMAL_MAX + GP_SIGNATURE_LEN;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, "%s%s%sexpires=%lld&signature=%s", base_url, path, sep,
                 (long long)expires_unix_s, sig);
    return out;
}

int gp_signed_link_check(const uint8_t *secret, size_t secret_len, const char *path,
                         const char *expires, const char *signature, int64_t now_unix_s)
{
    int64_t exp = 0;
    if (!secret || secret_len < GP_SECRET_MIN_LEN || !link_path_ok(path) || !signature ||
        strnlen(signature, GP_SIGNATURE_LEN + 1) != GP_SIGNATURE_LEN ||
        link_parse_expires(expires, &exp) != 0)
        return GP_LINK_BAD;
    char want[GP_SIGNATURE_LEN + 1];
    link_sign(secret, secret_len, path, exp, want);
    if (!gp_ct_equal(want, signature, GP_SIGNATURE_LEN))
        return GP_LINK_BAD;
    return now_unix_s >= exp ? GP_LINK_EXPIRED : GP_LINK_OK;
}

/* ---- the secret ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gp_secret_parse_hex(const char *hex, uint8_t out[GP_SECRET_LEN])
{
    if (!hex || strnlen(hex, 2 * GP_SECRET_LEN + 1) != 2 * GP_SECRET_LEN)
        return -1;
    uint8_t tmp[GP_SECRET_LEN];
    for (size_t i = 0; i < GP_SECRET_LEN; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(tmp, sizeof tmp);
            return -1;
        }
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, tmp, sizeof tmp);
    OPENSSL_cleanse(tmp, sizeof tmp);
    return 0;
}

/* Up to cap bytes of fd; the count, or -errno. */
static ssize_t read_upto(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    return (ssize_t)n;
}

/* 0, -ENOENT when there is no file, -EINVAL when it holds no secret, or -errno. */
static int secret_read(const char *path, uint8_t out[GP_SECRET_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    char buf[2 * GP_SECRET_LEN + 2]; /* one byte more than a valid file, to see a longer one */
    ssize_t n = -EINVAL;
    if (fstat(fd, &st) != 0)
        n = -errno;
    else if (S_ISREG(st.st_mode))
        n = read_upto(fd, buf, sizeof buf);
    close(fd);
    if (n < 0)
        return (int)n;
    if (n == 2 * GP_SECRET_LEN + 1 && buf[2 * GP_SECRET_LEN] == '\n')
        n--;
    int rc = -EINVAL;
    if (n == 2 * GP_SECRET_LEN) {
        buf[n] = '\0';
        rc = gp_secret_parse_hex(buf, out) == 0 ? 0 : -EINVAL;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Best effort: the secret is already readable; this only makes its name survive a crash. */
static void fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* A new secret into a temporary file, linked to path. 0, -EEXIST when another process
 * published first, or -errno. */
static int secret_publish(const char *path)
{
    uint8_t key[GP_SECRET_LEN];
    char text[2 * GP_SECRET_LEN + 2];
    if (RAND_bytes(key, (int)sizeof key) != 1)
        return -EIO;
    gp_hex(key, sizeof key, text);
    OPENSSL_cleanse(key, sizeof key);
    text[2 * GP_SECRET_LEN] = '\n';
    size_t cap = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(cap);
    if (!tmp) {
        OPENSSL_cleanse(text, sizeof text);
        return -ENOMEM;
    }
    snprintf(tmp, cap, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC); /* O_CREAT|O_EXCL, mode 0600 */
    int rc = fd < 0 ? -errno : write_all(fd, text, 2 * GP_SECRET_LEN + 1);
    OPENSSL_cleanse(text, sizeof text);
    if (fd >= 0) {
        if (rc == 0 && fsync(fd) != 0)
            rc = -errno;
        close(fd);
        if (rc == 0 && link(tmp, path) != 0)
            rc = -errno;
        unlink(tmp);
    }
    free(tmp);
    if (rc == 0)
        fsync_parent(path);
    return rc;
}

int gp_secret_load_or_create(const char *path, uint8_t out[GP_SECRET_LEN])
{
    if (!path || !*path)
        return -EINVAL;
    int rc = secret_read(path, out);
    if (rc != -ENOENT)
        return rc;
    rc = secret_publish(path);
    if (rc != 0 && rc != -EEXIST)
        return rc;
    /* Winner or loser, what counts is what the file holds. */
    return secret_read(path, out);
}
