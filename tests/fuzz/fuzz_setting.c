/*
 * fuzz_setting.c — libFuzzer target for gp_setting_parse(), the one parser behind every
 * core and provider setting. The first byte picks the kind and a bounds pair, the rest is
 * the text (NUL-terminated copy; embedded NULs end it, as they would in argv or environ).
 *
 * Contract checked (abort on violation):
 *   - a failure leaves *out untouched and writes a non-empty reason;
 *   - an accepted integer, duration or number lies within the bounds;
 *   - an accepted boolean is 0 or 1.
 *
 * settings.c is compiled into this translation unit so it is coverage-instrumented (see
 * fuzz_submit.c); the generated provider table comes from the core archive.
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "core/settings.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_setting: contract violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        double min, max;
    } bounds[] = {{0, 1}, {100, 60000}, {-5, 5}, {0.001, 1000}, {0, 9.2e18}};
    if (size < 1 || size > 8192)
        return 0;
    gp_setting_kind_t kind = (gp_setting_kind_t)(data[0] % 7);
    double min = bounds[(data[0] / 7) % 5].min, max = bounds[(data[0] / 7) % 5].max;
    bool empty_ok = (data[0] & 0x80) != 0;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    gp_setting_value_t v = {-12345, -12345.0};
    char why[160] = "";
    int rc = gp_setting_parse(kind, min, max, empty_ok, text, &v, why, sizeof why);
    if (rc != 0) {
        check(rc == -1, "failure is -1");
        check(v.i == -12345 && v.d == -12345.0, "out untouched on failure");
        check(why[0] != '\0', "a reason on failure");
    } else if (kind == GP_SETTING_INT || kind == GP_SETTING_DURATION_MS) {
        check((double)v.i >= min && (double)v.i <= max, "integer within bounds");
    } else if (kind == GP_SETTING_NUMBER) {
        check(v.d >= min && v.d <= max, "number within bounds");
    } else if (kind == GP_SETTING_BOOL) {
        check(v.i == 0 || v.i == 1, "boolean is 0 or 1");
    }
    free(text);
    return 0;
}
