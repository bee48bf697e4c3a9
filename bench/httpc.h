/*
 * httpc.h — a deliberately small blocking HTTP/1.1 keep-alive client for the benchmark
 * tools (bench/e2e.c). Plain sockets, no TLS, one request in flight per connection.
 * Understands Content-Length and chunked bodies and reconnects when the server closes.
 * Header-only so that each tool still builds with one `cc` line.
 */
#ifndef GENPULSE_BENCH_HTTPC_H
#define GENPULSE_BENCH_HTTPC_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct hc_conn {
    const char *host;
    int port;
    int fd;
    char *buf; /* bytes received and not yet consumed */
    size_t len, cap;
    char *body; /* body of the last response, NUL-terminated */
    size_t body_len, body_cap;
    int status;          /* status of the last response */
    unsigned connects;   /* TCP connections opened (1 = kept alive throughout) */
    unsigned reconnects; /* exchanges that failed and were retried on a new connection */
} hc_conn_t;

static double hc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *hc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return q;
}

static int hc_connect(hc_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    if (getaddrinfo(c->host, port, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            struct timeval tv = {.tv_sec = 30};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            c->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return c->fd >= 0 ? 0 : -1;
}

static void hc_init(hc_conn_t *c, const char *host, int port)
{
    memset(c, 0, sizeof *c);
    c->host = host;
    c->port = port;
    c->fd = -1;
}

static void hc_close(hc_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    free(c->body);
    c->buf = c->body = NULL;
    c->len = c->cap = c->body_len = c->body_cap = 0;
}

/* Read more bytes into c->buf. Returns bytes read, 0 on EOF, -1 on error/timeout. */
static ssize_t hc_fill(hc_conn_t *c)
{
    if (c->cap - c->len < 16384) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->buf = hc_xrealloc(c->buf, c->cap);
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0) {
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
        }
        return n;
    }
}

static void hc_consume(hc_conn_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static void hc_body_append(hc_conn_t *c, const char *p, size_t n)
{
    if (c->body_len + n + 1 > c->body_cap) {
        while (c->body_len + n + 1 > c->body_cap)
            c->body_cap = c->body_cap ? c->body_cap * 2 : 65536;
        c->body = hc_xrealloc(c->body, c->body_cap);
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
}

/* Find "\r\n" in buf starting at off; returns index of '\r' or -1. */
static long hc_find_crlf(const hc_conn_t *c, size_t off)
{
    for (size_t i = off; i + 1 < c->len; i++)
        if (c->buf[i] == '\r' && c->buf[i + 1] == '\n')
            return (long)i;
    return -1;
}

/* Read one response. Returns 0 and fills status/body, -1 on I/O or protocol error. */
static int hc_read_response(hc_conn_t *c, bool *server_closes)
{
    char *hdr_end = NULL;
    c->body_len = 0;
    if (c->body == NULL)
        hc_body_append(c, "", 0);
    c->body[0] = '\0';
    while ((hdr_end = c->len ? strstr(c->buf, "\r\n\r\n") : NULL) == NULL) {
        if (hc_fill(c) <= 0)
            return -1;
    }
    size_t hdr_len = (size_t)(hdr_end - c->buf) + 4;
    if (sscanf(c->buf, "HTTP/%*d.%*d %d", &c->status) != 1)
        return -1;
    long content_length = -1;
    bool chunked = false;
    *server_closes = strncmp(c->buf, "HTTP/1.0", 8) == 0;
    for (char *line = strstr(c->buf, "\r\n") + 2; line < hdr_end;) {
        char *eol = strstr(line, "\r\n");
        if (strncasecmp(line, "content-length:", 15) == 0)
            content_length = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            for (char *p = line + 18; p + 7 <= eol; p++)
                if (strncasecmp(p, "chunked", 7) == 0)
                    chunked = true;
        } else if (strncasecmp(line, "connection:", 11) == 0) {
            for (char *p = line + 11; p + 5 <= eol; p++)
                if (strncasecmp(p, "close", 5) == 0)
                    *server_closes = true;
        }
        line = eol + 2;
    }
    hc_consume(c, hdr_len);
    if (chunked) {
        for (;;) {
            long crlf;
            while ((crlf = hc_find_crlf(c, 0)) < 0)
                if (hc_fill(c) <= 0)
                    return -1;
            long size = strtol(c->buf, NULL, 16);
            hc_consume(c, (size_t)crlf + 2);
            if (size == 0) {
                /* trailers, then an empty line */
                for (;;) {
                    while ((crlf = hc_find_crlf(c, 0)) < 0)
                        if (hc_fill(c) <= 0)
                            return -1;
                    hc_consume(c, (size_t)crlf + 2);
                    if (crlf == 0)
                        return 0;
                }
            }
            while (c->len < (size_t)size + 2)
                if (hc_fill(c) <= 0)
                    return -1;
            hc_body_append(c, c->buf, (size_t)size);
            hc_consume(c, (size_t)size + 2);
        }
    }
    if (content_length < 0) {
        if (c->status == 204 || c->status == 304 || c->status / 100 == 1)
            return 0;
        /* Read until close. */
        *server_closes = true;
        for (;;) {
            hc_body_append(c, c->buf, c->len);
            c->len = 0;
            ssize_t n = hc_fill(c);
            if (n == 0)
                return 0;
            if (n < 0)
                return -1;
        }
    }
    while (c->len < (size_t)content_length)
        if (hc_fill(c) <= 0)
            return -1;
    hc_body_append(c, c->buf, (size_t)content_length);
    hc_consume(c, (size_t)content_length);
    return 0;
}

static int hc_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * One request/response exchange. Retries once on a fresh connection when the kept-alive
 * connection turns out to be closed before any response byte arrived. Returns the HTTP status,
 * or -1 when no response could be read.
 */
static int hc_request(hc_conn_t *c, const char *method, const char *path, const char *body)
{
    char head[2048];
    size_t body_len = body ? strlen(body) : 0;
    int hn;
    if (body)
        hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, c->host, c->port, body_len);
    else
        hn = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", method, path,
                      c->host, c->port);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0) {
            if (hc_connect(c) != 0)
                return -1;
            c->connects++;
        }
        bool closes = false;
        if (hc_send_all(c->fd, head, (size_t)hn) == 0 &&
            (body_len == 0 || hc_send_all(c->fd, body, body_len) == 0) &&
            hc_read_response(c, &closes) == 0) {
            if (closes) {
                close(c->fd);
                c->fd = -1;
                c->len = 0;
            }
            return c->status;
        }
        close(c->fd);
        c->fd = -1;
        c->len = 0;
        c->reconnects++;
    }
    return -1;
}

#endif
