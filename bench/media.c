/*
 * media.c — figures for the media path every output takes: BlurHash + JPEG thumbnail of an
 * image (libvips), first frame + duration of a video (libav*), and a SigV4 presign (what the
 * gateway does per asset link on S3). Build and run: bench/media.sh.
 *
 * Usage: media IMAGE.png VIDEO.mp4 [iterations]
 */
#include "core/util.h"
#include "infra/sign/sigv4.h"
#include "media/media.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s IMAGE.png VIDEO.mp4 [iterations]\n", argv[0]);
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 20;
    char err[256];
    if (gp_media_init(err, sizeof err) != 0) {
        fprintf(stderr, "media init: %s\n", err);
        return 1;
    }
    gp_image_info_t img;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (gp_media_probe_image(argv[1], &img, "/tmp/genpulse-bench-thumb.jpg", 320, err,
                                 sizeof err) != 0) {
            fprintf(stderr, "image: %s\n", err);
            return 1;
        }
    double t_img = (now_s() - t0) / n;
    gp_video_info_t vid;
    t0 = now_s();
    for (int i = 0; i < n; i++)
        if (gp_media_probe_video(argv[2], &vid, "/tmp/genpulse-bench-frame.jpg", err, sizeof err) !=
            0) {
            fprintf(stderr, "video: %s\n", err);
            return 1;
        }
    double t_vid = (now_s() - t0) / n;
    gp_sigv4_creds_t creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL,
                              "us-east-1", "s3"};
    const char *headers[] = {"host: bucket.s3.amazonaws.com", NULL};
    gp_sigv4_request_t req = {
        "GET", "/0190f3a2-0000-7000-8000-000000000000/image.png", NULL, headers, NULL, 1700000000};
    int presigns = 100000;
    t0 = now_s();
    for (int i = 0; i < presigns; i++)
        free(gp_sigv4_presign_query(&gp_sigv4_s3, &creds, &req, 3600, NULL));
    double t_sig = (now_s() - t0) / presigns;
    printf("image %dx%d: blurhash + 320px thumbnail  %.1f ms\n", img.width, img.height,
           t_img * 1e3);
    printf("video %dx%d %.2f s: first frame + duration  %.1f ms\n", vid.width, vid.height,
           vid.duration_s, t_vid * 1e3);
    printf("S3 presigned GET link                       %.1f us\n", t_sig * 1e6);
    remove("/tmp/genpulse-bench-thumb.jpg");
    remove("/tmp/genpulse-bench-frame.jpg");
    return 0;
}
