/*
 * util.c — allocation, clocks, ids, files and a small string map.
 *
 * The string map is written here rather than taken from glib: it is 100 lines and the only
 * container the core needs, and glib would bring its own allocator and main loop with it.
 */
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
    fputs("genpulse: out of memory\n", stderr);
    abort();
}

void *gp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *gp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

char *gp_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        oom();
    return p;
}

char *gp_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom();
    return out;
}

int64_t gp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gp_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec gp_deadline_in(int clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime((clockid_t)clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void gp_format_time(int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

void gp_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* the kernel CSPRNG does not fail on Linux >= 3.17 */
        }
        p += got;
        n -= (size_t)got;
    }
}

uint64_t gp_random_below(uint64_t bound)
{
    if (bound <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound, v;
    do
        gp_random_bytes(&v, sizeof v);
    while (v >= limit);
    return v % bound;
}

static void format_uuid(const unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void gp_uuid7(char out[37])
{
    unsigned char b[16];
    uint64_t ms = (uint64_t)gp_now_ms();
    gp_random_bytes(b + 6, 10);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    format_uuid(b, out);
}

void gp_uuid4(char out[37])
{
    unsigned char b[16];
    gp_random_bytes(b, sizeof b);
    b[6] = (unsigned char)(0x40 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    format_uuid(b, out);
}

bool gp_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

int gp_mkdirs(const char *path, unsigned mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
                return -errno;
            buf[i] = saved;
        }
    }
    return 0;
}

int gp_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *child = gp_xasprintf("%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            rc = gp_rmtree(child);
        else if (unlink(child) != 0)
            rc = -errno;
        free(child);
    }
    closedir(d);
    if (rmdir(path) != 0)
        rc = -errno;
    return rc;
}

int gp_write_file_atomic(const char *path, const void *data, size_t len)
{
    char *tmp = gp_xasprintf("%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = -errno;
        free(tmp);
        return e;
    }
    const char *p = data;
    size_t left = len;
    int rc = 0;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- string map: open addressing with linear probing and tombstones ---- */

struct gp_strmap {
    char **keys; /* NULL = empty, TOMBSTONE = deleted */
    void **values;
    size_t cap, count, used;
};

static char tombstone_marker;
#define TOMBSTONE (&tombstone_marker)

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

gp_strmap_t *gp_strmap_new(void)
{
    gp_strmap_t *m = gp_xcalloc(1, sizeof *m);
    m->cap = 16;
    m->keys = gp_xcalloc(m->cap, sizeof *m->keys);
    m->values = gp_xcalloc(m->cap, sizeof *m->values);
    return m;
}

void gp_strmap_free(gp_strmap_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != TOMBSTONE)
            free(m->keys[i]);
    free(m->keys);
    free(m->values);
    free(m);
}

static size_t find_slot(const gp_strmap_t *m, const char *key, bool *found)
{
    size_t mask = m->cap - 1, i = (size_t)hash_str(key) & mask, first_free = SIZE_MAX;
    for (;;) {
        char *k = m->keys[i];
        if (!k) {
            *found = false;
            return first_free != SIZE_MAX ? first_free : i;
        }
        if (k == TOMBSTONE) {
            if (first_free == SIZE_MAX)
                first_free = i;
        } else if (!strcmp(k, key)) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void grow(gp_strmap_t *m)
{
    size_t old_cap = m->cap;
    char **old_keys = m->keys;
    void **old_values = m->values;
    size_t new_cap = m->count * 4 > old_cap ? old_cap * 2 : old_cap;
    m->cap = new_cap;
    m->keys = gp_xcalloc(new_cap, sizeof *m->keys);
    m->values = gp_xcalloc(new_cap, sizeof *m->values);
    m->used = m->count;
    for (size_t i = 0; i < old_cap; i++) {
        if (old_keys[i] && old_keys[i] != TOMBSTONE) {
            bool found;
            size_t s = find_slot(m, old_keys[i], &found);
            m->keys[s] = old_keys[i];
            m->values[s] = old_values[i];
        }
    }
    free(old_keys);
    free(old_values);
}

void *gp_strmap_get(const gp_strmap_t *m, const char *key)
{
    bool found;
    size_t s = find_slot(m, key, &found);
    return found ? m->values[s] : NULL;
}

void *gp_strmap_put(gp_strmap_t *m, const char *key, void *value)
{
    if ((m->used + 1) * 4 >= m->cap * 3)
        grow(m);
    bool found;
    size_t s = find_slot(m, key, &found);
    if (found) {
        void *old = m->values[s];
        m->values[s] = value;
        return old;
    }
    if (!m->keys[s])
        m->used++;
    m->keys[s] = gp_xstrdup(key);
    m->values[s] = value;
    m->count++;
    return NULL;
}

void *gp_strmap_del(gp_strmap_t *m, const char *key)
{
    bool found;
    size_t s = find_slot(m, key, &found);
    if (!found)
        return NULL;
    void *old = m->values[s];
    free(m->keys[s]);
    m->keys[s] = TOMBSTONE;
    m->values[s] = NULL;
    m->count--;
    return old;
}

size_t gp_strmap_count(const gp_strmap_t *m)
{
    return m->count;
}

void gp_strmap_each(const gp_strmap_t *m, void (*fn)(const char *, void *, void *), void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != TOMBSTONE)
            fn(m->keys[i], m->values[i], arg);
}
