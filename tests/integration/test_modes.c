/* test_modes.c — the distribution modes: shared mode's balance, dispatch and reuseport; none loses a connection. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_support.h"
#include "support.h"

TestSuite(modes, .fini = hs_cleanup, .timeout = 60);

static const char get_ok[] = "GET /ok.txt HTTP/1.0\r\n\r\n";

/* One HTTP/1.0 request on a new connection: whether it got 200 "ok". */
static bool fetch_ok(int port)
{
    int fd = ts_connect_tcp(port, HS_IO_MS);
    if (fd < 0)
        return false;
    struct hs_buf b = {0};
    bool ok = ts_send_all(fd, get_ok, strlen(get_ok), HS_IO_MS) == 0 &&
              hs_read_to_eof(fd, &b, HS_IO_MS) == 0 && b.len > 12 &&
              memcmp(b.p, "HTTP/1.1 200", 12) == 0 && strstr(b.p, "\r\n\r\nok\n");
    free(b.p);
    close(fd);
    return ok;
}

/* One line to an echo-like server on a new connection; whether it came back. */
static bool echo_line(int port, const char *line)
{
    int fd = ts_connect_tcp(port, HS_IO_MS);
    if (fd < 0)
        return false;
    size_t n = strlen(line);
    char back[256];
    bool ok = ts_send_all(fd, line, n, HS_IO_MS) == 0 &&
              ts_recv_exact(fd, back, n, HS_IO_MS) == 0 && memcmp(back, line, n) == 0;
    close(fd);
    return ok;
}

static int start_http(struct ts_proc **srv, const char *workers)
{
    hs_tree("modes");
    hs_put_text("ok.txt", "ok\n");
    return HS_SERVE(srv, "-w", workers, "--mode", "dispatch", "--access-log", "off", hs_root);
}

Test(modes, dispatch_serves_http_and_spreads_the_load)
{
    struct ts_proc *srv;
    int port = start_http(&srv, "2");
    pid_t pids[2];
    ts_assert(ts_wait_ready(srv->pid, 2, pids, HS_START_MS) == 0, "workers not ready");
    for (int i = 0; i < 200; i++)
        ts_assert(fetch_ok(port), "request %d failed", i);
    struct pf_slot_info s[4];
    ts_assert(ts_board(srv->pid, s, 4) == 2, "expected two workers");
    /* Idle workers take turns: each gets a fair part. */
    for (int i = 0; i < 2; i++)
        ts_assert(s[i].accepted >= 60, "worker %d took %llu of 200", s[i].index,
                  (unsigned long long)s[i].accepted);
    /* Workers hold no listener in this mode: only the master does. */
    unsigned long inode = ts_listener_inode(port);
    ts_assert(inode != 0, "no listening socket on port %d in /proc/net/tcp", port);
    ts_assert(ts_holds_socket(srv->pid, inode), "the master does not hold the listener");
    ts_assert(!ts_holds_socket(pids[0], inode) && !ts_holds_socket(pids[1], inode),
              "a worker holds the listener");
    ts_assert(ts_log_count(srv, "started 2 workers \\(dispatch\\)") == 1, "no dispatch start line");
}

/* 300 echo connections on 2 workers in mode; worker victim is killed with
 * SIGKILL at the 100th: every connection must still be answered. Returns
 * the server, for what the test checks afterwards. */
static struct ts_proc *kill_9_under_load(const char *mode, int victim)
{
    struct ts_proc *srv = TS_START("examples/echo", "-l", "127.0.0.1:0", "-w", "2", "--mode",
                                   mode);
    int port = ts_wait_port(srv, HS_START_MS);
    ts_assert(port > 0, "no port");
    pid_t pids[2];
    ts_assert(ts_wait_ready(srv->pid, 2, pids, HS_START_MS) == 0, "workers not ready");
    for (int i = 0; i < 300; i++) {
        if (i == 100)
            ts_kill(pids[victim], SIGKILL);
        ts_assert(echo_line(port, "hello\n"), "connection %d failed", i);
    }
    return srv;
}

Test(modes, dispatch_kill_9_under_load_loses_nothing)
{
    struct ts_proc *srv = kill_9_under_load("dispatch", 0);
    ts_assert(ts_wait_log(srv, "worker 0 \\(pid [0-9]+\\) killed by signal 9", HS_IO_MS, NULL, 0) == 0,
              "the kill was not logged");
}

Test(modes, dispatch_recovers_what_a_dead_worker_had_not_taken)
{
    struct ts_proc *srv = TS_START("tests/helpers/hang", "-l", "127.0.0.1:0", "-w", "1", "--mode",
                                   "dispatch");
    int port = ts_wait_port(srv, HS_START_MS);
    ts_assert(port > 0, "no port");
    pid_t pid;
    ts_assert(ts_wait_ready(srv->pid, 1, &pid, HS_START_MS) == 0, "worker not ready");
    int stuck = hs_connect(port);
    ts_assert(ts_send_all(stuck, "hang\n", 5, HS_IO_MS) == 0, "send");
    /* Once the worker blocks for ever, what the master sends it waits,
     * untaken, in its socket. */
    struct pf_slot_info slot;
    int64_t deadline = ts_now_ms() + HS_IO_MS;
    while (ts_board(srv->pid, &slot, 1) != 1 || strcmp(slot.activity, "hang") != 0) {
        ts_assert(ts_now_ms() < deadline, "the worker never hung");
        poll(NULL, 0, 20);
    }
    enum { N = 5 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = hs_connect(port);
        ts_assert(ts_send_all(fds[i], "hello\n", 6, HS_IO_MS) == 0, "send");
    }
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    ts_assert(poll(&p, 1, 300) == 0, "a blocked worker answered");
    ts_kill(pid, SIGKILL);
    ts_assert(ts_wait_log(srv, "dispatching again [0-9]+ connections? worker 0 had not taken",
                          HS_IO_MS, NULL, 0) == 0, "nothing was dispatched again");
    for (int i = 0; i < N; i++) {
        char back[6];
        ts_assert(ts_recv_exact(fds[i], back, 6, HS_IO_MS) == 0 && memcmp(back, "hello\n", 6) == 0,
                  "connection %d was lost", i);
        close(fds[i]);
    }
    close(stuck);
}

Test(modes, dispatch_survives_reload_and_resize)
{
    struct ts_proc *srv;
    int port = start_http(&srv, "2");
    pid_t first[2];
    ts_assert(ts_wait_ready(srv->pid, 2, first, HS_START_MS) == 0, "workers not ready");
    int failed = 0;
    for (int i = 0; i < 400; i++) {
        if (i == 100)
            ts_kill(srv->pid, SIGHUP);
        if (i == 200)
            ts_kill(srv->pid, SIGTTIN);
        if (i == 300)
            ts_kill(srv->pid, SIGTTOU);
        failed += !fetch_ok(port);
    }
    ts_assert(failed == 0, "%d of 400 requests failed", failed);
    ts_assert(ts_wait_log(srv, "generation 2 ready", HS_IO_MS, NULL, 0) == 0, "no reload");
    ts_assert(ts_wait_log(srv, "SIGTTOU: 2 workers", HS_IO_MS, NULL, 0) == 0, "no resize");
    ts_assert(ts_wait_pids_dead(first, 2, HS_IO_MS) == 0, "old workers still alive");
    ts_kill(srv->pid, SIGTERM);
    ts_assert(ts_wait_exit(srv, HS_START_MS) == 0 && WIFEXITED(srv->status) &&
                  WEXITSTATUS(srv->status) == 0,
              "master did not exit 0");
}

/* ---- shared ---- */

/* A new echo connection that has had one line echoed and stays open. */
static int held_echo(int port)
{
    int fd = ts_connect_tcp(port, HS_IO_MS);
    char back[3];
    if (fd >= 0 && (ts_send_all(fd, "hi\n", 3, HS_IO_MS) < 0 ||
                    ts_recv_exact(fd, back, 3, HS_IO_MS) < 0 || memcmp(back, "hi\n", 3) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The connections each of 2 workers holds, by index; false unless 2 found. */
static bool held_by(pid_t master, uint64_t held[2])
{
    struct pf_slot_info s[4];
    if (ts_board(master, s, 4) != 2)
        return false;
    for (int i = 0; i < 2; i++)
        held[s[i].index] = s[i].active;
    return true;
}

/* Long-lived connections pile up on the worker that happens to be awake.
 * With worker 1 stopped, worker 0 is over its share after 5 connections
 * and holds back, but still takes every connection the stopped one leaves
 * queued (each would otherwise hang): it ends up with all 24. Once worker
 * 1 runs again, worker 0 stays over its share (more than a quarter more
 * than worker 1's, plus 4) until worker 1 holds 16, so of the next 16
 * connections worker 0 takes none; without the rule it would take about
 * half. A few are allowed for a worker 1 slowed down at the wrong moment. */
Test(modes, shared_balances_long_connections_and_strands_none)
{
    struct ts_proc *srv = TS_START("examples/echo", "-l", "127.0.0.1:0", "-w", "2", "--mode",
                                   "shared");
    int port = ts_wait_port(srv, HS_START_MS);
    ts_assert(port > 0, "no port");
    pid_t pids[2];
    ts_assert(ts_wait_ready(srv->pid, 2, pids, HS_START_MS) == 0, "workers not ready");
    int fds[40];
    ts_assert(ts_kill(pids[1], SIGSTOP) == 0, "SIGSTOP");
    for (int i = 0; i < 24; i++) {
        fds[i] = held_echo(port);
        if (fds[i] < 0)
            ts_kill(pids[1], SIGCONT);
        ts_assert(fds[i] >= 0, "connection %d, worker 1 stopped: not served", i);
    }
    uint64_t held[2];
    ts_assert(held_by(srv->pid, held) && held[0] == 24 && held[1] == 0,
              "worker 0 should hold all 24, not %llu (worker 1: %llu)",
              (unsigned long long)held[0], (unsigned long long)held[1]);
    ts_assert(ts_kill(pids[1], SIGCONT) == 0, "SIGCONT");
    for (int i = 24; i < 40; i++)
        ts_assert((fds[i] = held_echo(port)) >= 0, "connection %d not served", i);
    ts_assert(held_by(srv->pid, held) && held[0] + held[1] == 40, "the board lost connections");
    ts_assert(held[0] <= 24 + 3, "worker 0, over its share, took %llu of 16 new connections",
              (unsigned long long)held[0] - 24);
    for (int i = 0; i < 40; i++)
        close(fds[i]);
}

/* ---- reuseport ---- */

Test(modes, reuseport_gives_each_worker_its_own_socket)
{
    hs_tree("modes");
    hs_put_text("ok.txt", "ok\n");
    struct ts_proc *srv;
    int port = HS_SERVE(&srv, "-w", "2", "--mode", "reuseport", "--access-log", "off", hs_root);
    pid_t pids[2];
    ts_assert(ts_wait_ready(srv->pid, 2, pids, HS_START_MS) == 0, "workers not ready");
    for (int i = 0; i < 100; i++)
        ts_assert(fetch_ok(port), "request %d failed", i);
    unsigned long ino[8];
    ts_assert(ts_listener_inodes(port, ino, 8) == 2, "expected two listening sockets");
    for (int k = 0; k < 2; k++) {
        ts_assert(ts_holds_socket(srv->pid, ino[k]), "the master does not own socket %d", k);
        ts_assert(ts_holds_socket(pids[0], ino[k]) != ts_holds_socket(pids[1], ino[k]),
                  "socket %d is not held by exactly one worker", k);
    }
}

Test(modes, reuseport_kill_9_under_load_loses_nothing)
{
    kill_9_under_load("reuseport", 1);
}

Test(modes, reuseport_shrinks_grows_and_reloads_without_loss)
{
    hs_tree("modes");
    hs_put_text("ok.txt", "ok\n");
    struct ts_proc *srv;
    int port = HS_SERVE(&srv, "-w", "3", "--mode", "reuseport", "--access-log", "off", hs_root);
    pid_t pids[3];
    ts_assert(ts_wait_ready(srv->pid, 3, pids, HS_START_MS) == 0, "workers not ready");
    int failed = 0;
    for (int i = 0; i < 600; i++) {
        if (i == 100)
            ts_kill(srv->pid, SIGTTOU); /* worker 2 goes; its socket stays */
        if (i == 250)
            ts_kill(srv->pid, SIGTTIN); /* a worker takes it back */
        if (i == 400)
            ts_kill(srv->pid, SIGHUP);
        failed += !fetch_ok(port);
    }
    ts_assert(failed == 0, "%d of 600 requests failed", failed);
    ts_assert(ts_wait_log(srv, "generation 2 ready", HS_IO_MS, NULL, 0) == 0, "no reload");
    unsigned long ino[8];
    ts_assert(ts_listener_inodes(port, ino, 8) == 3, "the sockets of three indexes should stay");
}
