/*
 * test_util.c — the string map, UUIDv7, time formatting, file helpers and the storage name
 * and content-type helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/base64.h"
#include "core/media_type.h"
#include <genpulse/task_errors.h>
#include "core/util.h"
#include "infra/storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- gp_strmap ---- */

static void test_strmap_basic(void **state)
{
    (void)state;
    gp_strmap_t *m = gp_strmap_new();
    assert_non_null(m);
    int a = 1, b = 2, c = 3;
    assert_int_equal(gp_strmap_count(m), 0);
    assert_null(gp_strmap_get(m, "a"));
    assert_null(gp_strmap_del(m, "a"));

    assert_null(gp_strmap_put(m, "a", &a));
    assert_null(gp_strmap_put(m, "b", &b));
    assert_int_equal(gp_strmap_count(m), 2);
    assert_ptr_equal(gp_strmap_get(m, "a"), &a);
    assert_ptr_equal(gp_strmap_get(m, "b"), &b);
    assert_null(gp_strmap_get(m, "c"));
    assert_null(gp_strmap_get(m, ""));

    /* overwrite returns the previous value and keeps the count */
    assert_ptr_equal(gp_strmap_put(m, "a", &c), &a);
    assert_ptr_equal(gp_strmap_get(m, "a"), &c);
    assert_int_equal(gp_strmap_count(m), 2);

    /* keys are copied */
    char key[8] = "dyn";
    assert_null(gp_strmap_put(m, key, &a));
    strcpy(key, "xxx");
    assert_ptr_equal(gp_strmap_get(m, "dyn"), &a);
    assert_null(gp_strmap_get(m, "xxx"));

    /* the empty string is a key like any other */
    assert_null(gp_strmap_put(m, "", &b));
    assert_ptr_equal(gp_strmap_get(m, ""), &b);

    assert_ptr_equal(gp_strmap_del(m, "a"), &c);
    assert_null(gp_strmap_get(m, "a"));
    assert_null(gp_strmap_del(m, "a"));
    assert_int_equal(gp_strmap_count(m), 3);
    /* reinsert after delete */
    assert_null(gp_strmap_put(m, "a", &a));
    assert_ptr_equal(gp_strmap_get(m, "a"), &a);
    assert_int_equal(gp_strmap_count(m), 4);
    gp_strmap_free(m);
    gp_strmap_free(NULL);
}

static void count_entries(const char *key, void *value, void *arg)
{
    size_t *n = arg;
    /* the value is the key's index + 1, stored as a pointer-sized integer */
    char expect[32];
    snprintf(expect, sizeof expect, "key-%zu", (size_t)(uintptr_t)value - 1);
    assert_string_equal(key, expect);
    (*n)++;
}

#define N_KEYS 10000

static void *val(size_t i)
{
    return (void *)(uintptr_t)(i + 1);
}

static void test_strmap_many(void **state)
{
    (void)state;
    gp_strmap_t *m = gp_strmap_new();
    char key[32];
    for (size_t i = 0; i < N_KEYS; i++) {
        snprintf(key, sizeof key, "key-%zu", i);
        assert_null(gp_strmap_put(m, key, val(i)));
    }
    assert_int_equal(gp_strmap_count(m), N_KEYS);
    for (size_t i = 0; i < N_KEYS; i++) {
        snprintf(key, sizeof key, "key-%zu", i);
        assert_ptr_equal(gp_strmap_get(m, key), val(i));
    }
    /* delete every odd key */
    for (size_t i = 1; i < N_KEYS; i += 2) {
        snprintf(key, sizeof key, "key-%zu", i);
        assert_ptr_equal(gp_strmap_del(m, key), val(i));
    }
    assert_int_equal(gp_strmap_count(m), N_KEYS / 2);
    for (size_t i = 0; i < N_KEYS; i++) {
        snprintf(key, sizeof key, "key-%zu", i);
        if (i % 2)
            assert_null(gp_strmap_get(m, key));
        else
            assert_ptr_equal(gp_strmap_get(m, key), val(i));
    }
    size_t n = 0;
    gp_strmap_each(m, count_entries, &n);
    assert_int_equal(n, N_KEYS / 2);

    /* reinsert the odd ones */
    for (size_t i = 1; i < N_KEYS; i += 2) {
        snprintf(key, sizeof key, "key-%zu", i);
        assert_null(gp_strmap_put(m, key, val(i)));
    }
    assert_int_equal(gp_strmap_count(m), N_KEYS);
    for (size_t i = 0; i < N_KEYS; i++) {
        snprintf(key, sizeof key, "key-%zu", i);
        assert_ptr_equal(gp_strmap_get(m, key), val(i));
    }
    n = 0;
    gp_strmap_each(m, count_entries, &n);
    assert_int_equal(n, N_KEYS);
    gp_strmap_free(m);
}

static void test_strmap_churn(void **state)
{
    (void)state;
    /* a small live set with many insert/delete cycles: tombstones must be reclaimed and
     * lookups must keep terminating */
    gp_strmap_t *m = gp_strmap_new();
    char key[32];
    for (size_t round = 0; round < 200; round++) {
        for (size_t i = 0; i < 50; i++) {
            snprintf(key, sizeof key, "r%zu-%zu", round, i);
            assert_null(gp_strmap_put(m, key, val(i)));
        }
        for (size_t i = 0; i < 50; i++) {
            snprintf(key, sizeof key, "r%zu-%zu", round, i);
            assert_ptr_equal(gp_strmap_del(m, key), val(i));
        }
        assert_int_equal(gp_strmap_count(m), 0);
    }
    snprintf(key, sizeof key, "r0-0");
    assert_null(gp_strmap_get(m, key));
    assert_null(gp_strmap_get(m, "missing"));
    gp_strmap_free(m);
}

/* ---- ids ---- */

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void test_uuid7(void **state)
{
    (void)state;
    char prev[37] = "";
    for (int k = 0; k < 1000; k++) {
        char u[37];
        memset(u, 'X', sizeof u);
        int64_t before = gp_now_ms();
        gp_uuid7(u);
        int64_t after = gp_now_ms();
        assert_int_equal(strlen(u), 36);
        assert_true(gp_is_uuid(u));
        assert_int_equal(u[8], '-');
        assert_int_equal(u[13], '-');
        assert_int_equal(u[18], '-');
        assert_int_equal(u[23], '-');
        assert_int_equal(u[14], '7');           /* version */
        assert_non_null(strchr("89ab", u[19])); /* RFC 9562 variant */
        /* the first 48 bits are the Unix time in ms */
        int64_t ms = 0;
        for (int i = 0; i < 13; i++)
            if (i != 8)
                ms = ms * 16 + hexval(u[i]);
        assert_true(ms >= before && ms <= after);
        /* time-ordered: never sorts before an id from an earlier millisecond */
        if (prev[0] && strncmp(prev, u, 13) != 0)
            assert_true(strcmp(prev, u) < 0);
        assert_string_not_equal(prev, u);
        memcpy(prev, u, sizeof prev);
    }
}

static void test_is_uuid(void **state)
{
    (void)state;
    assert_true(gp_is_uuid("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"));
    assert_true(gp_is_uuid("00000000-0000-0000-0000-000000000000"));
    assert_false(gp_is_uuid(NULL));
    assert_false(gp_is_uuid(""));
    assert_false(gp_is_uuid("0190A5B2-7C3D-7E4F-8A1B-2C3D4E5F6A7B"));  /* not canonical */
    assert_false(gp_is_uuid("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7"));   /* 35 */
    assert_false(gp_is_uuid("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7bc")); /* 37 */
    assert_false(gp_is_uuid("0190a5b2x7c3d-7e4f-8a1b-2c3d4e5f6a7b"));
    assert_false(gp_is_uuid("0190a5b27c3d7e4f8a1b2c3d4e5f6a7b0000"));
    assert_false(gp_is_uuid("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7g"));
    assert_false(gp_is_uuid("../../../etc/passwd-0000-0000-000000"));
}

static void test_random_below(void **state)
{
    (void)state;
    assert_int_equal(gp_random_below(0), 0);
    assert_int_equal(gp_random_below(1), 0);
    int seen[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = gp_random_below(7);
        assert_true(v < 7);
        seen[v]++;
    }
    for (int i = 0; i < 7; i++)
        assert_true(seen[i] > 500);
}

/* ---- time ---- */

static void test_format_time(void **state)
{
    (void)state;
    char buf[40];
    gp_format_time(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    gp_format_time(1700000000123, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
    gp_format_time(1795432690123, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-23T11:18:10.123Z");
    gp_format_time(951868799999, buf, sizeof buf); /* leap day, last ms */
    assert_string_equal(buf, "2000-02-29T23:59:59.999Z");
    gp_format_time(1000, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:01.000Z");
    gp_format_time(7, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.007Z");

    /* now: the right shape */
    gp_format_time(gp_now_ms(), buf, sizeof buf);
    assert_int_equal(strlen(buf), 24);
    assert_int_equal(buf[4], '-');
    assert_int_equal(buf[10], 'T');
    assert_int_equal(buf[19], '.');
    assert_int_equal(buf[23], 'Z');

    /* a short buffer is truncated, never overrun */
    char small[8];
    gp_format_time(1700000000123, small, sizeof small);
    assert_string_equal(small, "2023-11");
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t a = gp_mono_ms(), b = gp_mono_ms();
    assert_true(b >= a);
    assert_true(gp_now_ms() > 1600000000000LL);
    char *s = gp_xasprintf("%s-%d", "x", 42);
    assert_string_equal(s, "x-42");
    free(s);
    s = gp_xstrdup(NULL);
    assert_string_equal(s, "");
    free(s);
}

/* ---- files ---- */

static void test_files(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/gp-test-util-XXXXXX";
    char *root = mkdtemp(tmpl);
    assert_non_null(root);
    char *deep = gp_xasprintf("%s/a/b/c", root);
    assert_int_equal(gp_mkdirs(deep, 0755), 0);
    assert_int_equal(gp_mkdirs(deep, 0755), 0); /* exists: fine */
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    char *file = gp_xasprintf("%s/data.bin", deep);
    assert_int_equal(gp_write_file_atomic(file, "hello", 5), 0);
    assert_int_equal(gp_write_file_atomic(file, "bye", 3), 0); /* replaces */
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    char got[16] = "";
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    assert_int_equal(n, 3);
    assert_memory_equal(got, "bye", 3);
    char *bad = gp_xasprintf("%s/missing-dir/x", root);
    assert_true(gp_write_file_atomic(bad, "x", 1) < 0);

    assert_int_equal(gp_rmtree(root), 0);
    assert_int_not_equal(stat(root, &st), 0);
    assert_int_equal(gp_rmtree(root), 0); /* already gone */
    free(bad);
    free(file);
    free(deep);
}

/* ---- storage helpers ---- */

static void test_storage_name_ok(void **state)
{
    (void)state;
    assert_true(gp_storage_name_ok("image.png"));
    assert_true(gp_storage_name_ok("a"));
    assert_true(gp_storage_name_ok("out-1_final.v2.WAV"));
    assert_true(gp_storage_name_ok("x.")); /* a trailing dot is harmless */

    assert_false(gp_storage_name_ok("../x"));
    assert_false(gp_storage_name_ok(".."));
    assert_false(gp_storage_name_ok("."));
    assert_false(gp_storage_name_ok(".hidden"));
    assert_false(gp_storage_name_ok("a/b"));
    assert_false(gp_storage_name_ok("/etc"));
    assert_false(gp_storage_name_ok("a\\b"));
    assert_false(gp_storage_name_ok(""));
    assert_false(gp_storage_name_ok(NULL));
    assert_false(gp_storage_name_ok("a b"));
    assert_false(gp_storage_name_ok("a\nb"));
    assert_false(gp_storage_name_ok("caf\xc3\xa9.png"));
    assert_false(gp_storage_name_ok("x?.png"));

    char name[131];
    memset(name, 'n', sizeof name);
    name[128] = '\0';
    assert_true(gp_storage_name_ok(name)); /* 128 */
    name[128] = 'n';
    name[129] = '\0';
    assert_false(gp_storage_name_ok(name)); /* 129 */
}

static void test_storage_content_type(void **state)
{
    (void)state;
    assert_string_equal(gp_media_type_of_name("a.png"), "image/png");
    assert_string_equal(gp_media_type_of_name("A.PNG"), "image/png");
    assert_string_equal(gp_media_type_of_name("photo.jpg"), "image/jpeg");
    assert_string_equal(gp_media_type_of_name("photo.jpeg"), "image/jpeg");
    assert_string_equal(gp_media_type_of_name("speech.wav"), "audio/wav");
    assert_string_equal(gp_media_type_of_name("song.mp3"), "audio/mpeg");
    assert_string_equal(gp_media_type_of_name("clip.mp4"), "video/mp4");
    assert_string_equal(gp_media_type_of_name("r.json"), "application/json");
    assert_string_equal(gp_media_type_of_name("notes.txt"), "text/plain; charset=utf-8");
    /* the last extension counts */
    assert_string_equal(gp_media_type_of_name("a.png.txt"), "text/plain; charset=utf-8");
    assert_string_equal(gp_media_type_of_name("a.txt.png"), "image/png");
    /* unknown */
    assert_string_equal(gp_media_type_of_name("archive.tar.gz"), "application/octet-stream");
    assert_string_equal(gp_media_type_of_name("png"), "application/octet-stream");
    assert_string_equal(gp_media_type_of_name("a.pngx"), "application/octet-stream");
    assert_string_equal(gp_media_type_of_name("noext"), "application/octet-stream");
    assert_string_equal(gp_media_type_of_name(""), "application/octet-stream");
    assert_string_equal(gp_media_type_of_name(NULL), "application/octet-stream");
}

static void test_base64_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *plain, *coded;
    } vectors[] = {
        /* RFC 4648 §10 */
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char *e = gp_base64_encode(vectors[i].plain, strlen(vectors[i].plain));
        assert_string_equal(e, vectors[i].coded);
        size_t n = 0;
        unsigned char *d = gp_base64_decode(e, strlen(e), &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(vectors[i].plain));
        assert_memory_equal(d, vectors[i].plain, n);
        free(d);
        free(e);
    }
    size_t n;
    assert_null(gp_base64_decode("Zm9v!", 5, &n));
}

static void test_uuid4_format(void **state)
{
    (void)state;
    char a[37], b[37];
    gp_uuid4(a);
    gp_uuid4(b);
    assert_true(gp_is_uuid(a));
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
}

/* The task error list: codes unique, lower snake case, every meaning written. */
static void test_task_error_list(void **state)
{
    (void)state;
    for (int i = 0; i < GP_TE__COUNT; i++) {
        const char *code = gp_task_error_code((gp_task_error_t)i);
        assert_true(strlen(code) > 0 && strlen(gp_task_error_meaning((gp_task_error_t)i)) > 10);
        for (const char *p = code; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(code, gp_task_error_code((gp_task_error_t)j));
    }
    assert_string_equal(gp_task_error_code((gp_task_error_t)-1), "provider_error");
    assert_true(gp_task_error_retryable(GP_TE_OUT_OF_MEMORY, 0));
    assert_false(gp_task_error_retryable(GP_TE_PROVIDER_AUTH, 1));
    assert_true(gp_task_error_retryable(GP_TE_ENGINE_ERROR, 1));
    assert_false(gp_task_error_retryable(GP_TE_ENGINE_ERROR, 0));
}

/* One table of media types: by name, by type, by bytes. */
static void test_media_types(void **state)
{
    (void)state;
    assert_string_equal(gp_media_ext_of_type("image/JPEG; q=1"), "jpg");
    assert_string_equal(gp_media_ext_of_type("audio/x-wav"), "wav");
    assert_string_equal(gp_media_ext_of_type("text/plain"), "txt");
    assert_null(gp_media_ext_of_type("application/x-unknown"));
    assert_null(gp_media_ext_of_type(NULL));
    assert_string_equal(gp_media_sniff("\x89PNG\r\n\x1a\n", 8), "image/png");
    assert_string_equal(gp_media_sniff("\xff\xd8\xff\xe0", 4), "image/jpeg");
    assert_string_equal(gp_media_sniff("RIFF\0\0\0\0WAVE", 12), "audio/wav");
    assert_string_equal(gp_media_sniff("RIFF\0\0\0\0WEBP", 12), "image/webp");
    assert_string_equal(gp_media_sniff("\0\0\0\x18"
                                       "ftypmp42",
                                       12),
                        "video/mp4");
    assert_null(gp_media_sniff("hello", 5));
    assert_null(gp_media_sniff(NULL, 0));
    assert_true(gp_media_is("image/png", "image"));
    assert_false(gp_media_is("imagex/png", "image"));
    assert_false(gp_media_is(NULL, "image"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strmap_basic),
        cmocka_unit_test(test_strmap_many),
        cmocka_unit_test(test_strmap_churn),
        cmocka_unit_test(test_uuid7),
        cmocka_unit_test(test_is_uuid),
        cmocka_unit_test(test_random_below),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_storage_name_ok),
        cmocka_unit_test(test_storage_content_type),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_uuid4_format),
        cmocka_unit_test(test_task_error_list),
        cmocka_unit_test(test_media_types),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
