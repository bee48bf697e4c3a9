/*
 * blurhash.c — BlurHash encoder (woltapp's algorithm, see docs in media.h).
 *
 * Written here from the published algorithm because Debian ships no BlurHash library. It
 * follows the reference C/Swift encoders where the ports disagree: the AC maximum is the
 * largest *absolute* coefficient (woltapp's TypeScript port takes the largest signed one,
 * so the two differ on images whose strongest AC term is negative). Arithmetic is in
 * double, like the TypeScript port, so its hashes match ours exactly on the test fixtures.
 *
 * No static buffers: the caller owns the output and every table is per call, so any number
 * of threads may encode at once.
 */
#include "media/media.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BH_MAX_COMPONENTS 9
#define BH_PI 3.14159265358979323846

static const char base83_digits[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

/* Big-endian base-83 digits of value, exactly `length` of them. */
static char *put_base83(char *dst, unsigned value, int length)
{
    for (int i = length - 1; i >= 0; i--) {
        dst[i] = base83_digits[value % 83];
        value /= 83;
    }
    return dst + length;
}

static double srgb_to_linear(int value)
{
    double v = (double)value / 255.0;
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

static unsigned linear_to_srgb(double value)
{
    double v = value < 0.0 ? 0.0 : value > 1.0 ? 1.0 : value;
    double s = v <= 0.0031308 ? v * 12.92 : 1.055 * pow(v, 1.0 / 2.4) - 0.055;
    return (unsigned)(s * 255.0 + 0.5); /* truncation after +0.5 = the reference's rounding */
}

static double sign_sqrt(double value)
{
    return copysign(sqrt(fabs(value)), value);
}

static unsigned quantise_ac(double value, double maximum)
{
    double q = floor(sign_sqrt(value / maximum) * 9.0 + 9.5);
    return q < 0.0 ? 0u : q > 18.0 ? 18u : (unsigned)q;
}

int gp_blurhash_encode(int x_comp, int y_comp, int width, int height, const uint8_t *rgb,
                       size_t bytes_per_row, char out[GP_BLURHASH_MAX])
{
    if (out != NULL)
        out[0] = '\0';
    if (out == NULL || rgb == NULL || x_comp < 1 || x_comp > BH_MAX_COMPONENTS || y_comp < 1 ||
        y_comp > BH_MAX_COMPONENTS || width < 1 || height < 1 || bytes_per_row / 3 < (size_t)width)
        return -1;
    size_t components = (size_t)x_comp * (size_t)y_comp;
    if (4 + 2 * components >= GP_BLURHASH_MAX) /* must fit with its NUL */
        return -1;

    /*
     * Cosine tables make the pass over the pixels one multiply-add per component instead of
     * two cos() calls; the linear-light table replaces a pow() per channel.
     */
    double linear[256];
    for (int i = 0; i < 256; i++)
        linear[i] = srgb_to_linear(i);
    double *cos_x = malloc(sizeof(double) * (size_t)x_comp * (size_t)width);
    double *cos_y = malloc(sizeof(double) * (size_t)y_comp * (size_t)height);
    if (cos_x == NULL || cos_y == NULL) {
        free(cos_x);
        free(cos_y);
        return -1;
    }
    for (int i = 0; i < x_comp; i++)
        for (int x = 0; x < width; x++)
            cos_x[(size_t)i * (size_t)width + (size_t)x] = cos(BH_PI * i * x / width);
    for (int j = 0; j < y_comp; j++)
        for (int y = 0; y < height; y++)
            cos_y[(size_t)j * (size_t)height + (size_t)y] = cos(BH_PI * j * y / height);

    double factors[BH_MAX_COMPONENTS * BH_MAX_COMPONENTS][3];
    memset(factors, 0, sizeof factors);
    for (int j = 0; j < y_comp; j++) {
        for (int i = 0; i < x_comp; i++) {
            const double *cx = cos_x + (size_t)i * (size_t)width;
            const double *cy = cos_y + (size_t)j * (size_t)height;
            double r = 0.0, g = 0.0, b = 0.0;
            for (int y = 0; y < height; y++) {
                const uint8_t *row = rgb + (size_t)y * bytes_per_row;
                double rr = 0.0, rg = 0.0, rb = 0.0;
                for (int x = 0; x < width; x++) {
                    const uint8_t *px = row + 3 * (size_t)x;
                    rr += cx[x] * linear[px[0]];
                    rg += cx[x] * linear[px[1]];
                    rb += cx[x] * linear[px[2]];
                }
                r += cy[y] * rr;
                g += cy[y] * rg;
                b += cy[y] * rb;
            }
            double scale = (i == 0 && j == 0 ? 1.0 : 2.0) / ((double)width * (double)height);
            double *f = factors[j * x_comp + i];
            f[0] = r * scale;
            f[1] = g * scale;
            f[2] = b * scale;
        }
    }
    free(cos_x);
    free(cos_y);

    char *p = out;
    p = put_base83(p, (unsigned)((x_comp - 1) + (y_comp - 1) * 9), 1);

    double maximum = 1.0;
    if (components > 1) {
        double largest = 0.0;
        for (size_t k = 1; k < components; k++)
            for (int c = 0; c < 3; c++)
                largest = fmax(largest, fabs(factors[k][c]));
        double q = floor(largest * 166.0 - 0.5);
        unsigned quantised = q < 0.0 ? 0u : q > 82.0 ? 82u : (unsigned)q;
        maximum = (quantised + 1) / 166.0;
        p = put_base83(p, quantised, 1);
    } else {
        p = put_base83(p, 0, 1);
    }

    unsigned dc = linear_to_srgb(factors[0][0]) << 16 | linear_to_srgb(factors[0][1]) << 8 |
                  linear_to_srgb(factors[0][2]);
    p = put_base83(p, dc, 4);
    for (size_t k = 1; k < components; k++) {
        unsigned ac = quantise_ac(factors[k][0], maximum) * 19 * 19 +
                      quantise_ac(factors[k][1], maximum) * 19 +
                      quantise_ac(factors[k][2], maximum);
        p = put_base83(p, ac, 2);
    }
    *p = '\0';
    return 0;
}
