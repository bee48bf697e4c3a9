/*
 * test_media.c — BlurHash encoder against independent oracles, image and video probing on
 * real files, and broken inputs (empty, garbage, truncated, corrupted, oversized headers)
 * that must fail cleanly rather than crash.
 *
 * Oracles: tests/fixtures/media/blurhash_oracle.txt holds hashes made by woltapp's own
 * TypeScript encoder (see make_fixtures.js there); for images where that port's signed-max
 * quirk differs from the reference algorithm, a naive straight-from-the-formula encoder
 * below is the oracle instead. Videos are made with the ffmpeg CLI at test time; those
 * tests are skipped when ffmpeg is missing. Run from the repository root.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkdtemp, fileno */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "media/media.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

#define FIXTURES "tests/fixtures/media"

static char scratch[64];

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *scratch_path(char *buf, size_t cap, const char *name)
{
    (void)snprintf(buf, cap, "%s/%s", scratch, name);
    return buf;
}

/* Decode an image file to packed RGB8 with libvips; caller g_free()s. */
static uint8_t *load_rgb(const char *path, int *width, int *height)
{
    VipsImage *image = vips_image_new_from_file(path, NULL);
    assert_non_null(image);
    VipsImage *rgb = NULL;
    if (vips_image_get_bands(image) == 3) {
        rgb = image;
    } else {
        assert_int_equal(vips_extract_band(image, &rgb, 0, "n", 3, NULL), 0);
        g_object_unref(image);
    }
    *width = vips_image_get_width(rgb);
    *height = vips_image_get_height(rgb);
    size_t size = 0;
    uint8_t *pixels = vips_image_write_to_memory(rgb, &size);
    assert_non_null(pixels);
    assert_int_equal(size, (size_t)*width * (size_t)*height * 3);
    g_object_unref(rgb);
    return pixels;
}

static void write_file(const char *path, const void *data, size_t length)
{
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, length, file), length);
    assert_int_equal(fclose(file), 0);
}

static unsigned char *read_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    long size = ftell(file);
    assert_true(size >= 0);
    rewind(file);
    unsigned char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, file), (size_t)size);
    fclose(file);
    *length = (size_t)size;
    return data;
}

static void image_size(const char *path, int *width, int *height)
{
    VipsImage *image = vips_image_new_from_file(path, NULL);
    assert_non_null(image);
    *width = vips_image_get_width(image);
    *height = vips_image_get_height(image);
    /* Decoding all pixels proves the file is complete, not just its header. */
    double mean = 0;
    assert_int_equal(vips_avg(image, &mean, NULL), 0);
    g_object_unref(image);
}

/* A smooth, photo-like test picture written by libvips in the requested format. */
static void make_test_image(const char *path, int width, int height, int bands)
{
    VipsImage *xyz = NULL, *x = NULL, *y = NULL, *r = NULL, *g = NULL, *b = NULL, *joined = NULL,
              *out = NULL;
    assert_int_equal(vips_xyz(&xyz, width, height, NULL), 0);
    assert_int_equal(vips_extract_band(xyz, &x, 0, NULL), 0);
    assert_int_equal(vips_extract_band(xyz, &y, 1, NULL), 0);
    assert_int_equal(vips_linear1(x, &r, 255.0 / width, 0, NULL), 0);
    assert_int_equal(vips_linear1(y, &g, 255.0 / height, 0, NULL), 0);
    VipsImage *sum = NULL;
    assert_int_equal(vips_add(x, y, &sum, NULL), 0);
    assert_int_equal(vips_math(sum, &b, VIPS_OPERATION_MATH_SIN, NULL), 0);
    VipsImage *b2 = NULL;
    assert_int_equal(vips_linear1(b, &b2, 100, 128, NULL), 0);
    VipsImage *bands_in[4] = {r, g, b2, r};
    assert_int_equal(vips_bandjoin(bands_in, &joined, bands, NULL), 0);
    assert_int_equal(vips_cast(joined, &out, VIPS_FORMAT_UCHAR, NULL), 0);
    assert_int_equal(vips_image_write_to_file(out, path, NULL), 0);
    VipsImage *all[] = {xyz, x, y, r, g, b, b2, sum, joined, out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        g_object_unref(all[i]);
}

/* The formula as written in Algorithm.md, no tables and no shortcuts. */
static void naive_blurhash(int nx, int ny, int w, int h, const uint8_t *rgb, char *out)
{
    static const char digits[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    double f[81][3];
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            double s[3] = {0, 0, 0};
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int c = 0; c < 3; c++) {
                        double v = rgb[(y * w + x) * 3 + c] / 255.0;
                        v = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
                        s[c] += (i || j ? 2.0 : 1.0) * cos(M_PI * i * x / w) *
                                cos(M_PI * j * y / h) * v;
                    }
            for (int c = 0; c < 3; c++)
                f[j * nx + i][c] = s[c] / (w * h);
        }
    int n = 0;
    unsigned values[90], lengths[90];
    values[n] = (unsigned)(nx - 1 + (ny - 1) * 9), lengths[n++] = 1;
    double maxv = 0;
    for (int k = 1; k < nx * ny; k++)
        for (int c = 0; c < 3; c++)
            maxv = fmax(maxv, fabs(f[k][c]));
    int q = (int)fmax(0, fmin(82, floor(maxv * 166 - 0.5)));
    double m = (q + 1) / 166.0;
    values[n] = nx * ny > 1 ? (unsigned)q : 0, lengths[n++] = 1;
    unsigned dc = 0;
    for (int c = 0; c < 3; c++) {
        double v = fmax(0, fmin(1, f[0][c]));
        v = v <= 0.0031308 ? v * 12.92 : 1.055 * pow(v, 1 / 2.4) - 0.055;
        dc = dc << 8 | (unsigned)(int)(v * 255 + 0.5);
    }
    values[n] = dc, lengths[n++] = 4;
    for (int k = 1; k < nx * ny; k++) {
        unsigned ac = 0;
        for (int c = 0; c < 3; c++) {
            double v = f[k][c] / m;
            double qc = floor(copysign(sqrt(fabs(v)), v) * 9 + 9.5);
            ac = ac * 19 + (unsigned)fmax(0, fmin(18, qc));
        }
        values[n] = ac, lengths[n++] = 2;
    }
    char *p = out;
    for (int k = 0; k < n; k++) {
        unsigned div = 1;
        for (unsigned l = 1; l < lengths[k]; l++)
            div *= 83;
        for (; div > 0; div /= 83)
            *p++ = digits[(values[k] / div) % 83];
    }
    *p = '\0';
}

static bool have_ffmpeg(void)
{
    return system("command -v ffmpeg >/dev/null 2>&1") == 0;
}

static void run_ffmpeg(const char *args, const char *out)
{
    char command[1024];
    (void)snprintf(command, sizeof command,
                   "ffmpeg -nostdin -hide_banner -loglevel error -y %s '%s'", args, out);
    assert_int_equal(system(command), 0);
}

/* ---------------------------------------------------------------------------------------
 * BlurHash
 * ------------------------------------------------------------------------------------- */

static void test_blurhash_matches_typescript_oracle(void **state)
{
    (void)state;
    FILE *oracle = fopen(FIXTURES "/blurhash_oracle.txt", "r");
    if (oracle == NULL)
        fail_msg("cannot open %s/blurhash_oracle.txt (run from the repository root)", FIXTURES);
    char line[512];
    int checked = 0;
    while (fgets(line, sizeof line, oracle) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char name[128], expected[200];
        int nx = 0, ny = 0;
        assert_int_equal(sscanf(line, "%127s %dx%d %199s", name, &nx, &ny, expected), 4);
        char path[256];
        (void)snprintf(path, sizeof path, "%s/%s.png", FIXTURES, name);
        int width = 0, height = 0;
        uint8_t *rgb = load_rgb(path, &width, &height);
        char hash[GP_BLURHASH_MAX];
        int rc = gp_blurhash_encode(nx, ny, width, height, rgb, (size_t)width * 3, hash);
        if (4 + 2 * nx * ny >= GP_BLURHASH_MAX) {
            assert_int_equal(rc, -1); /* does not fit the API's buffer */
        } else {
            assert_int_equal(rc, 0);
            if (strcmp(hash, expected) != 0)
                fail_msg("%s %dx%d: got %s, TypeScript encoder gave %s", name, nx, ny, hash,
                         expected);
            checked++;
        }
        g_free(rgb);
    }
    fclose(oracle);
    assert_true(checked >= 20);
}

/* Where the TypeScript port's signed maximum differs, the reference takes |AC|. */
static void test_blurhash_uses_absolute_maximum(void **state)
{
    (void)state;
    int width = 0, height = 0;
    uint8_t *rgb = load_rgb(FIXTURES "/photo_noise_64x48.png", &width, &height);
    char hash[GP_BLURHASH_MAX], naive[200];
    for (int nx = 1; nx <= 5; nx++)
        for (int ny = 1; ny <= 5; ny++) {
            assert_int_equal(
                gp_blurhash_encode(nx, ny, width, height, rgb, (size_t)width * 3, hash), 0);
            naive_blurhash(nx, ny, width, height, rgb, naive);
            assert_string_equal(hash, naive);
            assert_int_equal(strlen(hash), (size_t)(4 + 2 * nx * ny));
        }
    g_free(rgb);
}

/* Row padding (bytes_per_row > 3*width) must be skipped, not read as pixels. */
static void test_blurhash_honours_row_stride(void **state)
{
    (void)state;
    enum {
        W = 13,
        H = 7,
        PAD = 5
    };
    uint8_t packed[W * H * 3], padded[(W * 3 + PAD) * H];
    memset(padded, 0xEE, sizeof padded);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W * 3; x++) {
            uint8_t v = (uint8_t)(x * 17 + y * 31);
            packed[y * W * 3 + x] = v;
            padded[y * (W * 3 + PAD) + x] = v;
        }
    char a[GP_BLURHASH_MAX], b[GP_BLURHASH_MAX], naive[200];
    assert_int_equal(gp_blurhash_encode(4, 3, W, H, packed, W * 3, a), 0);
    assert_int_equal(gp_blurhash_encode(4, 3, W, H, padded, W * 3 + PAD, b), 0);
    naive_blurhash(4, 3, W, H, packed, naive);
    assert_string_equal(a, b);
    assert_string_equal(a, naive);
}

static void test_blurhash_rejects_bad_arguments(void **state)
{
    (void)state;
    uint8_t rgb[3 * 4] = {0};
    char out[GP_BLURHASH_MAX] = "x";
    assert_int_equal(gp_blurhash_encode(0, 3, 2, 2, rgb, 6, out), -1);
    assert_string_equal(out, "");
    assert_int_equal(gp_blurhash_encode(4, 10, 2, 2, rgb, 6, out), -1);
    assert_int_equal(gp_blurhash_encode(9, 9, 2, 2, rgb, 6, out), -1); /* 166 chars */
    assert_int_equal(gp_blurhash_encode(4, 3, 0, 2, rgb, 6, out), -1);
    assert_int_equal(gp_blurhash_encode(4, 3, 2, -1, rgb, 6, out), -1);
    assert_int_equal(gp_blurhash_encode(4, 3, 2, 2, rgb, 5, out), -1); /* row too short */
    assert_int_equal(gp_blurhash_encode(4, 3, 2, 2, NULL, 6, out), -1);
    assert_int_equal(gp_blurhash_encode(4, 3, 2, 2, rgb, 6, NULL), -1);
    assert_int_equal(gp_blurhash_encode(5, 5, 2, 2, rgb, 6, out), 0); /* 54 chars fit */
    assert_int_equal(strlen(out), 54);
}

/* ---------------------------------------------------------------------------------------
 * Images
 * ------------------------------------------------------------------------------------- */

static void test_probe_png_fixture(void **state)
{
    (void)state;
    char thumb[256];
    scratch_path(thumb, sizeof thumb, "fixture-thumb.jpg");
    gp_image_info_t info;
    char err[256] = "";
    /* Small enough that the hash is computed from the unscaled pixels: oracle applies. */
    assert_int_equal(
        gp_media_probe_image(FIXTURES "/diag_odd_33x19.png", &info, thumb, 16, err, sizeof err), 0);
    assert_int_equal(info.width, 33);
    assert_int_equal(info.height, 19);
    assert_string_equal(info.blurhash, "L?Hx_0FrN^xDlzOUwxSyX$oKfQW:");
    int width = 0, height = 0;
    image_size(thumb, &width, &height);
    assert_int_equal(width, 16);
    assert_true(height >= 9 && height <= 10);
}

static void test_probe_large_png_and_jpeg(void **state)
{
    (void)state;
    char png[256], jpg[256], thumb[256];
    scratch_path(png, sizeof png, "big.png");
    scratch_path(jpg, sizeof jpg, "big.jpg");
    scratch_path(thumb, sizeof thumb, "big-thumb.jpg");
    make_test_image(png, 1024, 1024, 3);
    make_test_image(jpg, 1600, 900, 3);

    gp_image_info_t info;
    char err[256] = "";
    double start = now_seconds();
    assert_int_equal(gp_media_probe_image(png, &info, thumb, 256, err, sizeof err), 0);
    double elapsed = now_seconds() - start;
    printf("    probe_image 1024x1024 PNG (blurhash + 256 px thumbnail): %.1f ms\n",
           elapsed * 1000);
    assert_int_equal(info.width, 1024);
    assert_int_equal(info.height, 1024);
    assert_int_equal(strlen(info.blurhash), 28);
    int width = 0, height = 0;
    image_size(thumb, &width, &height);
    assert_int_equal(width, 256);
    assert_int_equal(height, 256);

    assert_int_equal(gp_media_probe_image(jpg, &info, thumb, 320, err, sizeof err), 0);
    assert_int_equal(info.width, 1600);
    assert_int_equal(info.height, 900);
    assert_int_equal(strlen(info.blurhash), 28);
    image_size(thumb, &width, &height);
    assert_int_equal(width, 320);
    assert_int_equal(height, 180);

    /* Without a thumbnail path only the analysis runs; smaller images are not enlarged. */
    assert_int_equal(gp_media_probe_image(jpg, &info, NULL, 0, err, sizeof err), 0);
    assert_int_equal(strlen(info.blurhash), 28);
}

static void test_probe_alpha_gray_and_16bit(void **state)
{
    (void)state;
    char rgba[256], gray[256], deep[256], thumb[256];
    scratch_path(rgba, sizeof rgba, "alpha.png");
    scratch_path(gray, sizeof gray, "gray.png");
    scratch_path(deep, sizeof deep, "deep.png");
    scratch_path(thumb, sizeof thumb, "t.jpg");
    make_test_image(rgba, 120, 80, 4);
    make_test_image(gray, 90, 90, 1);
    {
        VipsImage *in = vips_image_new_from_file(rgba, NULL), *wide = NULL, *cast = NULL;
        assert_non_null(in);
        assert_int_equal(vips_linear1(in, &wide, 257, 0, NULL), 0);
        assert_int_equal(vips_cast(wide, &cast, VIPS_FORMAT_USHORT, NULL), 0);
        vips_image_set_int(cast, "interpretation", VIPS_INTERPRETATION_RGB16);
        assert_int_equal(vips_image_write_to_file(cast, deep, NULL), 0);
        g_object_unref(in);
        g_object_unref(wide);
        g_object_unref(cast);
    }
    const char *paths[] = {rgba, gray, deep};
    for (size_t i = 0; i < 3; i++) {
        gp_image_info_t info;
        char err[256] = "";
        if (gp_media_probe_image(paths[i], &info, thumb, 64, err, sizeof err) != 0)
            fail_msg("%s: %s", paths[i], err);
        assert_int_equal(strlen(info.blurhash), 28);
        int width = 0, height = 0;
        image_size(thumb, &width, &height);
        assert_true(width == 64 || height == 64);
    }
}

static void expect_image_failure(const char *path, const char *must_contain)
{
    gp_image_info_t info;
    char thumb[256], err[256] = "";
    scratch_path(thumb, sizeof thumb, "bad-thumb.jpg");
    if (gp_media_probe_image(path, &info, thumb, 64, err, sizeof err) != -1)
        fail_msg("%s was accepted as an image", path);
    assert_true(err[0] != '\0');
    assert_string_equal(info.blurhash, "");
    if (must_contain != NULL && strstr(err, must_contain) == NULL)
        fail_msg("error for %s lacks \"%s\": %s", path, must_contain, err);
}

static uint32_t crc32_png(const unsigned char *data, size_t length)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (uint32_t) - (int32_t)(crc & 1));
    }
    return ~crc;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void test_probe_image_rejects_bad_files(void **state)
{
    (void)state;
    char path[256];
    expect_image_failure(scratch_path(path, sizeof path, "does-not-exist.png"), NULL);
    write_file(scratch_path(path, sizeof path, "empty.png"), "", 0);
    expect_image_failure(path, NULL);
    write_file(scratch_path(path, sizeof path, "text.png"), "hello, not an image\n", 20);
    expect_image_failure(path, NULL);

    /* Truncated PNG and JPEG: header intact, pixels cut off. */
    char png[256], jpg[256];
    scratch_path(png, sizeof png, "trunc-src.png");
    scratch_path(jpg, sizeof jpg, "trunc-src.jpg");
    make_test_image(png, 300, 200, 3);
    make_test_image(jpg, 300, 200, 3);
    const char *sources[] = {png, jpg};
    for (size_t s = 0; s < 2; s++) {
        size_t length = 0;
        unsigned char *data = read_file(sources[s], &length);
        write_file(scratch_path(path, sizeof path, "half"), data, length / 2);
        expect_image_failure(path, NULL);
        free(data);
    }

    /* A valid PNG header announcing 20000 x 20000 pixels: refused before any decoding. */
    /* (libvips needs a chunk after IHDR to accept the header; IDAT's content is never read.) */
    unsigned char bomb[8 + 25 + 14 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    unsigned char *ihdr = bomb + 8;
    put_be32(ihdr, 13);
    memcpy(ihdr + 4, "IHDR", 4);
    put_be32(ihdr + 8, 20000);
    put_be32(ihdr + 12, 20000);
    ihdr[16] = 8, ihdr[17] = 2, ihdr[18] = 0, ihdr[19] = 0, ihdr[20] = 0;
    put_be32(ihdr + 21, crc32_png(ihdr + 4, 17));
    unsigned char *idat = ihdr + 25;
    put_be32(idat, 2);
    memcpy(idat + 4, "IDAT\x78\x9c", 6);
    put_be32(idat + 10, crc32_png(idat + 4, 6));
    unsigned char *iend = idat + 14;
    put_be32(iend, 0);
    memcpy(iend + 4, "IEND", 4);
    put_be32(iend + 8, crc32_png(iend + 4, 4));
    write_file(scratch_path(path, sizeof path, "bomb.png"), bomb, sizeof bomb);
    expect_image_failure(path, "megapixel");

    gp_image_info_t info;
    char err[64];
    assert_int_equal(gp_media_probe_image(NULL, &info, NULL, 0, err, sizeof err), -1);
    assert_int_equal(gp_media_probe_image(png, &info, path, 0, err, sizeof err), -1);
}

/* Truncations and byte flips at many offsets: any result is fine, a crash is not. */
static void test_probe_image_survives_corruption(void **state)
{
    (void)state;
    char src[256], path[256], thumb[256];
    scratch_path(thumb, sizeof thumb, "fuzz-thumb.jpg");
    const char *names[] = {"fuzz.png", "fuzz.jpg", "fuzz.webp"};
    unsigned seed = 12345;
    for (size_t n = 0; n < 3; n++) {
        make_test_image(scratch_path(src, sizeof src, names[n]), 96, 64, 3);
        size_t length = 0;
        unsigned char *data = read_file(src, &length);
        unsigned char *copy = malloc(length);
        assert_non_null(copy);
        for (int round = 0; round < 40; round++) {
            memcpy(copy, data, length);
            size_t keep = length;
            if (round % 2 == 0) {
                keep = (size_t)round * length / 41;
            } else {
                for (int flips = 0; flips < 4; flips++) {
                    seed = seed * 1103515245u + 12345u;
                    copy[(seed >> 8) % length] ^= (unsigned char)(seed >> 3 | 1);
                }
            }
            write_file(scratch_path(path, sizeof path, names[n]), copy, keep);
            gp_image_info_t info;
            char err[256];
            int rc = gp_media_probe_image(path, &info, thumb, 32, err, sizeof err);
            assert_true(rc == 0 || rc == -1);
            if (rc == 0)
                assert_int_equal(strlen(info.blurhash), 28);
        }
        free(copy);
        free(data);
    }
}

typedef struct probe_job {
    const char *path;
    char thumb[256];
    int rc;
    char hash[GP_BLURHASH_MAX];
} probe_job_t;

static void *probe_thread(void *arg)
{
    probe_job_t *job = arg;
    gp_image_info_t info;
    char err[256];
    for (int i = 0; i < 5 && job->rc == 0; i++) {
        job->rc = gp_media_probe_image(job->path, &info, job->thumb, 48, err, sizeof err);
        if (job->rc == 0)
            memcpy(job->hash, info.blurhash, sizeof job->hash);
    }
    return NULL;
}

static void test_probe_image_from_many_threads(void **state)
{
    (void)state;
    char png[256];
    make_test_image(scratch_path(png, sizeof png, "threads.png"), 400, 300, 3);
    probe_job_t jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].path = png;
        (void)snprintf(jobs[i].thumb, sizeof jobs[i].thumb, "%s/thread-%d.jpg", scratch, i);
        assert_int_equal(pthread_create(&threads[i], NULL, probe_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].rc, 0);
        assert_string_equal(jobs[i].hash, jobs[0].hash);
    }
}

/* ---------------------------------------------------------------------------------------
 * Videos
 * ------------------------------------------------------------------------------------- */

static void test_probe_video(void **state)
{
    (void)state;
    if (!have_ffmpeg())
        skip();
    char mp4[256], frame[256];
    scratch_path(mp4, sizeof mp4, "clip.mp4");
    scratch_path(frame, sizeof frame, "frame.jpg");
    run_ffmpeg("-f lavfi -i testsrc=duration=2:size=320x240:rate=24 -pix_fmt yuv420p", mp4);

    gp_video_info_t info;
    char err[256] = "";
    double start = now_seconds();
    if (gp_media_probe_video(mp4, &info, frame, err, sizeof err) != 0)
        fail_msg("probe_video: %s", err);
    printf("    probe_video 2 s 320x240 MP4 (first frame to JPEG): %.1f ms\n",
           (now_seconds() - start) * 1000);
    assert_int_equal(info.width, 320);
    assert_int_equal(info.height, 240);
    assert_true(fabs(info.duration_s - 2.0) < 0.1);
    int width = 0, height = 0;
    image_size(frame, &width, &height);
    assert_int_equal(width, 320);
    assert_int_equal(height, 240);

    /* Without a frame path: the same analysis, nothing written. */
    assert_int_equal(gp_media_probe_video(mp4, &info, NULL, err, sizeof err), 0);
    assert_int_equal(info.width, 320);

    /* Another container and codec. */
    char webm[256];
    scratch_path(webm, sizeof webm, "clip.mkv");
    run_ffmpeg("-f lavfi -i testsrc=duration=1:size=176x144:rate=10 -c:v mpeg4", webm);
    assert_int_equal(gp_media_probe_video(webm, &info, frame, err, sizeof err), 0);
    assert_int_equal(info.width, 176);
    assert_true(fabs(info.duration_s - 1.0) < 0.15);
}

static void expect_video_failure(const char *path)
{
    gp_video_info_t info;
    char frame[256], err[256] = "";
    scratch_path(frame, sizeof frame, "bad-frame.jpg");
    if (gp_media_probe_video(path, &info, frame, err, sizeof err) != -1)
        fail_msg("%s was accepted as a video", path);
    assert_true(err[0] != '\0');
}

static void test_probe_video_rejects_bad_files(void **state)
{
    (void)state;
    char path[256];
    expect_video_failure(scratch_path(path, sizeof path, "missing.mp4"));
    write_file(scratch_path(path, sizeof path, "empty.mp4"), "", 0);
    expect_video_failure(path);
    write_file(scratch_path(path, sizeof path, "garbage.mp4"), "\x00\x01garbage garbage", 17);
    expect_video_failure(path);
    /* An image is not a video (image demuxers are not on the allow-list). */
    expect_video_failure(FIXTURES "/photo_noise_64x48.png");
    /* A playlist must not make the demuxer open other files or URLs. */
    write_file(scratch_path(path, sizeof path, "list.m3u8"),
               "#EXTM3U\n#EXTINF:1,\n/etc/passwd\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n", 63);
    expect_video_failure(path);
    if (!have_ffmpeg())
        return;
    /* Audio only: a container, but no video stream. */
    char audio[256];
    scratch_path(audio, sizeof audio, "tone.m4a");
    run_ffmpeg("-f lavfi -i sine=duration=1", audio);
    expect_video_failure(audio);
    /* moov atom at the end: cutting the file in half loses the index. */
    char mp4[256];
    scratch_path(mp4, sizeof mp4, "cut-src.mp4");
    run_ffmpeg("-f lavfi -i testsrc=duration=1:size=160x120:rate=24 -pix_fmt yuv420p", mp4);
    size_t length = 0;
    unsigned char *data = read_file(mp4, &length);
    write_file(scratch_path(path, sizeof path, "cut.mp4"), data, length / 2);
    expect_video_failure(path);
    free(data);
}

static void test_probe_video_survives_corruption(void **state)
{
    (void)state;
    if (!have_ffmpeg())
        skip();
    char src[256], path[256], frame[256];
    scratch_path(frame, sizeof frame, "fuzz-frame.jpg");
    const char *sources[] = {"fuzz-fast.mp4", "fuzz.mkv"};
    const char *args[] = {"-f lavfi -i testsrc=duration=1:size=160x120:rate=24 -pix_fmt yuv420p "
                          "-movflags +faststart",
                          "-f lavfi -i testsrc=duration=1:size=160x120:rate=24 -c:v mpeg4"};
    unsigned seed = 99;
    for (size_t s = 0; s < 2; s++) {
        run_ffmpeg(args[s], scratch_path(src, sizeof src, sources[s]));
        size_t length = 0;
        unsigned char *data = read_file(src, &length);
        unsigned char *copy = malloc(length);
        assert_non_null(copy);
        for (int round = 0; round < 30; round++) {
            memcpy(copy, data, length);
            size_t keep = length;
            if (round % 2 == 0) {
                keep = (size_t)round * length / 31;
            } else {
                for (int flips = 0; flips < 8; flips++) {
                    seed = seed * 1103515245u + 12345u;
                    copy[(seed >> 8) % length] ^= (unsigned char)(seed >> 3 | 1);
                }
            }
            write_file(scratch_path(path, sizeof path, sources[s]), copy, keep);
            gp_video_info_t info;
            char err[256];
            int rc = gp_media_probe_video(path, &info, frame, err, sizeof err);
            assert_true(rc == 0 || rc == -1);
        }
        free(copy);
        free(data);
    }
}

/* ---------------------------------------------------------------------------------------
 * Setup
 * ------------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    char err[256];
    if (gp_media_init(err, sizeof err) != 0) {
        fprintf(stderr, "gp_media_init: %s\n", err);
        return -1;
    }
    assert_int_equal(gp_media_init(err, sizeof err), 0); /* idempotent */
    (void)snprintf(scratch, sizeof scratch, "/tmp/genpulse-test-media-XXXXXX");
    return mkdtemp(scratch) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char command[128];
    (void)snprintf(command, sizeof command, "rm -rf '%s'", scratch);
    return system(command) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blurhash_matches_typescript_oracle),
        cmocka_unit_test(test_blurhash_uses_absolute_maximum),
        cmocka_unit_test(test_blurhash_honours_row_stride),
        cmocka_unit_test(test_blurhash_rejects_bad_arguments),
        cmocka_unit_test(test_probe_png_fixture),
        cmocka_unit_test(test_probe_large_png_and_jpeg),
        cmocka_unit_test(test_probe_alpha_gray_and_16bit),
        cmocka_unit_test(test_probe_image_rejects_bad_files),
        cmocka_unit_test(test_probe_image_survives_corruption),
        cmocka_unit_test(test_probe_image_from_many_threads),
        cmocka_unit_test(test_probe_video),
        cmocka_unit_test(test_probe_video_rejects_bad_files),
        cmocka_unit_test(test_probe_video_survives_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
