/* echo_load.c — load generator: many connections ping-pong fixed-size messages with an echo server. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
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

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "bench_support.h"
#include "prefork.h"

/*
 * Each connection runs a closed loop: send one message, wait for all of it
 * to come back, compare it byte for byte, record the round trip, send the
 * next. Throughput is therefore bounded by latency x connections, which is
 * what a pool of request/response workers is sized for. The client is
 * epoll-driven so that one thread can keep dozens of connections busy; -t
 * splits the connections over several threads, each with its own epoll.
 */

#define MAX_CONNS 100000
#define MAX_SIZE (1u << 20)
#define MAX_THREADS 64
#define MAX_SECONDS 3600.0
#define CONNECT_TIMEOUT_MS 5000

/* Latency histogram in nanoseconds, log-linear: exact below 64 ns, then 32
 * buckets per power of two, so any percentile is within about 3%. 64-bit
 * values need at most 64 + 58 * 32 buckets. */
#define HIST_SUB 32
#define HIST_BUCKETS (2 * HIST_SUB + 58 * HIST_SUB)

struct hist {
    uint64_t n[HIST_BUCKETS];
};

struct opts {
    const char *host;
    int port;
    int conns;
    size_t size;
    double seconds;
    int threads;
};

/* One connection; out holds the message in flight, for sending and for
 * checking the echo against. */
struct conn {
    int fd;
    uint32_t id;
    uint64_t seq;
    size_t sent, got;
    uint64_t t0;
    int want_out;
    unsigned char *out;
};

/* One client thread and the connections it drives. */
struct client {
    const struct opts *o;
    struct conn **conns;
    int n, live, ep, reported;
    uint64_t deadline;
    uint64_t msgs, errors;
    unsigned char *rbuf;
    struct hist h;
    pthread_t tid;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- histogram ---- */

static unsigned hist_bucket(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
    unsigned m = (unsigned)(v >> (e - 5));           /* 32..63 */
    return 2 * HIST_SUB + (e - 6) * HIST_SUB + (m - HIST_SUB);
}

/* The middle of bucket b, in nanoseconds. */
static double hist_value(unsigned b)
{
    if (b < 2 * HIST_SUB)
        return b;
    unsigned e = 6 + (b - 2 * HIST_SUB) / HIST_SUB;
    unsigned m = HIST_SUB + (b - 2 * HIST_SUB) % HIST_SUB;
    double width = (double)(1ull << (e - 5));
    return (double)m * width + width / 2;
}

static double hist_percentile(const struct hist *h, uint64_t total, double p)
{
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)total + 0.999999), seen = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->n[b];
        if (seen >= rank)
            return hist_value(b);
    }
    return hist_value(HIST_BUCKETS - 1);
}

/* ---- one connection ---- */

static void conn_fail(struct client *cl, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error ends the connection (it is not reopened) and fails the run. */
static void conn_fail(struct client *cl, struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bench_conn_error(&cl->reported, "echo_load", (long)c->id, fmt, ap);
    va_end(ap);
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    cl->errors++;
    cl->live--;
}

/* A pattern that differs per connection and per message, so that bytes
 * delivered to the wrong connection or replayed from an earlier message do
 * not pass the check. */
static void conn_fill(struct conn *c, size_t size)
{
    unsigned base = (unsigned)(c->seq * 131u + c->id * 17u);
    for (size_t i = 0; i < size; i++)
        c->out[i] = (unsigned char)(base + i);
}

static int conn_watch(struct client *cl, struct conn *c, int want_out)
{
    if (c->want_out == want_out)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u),
                             .data.ptr = c};
    if (epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return -errno;
    c->want_out = want_out;
    return 0;
}

/* Send what is left of the message; wait for EPOLLOUT if the socket is full. */
static void conn_send(struct client *cl, struct conn *c)
{
    size_t size = cl->o->size;
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->out + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            conn_fail(cl, c, "send: %s", strerror(errno));
            return;
        }
        c->sent += (size_t)n;
    }
    int err = conn_watch(cl, c, c->sent < size);
    if (err < 0)
        conn_fail(cl, c, "epoll_ctl: %s", strerror(-err));
}

static void conn_start(struct client *cl, struct conn *c, uint64_t now)
{
    c->seq++;
    c->sent = c->got = 0;
    c->t0 = now;
    conn_fill(c, cl->o->size);
    conn_send(cl, c);
}

/* The whole echo is back: count it and, while time remains, send the next. */
static void conn_done(struct client *cl, struct conn *c)
{
    uint64_t now = now_ns();
    cl->h.n[hist_bucket(now - c->t0)]++;
    cl->msgs++;
    if (now < cl->deadline)
        conn_start(cl, c, now);
}

/* Check n bytes just read against the message in flight. */
static int conn_check(struct client *cl, struct conn *c, ssize_t n)
{
    if (n < 0)
        conn_fail(cl, c, "read: %s", strerror(errno));
    else if (n == 0)
        conn_fail(cl, c, "the server closed the connection after %zu of %zu "
                  "bytes", c->got, cl->o->size);
    else if (memcmp(cl->rbuf, c->out + c->got, (size_t)n) != 0)
        conn_fail(cl, c, "message %llu: the echo differs from what was sent "
                  "(bytes %zu..%zu)", (unsigned long long)c->seq, c->got,
                  c->got + (size_t)n - 1);
    else
        return 0;
    return -1;
}

/* Read at most the rest of the message in flight: anything beyond it would
 * be bytes the server invented, and is caught by the next message's check. */
static void conn_recv(struct client *cl, struct conn *c)
{
    size_t size = cl->o->size;
    while (c->fd >= 0 && c->got < size) {
        ssize_t n = read(c->fd, cl->rbuf, size - c->got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (conn_check(cl, c, n) < 0)
            return;
        c->got += (size_t)n;
        if (c->got == size && c->sent == size)
            conn_done(cl, c);
    }
}

static void conn_event(struct client *cl, struct conn *c, uint32_t events)
{
    if ((events & EPOLLOUT) && c->sent < cl->o->size)
        conn_send(cl, c);
    if (c->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        conn_recv(cl, c);
}

/* ---- connecting ---- */

static int wait_connected(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ETIMEDOUT;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    return -soerr;
}

/* Open one non-blocking connection, waiting at most timeout_ms for it. */
static int dial(const struct pf_addr *a, int timeout_ms)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, err = 0;
    /* Each message is one write, but the echo of the previous one must not
     * wait for a delayed ACK either: latency is what is being measured. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
        err = errno == EINPROGRESS ? wait_connected(fd, timeout_ms) : -errno;
        if (err < 0)
            goto fail;
    }
    return fd;
fail:
    close(fd);
    return err;
}

/* ---- a client thread ---- */

static int client_add(struct client *cl, struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(cl->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

static void *client_run(void *arg)
{
    struct client *cl = arg;
    struct epoll_event evs[256];
    uint64_t now = now_ns();
    for (int i = 0; i < cl->n; i++)
        conn_start(cl, cl->conns[i], now);
    while (cl->live > 0 && (now = now_ns()) < cl->deadline) {
        int ms = (int)((cl->deadline - now + 999999) / 1000000);
        int n = epoll_wait(cl->ep, evs, 256, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "echo_load: epoll_wait: %s\n", strerror(errno));
            cl->errors++;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd >= 0)
                conn_event(cl, c, evs[i].events);
        }
    }
    return NULL;
}

/* ---- setup, report ---- */

static int conns_open(struct client *cls, const struct opts *o,
                      const struct pf_addr *a, struct conn *conns,
                      unsigned char *bufs)
{
    uint64_t give_up = now_ns() + (uint64_t)CONNECT_TIMEOUT_MS * 1000000u;
    for (int i = 0; i < o->conns; i++) {
        struct client *cl = &cls[i % o->threads];
        struct conn *c = &conns[i];
        uint64_t now = now_ns();
        int left = now < give_up ? (int)((give_up - now) / 1000000) : 0;
        c->id = (uint32_t)i;
        c->out = bufs + (size_t)i * o->size;
        c->fd = dial(a, left);
        if (c->fd < 0) {
            fprintf(stderr, "echo_load: connect (connection %d of %d): %s\n",
                    i + 1, o->conns, strerror(-c->fd));
            return c->fd;
        }
        cl->conns[cl->n++] = c;
        cl->live++;
        int err = client_add(cl, c);
        if (err < 0) {
            fprintf(stderr, "echo_load: epoll_ctl: %s\n", strerror(-err));
            return err;
        }
    }
    return 0;
}

/* The client's own CPU use, as a percentage of one core over the run: near
 * 100 per thread means the client, not the server, may be the limit. */
static double cpu_percent(double elapsed)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return 100 * cpu / elapsed;
}

static void report(const struct opts *o, struct client *cls, double elapsed)
{
    static struct hist all;
    uint64_t msgs = 0, errors = 0;
    for (int t = 0; t < o->threads; t++) {
        msgs += cls[t].msgs;
        errors += cls[t].errors;
        for (unsigned b = 0; b < HIST_BUCKETS; b++)
            all.n[b] += cls[t].h.n[b];
    }
    double rate = (double)msgs / elapsed;
    double p50 = hist_percentile(&all, msgs, 0.50) / 1000;
    double p99 = hist_percentile(&all, msgs, 0.99) / 1000;
    double cpu = cpu_percent(elapsed);
    printf("msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f errors=%llu msgs=%llu "
           "conns=%d size=%zu seconds=%.2f threads=%d client_cpu_pct=%.0f\n",
           rate, p50, p99, (unsigned long long)errors, (unsigned long long)msgs,
           o->conns, o->size, elapsed, o->threads, cpu);
    printf("echo_load: %d connections x %zu B for %.1f s: %.0f msgs/s, "
           "round trip p50 %.1f us, p99 %.1f us, %llu errors, client CPU %.0f%%\n",
           o->conns, o->size, elapsed, rate, p50, p99,
           (unsigned long long)errors, cpu);
}

static uint64_t run_clients(struct client *cls, const struct opts *o)
{
    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)(o->seconds * 1e9);
    int started = 0, err = 0;
    for (; started < o->threads; started++) {
        cls[started].deadline = deadline;
        err = pthread_create(&cls[started].tid, NULL, client_run, &cls[started]);
        if (err) {
            fprintf(stderr, "echo_load: pthread_create: %s\n", strerror(err));
            cls[0].errors++;
            break;
        }
    }
    for (int t = 0; t < started; t++)
        pthread_join(cls[t].tid, NULL);
    uint64_t end = now_ns();
    return (end < deadline ? end : deadline) - start;
}

static int clients_init(struct client *cls, const struct opts *o)
{
    for (int t = 0; t < o->threads; t++) {
        cls[t].o = o;
        cls[t].ep = epoll_create1(EPOLL_CLOEXEC);
        if (cls[t].ep < 0)
            return -errno;
        cls[t].conns = calloc((size_t)o->conns / (size_t)o->threads + 1,
                              sizeof *cls[t].conns);
        cls[t].rbuf = malloc(o->size);
        if (!cls[t].conns || !cls[t].rbuf)
            return -ENOMEM;
    }
    return 0;
}

static void clients_free(struct client *cls, const struct opts *o)
{
    for (int t = 0; t < o->threads; t++) {
        for (int i = 0; i < cls[t].n; i++)
            if (cls[t].conns[i]->fd >= 0)
                close(cls[t].conns[i]->fd);
        if (cls[t].ep >= 0)
            close(cls[t].ep);
        free(cls[t].conns);
        free(cls[t].rbuf);
    }
}

static int bench(const struct opts *o)
{
    struct pf_addr a;
    if (bench_resolve("echo_load", o->host, o->port, &a) < 0)
        return 2;
    int rc = 1;
    struct client *cls = calloc((size_t)o->threads, sizeof *cls);
    struct conn *conns = calloc((size_t)o->conns, sizeof *conns);
    unsigned char *bufs = malloc((size_t)o->conns * o->size);
    if (!cls || !conns || !bufs) {
        fprintf(stderr, "echo_load: out of memory\n");
        goto out;
    }
    for (int t = 0; t < o->threads; t++)
        cls[t].ep = -1;
    int err = clients_init(cls, o);
    if (err < 0) {
        fprintf(stderr, "echo_load: setup: %s\n", strerror(-err));
        goto out_clients;
    }
    if (conns_open(cls, o, &a, conns, bufs) < 0)
        goto out_clients;
    uint64_t elapsed = run_clients(cls, o);
    report(o, cls, (double)elapsed / 1e9);
    rc = 0;
    for (int t = 0; t < o->threads; t++)
        if (cls[t].errors)
            rc = 1;
out_clients:
    clients_free(cls, o);
out:
    free(bufs);
    free(conns);
    free(cls);
    return rc;
}

/* ---- command line ---- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: echo_load -p PORT [-h HOST] [-c CONNS] [-s BYTES] [-d SECONDS] [-t THREADS]\n"
            "  -p PORT      the echo server's port (required)\n"
            "  -h HOST      IPv4 or IPv6 literal, or localhost (default 127.0.0.1)\n"
            "  -c CONNS     concurrent connections, 1..%d (default 64)\n"
            "  -s BYTES     message size, 1..%u (default 100)\n"
            "  -d SECONDS   duration, e.g. 10 or 2.5 (default 10, at most %.0f)\n"
            "  -t THREADS   client threads, 1..%d and at most CONNS (default 1)\n"
            "Prints one line of key=value pairs, then one for people. Exit status:\n"
            "0 ok, 1 a connection failed or an echo differed, 2 usage.\n",
            MAX_CONNS, MAX_SIZE, MAX_SECONDS, MAX_THREADS);
}

static int parse_opt(struct opts *o, int opt, const char *arg)
{
    long v = 0;
    char *end;
    switch (opt) {
    case 'h':
        o->host = arg;
        return 0;
    case 'p':
        return bench_parse_long(arg, 1, 65535, &v) < 0 ? -1 : (o->port = (int)v, 0);
    case 'c':
        return bench_parse_long(arg, 1, MAX_CONNS, &v) < 0 ? -1 : (o->conns = (int)v, 0);
    case 's':
        return bench_parse_long(arg, 1, MAX_SIZE, &v) < 0 ? -1 : (o->size = (size_t)v, 0);
    case 't':
        return bench_parse_long(arg, 1, MAX_THREADS, &v) < 0 ? -1 : (o->threads = (int)v, 0);
    case 'd':
        o->seconds = strtod(arg, &end);
        return end == arg || *end || !(o->seconds > 0 && o->seconds <= MAX_SECONDS) ? -1 : 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct opts o = {.host = "127.0.0.1", .conns = 64, .size = 100,
                     .seconds = 10, .threads = 1};
    int opt;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":h:p:c:s:d:t:")) != -1) {
        if (opt == ':' || opt == '?') {
            fprintf(stderr, "echo_load: bad option -%c\n", optopt);
            usage(stderr);
            return 2;
        }
        if (parse_opt(&o, opt, optarg) < 0) {
            fprintf(stderr, "echo_load: -%c '%s': out of range or not a number\n",
                    opt, optarg);
            return 2;
        }
    }
    if (optind < argc || o.port == 0 || o.threads > o.conns) {
        usage(stderr);
        return 2;
    }
    return bench(&o);
}
