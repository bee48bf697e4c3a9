/*
 * text_to_audio.c — the "text-to-audio" task type: speech synthesis from text. Providers add
 * their own extras such as voice and rate (see src/engines/espeak.c).
 */
#include "genpulse/handler.h"

static const gp_param_spec_t text_to_audio_params[] = {
    GP_P_STRING("text", true, 1, 10000, NULL, "The text to speak (UTF-8, plain text)."),
    GP_P_END,
};

const gp_task_type_t gp_task_type_text_to_audio = {
    .name = "text-to-audio",
    .description = "Synthesize speech from text. The output asset is a WAV file.",
    .default_provider = "espeak",
    .params = text_to_audio_params,
};
