/* slow.c — a slow application on libprefork: each request blocks its worker for a set time, like a busy web app. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prefork.h"

/*
 * It answers any HTTP request with "ok\n" after blocking its worker for
 * --work MS (default 10), then closes the connection: one connection, one
 * request, like a pool of classic blocking servers. It models the handlers
 * that make the distribution mode matter: while a worker blocks, it cannot
 * accept, and whatever it has already taken waits behind the request.
 *
 * usage: slow [-l ADDR]... [-w N] [--mode shared|reuseport|dispatch] [--work MS]
 */

#define HEAD_MAX 8192

struct req {
    pf_worker *w;
    size_t len;
    char buf[HEAD_MAX];
};

static long work_ms = 10;

static void finish(struct req *r, int fd)
{
    pf_worker_close_conn(r->w, fd);
    free(r);
}

static void block_for(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The request is in: work (blocking), answer, close. */
static void answer(struct req *r, int fd)
{
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 3\r\nConnection: close\r\n\r\nok\n";
    pf_worker_set_activity(r->w, "working");
    block_for(work_ms);
    pf_worker_set_activity(r->w, NULL);
    if (write(fd, reply, sizeof reply - 1) == (ssize_t)sizeof reply - 1)
        pf_worker_count(r->w, 1, sizeof reply - 1);
    finish(r, fd);
}

static void on_read(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    struct req *r = ud;
    for (;;) {
        ssize_t n = read(fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0 || (r->len += (size_t)n) >= sizeof r->buf - 1) {
            finish(r, fd); /* closed, failed, or a head too big */
            return;
        }
        r->buf[r->len] = '\0';
        if (strstr(r->buf, "\r\n\r\n")) {
            answer(r, fd);
            return;
        }
    }
}

static void on_conn(pf_worker *w, int fd, const struct sockaddr *peer, socklen_t len, void *ud)
{
    (void)peer, (void)len, (void)ud;
    struct req *r = malloc(sizeof *r);
    if (!r) {
        pf_worker_close_conn(w, fd);
        return;
    }
    r->w = w;
    r->len = 0;
    if (pf_loop_add(pf_worker_loop(w), fd, PF_EV_READ, on_read, r) < 0)
        finish(r, fd);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"workers", required_argument, NULL, 'w'},
        {"mode", required_argument, NULL, 'm'},   {"work", required_argument, NULL, 'k'},
        {0, 0, 0, 0},
    };
    struct pf_config cfg;
    struct pf_service svc = {.on_conn = on_conn};
    const char *why, *addrs[PF_MAX_LISTENERS];
    int naddrs = 0, opt;
    pf_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "l:w:", opts, NULL)) != -1) {
        if (opt == 'l' && naddrs < PF_MAX_LISTENERS) {
            addrs[naddrs++] = optarg;
        } else if ((opt == 'w' && pf_config_set(&cfg, "workers", optarg, &why) < 0) ||
                   (opt == 'm' && pf_config_set(&cfg, "mode", optarg, &why) < 0)) {
            fprintf(stderr, "slow: '%s': %s\n", optarg, why);
            return 2;
        } else if (opt == 'k') {
            char *end;
            work_ms = strtol(optarg, &end, 10);
            if (*end || work_ms < 0 || work_ms > 60000) {
                fprintf(stderr, "slow: --work '%s': must be ms from 0 to 60000\n", optarg);
                return 2;
            }
        } else if (opt != 'w' && opt != 'm') {
            fprintf(stderr, "usage: slow [-l ADDR]... [-w N] [--mode M] [--work MS]\n");
            return 2;
        }
    }
    if (naddrs == 0)
        addrs[naddrs++] = "127.0.0.1:7002";
    pf_pool *pool;
    int err = pf_pool_new(&pool, &cfg, &svc);
    if (err < 0) {
        fprintf(stderr, "slow: %s\n", strerror(-err));
        return 1;
    }
    for (int i = 0; err == 0 && i < naddrs; i++)
        if ((err = pf_pool_listen(pool, addrs[i])) < 0)
            fprintf(stderr, "slow: cannot listen on %s: %s\n", addrs[i], strerror(-err));
    if (err == 0)
        err = pf_pool_run(pool);
    pf_pool_free(pool);
    return err < 0 ? 1 : 0;
}
