/* test_limits.c — limits under pressure: send-stall timeout, connection cap, descriptor exhaustion, systemd notify. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_support.h"
#include "support.h"

TestSuite(limits, .fini = hs_cleanup, .timeout = 60);

static const char request[] = "GET /ok.txt HTTP/1.1\r\nHost: t\r\n\r\n";
static const char partial[] = "GET /ok.txt HTTP/1.1\r\nHost: t\r\n"; /* no final CRLF */

/* The one worker of a -w 1 pool, from the scoreboard, once it is up: the
 * port answers (connections queue in the backlog) before the worker runs. */
static struct pf_slot_info worker_of(pid_t master)
{
    pid_t pid;
    int err = ts_wait_ready(master, 1, &pid, HS_START_MS);
    ts_assert(err == 0, "the worker never came up: %s", strerror(-err));
    struct pf_slot_info s[4];
    int n = ts_board(master, s, 4);
    ts_assert(n == 1, "expected one worker, got %d (%s)", n, n < 0 ? strerror(-n) : "");
    return s[0];
}

/* Wait until the worker has `want` open connections. */
static void wait_active(pid_t master, uint64_t want)
{
    int64_t deadline = ts_now_ms() + HS_IO_MS;
    while (worker_of(master).active != want) {
        ts_assert(ts_now_ms() < deadline, "worker never had %llu connections (has %llu)",
                  (unsigned long long)want, (unsigned long long)worker_of(master).active);
        poll(NULL, 0, 20);
    }
}

/* Whether fd becomes readable within ms: a bounded observation window,
 * used only to check that nothing happens. */
static bool readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static void expect_ok(int fd)
{
    struct hs_buf b = {0};
    int err = hs_read_to_eof(fd, &b, HS_IO_MS);
    ts_assert(err == 0 || b.len > 0, "no answer: %s", strerror(-err));
    ts_assert(b.len > 12 && memcmp(b.p, "HTTP/1.1 200", 12) == 0, "got [%s]",
              hs_shown(b.p, b.len));
    free(b.p);
}

/* A download that will stall: one worker with --send-timeout 1, and a
 * connection that asked for a sparse 256 MiB file (more than every socket
 * buffer on the way) and reads nothing. Returns the connection. */
static void sparse_file(const char *rel, off_t size)
{
    char path[600];
    hs_path(rel, path, sizeof path);
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(f >= 0 && ftruncate(f, size) == 0, "%s: %s", rel, strerror(errno));
    close(f);
}

static int stalled_download(struct ts_proc **srv, int *port)
{
    sparse_file("big.bin", 256 << 20);
    *port = HS_SERVE(srv, "-w", "1", "--access-log", "off", "--send-timeout", "1", hs_root);
    int slow = hs_connect(*port);
    const char get_big[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    ts_assert(ts_send_all(slow, get_big, strlen(get_big), HS_IO_MS) == 0, "send");
    wait_active((*srv)->pid, 1);
    return slow;
}

Test(limits, send_timeout_drops_a_client_that_stops_reading)
{
    hs_tree("limits");
    hs_put_text("ok.txt", "ok\n");
    struct ts_proc *srv;
    int port;
    int slow = stalled_download(&srv, &port);

    /* The stalled download holds no one else up. */
    size_t len;
    char *r = hs_exchange(port, "GET /ok.txt HTTP/1.0\r\n\r\n", 24, &len);
    ts_assert(len > 12 && memcmp(r, "HTTP/1.1 200", 12) == 0, "got [%s]", hs_shown(r, len));
    free(r);

    /* It is dropped once it has made no progress for a second. */
    wait_active(srv->pid, 0);
    struct hs_buf b = {0};
    hs_read_to_eof(slow, &b, HS_IO_MS); /* EOF or a reset: either ends it */
    ts_assert(b.len < (256u << 20), "the whole file arrived: nothing was dropped");
    free(b.p);
    close(slow);
}

/* A client that does not read but keeps sending a byte now and then (each
 * one an event on the connection) is dropped all the same: the send timeout
 * counts from the last byte the server could send, not from the last event. */
Test(limits, send_timeout_is_not_reset_by_a_client_that_sends_but_does_not_read)
{
    hs_tree("limits");
    struct ts_proc *srv;
    int port;
    int slow = stalled_download(&srv, &port);

    /* A byte every 200 ms for up to 15 s: five times a second an event,
     * while the socket stays full. The worker must drop it (1 s after the
     * socket filled); it is then gone from the scoreboard. */
    int64_t deadline = ts_now_ms() + 15000;
    while (worker_of(srv->pid).active != 0) {
        ts_assert(ts_now_ms() < deadline, "a client sending a byte every 200 ms and reading nothing "
                                          "was still connected after 15 s (--send-timeout 1)");
        if (send(slow, "x", 1, MSG_NOSIGNAL) < 0)
            break; /* dropped: a reset came back */
        poll(NULL, 0, 200);
    }
    close(slow);
}

/* Clients that vanish mid-download, with a reset while they read as fast
 * as they can (so that the next slice of their responses is queued for the
 * worker's next loop iteration), cost the worker nothing: the same process
 * lives on, holds no connection, and serves the next client. Under ASan
 * this is where a connection freed while queued would show. */
Test(limits, downloads_reset_mid_body_leave_the_worker_serving)
{
    enum { CONNS = 8, WANT = 2 << 20 };
    hs_tree("limits");
    hs_put_text("ok.txt", "ok\n");
    sparse_file("big.bin", 256 << 20);
    struct ts_proc *srv;
    int port = HS_SERVE(&srv, "-w", "1", "--access-log", "off", hs_root);
    pid_t worker = worker_of(srv->pid).pid;
    const char get_big[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    static char sink[1 << 16];
    for (int round = 0; round < 3; round++) {
        int fds[CONNS];
        size_t got[CONNS] = {0};
        for (int i = 0; i < CONNS; i++) {
            fds[i] = hs_connect(port);
            ts_assert(ts_send_all(fds[i], get_big, strlen(get_big), HS_IO_MS) == 0, "send");
        }
        /* Read from all at once until each has WANT bytes. */
        int64_t deadline = ts_now_ms() + HS_IO_MS;
        for (int short_of = CONNS; short_of > 0;) {
            struct pollfd p[CONNS];
            for (int i = 0; i < CONNS; i++)
                p[i] = (struct pollfd){.fd = got[i] < WANT ? fds[i] : -1, .events = POLLIN};
            ts_assert(ts_now_ms() < deadline, "%d downloads short of %d bytes", short_of, WANT);
            poll(p, CONNS, 100);
            for (int i = 0; i < CONNS; i++) {
                if (!p[i].revents)
                    continue;
                ssize_t n = read(fds[i], sink, sizeof sink);
                ts_assert(n > 0 || (n < 0 && errno == EAGAIN), "connection %d ended after %zu bytes: %s",
                          i, got[i], n ? strerror(errno) : "EOF");
                if (n > 0 && (got[i] += (size_t)n) >= WANT)
                    short_of--;
            }
        }
        for (int i = 0; i < CONNS; i++) { /* close with a reset, data unread */
            struct linger hard = {.l_onoff = 1, .l_linger = 0};
            cr_assert_eq(setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
            close(fds[i]);
        }
    }
    wait_active(srv->pid, 0);
    ts_assert(worker_of(srv->pid).pid == worker, "the worker was replaced: it died");
    size_t len;
    char *r = hs_exchange(port, "GET /ok.txt HTTP/1.0\r\n\r\n", 24, &len);
    ts_assert(len > 12 && memcmp(r, "HTTP/1.1 200", 12) == 0, "got [%s]", hs_shown(r, len));
    free(r);
}

Test(limits, max_conns_caps_a_worker_until_a_connection_closes)
{
    hs_tree("limits");
    hs_put_text("ok.txt", "ok\n");
    struct ts_proc *srv;
    int port = HS_SERVE(&srv, "-w", "1", "--access-log", "off", "--max-conns", "2", hs_root);

    /* Two connections with half a request each hold both places. */
    int held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = hs_connect(port);
        ts_assert(ts_send_all(held[i], partial, strlen(partial), HS_IO_MS) == 0, "send");
    }
    wait_active(srv->pid, 2);

    /* A third waits in the kernel's queue: the worker stopped accepting. */
    int third = hs_connect(port);
    ts_assert(ts_send_all(third, request, strlen(request), HS_IO_MS) == 0, "send");
    ts_assert(!readable_within(third, 500), "served beyond --max-conns 2");
    ts_assert(worker_of(srv->pid).accepted == 2, "accepted %llu connections",
              (unsigned long long)worker_of(srv->pid).accepted);

    close(held[0]); /* a place frees: the third is taken and answered */
    expect_ok(third);
    close(third);
    close(held[1]);
}

/* utime + stime of a process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    long utime = 0, stime = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime);
    return utime + stime;
}

Test(limits, out_of_descriptors_pauses_accepting_without_spinning)
{
    hs_tree("limits");
    hs_put_text("ok.txt", "ok\n");
    /* The server inherits a limit of 24 descriptors: room for a dozen
     * connections in its worker. The test raises its own back afterwards. */
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = (struct rlimit){.rlim_cur = 24, .rlim_max = old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct ts_proc *srv;
    int port = HS_SERVE(&srv, "-w", "1", "--access-log", "off", "--cache-ttl", "60000", hs_root);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    /* Cached now, ok.txt is answered without opening it: out of descriptors,
     * an uncached file would get a clean 503 instead. */
    size_t len;
    free(hs_exchange(port, "GET /ok.txt HTTP/1.0\r\n\r\n", 24, &len));

    enum { N = 40 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = hs_connect(port);
        ts_assert(ts_send_all(fds[i], partial, strlen(partial), HS_IO_MS) == 0, "send %d", i);
    }
    ts_assert(ts_wait_log(srv, "accept4: Too many open files; pausing accepts", HS_IO_MS,
                          NULL, 0) == 0, "no EMFILE pause in the log");

    /* Paused, not spinning: well under half a CPU over a second. */
    pid_t w = worker_of(srv->pid).pid;
    long t0 = cpu_ticks(w);
    poll(NULL, 0, 1000);
    long used = cpu_ticks(w) - t0;
    ts_assert(t0 >= 0 && used < sysconf(_SC_CLK_TCK) / 2, "worker used %ld ticks in 1 s", used);

    /* Finish every request: as connections close, the waiting ones are
     * accepted and answered too. */
    for (int i = 0; i < N; i++) {
        ts_assert(ts_send_all(fds[i], "Connection: close\r\n\r\n", 21, HS_IO_MS) == 0, "send");
        if (i >= N / 2)
            continue;
        expect_ok(fds[i]);
        close(fds[i]);
    }
    for (int i = N / 2; i < N; i++) {
        expect_ok(fds[i]);
        close(fds[i]);
    }
}

/* Receive one sd_notify datagram within the deadline. */
static void expect_notify(int sock, const char *want)
{
    char msg[512];
    int64_t deadline = ts_now_ms() + HS_START_MS;
    for (;;) {
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int left = (int)(deadline - ts_now_ms());
        ts_assert(left > 0 && poll(&p, 1, left) == 1, "no '%s' from NOTIFY_SOCKET", want);
        ssize_t n = recv(sock, msg, sizeof msg - 1, 0);
        ts_assert(n > 0, "recv: %s", strerror(errno));
        msg[n] = '\0';
        if (strstr(msg, want))
            return;
    }
}

Test(limits, systemd_notify_reports_ready_reloading_stopping)
{
    hs_tree("limits");
    hs_put_text("ok.txt", "ok\n");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int len = snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s/notify", hs_base);
    cr_assert(len > 0 && (size_t)len < sizeof sa.sun_path, "socket path too long");
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(sock >= 0 && bind(sock, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s",
              strerror(errno));
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    struct ts_proc *srv;
    HS_SERVE(&srv, "-w", "1", "--access-log", "off", hs_root);
    unsetenv("NOTIFY_SOCKET");

    char mainpid[32];
    snprintf(mainpid, sizeof mainpid, "MAINPID=%d", (int)srv->pid);
    expect_notify(sock, mainpid); /* sent with READY=1 */
    ts_kill(srv->pid, SIGHUP);
    expect_notify(sock, "RELOADING=1");
    expect_notify(sock, "READY=1");
    ts_kill(srv->pid, SIGTERM);
    expect_notify(sock, "STOPPING=1");
    ts_assert(ts_wait_exit(srv, HS_START_MS) == 0 && WIFEXITED(srv->status) &&
                  WEXITSTATUS(srv->status) == 0,
              "master did not exit 0");
    close(sock);
}
