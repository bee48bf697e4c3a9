/*
 * test_websocket.c — the RFC 6455 client (src/infra/http/websocket.c).
 *
 * Each case starts a one-connection server on 127.0.0.1 in a thread. The server is written
 * here, byte by byte, so a case can send what a well-behaved library never would (masked
 * server frames, bad accept keys, oversized headers, interleaved pings) and check what the
 * client put on the wire (masking, pong payloads, close codes). One case also talks to an
 * independent implementation (python3-websockets) when it is installed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/base64.h"
#include "core/util.h"
#include "infra/http/websocket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * The scripted server
 * ------------------------------------------------------------------------------------- */

typedef enum reply_mode {
    REPLY_GOOD,
    REPLY_BAD_ACCEPT,
    REPLY_FORBIDDEN,
    REPLY_WITH_FRAME, /* the first frame arrives in the same write as the response head */
    REPLY_EXTENSION,
} reply_mode_t;

typedef struct server server_t;
typedef void (*script_fn)(server_t *s, int fd);

struct server {
    int listen_fd;
    int port;
    pthread_t thread;
    reply_mode_t mode;
    script_fn script;
    /* What the script observed, checked by the test after join. */
    char request_head[4096];
    bool frames_masked;
    int close_code_seen;
    char text_seen[256];
    size_t bytes_seen;
};

static bool read_exact(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static size_t frame_header(unsigned char *h, bool fin, int opcode, size_t len, bool masked)
{
    size_t pos = 0;
    h[pos++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    unsigned char m = masked ? 0x80 : 0;
    if (len <= 125) {
        h[pos++] = (unsigned char)(m | len);
    } else if (len <= 0xFFFF) {
        h[pos++] = m | 126;
        h[pos++] = (unsigned char)(len >> 8);
        h[pos++] = (unsigned char)len;
    } else {
        h[pos++] = m | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            h[pos++] = (unsigned char)((uint64_t)len >> shift);
    }
    if (masked) {
        memset(h + pos, 0, 4); /* an all-zero mask leaves the payload as is */
        pos += 4;
    }
    return pos;
}

static void srv_frame(int fd, bool fin, int opcode, const void *payload, size_t len)
{
    unsigned char h[14];
    size_t n = frame_header(h, fin, opcode, len, false);
    write_all(fd, h, n);
    write_all(fd, payload, len);
}

/* Reads one client frame and unmasks it. Returns the opcode or -1. */
static int srv_read_frame(server_t *s, int fd, unsigned char *buf, size_t cap, size_t *len)
{
    unsigned char h[2];
    if (!read_exact(fd, h, 2))
        return -1;
    uint64_t n = h[1] & 0x7F;
    if (n == 126) {
        unsigned char e[2];
        if (!read_exact(fd, e, 2))
            return -1;
        n = ((uint64_t)e[0] << 8) | e[1];
    } else if (n == 127) {
        unsigned char e[8];
        if (!read_exact(fd, e, 8))
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | e[i];
    }
    s->frames_masked = (h[1] & 0x80) != 0;
    unsigned char mask[4] = {0};
    if (s->frames_masked && !read_exact(fd, mask, 4))
        return -1;
    if (n > cap)
        return -1;
    if (!read_exact(fd, buf, (size_t)n))
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[i] ^= mask[i & 3];
    *len = (size_t)n;
    return h[0] & 0x0F;
}

/* Reads frames until a close arrives; records its code. */
static void srv_expect_close(server_t *s, int fd)
{
    unsigned char buf[256];
    size_t len;
    int op;
    while ((op = srv_read_frame(s, fd, buf, sizeof buf, &len)) >= 0) {
        if (op == 0x8) {
            s->close_code_seen = len >= 2 ? (buf[0] << 8) | buf[1] : 1005;
            return;
        }
    }
}

static void *server_main(void *arg)
{
    server_t *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t got = 0;
    while (got + 1 < sizeof s->request_head && strstr(s->request_head, "\r\n\r\n") == NULL) {
        ssize_t r = recv(fd, s->request_head + got, 1, 0); /* 1 byte: leave frames unread */
        if (r <= 0)
            break;
        got += (size_t)r;
        s->request_head[got] = '\0';
    }
    char key[64] = "";
    const char *k = strstr(s->request_head, "Sec-WebSocket-Key: ");
    if (k != NULL)
        (void)sscanf(k + 19, "%63[^\r]", key);
    char concat[128];
    (void)snprintf(concat, sizeof concat, "%s%s", key,
                   s->mode == REPLY_BAD_ACCEPT ? "wrong" : "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)concat, strlen(concat), digest);
    char *accept_key = gp_base64_encode(digest, sizeof digest);
    char resp[1024];
    int n;
    if (s->mode == REPLY_FORBIDDEN) {
        n = snprintf(resp, sizeof resp, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    } else {
        n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                     "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     accept_key,
                     s->mode == REPLY_EXTENSION ? "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                                : "");
    }
    free(accept_key);
    if (s->mode == REPLY_WITH_FRAME) {
        unsigned char h[14];
        size_t hl = frame_header(h, true, 0x1, 5, false);
        memcpy(resp + n, h, hl);
        memcpy(resp + n + (int)hl, "early", 5);
        n += (int)hl + 5;
    }
    write_all(fd, resp, (size_t)n);
    if (s->script != NULL && s->mode != REPLY_FORBIDDEN && s->mode != REPLY_BAD_ACCEPT &&
        s->mode != REPLY_EXTENSION)
        s->script(s, fd);
    close(fd);
    return NULL;
}

static server_t *server_start(reply_mode_t mode, script_fn script)
{
    server_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->mode = mode;
    s->script = script;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(s->listen_fd, 1), 0);
    socklen_t alen = sizeof addr;
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen), 0);
    s->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

static void server_join(server_t *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static gp_ws_t *connect_to(server_t *s, const char *path, const char *const *headers)
{
    char url[128], err[256];
    (void)snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", s->port, path);
    gp_ws_t *ws = NULL;
    int rc = gp_ws_connect(url, headers, 2000, &ws, err, sizeof err);
    if (rc != 0)
        print_message("connect: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(ws);
    return ws;
}

/* ---------------------------------------------------------------------------------------
 * Cases
 * ------------------------------------------------------------------------------------- */

static void script_echo(server_t *s, int fd)
{
    unsigned char buf[256];
    size_t len;
    int op = srv_read_frame(s, fd, buf, sizeof buf - 1, &len);
    if (op == 0x1) {
        buf[len] = '\0';
        (void)snprintf(s->text_seen, sizeof s->text_seen, "%s", (char *)buf);
        srv_frame(fd, true, 0x1, buf, len);
    }
    srv_expect_close(s, fd);
    unsigned char code[2] = {0x03, 0xE8};
    srv_frame(fd, true, 0x8, code, 2);
}

static void test_echo_and_request_shape(void **state)
{
    (void)state;
    server_t *s = server_start(REPLY_GOOD, script_echo);
    const char *headers[] = {"Authorization: Bearer sekret", NULL};
    gp_ws_t *ws = connect_to(s, "/ws?clientId=abc", headers);
    assert_int_equal(gp_ws_send_text(ws, "{\"hello\":1}", 11), 0);
    int op = 0;
    const unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(gp_ws_recv(ws, 2000, &op, &data, &len), GP_WS_OK);
    assert_int_equal(op, GP_WS_TEXT);
    assert_int_equal(len, 11);
    assert_string_equal((const char *)data, "{\"hello\":1}");
    gp_ws_close(ws);
    server_join(s);
    assert_true(s->frames_masked);
    assert_string_equal(s->text_seen, "{\"hello\":1}");
    assert_int_equal(s->close_code_seen, 1000);
    assert_non_null(strstr(s->request_head, "GET /ws?clientId=abc HTTP/1.1\r\n"));
    assert_non_null(strstr(s->request_head, "Upgrade: websocket\r\n"));
    assert_non_null(strstr(s->request_head, "Sec-WebSocket-Version: 13\r\n"));
    assert_non_null(strstr(s->request_head, "Authorization: Bearer sekret\r\n"));
    char host[64];
    (void)snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", s->port);
    assert_non_null(strstr(s->request_head, host));
    free(s);
}

static void script_fragments_and_ping(server_t *s, int fd)
{
    srv_frame(fd, false, 0x1, "hel", 3);
    srv_frame(fd, true, 0x9, "pp", 2); /* a ping between fragments */
    srv_frame(fd, false, 0x0, "lo ", 3);
    srv_frame(fd, true, 0x0, "w\xc3\xb6rld", 6);
    unsigned char buf[256];
    size_t len;
    int op = srv_read_frame(s, fd, buf, sizeof buf - 1, &len);
    if (op == 0xA) {
        buf[len] = '\0';
        (void)snprintf(s->text_seen, sizeof s->text_seen, "pong:%.200s", (char *)buf);
    }
    /* 16-bit and 64-bit lengths. */
    unsigned char *big = malloc(70000);
    for (size_t i = 0; i < 70000; i++)
        big[i] = (unsigned char)(i * 7);
    srv_frame(fd, true, 0x2, big, 300);
    srv_frame(fd, true, 0x2, big, 70000);
    free(big);
    unsigned char code[2] = {0x03, 0xE9}; /* 1001 going away */
    srv_frame(fd, true, 0x8, code, 2);
    srv_expect_close(s, fd);
}

static void test_fragments_ping_and_lengths(void **state)
{
    (void)state;
    server_t *s = server_start(REPLY_GOOD, script_fragments_and_ping);
    gp_ws_t *ws = connect_to(s, "/", NULL);
    int op = 0;
    const unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(gp_ws_recv(ws, 2000, &op, &data, &len), GP_WS_OK);
    assert_int_equal(op, GP_WS_TEXT);
    assert_string_equal((const char *)data, "hello w\xc3\xb6rld");
    assert_int_equal(gp_ws_recv(ws, 2000, &op, &data, &len), GP_WS_OK);
    assert_int_equal(op, GP_WS_BINARY);
    assert_int_equal(len, 300);
    assert_int_equal(data[299], (unsigned char)(299 * 7));
    assert_int_equal(gp_ws_recv(ws, 2000, &op, &data, &len), GP_WS_OK);
    assert_int_equal(len, 70000);
    assert_int_equal(data[69999], (unsigned char)(69999 * 7));
    assert_int_equal(gp_ws_recv(ws, 2000, &op, &data, &len), GP_WS_CLOSED);
    assert_int_equal(gp_ws_close_code(ws), 1001);
    assert_int_equal(gp_ws_recv(ws, 10, &op, &data, &len), GP_WS_CLOSED);
    gp_ws_close(ws);
    server_join(s);
    assert_string_equal(s->text_seen, "pong:pp");
    assert_int_equal(s->close_code_seen, 1001); /* the close is echoed */
    free(s);
}

static void test_frame_in_handshake_packet(void **state)
{
    (void)state;
    server_t *s = server_start(REPLY_WITH_FRAME, srv_expect_close);
    gp_ws_t *ws = connect_to(s, "/", NULL);
    int op = 0;
    const unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(gp_ws_recv(ws, 0, &op, &data, &len), GP_WS_OK);
    assert_string_equal((const char *)data, "early");
    gp_ws_close(ws);
    server_join(s);
    free(s);
}

static void test_handshake_refusals(void **state)
{
    (void)state;
    const struct {
        reply_mode_t mode;
        const char *expect;
    } cases[] = {
        {REPLY_BAD_ACCEPT, "Sec-WebSocket-Accept"},
        {REPLY_FORBIDDEN, "HTTP 403"},
        {REPLY_EXTENSION, "extension"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        server_t *s = server_start(cases[i].mode, NULL);
        char url[64], err[256];
        (void)snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", s->port);
        gp_ws_t *ws = (gp_ws_t *)1;
        assert_int_equal(gp_ws_connect(url, NULL, 2000, &ws, err, sizeof err), -1);
        assert_null(ws);
        if (strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].expect);
        server_join(s);
        free(s);
    }
    char err[256];
    gp_ws_t *ws = NULL;
    assert_int_equal(gp_ws_connect("http://127.0.0.1:1/", NULL, 500, &ws, err, sizeof err), -1);
    assert_non_null(strstr(err, "ws or wss"));
    const char *bad_header[] = {"X-A: b\r\nX-Injected: 1", NULL};
    server_t *s = server_start(REPLY_GOOD, NULL);
    char url[64];
    (void)snprintf(url, sizeof url, "ws://127.0.0.1:%d/", s->port);
    assert_int_equal(gp_ws_connect(url, bad_header, 2000, &ws, err, sizeof err), -1);
    server_join(s);
    free(s);
    /* Nothing listens on the port the server used any more. */
    assert_int_equal(gp_ws_connect(url, NULL, 1000, &ws, err, sizeof err), -1);
    assert_non_null(strstr(err, "connect failed"));
}

static void script_masked(server_t *s, int fd)
{
    unsigned char h[14];
    size_t n = frame_header(h, true, 0x1, 2, true);
    write_all(fd, h, n);
    write_all(fd, "hi", 2);
    srv_expect_close(s, fd);
}

static void script_oversize(server_t *s, int fd)
{
    unsigned char h[14];
    size_t n = frame_header(h, true, 0x2, 5000, false);
    write_all(fd, h, n); /* the payload never comes: the header alone must be refused */
    srv_expect_close(s, fd);
}

static void script_oversize_fragments(server_t *s, int fd)
{
    unsigned char chunk[600] = {0};
    srv_frame(fd, false, 0x2, chunk, sizeof chunk);
    srv_frame(fd, true, 0x0, chunk, sizeof chunk);
    srv_expect_close(s, fd);
}

static void script_bad_utf8(server_t *s, int fd)
{
    srv_frame(fd, true, 0x1, "\xc0\xaf", 2); /* overlong '/' */
    srv_expect_close(s, fd);
}

static void script_orphan_continuation(server_t *s, int fd)
{
    srv_frame(fd, true, 0x0, "x", 1);
    srv_expect_close(s, fd);
}

static void script_eof(server_t *s, int fd)
{
    (void)s;
    (void)fd; /* the thread closes the socket right away */
}

static void expect_protocol_error(script_fn script, size_t max_message, int close_code,
                                  const char *reason)
{
    server_t *s = server_start(REPLY_GOOD, script);
    gp_ws_t *ws = connect_to(s, "/", NULL);
    if (max_message > 0)
        gp_ws_set_max_message(ws, max_message);
    int op = 0;
    const unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(gp_ws_recv(ws, 2000, &op, &data, &len), GP_WS_ERROR);
    if (strstr(gp_ws_error(ws), reason) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", gp_ws_error(ws), reason);
    assert_int_equal(gp_ws_recv(ws, 0, &op, &data, &len), GP_WS_ERROR);
    gp_ws_close(ws);
    server_join(s);
    assert_int_equal(s->close_code_seen, close_code);
    free(s);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    expect_protocol_error(script_masked, 0, 1002, "masked");
    expect_protocol_error(script_oversize, 1000, 1009, "larger than 1000");
    expect_protocol_error(script_oversize_fragments, 1000, 1009, "larger than 1000");
    expect_protocol_error(script_bad_utf8, 0, 1007, "UTF-8");
    expect_protocol_error(script_orphan_continuation, 0, 1002, "continuation");
}

static void test_timeout_and_eof(void **state)
{
    (void)state;
    server_t *s = server_start(REPLY_GOOD, srv_expect_close);
    gp_ws_t *ws = connect_to(s, "/", NULL);
    int op = 0;
    const unsigned char *data = NULL;
    size_t len = 0;
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_ws_recv(ws, 150, &op, &data, &len), GP_WS_TIMEOUT);
    int64_t took = gp_mono_ms() - t0;
    assert_true(took >= 140 && took < 1500);
    assert_int_equal(gp_ws_recv(ws, 0, &op, &data, &len), GP_WS_TIMEOUT);
    gp_ws_close(ws);
    server_join(s);
    assert_int_equal(s->close_code_seen, 1000);
    free(s);

    s = server_start(REPLY_GOOD, script_eof);
    ws = connect_to(s, "/", NULL);
    assert_int_equal(gp_ws_recv(ws, 2000, &op, &data, &len), GP_WS_CLOSED);
    assert_int_equal(gp_ws_close_code(ws), 1006);
    gp_ws_close(ws);
    server_join(s);
    free(s);
}

/* Interop with python3-websockets (an independent implementation) when it is installed. */
static const char *const PY_ECHO =
    "import asyncio, sys\n"
    "import websockets\n"
    "async def echo(ws, path):\n"
    "    async for m in ws:\n"
    "        await ws.send(m)\n"
    "        await ws.send([m[:3], m[3:]] if isinstance(m, str) else m)\n"
    "async def main():\n"
    "    async with websockets.serve(echo, '127.0.0.1', 0, max_size=2**20) as srv:\n"
    "        print(srv.sockets[0].getsockname()[1], flush=True)\n"
    "        await asyncio.Future()\n"
    "asyncio.run(main())\n";

static void test_interop_python_websockets(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import websockets' 2>/dev/null") != 0) {
        skip();
        return;
    }
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl("/usr/bin/python3", "python3", "-c", PY_ECHO, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    int port = 0;
    assert_int_equal(fscanf(f, "%d", &port), 1);
    char url[64], err[256];
    (void)snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    gp_ws_t *ws = NULL;
    int rc = gp_ws_connect(url, NULL, 3000, &ws, err, sizeof err);
    if (rc != 0)
        print_message("connect: %s\n", err);
    assert_int_equal(rc, 0);
    char *big = malloc(100001);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    const char *msgs[] = {"ping", "{\"type\":\"status\"}", big};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(gp_ws_send_text(ws, msgs[i], strlen(msgs[i])), 0);
        for (int copy = 0; copy < 2; copy++) { /* once whole, once fragmented */
            int op = 0;
            const unsigned char *data = NULL;
            size_t len = 0;
            assert_int_equal(gp_ws_recv(ws, 5000, &op, &data, &len), GP_WS_OK);
            assert_int_equal(op, GP_WS_TEXT);
            assert_int_equal(len, strlen(msgs[i]));
            assert_memory_equal(data, msgs[i], len);
        }
    }
    free(big);
    gp_ws_close(ws);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    fclose(f);
}

/* ---------------------------------------------------------------------------------------
 * The frame parser alone, on buffers
 * ------------------------------------------------------------------------------------- */

static void parse_all(gp_ws_parser_t *p, const unsigned char *buf, size_t len, gp_ws_event_t *evs,
                      size_t *n, size_t max)
{
    size_t off = 0;
    *n = 0;
    while (*n < max) {
        gp_ws_parse(p, buf + off, len - off, &evs[*n]);
        gp_ws_event_t *ev = &evs[(*n)++];
        if (ev->kind == GP_WS_EV_MORE || ev->kind == GP_WS_EV_ERROR)
            return;
        off += ev->consumed;
    }
}

static void test_parser(void **state)
{
    (void)state;
    gp_ws_parser_t p;
    gp_ws_parser_init(&p, 0);
    gp_ws_event_t ev[8];
    size_t n;
    /* "Hel" + ping "x" + "lo" (final), then a 16-bit-length binary, then close 1001 "bye" */
    unsigned char big[4 + 200];
    big[0] = 0x82, big[1] = 126, big[2] = 0, big[3] = 200;
    memset(big + 4, 0xAB, 200);
    unsigned char stream[64 + sizeof big];
    size_t len = 0;
    const unsigned char head[] = {0x01, 3, 'H', 'e', 'l', 0x89, 1, 'x', 0x80, 2, 'l', 'o'};
    memcpy(stream, head, sizeof head);
    len += sizeof head;
    memcpy(stream + len, big, sizeof big);
    len += sizeof big;
    const unsigned char tail[] = {0x88, 5, 0x03, 0xE9, 'b', 'y', 'e'};
    memcpy(stream + len, tail, sizeof tail);
    len += sizeof tail;
    parse_all(&p, stream, len, ev, &n, 8);
    assert_int_equal(n, 6);
    assert_int_equal(ev[0].kind, GP_WS_EV_FRAGMENT);
    assert_int_equal(ev[1].kind, GP_WS_EV_PING);
    assert_int_equal(ev[1].len, 1);
    assert_int_equal(ev[2].kind, GP_WS_EV_MESSAGE);
    assert_int_equal(ev[2].opcode, GP_WS_TEXT);
    assert_int_equal(ev[2].len, 5);
    assert_int_equal(ev[3].kind, GP_WS_EV_MESSAGE);
    assert_int_equal(ev[3].opcode, GP_WS_BINARY);
    assert_int_equal(ev[3].len, 200);
    assert_int_equal(ev[4].kind, GP_WS_EV_CLOSE);
    assert_int_equal(ev[4].close_code, 1001);
    assert_int_equal(ev[5].kind, GP_WS_EV_MORE);
    assert_int_equal(ev[5].need, 2);

    /* a header that announces more than the limit is refused before the payload arrives */
    gp_ws_parser_t small;
    gp_ws_parser_init(&small, 100);
    const unsigned char huge[] = {0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0};
    gp_ws_parse(&small, huge, sizeof huge, &ev[0]);
    assert_int_equal(ev[0].kind, GP_WS_EV_ERROR);
    assert_int_equal(ev[0].close_code, 1009);
    gp_ws_parser_free(&small);

    static const struct {
        unsigned char b[4];
        size_t n;
        int code;
        const char *why;
    } bad[] = {
        {{0x81, 0x80}, 2, 1002, "masked"},
        {{0xC1, 0}, 2, 1002, "reserved"},
        {{0x83, 0}, 2, 1002, "opcode"},
        {{0x09, 0}, 2, 1002, "control"},
        {{0x80, 0}, 2, 1002, "continuation"},
        {{0x88, 1, 3}, 3, 1002, "one-byte"},
        {{0x81, 2, 0xC0, 0x80}, 4, 1007, "UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gp_ws_parser_t q;
        gp_ws_parser_init(&q, 0);
        gp_ws_parse(&q, bad[i].b, bad[i].n, &ev[0]);
        assert_int_equal(ev[0].kind, GP_WS_EV_ERROR);
        assert_int_equal(ev[0].close_code, bad[i].code);
        assert_non_null(strstr(ev[0].why, bad[i].why));
        gp_ws_parser_free(&q);
    }
    gp_ws_parser_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser),
        cmocka_unit_test(test_echo_and_request_shape),
        cmocka_unit_test(test_fragments_ping_and_lengths),
        cmocka_unit_test(test_frame_in_handshake_packet),
        cmocka_unit_test(test_handshake_refusals),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_timeout_and_eof),
        cmocka_unit_test(test_interop_python_websockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
