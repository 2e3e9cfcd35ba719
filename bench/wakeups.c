/* wakeups.c — counts how many workers a listener wakes per connection, from a running master's scoreboard. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_support.h"
#include "prefork.h"

/*
 * With every worker idle in epoll_wait on the same listening socket, one
 * incoming connection should wake one worker. Without EPOLLEXCLUSIVE it
 * wakes all of them: the thundering herd. This tool opens connections one
 * at a time, with a pause between them so that every worker is back asleep,
 * and counts in two ways:
 *
 *   wakeups   the scoreboard's counter: how often a listener event reached
 *             a worker's code. It cannot see the herd: a worker woken after
 *             another has taken the connection finds the listener no longer
 *             ready, and epoll_wait goes back to sleep inside the kernel
 *             without returning. So this stays low either way (1.0 to
 *             1.6 measured with a full herd of 8).
 *   woken     how many workers were scheduled at all: after each connection
 *             the workers' voluntary context switches (/proc/PID/status) are
 *             read, and every worker whose count moved was woken. 1 means no
 *             herd; with W workers, a full herd gives W. A worker's own
 *             heartbeat timer adds a little (it ticks twice a second).
 *
 * The figures are differences between readings before and after, so
 * earlier traffic does not count.
 */

#define MAX_CONNS 1000000
#define IO_TIMEOUT_MS 5000
#define READY_TIMEOUT_MS 10000
/* After the last echo, a worker woken in vain may not have run yet. */
#define SETTLE_MS 100

struct opts {
    const char *host;
    int port;
    pid_t master;
    long conns;
    long gap_us;
};

struct board {
    struct pf_slot_info *s;
    int n;
};

/* The workers' context switch counters, read after every connection. */
struct probe {
    int n;
    pid_t pid[PF_MAX_WORKERS];
    int fd[PF_MAX_WORKERS];
    uint64_t last[PF_MAX_WORKERS];
    uint64_t woken[PF_MAX_WORKERS]; /* connections that woke this worker */
    uint64_t spread[PF_MAX_WORKERS + 1]; /* connections that woke k workers */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- one connection ---- */

static int wait_for(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    while ((r = poll(&p, 1, IO_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

static int dial(const struct pf_addr *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int err = 0, soerr = 0;
    socklen_t len = sizeof soerr;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
        return fd;
    if (errno != EINPROGRESS)
        err = -errno;
    else if ((err = wait_for(fd, POLLOUT)) < 0)
        ;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        err = -errno;
    else
        err = -soerr;
    if (err == 0)
        return fd;
    close(fd);
    return err;
}

/* Connect, send one byte, read it back, close. Reading the echo proves a
 * worker accepted the connection before the next one is opened. */
static int exchange(const struct pf_addr *a, const char **what)
{
    char b = 'w', r = 0;
    int fd = dial(a), err = 0;
    *what = "connect";
    if (fd < 0)
        return fd;
    *what = "send";
    if (send(fd, &b, 1, MSG_NOSIGNAL) != 1) {
        err = -errno;
        goto out;
    }
    *what = "read";
    if ((err = wait_for(fd, POLLIN)) < 0)
        goto out;
    ssize_t n = read(fd, &r, 1);
    err = n < 0 ? -errno : n == 0 ? -ECONNRESET : r != b ? -EBADMSG : 0;
out:
    close(fd);
    return err;
}

/* ---- the scoreboard ---- */

static int board_read(pf_scoreboard *sb, struct board *b)
{
    b->s = calloc(PF_MAX_WORKERS, sizeof *b->s);
    if (!b->s)
        return -ENOMEM;
    b->n = pf_scoreboard_read(sb, b->s, PF_MAX_WORKERS);
    return b->n;
}

static int board_all_idle(pf_scoreboard *sb)
{
    struct board b;
    int n = board_read(sb, &b), idle = 0;
    for (int i = 0; i < n; i++)
        idle += b.s[i].state == PF_STATE_IDLE;
    free(b.s);
    return n > 0 && idle == n;
}

/* Wait until every worker is ready and has no connection. */
static int wait_idle(pf_scoreboard *sb)
{
    uint64_t give_up = now_ms() + READY_TIMEOUT_MS;
    while (!board_all_idle(sb)) {
        if (now_ms() >= give_up)
            return -ETIMEDOUT;
        sleep_us(10000);
    }
    return 0;
}

/* The same worker process in the earlier reading, or NULL if it was not
 * there then (respawned since: its counters started from zero). */
static const struct pf_slot_info *board_find(const struct board *b, pid_t pid)
{
    for (int i = 0; i < b->n; i++)
        if (b->s[i].pid == pid)
            return &b->s[i];
    return NULL;
}

/* Workers woken by the connections, per the probe, for the worker with pid
 * (-1 when unknown: -n 0, or a worker that started during the run). */
static long long probe_woken(const struct probe *pr, pid_t pid)
{
    for (int i = 0; pr && i < pr->n; i++)
        if (pr->pid[i] == pid)
            return (long long)pr->woken[i];
    return -1;
}

static void print_workers(const struct board *before, const struct board *after,
                          const struct probe *pr, uint64_t *acc, uint64_t *wk)
{
    printf("worker  pid      accepted  wakeups   woken\n");
    for (int i = 0; i < after->n; i++) {
        const struct pf_slot_info *s = &after->s[i];
        const struct pf_slot_info *old = board_find(before, s->pid);
        uint64_t a = s->accepted - (old ? old->accepted : 0);
        uint64_t w = s->wakeups - (old ? old->wakeups : 0);
        long long woken = probe_woken(pr, s->pid);
        char wbuf[24] = "-";
        if (woken >= 0)
            snprintf(wbuf, sizeof wbuf, "%lld", woken);
        printf("%-7d %-8d %-9llu %-9llu %s\n", s->index, (int)s->pid,
               (unsigned long long)a, (unsigned long long)w, wbuf);
        *acc += a;
        *wk += w;
    }
}

/* "1:990 2:10": how many connections woke 1 worker, 2 workers, ... */
static void print_spread(const struct probe *pr)
{
    printf("workers woken per connection (count:connections):");
    for (int k = 0; k <= pr->n; k++)
        if (pr->spread[k])
            printf(" %d:%llu", k, (unsigned long long)pr->spread[k]);
    printf("\n");
}

static void print_figures(const struct opts *o, const struct board *before,
                          const struct board *after, const struct probe *pr)
{
    uint64_t acc = 0, wk = 0, woken = 0;
    print_workers(before, after, pr, &acc, &wk);
    for (int i = 0; pr && i < pr->n; i++)
        woken += pr->woken[i];
    double ratio = acc ? (double)wk / (double)acc : 0;
    double wratio = o->conns ? (double)woken / (double)o->conns : 0;
    if (pr)
        print_spread(pr);
    printf("conns=%ld workers=%d accepted=%llu wakeups=%llu "
           "wakeups_per_conn=%.3f woken_per_conn=%.3f\n", o->conns, after->n,
           (unsigned long long)acc, (unsigned long long)wk, ratio, wratio);
    if (!pr) {
        printf("wakeups: since the workers started: %llu accepted, %llu "
               "wake-ups, %.3f per connection\n", (unsigned long long)acc,
               (unsigned long long)wk, ratio);
        return;
    }
    printf("wakeups: %ld connections one at a time on %d workers: %.3f "
           "listener wake-ups and %.3f workers woken per connection\n",
           o->conns, after->n, ratio, wratio);
}

/* ---- the kernel's view: context switches ---- */

/* voluntary_ctxt_switches of an open /proc/PID/status; pread at offset 0
 * makes the kernel generate the file afresh. */
static int ctxsw_read(int fd, uint64_t *out)
{
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *p = strstr(buf, "\nvoluntary_ctxt_switches:");
    if (!p)
        return -1;
    *out = strtoull(p + sizeof "\nvoluntary_ctxt_switches:" - 1, NULL, 10);
    return 0;
}

static int probe_open(struct probe *pr, const struct board *b)
{
    char path[64];
    memset(pr, 0, sizeof *pr);
    for (int i = 0; i < b->n; i++) {
        snprintf(path, sizeof path, "/proc/%d/status", (int)b->s[i].pid);
        pr->pid[i] = b->s[i].pid;
        pr->fd[i] = open(path, O_RDONLY | O_CLOEXEC);
        pr->n = i + 1;
        if (pr->fd[i] < 0 || ctxsw_read(pr->fd[i], &pr->last[i]) < 0) {
            fprintf(stderr, "wakeups: %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void probe_close(struct probe *pr)
{
    for (int i = 0; i < pr->n; i++)
        if (pr->fd[i] >= 0)
            close(pr->fd[i]);
    pr->n = 0;
}

/* After one connection: which workers have been scheduled since the last
 * sample? */
static void probe_sample(struct probe *pr)
{
    int k = 0;
    for (int i = 0; i < pr->n; i++) {
        uint64_t v;
        if (ctxsw_read(pr->fd[i], &v) < 0 || v == pr->last[i])
            continue;
        pr->last[i] = v;
        pr->woken[i]++;
        k++;
    }
    pr->spread[k]++;
}

/* ---- the run ---- */

static int open_conns(const struct opts *o, const struct pf_addr *a,
                      struct probe *pr)
{
    for (long i = 0; i < o->conns; i++) {
        const char *what;
        int err = exchange(a, &what);
        if (err < 0) {
            fprintf(stderr, "wakeups: connection %ld of %ld: %s: %s\n", i + 1,
                    o->conns, what, strerror(-err));
            return err;
        }
        sleep_us(o->gap_us);
        probe_sample(pr);
    }
    return 0;
}

/* -n 0: the counters since each worker started, no connection opened. */
static int counters_only(const struct opts *o, pf_scoreboard *sb)
{
    struct board none = {0}, now;
    if (board_read(sb, &now) < 0)
        return 1;
    print_figures(o, &none, &now, NULL);
    free(now.s);
    return 0;
}

static int measure(const struct opts *o, pf_scoreboard *sb)
{
    static struct probe pr;
    struct pf_addr a;
    struct board before = {0}, after = {0};
    int rc = 1, err;
    if (bench_resolve("wakeups", o->host, o->port, &a) < 0)
        return 2;
    if ((err = wait_idle(sb)) < 0) {
        fprintf(stderr, "wakeups: the workers did not all become idle: %s\n",
                strerror(-err));
        return 1;
    }
    if (board_read(sb, &before) < 0 || probe_open(&pr, &before) < 0 ||
        open_conns(o, &a, &pr) < 0)
        goto out;
    sleep_us(SETTLE_MS * 1000);
    if (board_read(sb, &after) < 0)
        goto out;
    print_figures(o, &before, &after, &pr);
    rc = 0;
out:
    probe_close(&pr);
    free(before.s);
    free(after.s);
    return rc;
}

/* ---- command line ---- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: wakeups -m MASTER_PID [-p PORT] [-h HOST] [-n CONNS] [-g GAP_US]\n"
            "  -m PID     the prefork master whose scoreboard to read (required)\n"
            "  -p PORT    the port it serves an echo service on (required if CONNS > 0)\n"
            "  -h HOST    IPv4 or IPv6 literal, or localhost (default 127.0.0.1)\n"
            "  -n CONNS   connections to open, one after another (default 1000);\n"
            "             0 only prints the scoreboard's counters\n"
            "  -g GAP_US  pause after each connection, in us (default 1000)\n"
            "Exit status: 0 ok, 1 a connection or the scoreboard failed, 2 usage.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    long v;
    int opt;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":h:p:m:n:g:")) != -1) {
        int bad = 0;
        if (opt == 'h')
            o->host = optarg;
        else if (opt == 'p')
            bad = bench_parse_long(optarg, 1, 65535, &v) < 0 || !(o->port = (int)v);
        else if (opt == 'm')
            bad = bench_parse_long(optarg, 1, INT32_MAX, &v) < 0 || !(o->master = (pid_t)v);
        else if (opt == 'n')
            bad = bench_parse_long(optarg, 0, MAX_CONNS, &o->conns) < 0;
        else if (opt == 'g')
            bad = bench_parse_long(optarg, 0, 1000000, &o->gap_us) < 0;
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "wakeups: bad option or value -%c\n",
                    opt == ':' || opt == '?' ? optopt : opt);
            return -1;
        }
    }
    return optind < argc || !o->master || (o->conns && !o->port) ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.host = "127.0.0.1", .conns = 1000, .gap_us = 1000};
    if (parse_args(argc, argv, &o) < 0) {
        usage(stderr);
        return 2;
    }
    pf_scoreboard *sb;
    int err = pf_scoreboard_open(o.master, &sb);
    if (err < 0) {
        fprintf(stderr, "wakeups: scoreboard of pid %d: %s\n", (int)o.master,
                strerror(-err));
        return 1;
    }
    int rc = o.conns ? measure(&o, sb) : counters_only(&o, sb);
    pf_scoreboard_close(sb);
    return rc;
}
