/* test_tls_hostile.c — clients that misbehave on a TLS port: plain HTTP, garbage, half a ClientHello, hundreds of stalled handshakes, a renegotiation. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tls_support.h"

#define TIMEOUT 180
#define STALLED 500
#define CLOSE_MS 30000 /* header timeout 1 s, plus a slow machine's margin */

TestSuite(tls_hostile, .fini = hs_cleanup, .timeout = TIMEOUT);

static int port;

static void serve_with_timeout(const char *header_timeout)
{
    hs_tree("tlsh");
    tl_certs();
    hs_put_text("index.html", "still here\n");
    port = TL_SERVE(NULL, "-w", "2", "--header-timeout", header_timeout);
}

static void serve(void)
{
    serve_with_timeout("1");
}

/* The server still answers a well-behaved client. */
static void expect_served(const char *after)
{
    char *out;
    tl_sh(&out, 30000, "curl -sS --max-time 20 --cacert '%s' --resolve localhost:%d:127.0.0.1 "
          "https://localhost:%d/", tl_file("ca.pem"), port, port);
    ts_assert(strcmp(out, "still here\n") == 0, "after %s: %s", after, out);
    free(out);
}

/* The first bytes of a ClientHello: a handshake record announcing 512
 * bytes, of which only these come. */
static const unsigned char half_hello[] = {
    0x16, 0x03, 0x01, 0x02, 0x00,       /* record: handshake, 512 bytes */
    0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, /* ClientHello, 508 bytes, TLS 1.2 */
    'r', 'a', 'n', 'd', 'o', 'm', '-', 'b', 'y', 't', 'e', 's',
};

/* Wait until the server closes fd (end of stream or a reset): the time it
 * took, or -1 past the deadline. */
static int64_t wait_closed(int fd, int64_t since)
{
    int64_t end = ts_now_ms() + CLOSE_MS;
    char buf[4096];
    while (ts_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            return ts_now_ms() - since;
    }
    return -1;
}

Test(tls_hostile, plain_http_gets_a_400)
{
    serve();
    static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    size_t len;
    char *got = hs_exchange(port, req, sizeof req - 1, &len);
    ts_assert(strncmp(got, "HTTP/1.1 400 ", 13) == 0 && strstr(got, "use https://"),
              "plain HTTP: %s", hs_shown(got, len));
    free(got);
    expect_served("plain HTTP");
}

/* With a 60 s header timeout, a close within 10 s is the server's answer
 * to the garbage, not its timer. */
Test(tls_hostile, garbage_is_closed_at_once)
{
    serve_with_timeout("60");
    char junk[2048];
    ts_fill(junk, sizeof junk, 7);
    junk[0] = 0x16; /* looks like a handshake, then nonsense */
    int fd = hs_connect(port);
    int64_t t0 = ts_now_ms();
    ts_send_all(fd, junk, sizeof junk, 5000); /* the server may close before it all went */
    int64_t took = wait_closed(fd, t0);
    ts_assert(took >= 0 && took < 10000, "garbage: closed after %lld ms, or not at all",
              (long long)took);
    close(fd);
    expect_served("garbage");
}

Test(tls_hostile, half_a_client_hello_meets_the_header_timeout)
{
    serve();
    int fd = hs_connect(port);
    int64_t t0 = ts_now_ms();
    ts_assert(ts_send_all(fd, half_hello, sizeof half_hello, 5000) == 0, "send");
    int64_t took = wait_closed(fd, t0);
    ts_assert(took >= 900, "closed after %lld ms: before the 1 s header timeout",
              (long long)took);
    close(fd);
    expect_served("half a ClientHello");
}

/* Hundreds of handshakes that never finish hold no worker: a normal
 * client is served meanwhile, and each is closed at the header timeout. */
Test(tls_hostile, many_stalled_handshakes)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < STALLED + 64) {
        rl.rlim_cur = rl.rlim_max < STALLED + 64 ? rl.rlim_max : STALLED + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    serve();
    static int fds[STALLED];
    int n = 0;
    int64_t t0 = ts_now_ms();
    for (; n < STALLED && (int)rl.rlim_cur > n + 48; n++) {
        fds[n] = hs_connect(port);
        ts_send_all(fds[n], half_hello, n % 2 ? sizeof half_hello : 5, 5000);
    }
    ts_assert(n >= 400, "only %d connections (RLIMIT_NOFILE %llu)", n,
              (unsigned long long)rl.rlim_cur);
    expect_served("stalled handshakes opened");
    int closed = 0;
    for (int i = 0; i < n; i++) {
        if (wait_closed(fds[i], t0) >= 0)
            closed++;
        close(fds[i]);
    }
    ts_assert(closed == n, "%d of %d stalled handshakes closed", closed, n);
    expect_served("stalled handshakes closed");
}

Test(tls_hostile, renegotiation_is_refused)
{
    serve();
    char *out;
    /* s_client reads "R" as "renegotiate"; its input stays open for the
     * server's answer (a client's pause, not the test's wait). */
    tl_sh(&out, 30000,
          "(printf 'R\\n'; sleep 2) | openssl s_client -connect 127.0.0.1:%d -tls1_2 -CAfile "
          "'%s' 2>&1",
          port, tl_file("ca.pem"));
    ts_assert(strstr(out, "RENEGOTIATING") && strstr(out, "no renegotiation"),
              "renegotiation: %s", out);
    free(out);
    expect_served("a renegotiation attempt");
}
