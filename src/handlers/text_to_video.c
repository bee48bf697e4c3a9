/*
 * text_to_video.c — the "text-to-video" task type: a short video from a prompt.
 */
#include "genpulse/handler.h"

static const char *const aspect_ratios[] = {"16:9", "9:16", "1:1", NULL};

static const gp_param_spec_t text_to_video_params[] = {
    GP_P_STRING("prompt", true, 1, 4000, NULL, "What the video should show."),
    GP_P_STRING("negative_prompt", false, 0, 4000, NULL, "What to avoid, where supported."),
    GP_P_INT("duration", false, 1, 30, "5", "Length of the video in seconds."),
    GP_P_ENUM("aspect_ratio", aspect_ratios, "\"16:9\"", "Frame shape."),
    GP_P_INT("seed", false, 0, 4294967295.0, "0", "Random seed, where the provider uses one."),
    GP_P_END,
};

const gp_task_type_t gp_task_type_text_to_video = {
    .name = "text-to-video",
    .description = "Generate a short video from a text prompt. The output asset is an MP4 with "
                   "a first-frame preview.",
    .default_provider = "kenburns",
    .params = text_to_video_params,
};
