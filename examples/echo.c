/* echo.c — the smallest complete libprefork service: echoes every byte back, on a pool of workers. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "prefork.h"

/* One connection. Reading stops while a reply is pending, so a client that
 * sends faster than it reads is throttled by TCP, not buffered here. */
struct conn {
    pf_worker *w;
    size_t off, len;
    char buf[16384];
};

static void conn_close(struct conn *c, int fd)
{
    pf_worker_close_conn(c->w, fd);
    free(c);
}

/* Write what is pending; returns 1 when all went, 0 when the socket is full,
 * -1 when the connection failed. */
static int flush_pending(struct conn *c, int fd)
{
    while (c->off < c->len) {
        ssize_t n = write(fd, c->buf + c->off, c->len - c->off);
        if (n < 0)
            return errno == EAGAIN ? 0 : errno == EINTR ? 0 : -1;
        c->off += (size_t)n;
        pf_worker_count(c->w, 0, (uint64_t)n);
    }
    c->off = c->len = 0;
    return 1;
}

static void conn_io(pf_loop *loop, int fd, unsigned events, void *ud)
{
    struct conn *c = ud;
    (void)events;
    for (;;) {
        int r = flush_pending(c, fd);
        if (r < 0)
            break;
        if (r == 0) {
            pf_loop_mod(loop, fd, PF_EV_WRITE);
            return;
        }
        ssize_t n = read(fd, c->buf, sizeof c->buf);
        if (n > 0) {
            c->len = (size_t)n;
            pf_worker_count(c->w, 1, 0);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pf_loop_mod(loop, fd, PF_EV_READ);
            return;
        }
        break; /* end of stream or error */
    }
    conn_close(c, fd);
}

static void on_conn(pf_worker *w, int fd, const struct sockaddr *peer,
                    socklen_t peerlen, void *ud)
{
    (void)peerlen, (void)ud;
    struct conn *c = malloc(sizeof *c);
    if (!c) {
        pf_worker_close_conn(w, fd);
        return;
    }
    c->w = w;
    c->off = c->len = 0;
    /* A reply may go out in two writes (a full buffer, then the rest): with
     * Nagle the second would wait for the client's delayed ACK. */
    int one = 1;
    if (peer && peer->sa_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (pf_loop_add(pf_worker_loop(w), fd, PF_EV_READ, conn_io, c) < 0)
        conn_close(c, fd);
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: echo [-l ADDR]... [-w N] [options]\n"
            "  -l, --listen ADDR          HOST:PORT, [V6]:PORT, :PORT, unix:PATH, fd:N\n"
            "                             (repeatable; default 127.0.0.1:7000)\n"
            "  -w, --workers N            worker processes (default: online CPUs)\n"
            "      --mode MODE            shared, reuseport or dispatch\n"
            "      --backlog N            listen backlog (default: net.core.somaxconn)\n"
            "      --max-conns N          connections per worker (default 10000)\n"
            "      --graceful-timeout SEC drain deadline on TERM (default 60)\n"
            "      --max-start-failures N give up after N failed starts (default 5)\n"
            "      --cpu-affinity off|auto|LIST  pin worker i to the i-th CPU (default off)\n"
            "      --error-log FILE|-     where log lines go (default: stderr)\n"
            "  -q, --quiet / -v, --verbose\n");
}

static int usage_error(const char *name, const char *value, const char *why)
{
    fprintf(stderr, "echo: --%s '%s': %s\n", name, value, why);
    return 2;
}

/* Bind every -l address; with none, take systemd's sockets or the default. */
static int listen_all(pf_pool *pool, const char **addrs, int n)
{
    static const char *const fallback = "127.0.0.1:7000";
    if (n == 0 && pf_pool_listen_systemd(pool) > 0)
        return 0;
    if (n == 0)
        addrs = (const char **)&fallback, n = 1;
    for (int i = 0; i < n; i++) {
        const char *why;
        struct pf_addr a;
        if (pf_addr_parse(addrs[i], &a, &why) < 0)
            return usage_error("listen", addrs[i], why);
        int err = pf_pool_listen(pool, addrs[i]);
        if (err < 0) {
            fprintf(stderr, "echo: cannot listen on %s: %s\n", addrs[i], strerror(-err));
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"mode", required_argument, NULL, 1},
        {"backlog", required_argument, NULL, 1},
        {"max-conns", required_argument, NULL, 1},
        {"graceful-timeout", required_argument, NULL, 1},
        {"max-start-failures", required_argument, NULL, 1},
        {"cpu-affinity", required_argument, NULL, 1},
        {"error-log", required_argument, NULL, 2},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct pf_config cfg;
    struct pf_service svc = {.on_conn = on_conn};
    const char *listen[PF_MAX_LISTENERS], *why, *error_log = NULL;
    int nlisten = 0, opt, idx = 0;
    pf_config_init(&cfg);
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":l:w:qvh", opts, &idx)) != -1) {
        const char *name = opt == 'w' ? "workers" : opts[idx].name;
        switch (opt) {
        case 'l':
            if (nlisten == PF_MAX_LISTENERS)
                return usage_error("listen", optarg, "too many listeners");
            listen[nlisten++] = optarg;
            break;
        case 'w':
        case 1:
            if (pf_config_set(&cfg, name, optarg, &why) < 0)
                return usage_error(name, optarg, why);
            break;
        case 2:
            error_log = optarg;
            break;
        case 'q':
            cfg.log_level = PF_LOG_WARN;
            break;
        case 'v':
            cfg.log_level = PF_LOG_DEBUG;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "echo: option '%s' needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "echo: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "echo: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    pf_log_set_level(cfg.log_level);
    int err = pf_log_open(error_log);
    if (err < 0) {
        fprintf(stderr, "echo: cannot open %s: %s\n", error_log, strerror(-err));
        return 1;
    }
    pf_pool *pool;
    err = pf_pool_new(&pool, &cfg, &svc);
    if (err < 0) {
        fprintf(stderr, "echo: %s\n", strerror(-err));
        return 1;
    }
    int status = listen_all(pool, listen, nlisten);
    if (status != 0) {
        pf_pool_free(pool);
        return status;
    }
    err = pf_pool_run(pool);
    pf_pool_free(pool);
    return err < 0 ? 1 : 0;
}
