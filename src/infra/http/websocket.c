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

    /* The message being reassembled, then handed out by gp_ws_recv(). */
    unsigned char *msg;
    size_t msg_len, msg_cap;
    int msg_opcode; /* 0: no fragmented message in progress */

    size_t max_message;
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

typedef struct frame {
    bool fin;
    int opcode;
    const unsigned char *payload;
    size_t len;
    size_t total; /* header + payload bytes in ws->in */
} frame_t;

/*
 * Looks at the front of ws->in. Returns 1 with *f filled when a whole frame is there, 0 when
 * more bytes are needed (*need: how many in total), or GP_WS_ERROR. The header is checked
 * before the payload is waited for, so an oversized frame is refused without buffering it.
 */
static int peek_frame(gp_ws_t *ws, frame_t *f, size_t *need)
{
    const unsigned char *p = ws->in;
    *need = 2;
    if (ws->in_len < 2)
        return 0;
    if ((p[0] & 0x70u) != 0)
        return fail(ws, CLOSE_PROTOCOL, "server set reserved bits without an extension");
    if ((p[1] & 0x80u) != 0)
        return fail(ws, CLOSE_PROTOCOL, "server sent a masked frame");
    f->fin = (p[0] & 0x80u) != 0;
    f->opcode = p[0] & 0x0F;
    bool control = (f->opcode & 0x8) != 0;
    if (f->opcode != OP_CONT && f->opcode != OP_TEXT && f->opcode != OP_BINARY &&
        f->opcode != OP_CLOSE && f->opcode != OP_PING && f->opcode != OP_PONG)
        return fail(ws, CLOSE_PROTOCOL, "unknown opcode %d", f->opcode);

    size_t header = 2;
    uint64_t len = p[1] & 0x7Fu;
    if (len == 126) {
        header = 4;
    } else if (len == 127) {
        header = 10;
    }
    *need = header;
    if (ws->in_len < header)
        return 0;
    if (header == 4) {
        len = ((uint64_t)p[2] << 8) | p[3];
    } else if (header == 10) {
        len = 0;
        for (int i = 2; i < 10; i++)
            len = (len << 8) | p[i];
        if (len >> 63)
            return fail(ws, CLOSE_PROTOCOL, "frame length has the top bit set");
    }
    if (control && (!f->fin || len > 125))
        return fail(ws, CLOSE_PROTOCOL, "fragmented or oversized control frame");
    if (!control) {
        size_t so_far = f->opcode == OP_CONT ? ws->msg_len : 0;
        if (len > ws->max_message || so_far > ws->max_message - (size_t)len)
            return fail(ws, CLOSE_TOO_BIG, "message larger than %zu bytes", ws->max_message);
    }
    *need = header + (size_t)len;
    if (ws->in_len < *need)
        return 0;
    f->payload = p + header;
    f->len = (size_t)len;
    f->total = *need;
    return 1;
}

/* Handles a control frame. Returns GP_WS_OK to keep reading, GP_WS_CLOSED or GP_WS_ERROR. */
static int on_control(gp_ws_t *ws, const frame_t *f)
{
    if (f->opcode == OP_PING) {
        unsigned char copy[125];
        memcpy(copy, f->payload, f->len);
        if (ws->close_sent)
            return GP_WS_OK; /* after our close only a close may follow */
        if (send_frame(ws, OP_PONG, copy, f->len) != 0) {
            ws->failed = true;
            return GP_WS_ERROR;
        }
        return GP_WS_OK;
    }
    if (f->opcode == OP_PONG)
        return GP_WS_OK; /* we never ping, so any pong is unsolicited and ignorable */

    /* Close. */
    int code = CLOSE_NO_STATUS;
    if (f->len == 1)
        return fail(ws, CLOSE_PROTOCOL, "close frame with a one-byte payload");
    if (f->len >= 2) {
        code = (f->payload[0] << 8) | f->payload[1];
        if (!utf8_valid(f->payload + 2, f->len - 2))
            return fail(ws, CLOSE_BAD_DATA, "close reason is not UTF-8");
    }
    ws->close_code = code;
    ws->closed = true;
    /* Echo the code as RFC 6455 §5.5.1 asks; 1005 must not appear on the wire. */
    send_close(ws, code == CLOSE_NO_STATUS ? CLOSE_NORMAL : code);
    return GP_WS_CLOSED;
}

/* Adds a data frame to the message. Returns 1 when a whole message is ready, 0, or error. */
static int on_data(gp_ws_t *ws, const frame_t *f)
{
    if (f->opcode == OP_CONT) {
        if (ws->msg_opcode == 0)
            return fail(ws, CLOSE_PROTOCOL, "continuation frame without a message");
    } else {
        if (ws->msg_opcode != 0)
            return fail(ws, CLOSE_PROTOCOL, "new message before the previous one ended");
        ws->msg_opcode = f->opcode;
        ws->msg_len = 0;
    }
    if (!reserve(&ws->msg, &ws->msg_cap, ws->msg_len + f->len + 1))
        return fail(ws, CLOSE_TOO_BIG, "out of memory for a %zu-byte message",
                    ws->msg_len + f->len);
    memcpy(ws->msg + ws->msg_len, f->payload, f->len);
    ws->msg_len += f->len;
    ws->msg[ws->msg_len] = '\0';
    if (!f->fin)
        return 0;
    if (ws->msg_opcode == OP_TEXT && !utf8_valid(ws->msg, ws->msg_len))
        return fail(ws, CLOSE_BAD_DATA, "text message is not valid UTF-8");
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Public API: receive, send, close
 * ------------------------------------------------------------------------------------- */

int gp_ws_recv(gp_ws_t *ws, int timeout_ms, int *opcode, const unsigned char **data, size_t *len)
{
    if (ws->failed)
        return GP_WS_ERROR;
    if (ws->closed)
        return GP_WS_CLOSED;
    int64_t deadline = gp_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        frame_t f = {0};
        size_t need = 0;
        int rc = peek_frame(ws, &f, &need);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if (f.opcode & 0x8) {
                rc = on_control(ws, &f);
                consume(ws, f.total);
                if (rc != GP_WS_OK)
                    return rc;
                continue;
            }
            rc = on_data(ws, &f);
            consume(ws, f.total);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                *opcode = ws->msg_opcode == OP_TEXT ? GP_WS_TEXT : GP_WS_BINARY;
                ws->msg_opcode = 0;
                *data = ws->msg;
                *len = ws->msg_len;
                return GP_WS_OK;
            }
            continue;
        }
        /* Need more bytes: grow to the frame's size at most, which peek_frame bounded. */
        if (!reserve(&ws->in, &ws->in_cap, need)) {
            ws->failed = true;
            set_error(ws, "out of memory");
            return GP_WS_ERROR;
        }
        rc = fill(ws, deadline, 0);
        if (rc == GP_WS_CLOSED) {
            ws->closed = true;
            ws->close_code = CLOSE_ABNORMAL;
            set_error(ws, "connection closed without a close frame");
            return GP_WS_CLOSED;
        }
        if (rc == GP_WS_ERROR)
            ws->failed = true;
        if (rc != GP_WS_OK)
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
        ws->max_message = max_message;
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
    free(ws->msg);
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

static int handshake(gp_ws_t *ws, const parsed_url_t *u, const char *const *headers,
                     int64_t deadline)
{
    unsigned char nonce[16];
    gp_random_bytes(nonce, sizeof nonce);
    char *key = gp_base64_encode(nonce, sizeof nonce);

    size_t extra_len = 0;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        if (strpbrk(headers[i], "\r\n") != NULL || strchr(headers[i], ':') == NULL) {
            free(key);
            set_error(ws, "header %zu is not a single \"Name: value\" line", i);
            return -1;
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
    int rc = send_all(ws, (const unsigned char *)request, pos, deadline);
    /* The request may carry credentials: do not leave them in freed memory. */
    memset(request, 0, pos);
    free(request);
    if (rc != 0) {
        free(key);
        return -1;
    }

    /* Read the response head; bytes after it are already frames and stay in ws->in. */
    char *end = NULL;
    while (end == NULL) {
        if (ws->in_len >= WS_MAX_HANDSHAKE) {
            free(key);
            set_error(ws, "handshake response head larger than %d bytes", WS_MAX_HANDSHAKE);
            return -1;
        }
        rc = fill(ws, deadline, WS_MAX_HANDSHAKE - ws->in_len);
        if (rc != GP_WS_OK) {
            free(key);
            if (rc == GP_WS_TIMEOUT)
                set_error(ws, "no handshake response in time");
            else if (rc == GP_WS_CLOSED)
                set_error(ws, "server closed the connection during the handshake");
            return -1;
        }
        /* Frames may follow the head in the same read, so search by length, not as text. */
        end = memmem(ws->in, ws->in_len, "\r\n\r\n", 4);
    }
    size_t head_len = (size_t)(end - (char *)ws->in) + 4;
    if (memchr(ws->in, '\0', head_len) != NULL) {
        free(key);
        set_error(ws, "handshake response head contains a NUL byte");
        return -1;
    }
    char *head = gp_xmalloc(head_len + 1);
    memcpy(head, ws->in, head_len);
    head[head_len] = '\0';
    consume(ws, head_len);

    rc = -1;
    int status = 0;
    char value[256];
    if (sscanf(head, "HTTP/1.%*1[01] %3d", &status) != 1) {
        set_error(ws, "handshake response is not HTTP/1.x");
        goto out;
    }
    if (status != 101) {
        set_error(ws, "server answered the upgrade with HTTP %d", status);
        goto out;
    }
    if (!find_header(head, "Upgrade", value, sizeof value) || strcasecmp(value, "websocket")) {
        set_error(ws, "handshake response lacks \"Upgrade: websocket\"");
        goto out;
    }
    if (!find_header(head, "Connection", value, sizeof value) || !has_token(value, "upgrade")) {
        set_error(ws, "handshake response lacks \"Connection: Upgrade\"");
        goto out;
    }
    if (find_header(head, "Sec-WebSocket-Extensions", value, sizeof value) ||
        find_header(head, "Sec-WebSocket-Protocol", value, sizeof value)) {
        set_error(ws, "server selected an extension or subprotocol that was not offered");
        goto out;
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
        goto out;
    }
    rc = 0;
out:
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
    ws->max_message = GP_WS_DEFAULT_MAX_MESSAGE;
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
