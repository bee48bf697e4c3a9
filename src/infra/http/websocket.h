/*
 * websocket.h — a small RFC 6455 WebSocket *client* (used for ComfyUI's /ws progress feed).
 *
 * Why hand-written: libcurl gained WebSocket support in 7.86 only as an experimental feature
 * that must be enabled at build time, and Debian 12's libcurl 7.88 is built without it. The
 * protocol a client needs is small, so libcurl still does the part that is hard to get right
 * (DNS, connect timeout, proxies, TLS with verification) through CURLOPT_CONNECT_ONLY, and
 * this file does the HTTP/1.1 upgrade and the framing over curl_easy_send/curl_easy_recv:
 *
 *   - handshake: random 16-byte Sec-WebSocket-Key, Sec-WebSocket-Accept verified as
 *     base64(SHA-1(key + RFC 6455 GUID)); no extensions or subprotocols are offered, so a
 *     server that names one is refused;
 *   - frames: client frames are masked with a fresh random key; server frames must not be;
 *     fragmented messages are reassembled (control frames may interleave); ping is answered
 *     with pong; close is answered and reported; text must be valid UTF-8;
 *   - limits: a message larger than max_message (default GP_WS_DEFAULT_MAX_MESSAGE) fails
 *     the connection with close code 1009 before the bytes are buffered.
 *
 * A gp_ws_t belongs to one thread at a time; different connections are independent.
 */
#ifndef GP_WEBSOCKET_H
#define GP_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>

#define GP_WS_DEFAULT_MAX_MESSAGE (8u << 20)

/* gp_ws_recv() results. */
enum {
    GP_WS_OK = 0,      /* a message was received */
    GP_WS_TIMEOUT = 1, /* nothing complete arrived within timeout_ms */
    GP_WS_CLOSED = 2,  /* the server closed (close frame or EOF); see gp_ws_close_code() */
    GP_WS_ERROR = -1,  /* transport or protocol error; see gp_ws_error() */
};

/* Message opcodes as reported by gp_ws_recv(). */
enum {
    GP_WS_TEXT = 1,
    GP_WS_BINARY = 2
};

typedef struct gp_ws gp_ws_t;

/*
 * Opens ws:// or wss:// url. headers: NULL-terminated "Name: value" lines sent with the
 * upgrade request (may be NULL; lines holding CR or LF are refused). Returns 0 with *out set,
 * or -1 with a reason in err (never containing header values).
 */
int gp_ws_connect(const char *url, const char *const *headers, int connect_timeout_ms,
                  gp_ws_t **out, char *err, size_t err_cap);

/* Largest message accepted from now on (bytes, > 0). */
void gp_ws_set_max_message(gp_ws_t *ws, size_t max_message);

/*
 * Waits up to timeout_ms (0: only what is already buffered) for one complete data message.
 * On GP_WS_OK, *opcode is GP_WS_TEXT or GP_WS_BINARY and *data and *len describe the payload,
 * NUL-terminated (not counted), owned by ws and valid until the next call on ws.
 */
int gp_ws_recv(gp_ws_t *ws, int timeout_ms, int *opcode, const unsigned char **data, size_t *len);

/* Sends one unfragmented text message. Returns 0 or -1 (connection unusable). */
int gp_ws_send_text(gp_ws_t *ws, const char *text, size_t len);

/* Why the connection failed ("" if it did not). */
const char *gp_ws_error(const gp_ws_t *ws);
/* The status code of the server's close frame (1005 when it had none, 1006 on EOF). */
int gp_ws_close_code(const gp_ws_t *ws);

/*
 * Sends a normal close (1000) if the connection is still up, waits at most ~250 ms for the
 * server's close, and frees everything. NULL is allowed.
 */
void gp_ws_close(gp_ws_t *ws);

/*
 * The frame parser under gp_ws_recv(), without I/O: server-to-client frames in a buffer
 * become events (fuzzed by tests/fuzz/fuzz_websocket.c). It checks what RFC 6455 asks of a
 * client: no reserved bits, no masked server frames, known opcodes, 7/16/64-bit lengths
 * with the top bit clear, control frames final and at most 125 bytes, continuations only
 * inside a message and no new message inside one, the message size limit (checked from the
 * header, before the payload is buffered), UTF-8 text and close reasons, close codes.
 * A parser belongs to one thread at a time.
 */
typedef struct gp_ws_parser {
    unsigned char *msg; /* the message being reassembled; NUL-terminated */
    size_t msg_len, msg_cap;
    int msg_opcode; /* RFC 6455 opcode of the message in progress; 0: none */
    size_t max_message;
} gp_ws_parser_t;

typedef enum gp_ws_event_kind {
    GP_WS_EV_MORE,     /* no whole frame yet: `need` bytes in total are needed */
    GP_WS_EV_FRAGMENT, /* a non-final data frame joined the message in progress */
    GP_WS_EV_MESSAGE,  /* a message is complete: opcode, payload, len */
    GP_WS_EV_PING,     /* payload, len: to be echoed in a pong */
    GP_WS_EV_PONG,
    GP_WS_EV_CLOSE, /* close_code: the server's (1005 when it sent none) */
    GP_WS_EV_ERROR, /* protocol violation: close with close_code, `why` says what */
} gp_ws_event_kind_t;

typedef struct gp_ws_event {
    gp_ws_event_kind_t kind;
    size_t consumed; /* bytes of the buffer this frame took (0 for MORE and ERROR) */
    size_t need;     /* MORE */
    int opcode;      /* MESSAGE: GP_WS_TEXT or GP_WS_BINARY */
    /* MESSAGE: the parser's buffer, valid until the next parse; PING/PONG: into the input */
    const unsigned char *payload;
    size_t len;
    int close_code; /* CLOSE, ERROR */
    char why[256];  /* ERROR */
} gp_ws_event_t;

/* max_message 0: GP_WS_DEFAULT_MAX_MESSAGE. */
void gp_ws_parser_init(gp_ws_parser_t *p, size_t max_message);
void gp_ws_parser_free(gp_ws_parser_t *p);
/* Parses the frame at the front of buf[0..len) into *ev; the caller drops ev->consumed bytes
 * and calls again. After ERROR the stream is unusable. */
void gp_ws_parse(gp_ws_parser_t *p, const unsigned char *buf, size_t len, gp_ws_event_t *ev);

#endif
