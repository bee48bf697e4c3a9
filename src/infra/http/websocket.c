/*
 * websocket.c — RFC 6455 client over a libcurl CONNECT_ONLY connection (see websocket.h for
 * why it exists). Everything here is per connection; there is no shared state.
 */
#include "infra/http/websocket.h"

#include "core/base64.h"
#include "core/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HANDSHAKE 16384   /* response head; ComfyUI's is ~200 bytes */
#define WS_SEND_TIMEOUT_MS 10000 /* a peer that stops reading is a dead peer */
#define WS_CLOSE_WAIT_MS 250
#define WS_READ_CHUNK 16384
#define WS_MAX_FRAME_HEADER 14

enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xA,
};

/* Close codes from RFC 6455 §7.4.1. */
enum {
    CLOSE_NORMAL = 1000,
    CLOSE_PROTOCOL = 1002,
    CLOSE_NO_STATUS = 1005,
    CLOSE_ABNORMAL = 1006,
    CLOSE_BAD_DATA = 1007,
    CLOSE_TOO_BIG = 1009,
};

struct gp_ws {
    CURL *curl;
    curl_socket_t sock;

    /* Bytes read from the connection and not yet consumed as frames. */
    unsigned char *in;
    size_t in_len, in_cap;

    /* Frames to messages; its buffer holds what gp_ws_recv() hands out. */
    gp_ws_parser_t parser;

    bool close_sent, closed, failed;
    int close_code;
    char error[256];
};

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

static void set_error(gp_ws_t *ws, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(gp_ws_t *ws, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(ws->error, sizeof ws->error, fmt, ap);
    va_end(ap);
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - gp_mono_ms();
    if (left <= 0)
        return 0;
    return left > 60000 ? 60000 : (int)left;
}

/* Waits for the socket to become ready for `events`; 1 ready, 0 timed out, -1 error. */
static int wait_socket(curl_socket_t sock, short events, int timeout_ms)
{
    struct pollfd pfd = {.fd = (int)sock, .events = events};
    for (;;) {
        int n = poll(&pfd, 1, timeout_ms);
        if (n > 0)
            return 1; /* includes POLLERR/POLLHUP: the next recv/send reports what happened */
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static bool reserve(unsigned char **buf, size_t *cap, size_t needed)
{
    if (needed <= *cap)
        return true;
    size_t grown = *cap > 0 ? *cap : 4096;
    while (grown < needed)
        grown = grown > SIZE_MAX / 2 ? needed : grown * 2;
    unsigned char *p = realloc(*buf, grown);
    if (p == NULL)
        return false;
    *buf = p;
    *cap = grown;
    return true;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        unsigned cp, min;
        if ((c & 0xE0u) == 0xC0u) {
            extra = 1, cp = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0u) == 0xE0u) {
            extra = 2, cp = c & 0x0Fu, min = 0x800;
        } else if ((c & 0xF8u) == 0xF0u) {
            extra = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (extra > n - i - 1)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xC0u) != 0x80u)
                return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu))
            return false;
        i += extra + 1;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Raw I/O
 * ------------------------------------------------------------------------------------- */

static int send_all(gp_ws_t *ws, const unsigned char *data, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(ws->curl, data + off, len - off, &n);
        if (rc == CURLE_OK) {
            off += n;
            continue;
        }
        if (rc != CURLE_AGAIN) {
            set_error(ws, "send failed: %s", curl_easy_strerror(rc));
            return -1;
        }
        int ready = wait_socket(ws->sock, POLLOUT, remaining_ms(deadline));
        if (ready <= 0) {
            set_error(ws, ready == 0 ? "send timed out" : "poll failed while sending");
            return -1;
        }
    }
    return 0;
}

/*
 * Reads whatever is available into ws->in, waiting until deadline if nothing is.
 * Returns GP_WS_OK (bytes added), GP_WS_TIMEOUT, GP_WS_CLOSED (EOF) or GP_WS_ERROR.
 */
static int fill(gp_ws_t *ws, int64_t deadline, size_t limit)
{
    if (!reserve(&ws->in, &ws->in_cap, ws->in_len + WS_READ_CHUNK)) {
        set_error(ws, "out of memory");
        return GP_WS_ERROR;
    }
    size_t room = ws->in_cap - ws->in_len;
    if (limit > 0 && room > limit)
        room = limit;
    for (;;) {
        /* recv before poll: TLS may hold decrypted bytes the socket no longer signals. */
        size_t n = 0;
        CURLcode rc = curl_easy_recv(ws->curl, ws->in + ws->in_len, room, &n);
        if (rc == CURLE_OK) {
            if (n == 0)
                return GP_WS_CLOSED;
            ws->in_len += n;
            return GP_WS_OK;
        }
        if (rc != CURLE_AGAIN) {
            set_error(ws, "receive failed: %s", curl_easy_strerror(rc));
            return GP_WS_ERROR;
        }
        int wait = remaining_ms(deadline);
        if (wait == 0)
            return GP_WS_TIMEOUT;
        int ready = wait_socket(ws->sock, POLLIN, wait);
        if (ready == 0)
            return GP_WS_TIMEOUT;
        if (ready < 0) {
            set_error(ws, "poll failed while receiving");
            return GP_WS_ERROR;
        }
    }
}

static void consume(gp_ws_t *ws, size_t n)
{
    memmove(ws->in, ws->in + n, ws->in_len - n);
    ws->in_len -= n;
}

/* ---------------------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------------------- */

static int send_frame(gp_ws_t *ws, int opcode, const void *payload, size_t len)
{
    unsigned char stack[WS_MAX_FRAME_HEADER + 125];
    size_t header = 2 + 4 + (len <= 125 ? 0 : len <= 0xFFFF ? 2 : 8);
    if (len > SIZE_MAX - header) {
        set_error(ws, "message too large to send");
        return -1;
    }
    unsigned char *frame = header + len <= sizeof stack ? stack : malloc(header + len);
    if (frame == NULL) {
        set_error(ws, "out of memory");
        return -1;
    }
    size_t pos = 0;
    frame[pos++] = (unsigned char)(0x80u | (unsigned)opcode); /* FIN: never fragment */
    if (len <= 125) {
        frame[pos++] = (unsigned char)(0x80u | len);
    } else if (len <= 0xFFFF) {
        frame[pos++] = 0x80u | 126u;
        frame[pos++] = (unsigned char)(len >> 8);
        frame[pos++] = (unsigned char)len;
    } else {
        frame[pos++] = 0x80u | 127u;
        for (int shift = 56; shift >= 0; shift -= 8)
            frame[pos++] = (unsigned char)((uint64_t)len >> shift);
    }
    /* The mask exists to defeat cache poisoning by proxies, so it must be unpredictable. */
    unsigned char mask[4];
    gp_random_bytes(mask, sizeof mask);
    memcpy(frame + pos, mask, 4);
    pos += 4;
    const unsigned char *src = payload;
    for (size_t i = 0; i < len; i++)
        frame[pos + i] = (unsigned char)(src[i] ^ mask[i & 3u]);
    int rc = send_all(ws, frame, pos + len, gp_mono_ms() + WS_SEND_TIMEOUT_MS);
    if (frame != stack)
        free(frame);
    return rc;
}

static void send_close(gp_ws_t *ws, int code)
{
    if (ws->close_sent || ws->curl == NULL)
        return;
    ws->close_sent = true;
    unsigned char payload[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    char saved[sizeof ws->error];
    memcpy(saved, ws->error, sizeof saved); /* keep the reason we are closing for */
    (void)send_frame(ws, OP_CLOSE, payload, sizeof payload);
    memcpy(ws->error, saved, sizeof saved);
}

/* Protocol violation: tell the server why (best effort) and refuse further use. */
static int fail(gp_ws_t *ws, int close_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(gp_ws_t *ws, int close_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(ws->error, sizeof ws->error, fmt, ap);
    va_end(ap);
    send_close(ws, close_code);
    ws->failed = true;
    return GP_WS_ERROR;
}

/* ---------------------------------------------------------------------------------------
 * The frame parser: pure, on a buffer (see websocket.h)
 * ------------------------------------------------------------------------------------- */

static int parse_error(gp_ws_event_t *ev, int close_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int parse_error(gp_ws_event_t *ev, int close_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(ev->why, sizeof ev->why, fmt, ap);
    va_end(ap);
    ev->kind = GP_WS_EV_ERROR;
    ev->close_code = close_code;
    return -1;
}

typedef struct frame {
    bool fin;
    int opcode;
    const unsigned char *payload;
    size_t len;
    size_t total; /* header + payload bytes */
} frame_t;

/*
 * Looks at the front of buf. Returns 1 with *f filled when a whole frame is there, 0 when
 * more bytes are needed (ev->need: how many in total), or -1 (ev set). The header is checked
 * before the payload is waited for, so an oversized frame is refused without buffering it.
 */
static int peek_frame(const gp_ws_parser_t *p, const unsigned char *b, size_t n, frame_t *f,
                      gp_ws_event_t *ev)
{
    ev->need = 2;
    if (n < 2)
        return 0;
    if ((b[0] & 0x70u) != 0)
        return parse_error(ev, CLOSE_PROTOCOL, "server set reserved bits without an extension");
    if ((b[1] & 0x80u) != 0)
        return parse_error(ev, CLOSE_PROTOCOL, "server sent a masked frame");
    f->fin = (b[0] & 0x80u) != 0;
    f->opcode = b[0] & 0x0F;
    bool control = (f->opcode & 0x8) != 0;
    if (f->opcode != OP_CONT && f->opcode != OP_TEXT && f->opcode != OP_BINARY &&
        f->opcode != OP_CLOSE && f->opcode != OP_PING && f->opcode != OP_PONG)
        return parse_error(ev, CLOSE_PROTOCOL, "unknown opcode %d", f->opcode);

    uint64_t len = b[1] & 0x7Fu;
    size_t header = len == 126 ? 4 : len == 127 ? 10 : 2;
    ev->need = header;
    if (n < header)
        return 0;
    if (header == 4) {
        len = ((uint64_t)b[2] << 8) | b[3];
    } else if (header == 10) {
        len = 0;
        for (int i = 2; i < 10; i++)
            len = (len << 8) | b[i];
        if (len >> 63)
            return parse_error(ev, CLOSE_PROTOCOL, "frame length has the top bit set");
    }
    if (control && (!f->fin || len > 125))
        return parse_error(ev, CLOSE_PROTOCOL, "fragmented or oversized control frame");
    if (!control) {
        size_t so_far = f->opcode == OP_CONT ? p->msg_len : 0;
        if (len > p->max_message || so_far > p->max_message - (size_t)len)
            return parse_error(ev, CLOSE_TOO_BIG, "message larger than %zu bytes", p->max_message);
    }
    ev->need = header + (size_t)len;
    if (n < ev->need)
        return 0;
    f->payload = b + header;
    f->len = (size_t)len;
    f->total = ev->need;
    return 1;
}

/* A control frame becomes its event. */
static void on_control(const frame_t *f, gp_ws_event_t *ev)
{
    if (f->opcode == OP_PING || f->opcode == OP_PONG) {
        ev->kind = f->opcode == OP_PING ? GP_WS_EV_PING : GP_WS_EV_PONG;
        ev->payload = f->payload;
        ev->len = f->len;
        return;
    }
    int code = CLOSE_NO_STATUS;
    if (f->len == 1) {
        parse_error(ev, CLOSE_PROTOCOL, "close frame with a one-byte payload");
        return;
    }
    if (f->len >= 2) {
        code = (f->payload[0] << 8) | f->payload[1];
        if (!utf8_valid(f->payload + 2, f->len - 2)) {
            parse_error(ev, CLOSE_BAD_DATA, "close reason is not UTF-8");
            return;
        }
    }
    ev->kind = GP_WS_EV_CLOSE;
    ev->close_code = code;
}

/* Adds a data frame to the message in progress; a final one completes it. */
static void on_data(gp_ws_parser_t *p, const frame_t *f, gp_ws_event_t *ev)
{
    if (f->opcode == OP_CONT) {
        if (p->msg_opcode == 0) {
            parse_error(ev, CLOSE_PROTOCOL, "continuation frame without a message");
            return;
        }
    } else {
        if (p->msg_opcode != 0) {
            parse_error(ev, CLOSE_PROTOCOL, "new message before the previous one ended");
            return;
        }
        p->msg_opcode = f->opcode;
        p->msg_len = 0;
    }
    if (!reserve(&p->msg, &p->msg_cap, p->msg_len + f->len + 1)) {
        parse_error(ev, CLOSE_TOO_BIG, "out of memory for a %zu-byte message", p->msg_len + f->len);
        return;
    }
    memcpy(p->msg + p->msg_len, f->payload, f->len);
    p->msg_len += f->len;
    p->msg[p->msg_len] = '\0';
    ev->kind = GP_WS_EV_FRAGMENT;
    if (!f->fin)
        return;
    if (p->msg_opcode == OP_TEXT && !utf8_valid(p->msg, p->msg_len)) {
        parse_error(ev, CLOSE_BAD_DATA, "text message is not valid UTF-8");
        return;
    }
    ev->kind = GP_WS_EV_MESSAGE;
    ev->opcode = p->msg_opcode == OP_TEXT ? GP_WS_TEXT : GP_WS_BINARY;
    ev->payload = p->msg;
    ev->len = p->msg_len;
    p->msg_opcode = 0;
}

void gp_ws_parser_init(gp_ws_parser_t *p, size_t max_message)
{
    memset(p, 0, sizeof *p);
    p->max_message = max_message > 0 ? max_message : GP_WS_DEFAULT_MAX_MESSAGE;
}

void gp_ws_parser_free(gp_ws_parser_t *p)
{
    free(p->msg);
    memset(p, 0, sizeof *p);
}

void gp_ws_parse(gp_ws_parser_t *p, const unsigned char *buf, size_t len, gp_ws_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = GP_WS_EV_MORE;
    frame_t f = {0};
    if (peek_frame(p, buf, len, &f, ev) != 1)
        return;
    ev->consumed = f.total;
    if (f.opcode & 0x8)
        on_control(&f, ev);
    else
        on_data(p, &f, ev);
    if (ev->kind == GP_WS_EV_ERROR)
        ev->consumed = 0;
}

/* ---------------------------------------------------------------------------------------
 * Public API: receive, send, close
 * ------------------------------------------------------------------------------------- */

/* Acts on a control event: answers a ping, echoes a close. GP_WS_OK to keep reading. */
static int answer_control(gp_ws_t *ws, const gp_ws_event_t *ev)
{
    if (ev->kind == GP_WS_EV_PONG)
        return GP_WS_OK; /* we never ping, so any pong is unsolicited and ignorable */
    if (ev->kind == GP_WS_EV_PING) {
        if (ws->close_sent)
            return GP_WS_OK; /* after our close only a close may follow */
        if (send_frame(ws, OP_PONG, ev->payload, ev->len) != 0) {
            ws->failed = true;
            return GP_WS_ERROR;
        }
        return GP_WS_OK;
    }
    ws->close_code = ev->close_code;
    ws->closed = true;
    /* Echo the code as RFC 6455 §5.5.1 asks; 1005 must not appear on the wire. */
    send_close(ws, ev->close_code == CLOSE_NO_STATUS ? CLOSE_NORMAL : ev->close_code);
    return GP_WS_CLOSED;
}

/* Reads more bytes for a frame of `need` bytes in total. GP_WS_OK, or what to return. */
static int read_more(gp_ws_t *ws, size_t need, int64_t deadline)
{
    /* grow to the frame's size at most, which the parser bounded */
    if (!reserve(&ws->in, &ws->in_cap, need)) {
        ws->failed = true;
        set_error(ws, "out of memory");
        return GP_WS_ERROR;
    }
    int rc = fill(ws, deadline, 0);
    if (rc == GP_WS_CLOSED) {
        ws->closed = true;
        ws->close_code = CLOSE_ABNORMAL;
        set_error(ws, "connection closed without a close frame");
        return GP_WS_CLOSED;
    }
    if (rc == GP_WS_ERROR)
        ws->failed = true;
    return rc;
}

int gp_ws_recv(gp_ws_t *ws, int timeout_ms, int *opcode, const unsigned char **data, size_t *len)
{
    if (ws->failed)
        return GP_WS_ERROR;
    if (ws->closed)
        return GP_WS_CLOSED;
    int64_t deadline = gp_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        gp_ws_event_t ev;
        gp_ws_parse(&ws->parser, ws->in, ws->in_len, &ev);
        int rc = GP_WS_OK;
        switch (ev.kind) {
        case GP_WS_EV_MORE: rc = read_more(ws, ev.need, deadline); break;
        case GP_WS_EV_ERROR: return fail(ws, ev.close_code, "%s", ev.why);
        case GP_WS_EV_FRAGMENT: break;
        case GP_WS_EV_MESSAGE:
            *opcode = ev.opcode;
            *data = ev.payload;
            *len = ev.len;
            break;
        case GP_WS_EV_PING:
        case GP_WS_EV_PONG:
        case GP_WS_EV_CLOSE: rc = answer_control(ws, &ev); break;
        }
        consume(ws, ev.consumed);
        if (rc != GP_WS_OK || ev.kind == GP_WS_EV_MESSAGE)
            return rc;
    }
}

int gp_ws_send_text(gp_ws_t *ws, const char *text, size_t len)
{
    if (ws->failed || ws->closed || ws->close_sent)
        return -1;
    if (send_frame(ws, OP_TEXT, text, len) != 0) {
        ws->failed = true;
        return -1;
    }
    return 0;
}

const char *gp_ws_error(const gp_ws_t *ws)
{
    return ws->error;
}

int gp_ws_close_code(const gp_ws_t *ws)
{
    return ws->close_code;
}

void gp_ws_set_max_message(gp_ws_t *ws, size_t max_message)
{
    if (max_message > 0)
        ws->parser.max_message = max_message;
}

void gp_ws_close(gp_ws_t *ws)
{
    if (ws == NULL)
        return;
    if (ws->curl != NULL && !ws->failed && !ws->closed) {
        send_close(ws, CLOSE_NORMAL);
        /* Wait briefly for the server's close so it sees a clean shutdown, not a reset. */
        int64_t deadline = gp_mono_ms() + WS_CLOSE_WAIT_MS;
        int opcode;
        const unsigned char *data;
        size_t len;
        while (!ws->failed && !ws->closed) {
            int left = remaining_ms(deadline);
            if (left == 0 || gp_ws_recv(ws, left, &opcode, &data, &len) == GP_WS_TIMEOUT)
                break;
        }
    }
    if (ws->curl != NULL)
        curl_easy_cleanup(ws->curl);
    free(ws->in);
    gp_ws_parser_free(&ws->parser);
    free(ws);
}

/* ---------------------------------------------------------------------------------------
 * Connect and handshake
 * ------------------------------------------------------------------------------------- */

typedef struct parsed_url {
    char *http_url; /* what libcurl connects to */
    char *target;   /* request-target: path and query */
    char *host;     /* Host header value */
} parsed_url_t;

static void parsed_url_free(parsed_url_t *u)
{
    free(u->http_url);
    free(u->target);
    free(u->host);
}

static int parse_ws_url(const char *url, parsed_url_t *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    CURLU *u = curl_url();
    if (u == NULL) {
        (void)snprintf(err, err_cap, "out of memory");
        return -1;
    }
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = -1;
    /* ws/wss are "unsupported" to a libcurl built without WebSocket support. */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        (void)snprintf(err, err_cap, "not a valid ws:// or wss:// URL");
        goto out;
    }
    const char *http_scheme = NULL;
    if (strcasecmp(scheme, "ws") == 0)
        http_scheme = "http";
    else if (strcasecmp(scheme, "wss") == 0)
        http_scheme = "https";
    if (http_scheme == NULL) {
        (void)snprintf(err, err_cap, "URL scheme must be ws or wss");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        port = NULL; /* the scheme's default */
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        path = NULL;
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK)
        query = NULL;

    out->host = port != NULL ? gp_xasprintf("%s:%s", host, port) : gp_xstrdup(host);
    out->target = gp_xasprintf("%s%s%s", path != NULL && path[0] != '\0' ? path : "/",
                               query != NULL ? "?" : "", query != NULL ? query : "");
    out->http_url = gp_xasprintf("%s://%s/", http_scheme, out->host);
    if (strpbrk(out->target, "\r\n ") != NULL || strpbrk(out->host, "\r\n ") != NULL) {
        (void)snprintf(err, err_cap, "URL contains characters not allowed in a request");
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    if (rc != 0)
        parsed_url_free(out);
    return rc;
}

/* Value of header `name` in a CRLF-separated block (first occurrence); NULL if absent. */
static bool find_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t name_len = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line != NULL) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (end == NULL || end == line)
            return false;
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (colon != NULL && (size_t)(colon - line) == name_len &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = colon + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t n = (size_t)(ve - v);
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        line = end;
    }
    return false;
}

/* True if the comma-separated list holds token (case-insensitive). */
static bool has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0)
            return true;
    }
    return false;
}

/* The upgrade request; NULL (error set) when a header is not one "Name: value" line. */
static char *upgrade_request(gp_ws_t *ws, const parsed_url_t *u, const char *const *headers,
                             const char *key, size_t *len_out)
{
    size_t extra_len = 0;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        if (strpbrk(headers[i], "\r\n") != NULL || strchr(headers[i], ':') == NULL) {
            set_error(ws, "header %zu is not a single \"Name: value\" line", i);
            return NULL;
        }
        extra_len += strlen(headers[i]) + 2;
    }
    char *base = gp_xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: genpulse\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                              u->target, u->host, key);
    size_t base_len = strlen(base);
    char *request = gp_xmalloc(base_len + extra_len + 3);
    memcpy(request, base, base_len);
    size_t pos = base_len;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        size_t n = strlen(headers[i]);
        memcpy(request + pos, headers[i], n);
        memcpy(request + pos + n, "\r\n", 2);
        pos += n + 2;
    }
    memcpy(request + pos, "\r\n", 3);
    pos += 2;
    free(base);
    *len_out = pos;
    return request;
}

/* Reads the response head into a NUL-terminated string; bytes after it are already frames
 * and stay in ws->in. NULL with the error set on failure. */
static char *read_response_head(gp_ws_t *ws, int64_t deadline)
{
    char *end = NULL;
    while (end == NULL) {
        if (ws->in_len >= WS_MAX_HANDSHAKE) {
            set_error(ws, "handshake response head larger than %d bytes", WS_MAX_HANDSHAKE);
            return NULL;
        }
        int rc = fill(ws, deadline, WS_MAX_HANDSHAKE - ws->in_len);
        if (rc != GP_WS_OK) {
            if (rc == GP_WS_TIMEOUT)
                set_error(ws, "no handshake response in time");
            else if (rc == GP_WS_CLOSED)
                set_error(ws, "server closed the connection during the handshake");
            return NULL;
        }
        /* Frames may follow the head in the same read, so search by length, not as text. */
        end = memmem(ws->in, ws->in_len, "\r\n\r\n", 4);
    }
    size_t head_len = (size_t)(end - (char *)ws->in) + 4;
    if (memchr(ws->in, '\0', head_len) != NULL) {
        set_error(ws, "handshake response head contains a NUL byte");
        return NULL;
    }
    char *head = gp_xmalloc(head_len + 1);
    memcpy(head, ws->in, head_len);
    head[head_len] = '\0';
    consume(ws, head_len);
    return head;
}

/* Checks the server accepted the upgrade for key, with nothing we did not offer. */
static int check_response(gp_ws_t *ws, const char *head, const char *key)
{
    int status = 0;
    char value[256];
    if (sscanf(head, "HTTP/1.%*1[01] %3d", &status) != 1) {
        set_error(ws, "handshake response is not HTTP/1.x");
        return -1;
    }
    if (status != 101) {
        set_error(ws, "server answered the upgrade with HTTP %d", status);
        return -1;
    }
    if (!find_header(head, "Upgrade", value, sizeof value) || strcasecmp(value, "websocket")) {
        set_error(ws, "handshake response lacks \"Upgrade: websocket\"");
        return -1;
    }
    if (!find_header(head, "Connection", value, sizeof value) || !has_token(value, "upgrade")) {
        set_error(ws, "handshake response lacks \"Connection: Upgrade\"");
        return -1;
    }
    if (find_header(head, "Sec-WebSocket-Extensions", value, sizeof value) ||
        find_header(head, "Sec-WebSocket-Protocol", value, sizeof value)) {
        set_error(ws, "server selected an extension or subprotocol that was not offered");
        return -1;
    }
    char concat[64];
    unsigned char digest[SHA_DIGEST_LENGTH];
    int n = snprintf(concat, sizeof concat, "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)concat, (size_t)n, digest);
    char *expected = gp_base64_encode(digest, sizeof digest);
    bool ok = find_header(head, "Sec-WebSocket-Accept", value, sizeof value) &&
              strcmp(value, expected) == 0;
    free(expected);
    if (!ok) {
        set_error(ws, "Sec-WebSocket-Accept does not match the key");
        return -1;
    }
    return 0;
}

static int handshake(gp_ws_t *ws, const parsed_url_t *u, const char *const *headers,
                     int64_t deadline)
{
    unsigned char nonce[16];
    gp_random_bytes(nonce, sizeof nonce);
    char *key = gp_base64_encode(nonce, sizeof nonce);
    size_t len = 0;
    char *request = upgrade_request(ws, u, headers, key, &len);
    int rc = -1;
    if (request != NULL) {
        rc = send_all(ws, (const unsigned char *)request, len, deadline);
        /* The request may carry credentials: do not leave them in freed memory. */
        memset(request, 0, len);
        free(request);
    }
    char *head = rc == 0 ? read_response_head(ws, deadline) : NULL;
    rc = head != NULL ? check_response(ws, head, key) : -1;
    free(head);
    free(key);
    return rc;
}

int gp_ws_connect(const char *url, const char *const *headers, int connect_timeout_ms,
                  gp_ws_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (err_cap > 0)
        err[0] = '\0';
    if (connect_timeout_ms <= 0)
        connect_timeout_ms = 10000;
    parsed_url_t u;
    if (parse_ws_url(url, &u, err, err_cap) != 0)
        return -1;

    gp_ws_t *ws = gp_xcalloc(1, sizeof *ws);
    gp_ws_parser_init(&ws->parser, GP_WS_DEFAULT_MAX_MESSAGE);
    ws->sock = CURL_SOCKET_BAD;
    int64_t deadline = gp_mono_ms() + connect_timeout_ms;

    ws->curl = curl_easy_init();
    if (ws->curl == NULL) {
        set_error(ws, "curl_easy_init failed");
        goto fail;
    }
    CURL *c = ws->curl;
    (void)curl_easy_setopt(c, CURLOPT_URL, u.http_url);
    (void)curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)connect_timeout_ms);
    /* ALPN must not pick h2: the upgrade is an HTTP/1.1 mechanism. */
    (void)curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* Through an HTTP proxy the frames need a CONNECT tunnel, not a forwarded request. */
    (void)curl_easy_setopt(c, CURLOPT_HTTPPROXYTUNNEL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        set_error(ws, "connect failed: %s", curl_easy_strerror(cc));
        goto fail;
    }
    curl_socket_t sock = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK || sock == CURL_SOCKET_BAD) {
        set_error(ws, "no socket after connect");
        goto fail;
    }
    ws->sock = sock;
    if (handshake(ws, &u, headers, deadline) != 0)
        goto fail;
    parsed_url_free(&u);
    *out = ws;
    return 0;

fail:
    (void)snprintf(err, err_cap, "%s", ws->error);
    ws->failed = true; /* no close handshake on a connection that never opened */
    gp_ws_close(ws);
    parsed_url_free(&u);
    return -1;
}
