/* tls_load.c — HTTPS load that wrk cannot make: a new connection per request with full or resumed handshakes, and idle TLS connections held open. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_support.h"

/*
 * -m full:   C connections at a time, each: connect, a full handshake, GET
 *            PATH with Connection: close, read to the end, close; again.
 * -m resume: the same, each connection resuming the session its slot had
 *            last (the server's ticket): what a returning browser does.
 * -m idle:   N connections, each one GET (keep-alive) read whole, then held
 *            open and silent; "ready N" once all are, then held until -d
 *            seconds pass or TERM. The caller reads the server's memory.
 * -t T (full, resume): T processes share the C connections, as wrk's
 *            threads do, so the client can take more than one CPU; their
 *            figures are summed.
 * The last line is key=value figures for scripts. Certificates are not
 * verified: the benchmark's are self-signed.
 */

#define MAX_CONNS 100000
#define IDLE_BATCH 64
#define BUF 16384

enum step { S_CONNECT, S_HANDSHAKE, S_WRITE, S_READ, S_HELD };

struct slot {
    int fd;
    SSL *ssl;
    SSL_SESSION *sess;
    enum step step;
    size_t got, want; /* idle mode: body bytes to read (want 0: not known yet) */
    char head[1024];
    size_t head_len;
};

static struct {
    const char *prog, *path, *mode;
    struct pf_addr addr;
    long conns, idle_n, procs;
    double seconds;
    SSL_CTX *ctx;
    int ep;
    struct slot *slots;
    long done, resumed, errors, held, dropped, opened;
    int reported;
    volatile sig_atomic_t stop;
} g = {.path = "/1k.bin", .mode = "full", .conns = 16, .idle_n = 1000, .procs = 1, .seconds = 5};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_stop(int sig)
{
    (void)sig;
    g.stop = 1;
}

static void conn_error(long id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_error(long id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bench_conn_error(&g.reported, g.prog, id, fmt, ap);
    va_end(ap);
    g.errors++;
}

static bool idle_mode(void) { return strcmp(g.mode, "idle") == 0; }

static int slot_open(struct slot *s)
{
    s->fd = socket(g.addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    int one = 1; /* as wrk: the Finished and the request are two small writes */
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&g.addr.ss, g.addr.len) < 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(s->fd);
        return err;
    }
    s->ssl = SSL_new(g.ctx);
    SSL_set_fd(s->ssl, s->fd);
    SSL_set_connect_state(s->ssl);
    if (s->sess && strcmp(g.mode, "resume") == 0)
        SSL_set_session(s->ssl, s->sess);
    s->step = S_CONNECT;
    s->got = s->want = s->head_len = 0;
    g.opened++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = s};
    return epoll_ctl(g.ep, EPOLL_CTL_ADD, s->fd, &ev) < 0 ? -errno : 0;
}

static void slot_close(struct slot *s, bool clean)
{
    if (clean && SSL_is_init_finished(s->ssl)) {
        /* Without our close_notify, OpenSSL marks the session not resumable. */
        SSL_shutdown(s->ssl);
        ERR_clear_error();
        if (strcmp(g.mode, "resume") == 0) {
            SSL_SESSION_free(s->sess);
            s->sess = SSL_get1_session(s->ssl);
        }
    }
    SSL_free(s->ssl);
    s->ssl = NULL;
    close(s->fd);
    s->fd = -1;
}

/* Idle mode: the body's length, once the head is in. */
static void parse_head(struct slot *s, const char *p, size_t n)
{
    size_t k = n < sizeof s->head - 1 - s->head_len ? n : sizeof s->head - 1 - s->head_len;
    memcpy(s->head + s->head_len, p, k);
    s->head_len += k;
    s->head[s->head_len] = '\0';
    char *end = strstr(s->head, "\r\n\r\n"), *cl = strcasestr(s->head, "content-length:");
    if (end && cl)
        s->want = (size_t)(end + 4 - s->head) + strtoul(cl + 15, NULL, 10);
}

/* Advance one connection as far as it goes: 1 finished (a request done,
 * or held), 0 waiting, -1 failed. */
static int slot_step(struct slot *s)
{
    char buf[BUF];
    static char req[512];
    if (!req[0])
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", g.path,
                 idle_mode() ? "" : "Connection: close\r\n");
    for (;;) {
        int r = 0;
        switch (s->step) {
        case S_CONNECT:
        case S_HANDSHAKE:
            s->step = S_HANDSHAKE;
            r = SSL_do_handshake(s->ssl);
            if (r == 1) {
                g.resumed += SSL_session_reused(s->ssl);
                s->step = S_WRITE;
                continue;
            }
            break;
        case S_WRITE:
            r = SSL_write(s->ssl, req, (int)strlen(req));
            if (r > 0) {
                s->step = S_READ;
                continue;
            }
            break;
        case S_READ:
            r = SSL_read(s->ssl, buf, sizeof buf);
            if (r > 0) {
                s->got += (size_t)r;
                if (idle_mode()) {
                    if (!s->want)
                        parse_head(s, buf, (size_t)r);
                    if (s->want && s->got >= s->want) {
                        s->step = S_HELD;
                        return 1;
                    }
                }
                continue;
            }
            if (!idle_mode() && s->got && (SSL_get_error(s->ssl, r) == SSL_ERROR_ZERO_RETURN ||
                                           SSL_get_error(s->ssl, r) == SSL_ERROR_SYSCALL))
                return 1; /* the end of a Connection: close response */
            break;
        case S_HELD:
            r = SSL_read(s->ssl, buf, sizeof buf);
            if (r > 0)
                continue;
            break;
        }
        int e = SSL_get_error(s->ssl, r);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
}

static void on_event(struct slot *s)
{
    long id = s - g.slots;
    int r = slot_step(s);
    if (s->step == S_HELD) {
        if (r < 0) {
            g.dropped++;
            g.held--;
            slot_close(s, false);
        } else if (r == 1) {
            g.held++;
        }
        return;
    }
    if (r == 0)
        return;
    if (r < 0)
        conn_error(id, "failed in step %d", (int)s->step);
    else
        g.done++;
    slot_close(s, r > 0);
    if (!idle_mode() && !g.stop) {
        int err = slot_open(s);
        if (err < 0)
            conn_error(id, "connect: %s", strerror(-err));
    }
}

static void pump(double until)
{
    struct epoll_event evs[256];
    while (!g.stop && now_s() < until) {
        int n = epoll_wait(g.ep, evs, 256, 100);
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr);
        if (idle_mode() && g.held + g.dropped + g.errors >= g.idle_n)
            return;
        if (idle_mode() && g.opened < g.idle_n && g.opened - g.held - g.errors < IDLE_BATCH) {
            struct slot *s = &g.slots[g.opened];
            int err = slot_open(s);
            if (err < 0)
                conn_error(g.opened, "connect: %s", strerror(-err));
        }
    }
}

static int setup(long nslots)
{
    g.ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.slots = calloc((size_t)nslots, sizeof *g.slots);
    return g.ctx && g.ep >= 0 && g.slots ? 0 : -1;
}

/* One process's share of the load: its figures, or -1. */
static int load_share(double *t)
{
    if (setup(g.conns) < 0)
        return -1;
    for (long i = 0; i < g.conns; i++)
        if (slot_open(&g.slots[i]) < 0)
            return -1;
    double t0 = now_s();
    pump(t0 + g.seconds);
    *t = now_s() - t0;
    return 0;
}

/* T processes, each with its share of the connections, each reporting
 * "done resumed errors" on a pipe. */
static int run_load(void)
{
    double t = 0;
    if (g.procs == 1) {
        if (load_share(&t) < 0)
            return -1;
    } else {
        int fds[2];
        if (pipe(fds) < 0)
            return -1;
        long conns = g.conns;
        for (long i = 0; i < g.procs; i++) {
            pid_t pid = fork();
            if (pid < 0)
                return -1;
            if (pid == 0) {
                close(fds[0]);
                g.conns = conns / g.procs + (i < conns % g.procs);
                if (load_share(&t) < 0)
                    _exit(1);
                dprintf(fds[1], "%ld %ld %ld %f\n", g.done, g.resumed, g.errors, t);
                _exit(0);
            }
        }
        close(fds[1]);
        FILE *f = fdopen(fds[0], "r");
        long d, r, e, got = 0;
        double ti;
        while (f && got < g.procs && fscanf(f, "%ld %ld %ld %lf", &d, &r, &e, &ti) == 4) {
            g.done += d, g.resumed += r, g.errors += e, got++;
            t = ti > t ? ti : t; /* the longest share's run */
        }
        if (f)
            fclose(f);
        if (got < g.procs) {
            fprintf(stderr, "%s: %ld of %ld processes failed\n", g.prog, g.procs - got, g.procs);
            g.errors++;
        }
        while (wait(NULL) > 0)
            ;
    }
    printf("mode=%s requests=%ld seconds=%.2f rps=%.0f resumed=%ld errors=%ld\n", g.mode, g.done,
           t, g.done / t, g.resumed, g.errors);
    return 0;
}

static int run_idle(void)
{
    for (long i = 0; i < IDLE_BATCH && i < g.idle_n; i++)
        if (slot_open(&g.slots[g.opened]) < 0)
            return -1;
    pump(now_s() + 120);
    printf("ready %ld\n", g.held);
    fflush(stdout);
    long ready = g.held;
    pump(now_s() + g.seconds);
    printf("held=%ld dropped=%ld errors=%ld ready=%ld\n", g.held, g.dropped, g.errors, ready);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: %s -p PORT [-h HOST] [-m full|resume|idle] [-c CONNS] [-t PROCS]"
                    " [-n IDLE] [-d SECONDS] [-u PATH]\n", g.prog);
    return 2;
}

int main(int argc, char **argv)
{
    long port = 0, v;
    const char *host = "127.0.0.1";
    int o;
    g.prog = argv[0];
    while ((o = getopt(argc, argv, "p:h:m:c:n:d:u:t:")) != -1) {
        switch (o) {
        case 'p': if (bench_parse_long(optarg, 1, 65535, &port) < 0) return usage(); break;
        case 'h': host = optarg; break;
        case 'm': g.mode = optarg; break;
        case 'c': if (bench_parse_long(optarg, 1, 10000, &g.conns) < 0) return usage(); break;
        case 'n': if (bench_parse_long(optarg, 1, MAX_CONNS, &g.idle_n) < 0) return usage(); break;
        case 'd': if (bench_parse_long(optarg, 1, 86400, &v) < 0) return usage(); g.seconds = (double)v; break;
        case 'u': g.path = optarg; break;
        case 't': if (bench_parse_long(optarg, 1, 64, &g.procs) < 0) return usage(); break;
        default: return usage();
        }
    }
    if (!port || (strcmp(g.mode, "full") && strcmp(g.mode, "resume") && !idle_mode()))
        return usage();
    if (bench_resolve(g.prog, host, (int)port, &g.addr) < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    if (idle_mode() && setup(g.idle_n) < 0)
        return 1;
    int r = idle_mode() ? run_idle() : run_load();
    return r < 0 ? 1 : 0;
}
