/* classic.c — a classic blocking server on libprefork: each worker runs its own loop and serves one connection at a time. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "prefork.h"

/*
 * The "worker main of your own" way: the library forks and supervises, the
 * worker does the rest. Each worker waits in poll(2) on the listeners and
 * on the drain descriptor, accepts one connection, and serves it with plain
 * blocking calls: it reads one line and answers "worker N (pid P): LINE".
 * That is the shape of a pool of classic blocking servers (Apache prefork),
 * where a slow client holds a whole worker.
 *
 * usage: classic [-l ADDR]... [-w N] [-m shared|reuseport|dispatch]
 *        (default 127.0.0.1:7001)
 */

#define LINE_MAX_BYTES 4096
#define CLIENT_TIMEOUT_S 10
#define POLL_MS 500 /* also the heartbeat period */

/* Read one line (up to, and without, '\n'); -1 on error, timeout or EOF. */
static ssize_t read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            return n ? (ssize_t)n : -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

/* Blocking I/O with deadlines: a silent client cannot hold the worker. */
static int make_blocking(int fd)
{
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return -1;
    return 0;
}

static void serve_one(pf_worker *w, int fd)
{
    char line[LINE_MAX_BYTES], reply[LINE_MAX_BYTES + 64];
    if (make_blocking(fd) == 0 && read_line(fd, line, sizeof line) >= 0) {
        int len = snprintf(reply, sizeof reply, "worker %d (pid %d): %s\n",
                           pf_worker_index(w), (int)getpid(), line);
        if (len > 0 && write(fd, reply, (size_t)len) == len)
            pf_worker_count(w, 1, (uint64_t)len);
    }
    pf_worker_close_conn(w, fd);
}

/* Take at most one connection from whichever descriptor is ready (a
 * listener, or in dispatch mode the master's control socket). */
static void accept_one(pf_worker *w, const struct pollfd *pfd, int n)
{
    for (int i = 0; i < n; i++) {
        if (!(pfd[i].revents & POLLIN))
            continue;
        int fd = pf_worker_accept(w, pfd[i].fd, NULL, NULL);
        if (fd >= 0) {
            serve_one(w, fd);
            return;
        }
    }
}

static int worker_main(pf_worker *w, void *ud)
{
    (void)ud;
    const int *lfd;
    int n = pf_worker_listeners(w, &lfd);
    struct pollfd pfd[PF_MAX_LISTENERS + 1];
    for (int i = 0; i < n; i++)
        pfd[i] = (struct pollfd){.fd = lfd[i], .events = POLLIN};
    pfd[n] = (struct pollfd){.fd = pf_worker_drain_fd(w), .events = POLLIN};
    pf_worker_ready(w);
    while (!pf_worker_draining(w)) {
        pf_worker_heartbeat(w);
        int r = poll(pfd, (nfds_t)n + 1, POLL_MS);
        if (r < 0 && errno != EINTR)
            return 1;
        if (r > 0 && (pfd[n].revents & POLLIN) && pf_worker_poll_control(w))
            break; /* asked to stop: the connection in hand is finished already */
        if (r > 0)
            accept_one(w, pfd, n);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct pf_config cfg;
    struct pf_service svc = {.main = worker_main};
    const char *why, *addrs[PF_MAX_LISTENERS];
    int naddrs = 0, opt;
    pf_config_init(&cfg);
    while ((opt = getopt(argc, argv, "l:w:m:")) != -1) {
        const char *name = opt == 'w' ? "workers" : "mode";
        if (opt == 'l' && naddrs < PF_MAX_LISTENERS) {
            addrs[naddrs++] = optarg;
        } else if ((opt == 'w' || opt == 'm') && pf_config_set(&cfg, name, optarg, &why) < 0) {
            fprintf(stderr, "classic: -%c '%s': %s\n", opt, optarg, why);
            return 2;
        } else if (opt != 'w' && opt != 'm') {
            fprintf(stderr, "usage: classic [-l ADDR]... [-w N] [-m MODE]\n");
            return 2;
        }
    }
    if (naddrs == 0)
        addrs[naddrs++] = "127.0.0.1:7001";
    pf_pool *pool;
    int err = pf_pool_new(&pool, &cfg, &svc);
    for (int i = 0; err == 0 && i < naddrs; i++)
        if ((err = pf_pool_listen(pool, addrs[i])) < 0)
            fprintf(stderr, "classic: cannot listen on %s: %s\n", addrs[i], strerror(-err));
    if (err == 0)
        err = pf_pool_run(pool);
    pf_pool_free(pool);
    return err < 0 ? 1 : 0;
}
