/*
 * espeak.c — the "espeak" provider for text-to-audio: local formant speech synthesis with
 * libespeak-ng, returned as a 16-bit mono PCM WAV held in memory.
 *
 * libespeak-ng keeps all of its state (voice, rate, callback, buffers) in process globals
 * and is not thread-safe, so every call into it happens under engine_lock, and the library
 * is initialized once, lazily, by the first task that needs it. Synthesis runs in
 * synchronous mode: the sample callback runs on the calling worker thread, which is what
 * lets it report progress and stop early on cancel.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_mutex_timedlock, clock_gettime */

#include "genpulse/handler.h"

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ESPEAK_MAX_AUDIO_SECONDS 600 /* ten minutes: a 26 MB WAV at 22050 Hz */
#define ESPEAK_MAX_TEXT_BYTES GP_PARAM_DEFAULT_MAX_LENGTH
#define ESPEAK_MAX_VOICE_LENGTH 64
#define ESPEAK_LOCK_POLL_MS 100 /* how often a task waiting for the engine checks cancel */
#define WAV_HEADER_BYTES 44

/* Progress bands: synthesis owns 5..90 percent, encoding and storing the rest. */
#define PROGRESS_SYNTH_START 5
#define PROGRESS_SYNTH_END 90

_Static_assert(sizeof(short) == 2, "espeak-ng delivers 16-bit samples as short");

typedef enum capture_stop {
    CAPTURE_RUNNING = 0,
    CAPTURE_CANCELED,
    CAPTURE_TOO_LONG,
    CAPTURE_OUT_OF_MEMORY,
} capture_stop_t;

/*
 * What one synthesis collects; lives on the running task's stack. Samples go straight into
 * a WAV image (little-endian, after room for the header), so no second copy is ever made.
 */
typedef struct speech_capture {
    gp_ctx_t *ctx;
    unsigned char *wav;
    size_t sample_count, capacity, max_samples; /* counted in samples */
    size_t text_chars; /* code points: espeak reports text positions in characters */
    int last_percent;
    capture_stop_t stop;
} speech_capture_t;

/* Written only inside engine_init (under pthread_once); read-only after it returns. */
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static int engine_sample_rate; /* > 0 once the engine is usable */
static char engine_init_error[512];

/* Guards every libespeak-ng call and active_capture. */
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
/* The capture the synth callback appends to; set only while a task holds engine_lock. */
static speech_capture_t *active_capture;

/* ---------------------------------------------------------------------------------------
 * Engine setup and locking
 * ------------------------------------------------------------------------------------- */

static int on_synth_chunk(short *wav, int sample_count, espeak_EVENT *events);

/*
 * espeak_Initialize() cannot report failure: without espeakINITIALIZE_DONT_EXIT it calls
 * exit(1) when the data files are missing, and with it it returns the sample rate anyway.
 * The espeak_ng_* calls it wraps do return a status, so they are used directly.
 */
static void engine_init(void)
{
    char detail[200];
    espeak_ng_InitializePath(NULL); /* default data path, or $ESPEAK_DATA_PATH */
    espeak_ng_ERROR_CONTEXT context = NULL;
    espeak_ng_STATUS status = espeak_ng_Initialize(&context);
    espeak_ng_ClearErrorContext(&context);
    if (status != ENS_OK) {
        espeak_ng_GetStatusCodeMessage(status, detail, sizeof detail);
        (void)snprintf(engine_init_error, sizeof engine_init_error,
                       "espeak-ng could not load its voice data (%s); install the "
                       "espeak-ng-data package or point ESPEAK_DATA_PATH at the directory "
                       "that contains espeak-ng-data",
                       detail);
        return;
    }
    status = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, NULL);
    if (status != ENS_OK) {
        espeak_ng_GetStatusCodeMessage(status, detail, sizeof detail);
        (void)snprintf(engine_init_error, sizeof engine_init_error,
                       "espeak-ng could not set up synchronous output (%s)", detail);
        return;
    }
    int sample_rate = espeak_ng_GetSampleRate();
    if (sample_rate <= 0) {
        (void)snprintf(engine_init_error, sizeof engine_init_error,
                       "espeak-ng reported an invalid sample rate (%d)", sample_rate);
        return;
    }
    espeak_SetSynthCallback(on_synth_chunk);
    engine_sample_rate = sample_rate;
}

/*
 * Take engine_lock without ignoring cancel: another task may hold it for a long synthesis.
 * Returns 0 with the lock held, or a run() return value without it.
 */
static int lock_engine(gp_ctx_t *ctx)
{
    int rc = pthread_mutex_trylock(&engine_lock);
    if (rc == 0)
        return 0;
    if (rc != EBUSY)
        return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "cannot lock espeak-ng (error %d)", rc);

    rc = gp_ctx_progress(ctx, 1, "waiting for engine");
    if (rc != 0)
        return rc;
    for (;;) {
        struct timespec deadline;
        if (clock_gettime(CLOCK_REALTIME, &deadline) != 0)
            return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "clock_gettime failed (errno %d)",
                               errno);
        deadline.tv_nsec += (long)ESPEAK_LOCK_POLL_MS * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec += 1;
            deadline.tv_nsec -= 1000000000L;
        }
        rc = pthread_mutex_timedlock(&engine_lock, &deadline);
        if (rc == 0)
            return 0;
        if (rc != ETIMEDOUT)
            return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "cannot lock espeak-ng (error %d)",
                               rc);
        if (gp_ctx_is_canceled(ctx))
            return gp_ctx_canceled_error(ctx);
    }
}

static void unlock_engine(void)
{
    /* Only fails for a mutex this thread does not own, which lock_engine rules out. */
    (void)pthread_mutex_unlock(&engine_lock);
}

/* ---------------------------------------------------------------------------------------
 * Synthesis
 * ------------------------------------------------------------------------------------- */

static size_t utf8_code_points(const char *text)
{
    size_t count = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if ((*p & 0xC0u) != 0x80u)
            count++;
    return count;
}

/* The documented pattern: 1..64 of letters, digits, '-' and '+' ("en-us", "en+f3"). */
static bool voice_name_is_valid(const char *voice)
{
    size_t length = strlen(voice);
    if (length == 0 || length > ESPEAK_MAX_VOICE_LENGTH)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = voice[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '+';
        if (!ok)
            return false;
    }
    return true;
}

/* WAV is little-endian whatever the host is. Each writer returns the next position. */
static unsigned char *put_u16le(unsigned char *p, uint16_t value)
{
    p[0] = (unsigned char)(value & 0xFFu);
    p[1] = (unsigned char)((value >> 8) & 0xFFu);
    return p + 2;
}

static unsigned char *put_u32le(unsigned char *p, uint32_t value)
{
    p[0] = (unsigned char)(value & 0xFFu);
    p[1] = (unsigned char)((value >> 8) & 0xFFu);
    p[2] = (unsigned char)((value >> 16) & 0xFFu);
    p[3] = (unsigned char)((value >> 24) & 0xFFu);
    return p + 4;
}

static unsigned char *put_tag(unsigned char *p, const char tag[4])
{
    memcpy(p, tag, 4);
    return p + 4;
}

static bool capture_append(speech_capture_t *capture, const short *samples, size_t count)
{
    if (count > capture->max_samples - capture->sample_count) {
        capture->stop = CAPTURE_TOO_LONG;
        return false;
    }
    size_t needed = capture->sample_count + count;
    if (needed > capture->capacity) {
        size_t capacity = capture->capacity > 0 ? capture->capacity : 65536;
        while (capacity < needed)
            capacity = capacity > capture->max_samples / 2 ? capture->max_samples : capacity * 2;
        unsigned char *grown = realloc(capture->wav, WAV_HEADER_BYTES + 2 * capacity);
        if (grown == NULL) {
            capture->stop = CAPTURE_OUT_OF_MEMORY;
            return false;
        }
        capture->wav = grown;
        capture->capacity = capacity;
    }
    unsigned char *p = capture->wav + WAV_HEADER_BYTES + 2 * capture->sample_count;
    for (size_t i = 0; i < count; i++)
        p = put_u16le(p, (uint16_t)samples[i]);
    capture->sample_count = needed;
    return true;
}

/*
 * Called by espeak_Synth() on this task's thread for every chunk of audio (about 50 ms),
 * then once with wav == NULL at the end. Returning 1 makes espeak-ng stop the synthesis.
 */
static int on_synth_chunk(short *wav, int sample_count, espeak_EVENT *events)
{
    speech_capture_t *capture = active_capture;
    if (capture == NULL || capture->stop != CAPTURE_RUNNING)
        return 1;
    if (gp_ctx_is_canceled(capture->ctx)) {
        capture->stop = CAPTURE_CANCELED;
        return 1;
    }

    int text_position = 0;
    for (const espeak_EVENT *event = events;
         event != NULL && event->type != espeakEVENT_LIST_TERMINATED; event++)
        if (event->type == espeakEVENT_WORD || event->type == espeakEVENT_SENTENCE)
            text_position = event->text_position;
    if (text_position > 0 && capture->text_chars > 0) {
        size_t done = (size_t)text_position;
        if (done > capture->text_chars)
            done = capture->text_chars;
        int percent =
            PROGRESS_SYNTH_START +
            (int)((size_t)(PROGRESS_SYNTH_END - PROGRESS_SYNTH_START) * done / capture->text_chars);
        if (percent > capture->last_percent) {
            capture->last_percent = percent;
            if (gp_ctx_progress(capture->ctx, percent, NULL) != 0) {
                capture->stop = CAPTURE_CANCELED;
                return 1;
            }
        }
    }

    if (wav != NULL && sample_count > 0 && !capture_append(capture, wav, (size_t)sample_count))
        return 1;
    return 0;
}

/* Configure the voice and synthesize into capture. Caller holds engine_lock. */
static int synthesize_locked(gp_ctx_t *ctx, speech_capture_t *capture, const char *text,
                             const char *voice, int rate, int pitch)
{
    espeak_ERROR err = espeak_SetVoiceByName(voice);
    if (err == EE_NOT_FOUND)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_VOICE, "espeak-ng has no voice named \"%s\"",
                           voice);
    if (err != EE_OK)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_VOICE, "espeak-ng could not load voice \"%s\"",
                           voice);
    /* Set after the voice: these settings are global and outlive the previous task. */
    if (espeak_SetParameter(espeakRATE, rate, 0) != EE_OK ||
        espeak_SetParameter(espeakPITCH, pitch, 0) != EE_OK)
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_ERROR, "espeak-ng rejected rate %d / pitch %d",
                           rate, pitch);

    int rc = gp_ctx_progress(ctx, PROGRESS_SYNTH_START, "synthesizing");
    if (rc != 0)
        return rc;

    active_capture = capture;
    /* Plain UTF-8 only: no SSML or [[phoneme]] input from clients. */
    err = espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
    active_capture = NULL;

    /* espeak_Synth returns EE_OK even when the callback stopped it, so check ours first. */
    switch (capture->stop) {
    case CAPTURE_RUNNING: break;
    case CAPTURE_CANCELED: return gp_ctx_canceled_error(ctx);
    case CAPTURE_TOO_LONG:
        return gp_ctx_fail(ctx, false, GP_TE_OUTPUT_TOO_LONG,
                           "the speech would last more than %d seconds; shorten the text or "
                           "raise the rate",
                           ESPEAK_MAX_AUDIO_SECONDS);
    case CAPTURE_OUT_OF_MEMORY:
    default: return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "out of memory collecting audio");
    }
    if (err != EE_OK)
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_ERROR, "espeak-ng synthesis failed (%d)",
                           (int)err);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * WAV encoding
 * ------------------------------------------------------------------------------------- */

/* Fill the 44-byte canonical PCM header reserved at the front of the capture buffer. */
static void wav_write_header(unsigned char *wav, size_t sample_count, int sample_rate)
{
    uint32_t data_bytes = (uint32_t)(sample_count * 2);
    unsigned char *p = wav;
    p = put_tag(p, "RIFF");
    p = put_u32le(p, 36u + data_bytes);
    p = put_tag(p, "WAVE");
    p = put_tag(p, "fmt ");
    p = put_u32le(p, 16);                         /* fmt chunk size */
    p = put_u16le(p, 1);                          /* PCM */
    p = put_u16le(p, 1);                          /* mono */
    p = put_u32le(p, (uint32_t)sample_rate);      /* samples per second */
    p = put_u32le(p, (uint32_t)sample_rate * 2u); /* bytes per second */
    p = put_u16le(p, 2);                          /* block align */
    p = put_u16le(p, 16);                         /* bits per sample */
    p = put_tag(p, "data");
    (void)put_u32le(p, data_bytes);
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

static int clamp_int(int64_t value, int lo, int hi)
{
    return value < lo ? lo : value > hi ? hi : (int)value;
}

static int store_speech(gp_ctx_t *ctx, const speech_capture_t *capture, int sample_rate)
{
    int rc = gp_ctx_progress(ctx, PROGRESS_SYNTH_END + 2, "encoding wav");
    if (rc != 0)
        return rc;
    wav_write_header(capture->wav, capture->sample_count, sample_rate);

    double duration = (double)capture->sample_count / (double)sample_rate;
    json_t *extra = json_pack("{s:f, s:i}", "duration", duration, "sample_rate", sample_rate);
    if (extra == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the asset metadata");
    return gp_ctx_store_bytes(ctx, "speech.wav", capture->wav,
                              WAV_HEADER_BYTES + 2 * capture->sample_count, "audio/wav", extra);
}

static int espeak_run(gp_ctx_t *ctx)
{
    if (gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);

    const char *text = gp_ctx_param_str(ctx, "text", NULL);
    if (text == NULL || text[0] == '\0')
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "text is required");
    if (strlen(text) > ESPEAK_MAX_TEXT_BYTES)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "text is longer than %d bytes",
                           ESPEAK_MAX_TEXT_BYTES);
    const char *voice = gp_ctx_param_str(ctx, "voice", "en");
    if (!voice_name_is_valid(voice))
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_VOICE,
                           "voice must be 1 to %d letters, digits, '-' or '+' (e.g. \"en-us\", "
                           "\"en+f3\")",
                           ESPEAK_MAX_VOICE_LENGTH);
    int rate = clamp_int(gp_ctx_param_int(ctx, "rate", 175), 80, 450);
    int pitch = clamp_int(gp_ctx_param_int(ctx, "pitch", 50), 0, 99);

    int rc = lock_engine(ctx);
    if (rc != 0)
        return rc;
    /* Initialized under the lock too, so no espeak-ng call ever overlaps another. */
    int once_rc = pthread_once(&engine_once, engine_init);
    int sample_rate = engine_sample_rate;
    if (once_rc != 0 || sample_rate <= 0) {
        unlock_engine();
        if (once_rc != 0)
            return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "pthread_once failed (%d)", once_rc);
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_UNAVAILABLE, "%s", engine_init_error);
    }

    speech_capture_t capture = {
        .ctx = ctx,
        .max_samples = (size_t)ESPEAK_MAX_AUDIO_SECONDS * (size_t)sample_rate,
        .text_chars = utf8_code_points(text),
        .last_percent = PROGRESS_SYNTH_START,
    };
    rc = synthesize_locked(ctx, &capture, text, voice, rate, pitch);
    unlock_engine();

    if (rc == 0 && capture.sample_count == 0)
        rc = gp_ctx_fail(ctx, false, GP_TE_EMPTY_OUTPUT,
                         "espeak-ng produced no audio; the text may contain nothing speakable");
    if (rc == 0)
        rc = store_speech(ctx, &capture, sample_rate);
    free(capture.wav);
    if (rc != 0)
        return rc;
    return gp_ctx_progress(ctx, 100, "done");
}

/* ---------------------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------------------- */

static const gp_param_spec_t espeak_params[] = {
    GP_P_STRING("voice", false, 1, ESPEAK_MAX_VOICE_LENGTH, "\"en\"",
                "espeak-ng voice: a language code such as \"en\", \"en-us\", \"de\", "
                "optionally with a variant (\"en+f3\"). Letters, digits, '-' and '+'."),
    GP_P_INT("rate", false, 80, 450, "175", "Speaking rate in words per minute."),
    GP_P_INT("pitch", false, 0, 99, "50", "Base pitch, 0 (low) to 99 (high)."),
    GP_P_END,
};

static const char *const espeak_task_types[] = {"text-to-audio", NULL};

const gp_provider_t gp_provider_espeak = {
    .name = "espeak",
    .description = "Local formant speech synthesis with eSpeak NG (robotic but fast, many "
                   "languages). Produces 16-bit mono PCM WAV, at most ten minutes long.",
    .task_types = espeak_task_types,
    .params = espeak_params,
    .run = espeak_run,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_TASK, 1, NULL, NULL},
};
