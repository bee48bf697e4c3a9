/*
 * sse_clients.c — hold many GenPulse event streams open and sample the server's memory.
 *
 *   sse_clients --port P --ids FILE --pid SERVER_PID [--host H] [--streams 5000]
 *               [--batch 250] [--hold 5] [--batch-timeout 15]
 *
 * FILE holds task ids, one a line; stream i follows task i % count. The client opens the
 * streams (GET /v1/tasks/{id}/events) in batches over non-blocking sockets driven by one
 * epoll loop: a batch is complete when every stream of it has its response headers (or
 * failed). Then it lets the streams run 1 s, samples VmRSS/VmHWM/Threads from
 * /proc/SERVER_PID/status, keeps reading for --hold seconds and samples again. It counts
 * bytes, `event:` lines, `data:` lines and comment (heartbeat) lines on all streams,
 * decoding chunked transfer encoding when the server uses it.
 *
 * Prints key=value lines. Exit status 0 whenever figures could be printed, 2 on usage errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    ST_CONNECTING,
    ST_SENT,
    ST_STREAMING,
    ST_CLOSED,
    ST_FAILED
};
enum {
    CH_SIZE,
    CH_EXT,
    CH_DATA,
    CH_DATA_END,
    CH_DONE
};

typedef struct sconn {
    int fd;
    uint8_t state;
    uint8_t chunked;
    uint8_t ch_state;
    uint8_t line_len; /* bytes of the current line seen (capped at 8) */
    char line[8];     /* first bytes of the current line */
    uint16_t hdr_len;
    int status;
    long ch_left; /* bytes left in the current chunk */
    char *hdr;    /* response head until it is complete */
    unsigned long bytes;
} sconn_t;

static const char *g_host = "127.0.0.1";
static int g_port;
static const char *g_ids_path;
static int g_pid;
static int g_streams = 5000, g_batch = 250;
static double g_hold = 5, g_batch_timeout = 15;

static sconn_t *g_c;
static int g_epfd;
static char **g_ids;
static int g_nids;
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;

/* totals */
static unsigned long g_bytes, g_events, g_data, g_comments;
static int g_failed_connect, g_non200, g_closed_by_server, g_closed_before_headers;
static int g_first_bad_status;
static int g_first_errno;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct proc_sample {
    long rss_kb, hwm_kb, threads, fds;
} proc_sample_t;

static proc_sample_t sample_server(void)
{
    proc_sample_t s = {-1, -1, -1, -1};
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", g_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return s;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6))
            s.rss_kb = atol(line + 6);
        else if (!strncmp(line, "VmHWM:", 6))
            s.hwm_kb = atol(line + 6);
        else if (!strncmp(line, "Threads:", 8))
            s.threads = atol(line + 8);
    }
    fclose(f);
    /* open descriptors of the server */
    snprintf(path, sizeof path, "/proc/%d/fd", g_pid);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | wc -l", path);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fgets(line, sizeof line, p))
            s.fds = atol(line);
        pclose(p);
    }
    return s;
}

static void finish_line(sconn_t *c)
{
    if (c->line_len >= 6 && !memcmp(c->line, "event:", 6))
        g_events++;
    else if (c->line_len >= 5 && !memcmp(c->line, "data:", 5))
        g_data++;
    else if (c->line_len >= 1 && c->line[0] == ':')
        g_comments++;
    c->line_len = 0;
}

/* Body bytes of the event stream (after transfer decoding). */
static void feed_body(sconn_t *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n')
            finish_line(c);
        else if (ch != '\r' && c->line_len < sizeof c->line)
            c->line[c->line_len++] = ch;
    }
}

/* Raw bytes after the response head. */
static void feed_raw(sconn_t *c, const char *p, size_t n)
{
    if (!c->chunked) {
        feed_body(c, p, n);
        return;
    }
    size_t i = 0;
    while (i < n) {
        switch (c->ch_state) {
        case CH_SIZE: {
            char ch = p[i++];
            int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                    : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                    : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                               : -1;
            if (d >= 0)
                c->ch_left = c->ch_left * 16 + d;
            else if (ch == '\n')
                c->ch_state = c->ch_left ? CH_DATA : CH_DONE;
            else
                c->ch_state = CH_EXT;
            break;
        }
        case CH_EXT:
            if (p[i++] == '\n')
                c->ch_state = c->ch_left ? CH_DATA : CH_DONE;
            break;
        case CH_DATA: {
            size_t take = n - i < (size_t)c->ch_left ? n - i : (size_t)c->ch_left;
            feed_body(c, p + i, take);
            i += take;
            c->ch_left -= (long)take;
            if (c->ch_left == 0)
                c->ch_state = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            if (p[i++] == '\n') {
                c->ch_state = CH_SIZE;
                c->ch_left = 0;
            }
            break;
        default: i = n; break;
        }
    }
}

static void close_conn(sconn_t *c, int new_state)
{
    if (c->fd >= 0) {
        epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    free(c->hdr);
    c->hdr = NULL;
    c->state = (uint8_t)new_state;
}

static void on_headers_done(sconn_t *c, size_t head_len)
{
    c->hdr[head_len] = '\0';
    if (sscanf(c->hdr, "HTTP/%*d.%*d %d", &c->status) != 1)
        c->status = -1;
    for (char *line = strstr(c->hdr, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, "transfer-encoding:", 18) && strcasestr(line + 2, "chunked"))
            c->chunked = 1;
    }
    if (c->status != 200) {
        g_non200++;
        if (!g_first_bad_status)
            g_first_bad_status = c->status;
        close_conn(c, ST_FAILED);
        return;
    }
    c->state = ST_STREAMING;
}

static void on_readable(sconn_t *c)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
        }
        if (n <= 0) {
            if (c->state == ST_STREAMING) {
                g_closed_by_server++;
                close_conn(c, ST_CLOSED);
            } else {
                g_closed_before_headers++;
                if (!g_first_errno)
                    g_first_errno = n < 0 ? errno : -1;
                close_conn(c, ST_FAILED);
            }
            return;
        }
        c->bytes += (unsigned long)n;
        g_bytes += (unsigned long)n;
        if (c->state == ST_STREAMING) {
            feed_raw(c, buf, (size_t)n);
            continue;
        }
        /* Still reading the head: copy until the blank line. */
        size_t i = 0;
        while (i < (size_t)n && c->hdr_len < 4095) {
            c->hdr[c->hdr_len++] = buf[i++];
            if (c->hdr_len >= 4 && !memcmp(c->hdr + c->hdr_len - 4, "\r\n\r\n", 4))
                break;
        }
        if (c->hdr_len >= 4 && !memcmp(c->hdr + c->hdr_len - 4, "\r\n\r\n", 4)) {
            on_headers_done(c, c->hdr_len);
            if (c->state != ST_STREAMING)
                return;
            free(c->hdr);
            c->hdr = NULL;
            feed_raw(c, buf + i, (size_t)n - i);
        } else if (c->hdr_len >= 4095) {
            g_non200++;
            close_conn(c, ST_FAILED);
            return;
        }
    }
}

static void on_writable(sconn_t *c, int idx)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        g_failed_connect++;
        if (!g_first_errno)
            g_first_errno = err;
        close_conn(c, ST_FAILED);
        return;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /v1/tasks/%s/events HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     g_ids[idx % g_nids], g_host, g_port);
    ssize_t w = send(c->fd, req, (size_t)n, MSG_NOSIGNAL);
    if (w != n) {
        g_failed_connect++;
        if (!g_first_errno)
            g_first_errno = errno;
        close_conn(c, ST_FAILED);
        return;
    }
    c->state = ST_SENT;
    c->hdr = malloc(4096);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)idx};
    epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void pump(double until)
{
    struct epoll_event evs[512];
    for (;;) {
        double left = until - now();
        if (left <= 0)
            return;
        int n = epoll_wait(g_epfd, evs, 512, (int)(left * 1000) + 1);
        for (int i = 0; i < n; i++) {
            int idx = (int)evs[i].data.u32;
            sconn_t *c = &g_c[idx];
            if (c->fd < 0)
                continue;
            if (c->state == ST_CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    on_writable(c, idx);
            } else {
                on_readable(c);
            }
        }
    }
}

static int pending_in(int from, int to)
{
    int n = 0;
    for (int i = from; i < to; i++)
        n += g_c[i].state == ST_CONNECTING || g_c[i].state == ST_SENT;
    return n;
}

static int count_state(int st)
{
    int n = 0;
    for (int i = 0; i < g_streams; i++)
        n += g_c[i].state == st;
    return n;
}

static void load_ids(void)
{
    FILE *f = fopen(g_ids_path, "r");
    if (f == NULL) {
        perror(g_ids_path);
        exit(2);
    }
    char line[256];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n \t")] = '\0';
        if (!line[0])
            continue;
        if (g_nids == cap) {
            cap = cap ? cap * 2 : 64;
            g_ids = realloc(g_ids, (size_t)cap * sizeof *g_ids);
        }
        g_ids[g_nids++] = strdup(line);
    }
    fclose(f);
    if (g_nids == 0) {
        fprintf(stderr, "sse_clients: no task ids in %s\n", g_ids_path);
        exit(2);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: sse_clients --port P --ids FILE --pid SERVER_PID [--host H] "
                    "[--streams N] [--batch B] [--hold S] [--batch-timeout S]\n");
    exit(2);
}

static void print_sample(const char *tag, proc_sample_t s, int open)
{
    printf("%s_rss_kb=%ld %s_hwm_kb=%ld %s_threads=%ld %s_fds=%ld %s_open_streams=%d\n", tag,
           s.rss_kb, tag, s.hwm_kb, tag, s.threads, tag, s.fds, tag, open);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--host"))
            g_host = v;
        else if (!strcmp(a, "--port"))
            g_port = atoi(v);
        else if (!strcmp(a, "--ids"))
            g_ids_path = v;
        else if (!strcmp(a, "--pid"))
            g_pid = atoi(v);
        else if (!strcmp(a, "--streams"))
            g_streams = atoi(v);
        else if (!strcmp(a, "--batch"))
            g_batch = atoi(v);
        else if (!strcmp(a, "--hold"))
            g_hold = atof(v);
        else if (!strcmp(a, "--batch-timeout"))
            g_batch_timeout = atof(v);
        else
            usage();
    }
    if (g_port <= 0 || !g_ids_path || g_pid <= 0 || g_streams <= 0 || g_batch <= 0)
        usage();
    load_ids();

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)g_streams + 64) {
        fprintf(stderr, "sse_clients: open-file limit %llu is below %d streams; raise ulimit -n\n",
                (unsigned long long)rl.rlim_cur, g_streams);
        return 2;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof port, "%d", g_port);
    if (getaddrinfo(g_host, port, &hints, &res) != 0) {
        fprintf(stderr, "sse_clients: cannot resolve %s\n", g_host);
        return 2;
    }
    memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
    g_addrlen = res->ai_addrlen;
    int family = res->ai_family;
    freeaddrinfo(res);

    g_c = calloc((size_t)g_streams, sizeof *g_c);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < g_streams; i++)
        g_c[i].fd = -1;

    proc_sample_t before = sample_server();
    print_sample("before", before, 0);
    fflush(stdout);

    double t_start = now();
    int batch_timeouts = 0;
    for (int from = 0; from < g_streams; from += g_batch) {
        int to = from + g_batch < g_streams ? from + g_batch : g_streams;
        for (int i = from; i < to; i++) {
            sconn_t *c = &g_c[i];
            c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c->fd < 0) {
                g_failed_connect++;
                if (!g_first_errno)
                    g_first_errno = errno;
                c->state = ST_FAILED;
                continue;
            }
            c->state = ST_CONNECTING;
            if (connect(c->fd, (struct sockaddr *)&g_addr, g_addrlen) != 0 &&
                errno != EINPROGRESS) {
                g_failed_connect++;
                if (!g_first_errno)
                    g_first_errno = errno;
                close_conn(c, ST_FAILED);
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                                     .data.u32 = (uint32_t)i};
            epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev);
        }
        double deadline = now() + g_batch_timeout;
        while (pending_in(from, to) > 0 && now() < deadline)
            pump(now() + 0.05);
        if (pending_in(from, to) > 0)
            batch_timeouts++;
    }
    double t_open = now();
    int opened = count_state(ST_STREAMING) + g_closed_by_server;
    int still_waiting = pending_in(0, g_streams);
    printf("streams=%d tasks=%d opened=%d open_secs=%.3f failed_connect=%d non200=%d "
           "first_bad_status=%d closed_before_headers=%d no_headers_yet=%d batch_timeouts=%d "
           "first_errno=%d(%s)\n",
           g_streams, g_nids, opened, t_open - t_start, g_failed_connect, g_non200,
           g_first_bad_status, g_closed_before_headers, still_waiting, batch_timeouts,
           g_first_errno, g_first_errno > 0 ? strerror(g_first_errno) : "-");
    fflush(stdout);

    pump(now() + 1.0);
    proc_sample_t open_s = sample_server();
    print_sample("open", open_s, count_state(ST_STREAMING));
    fflush(stdout);

    unsigned long ev0 = g_events, b0 = g_bytes;
    double th = now();
    pump(th + g_hold);
    double hold_secs = now() - th;
    proc_sample_t end_s = sample_server();
    print_sample("end", end_s, count_state(ST_STREAMING));
    printf("hold_secs=%.2f hold_events=%lu hold_bytes=%lu total_bytes=%lu total_events=%lu "
           "total_data_lines=%lu total_comment_lines=%lu closed_by_server=%d\n",
           hold_secs, g_events - ev0, g_bytes - b0, g_bytes, g_events, g_data, g_comments,
           g_closed_by_server);
    fflush(stdout);

    for (int i = 0; i < g_streams; i++)
        if (g_c[i].fd >= 0)
            close_conn(&g_c[i], ST_CLOSED);
    return 0;
}
