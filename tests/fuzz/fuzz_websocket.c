/*
 * fuzz_websocket.c — libFuzzer target for the WebSocket frame parser (gp_ws_parse in
 * src/infra/http/websocket.c): server-to-client frames of every opcode, 7/16/64-bit lengths,
 * masks, reserved bits, fragmentation with interleaved control frames, close codes and
 * reasons, UTF-8 text, the message size limit.
 *
 * Input: byte 0 picks the message limit (small ones reach the 1009 path), byte 1 the chunk
 * size the same stream is delivered in a second time; the rest is the stream. Besides "no
 * crash, no leak, no UB", it aborts when the contract breaks:
 *   - MORE asks for more bytes than are there; other events consume at most what is there;
 *   - a message is NUL-terminated, within the limit, with a data opcode; a ping or pong
 *     payload is at most 125 bytes; an error names a close code of 1002, 1007 or 1009;
 *   - the stream whole and the stream in chunks give the same events (the parser does not
 *     depend on how the bytes arrived).
 *
 * websocket.c is compiled into this translation unit so that it is coverage-instrumented
 * (the core archive is not; see fuzz_submit.c).
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "infra/http/websocket.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 256

typedef struct summary {
    gp_ws_event_kind_t kind;
    size_t len;
    int opcode, close_code;
} summary_t;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_websocket: contract violated: %s\n", what);
        abort();
    }
}

static void check_event(const gp_ws_event_t *ev, size_t avail, size_t max_message)
{
    switch (ev->kind) {
    case GP_WS_EV_MORE: check(ev->need > avail && ev->consumed == 0, "MORE needs more"); break;
    case GP_WS_EV_ERROR:
        check(ev->close_code == 1002 || ev->close_code == 1007 || ev->close_code == 1009,
              "error close code");
        check(ev->why[0] != '\0', "error explained");
        break;
    case GP_WS_EV_MESSAGE:
        check(ev->opcode == GP_WS_TEXT || ev->opcode == GP_WS_BINARY, "message opcode");
        check(ev->len <= max_message, "message within the limit");
        check(ev->payload[ev->len] == '\0', "message NUL-terminated");
        break;
    case GP_WS_EV_PING:
    case GP_WS_EV_PONG: check(ev->len <= 125, "control payload size"); break;
    case GP_WS_EV_CLOSE:
        check(ev->close_code >= 0 && ev->close_code <= 0xFFFF, "close code");
        break;
    case GP_WS_EV_FRAGMENT: break;
    }
    if (ev->kind != GP_WS_EV_MORE && ev->kind != GP_WS_EV_ERROR)
        check(ev->consumed >= 2 && ev->consumed <= avail, "consumed within the buffer");
}

/* Parses stream delivered `chunk` bytes at a time (0: all at once) into out. */
static size_t run(const uint8_t *stream, size_t size, size_t chunk, size_t max_message,
                  summary_t *out)
{
    gp_ws_parser_t p;
    gp_ws_parser_init(&p, max_message);
    size_t off = 0, avail = chunk == 0 || chunk > size ? size : chunk, n = 0;
    while (n < MAX_EVENTS) {
        gp_ws_event_t ev;
        gp_ws_parse(&p, stream + off, avail - off, &ev);
        check_event(&ev, avail - off, max_message);
        if (ev.kind == GP_WS_EV_MORE && avail < size) {
            avail = avail + chunk > size ? size : avail + chunk;
            continue;
        }
        out[n++] = (summary_t){ev.kind, ev.len, ev.opcode, ev.close_code};
        if (ev.kind == GP_WS_EV_MORE || ev.kind == GP_WS_EV_ERROR || ev.kind == GP_WS_EV_CLOSE)
            break;
        off += ev.consumed;
    }
    gp_ws_parser_free(&p);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const size_t limits[] = {0, 1, 16, 125, 126, 300, 65536, 1u << 20};
    size_t max_message = limits[data[0] % (sizeof limits / sizeof limits[0])];
    size_t effective = max_message ? max_message : GP_WS_DEFAULT_MAX_MESSAGE;
    size_t chunk = (size_t)data[1] % 17 + 1;
    static summary_t whole[MAX_EVENTS], chunked[MAX_EVENTS];
    size_t nw = run(data + 2, size - 2, 0, effective, whole);
    size_t nc = run(data + 2, size - 2, chunk, effective, chunked);
    check(nw == nc, "same number of events in chunks");
    for (size_t i = 0; i < nw; i++)
        check(whole[i].kind == chunked[i].kind && whole[i].len == chunked[i].len &&
                  whole[i].opcode == chunked[i].opcode &&
                  whole[i].close_code == chunked[i].close_code,
              "same events in chunks");
    return 0;
}
