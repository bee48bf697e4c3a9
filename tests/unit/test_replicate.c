/*
 * test_replicate.c — the replicate provider's parsers, which see untrusted provider text:
 * tqdm progress in logs, model references, output file names and output shapes. The HTTP
 * paths are covered black-box (tests/blackbox/test_provider_replicate.py).
 *
 * The provider's helpers are static, so the source is included here; the library's own
 * copy of the object is then never pulled in by the linker (every symbol is already here).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "providers/replicate.c"

static int tqdm(const char *line)
{
    return tqdm_line_percent(line, strlen(line));
}

static void test_tqdm_lines(void **state)
{
    (void)state;
    assert_int_equal(tqdm(" 45%|\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x8c"
                          "     | 9/20 [00:01<00:01,  7.41it/s]"),
                     45);
    assert_int_equal(tqdm("100%|##########| 50/50 [00:05<00:00]"), 100);
    assert_int_equal(tqdm("0%| | 0/4"), 0);
    /* the lazy .+? skips '|' inside the bar until one is followed by current/total */
    assert_int_equal(tqdm("12%||x|| 3/25"), 12);
    assert_int_equal(tqdm("7%|a|b| 1/9"), 7);
    /* what the clients' regex rejects */
    assert_int_equal(tqdm("45% done"), -1);
    assert_int_equal(tqdm("45%|| 9/20"), -1); /* .+? needs one character */
    assert_int_equal(tqdm("x 45%|ab| 9/20"), -1);
    assert_int_equal(tqdm("45%|ab| /20"), -1);
    assert_int_equal(tqdm("45%|ab| 9/"), -1);
    assert_int_equal(tqdm("45%|ab 9/20"), -1);
    assert_int_equal(tqdm(""), -1);
    assert_int_equal(tqdm("%|a| 1/2"), -1);
    /* absurd numbers are clamped, never overflowed */
    assert_int_equal(tqdm("99999999999999999999%|a| 1/2"), 100);
}

static void test_logs_last_bar_wins(void **state)
{
    (void)state;
    const char *logs = "Using seed: 4\n  0%|  | 0/4\n 50%|##| 2/4\nsaving image\n";
    assert_int_equal(logs_percent(logs, strlen(logs)), 50);
    const char *redraw = "Loading\r 10%|#| 1/10\r 20%|##| 2/10";
    assert_int_equal(logs_percent(redraw, strlen(redraw)), 20);
    assert_int_equal(logs_percent("", 0), -1);
    assert_int_equal(logs_percent("no bars here\n", 13), -1);

    /* a huge log is searched only at its tail, and a line cut by the window is ignored */
    size_t big = RP_LOG_SCAN_BYTES * 3;
    char *text = malloc(big + 64);
    assert_non_null(text);
    memset(text, 'x', big);
    memcpy(text, "30%|a| 1/3\n", 11);
    strcpy(text + big, "\n 60%|aa| 2/3\n");
    assert_int_equal(logs_percent(text, strlen(text)), 60);
    memset(text, 'x', big);
    text[big] = '\0';
    memcpy(text + big - RP_LOG_SCAN_BYTES - 5, "\n30%|a| 1/3", 11); /* straddles the window */
    assert_int_equal(logs_percent(text, big), -1);
    free(text);
}

static void test_model_refs(void **state)
{
    (void)state;
    rp_model_t m;
    const char *why = NULL;
    const char *hex = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b";
    char ref[300];

    assert_true(parse_model("stability-ai/sdxl", &m, &why));
    assert_string_equal(m.owner, "stability-ai");
    assert_string_equal(m.name, "sdxl");
    assert_string_equal(m.version, "");

    (void)snprintf(ref, sizeof ref, "stability-ai/sdxl:%s", hex);
    assert_true(parse_model(ref, &m, &why));
    assert_string_equal(m.name, "sdxl");
    assert_string_equal(m.version, hex);

    assert_true(parse_model(hex, &m, &why));
    assert_string_equal(m.owner, "");
    assert_string_equal(m.version, hex);

    assert_true(parse_model("black-forest-labs/flux-1.1-pro_ultra", &m, &why));

    const char *bad[] = {"sdxl",  "/sdxl",  "owner/",  "a/b/c", "../x/y",
                         "a/..",  "a/b:",   "a/b:123", "a/b c", "a/b?x=1",
                         "a/b#x", "a\nb/c", "a/b:zz",  "",      "a:b/c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_false(parse_model(bad[i], &m, &why));
        assert_non_null(why);
    }
    (void)snprintf(ref, sizeof ref, "a/b:%sff", hex); /* 66 hex digits */
    assert_false(parse_model(ref, &m, &why));
    memset(ref, 'a', 200);
    memcpy(ref + 200, "/b", 3); /* owner longer than 128 */
    assert_false(parse_model(ref, &m, &why));
}

static void test_output_names(void **state)
{
    (void)state;
    char name[64];
    name_from_url("https://replicate.delivery/pbxt/abc/out-0.png", 0, name, sizeof name);
    assert_string_equal(name, "output-0.png");
    name_from_url("https://x.test/a/b/video.MP4?sig=1.2&x=.exe#frag.zip", 3, name, sizeof name);
    assert_string_equal(name, "output-3.MP4");
    name_from_url("https://x.test/a.dir/file", 1, name, sizeof name);
    assert_string_equal(name, "output-1");
    name_from_url("https://x.test/file.tar.gz", 2, name, sizeof name);
    assert_string_equal(name, "output-2.gz");
    name_from_url("https://x.test/evil.p%2Fng", 0, name, sizeof name);
    assert_string_equal(name, "output-0");
    name_from_url("https://x.test/f.abcdefghijk", 0, name, sizeof name); /* 11 chars: too long */
    assert_string_equal(name, "output-0");
    name_from_url("https://x.test", 0, name, sizeof name);
    assert_string_equal(name, "output-0");
    name_from_url("https://x.test/.", 0, name, sizeof name);
    assert_string_equal(name, "output-0");
}

static void test_collect_files(void **state)
{
    (void)state;
    const char *urls[3];
    bool other;

    json_t *out = json_string("https://a.test/x.png");
    assert_int_equal(collect_files(out, urls, 3, &other), 1);
    assert_false(other);
    assert_string_equal(urls[0], "https://a.test/x.png");
    json_decref(out);

    out = json_string("just text");
    assert_int_equal(collect_files(out, urls, 3, &other), 0);
    assert_true(other);
    json_decref(out);

    out = json_pack("[s, s, i]", "data:image/png;base64,AAAA", "http://a.test/y.wav", 4);
    assert_int_equal(collect_files(out, urls, 3, &other), 2);
    assert_true(other);
    assert_string_equal(urls[1], "http://a.test/y.wav");
    json_decref(out);

    out = json_pack("{s:s, s:s}", "audio", "https://a.test/a.wav", "text", "hello");
    assert_int_equal(collect_files(out, urls, 3, &other), 1);
    assert_true(other);
    assert_string_equal(urls[0], "https://a.test/a.wav");
    json_decref(out);

    out = json_pack("[s, s, s, s]", "https://a/1", "https://a/2", "https://a/3", "https://a/4");
    assert_int_equal(collect_files(out, urls, 3, &other), -1);
    json_decref(out);

    out = json_pack("[[s]]", "https://a.test/nested.png"); /* deeper: kept as JSON only */
    assert_int_equal(collect_files(out, urls, 3, &other), 0);
    assert_true(other);
    json_decref(out);

    out = json_integer(3);
    assert_int_equal(collect_files(out, urls, 3, &other), 0);
    assert_true(other);
    json_decref(out);
}

static void test_copy_printable(void **state)
{
    (void)state;
    char out[12];
    copy_printable(out, sizeof out, "a\nb\tc\x01", 6);
    assert_string_equal(out, "a b c ");
    copy_printable(out, sizeof out, "0123456789abcdef", 16);
    assert_string_equal(out, "01234567...");
    assert_int_equal(strlen(out), sizeof out - 1);
    copy_printable(out, sizeof out, "ab\0cd", 5);
    assert_string_equal(out, "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tqdm_lines),    cmocka_unit_test(test_logs_last_bar_wins),
        cmocka_unit_test(test_model_refs),    cmocka_unit_test(test_output_names),
        cmocka_unit_test(test_collect_files), cmocka_unit_test(test_copy_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
