/* test_http_raw.c — `prefork serve` over raw sockets: malformed input, pipelining, limits, timeouts. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_support.h"

#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */

/* A request that must always work, on a new connection, after each bad one. */
#define GOOD "GET /ok.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

static int port;

TestSuite(http_raw, .fini = hs_cleanup);

/* A fresh root holding ok.txt ("ok\n"). */
static void make_root(void)
{
    hs_tree("pf-http");
    hs_put_file("ok.txt", "ok\n", 3);
}

/* Start `prefork serve -l 127.0.0.1:0 -w 2 --access-log off ARGS...` (ARGS
 * name the root) and wait for its port. Options are given as --name=value:
 * the separate form has a test of its own. */
#define SERVE(...) (port = HS_SERVE(NULL, "-w", "2", "--access-log", "off", __VA_ARGS__))

/* ---- bad requests, and the server still serving ---- */

/* A normal request on a new connection succeeds: the server is still fine. */
static void probe(const char *what)
{
    char after[256]; /* what may be hs_shown()'s buffer, which hs_exchange reuses */
    snprintf(after, sizeof after, "%s", what);
    size_t len;
    char *all = hs_exchange(port, GOOD, strlen(GOOD), &len);
    struct hs_resp r;
    ts_assert(hs_parse_resp(all, len, false, &r) == (long)len && r.status == 200 &&
                  r.body_len == 3 && memcmp(r.body, "ok\n", 3) == 0,
              "after %s, a normal request got: %s", after, all);
    free(all);
}

/* Send a bad request: expect exactly one response with status, the
 * connection closed, and the server still serving. */
static void expect_refused(const char *req, size_t n, int status)
{
    size_t len;
    char *all = hs_exchange(port, req, n, &len);
    struct hs_resp r;
    long used = hs_parse_resp(all, len, false, &r);
    ts_assert(used > 0, "[%s]: no whole response: [%s]", hs_shown(req, n), all);
    ts_assert(r.status == status, "[%s]: status %d, expected %d", hs_shown(req, n), r.status,
              status);
    ts_assert(used == (long)len, "[%s]: bytes after the response: [%s]", hs_shown(req, n),
              all + used);
    char v[64];
    ts_assert(hs_field(r.head, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0,
              "[%s]: no Connection: close in\n%s", hs_shown(req, n), r.head);
    free(all);
    probe(hs_shown(req, n));
}
#define REFUSED(lit, status) expect_refused(lit, sizeof lit - 1, status)

/* ------------------------------------------------------------------------ */
/* Malformed requests                                                       */
/* ------------------------------------------------------------------------ */

Test(http_raw, framing_and_smuggling, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root);
    probe("start-up");
    REFUSED("POST /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
    REFUSED("POST /ok.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 5\r\n\r\n0\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            "Content-Length: 6\r\n\r\nhello!", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 99999999999999999999999999\r\n\r\n", 400);
    REFUSED("POST /ok.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
    REFUSED("POST /ok.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n"
            "\r\n0\r\n\r\n", 400);
    REFUSED("POST /ok.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 400);
}

Test(http_raw, malformed_heads, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root);
    /* Line folding, whitespace before a colon, bare LF and CR. */
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\n Host: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost : x\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\nHost: x\n\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\n\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nX-A: a\x01z\r\n\r\n", 400);
    /* Host: missing in 1.1, twice (even the same), or not a host. */
    REFUSED("GET /ok.txt HTTP/1.1\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    /* The request line. */
    REFUSED("GET /ok.txt HTTP/1.x\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt http/1.1\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/11\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1 \r\nHost: x\r\n\r\n", 400);
    REFUSED("GET  /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt\r\n\r\n", 400);
    REFUSED("G@T /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    REFUSED("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400); /* a TLS hello */
    /* Versions we do not speak. */
    REFUSED("GET /ok.txt HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    REFUSED("GET /ok.txt HTTP/3.0\r\nHost: x\r\n\r\n", 505);
    REFUSED("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
}

Test(http_raw, nul_bytes, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root);
    REFUSED("GET /ok\0.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt\0 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400);
    REFUSED("GET /ok.txt HTTP/1.1\r\nHost: x\0\r\n\r\n", 400);
    REFUSED("GET /ok.txt%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400);
    REFUSED("GET /ok.txt%00.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400);
    REFUSED("\0GET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

/* A request whose target or head is n bytes long, for the limits. */
static char *big_request(size_t target_len, size_t field_len, int nfields, size_t *len)
{
    struct hs_buf b = {0};
    hs_buf_add(&b, "GET /ok.txt?", 12);
    for (size_t i = 12; i < target_len; i++)
        hs_buf_add(&b, "a", 1);
    hs_buf_add(&b, " HTTP/1.1\r\nHost: x\r\n", 20);
    if (field_len) {
        hs_buf_add(&b, "X-Big: ", 7);
        for (size_t i = 0; i < field_len; i++)
            hs_buf_add(&b, "b", 1);
        hs_buf_add(&b, "\r\n", 2);
    }
    for (int i = 0; i < nfields; i++) {
        char f[32];
        snprintf(f, sizeof f, "X-F%d: %d\r\n", i, i);
        hs_buf_add(&b, f, strlen(f));
    }
    hs_buf_add(&b, "Connection: close\r\n\r\n", 21);
    *len = b.len;
    return b.p;
}

/* The request must get status (and close), then the server must serve. */
static void expect_big(size_t target_len, size_t field_len, int nfields, int status)
{
    size_t n, len;
    char *req = big_request(target_len, field_len, nfields, &n);
    char *all = hs_exchange(port, req, n, &len);
    struct hs_resp r;
    ts_assert(hs_parse_resp(all, len, false, &r) > 0 && r.status == status,
              "target %zu, field %zu, %d fields: expected %d, got [%.200s]", target_len,
              field_len, nfields, status, all);
    free(all);
    free(req);
    probe("a large request");
}

Test(http_raw, default_limits, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root);
    expect_big(8000, 0, 0, 200);
    expect_big(9000, 0, 0, 414);
    expect_big(50000, 0, 0, 414); /* refused before the target ends */
    expect_big(100, 15000, 0, 200);
    expect_big(100, 20000, 0, 431);
    expect_big(100, 0, 98, 200);   /* Host + Connection + 98 = 100 fields */
    expect_big(100, 0, 99, 431);   /* 101 fields */
}

Test(http_raw, configured_limits, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root, "--max-header-bytes=2048", "--max-headers=10", "--max-uri-bytes=1024");
    expect_big(1000, 0, 0, 200);
    expect_big(1500, 0, 0, 414);
    expect_big(100, 1800, 0, 200);
    expect_big(100, 3000, 0, 431);
    expect_big(100, 0, 8, 200);  /* Host + Connection + 8 = 10 fields */
    expect_big(100, 0, 9, 431);  /* 11 fields */
    expect_big(100, 0, 50, 431);
}

/* The options documented as "--name VALUE" take their value from the next
 * argument, like "--name=VALUE". */
Test(http_raw, options_take_separate_values, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root, "--header-timeout", "5", "--keepalive-timeout", "5", "--send-timeout", "5",
          "--keepalive-requests", "10", "--max-header-bytes", "2048", "--max-uri-bytes", "1024",
          "--max-headers", "10", "--max-conns", "100", "--graceful-timeout", "5");
    probe("start-up");
    expect_big(1500, 0, 0, 414);
    expect_big(100, 0, 9, 431);
}

/* ------------------------------------------------------------------------ */
/* Pipelining and split requests                                            */
/* ------------------------------------------------------------------------ */

/* The body of file pI (but p5): distinct text of a distinct length. */
static int pipe_body(int i, char *out, size_t size)
{
    static const char xs[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    return snprintf(out, size, "body of p%d %.*s\n", i, i * 3, xs);
}

/* Files p0..p9: distinct bodies of distinct lengths; p5 is 1 MiB, so that
 * one response in the middle is sent by sendfile while requests wait. */
static char *pipeline_files(void)
{
    char *big = malloc(1 << 20);
    cr_assert_not_null(big);
    ts_fill(big, 1 << 20, 5);
    for (int i = 0; i < 10; i++) {
        char name[16], body[64];
        snprintf(name, sizeof name, "p%d", i);
        int n = pipe_body(i, body, sizeof body);
        if (i == 5)
            hs_put_file(name, big, 1 << 20);
        else
            hs_put_file(name, body, (size_t)n);
    }
    return big;
}

static void check_pipelined(const char *all, size_t len, const char *big, bool head3)
{
    size_t off = 0;
    for (int i = 0; i < 10; i++) {
        struct hs_resp r;
        long used = hs_parse_resp(all + off, len - off, head3 && i == 3, &r);
        ts_assert(used > 0 && r.status == 200, "response %d missing or bad: [%.200s]", i,
                  all + off);
        char want[64];
        int n = pipe_body(i, want, sizeof want);
        if (i == 5)
            ts_assert(r.body_len == 1 << 20 && memcmp(r.body, big, 1 << 20) == 0,
                      "response 5: the 1 MiB body differs");
        else if (!(head3 && i == 3))
            ts_assert(r.body_len == (size_t)n && memcmp(r.body, want, (size_t)n) == 0,
                      "response %d out of order or wrong: [%.*s]", i, (int)r.body_len, r.body);
        off += (size_t)used;
    }
    ts_assert(off == len, "%zu bytes after the 10th response", len - off);
}

static char *pipeline_request(bool head3, size_t *len)
{
    struct hs_buf b = {0};
    for (int i = 0; i < 10; i++) {
        char req[128];
        snprintf(req, sizeof req, "%s /p%d HTTP/1.1\r\nHost: x\r\n%s\r\n",
                 head3 && i == 3 ? "HEAD" : "GET", i, i == 9 ? "Connection: close\r\n" : "");
        hs_buf_add(&b, req, strlen(req));
    }
    *len = b.len;
    return b.p;
}

Test(http_raw, pipelining_in_one_write, .timeout = TIMEOUT)
{
    make_root();
    char *big = pipeline_files();
    SERVE(hs_root);
    for (int head3 = 0; head3 < 2; head3++) {
        size_t n, len;
        char *req = pipeline_request(head3, &n);
        char *all = hs_exchange(port, req, n, &len); /* one send: the request fits a segment */
        check_pipelined(all, len, big, head3);
        free(all);
        free(req);
    }
    free(big);
}

Test(http_raw, request_split_byte_by_byte, .timeout = TIMEOUT)
{
    make_root();
    char *big = pipeline_files();
    SERVE(hs_root);
    size_t n;
    char *req = pipeline_request(true, &n);
    int fd = hs_connect(port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct hs_buf b = {0};
    hs_buf_add(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        ts_assert(ts_send_all(fd, req + i, 1, HS_IO_MS) == 0, "send byte %zu", i);
        /* Read as we go: the 1 MiB response must not block our sends. */
        char chunk[65536];
        ssize_t r;
        while ((r = recv(fd, chunk, sizeof chunk, 0)) > 0)
            hs_buf_add(&b, chunk, (size_t)r);
    }
    int err = hs_read_to_eof(fd, &b, HS_IO_MS);
    close(fd);
    ts_assert(err == 0, "byte by byte: %s", strerror(-err));
    check_pipelined(b.p, b.len, big, true);
    free(b.p);
    free(req);
    free(big);
}

Test(http_raw, keepalive_requests_limit, .timeout = TIMEOUT)
{
    make_root();
    char *big = pipeline_files();
    SERVE(hs_root, "--keepalive-requests=3");
    size_t n, len;
    char *req = pipeline_request(false, &n);
    char *all = hs_exchange(port, req, n, &len);
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        struct hs_resp r;
        long used = hs_parse_resp(all + off, len - off, false, &r);
        ts_assert(used > 0 && r.status == 200, "response %d: [%.200s]", i, all + off);
        char v[32];
        bool closes = hs_field(r.head, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0;
        ts_assert(closes == (i == 2), "response %d: Connection: close %s", i,
                  closes ? "too early" : "missing on the last");
        off += (size_t)used;
    }
    ts_assert(off == len, "more than 3 responses on one connection");
    free(all);
    free(req);
    free(big);
}

/* ------------------------------------------------------------------------ */
/* Bodies and closing                                                       */
/* ------------------------------------------------------------------------ */

/* Send req whole, wait until the server has closed its side (FIN, or a
 * reset), and only then read: a reset would destroy the response unread. */
static void expect_answer_then_clean_close(const char *req, size_t n, int status)
{
    int fd = hs_connect(port);
    ts_assert(ts_send_all(fd, req, n, HS_IO_MS) == 0, "send");
    struct pollfd pfd = {fd, POLLRDHUP, 0};
    ts_assert(poll(&pfd, 1, HS_IO_MS) == 1, "[%s]: the server did not close", hs_shown(req, n));
    struct hs_buf b = {0};
    int err = hs_read_to_eof(fd, &b, HS_IO_MS);
    close(fd);
    ts_assert(err == 0, "[%s]: %s after [%s]", hs_shown(req, n), strerror(-err), b.p);
    struct hs_resp r;
    long used = hs_parse_resp(b.p, b.len, false, &r);
    ts_assert(used == (long)b.len && r.status == status, "[%s]: expected one %d, got [%s]",
              hs_shown(req, n), status, b.p);
    if (status == 200)
        ts_assert(r.body_len == 3 && memcmp(r.body, "ok\n", 3) == 0, "body [%s]", b.p);
    free(b.p);
    probe(hs_shown(req, n));
}

/* Send req whole, then the closing request; read to the end: count
 * responses of the given statuses, all before the server closed. */
static void expect_answers(const char *req, size_t n, const int *statuses, int count)
{
    static const char last[] = "GET /ok.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd = hs_connect(port);
    ts_assert(ts_send_all(fd, req, n, HS_IO_MS) == 0, "send");
    ts_assert(ts_send_all(fd, last, sizeof last - 1, HS_IO_MS) == 0, "send");
    struct hs_buf b = {0};
    int err = hs_read_to_eof(fd, &b, HS_IO_MS);
    close(fd);
    ts_assert(err == 0, "[%s]: %s after [%s]", hs_shown(req, n), strerror(-err), b.p);
    size_t off = 0;
    for (int i = 0; i <= count; i++) {
        struct hs_resp r;
        long used = hs_parse_resp(b.p + off, b.len - off, false, &r);
        int want = i < count ? statuses[i] : 200;
        ts_assert(used > 0 && r.status == want, "[%s]: answer %d: expected %d, got [%s]",
                  hs_shown(req, n), i, want, b.p + off);
        off += (size_t)used;
    }
    ts_assert(off == b.len, "[%s]: more than the answers: [%s]", hs_shown(req, n), b.p + off);
    free(b.p);
}

/* A body that comes with a request the site does not read is read away, so
 * the connection goes on (as nginx does); one past --max-body-bytes is not
 * worth reading: the answer closes the connection, cleanly. */
Test(http_raw, unwanted_bodies_are_read_away_keeping_the_connection, .timeout = TIMEOUT)
{
    static const int ok2[] = {200, 200}, one405[] = {405};
    make_root();
    SERVE(hs_root);
    static const char cl[] = "GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                             "GET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_answers(cl, sizeof cl - 1, ok2, 2);
    static const char chunked[] = "GET /ok.txt HTTP/1.1\r\nHost: x\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                                  "GET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_answers(chunked, sizeof chunked - 1, ok2, 2);
    size_t n = 32 * 1024;
    char *post = malloc(n + 200);
    cr_assert_not_null(post);
    int h = snprintf(post, 200, "POST /ok.txt HTTP/1.1\r\nHost: x\r\n"
                                "Content-Length: %zu\r\n\r\n", n);
    memset(post + h, 'p', n);
    expect_answers(post, (size_t)h + n, one405, 1);
    /* Past the bound: declared 2 MiB (sent in part), answered, then closed. */
    h = snprintf(post, 200, "GET /ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                 2 << 20);
    expect_answer_then_clean_close(post, (size_t)h + n, 200);
    free(post);
}

/* ------------------------------------------------------------------------ */
/* Timeouts                                                                 */
/* ------------------------------------------------------------------------ */

/* The server closes fd, at a 1 s timeout (not before) and sending nothing;
 * then fd is closed here too. */
static void expect_silent_close(int fd, const char *what)
{
    int64_t t0 = ts_now_ms();
    struct hs_buf b = {0};
    int err = hs_read_to_eof(fd, &b, HS_IO_MS);
    int64_t waited = ts_now_ms() - t0;
    close(fd);
    ts_assert(err == 0, "%s: %s", what, strerror(-err));
    ts_assert(b.len == 0, "%s got [%s]", what, b.p);
    ts_assert(waited >= 800, "%s closed after %lld ms, before the 1 s timeout", what,
              (long long)waited);
    free(b.p);
}

Test(http_raw, header_timeout, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root, "--header-timeout=1");
    /* A partial head: 408, then the connection closes. */
    int fd = hs_connect(port);
    static const char part[] = "GET /ok.txt HTTP/1.1\r\nHost: x\r\n";
    ts_assert(ts_send_all(fd, part, sizeof part - 1, HS_IO_MS) == 0, "send");
    int64_t t0 = ts_now_ms();
    struct hs_buf b = {0};
    int err = hs_read_to_eof(fd, &b, HS_IO_MS);
    int64_t waited = ts_now_ms() - t0;
    close(fd);
    ts_assert(err == 0, "partial head: %s; got [%s]", strerror(-err), b.p);
    struct hs_resp r;
    ts_assert(hs_parse_resp(b.p, b.len, false, &r) == (long)b.len && r.status == 408,
              "partial head: expected a 408, got [%s]", b.p);
    ts_assert(waited >= 800, "408 after %lld ms, before the 1 s timeout", (long long)waited);
    free(b.p);

    /* A new connection that sends nothing: closed, without a word. */
    expect_silent_close(hs_connect(port), "idle connection");
    probe("header timeouts");
}

/* The head must arrive within the timeout in total, not between bytes: a
 * client sending a byte every 300 ms must not hold a connection forever
 * (slowloris). */
Test(http_raw, header_timeout_bounds_a_slow_head, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root, "--header-timeout=1");
    int fd = hs_connect(port);
    static const char head[] = "GET /ok.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    ts_assert(ts_send_all(fd, head, sizeof head - 1, HS_IO_MS) == 0, "send");
    int64_t t0 = ts_now_ms();
    bool answered = false;
    /* Five seconds of dribbling, at most: far past the timeout. */
    while (!answered && ts_now_ms() - t0 < 5000) {
        if (ts_send_all(fd, "a", 1, HS_IO_MS) < 0)
            break; /* closed on us: that is the point */
        struct pollfd pfd = {fd, POLLIN, 0};
        answered = poll(&pfd, 1, 300) == 1;
    }
    int64_t waited = ts_now_ms() - t0;
    struct hs_buf b = {0};
    int err = hs_read_to_eof(fd, &b, HS_IO_MS);
    close(fd);
    ts_assert(answered, "still open after %lld ms of one byte per 300 ms "
                        "(--header-timeout 1)", (long long)waited);
    ts_assert(waited < 4000, "closed only after %lld ms", (long long)waited);
    ts_assert(err == 0 && strncmp(b.p, "HTTP/1.1 408 ", 13) == 0, "slow head: %s [%s]",
              strerror(-err), b.p);
    free(b.p);
}

/* Read one whole response of a small body (into resp) off a keep-alive
 * connection, and no more than it: the server sends nothing unasked. */
static void read_response(int fd, char *resp, size_t size, struct hs_resp *r)
{
    size_t got = 0;
    int64_t deadline = ts_now_ms() + HS_IO_MS;
    while (hs_parse_resp(resp, got, false, r) < 0) {
        ts_assert(got < size - 1 && ts_now_ms() < deadline, "no response");
        ssize_t n = recv(fd, resp + got, size - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
            resp[got] = '\0';
            continue;
        }
        ts_assert(n < 0 && errno == EAGAIN, "closed before the response: %s", strerror(errno));
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, 100);
    }
}

Test(http_raw, keepalive_timeout, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root, "--keepalive-timeout=1");
    int fd = hs_connect(port);
    static const char req[] = "GET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    ts_assert(ts_send_all(fd, req, sizeof req - 1, HS_IO_MS) == 0, "send");
    char resp[4096];
    struct hs_resp r;
    read_response(fd, resp, sizeof resp, &r);
    ts_assert(r.status == 200, "status %d", r.status);
    expect_silent_close(fd, "idle keep-alive connection");
    probe("keep-alive timeout");
}

/* The server waits for epoll after a read that emptied the socket; a
 * client's end of stream must still be seen at once, whether it comes with
 * the last request or just after it, never only at the idle timeout. */
Test(http_raw, half_close_after_keepalive_requests, .timeout = TIMEOUT)
{
    make_root();
    SERVE(hs_root, "--keepalive-timeout=60");
    static const char req[] = "GET /ok.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int together = 0; together < 2; together++) {
        int fd = hs_connect(port);
        char resp[4096];
        struct hs_resp r;
        for (int i = 0; i < 20; i++) {
            ts_assert(ts_send_all(fd, req, sizeof req - 1, HS_IO_MS) == 0, "send %d", i);
            read_response(fd, resp, sizeof resp, &r);
            ts_assert(r.status == 200 && r.body_len == 3, "request %d: status %d", i, r.status);
        }
        ts_assert(ts_send_all(fd, req, sizeof req - 1, HS_IO_MS) == 0, "send the last");
        if (!together)
            read_response(fd, resp, sizeof resp, &r);
        shutdown(fd, SHUT_WR);
        struct hs_buf b = {0};
        int err = hs_read_to_eof(fd, &b, HS_IO_MS);
        close(fd);
        ts_assert(err == 0, "no end of stream after a half-close (%s): %s",
                  together ? "with the request" : "after its response", strerror(-err));
        if (together)
            ts_assert(hs_parse_resp(b.p, b.len, false, &r) == (long)b.len && r.status == 200,
                      "the last request's response: [%s]", b.p ? b.p : "");
        else
            ts_assert(b.len == 0, "bytes after the half-close: [%s]", b.p);
        free(b.p);
    }
    probe("half-closes");
}
