/*
 * test_engines.c — unit tests for the simulator and espeak providers, the echo provider and
 * the task-type declarations they serve, run against the gp_ctx_* stub in ctx_stub.c.
 *
 * Params are built the way the core will build them: the request's fields, then every
 * declared default_json for fields left out, then "provider".
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkdtemp, setenv */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "genpulse/handler.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

extern const gp_task_type_t gp_task_type_text_to_image;
extern const gp_task_type_t gp_task_type_text_to_audio;
extern const gp_task_type_t gp_task_type_echo;
extern const gp_provider_t gp_provider_simulator;
extern const gp_provider_t gp_provider_espeak;
extern const gp_provider_t gp_provider_echo;

/* Test-facing API of ctx_stub.c. */
gp_ctx_t *stub_ctx_new(json_t *params);
void stub_ctx_set_provider(gp_ctx_t *ctx, const gp_provider_t *provider);
void stub_ctx_free(gp_ctx_t *ctx);
void stub_ctx_set_attempt(gp_ctx_t *ctx, int attempt);
void stub_ctx_set_canceled(gp_ctx_t *ctx, bool canceled);
void stub_ctx_cancel_after_progress(gp_ctx_t *ctx, int calls);
int stub_ctx_progress_calls(const gp_ctx_t *ctx);
int stub_ctx_last_percent(const gp_ctx_t *ctx);
bool stub_ctx_progress_monotonic(const gp_ctx_t *ctx);
const char *stub_ctx_last_step(const gp_ctx_t *ctx);
bool stub_ctx_canceled_error_returned(const gp_ctx_t *ctx);
const json_t *stub_ctx_result(const gp_ctx_t *ctx);
size_t stub_ctx_output_count(const gp_ctx_t *ctx);
const unsigned char *stub_ctx_output(const gp_ctx_t *ctx, const char *name, size_t *length);
const json_t *stub_ctx_asset(const gp_ctx_t *ctx, const char *name);
const char *stub_ctx_error_code(const gp_ctx_t *ctx);
const char *stub_ctx_error_message(const gp_ctx_t *ctx);
bool stub_ctx_error_retryable(const gp_ctx_t *ctx);

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

static void fill_defaults(json_t *params, const gp_param_spec_t *specs)
{
    for (const gp_param_spec_t *spec = specs; spec != NULL && spec->name != NULL; spec++) {
        if (spec->default_json == NULL || json_object_get(params, spec->name) != NULL)
            continue;
        json_error_t error;
        json_t *value = json_loads(spec->default_json, JSON_DECODE_ANY, &error);
        assert_non_null(value);
        assert_int_equal(json_object_set_new(params, spec->name, value), 0);
    }
}

/* Params as the core would pass them. given (stolen) may be NULL; pack it with json_pack. */
static gp_ctx_t *make_ctx(const gp_task_type_t *type, const gp_provider_t *provider, json_t *given)
{
    json_t *params = given != NULL ? given : json_object();
    assert_non_null(params);
    fill_defaults(params, type->params);
    fill_defaults(params, provider->params);
    assert_int_equal(json_object_set_new(params, "provider", json_string(provider->name)), 0);
    gp_ctx_t *ctx = stub_ctx_new(params);
    assert_non_null(ctx);
    stub_ctx_set_provider(ctx, provider);
    return ctx;
}

static gp_ctx_t *simulator_ctx(json_t *given)
{
    return make_ctx(&gp_task_type_text_to_image, &gp_provider_simulator, given);
}

static gp_ctx_t *espeak_ctx(json_t *given)
{
    return make_ctx(&gp_task_type_text_to_audio, &gp_provider_espeak, given);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &now), 0);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static uint32_t read_u32be(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint32_t read_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t read_u16le(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Run the simulator with a fixed prompt and size; returns the ctx, run's value in *rc. */
static gp_ctx_t *run_simulator_image(const char *prompt, json_int_t seed, int *rc)
{
    gp_ctx_t *ctx = simulator_ctx(json_pack("{s:s, s:I, s:i, s:i}", "prompt", prompt, "seed", seed,
                                            "width", 96, "height", 80));
    *rc = gp_provider_simulator.run(ctx);
    return ctx;
}

static bool same_output(const gp_ctx_t *a, const gp_ctx_t *b, const char *name)
{
    size_t length_a = 0, length_b = 0;
    const unsigned char *data_a = stub_ctx_output(a, name, &length_a);
    const unsigned char *data_b = stub_ctx_output(b, name, &length_b);
    assert_non_null(data_a);
    assert_non_null(data_b);
    return length_a == length_b && memcmp(data_a, data_b, length_a) == 0;
}

/* ---------------------------------------------------------------------------------------
 * Declarations
 * ------------------------------------------------------------------------------------- */

/* Every default must parse, have the declared type and sit inside the declared range. */
static void check_param_table(const gp_param_spec_t *specs)
{
    for (const gp_param_spec_t *spec = specs; spec != NULL && spec->name != NULL; spec++) {
        assert_non_null(spec->description);
        if (spec->default_json == NULL)
            continue;
        json_error_t error;
        json_t *value = json_loads(spec->default_json, JSON_DECODE_ANY, &error);
        assert_non_null(value);
        switch (spec->type) {
        case GP_PARAM_STRING: {
            assert_true(json_is_string(value));
            size_t length = json_string_length(value);
            assert_true(spec->min_length == 0 || length >= spec->min_length);
            assert_true(spec->max_length == 0 || length <= spec->max_length);
            break;
        }
        case GP_PARAM_INTEGER:
        case GP_PARAM_NUMBER: {
            assert_true(spec->type == GP_PARAM_NUMBER ? json_is_number(value)
                                                      : json_is_integer(value));
            double number = json_number_value(value);
            assert_true(!spec->has_minimum || number >= spec->minimum);
            assert_true(!spec->has_maximum || number <= spec->maximum);
            break;
        }
        case GP_PARAM_BOOLEAN: assert_true(json_is_boolean(value)); break;
        case GP_PARAM_OBJECT: assert_true(json_is_object(value)); break;
        default: fail_msg("param %s has an unknown type", spec->name);
        }
        json_decref(value);
    }
}

static void test_declarations_are_consistent(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&gp_task_type_text_to_image, &gp_task_type_text_to_audio,
                                     &gp_task_type_echo};
    const gp_provider_t *providers[] = {&gp_provider_simulator, &gp_provider_espeak,
                                        &gp_provider_echo};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_non_null(types[i]->description);
        check_param_table(types[i]->params);
    }
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) {
        const gp_provider_t *provider = providers[i];
        assert_non_null(provider->description);
        assert_non_null(provider->run);
        check_param_table(provider->params);
        /* Each served type exists and names this provider as its default. */
        assert_non_null(provider->task_types[0]);
        bool served = false;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            if (strcmp(types[t]->name, provider->task_types[0]) == 0)
                served = strcmp(types[t]->default_provider, provider->name) == 0;
        assert_true(served);
    }
}

/* ---------------------------------------------------------------------------------------
 * echo
 * ------------------------------------------------------------------------------------- */

static void test_echo_returns_params(void **state)
{
    (void)state;
    gp_ctx_t *ctx = make_ctx(&gp_task_type_echo, &gp_provider_echo,
                             json_pack("{s:s, s:{s:i}}", "message", "hi", "data", "n", 7));
    assert_int_equal(gp_provider_echo.run(ctx), 0);
    const json_t *result = stub_ctx_result(ctx);
    assert_true(json_equal((json_t *)result, (json_t *)gp_ctx_params(ctx)));
    assert_string_equal(json_string_value(json_object_get(result, "message")), "hi");
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------
 * simulator
 * ------------------------------------------------------------------------------------- */

static void test_simulator_writes_png_of_requested_size(void **state)
{
    (void)state;
    gp_ctx_t *ctx = simulator_ctx(json_pack("{s:s, s:i, s:i, s:I}", "prompt", "a red fox", "width",
                                            123, "height", 77, "seed", (json_int_t)7));
    assert_int_equal(gp_provider_simulator.run(ctx), 0);

    size_t length = 0;
    const unsigned char *png = stub_ctx_output(ctx, "image.png", &length);
    assert_non_null(png);
    assert_true(length > 33);
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    assert_memory_equal(png, signature, sizeof signature);
    assert_int_equal(read_u32be(png + 8), 13); /* IHDR comes first, 13 bytes long */
    assert_memory_equal(png + 12, "IHDR", 4);
    assert_int_equal(read_u32be(png + 16), 123);
    assert_int_equal(read_u32be(png + 20), 77);

    /* The whole stream decodes (checks CRCs and zlib data, not just the header). */
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&image, png, length) != 0);
    image.format = PNG_FORMAT_RGB;
    unsigned char *pixels = malloc(PNG_IMAGE_SIZE(image));
    assert_non_null(pixels);
    assert_true(png_image_finish_read(&image, NULL, pixels, 0, NULL) != 0);
    assert_int_equal(image.width, 123);
    assert_int_equal(image.height, 77);
    /* Not a flat fill: top-left and bottom-right differ. */
    assert_memory_not_equal(pixels, pixels + PNG_IMAGE_SIZE(image) - 3, 3);
    free(pixels);

    const json_t *asset = stub_ctx_asset(ctx, "image.png");
    assert_non_null(asset);
    assert_string_equal(json_string_value(json_object_get(asset, "content_type")), "image/png");
    assert_int_equal(json_integer_value(json_object_get(asset, "width")), 123);
    assert_int_equal(json_integer_value(json_object_get(asset, "height")), 77);
    assert_int_equal(json_integer_value(json_object_get(asset, "seed")), 7);
    assert_int_equal(json_integer_value(json_object_get(stub_ctx_result(ctx), "seed")), 7);
    assert_int_equal(stub_ctx_last_percent(ctx), 100);
    assert_string_equal(stub_ctx_last_step(ctx), "done");
    assert_true(stub_ctx_progress_monotonic(ctx));
    stub_ctx_free(ctx);
}

static void test_simulator_is_deterministic_per_seed_and_prompt(void **state)
{
    (void)state;
    int rc1, rc2, rc3, rc4;
    gp_ctx_t *first = run_simulator_image("lighthouse", 42, &rc1);
    gp_ctx_t *again = run_simulator_image("lighthouse", 42, &rc2);
    gp_ctx_t *other_seed = run_simulator_image("lighthouse", 43, &rc3);
    gp_ctx_t *other_prompt = run_simulator_image("lighthouse at dusk", 42, &rc4);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    assert_int_equal(rc3, 0);
    assert_int_equal(rc4, 0);
    assert_true(same_output(first, again, "image.png"));
    assert_false(same_output(first, other_seed, "image.png"));
    assert_false(same_output(first, other_prompt, "image.png"));
    stub_ctx_free(first);
    stub_ctx_free(again);
    stub_ctx_free(other_seed);
    stub_ctx_free(other_prompt);
}

static void test_simulator_largest_seed(void **state)
{
    (void)state;
    int rc;
    gp_ctx_t *ctx = run_simulator_image("x", (json_int_t)4294967295LL, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_integer_value(json_object_get(stub_ctx_result(ctx), "seed")),
                     4294967295LL);
    stub_ctx_free(ctx);
}

static void test_simulator_fail_is_permanent(void **state)
{
    (void)state;
    gp_ctx_t *ctx = simulator_ctx(json_pack("{s:s, s:s}", "prompt", "p", "fail", "boom: 100%"));
    assert_int_equal(gp_provider_simulator.run(ctx), GP_CTX_FAILED_PERMANENT);
    assert_string_equal(stub_ctx_error_code(ctx), "simulated_failure");
    assert_string_equal(stub_ctx_error_message(ctx), "boom: 100%");
    assert_false(stub_ctx_error_retryable(ctx));
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
}

static void test_simulator_fail_times_then_succeeds(void **state)
{
    (void)state;
    for (int attempt = 1; attempt <= 3; attempt++) {
        gp_ctx_t *ctx = simulator_ctx(json_pack("{s:s, s:i, s:i, s:i}", "prompt", "p", "fail_times",
                                                2, "width", 64, "height", 64));
        stub_ctx_set_attempt(ctx, attempt);
        int rc = gp_provider_simulator.run(ctx);
        if (attempt <= 2) {
            assert_int_equal(rc, GP_CTX_FAILED_RETRYABLE);
            assert_string_equal(stub_ctx_error_code(ctx), "simulated_transient");
            char expected[80];
            snprintf(expected, sizeof expected, "simulated transient failure (attempt %d of 2)",
                     attempt);
            assert_string_equal(stub_ctx_error_message(ctx), expected);
            assert_true(stub_ctx_error_retryable(ctx));
        } else {
            assert_int_equal(rc, 0);
            assert_null(stub_ctx_error_code(ctx));
            assert_non_null(stub_ctx_output(ctx, "image.png", NULL));
        }
        stub_ctx_free(ctx);
    }
}

static void test_simulator_reports_each_step(void **state)
{
    (void)state;
    gp_ctx_t *ctx = simulator_ctx(json_pack("{s:s, s:i, s:i, s:i, s:i}", "prompt", "p", "steps", 5,
                                            "delay_ms", 100, "width", 64, "height", 64));
    struct timespec start;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &start), 0);
    assert_int_equal(gp_provider_simulator.run(ctx), 0);
    assert_true(seconds_since(&start) >= 0.1); /* delay_ms is honoured */
    assert_true(stub_ctx_progress_calls(ctx) >= 5);
    assert_true(stub_ctx_progress_monotonic(ctx));
    assert_int_equal(stub_ctx_last_percent(ctx), 100);
    stub_ctx_free(ctx);
}

static void test_simulator_step_text(void **state)
{
    (void)state;
    /* Cancel at the third report: the last step seen is the third one. */
    gp_ctx_t *ctx = simulator_ctx(json_pack("{s:s, s:i}", "prompt", "p", "steps", 10));
    stub_ctx_cancel_after_progress(ctx, 3);
    assert_int_equal(gp_provider_simulator.run(ctx), GP_CTX_CANCELED);
    assert_string_equal(stub_ctx_last_step(ctx), "step 3/10");
    assert_int_equal(stub_ctx_progress_calls(ctx), 3);
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
}

static void test_simulator_canceled_before_start(void **state)
{
    (void)state;
    gp_ctx_t *ctx = simulator_ctx(json_pack("{s:s}", "prompt", "p"));
    stub_ctx_set_canceled(ctx, true);
    assert_int_equal(gp_provider_simulator.run(ctx), GP_CTX_CANCELED);
    assert_true(stub_ctx_canceled_error_returned(ctx));
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
}

typedef struct delayed_cancel {
    gp_ctx_t *ctx;
    long delay_ms;
} delayed_cancel_t;

static void *cancel_later(void *arg)
{
    delayed_cancel_t *job = arg;
    struct timespec pause = {.tv_sec = job->delay_ms / 1000,
                             .tv_nsec = (job->delay_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    stub_ctx_set_canceled(job->ctx, true);
    return NULL;
}

static void test_simulator_cancel_wakes_sleep(void **state)
{
    (void)state;
    /* One step of 60 s: only a cancel from another thread can end it quickly. */
    gp_ctx_t *ctx =
        simulator_ctx(json_pack("{s:s, s:i, s:i}", "prompt", "p", "delay_ms", 60000, "steps", 1));
    delayed_cancel_t job = {.ctx = ctx, .delay_ms = 100};
    pthread_t canceler;
    assert_int_equal(pthread_create(&canceler, NULL, cancel_later, &job), 0);
    struct timespec start;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &start), 0);
    assert_int_equal(gp_provider_simulator.run(ctx), GP_CTX_CANCELED);
    assert_true(seconds_since(&start) < 5.0);
    assert_int_equal(pthread_join(canceler, NULL), 0);
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------
 * espeak
 * ------------------------------------------------------------------------------------- */

static const char long_text[] =
    "The quick brown fox jumps over the lazy dog, and then it runs far away into the hills. ";

/* Repeat long_text to get a text that takes a while to synthesize. */
static char *repeated_text(size_t times)
{
    size_t unit = strlen(long_text);
    char *text = malloc(unit * times + 1);
    assert_non_null(text);
    for (size_t i = 0; i < times; i++)
        memcpy(text + i * unit, long_text, unit);
    text[unit * times] = '\0';
    return text;
}

/* Must run before any other espeak test: the engine initializes once per process. */
static void test_espeak_missing_data_is_engine_unavailable(void **state)
{
    (void)state;
    char data_root[] = "/tmp/genpulse-espeak-XXXXXX";
    assert_non_null(mkdtemp(data_root));
    char data_dir[64];
    snprintf(data_dir, sizeof data_dir, "%s/espeak-ng-data", data_root);
    assert_int_equal(mkdir(data_dir, 0700), 0);

    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* In the child, whose engine is still uninitialized: point it at empty data. */
        if (setenv("ESPEAK_DATA_PATH", data_root, 1) != 0)
            _exit(10);
        gp_ctx_t *ctx = espeak_ctx(json_pack("{s:s}", "text", "hello"));
        int rc = gp_provider_espeak.run(ctx);
        const char *code = stub_ctx_error_code(ctx);
        bool ok = rc == GP_CTX_FAILED_PERMANENT && code != NULL &&
                  strcmp(code, "engine_unavailable") == 0 &&
                  strstr(stub_ctx_error_message(ctx), "ESPEAK_DATA_PATH") != NULL;
        if (!ok)
            fprintf(stderr, "child: rc=%d code=%s\n", rc, code != NULL ? code : "(none)");
        _exit(ok ? 0 : 1); /* skip atexit/leak checks: the child shares the parent's state */
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(rmdir(data_dir), 0);
    assert_int_equal(rmdir(data_root), 0);
}

static double wav_check_and_duration(const gp_ctx_t *ctx)
{
    size_t length = 0;
    const unsigned char *wav = stub_ctx_output(ctx, "speech.wav", &length);
    assert_non_null(wav);
    assert_true(length >= 44);
    assert_memory_equal(wav, "RIFF", 4);
    assert_int_equal(read_u32le(wav + 4), length - 8);
    assert_memory_equal(wav + 8, "WAVE", 4);
    assert_memory_equal(wav + 12, "fmt ", 4);
    assert_int_equal(read_u32le(wav + 16), 16);
    assert_int_equal(read_u16le(wav + 20), 1); /* PCM */
    assert_int_equal(read_u16le(wav + 22), 1); /* mono */
    uint32_t sample_rate = read_u32le(wav + 24);
    assert_true(sample_rate >= 8000);
    assert_int_equal(read_u32le(wav + 28), sample_rate * 2);
    assert_int_equal(read_u16le(wav + 32), 2);
    assert_int_equal(read_u16le(wav + 34), 16);
    assert_memory_equal(wav + 36, "data", 4);
    uint32_t data_bytes = read_u32le(wav + 40);
    assert_int_equal(data_bytes, length - 44);

    const json_t *asset = stub_ctx_asset(ctx, "speech.wav");
    assert_non_null(asset);
    assert_string_equal(json_string_value(json_object_get(asset, "content_type")), "audio/wav");
    assert_int_equal(json_integer_value(json_object_get(asset, "sample_rate")), sample_rate);
    double duration = json_number_value(json_object_get(asset, "duration"));
    assert_true(duration > (double)data_bytes / 2.0 / sample_rate - 1e-6);
    assert_true(duration < (double)data_bytes / 2.0 / sample_rate + 1e-6);
    return duration;
}

static void test_espeak_hello_world(void **state)
{
    (void)state;
    gp_ctx_t *ctx = espeak_ctx(json_pack("{s:s}", "text", "hello world"));
    assert_int_equal(gp_provider_espeak.run(ctx), 0);
    size_t length = 0;
    assert_non_null(stub_ctx_output(ctx, "speech.wav", &length));
    assert_true(length - 44 > 1000);
    assert_true(wav_check_and_duration(ctx) > 0.2);
    assert_int_equal(stub_ctx_last_percent(ctx), 100);
    assert_string_equal(stub_ctx_last_step(ctx), "done");
    assert_true(stub_ctx_progress_monotonic(ctx));
    stub_ctx_free(ctx);
}

static void test_espeak_rate_changes_duration(void **state)
{
    (void)state;
    gp_ctx_t *slow = espeak_ctx(json_pack("{s:s, s:i}", "text", long_text, "rate", 80));
    gp_ctx_t *fast = espeak_ctx(json_pack("{s:s, s:i, s:i, s:s}", "text", long_text, "rate", 450,
                                          "pitch", 90, "voice", "en-us"));
    assert_int_equal(gp_provider_espeak.run(slow), 0);
    assert_int_equal(gp_provider_espeak.run(fast), 0);
    assert_true(wav_check_and_duration(slow) > 2.0 * wav_check_and_duration(fast));
    stub_ctx_free(slow);
    stub_ctx_free(fast);
}

static void test_espeak_cancel_during_synthesis(void **state)
{
    (void)state;
    char *text = repeated_text(40);
    gp_ctx_t *ctx = espeak_ctx(json_pack("{s:s}", "text", text));
    /* Call 1 is "synthesizing" before espeak_Synth; later calls come from the callback. */
    stub_ctx_cancel_after_progress(ctx, 3);
    assert_int_equal(gp_provider_espeak.run(ctx), GP_CTX_CANCELED);
    assert_true(stub_ctx_canceled_error_returned(ctx));
    assert_int_equal(stub_ctx_progress_calls(ctx), 3); /* stopped at once */
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
    free(text);

    /* The engine is usable again after an interrupted synthesis. */
    ctx = espeak_ctx(json_pack("{s:s}", "text", "hello again"));
    assert_int_equal(gp_provider_espeak.run(ctx), 0);
    assert_true(wav_check_and_duration(ctx) > 0.2);
    stub_ctx_free(ctx);
}

static void test_espeak_output_is_bounded(void **state)
{
    (void)state;
    /* About 10000 characters at the slowest rate: well over the ten-minute cap. */
    char *text = repeated_text(115);
    gp_ctx_t *ctx = espeak_ctx(json_pack("{s:s, s:i}", "text", text, "rate", 80));
    assert_int_equal(gp_provider_espeak.run(ctx), GP_CTX_FAILED_PERMANENT);
    assert_string_equal(stub_ctx_error_code(ctx), "output_too_long");
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
    free(text);
}

static void test_espeak_canceled_before_start(void **state)
{
    (void)state;
    gp_ctx_t *ctx = espeak_ctx(json_pack("{s:s}", "text", "hello"));
    stub_ctx_set_canceled(ctx, true);
    assert_int_equal(gp_provider_espeak.run(ctx), GP_CTX_CANCELED);
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
}

static void test_espeak_invalid_voice(void **state)
{
    (void)state;
    const char *voices[] = {"xx-no-such-voice", "en us", "../../etc/passwd", ""};
    for (size_t i = 0; i < sizeof voices / sizeof voices[0]; i++) {
        gp_ctx_t *ctx = espeak_ctx(json_pack("{s:s, s:s}", "text", "hello", "voice", voices[i]));
        assert_int_equal(gp_provider_espeak.run(ctx), GP_CTX_FAILED_PERMANENT);
        assert_string_equal(stub_ctx_error_code(ctx), "invalid_voice");
        stub_ctx_free(ctx);
    }
}

static void test_espeak_unspeakable_text(void **state)
{
    (void)state;
    gp_ctx_t *ctx = espeak_ctx(json_pack("{s:s}", "text", "   "));
    int rc = gp_provider_espeak.run(ctx);
    /* Either a little silence or a clean permanent error, never a crash or an empty WAV. */
    if (rc != 0) {
        assert_int_equal(rc, GP_CTX_FAILED_PERMANENT);
        assert_string_equal(stub_ctx_error_code(ctx), "empty_output");
    } else {
        (void)wav_check_and_duration(ctx);
    }
    stub_ctx_free(ctx);
}

typedef struct speak_job {
    gp_ctx_t *ctx;
    int rc;
} speak_job_t;

static void *speak_in_thread(void *arg)
{
    speak_job_t *job = arg;
    job->rc = gp_provider_espeak.run(job->ctx);
    return NULL;
}

/* Several workers at once: the engine lock must serialize them without mixing audio. */
static void test_espeak_concurrent_tasks(void **state)
{
    (void)state;
    enum {
        JOBS = 4
    };
    speak_job_t jobs[JOBS];
    pthread_t threads[JOBS];
    for (int i = 0; i < JOBS; i++) {
        jobs[i].ctx = espeak_ctx(json_pack("{s:s}", "text", long_text));
        jobs[i].rc = -1;
        assert_int_equal(pthread_create(&threads[i], NULL, speak_in_thread, &jobs[i]), 0);
    }
    double first_duration = 0.0;
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].rc, 0);
        double duration = wav_check_and_duration(jobs[i].ctx);
        if (i == 0)
            first_duration = duration;
        /* Same text, same settings: durations agree to a few ms (espeak-ng jitters). */
        assert_true(duration > first_duration - 0.05 && duration < first_duration + 0.05);
    }
    for (int i = 0; i < JOBS; i++)
        stub_ctx_free(jobs[i].ctx);
}

/* ---------------------------------------------------------------------------------------
 * vips (image-to-image) and kenburns (text-to-video, image-to-video)
 *
 * Inputs are the BlurHash fixtures under tests/fixtures/media (run from the repository
 * root); outputs are decoded again with libvips / libavformat to check what was made.
 * ------------------------------------------------------------------------------------- */

#define MEDIA_FIXTURE "tests/fixtures/media/photo_noise_64x48.png"

extern const gp_task_type_t gp_task_type_image_to_image;
extern const gp_task_type_t gp_task_type_text_to_video;
extern const gp_task_type_t gp_task_type_image_to_video;
extern const gp_provider_t gp_provider_vips;
extern const gp_provider_t gp_provider_kenburns;

int stub_ctx_set_input(gp_ctx_t *ctx, const char *param, const char *path,
                       const char *content_type);
int stub_ctx_set_setting(gp_ctx_t *ctx, const char *name, const char *value);
int stub_ctx_preview_count(const gp_ctx_t *ctx);
const unsigned char *stub_ctx_preview(const gp_ctx_t *ctx, size_t *length, const char **name,
                                      const char **content_type, int *progress_calls_before);

static gp_ctx_t *vips_ctx(json_t *given, const char *input)
{
    gp_ctx_t *ctx = make_ctx(&gp_task_type_image_to_image, &gp_provider_vips, given);
    if (input != NULL)
        assert_int_equal(stub_ctx_set_input(ctx, "image", input, "image/png"), 0);
    return ctx;
}

/* Decode a stored output with libvips; returns its size and band count. */
static void decode_output(const gp_ctx_t *ctx, const char *name, int *width, int *height,
                          int *bands)
{
    size_t length = 0;
    const unsigned char *data = stub_ctx_output(ctx, name, &length);
    assert_non_null(data);
    VipsImage *image = vips_image_new_from_buffer(data, length, "", NULL);
    assert_non_null(image);
    double mean = 0;
    assert_int_equal(vips_avg(image, &mean, NULL), 0); /* every pixel decodes */
    *width = vips_image_get_width(image);
    *height = vips_image_get_height(image);
    *bands = vips_image_get_bands(image);
    g_object_unref(image);
}

static void drop_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
    (void)domain, (void)level, (void)message, (void)data;
}

/* Runs first among the media tests: quiet libav/libvips the way gp_media_init() does. */
static void test_media_declarations(void **state)
{
    (void)state;
    av_log_set_level(AV_LOG_QUIET);
    (void)g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, drop_log, NULL);
    const gp_task_type_t *types[] = {&gp_task_type_image_to_image, &gp_task_type_text_to_video,
                                     &gp_task_type_image_to_video};
    for (size_t i = 0; i < 3; i++)
        check_param_table(types[i]->params);
    const gp_provider_t *providers[] = {&gp_provider_vips, &gp_provider_kenburns};
    for (size_t i = 0; i < 2; i++) {
        assert_non_null(providers[i]->description);
        assert_non_null(providers[i]->run);
        check_param_table(providers[i]->params);
        for (const char *const *t = providers[i]->task_types; *t != NULL; t++) {
            bool known = false;
            for (size_t k = 0; k < 3; k++)
                known = known || strcmp(types[k]->name, *t) == 0;
            assert_true(known);
        }
    }
}

static void test_vips_operations(void **state)
{
    (void)state;
    struct {
        json_t *params;
        const char *output;
        int width, height, bands;
    } cases[] = {
        {json_pack("{s:s, s:i}", "operation", "resize", "width", 32), "image.png", 32, 24, 3},
        {json_pack("{s:s, s:i, s:i}", "operation", "resize", "width", 200, "height", 50),
         "image.png", 67, 50, 3},
        {json_pack("{s:s, s:i, s:s}", "operation", "resize", "height", 96, "format", "jpeg"),
         "image.jpg", 128, 96, 3},
        {json_pack("{s:s, s:i, s:i, s:i, s:i}", "operation", "crop", "width", 10, "height", 12,
                   "left", 50, "top", 30),
         "image.png", 10, 12, 3},
        {json_pack("{s:s, s:i, s:i}", "operation", "crop", "width", 20, "height", 20), "image.png",
         20, 20, 3},
        {json_pack("{s:s, s:f}", "operation", "rotate", "angle", -90.0), "image.png", 48, 64, 3},
        {json_pack("{s:s, s:f}", "operation", "rotate", "angle", 180.0), "image.png", 64, 48, 3},
        {json_pack("{s:s, s:f, s:s}", "operation", "rotate", "angle", 30.0, "format", "webp"),
         "image.webp", 80, 74, 4},
        {json_pack("{s:s, s:f, s:s}", "operation", "rotate", "angle", 45.0, "format", "jpeg"),
         "image.jpg", 80, 80, 3},
        {json_pack("{s:s, s:f}", "operation", "blur", "sigma", 3.0), "image.png", 64, 48, 3},
        {json_pack("{s:s, s:s}", "operation", "sharpen", "format", "webp"), "image.webp", 64, 48,
         3},
        {json_pack("{s:s}", "operation", "grayscale"), "image.png", 64, 48, 1},
        {json_pack("{s:s, s:s}", "operation", "flip", "direction", "vertical"), "image.png", 64, 48,
         3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gp_ctx_t *ctx = vips_ctx(cases[i].params, MEDIA_FIXTURE);
        int rc = gp_provider_vips.run(ctx);
        if (rc != 0)
            fail_msg("case %zu: %s", i, stub_ctx_error_message(ctx));
        int width = 0, height = 0, bands = 0;
        decode_output(ctx, cases[i].output, &width, &height, &bands);
        if (abs(width - cases[i].width) > 1 || abs(height - cases[i].height) > 1 ||
            bands != cases[i].bands)
            fail_msg("case %zu: got %dx%d x%d, want %dx%d x%d", i, width, height, bands,
                     cases[i].width, cases[i].height, cases[i].bands);
        assert_true(stub_ctx_progress_monotonic(ctx));
        assert_int_equal(stub_ctx_last_percent(ctx), 100);
        assert_non_null(stub_ctx_asset(ctx, cases[i].output));
        stub_ctx_free(ctx);
    }
}

/* A flip twice is the identity; a flip once is not (the pixels really moved). */
static void test_vips_flip_moves_pixels(void **state)
{
    (void)state;
    gp_ctx_t *once = vips_ctx(json_pack("{s:s}", "operation", "flip"), MEDIA_FIXTURE);
    assert_int_equal(gp_provider_vips.run(once), 0);
    size_t length = 0;
    const unsigned char *flipped = stub_ctx_output(once, "image.png", &length);
    char path[] = "/tmp/genpulse-flip-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, flipped, length), (ssize_t)length);
    close(fd);
    gp_ctx_t *twice = vips_ctx(json_pack("{s:s}", "operation", "flip"), path);
    assert_int_equal(gp_provider_vips.run(twice), 0);

    VipsImage *original = vips_image_new_from_file(MEDIA_FIXTURE, NULL);
    const unsigned char *back = stub_ctx_output(twice, "image.png", &length);
    VipsImage *restored = vips_image_new_from_buffer(back, length, "", NULL);
    VipsImage *mirror = vips_image_new_from_file(path, NULL);
    assert_non_null(original);
    assert_non_null(restored);
    assert_non_null(mirror);
    VipsImage *diff = NULL;
    double max_back = -1, max_mirror = -1;
    assert_int_equal(vips_subtract(original, restored, &diff, NULL), 0);
    assert_int_equal(vips_max(diff, &max_back, NULL), 0);
    g_object_unref(diff);
    assert_int_equal(vips_subtract(original, mirror, &diff, NULL), 0);
    VipsImage *magnitude = NULL;
    assert_int_equal(vips_abs(diff, &magnitude, NULL), 0);
    assert_int_equal(vips_max(magnitude, &max_mirror, NULL), 0);
    assert_true(max_back == 0.0);
    assert_true(max_mirror > 10.0);
    VipsImage *all[] = {diff, magnitude, original, restored, mirror};
    for (size_t i = 0; i < 5; i++)
        g_object_unref(all[i]);
    unlink(path);
    stub_ctx_free(once);
    stub_ctx_free(twice);
}

static void expect_vips_failure(json_t *params, const char *input, const char *code)
{
    gp_ctx_t *ctx = vips_ctx(params, input);
    int rc = gp_provider_vips.run(ctx);
    if (rc != GP_CTX_FAILED_PERMANENT)
        fail_msg("expected a permanent %s failure, got %d", code, rc);
    assert_string_equal(stub_ctx_error_code(ctx), code);
    assert_non_null(stub_ctx_error_message(ctx));
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
}

static void test_vips_rejects_bad_requests_and_inputs(void **state)
{
    (void)state;
    expect_vips_failure(json_pack("{s:s}", "operation", "resize"), MEDIA_FIXTURE, "invalid_params");
    expect_vips_failure(
        json_pack("{s:s, s:i, s:i}", "operation", "crop", "width", 65, "height", 10), MEDIA_FIXTURE,
        "invalid_params");
    expect_vips_failure(json_pack("{s:s, s:i, s:i, s:i}", "operation", "crop", "width", 10,
                                  "height", 10, "left", 60),
                        MEDIA_FIXTURE, "invalid_params");
    expect_vips_failure(json_pack("{s:s, s:i}", "operation", "resize", "width", 8192),
                        MEDIA_FIXTURE, "invalid_params"); /* 8192x6144: over the 50 MP default */
}

static void test_vips_rejects_broken_and_huge_inputs(void **state)
{
    (void)state;
    char dir[] = "/tmp/genpulse-vips-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char text[300], cut[300];
    (void)snprintf(text, sizeof text, "%s/not-an-image.png", dir);
    (void)snprintf(cut, sizeof cut, "%s/cut.png", dir);
    FILE *file = fopen(text, "w");
    assert_non_null(file);
    fputs("definitely not a picture", file);
    fclose(file);
    expect_vips_failure(json_pack("{s:s}", "operation", "blur"), text, "invalid_input");
    expect_vips_failure(json_pack("{s:s, s:i}", "operation", "resize", "width", 10), text,
                        "invalid_input");

    /* A truncated PNG: header fine, pixel data cut off. */
    VipsImage *big = NULL;
    assert_int_equal(vips_gaussnoise(&big, 300, 200, NULL), 0);
    void *png = NULL;
    size_t length = 0;
    assert_int_equal(vips_pngsave_buffer(big, &png, &length, NULL), 0);
    g_object_unref(big);
    file = fopen(cut, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(png, 1, length / 2, file), length / 2);
    fclose(file);
    g_free(png);
    const char *ops[] = {"resize", "blur", "rotate", "grayscale"};
    for (size_t i = 0; i < 4; i++) {
        gp_ctx_t *ctx = vips_ctx(json_pack("{s:s, s:i}", "operation", ops[i], "width", 50), cut);
        assert_int_equal(gp_provider_vips.run(ctx), GP_CTX_FAILED_PERMANENT);
        assert_int_equal(stub_ctx_output_count(ctx), 0);
        stub_ctx_free(ctx);
    }

    /* The pixel ceiling comes from the provider setting. */
    gp_ctx_t *ctx = vips_ctx(json_pack("{s:s}", "operation", "blur"), MEDIA_FIXTURE);
    assert_int_equal(stub_ctx_set_setting(ctx, "max-megapixels", "0.001"), 0);
    assert_int_equal(gp_provider_vips.run(ctx), GP_CTX_FAILED_PERMANENT);
    assert_string_equal(stub_ctx_error_code(ctx), "input_too_large");
    stub_ctx_free(ctx);

    /* No input at all (the core would 422 first; the provider must still not crash). */
    ctx = vips_ctx(json_pack("{s:s}", "operation", "blur"), NULL);
    assert_int_equal(gp_provider_vips.run(ctx), GP_CTX_FAILED_PERMANENT);
    stub_ctx_free(ctx);

    unlink(text);
    unlink(cut);
    rmdir(dir);
}

typedef struct cancel_later {
    gp_ctx_t *ctx;
    int delay_ms;
} cancel_later_t;

static void *cancel_after_delay(void *arg)
{
    cancel_later_t *job = arg;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)job->delay_ms * 1000000L};
    nanosleep(&pause, NULL);
    stub_ctx_set_canceled(job->ctx, true);
    return NULL;
}

static void test_vips_cancel(void **state)
{
    (void)state;
    gp_ctx_t *ctx = vips_ctx(json_pack("{s:s}", "operation", "blur"), MEDIA_FIXTURE);
    stub_ctx_set_canceled(ctx, true);
    assert_int_equal(gp_provider_vips.run(ctx), GP_CTX_CANCELED);
    assert_true(stub_ctx_canceled_error_returned(ctx));
    stub_ctx_free(ctx);

    /* Mid-computation: a large blur stops soon after the cancel, through the kill flag. */
    char dir[] = "/tmp/genpulse-vips-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char big[300];
    (void)snprintf(big, sizeof big, "%s/big.png", dir);
    VipsImage *noise = NULL;
    assert_int_equal(vips_gaussnoise(&noise, 2500, 2500, NULL), 0);
    assert_int_equal(vips_image_write_to_file(noise, big, NULL), 0);
    g_object_unref(noise);

    ctx = vips_ctx(json_pack("{s:s, s:f}", "operation", "blur", "sigma", 60.0), big);
    cancel_later_t later = {.ctx = ctx, .delay_ms = 150};
    pthread_t thread;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(pthread_create(&thread, NULL, cancel_after_delay, &later), 0);
    int rc = gp_provider_vips.run(ctx);
    double elapsed = seconds_since(&start);
    assert_int_equal(pthread_join(thread, NULL), 0);
    printf("    vips blur sigma 60 on 2500x2500, canceled at 0.15 s: returned after %.2f s\n",
           elapsed);
    assert_int_equal(rc, GP_CTX_CANCELED);
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    stub_ctx_free(ctx);
    unlink(big);
    rmdir(dir);
}

/* Open a stored MP4 with libavformat and count its video frames. */
static void inspect_video(const gp_ctx_t *ctx, int *width, int *height, double *duration,
                          int *frames, char *codec, size_t codec_cap)
{
    size_t length = 0;
    const unsigned char *data = stub_ctx_output(ctx, "video.mp4", &length);
    assert_non_null(data);
    char path[] = "/tmp/genpulse-video-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, length), (ssize_t)length);
    close(fd);
    AVFormatContext *format = NULL;
    assert_int_equal(avformat_open_input(&format, path, NULL, NULL), 0);
    assert_true(avformat_find_stream_info(format, NULL) >= 0);
    int index = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    assert_true(index >= 0);
    AVStream *stream = format->streams[index];
    *width = stream->codecpar->width;
    *height = stream->codecpar->height;
    *duration = (double)format->duration / AV_TIME_BASE;
    (void)snprintf(codec, codec_cap, "%s", avcodec_get_name(stream->codecpar->codec_id));
    *frames = 0;
    AVPacket *packet = av_packet_alloc();
    while (av_read_frame(format, packet) >= 0) {
        if (packet->stream_index == index)
            (*frames)++;
        av_packet_unref(packet);
    }
    av_packet_free(&packet);
    avformat_close_input(&format);
    unlink(path);
}

static gp_ctx_t *kenburns_text_ctx(json_t *given)
{
    return make_ctx(&gp_task_type_text_to_video, &gp_provider_kenburns, given);
}

static void test_kenburns_text_to_video(void **state)
{
    (void)state;
    gp_ctx_t *ctx = kenburns_text_ctx(json_pack("{s:s, s:i, s:i, s:i, s:I}", "prompt",
                                                "a lighthouse at dusk", "duration", 2, "width", 320,
                                                "height", 240, "seed", (json_int_t)3));
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = gp_provider_kenburns.run(ctx);
    double elapsed = seconds_since(&start);
    if (rc != 0)
        fail_msg("kenburns: %s", stub_ctx_error_message(ctx));
    printf("    kenburns text-to-video 2 s 320x240 @ 24 fps: %.0f ms\n", elapsed * 1000);

    int width = 0, height = 0, frames = 0;
    double duration = 0;
    char codec[32];
    inspect_video(ctx, &width, &height, &duration, &frames, codec, sizeof codec);
    assert_int_equal(width, 320);
    assert_int_equal(height, 240);
    assert_int_equal(frames, 48);
    assert_true(fabs(duration - 2.0) < 0.1);
    assert_true(strcmp(codec, "h264") == 0 || strcmp(codec, "mpeg4") == 0);
    const json_t *asset = stub_ctx_asset(ctx, "video.mp4");
    assert_non_null(asset);
    assert_string_equal(json_string_value(json_object_get(asset, "content_type")), "video/mp4");
    assert_int_equal(json_integer_value(json_object_get(asset, "fps")), 24);

    /* The first frame went out as a preview while frames were still being encoded. */
    assert_int_equal(stub_ctx_preview_count(ctx), 1);
    size_t length = 0;
    const char *name = NULL, *content_type = NULL;
    int progress_before = 0;
    const unsigned char *jpeg =
        stub_ctx_preview(ctx, &length, &name, &content_type, &progress_before);
    assert_non_null(jpeg);
    assert_string_equal(name, "preview.jpg");
    assert_string_equal(content_type, "image/jpeg");
    assert_true(length > 3 && jpeg[0] == 0xFF && jpeg[1] == 0xD8);
    assert_true(progress_before < stub_ctx_progress_calls(ctx) - 5);
    VipsImage *preview = vips_image_new_from_buffer(jpeg, length, "", NULL);
    assert_non_null(preview);
    assert_int_equal(vips_image_get_width(preview), 320);
    g_object_unref(preview);

    assert_true(stub_ctx_progress_monotonic(ctx));
    assert_int_equal(stub_ctx_last_percent(ctx), 100);
    assert_true(stub_ctx_progress_calls(ctx) >= 20);
    stub_ctx_free(ctx);
}

static void test_kenburns_is_deterministic(void **state)
{
    (void)state;
    gp_ctx_t *runs[3];
    json_int_t seeds[3] = {11, 11, 12};
    for (int i = 0; i < 3; i++) {
        runs[i] =
            kenburns_text_ctx(json_pack("{s:s, s:i, s:i, s:s, s:I}", "prompt", "waves", "duration",
                                        1, "fps", 8, "aspect_ratio", "9:16", "seed", seeds[i]));
        assert_int_equal(gp_provider_kenburns.run(runs[i]), 0);
    }
    assert_true(same_output(runs[0], runs[1], "video.mp4"));
    assert_false(same_output(runs[0], runs[2], "video.mp4"));
    int width = 0, height = 0, frames = 0;
    double duration = 0;
    char codec[32];
    inspect_video(runs[0], &width, &height, &duration, &frames, codec, sizeof codec);
    assert_int_equal(width, 360); /* 9:16 with the default 640 longer side */
    assert_int_equal(height, 640);
    assert_int_equal(frames, 8);
    for (int i = 0; i < 3; i++)
        stub_ctx_free(runs[i]);
}

static void test_kenburns_image_to_video(void **state)
{
    (void)state;
    gp_ctx_t *ctx = make_ctx(&gp_task_type_image_to_video, &gp_provider_kenburns,
                             json_pack("{s:s, s:i, s:i, s:i, s:f}", "image", "asset-1", "duration",
                                       1, "fps", 12, "width", 200, "zoom", 1.6));
    assert_int_equal(stub_ctx_set_input(ctx, "image", MEDIA_FIXTURE, "image/png"), 0);
    int rc = gp_provider_kenburns.run(ctx);
    if (rc != 0)
        fail_msg("kenburns: %s", stub_ctx_error_message(ctx));
    int width = 0, height = 0, frames = 0;
    double duration = 0;
    char codec[32];
    inspect_video(ctx, &width, &height, &duration, &frames, codec, sizeof codec);
    assert_int_equal(width, 200);
    assert_int_equal(height, 150); /* the input's 4:3 */
    assert_int_equal(frames, 12);
    assert_int_equal(stub_ctx_preview_count(ctx), 1);
    stub_ctx_free(ctx);

    /* A broken input image fails permanently and stores nothing. */
    char path[] = "/tmp/genpulse-kb-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x89PNG\r\n\x1a\nbroken", 14), 14);
    close(fd);
    ctx = make_ctx(&gp_task_type_image_to_video, &gp_provider_kenburns,
                   json_pack("{s:s}", "image", "asset-2"));
    assert_int_equal(stub_ctx_set_input(ctx, "image", path, NULL), 0);
    assert_int_equal(gp_provider_kenburns.run(ctx), GP_CTX_FAILED_PERMANENT);
    assert_string_equal(stub_ctx_error_code(ctx), "invalid_input");
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    assert_int_equal(stub_ctx_preview_count(ctx), 0);
    stub_ctx_free(ctx);
    unlink(path);
}

static void test_kenburns_cancel_and_limits(void **state)
{
    (void)state;
    gp_ctx_t *ctx = kenburns_text_ctx(json_pack("{s:s, s:i, s:i, s:i}", "prompt", "x", "duration",
                                                30, "width", 320, "height", 240));
    stub_ctx_cancel_after_progress(ctx, 5);
    assert_int_equal(gp_provider_kenburns.run(ctx), GP_CTX_CANCELED);
    assert_true(stub_ctx_canceled_error_returned(ctx));
    assert_int_equal(stub_ctx_output_count(ctx), 0);
    assert_int_equal(stub_ctx_progress_calls(ctx), 5);
    stub_ctx_free(ctx);

    /* 1920x1920 passes the per-side limit but not the per-frame pixel budget. */
    ctx = kenburns_text_ctx(
        json_pack("{s:s, s:i, s:i}", "prompt", "x", "width", 1920, "height", 1920));
    assert_int_equal(gp_provider_kenburns.run(ctx), GP_CTX_FAILED_PERMANENT);
    assert_string_equal(stub_ctx_error_code(ctx), "invalid_params");
    stub_ctx_free(ctx);

    /* Odd sizes are rounded down to even (4:2:0 needs it). */
    ctx = kenburns_text_ctx(json_pack("{s:s, s:i, s:i, s:i, s:i}", "prompt", "x", "duration", 1,
                                      "fps", 2, "width", 101, "height", 77));
    assert_int_equal(gp_provider_kenburns.run(ctx), 0);
    int width = 0, height = 0, frames = 0;
    double duration = 0;
    char codec[32];
    inspect_video(ctx, &width, &height, &duration, &frames, codec, sizeof codec);
    assert_int_equal(width, 100);
    assert_int_equal(height, 76);
    stub_ctx_free(ctx);
}

typedef struct media_job {
    gp_ctx_t *ctx;
    const gp_provider_t *provider;
    int rc;
} media_job_t;

static void *run_media_job(void *arg)
{
    media_job_t *job = arg;
    job->rc = job->provider->run(job->ctx);
    return NULL;
}

/* Workers run these providers side by side: no shared state may leak between tasks. */
static void test_media_engines_concurrently(void **state)
{
    (void)state;
    enum {
        JOBS = 6
    };
    media_job_t jobs[JOBS];
    pthread_t threads[JOBS];
    for (int i = 0; i < JOBS; i++) {
        if (i % 2 == 0) {
            jobs[i].provider = &gp_provider_kenburns;
            jobs[i].ctx = kenburns_text_ctx(json_pack("{s:s, s:i, s:i, s:i, s:I}", "prompt", "same",
                                                      "duration", 1, "fps", 10, "width", 160,
                                                      "seed", (json_int_t)4));
        } else {
            jobs[i].provider = &gp_provider_vips;
            jobs[i].ctx = vips_ctx(json_pack("{s:s, s:f}", "operation", "rotate", "angle", 33.0),
                                   MEDIA_FIXTURE);
        }
        jobs[i].rc = -1;
        assert_int_equal(pthread_create(&threads[i], NULL, run_media_job, &jobs[i]), 0);
    }
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].rc, 0);
    }
    /* Same inputs, same bytes, whichever thread made them. */
    assert_true(same_output(jobs[0].ctx, jobs[2].ctx, "video.mp4"));
    assert_true(same_output(jobs[0].ctx, jobs[4].ctx, "video.mp4"));
    assert_true(same_output(jobs[1].ctx, jobs[3].ctx, "image.png"));
    assert_true(same_output(jobs[1].ctx, jobs[5].ctx, "image.png"));
    for (int i = 0; i < JOBS; i++)
        stub_ctx_free(jobs[i].ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declarations_are_consistent),
        cmocka_unit_test(test_echo_returns_params),
        cmocka_unit_test(test_simulator_writes_png_of_requested_size),
        cmocka_unit_test(test_simulator_is_deterministic_per_seed_and_prompt),
        cmocka_unit_test(test_simulator_largest_seed),
        cmocka_unit_test(test_simulator_fail_is_permanent),
        cmocka_unit_test(test_simulator_fail_times_then_succeeds),
        cmocka_unit_test(test_simulator_reports_each_step),
        cmocka_unit_test(test_simulator_step_text),
        cmocka_unit_test(test_simulator_canceled_before_start),
        cmocka_unit_test(test_simulator_cancel_wakes_sleep),
        /* Keep first among the espeak tests (see its comment). */
        cmocka_unit_test(test_espeak_missing_data_is_engine_unavailable),
        cmocka_unit_test(test_espeak_hello_world),
        cmocka_unit_test(test_espeak_rate_changes_duration),
        cmocka_unit_test(test_espeak_cancel_during_synthesis),
        cmocka_unit_test(test_espeak_output_is_bounded),
        cmocka_unit_test(test_espeak_canceled_before_start),
        cmocka_unit_test(test_espeak_invalid_voice),
        cmocka_unit_test(test_espeak_unspeakable_text),
        cmocka_unit_test(test_espeak_concurrent_tasks),
        cmocka_unit_test(test_media_declarations),
        cmocka_unit_test(test_vips_operations),
        cmocka_unit_test(test_vips_flip_moves_pixels),
        cmocka_unit_test(test_vips_rejects_bad_requests_and_inputs),
        cmocka_unit_test(test_vips_rejects_broken_and_huge_inputs),
        cmocka_unit_test(test_vips_cancel),
        cmocka_unit_test(test_kenburns_text_to_video),
        cmocka_unit_test(test_kenburns_is_deterministic),
        cmocka_unit_test(test_kenburns_image_to_video),
        cmocka_unit_test(test_kenburns_cancel_and_limits),
        cmocka_unit_test(test_media_engines_concurrently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
