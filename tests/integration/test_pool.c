/* test_pool.c — integration tests of a running pool: the echo example and the crashy helper, driven over loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define ECHO "examples/echo"
#define CRASHY "tests/helpers/crashy"
#define START_MS 20000 /* generous: a slow machine under ASan */
#define EXIT_MS 20000

TestSuite(pool, .fini = ts_cleanup);

/* Start echo on a free loopback port and wait until its n workers are ready;
 * returns the port, with the workers' pids in pids. */
static int echo_ready(struct ts_proc *m, int n, pid_t *pids)
{
    int port = ts_wait_port(m, START_MS);
    ts_assert(port > 0, "no start-up line with a port: %s", strerror(-port));
    int err = ts_wait_ready(m->pid, n, pids, START_MS);
    ts_assert(err == 0, "%d workers not ready: %s", n, strerror(-err));
    return port;
}

/* One echoed round trip of n bytes on fd, checked byte for byte. */
static void round_trip(int fd, size_t n, uint64_t seed)
{
    unsigned char *out = malloc(n), *in = malloc(n);
    cr_assert(out && in);
    ts_fill(out, n, seed);
    int err = ts_send_all(fd, out, n, 10000);
    ts_assert(err == 0, "send: %s", strerror(-err));
    err = ts_recv_exact(fd, in, n, 10000);
    ts_assert(err == 0, "recv: %s", strerror(-err));
    ts_assert(memcmp(in, out, n) == 0, "echoed bytes differ");
    free(out);
    free(in);
}

/* A connection a worker has accepted for sure: it echoed something. */
static int open_conn(int port)
{
    int fd = ts_connect_tcp(port, 10000);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    round_trip(fd, 100, 1);
    return fd;
}

static void expect_exit(struct ts_proc *m, int timeout_ms, int code)
{
    int err = ts_wait_exit(m, timeout_ms);
    ts_assert(err == 0, "%s (pid %d) did not exit within %d ms", m->name, (int)m->pid,
              timeout_ms);
    ts_assert(WIFEXITED(m->status) && WEXITSTATUS(m->status) == code,
              "%s: wait status 0x%x, expected exit %d", m->name, m->status, code);
}

static void expect_dead(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        ts_assert(!ts_pid_alive(pids[i]), "worker pid %d still alive", (int)pids[i]);
}

/* Any process left by a pool comes to the test process (a subreaper). */
static void expect_no_children(void)
{
    pid_t kids[8];
    int n = ts_children(getpid(), kids, 8);
    ts_assert(n == 0, "%d processes left behind, first pid %d", n, n > 0 ? (int)kids[0] : 0);
}

/* ------------------------------------------------------------------------ */
/* 200 concurrent clients                                                   */
/* ------------------------------------------------------------------------ */

#define NCLIENTS 200
#define BIG (64 * 1024)
#define CONNECT_BATCH 10

struct client {
    int fd;
    bool over; /* finished, connection kept open */
    size_t sent, got;
    unsigned char out[BIG], in[BIG];
};

static void client_open(struct client *c, int port, int i)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((in_port_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ts_fill(c->out, BIG, 1000 + (uint64_t)i);
    c->sent = c->got = 0;
    c->over = false;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(c->fd, 0, "socket: %s", strerror(errno));
    int r = connect(c->fd, (struct sockaddr *)&sin, sizeof sin);
    ts_assert(r == 0 || errno == EINPROGRESS, "connect %d: %s", i, strerror(errno));
}

/* Move a client on after poll said revents; false when it failed. */
static bool client_step(struct client *c, short revents, int i)
{
    if ((revents & POLLOUT) && c->sent < BIG) {
        ssize_t n = send(c->fd, c->out + c->sent, BIG - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            cr_log_error("client %d: send: %s", i, strerror(errno));
            return false;
        }
        c->sent += n > 0 ? (size_t)n : 0;
    }
    if (revents & (POLLIN | POLLERR | POLLHUP)) {
        ssize_t n = recv(c->fd, c->in + c->got, BIG - c->got, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            cr_log_error("client %d: recv after %zu bytes: %s", i, c->got,
                         n == 0 ? "end of stream" : strerror(errno));
            return false;
        }
        c->got += n > 0 ? (size_t)n : 0;
    }
    return true;
}

static bool same(const unsigned char *got, const unsigned char *want, size_t n, int i)
{
    for (size_t k = 0; k < n; k++) {
        if (got[k] != want[k]) {
            cr_log_error("client %d: byte %zu of %zu differs", i, k, n);
            return false;
        }
    }
    return true;
}

/* One poll loop for every client; returns how many finished correctly.
 * Clients connect a batch per round while the earlier ones already send,
 * so connections arrive while workers are busy echoing: with one listener
 * shared in EPOLLEXCLUSIVE mode the kernel wakes the first waiting worker,
 * and one that is never busy would take every connection. A finished client
 * keeps its connection open, so in the end all of them are connected at once. */
static int run_clients(struct client *cl, int n, int port, int64_t deadline)
{
    struct pollfd pfd[NCLIENTS];
    int idx[NCLIENTS], done = 0, opened = 0;
    for (;;) {
        for (int b = 0; b < CONNECT_BATCH && opened < n; b++, opened++)
            client_open(&cl[opened], port, opened);
        int k = 0;
        for (int i = 0; i < opened; i++) {
            if (cl[i].over)
                continue;
            short ev = POLLIN | (cl[i].sent < BIG ? POLLOUT : 0);
            pfd[k] = (struct pollfd){.fd = cl[i].fd, .events = ev};
            idx[k++] = i;
        }
        int64_t left = deadline - ts_now_ms();
        if ((k == 0 && opened == n) || left <= 0)
            return done;
        ts_assert(poll(pfd, (nfds_t)k, (int)left) >= 0, "poll: %s", strerror(errno));
        for (int j = 0; j < k; j++) {
            struct client *c = &cl[idx[j]];
            bool ok = pfd[j].revents == 0 || client_step(c, pfd[j].revents, idx[j]);
            if (ok && c->got < BIG)
                continue;
            done += ok && same(c->in, c->out, BIG, idx[j]);
            c->over = true;
        }
    }
}

static void expect_spread(pid_t master, int nworkers, int nclients)
{
    struct pf_slot_info s[16];
    int n = ts_board(master, s, 16);
    ts_assert(n >= nworkers, "scoreboard: %d slots (%s)", n, n < 0 ? strerror(-n) : "");
    uint64_t sum = 0, active = 0;
    int busy = 0;
    for (int i = 0; i < n; i++) {
        active += s[i].active;
        cr_log_info("worker %d (pid %d): accepted %llu, woken %llu times", s[i].index,
                    (int)s[i].pid, (unsigned long long)s[i].accepted,
                    (unsigned long long)s[i].wakeups);
        sum += s[i].accepted;
        busy += s[i].accepted > 0;
    }
    ts_assert(busy > 1, "only %d worker accepted connections", busy);
    ts_assert(sum >= (uint64_t)nclients, "accepted %llu < %d", (unsigned long long)sum,
              nclients);
    ts_assert(active == (uint64_t)nclients, "%llu connections open, expected %d",
              (unsigned long long)active, nclients);
}

Test(pool, echoes_200_concurrent_clients, .timeout = 60)
{
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "4", "-v");
    pid_t pids[4];
    int port = echo_ready(m, 4, pids);
    struct client *cl = malloc(NCLIENTS * sizeof *cl);
    cr_assert_not_null(cl);
    for (int i = 0; i < NCLIENTS; i++)
        cl[i].fd = -1;
    int done = run_clients(cl, NCLIENTS, port, ts_now_ms() + 40000);
    ts_assert(done == NCLIENTS, "%d of %d clients got their bytes back", done, NCLIENTS);
    expect_spread(m->pid, 4, NCLIENTS);
    for (int i = 0; i < NCLIENTS; i++)
        close(cl[i].fd);
    free(cl);
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, EXIT_MS, 0);
}

/* ------------------------------------------------------------------------ */
/* kill -9 of a worker under load                                           */
/* ------------------------------------------------------------------------ */

#define INFLIGHT 8
#define SHORT 100
#define BEFORE 100 /* connections served before the kill */
#define AFTER 300  /* connections opened after it, all of which must work */

struct shortc {
    int fd;       /* -1: free */
    bool after;   /* opened once the killed worker was dead */
    uint64_t id;
    size_t sent, got;
    unsigned char in[SHORT];
};

struct load {
    int port;
    uint64_t next_id;
    int phase;        /* 0 before the kill, 1 victim dying, 2 after */
    int before_done, after_opened, after_ok, failed_before;
    char error[256];  /* the first failure of an "after" connection */
    struct shortc c[INFLIGHT];
};

static void short_finish(struct load *l, struct shortc *c, const char *why)
{
    if (!why) {
        unsigned char want[SHORT];
        ts_fill(want, SHORT, c->id);
        why = memcmp(want, c->in, SHORT) == 0 ? NULL : "echoed bytes differ";
    }
    if (why && c->after && !l->error[0])
        snprintf(l->error, sizeof l->error, "connection %llu: %s",
                 (unsigned long long)c->id, why);
    if (c->after)
        l->after_ok += !why;
    else if (why)
        l->failed_before++;
    else
        l->before_done++;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Open a new short connection in a free place, if the phase allows it. */
static void short_open(struct load *l, struct shortc *c)
{
    if (l->phase == 1 || (l->phase == 2 && l->after_opened == AFTER))
        return;
    c->id = l->next_id++;
    c->after = l->phase == 2;
    l->after_opened += c->after;
    c->sent = c->got = 0;
    int fd = ts_connect_tcp(l->port, 10000);
    c->fd = fd;
    if (fd < 0)
        short_finish(l, c, strerror(-fd));
}

static void short_send(struct load *l, struct shortc *c)
{
    unsigned char out[SHORT];
    ts_fill(out, SHORT, c->id);
    ssize_t n = send(c->fd, out + c->sent, SHORT - c->sent, MSG_NOSIGNAL);
    if (n > 0)
        c->sent += (size_t)n;
    else if (errno != EAGAIN)
        short_finish(l, c, strerror(errno));
}

static void short_step(struct load *l, struct shortc *c, short revents)
{
    if (c->sent < SHORT) {
        short_send(l, c);
        return;
    }
    if (!(revents & (POLLIN | POLLERR | POLLHUP)))
        return;
    ssize_t n = recv(c->fd, c->in + c->got, SHORT - c->got, 0);
    if (n == 0) {
        short_finish(l, c, "end of stream before the echo");
    } else if (n < 0) {
        if (errno != EAGAIN)
            short_finish(l, c, strerror(errno));
    } else {
        c->got += (size_t)n;
        if (c->got == SHORT)
            short_finish(l, c, NULL);
    }
}

/* One round: fill the free places, poll a little, move connections on. */
static void load_round(struct load *l)
{
    struct pollfd pfd[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++) {
        struct shortc *c = &l->c[i];
        if (c->fd < 0)
            short_open(l, c);
        short ev = c->sent < SHORT ? POLLOUT : POLLIN;
        pfd[i] = (struct pollfd){.fd = c->fd, .events = ev};
    }
    if (poll(pfd, INFLIGHT, 5) <= 0)
        return;
    for (int i = 0; i < INFLIGHT; i++)
        if (l->c[i].fd >= 0 && pfd[i].revents)
            short_step(l, &l->c[i], pfd[i].revents);
}

static bool load_idle(const struct load *l)
{
    for (int i = 0; i < INFLIGHT; i++)
        if (l->c[i].fd >= 0)
            return false;
    return true;
}

/* The pid now in the slot of worker index, other than old (0 if none). */
static pid_t replacement(pf_scoreboard *sb, int index, pid_t old)
{
    struct pf_slot_info s[16];
    int n = pf_scoreboard_read(sb, s, 16);
    for (int i = 0; i < n; i++)
        if (s[i].index == index && s[i].pid > 0 && s[i].pid != old)
            return s[i].pid;
    return 0;
}

/* The worker that accepted the most: killing it hurts the load most. */
static struct pf_slot_info busiest(pf_scoreboard *sb)
{
    struct pf_slot_info s[16], best = {0};
    int n = pf_scoreboard_read(sb, s, 16);
    for (int i = 0; i < n; i++)
        if (s[i].pid > 0 && (best.pid == 0 || s[i].accepted > best.accepted))
            best = s[i];
    return best;
}

Test(pool, kill_9_worker_under_load, .timeout = 60)
{
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "-v");
    pid_t pids[2], fresh = 0;
    struct load l = {.port = echo_ready(m, 2, pids), .next_id = 1};
    for (int i = 0; i < INFLIGHT; i++)
        l.c[i].fd = -1;
    pf_scoreboard *sb;
    int err = pf_scoreboard_open(m->pid, &sb);
    ts_assert(err == 0, "pf_scoreboard_open: %s", strerror(-err));
    struct pf_slot_info victim = {0};
    int64_t killed_at = 0, replaced_at = 0, deadline = ts_now_ms() + 45000;
    while (ts_now_ms() < deadline && !(l.phase == 2 && load_idle(&l) &&
                                       l.after_opened == AFTER && fresh)) {
        load_round(&l);
        if (l.phase == 0 && l.before_done >= BEFORE) {
            victim = busiest(sb);
            ts_assert(ts_kill(victim.pid, SIGKILL) == 0, "kill %d", (int)victim.pid);
            killed_at = ts_now_ms();
            l.phase = 1;
        }
        if (l.phase == 1 && !ts_pid_alive(victim.pid))
            l.phase = 2;
        if (killed_at && !fresh && (fresh = replacement(sb, victim.index, victim.pid)) != 0)
            replaced_at = ts_now_ms();
    }
    pf_scoreboard_close(sb);
    cr_log_info("killed worker %d (pid %d, %llu accepted); before: %d ok, %d failed; "
                "replaced after %lld ms", victim.index, (int)victim.pid,
                (unsigned long long)victim.accepted, l.before_done, l.failed_before,
                (long long)(replaced_at - killed_at));
    ts_assert(l.phase == 2, "never got to the kill (%d served)", l.before_done);
    ts_assert(fresh != 0, "worker %d (pid %d) was not replaced", victim.index,
              (int)victim.pid);
    ts_assert(replaced_at - killed_at <= 1000, "replaced after %lld ms",
              (long long)(replaced_at - killed_at));
    ts_assert(l.after_ok == AFTER, "%d of %d connections after the kill served; %s",
              l.after_ok, AFTER, l.error[0] ? l.error : "the rest did not finish");
    char re[128];
    snprintf(re, sizeof re, "worker %d \\(pid %d\\) killed by signal 9 \\(SIGKILL\\)",
             victim.index, (int)victim.pid);
    ts_assert(ts_wait_log(m, re, 5000, NULL, 0) == 0, "no log line /%s/", re);
    pid_t now[2];
    ts_assert(ts_wait_ready(m->pid, 2, now, START_MS) == 0, "pool not back to 2 workers");
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, EXIT_MS, 0);
    expect_dead(now, 2);
}

/* ------------------------------------------------------------------------ */
/* Workers that fail to start                                               */
/* ------------------------------------------------------------------------ */

/* Milliseconds since midnight from a log line's "...THH:MM:SS.mmmZ". */
static int64_t line_ms(const char *line)
{
    int h, mi, s, ms;
    const char *t = strchr(line, 'T');
    cr_assert(t && sscanf(t, "T%d:%d:%d.%dZ", &h, &mi, &s, &ms) == 4, "bad line %s", line);
    return ((h * 60 + mi) * 60 + s) * 1000LL + ms;
}

/* The times of the lines of text holding needle; returns the count. */
static int line_times(const char *text, const char *needle, int64_t *out, int max)
{
    int n = 0;
    for (const char *s = text; (s = strstr(s, needle)) != NULL; s++) {
        const char *bol = s;
        while (bol > text && bol[-1] != '\n')
            bol--;
        if (n < max)
            out[n] = line_ms(bol);
        n++;
    }
    return n;
}

/* The respawn lines in order, each wait honoured, then giving up. */
static void expect_backoff(const char *log, const char *death, int failures)
{
    static const char *const waits[] = {"in 100 ms", "in 200 ms", "in 400 ms", "in 800 ms"};
    const char *at = log;
    for (int i = 0; i < failures - 1; i++) {
        char want[96];
        snprintf(want, sizeof want, "respawning worker 0 %s (%d quick exit", waits[i], i + 1);
        const char *hit = strstr(at, want);
        ts_assert(hit != NULL, "no \"%s\" after the previous respawn line", want);
        at = hit;
    }
    char give_up[96];
    snprintf(give_up, sizeof give_up, "worker 0 failed to start %d times in a row; giving up",
             failures);
    ts_assert(strstr(at, give_up) != NULL, "no \"%s\" after the respawns", give_up);
    int64_t t[8];
    int n = line_times(log, death, t, 8);
    ts_assert(n == failures, "%d lines with \"%s\", expected %d", n, death, failures);
    for (int i = 1; i < n; i++) {
        int64_t gap = t[i] - t[i - 1] + (t[i] < t[i - 1] ? 86400000 : 0);
        ts_assert(gap >= (100 << (i - 1)) - 20, "death %d came %lld ms after the one before",
                  i + 1, (long long)gap);
    }
}

Test(pool, start_failures_back_off_then_give_up, .timeout = 60)
{
    struct ts_proc *m = TS_START(CRASHY, "-w", "1", "--max-start-failures", "4");
    expect_exit(m, 30000, 1);
    char *log = ts_log(m);
    cr_assert_not_null(log);
    expect_backoff(log, "exited with status 1 after", 4);
    free(log);
    ts_assert(ts_log_count(m, "respawning") == 3, "not exactly 3 respawns");
    /* Each death reported to the service, with its status; never ready. */
    ts_assert(ts_log_count(m, "event: worker 0 \\(pid [0-9]+\\) of generation 1 exited, "
                              "wait status 0x100") == 4, "not 4 exit events with status 1");
    ts_assert(ts_log_count(m, "event: ready") == 0, "a ready event");
    expect_no_children();
}

Test(pool, workers_that_abort_back_off_then_give_up, .timeout = 60)
{
    struct ts_proc *m = TS_START(CRASHY, "-w", "2", "--max-start-failures", "3", "--abort");
    expect_exit(m, 30000, 1);
    ts_assert(ts_log_count(m, "killed by signal 6 \\(SIGABRT\\)") >= 3, "no SIGABRT deaths");
    ts_assert(ts_log_count(m, "event: worker [01] \\(pid [0-9]+\\) of generation 1 exited, "
                              "wait status 0x(6|86)$") ==
                  ts_log_count(m, "killed by signal 6"), "an exit event per SIGABRT death");
    ts_assert(ts_log_count(m, "failed to start 3 times in a row; giving up") >= 1,
              "did not give up");
    expect_no_children();
}

/* ------------------------------------------------------------------------ */
/* Stopping                                                                 */
/* ------------------------------------------------------------------------ */

/* After a stop began: connecting is refused (not queued) within 10 s. */
static void expect_refused(int port)
{
    int64_t deadline = ts_now_ms() + 10000;
    int fd = 0;
    while (ts_now_ms() < deadline && (fd = ts_connect_tcp(port, 2000)) != -ECONNREFUSED) {
        if (fd >= 0)
            close(fd);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    ts_assert(fd == -ECONNREFUSED, "new connections still accepted after TERM (%s)",
              fd < 0 ? strerror(-fd) : "connected");
}

Test(pool, term_finishes_a_slow_connection, .timeout = 60)
{
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "-v");
    pid_t pids[2];
    int port = echo_ready(m, 2, pids);
    int fd = ts_connect_tcp(port, 10000);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    enum { HALF = 3000 };
    unsigned char out[2 * HALF], in[2 * HALF];
    ts_fill(out, sizeof out, 7);
    /* The first half comes back: a worker holds the connection. */
    ts_assert(ts_send_all(fd, out, HALF, 10000) == 0, "send first half");
    ts_assert(ts_recv_exact(fd, in, HALF, 10000) == 0, "first half not echoed");
    ts_assert(ts_kill(m->pid, SIGTERM) == 0, "kill TERM");
    expect_refused(port);
    ts_assert(ts_send_all(fd, out + HALF, HALF, 10000) == 0, "send second half");
    ts_assert(ts_recv_exact(fd, in + HALF, HALF, 10000) == 0, "second half not echoed");
    ts_assert(memcmp(in, out, sizeof out) == 0, "echoed bytes differ");
    close(fd);
    expect_exit(m, EXIT_MS, 0);
    ts_assert(ts_log_count(m, "SIGTERM: stopping gracefully") == 1, "no TERM line");
    expect_dead(pids, 2);
    expect_no_children();
}

Test(pool, graceful_timeout_kills_a_connection_that_stays, .timeout = 60)
{
    struct ts_proc *m =
        TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "1", "--graceful-timeout", "1", "-v");
    pid_t pid;
    int fd = open_conn(echo_ready(m, 1, &pid));
    int64_t t0 = ts_now_ms();
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, 10000, 0);
    int64_t took = ts_now_ms() - t0;
    ts_assert(took >= 900, "stopped after %lld ms, before the graceful timeout",
              (long long)took);
    ts_assert(ts_log_count(m, "graceful timeout: killing 1 worker$") == 1,
              "no \"graceful timeout: killing 1 worker\" line");
    expect_dead(&pid, 1);
    expect_no_children();
    close(fd);
}

Test(pool, quit_stops_at_once, .timeout = 60)
{
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "-v");
    pid_t pids[2];
    int fd = open_conn(echo_ready(m, 2, pids));
    ts_kill(m->pid, SIGQUIT);
    expect_exit(m, 10000, 0);
    ts_assert(ts_log_count(m, "SIGQUIT: stopping now") == 1, "no QUIT line");
    expect_dead(pids, 2);
    expect_no_children();
    close(fd);
}

Test(pool, second_int_stops_at_once, .timeout = 60)
{
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "-v");
    pid_t pids[2];
    int fd = open_conn(echo_ready(m, 2, pids));
    int64_t t0 = ts_now_ms();
    ts_kill(m->pid, SIGINT);
    /* Two signals sent together may merge into one: wait for the first. */
    ts_assert(ts_wait_log(m, "SIGINT: stopping gracefully", 10000, NULL, 0) == 0,
              "first INT not handled");
    ts_kill(m->pid, SIGINT);
    expect_exit(m, 10000, 0);
    ts_assert(ts_log_count(m, "second SIGINT: stopping now") == 1, "no second INT line");
    ts_assert(ts_now_ms() - t0 < 20000, "two INTs took the graceful way");
    expect_dead(pids, 2);
    expect_no_children();
    close(fd);
}

Test(pool, workers_die_with_a_killed_master, .timeout = 60)
{
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "-v");
    pid_t pids[2];
    int fd = open_conn(echo_ready(m, 2, pids));
    ts_assert(ts_kill(m->pid, SIGKILL) == 0, "kill -9 master");
    int err = ts_wait_pids_dead(pids, 2, 1000);
    ts_assert(err == 0, "a worker outlived its master by 1 s (pids %d %d)", (int)pids[0],
              (int)pids[1]);
    ts_assert(ts_wait_exit(m, 5000) == 0 && WIFSIGNALED(m->status), "master not reaped");
    close(fd);
}

Test(pool, unix_listener, .timeout = 60)
{
    char dir[256], path[300], spec[320];
    ts_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/echo.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);
    struct ts_proc *m = TS_START(ECHO, "-l", spec, "-w", "2", "-v");
    char re[400];
    snprintf(re, sizeof re, "started 2 workers \\(shared\\) on unix:%s$", path);
    ts_assert(ts_wait_log(m, re, START_MS, NULL, 0) == 0, "no start-up line /%s/", re);
    int fd = ts_connect_unix(path, 10000);
    ts_assert(fd >= 0, "connect %s: %s", path, strerror(-fd));
    round_trip(fd, 5000, 3);
    close(fd);
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, EXIT_MS, 0);
    struct stat st;
    ts_assert(stat(path, &st) < 0 && errno == ENOENT, "%s still there after TERM", path);
}

/* ------------------------------------------------------------------------ */
/* cpu-affinity                                                             */
/* ------------------------------------------------------------------------ */

/* The CPUs this test may run on, in order; returns their count. */
static int my_cpus(int *cpus, cpu_set_t *mask)
{
    ts_assert(sched_getaffinity(0, sizeof *mask, mask) == 0, "sched_getaffinity: %s",
              strerror(errno));
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, mask))
            cpus[n++] = c;
    return n;
}

/* The first two CPUs this test may run on, as a --cpu-affinity list;
 * skips the test on a machine (or a mask) with one CPU. */
static void two_cpus(char list[static 32], int *cpus, cpu_set_t *mask)
{
    int n = my_cpus(cpus, mask);
    if (n < 2)
        cr_skip_test("needs 2 CPUs, has %d", n);
    snprintf(list, 32, "%d,%d", cpus[0], cpus[1]);
}

/* The one CPU pid may run on, or -1 when it may run on none or several. */
static int pinned_cpu(pid_t pid)
{
    cpu_set_t m;
    ts_assert(sched_getaffinity(pid, sizeof m, &m) == 0, "sched_getaffinity(%d): %s",
              (int)pid, strerror(errno));
    if (CPU_COUNT(&m) != 1)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &m))
            return c;
    return -1;
}

/* Wait until worker index runs as a ready process other than old. */
static pid_t ready_replacement(struct ts_proc *m, int n, int index, pid_t old)
{
    char re[128];
    snprintf(re, sizeof re, "worker %d \\(pid %d\\) killed by signal 9", index, (int)old);
    ts_assert(ts_wait_log(m, re, START_MS, NULL, 0) == 0, "no log line /%s/", re);
    pid_t now[8] = {0};
    int64_t deadline = ts_now_ms() + START_MS;
    while (ts_now_ms() < deadline)
        if (ts_wait_ready(m->pid, n, now, START_MS) == 0 && now[index] != old)
            return now[index];
    ts_assert(0, "worker %d (pid %d) was not replaced", index, (int)old);
    return 0;
}

Test(pool, cpu_affinity_auto_pins_worker_i_to_the_ith_allowed_cpu, .timeout = 60)
{
    static int cpus[CPU_SETSIZE];
    cpu_set_t mine, master;
    int n = my_cpus(cpus, &mine);
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "3", "--cpu-affinity",
                                 "auto");
    pid_t pids[3];
    echo_ready(m, 3, pids);
    for (int i = 0; i < 3; i++)
        ts_assert(pinned_cpu(pids[i]) == cpus[i % n], "worker %d (pid %d) on CPU %d, not %d",
                  i, (int)pids[i], pinned_cpu(pids[i]), cpus[i % n]);
    ts_assert(sched_getaffinity(m->pid, sizeof master, &master) == 0 &&
                  CPU_EQUAL(&master, &mine),
              "the master's own CPU mask changed");
    ts_assert(ts_kill(pids[1], SIGKILL) == 0, "kill %d", (int)pids[1]);
    pid_t fresh = ready_replacement(m, 3, 1, pids[1]);
    ts_assert(pinned_cpu(fresh) == cpus[1 % n], "replacement of worker 1 on CPU %d, not %d",
              pinned_cpu(fresh), cpus[1 % n]);
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, EXIT_MS, 0);
}

Test(pool, cpu_affinity_list_pins_every_worker_to_the_listed_cpu, .timeout = 60)
{
    static int cpus[CPU_SETSIZE];
    cpu_set_t mine;
    int n = my_cpus(cpus, &mine);
    char last[16];
    snprintf(last, sizeof last, "%d", cpus[n - 1]);
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "--cpu-affinity",
                                 last);
    pid_t pids[2];
    int fd = open_conn(echo_ready(m, 2, pids));
    for (int i = 0; i < 2; i++)
        ts_assert(pinned_cpu(pids[i]) == cpus[n - 1], "worker %d on CPU %d, not %d", i,
                  pinned_cpu(pids[i]), cpus[n - 1]);
    close(fd);
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, EXIT_MS, 0);
}

/* Connections accepted by worker index, from the scoreboard. */
static uint64_t accepted_by(pid_t master, int index)
{
    struct pf_slot_info s[8];
    int n = ts_board(master, s, 8);
    for (int i = 0; i < n; i++)
        if (s[i].index == index && s[i].pid > 0)
            return s[i].accepted;
    return 0;
}

/* On loopback the SYN is handled on the connecting CPU: from each of the
 * two CPUs the test moves to, every connection must go to the worker
 * pinned there (worker k on cpus[k]). */
static void expect_steered(struct ts_proc *m, int port, const int *cpus, const cpu_set_t *mine)
{
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 2; k++) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpus[k], &one);
            ts_assert(sched_setaffinity(0, sizeof one, &one) == 0, "pinning the test: %s",
                      strerror(errno));
            uint64_t before[2] = {accepted_by(m->pid, 0), accepted_by(m->pid, 1)};
            int fds[8];
            for (int i = 0; i < 8; i++)
                fds[i] = open_conn(port);
            sched_setaffinity(0, sizeof *mine, mine);
            uint64_t got = accepted_by(m->pid, k) - before[k];
            uint64_t other = accepted_by(m->pid, 1 - k) - before[1 - k];
            ts_assert(got == 8 && other == 0,
                      "from CPU %d: worker %d took %llu of 8, worker %d took %llu", cpus[k], k,
                      (unsigned long long)got, 1 - k, (unsigned long long)other);
            for (int i = 0; i < 8; i++)
                close(fds[i]);
        }
}

Test(pool, reuseport_with_cpu_affinity_steers_connections_to_the_worker_on_their_cpu,
     .timeout = 60)
{
    static int cpus[CPU_SETSIZE];
    cpu_set_t mine;
    char list[32];
    two_cpus(list, cpus, &mine);
    struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "--mode", "reuseport",
                                 "--cpu-affinity", list);
    pid_t pids[2];
    expect_steered(m, echo_ready(m, 2, pids), cpus, &mine);
    /* A third worker shares a CPU: the kernel's hash takes over. */
    ts_assert(ts_kill(m->pid, SIGTTIN) == 0, "TTIN");
    const char *re = "3 workers on 2 CPUs: connections spread by hash, not by CPU";
    ts_assert(ts_wait_log(m, re, START_MS, NULL, 0) == 0, "no log line /%s/", re);
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, EXIT_MS, 0);
}

/* A pool of 2 steered workers started with so few descriptors that worker
 * 1's sockets fail to bind; which limit does that depends on the build
 * (sanitizers open more), so each from the lowest up is tried. Returns the
 * master once worker 1 has failed 4 times in a row (its next try is 1.6 s
 * away), or NULL. No limit may crash the master. */
static struct ts_proc *pool_short_of_fds(const char *list)
{
    for (int limit = 4; limit < 4 + 15; limit++) {
        ts_limit_fds(limit);
        struct ts_proc *m = TS_START(ECHO, "-l", "127.0.0.1:0", "-w", "2", "--mode",
                                     "reuseport", "--cpu-affinity", list, "-v");
        ts_limit_fds(0);
        /* Every row is bound (or failed) before the start line. */
        if (ts_wait_log(m, "started 2 workers", START_MS, NULL, 0) == 0 &&
            ts_log_count(m, "binding .* again \\(SO_REUSEPORT\\)") > 0 &&
            ts_wait_log(m, "respawning worker 1 in 1600 ms", START_MS, NULL, 0) == 0)
            return m;
        ts_kill(m->pid, SIGKILL);
        ts_assert(ts_wait_exit(m, EXIT_MS) == 0, "limit %d: master still running", limit);
        ts_assert(WIFEXITED(m->status) || WTERMSIG(m->status) == SIGKILL,
                  "limit %d: the master died of signal %d", limit, WTERMSIG(m->status));
    }
    return NULL;
}

/* Worker 1's sockets fail to bind (out of descriptors); with descriptors
 * back, a TTIN's worker 2 binds first and takes place 1 in the group, and
 * worker 1, respawned, place 2. After TTOU each CPU's connections must
 * still go to its worker: a row is steered to by its place, not its index
 * (by index, CPU 1's would go to worker 2's row, which the master polls and
 * passes on to anyone). */
Test(pool, reuseport_rows_bound_out_of_order_are_steered_by_their_place, .timeout = 120)
{
    static int cpus[CPU_SETSIZE];
    cpu_set_t mine;
    char list[32];
    two_cpus(list, cpus, &mine);
    struct ts_proc *m = pool_short_of_fds(list);
    ts_assert(m, "no descriptor limit made worker 1's sockets fail to bind");
    struct rlimit plenty;
    getrlimit(RLIMIT_NOFILE, &plenty); /* the test's own */
    ts_assert(prlimit(m->pid, RLIMIT_NOFILE, &plenty, NULL) == 0, "prlimit: %s",
              strerror(errno));
    ts_assert(ts_kill(m->pid, SIGTTIN) == 0, "TTIN");
    const char *res[] = {"worker 2's sockets bound: place 1", "worker 1's sockets bound: place 2"};
    for (int i = 0; i < 2; i++)
        ts_assert(ts_wait_log(m, res[i], START_MS, NULL, 0) == 0, "no log line /%s/", res[i]);
    pid_t pids[3];
    int port = echo_ready(m, 3, pids);
    ts_assert(ts_kill(m->pid, SIGTTOU) == 0, "TTOU");
    ts_assert(ts_wait_log(m, "SIGTTOU: 2 workers", START_MS, NULL, 0) == 0, "no TTOU line");
    expect_steered(m, port, cpus, &mine);
    ts_kill(m->pid, SIGTERM);
    expect_exit(m, EXIT_MS, 0);
}
