/*
 * image_to_video.c — the "image-to-video" task type: a short video that starts from an input
 * image (the seeds' image-to-video pipeline). The input is an asset id or a URL.
 */
#include "genpulse/handler.h"

static const gp_param_spec_t image_to_video_params[] = {
    GP_P_MEDIA("image", true,
               "The first frame: an asset id from POST /v1/assets, or an "
               "http(s) or data: URL."),
    GP_P_STRING("prompt", false, 0, 4000, NULL, "How the scene should move."),
    GP_P_STRING("negative_prompt", false, 0, 4000, NULL, "What to avoid, where supported."),
    GP_P_INT("duration", false, 1, 30, "5", "Length of the video in seconds."),
    GP_P_INT("seed", false, 0, 4294967295.0, "0", "Random seed, where the provider uses one."),
    GP_P_END,
};

const gp_task_type_t gp_task_type_image_to_video = {
    .name = "image-to-video",
    .description = "Animate an input image into a short video. The output asset is an MP4 "
                   "with a first-frame preview.",
    .default_provider = "kenburns",
    .params = image_to_video_params,
};
