/* http_idle.c — opens many HTTP keep-alive connections, completes one request on each, then holds them idle. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
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

#include "bench_support.h"
#include "prefork.h"

/*
 * What a server pays for a connection that does nothing is what this tool
 * makes measurable: each connection sends one GET, reads the whole response
 * (so the server has gone through its request path once and then returned
 * the connection to its keep-alive state), and afterwards sends nothing.
 * The caller reads the server's memory before and after.
 *
 * Connections are opened a batch at a time (-b in flight, connect to last
 * byte of the response) so that the listen backlog never overflows: a SYN
 * dropped there would be retried a second later and make the set-up slow,
 * not wrong. When all N are idle the tool prints "ready N" and flushes, so
 * a script can wait for that line, then holds them until -d seconds pass or
 * a TERM/INT arrives. A connection the server closes while held counts as
 * dropped. The last line is key=value figures for scripts.
 */

#define MAX_CONNS 1000000
#define MAX_SECONDS 86400.0
#define MAX_BATCH 4096
#define SETUP_TIMEOUT_S 120
#define HEAD_MAX 4096     /* a response head longer than this is refused */
#define READ_CHUNK 65536

enum state { C_CONNECTING, C_READING, C_IDLE, C_CLOSED };

struct opts {
    const char *host;
    const char *path;
    int port;
    long conns;
    long batch;
    double seconds; /* 0: until a signal */
};

/* One connection. head exists only while its response is being read. */
struct conn {
    int fd;
    enum state state;
    unsigned hlen;    /* bytes of the response head received so far */
    long long left;   /* body bytes still due; -1 until the head is complete */
    char *head;
};

struct run {
    const struct opts *o;
    struct conn *c;
    int ep;
    long opened, inflight, ready, dropped, failed;
    int reported;
    char req[512];
    size_t req_len;
    unsigned char *rbuf;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- errors ---- */

static void conn_close(struct run *r, struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also takes it out of the epoll set */
    c->fd = -1;
    free(c->head);
    c->head = NULL;
    if (c->state == C_CONNECTING || c->state == C_READING)
        r->inflight--;
    c->state = C_CLOSED;
}

static void conn_fail(struct run *r, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A connection that fails before it is idle fails the set-up. */
static void conn_fail(struct run *r, struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bench_conn_error(&r->reported, "http_idle", (long)(c - r->c), fmt, ap);
    va_end(ap);
    if (c->state == C_IDLE)
        r->dropped++;
    else
        r->failed++;
    conn_close(r, c);
}

/* ---- the response ---- */

/* Whether the header line [f, e) contains word, ignoring case. */
static int line_has(const char *f, const char *e, const char *word)
{
    size_t n = strlen(word);
    for (; f + n <= e; f++)
        if (strncasecmp(f, word, n) == 0)
            return 1;
    return 0;
}

/* Check a complete, NUL-terminated head: status 200, a Content-Length, and
 * no "Connection: close" (the server would not keep the connection).
 * Returns the body's length, or -1 after failing the connection. */
static long long head_check(struct run *r, struct conn *c)
{
    const char *h = c->head, *f, *e;
    long long len = -1;
    int closing = 0;
    if (strncmp(h, "HTTP/1.1 200", 12) != 0 && strncmp(h, "HTTP/1.0 200", 12) != 0) {
        conn_fail(r, c, "status line: %.40s", h);
        return -1;
    }
    for (f = strstr(h, "\r\n") + 2; *f != '\r'; f = e + 2) {
        e = strstr(f, "\r\n");
        if (strncasecmp(f, "content-length:", 15) == 0)
            len = strtoll(f + 15, NULL, 10);
        else if (strncasecmp(f, "connection:", 11) == 0)
            closing |= line_has(f + 11, e, "close");
    }
    if (closing)
        conn_fail(r, c, "the server answered with Connection: close");
    else if (len < 0)
        conn_fail(r, c, "the response has no Content-Length");
    return closing || len < 0 ? -1 : len;
}

/* Append up to n bytes to the head. Returns how many of them belong to the
 * head (the rest are body), or -1 after failing the connection. */
static long head_take(struct run *r, struct conn *c, const unsigned char *b, size_t n)
{
    unsigned before = c->hlen, start = before > 3 ? before - 3 : 0;
    size_t room = HEAD_MAX - 1 - before, take = n < room ? n : room;
    memcpy(c->head + before, b, take);
    c->hlen += (unsigned)take;
    c->head[c->hlen] = '\0';
    char *end = strstr(c->head + start, "\r\n\r\n");
    if (!end && c->hlen == HEAD_MAX - 1) {
        conn_fail(r, c, "response head over %d bytes", HEAD_MAX - 1);
        return -1;
    }
    if (!end)
        return (long)take;
    c->hlen = (unsigned)(end + 4 - c->head);
    c->head[c->hlen] = '\0';
    c->left = head_check(r, c);
    return c->left < 0 ? -1 : (long)(c->hlen - before);
}

static void conn_idle(struct run *r, struct conn *c)
{
    free(c->head);
    c->head = NULL;
    c->state = C_IDLE;
    r->inflight--;
    r->ready++;
}

/* Bytes of the response arrived: head first, then count the body down. */
static void conn_bytes(struct run *r, struct conn *c, const unsigned char *b, size_t n)
{
    if (c->left < 0) {
        long h = head_take(r, c, b, n);
        if (h < 0)
            return;
        b += h;
        n -= (size_t)h;
        if (c->left < 0)
            return;
    }
    if ((long long)n > c->left) {
        conn_fail(r, c, "more bytes than Content-Length (pipelined or invalid response)");
        return;
    }
    c->left -= (long long)n;
    if (c->left == 0)
        conn_idle(r, c);
}

/* ---- events ---- */

static void conn_read(struct run *r, struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, r->rbuf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            conn_fail(r, c, "read: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            conn_fail(r, c, c->state == C_IDLE ? "closed by the server while idle"
                                                : "closed by the server mid-response");
            return;
        }
        if (c->state == C_IDLE) {
            conn_fail(r, c, "%zd unexpected bytes while idle", n);
            return;
        }
        conn_bytes(r, c, r->rbuf, (size_t)n);
        if (c->state != C_READING)
            return;
    }
}

/* The connect finished: check it, send the request (it fits the empty
 * socket buffer in one send), and wait for the response. */
static void conn_connected(struct run *r, struct conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        conn_fail(r, c, "connect: %s", strerror(soerr));
        return;
    }
    ssize_t n = send(c->fd, r->req, r->req_len, MSG_NOSIGNAL);
    if (n != (ssize_t)r->req_len) {
        conn_fail(r, c, "send: %s", n < 0 ? strerror(errno) : "short write");
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)(c - r->c)};
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        conn_fail(r, c, "epoll_ctl: %s", strerror(errno));
        return;
    }
    c->state = C_READING;
}

static void conn_event(struct run *r, struct conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        conn_connected(r, c);
    else if (c->state != C_CLOSED)
        conn_read(r, c);
}

/* Start one connection: a non-blocking connect watched for EPOLLOUT. */
static int conn_open(struct run *r, struct conn *c, const struct pf_addr *a)
{
    c->state = C_CONNECTING;
    c->left = -1;
    c->hlen = 0;
    r->inflight++;
    c->head = malloc(HEAD_MAX);
    c->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!c->head || c->fd < 0) {
        conn_fail(r, c, "%s", c->head ? strerror(errno) : "out of memory");
        return -1;
    }
    if (connect(c->fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
        conn_fail(r, c, "connect: %s", strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(c - r->c)};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        conn_fail(r, c, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Wait for events at most ms and handle them. Returns -1 on a fatal error. */
static int poll_once(struct run *r, int ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(r->ep, evs, 256, ms);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0) {
        fprintf(stderr, "http_idle: epoll_wait: %s\n", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        conn_event(r, &r->c[evs[i].data.u64], evs[i].events);
    return 0;
}

/* ---- the two phases ---- */

/* Open every connection, at most batch in flight. Returns 0 when all N are
 * idle, -1 on a failure, a signal or the set-up deadline. */
static int open_all(struct run *r, const struct pf_addr *a)
{
    const struct opts *o = r->o;
    double give_up = now_s() + SETUP_TIMEOUT_S;
    while (r->ready < o->conns) {
        while (r->opened < o->conns && r->inflight < o->batch)
            if (conn_open(r, &r->c[r->opened++], a) < 0)
                return -1;
        if (poll_once(r, 100) < 0 || r->failed || r->dropped || stop_signal)
            return -1;
        if (now_s() > give_up) {
            fprintf(stderr, "http_idle: only %ld of %ld connections ready after %d s\n",
                    r->ready, o->conns, SETUP_TIMEOUT_S);
            return -1;
        }
    }
    return 0;
}

/* Hold the idle connections until the deadline (none when seconds is 0)
 * or a signal, counting those the server closes. */
static void hold(struct run *r)
{
    double end = r->o->seconds > 0 ? now_s() + r->o->seconds : 0;
    while (!stop_signal) {
        int ms = 1000;
        if (end > 0) {
            double left = end - now_s();
            if (left <= 0)
                break;
            ms = left < 1 ? (int)(left * 1000) + 1 : 1000;
        }
        if (poll_once(r, ms) < 0)
            break;
    }
}

/* ---- setup ---- */

/* Every connection is a descriptor: raise the soft limit (and the hard one,
 * which only root can) to fit them. */
static int raise_nofile(long conns)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)conns + 32;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max < need)
        rl.rlim_max = need;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        int err = errno;
        getrlimit(RLIMIT_NOFILE, &rl);
        fprintf(stderr, "http_idle: setrlimit(RLIMIT_NOFILE, %llu): %s (hard limit %llu)\n",
                (unsigned long long)need, strerror(err), (unsigned long long)rl.rlim_max);
        return -err;
    }
    return 0;
}

static void signals_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void summary(const struct run *r, double open_s, double held_s)
{
    printf("held=%ld dropped=%ld failed=%ld conns=%ld open_s=%.2f held_s=%.2f\n",
           r->ready - r->dropped, r->dropped, r->failed, r->o->conns, open_s, held_s);
    printf("http_idle: %ld of %ld connections idle after one GET %s each (opened in %.2f s), "
           "held %.1f s, %ld dropped by the server, %ld failed\n",
           r->ready - r->dropped, r->o->conns, r->o->path, open_s, held_s, r->dropped,
           r->failed);
}

static int run(const struct opts *o)
{
    struct pf_addr a;
    struct run r = {.o = o, .ep = -1};
    int rc = 1;
    if (bench_resolve("http_idle", o->host, o->port, &a) < 0)
        return 2;
    if (raise_nofile(o->conns) < 0)
        return 1;
    r.req_len = (size_t)snprintf(r.req, sizeof r.req,
                                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\n"
                                 "User-Agent: http_idle\r\n\r\n", o->path, o->host, o->port);
    r.c = calloc((size_t)o->conns, sizeof *r.c);
    r.rbuf = malloc(READ_CHUNK);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!r.c || !r.rbuf || r.ep < 0) {
        fprintf(stderr, "http_idle: setup: %s\n", r.ep < 0 ? strerror(errno) : "out of memory");
        goto out;
    }
    for (long i = 0; i < o->conns; i++)
        r.c[i].fd = -1;
    double t0 = now_s();
    int ok = open_all(&r, &a);
    double t1 = now_s();
    if (ok == 0) {
        printf("ready %ld\n", r.ready);
        fflush(stdout);
        hold(&r);
    }
    summary(&r, t1 - t0, ok == 0 ? now_s() - t1 : 0);
    rc = ok == 0 && r.dropped == 0 ? 0 : 1;
out:
    for (long i = 0; r.c && i < r.opened; i++)
        conn_close(&r, &r.c[i]);
    if (r.ep >= 0)
        close(r.ep);
    free(r.rbuf);
    free(r.c);
    return rc;
}

/* ---- command line ---- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: http_idle -p PORT [-h HOST] [-n CONNS] [-d SECONDS] [-u PATH] [-b BATCH]\n"
            "  -p PORT      the HTTP server's port (required)\n"
            "  -h HOST      IPv4 or IPv6 literal, or localhost (default 127.0.0.1)\n"
            "  -n CONNS     connections to hold, 1..%d (default 10000)\n"
            "  -d SECONDS   hold them this long (default 0: until TERM or INT)\n"
            "  -u PATH      the one request sent on each (default /1k.bin)\n"
            "  -b BATCH     connections being opened at once, 1..%d (default 128)\n"
            "Prints \"ready N\" once all are idle, then, when done, one line of\n"
            "key=value pairs and one for people. Exit status: 0 all held to the end,\n"
            "1 a connection failed or was closed by the server, 2 usage.\n",
            MAX_CONNS, MAX_BATCH);
}

static int parse_opt(struct opts *o, int opt, const char *arg)
{
    long v = 0;
    char *end;
    switch (opt) {
    case 'h':
        o->host = arg;
        return 0;
    case 'u':
        return arg[0] == '/' && strlen(arg) < 256 && !strpbrk(arg, " \r\n") ? (o->path = arg, 0) : -1;
    case 'p':
        return bench_parse_long(arg, 1, 65535, &v) < 0 ? -1 : (o->port = (int)v, 0);
    case 'n':
        return bench_parse_long(arg, 1, MAX_CONNS, &v) < 0 ? -1 : (o->conns = v, 0);
    case 'b':
        return bench_parse_long(arg, 1, MAX_BATCH, &v) < 0 ? -1 : (o->batch = v, 0);
    case 'd':
        o->seconds = strtod(arg, &end);
        return end == arg || *end || !(o->seconds >= 0 && o->seconds <= MAX_SECONDS) ? -1 : 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct opts o = {.host = "127.0.0.1", .path = "/1k.bin", .conns = 10000, .batch = 128};
    int opt;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":h:p:n:d:u:b:")) != -1) {
        if (opt == ':' || opt == '?') {
            fprintf(stderr, "http_idle: bad option -%c\n", optopt);
            usage(stderr);
            return 2;
        }
        if (parse_opt(&o, opt, optarg) < 0) {
            fprintf(stderr, "http_idle: -%c '%s': out of range or malformed\n", opt, optarg);
            return 2;
        }
    }
    if (optind < argc || o.port == 0) {
        usage(stderr);
        return 2;
    }
    signals_init();
    return run(&o);
}
