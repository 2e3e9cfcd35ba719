/* hang.c — a test service: echoes a line per connection or hangs its worker on "hang"; its start-up can fail or be slow. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prefork.h"

/*
 * usage: hang [-l ADDR] [-w N] [--mode M] [--timeout SEC] [--ready-timeout SEC]
 *             [--fail-if FILE] [--slow-if FILE]
 * Each connection sends one line. "hang" marks the worker's activity as
 * "hang" and then blocks it for ever, so the master's watchdog must find it;
 * any other line is echoed back and the connection closed.
 * A worker's start-up (init) fails when the --fail-if FILE exists, and takes
 * SLOW_INIT_MS when the --slow-if FILE exists: a test creates the file
 * between the start and a HUP to make the reload fail. Exits 2 on a usage
 * error, 1 when the pool fails.
 */

#define LINE_MAX_BYTES 256
#define SLOW_INIT_MS 4000

struct conn {
    pf_worker *w;
    size_t len;
    char line[LINE_MAX_BYTES];
};

static const char *fail_if, *slow_if;

/* Sleep ms through signals (TERM is blocked in a worker's init anyway). */
static void nap(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int init(pf_worker *w, void *ud)
{
    (void)w, (void)ud;
    if (fail_if && access(fail_if, F_OK) == 0)
        return -EIO;
    if (slow_if && access(slow_if, F_OK) == 0)
        nap(SLOW_INIT_MS);
    return 0;
}

/* A hung worker: no heartbeat, no loop, only SIGKILL ends it. */
_Noreturn static void hang_for_ever(pf_worker *w)
{
    pf_worker_set_activity(w, "hang");
    for (;;)
        pause();
}

static void conn_close(struct conn *c, int fd)
{
    pf_worker_close_conn(c->w, fd);
    free(c);
}

/* A whole line came: hang, or echo it. The reply is short and the socket
 * empty, so one send takes it all or the connection is broken anyway. */
static void answer(struct conn *c, int fd)
{
    if (c->len == 5 && memcmp(c->line, "hang\n", 5) == 0)
        hang_for_ever(c->w);
    ssize_t n = send(fd, c->line, c->len, MSG_NOSIGNAL);
    pf_worker_count(c->w, 1, n > 0 ? (uint64_t)n : 0);
    conn_close(c, fd);
}

static void conn_read(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    struct conn *c = ud;
    for (;;) {
        ssize_t n = recv(fd, c->line + c->len, sizeof c->line - c->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            break; /* end of stream or error before a whole line */
        char *nl = memchr(c->line + c->len, '\n', (size_t)n);
        c->len += (size_t)n;
        if (nl) {
            c->len = (size_t)(nl - c->line) + 1;
            answer(c, fd);
            return;
        }
        if (c->len == sizeof c->line)
            break; /* too long for a line */
    }
    conn_close(c, fd);
}

static void on_conn(pf_worker *w, int fd, const struct sockaddr *peer, socklen_t len,
                    void *ud)
{
    (void)peer, (void)len, (void)ud;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        pf_worker_close_conn(w, fd);
        return;
    }
    c->w = w;
    if (pf_loop_add(pf_worker_loop(w), fd, PF_EV_READ, conn_read, c) < 0)
        conn_close(c, fd);
}

static int usage_error(const char *what)
{
    fprintf(stderr, "hang: %s\n", what);
    return 2;
}

static int run(const struct pf_config *cfg, const char *listen)
{
    struct pf_service svc = {.init = init, .on_conn = on_conn};
    pf_log_set_level(cfg->log_level);
    pf_pool *pool;
    int err = pf_pool_new(&pool, cfg, &svc);
    if (err == 0) {
        err = pf_pool_listen(pool, listen);
        if (err == 0)
            err = pf_pool_run(pool);
        pf_pool_free(pool);
    }
    if (err < 0)
        fprintf(stderr, "hang: %s\n", strerror(-err));
    return err < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"ready-timeout", required_argument, NULL, 'r'},
        {"fail-if", required_argument, NULL, 'f'},
        {"slow-if", required_argument, NULL, 's'},
        {"mode", required_argument, NULL, 'm'},
        {0, 0, 0, 0},
    };
    struct pf_config cfg;
    const char *listen = "127.0.0.1:0", *why;
    int opt;
    pf_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "l:w:", opts, NULL)) != -1) {
        const char *name = opt == 'w' ? "workers" : opt == 't' ? "timeout"
                         : opt == 'm' ? "mode" : "ready-timeout";
        if (opt == '?')
            return 2;
        if (opt == 'l')
            listen = optarg;
        else if (opt == 'f')
            fail_if = optarg;
        else if (opt == 's')
            slow_if = optarg;
        else if (pf_config_set(&cfg, name, optarg, &why) < 0)
            return usage_error(why);
    }
    if (optind < argc)
        return usage_error("unexpected argument");
    return run(&cfg, listen);
}
