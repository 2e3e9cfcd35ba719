/* http_slow.c — holds many slow HTTP clients on a server: each sends its request head a byte at a time and never finishes it. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_support.h"
#include "prefork.h"

/*
 * The load a server meets from clients on slow or hostile networks (the
 * "slowloris" pattern): each connection sends its request line at once,
 * then one byte of an endless run of header lines every -i milliseconds,
 * so its head is never complete. A server that gives each connection a
 * worker (or a thread) until the head is in has that worker taken for as
 * long as the client likes; one that reads heads in an event loop only
 * holds a buffer. Meanwhile the caller measures normal requests.
 *
 * A connection the server closes, or answers (a 408 or 400, say), is
 * counted and opened again 100 ms later, so the pressure stays at N. The
 * first byte of each connection is placed at random within the interval,
 * so the drips are spread evenly over time. Once every connection has
 * connected (or -r seconds have passed) the tool prints "ready K" (K
 * connected) and flushes; it runs until -d seconds pass or a TERM/INT
 * arrives, then prints a key=value line for scripts and a line for people.
 *
 * Cost: every 10 ms the due connections are found by a scan of all N,
 * O(N), which is nothing at the few thousand this is meant for.
 */

#define MAX_CONNS 20000
#define MAX_SECONDS 86400.0
#define MAX_BATCH 1024
#define REOPEN_DELAY_S 0.1
#define TICK_MS 10

enum state { C_WAITING, C_CONNECTING, C_DRIPPING };

struct opts {
    const char *host;
    const char *path;
    int port;
    long conns;
    long batch;
    long interval_ms;
    double seconds;     /* 0: until a signal */
    double ready_s;     /* print "ready" after this long even if some did not connect */
};

struct conn {
    int fd;
    enum state state;
    double due;         /* C_WAITING: when to connect; C_DRIPPING: the next byte */
    unsigned sent;      /* header bytes dripped so far */
};

struct run {
    const struct opts *o;
    struct pf_addr addr;
    struct conn *c;
    int ep;
    long connecting, dripping;
    long opens, closed, answered, failed;
    long long bytes;
    int reported;
    char line[512];     /* the request line and Host, sent at once */
    size_t line_len;
};

/* The endless header: this line over and over, one byte per drip. */
static const char DRIP[] = "X-Slow: 1\r\n";

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

static double jitter(const struct opts *o)
{
    return (double)(random() % (o->interval_ms * 1000)) / 1e6;
}

/* Close a connection and schedule it to be opened again. */
static void conn_reset(struct run *r, struct conn *c, double delay)
{
    if (c->fd >= 0)
        close(c->fd); /* also takes it out of the epoll set */
    c->fd = -1;
    if (c->state == C_CONNECTING)
        r->connecting--;
    else if (c->state == C_DRIPPING)
        r->dripping--;
    c->state = C_WAITING;
    c->due = now_s() + delay;
}

static void conn_error(struct run *r, struct conn *c, long *counter, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void conn_error(struct run *r, struct conn *c, long *counter, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bench_conn_error(&r->reported, "http_slow", (long)(c - r->c), fmt, ap);
    va_end(ap);
    (*counter)++;
    conn_reset(r, c, REOPEN_DELAY_S);
}

/* Start a non-blocking connect, watched for EPOLLOUT. */
static void conn_open(struct run *r, struct conn *c)
{
    const struct pf_addr *a = &r->addr;
    r->opens++;
    c->sent = 0;
    c->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->state = C_CONNECTING;
    r->connecting++;
    if (c->fd < 0) {
        conn_error(r, c, &r->failed, "socket: %s", strerror(errno));
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
        conn_error(r, c, &r->failed, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(c - r->c)};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        conn_error(r, c, &r->failed, "epoll_ctl: %s", strerror(errno));
}

/* The connect finished: send the request line and Host, then drip. */
static void conn_connected(struct run *r, struct conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        conn_error(r, c, &r->failed, "connect: %s", strerror(soerr));
        return;
    }
    ssize_t n = send(c->fd, r->line, r->line_len, MSG_NOSIGNAL);
    if (n != (ssize_t)r->line_len) {
        conn_error(r, c, &r->closed, "send: %s", n < 0 ? strerror(errno) : "short write");
        return;
    }
    r->bytes += n;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)(c - r->c)};
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        conn_error(r, c, &r->failed, "epoll_ctl: %s", strerror(errno));
        return;
    }
    r->connecting--;
    r->dripping++;
    c->state = C_DRIPPING;
    c->due = now_s() + jitter(r->o);
}

/* The server said something (an error status) or closed: either way the
 * connection is over; it is opened again. Not reported one by one: with a
 * header timeout in the server this is the normal course. */
static void conn_readable(struct run *r, struct conn *c)
{
    char buf[4096];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0)
        r->answered++;
    else
        r->closed++;
    conn_reset(r, c, REOPEN_DELAY_S);
}

static void conn_event(struct run *r, struct conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        conn_connected(r, c);
    else if (c->state == C_DRIPPING)
        conn_readable(r, c);
}

/* Every connection whose time has come: open it (at most batch connects
 * in flight) or send its next byte. */
static void tick(struct run *r)
{
    double t = now_s();
    for (long i = 0; i < r->o->conns; i++) {
        struct conn *c = &r->c[i];
        if (c->due > t)
            continue;
        if (c->state == C_WAITING && r->connecting < r->o->batch) {
            conn_open(r, c);
        } else if (c->state == C_DRIPPING) {
            char b = DRIP[c->sent % (sizeof DRIP - 1)];
            ssize_t n = send(c->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n == 1) {
                c->sent++;
                r->bytes++;
                c->due += (double)r->o->interval_ms / 1000;
            } else if (n < 0 && errno != EAGAIN) {
                r->closed++;
                conn_reset(r, c, REOPEN_DELAY_S);
            }
        }
    }
}

static int poll_once(struct run *r, int ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(r->ep, evs, 256, ms);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0) {
        fprintf(stderr, "http_slow: epoll_wait: %s\n", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        conn_event(r, &r->c[evs[i].data.u64], evs[i].events);
    return 0;
}

/* ---- setup ---- */

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
        fprintf(stderr, "http_slow: setrlimit(RLIMIT_NOFILE, %llu): %s\n",
                (unsigned long long)need, strerror(err));
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

/* Run until the deadline or a signal. "ready K" is printed once all are
 * connected, or at the ready deadline with those that are; min_held is
 * the fewest connected at any tick after that. */
static long loop(struct run *r)
{
    const struct opts *o = r->o;
    double t0 = now_s(), end = o->seconds > 0 ? t0 + o->seconds : 0;
    long min_held = -1;
    int ready = 0;
    while (!stop_signal && (end == 0 || now_s() < end)) {
        tick(r);
        if (poll_once(r, TICK_MS) < 0)
            break;
        if (!ready && (r->dripping == o->conns || now_s() - t0 >= o->ready_s)) {
            ready = 1;
            printf("ready %ld\n", r->dripping);
            fflush(stdout);
        }
        if (ready && (min_held < 0 || r->dripping < min_held))
            min_held = r->dripping;
    }
    return min_held < 0 ? 0 : min_held;
}

static int run(const struct opts *o)
{
    struct run r = {.o = o, .ep = -1};
    int rc = 1;
    if (bench_resolve("http_slow", o->host, o->port, &r.addr) < 0)
        return 2;
    if (raise_nofile(o->conns) < 0)
        return 1;
    r.line_len = (size_t)snprintf(r.line, sizeof r.line,
                                  "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: http_slow\r\n",
                                  o->path, o->host, o->port);
    r.c = calloc((size_t)o->conns, sizeof *r.c);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!r.c || r.ep < 0) {
        fprintf(stderr, "http_slow: setup: %s\n", r.ep < 0 ? strerror(errno) : "out of memory");
        goto out;
    }
    srandom((unsigned)getpid());
    for (long i = 0; i < o->conns; i++)
        r.c[i].fd = -1;
    double t0 = now_s();
    long min_held = loop(&r);
    double secs = now_s() - t0;
    printf("conns=%ld held_at_end=%ld min_held=%ld opens=%ld closed=%ld answered=%ld failed=%ld "
           "bytes=%lld seconds=%.2f\n", o->conns, r.dripping, min_held, r.opens, r.closed,
           r.answered, r.failed, r.bytes, secs);
    printf("http_slow: %ld slow clients for %.1f s (a byte every %ld ms each): at least %ld held "
           "at once once ready; the server closed %ld and answered %ld (each opened again), "
           "%ld connects failed\n", o->conns, secs, o->interval_ms, min_held, r.closed,
           r.answered, r.failed);
    rc = 0;
out:
    for (long i = 0; r.c && i < o->conns; i++)
        if (r.c[i].fd >= 0)
            close(r.c[i].fd);
    if (r.ep >= 0)
        close(r.ep);
    free(r.c);
    return rc;
}

/* ---- command line ---- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: http_slow -p PORT [-h HOST] [-n CONNS] [-d SECONDS] [-i MS] [-u PATH] [-b BATCH] [-r SECONDS]\n"
            "  -p PORT      the HTTP server's port (required)\n"
            "  -h HOST      IPv4 or IPv6 literal, or localhost (default 127.0.0.1)\n"
            "  -n CONNS     slow clients to hold, 1..%d (default 500)\n"
            "  -d SECONDS   run this long (default 0: until TERM or INT)\n"
            "  -i MS        each client sends one more byte of its head every MS (default 1000)\n"
            "  -u PATH      the request line's path (default /)\n"
            "  -b BATCH     connects in flight at once, 1..%d (default 64)\n"
            "  -r SECONDS   print \"ready\" after this long even if not all connected (default 10)\n"
            "Prints \"ready K\" once K clients are connected (all, or at the -r deadline),\n"
            "then, when done, one line of key=value pairs and one for people.\n"
            "A client the server closes or answers is opened again. Exit status 0, 1 on\n"
            "a setup failure, 2 usage.\n",
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
    case 'i':
        return bench_parse_long(arg, 1, 600000, &v) < 0 ? -1 : (o->interval_ms = v, 0);
    case 'd':
        o->seconds = strtod(arg, &end);
        return end == arg || *end || !(o->seconds >= 0 && o->seconds <= MAX_SECONDS) ? -1 : 0;
    case 'r':
        o->ready_s = strtod(arg, &end);
        return end == arg || *end || !(o->ready_s >= 0 && o->ready_s <= MAX_SECONDS) ? -1 : 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct opts o = {.host = "127.0.0.1", .path = "/", .conns = 500, .batch = 64,
                     .interval_ms = 1000, .ready_s = 10};
    int opt;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":h:p:n:d:i:u:b:r:")) != -1) {
        if (opt == ':' || opt == '?') {
            fprintf(stderr, "http_slow: bad option -%c\n", optopt);
            usage(stderr);
            return 2;
        }
        if (parse_opt(&o, opt, optarg) < 0) {
            fprintf(stderr, "http_slow: -%c '%s': out of range or malformed\n", opt, optarg);
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
