/*
 * util.h — small shared helpers: allocation with an OOM policy, time, ids, string map.
 * All functions are thread-safe unless noted.
 */
#ifndef GP_UTIL_H
#define GP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Abort on OOM: for small internal objects only; user-sized buffers use plain malloc. */
void *gp_xmalloc(size_t n);
void *gp_xcalloc(size_t n, size_t size);
char *gp_xstrdup(const char *s);
/* printf into a new string (free()); aborts on OOM. */
char *gp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall clock in milliseconds since the Unix epoch. */
int64_t gp_now_ms(void);
/* Monotonic clock in milliseconds. */
int64_t gp_mono_ms(void);
/* The absolute time ms from now on clock (CLOCK_REALTIME or CLOCK_MONOTONIC), for
 * pthread_cond_timedwait with a condition variable using that clock. */
struct timespec gp_deadline_in(int clock, int64_t ms);
/* RFC 3339 UTC with milliseconds ("2026-11-23T11:18:10.123Z") into buf (>= 32 bytes). */
void gp_format_time(int64_t ms, char *buf, size_t cap);

/* Fill with bytes from the OS CSPRNG (getrandom). */
void gp_random_bytes(void *buf, size_t n);
/* Uniform in [0, bound). */
uint64_t gp_random_below(uint64_t bound);
/* A UUIDv7 (time-ordered) as 36 chars + NUL into out[37]. */
void gp_uuid7(char out[37]);
/* A random UUIDv4 (Celery's delivery tags) as 36 chars + NUL into out[37]. */
void gp_uuid4(char out[37]);
/* True if s is a canonical lowercase UUID string. */
bool gp_is_uuid(const char *s);

/* mkdir -p; returns 0 or -errno. */
int gp_mkdirs(const char *path, unsigned mode);
/* rm -rf of a directory we created; returns 0 or -errno. */
int gp_rmtree(const char *path);
/* Write a whole file atomically (tmp + rename); returns 0 or -errno. */
int gp_write_file_atomic(const char *path, const void *data, size_t len);

/* An open-addressing string → pointer map. Not thread-safe: callers lock. Keys are copied. */
typedef struct gp_strmap gp_strmap_t;
gp_strmap_t *gp_strmap_new(void);
/* Frees the map and its keys, not the values. */
void gp_strmap_free(gp_strmap_t *m);
void *gp_strmap_get(const gp_strmap_t *m, const char *key);
/* Sets key → value (value must be non-NULL); returns the previous value or NULL. */
void *gp_strmap_put(gp_strmap_t *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *gp_strmap_del(gp_strmap_t *m, const char *key);
size_t gp_strmap_count(const gp_strmap_t *m);
/* Calls fn for each entry; fn must not modify the map. */
void gp_strmap_each(const gp_strmap_t *m, void (*fn)(const char *key, void *value, void *arg),
                    void *arg);

#endif
