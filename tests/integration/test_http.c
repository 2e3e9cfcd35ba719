/* test_http.c — `prefork serve` features, checked with curl as a real client. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_support.h"

#define CURL_MS 30000  /* one curl run, however many URLs */
#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */

/* 2020-01-02 03:04:05 UTC, a Thursday: the mtime of files whose dates are checked. */
#define OLD_MTIME 1577934245
#define OLD_DATE "Thu, 02 Jan 2020 03:04:05 GMT"

/*
 * Each test builds a fresh tree (hs_tree): hs_root is the document root,
 * hs_tmp holds curl's output files (out of the root, so they never show in
 * a listing).
 */
static struct ts_proc *srv;
static int port;

TestSuite(http, .fini = hs_cleanup);

/* ---- the server ---- */

/* Start `prefork serve -l 127.0.0.1:0 -w 2 ARGS...` (ARGS name the root)
 * and wait for its port. */
#define SERVE(...) (port = HS_SERVE(&srv, "-w", "2", __VA_ARGS__))

/* Stop the server with TERM and wait for it: the access log is flushed at exit. */
static void stop_server(void)
{
    cr_assert_eq(ts_kill(srv->pid, SIGTERM), 0);
    int err = ts_wait_exit(srv, HS_START_MS);
    ts_assert(err == 0, "server did not exit after TERM");
    ts_assert(WIFEXITED(srv->status) && WEXITSTATUS(srv->status) == 0,
              "server wait status 0x%x", srv->status);
}

/* ---- running curl ---- */

/* What one curl transfer gave: the status, the head and the body. */
struct got {
    int code;
    char *head; /* as written by -D: status line and fields, CRLF-separated */
    char *body;
    size_t body_len;
    char *err;  /* curl's stderr (with -v: the conversation) */
};

static void got_free(struct got *g)
{
    free(g->head);
    free(g->body);
    free(g->err);
    memset(g, 0, sizeof *g);
}

/* curl -sS [EXTRA...] http://127.0.0.1:PORT/PATH, the head and the body
 * written to files under hs_tmp and read back. */
static void curl(struct got *g, const char *path, const char *const *extra)
{
    char url[4096], hfile[512], bfile[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    snprintf(hfile, sizeof hfile, "%s/head", hs_tmp);
    snprintf(bfile, sizeof bfile, "%s/body", hs_tmp);
    unlink(hfile);
    unlink(bfile);
    const char *argv[40] = {"curl", "-sS", "--max-time", "20", "-D", hfile, "-o", bfile,
                            "-w", "%{http_code}", "--path-as-is"};
    int n = 11;
    for (int i = 0; extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n++] = url;
    argv[n] = NULL;
    char *out;
    memset(g, 0, sizeof *g);
    int status = hs_run(argv, CURL_MS, &out, &g->err);
    ts_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "curl %s: status 0x%x: %s", path, status, g->err);
    g->code = atoi(out);
    free(out);
    size_t hl;
    g->head = hs_slurp(hfile, &hl);
    g->body = hs_slurp(bfile, &g->body_len);
}
#define CURL(g, path, ...) curl(g, path, (const char *const[]){__VA_ARGS__, NULL})

/* Assert that a field is there with the value want. */
static void expect_field(const struct got *g, const char *name, const char *want)
{
    char v[512];
    ts_assert(hs_field(g->head, name, v, sizeof v), "no %s field in:\n%s", name, g->head);
    ts_assert(strcmp(v, want) == 0, "%s: got \"%s\", expected \"%s\"", name, v, want);
}

static void expect_no_field(const struct got *g, const char *name)
{
    char v[512];
    ts_assert(!hs_field(g->head, name, v, sizeof v), "unexpected %s: %s", name, v);
}

static void expect_body(const struct got *g, const void *want, size_t n)
{
    ts_assert(g->body_len == n, "body of %zu bytes, expected %zu", g->body_len, n);
    ts_assert(memcmp(g->body, want, n) == 0, "body differs from the file");
}

/* GET path and expect code (and the body, when want is not NULL). */
static void expect_get(const char *path, int code, const char *want)
{
    struct got g;
    CURL(&g, path, "-H", "X-Test: 1");
    ts_assert(g.code == code, "GET %s: %d, expected %d", path, g.code, code);
    if (want)
        expect_body(&g, want, strlen(want));
    got_free(&g);
}

/* Send req on a new connection and read until the server closes it: for
 * what curl hides. */
static char *raw_exchange(const char *req, size_t *len)
{
    return hs_exchange(port, req, strlen(req), len);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

Test(http, get_file_fields, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text("hello.txt", "hello world\n");
    hs_set_mtime("hello.txt", OLD_MTIME);
    SERVE(hs_root);
    struct got g;
    CURL(&g, "/hello.txt", "-H", "X-Test: 1");
    ts_assert(g.code == 200, "status %d", g.code);
    ts_assert(strncmp(g.head, "HTTP/1.1 200 OK\r\n", 17) == 0, "status line: %.40s", g.head);
    expect_field(&g, "Server", "prefork");
    expect_field(&g, "Content-Type", "text/plain; charset=utf-8");
    expect_field(&g, "Content-Length", "12");
    expect_field(&g, "Last-Modified", OLD_DATE);
    expect_field(&g, "Accept-Ranges", "bytes");
    char v[512];
    ts_assert(hs_field(g.head, "ETag", v, sizeof v), "no ETag");
    size_t n = strlen(v);
    ts_assert(n > 2 && v[0] == '"' && strchr(v + 1, '"') == v + n - 1,
              "ETag is not a strong quoted tag: %s", v);
    ts_assert(hs_field(g.head, "Date", v, sizeof v), "no Date");
    struct tm tm = {0};
    char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ts_assert(end && *end == '\0', "Date is not an IMF-fixdate: %s", v);
    time_t d = timegm(&tm), now = time(NULL);
    ts_assert(d > now - 300 && d < now + 300, "Date %s is far from now", v);
    expect_body(&g, "hello world\n", 12);
    got_free(&g);
}

Test(http, head_has_fields_and_no_body, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text("hello.txt", "hello world\n");
    SERVE(hs_root);
    struct got g;
    CURL(&g, "/hello.txt", "-I");
    ts_assert(g.code == 200, "status %d", g.code);
    expect_field(&g, "Content-Length", "12");
    expect_field(&g, "Content-Type", "text/plain; charset=utf-8");
    expect_field(&g, "Accept-Ranges", "bytes");
    char v[512];
    ts_assert(hs_field(g.head, "ETag", v, sizeof v) &&
                  hs_field(g.head, "Last-Modified", v, sizeof v),
              "HEAD lacks the validators:\n%s", g.head);
    got_free(&g);

    /* No body: the bytes right after the HEAD response's head are the next
     * response on the same connection. */
    size_t len;
    char *all = raw_exchange("HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             &len);
    char *second = strstr(all, "\r\n\r\n");
    ts_assert(second && strncmp(all, "HTTP/1.1 200 ", 13) == 0, "HEAD response: %s", all);
    second += 4;
    ts_assert(strncmp(second, "HTTP/1.1 200 ", 13) == 0,
              "bytes after the HEAD head are not the next response: %.60s", second);
    char *body = strstr(second, "\r\n\r\n");
    ts_assert(body && strcmp(body + 4, "hello world\n") == 0, "GET after HEAD: %s", second);
    free(all);
}

Test(http, large_and_small_files_are_byte_exact, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    size_t big = 5u << 20, small = 10u << 10;
    char *data = malloc(big);
    cr_assert_not_null(data);
    ts_fill(data, big, 42);
    hs_put_file("big.bin", data, big);
    hs_put_file("small.bin", data + 12345, small);
    SERVE(hs_root);
    struct got g;
    CURL(&g, "/big.bin", "-H", "X-Test: 1");
    ts_assert(g.code == 200, "big: status %d", g.code);
    expect_field(&g, "Content-Length", "5242880");
    expect_field(&g, "Content-Type", "application/octet-stream");
    expect_body(&g, data, big);
    got_free(&g);

    CURL(&g, "/small.bin", "-H", "X-Test: 1");
    ts_assert(g.code == 200, "small: status %d", g.code);
    expect_field(&g, "Content-Length", "10240");
    expect_body(&g, data + 12345, small);
    got_free(&g);

    /* A range deep inside the big file: sendfile from an offset. */
    CURL(&g, "/big.bin", "-H", "Range: bytes=1000001-3000000");
    ts_assert(g.code == 206, "big range: status %d", g.code);
    expect_field(&g, "Content-Range", "bytes 1000001-3000000/5242880");
    expect_body(&g, data + 1000001, 2000000);
    got_free(&g);
    free(data);
}

/* A Unix-socket listener (-l unix:PATH, beside the TCP one) serves the same
 * bytes: a file of odd size goes out in the slices sized for Unix sockets
 * (there is no TCP segment size to read), and so does a range from an odd
 * offset. */
Test(http, unix_listener_serves_files_byte_exact, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    size_t big = 5000001;
    char *data = malloc(big);
    cr_assert_not_null(data);
    ts_fill(data, big, 9);
    hs_put_file("odd.bin", data, big);
    char sock[400], spec[420];
    snprintf(sock, sizeof sock, "%s/s.sock", hs_tmp);
    snprintf(spec, sizeof spec, "unix:%s", sock);
    SERVE("-l", spec, hs_root);
    struct got g;
    CURL(&g, "/odd.bin", "--unix-socket", sock);
    ts_assert(g.code == 200, "unix: status %d", g.code);
    expect_field(&g, "Content-Length", "5000001");
    expect_body(&g, data, big);
    got_free(&g);

    CURL(&g, "/odd.bin", "--unix-socket", sock, "-H", "Range: bytes=1000001-3999999");
    ts_assert(g.code == 206, "unix range: status %d", g.code);
    expect_field(&g, "Content-Range", "bytes 1000001-3999999/5000001");
    expect_body(&g, data + 1000001, 2999999);
    got_free(&g);
    free(data);
}

/* Read every connection to its end at once (poll), so that the server has
 * all of them to write at the same time; asserts each ends within ms. */
static void read_all_to_eof(const int *fds, int n, struct hs_buf *bufs, int ms)
{
    int64_t deadline = ts_now_ms() + ms;
    int open = n;
    bool done[16] = {false};
    cr_assert_leq(n, 16);
    char chunk[65536];
    while (open > 0) {
        struct pollfd pfd[16];
        for (int i = 0; i < n; i++)
            pfd[i] = (struct pollfd){.fd = done[i] ? -1 : fds[i], .events = POLLIN};
        int64_t left = deadline - ts_now_ms();
        ts_assert(left > 0, "%d of %d connections not ended within %d ms", open, n, ms);
        cr_assert_geq(poll(pfd, (nfds_t)n, (int)left), 0);
        for (int i = 0; i < n; i++) {
            if (done[i] || !pfd[i].revents)
                continue;
            ssize_t r = read(fds[i], chunk, sizeof chunk);
            if (r > 0) {
                hs_buf_add(&bufs[i], chunk, (size_t)r);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                ts_assert(r == 0, "connection %d: %s", i, strerror(errno));
                done[i] = true;
                open--;
            }
        }
    }
}

/* Large bodies go out a slice per loop iteration, each connection in turn.
 * One worker, six connections at once, each pipelining a whole file of an
 * odd size, a range starting at an odd offset, a HEAD and a small file:
 * every response comes whole, in order, byte-exact, however the slices of
 * the connections interleave. */
Test(http, large_bodies_interleave_byte_exact_on_one_worker, .timeout = TIMEOUT)
{
    enum { CONNS = 6 };
    hs_tree("pf-http");
    size_t big = (3u << 20) + 777;
    char *data = malloc(big);
    cr_assert_not_null(data);
    ts_fill(data, big, 7);
    hs_put_file("big.bin", data, big);
    hs_put_text("small.txt", "small\n");
    port = HS_SERVE(&srv, "-w", "1", hs_root);
    static const char req[] =
        "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=65001-2100000\r\n\r\n"
        "HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    int fds[CONNS];
    struct hs_buf bufs[CONNS] = {0};
    for (int i = 0; i < CONNS; i++) {
        fds[i] = hs_connect(port);
        cr_assert_eq(write(fds[i], req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    }
    read_all_to_eof(fds, CONNS, bufs, HS_IO_MS * 3);
    for (int i = 0; i < CONNS; i++) {
        const char *p = bufs[i].p;
        size_t left = bufs[i].len;
        struct hs_resp r;
        long n = hs_parse_resp(p, left, false, &r);
        ts_assert(n > 0 && r.status == 200 && r.body_len == big, "connection %d, whole file: %s", i,
                  hs_shown(p, left));
        ts_assert(memcmp(r.body, data, big) == 0, "connection %d: the whole file differs", i);
        p += n, left -= (size_t)n;
        n = hs_parse_resp(p, left, false, &r);
        ts_assert(n > 0 && r.status == 206 && r.body_len == 2100000 - 65001 + 1,
                  "connection %d, range: %s", i, hs_shown(p, left));
        ts_assert(memcmp(r.body, data + 65001, r.body_len) == 0, "connection %d: the range differs", i);
        p += n, left -= (size_t)n;
        n = hs_parse_resp(p, left, true, &r);
        ts_assert(n > 0 && r.status == 200, "connection %d, HEAD: %s", i, hs_shown(p, left));
        char len[32];
        ts_assert(hs_field(r.head, "Content-Length", len, sizeof len) && atol(len) == (long)big,
                  "connection %d, HEAD: %s", i, r.head);
        p += n, left -= (size_t)n;
        n = hs_parse_resp(p, left, false, &r);
        ts_assert(n > 0 && r.status == 200 && r.body_len == 6 && memcmp(r.body, "small\n", 6) == 0,
                  "connection %d, small file: %s", i, hs_shown(p, left));
        ts_assert((size_t)n == left, "connection %d: %zu bytes after the last response", i, left - (size_t)n);
        close(fds[i]);
        free(bufs[i].p);
    }
    free(data);
}

Test(http, mime_types, .timeout = TIMEOUT)
{
    static const char *const cases[][2] = {
        {"a.html", "text/html; charset=utf-8"},
        {"a.css", "text/css; charset=utf-8"},
        {"a.js", "text/javascript; charset=utf-8"},
        {"a.json", "application/json; charset=utf-8"},
        {"a.png", "image/png"},
        {"B.PNG", "image/png"},
        {"a.svg", "image/svg+xml; charset=utf-8"},
        {"a.wasm", "application/wasm"},
        {"a.txt", "text/plain; charset=utf-8"},
        {"a.unknownext", "application/octet-stream"},
        {"noext", "application/octet-stream"},
    };
    hs_tree("pf-http");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        hs_put_text(cases[i][0], "x");
    SERVE(hs_root);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[64];
        struct got g;
        snprintf(path, sizeof path, "/%s", cases[i][0]);
        CURL(&g, path, "-H", "X-Test: 1");
        ts_assert(g.code == 200, "%s: status %d", path, g.code);
        expect_field(&g, "Content-Type", cases[i][1]);
        got_free(&g);
    }
}

Test(http, percent_decoded_names, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text("a b.txt", "space\n");
    hs_put_text("100%.txt", "percent\n");
    hs_put_text("\xc3\xa9t\xc3\xa9.txt", "utf8\n");
    SERVE(hs_root);
    expect_get("/a%20b.txt", 200, "space\n");
    expect_get("/100%25.txt", 200, "percent\n");
    expect_get("/%C3%A9t%c3%a9.txt", 200, "utf8\n");
    expect_get("/a%2520b.txt", 404, NULL); /* decoded once, not twice */
}

Test(http, dotfiles, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text(".secret", "hidden\n");
    hs_make_dir(".hid");
    hs_put_text(".hid/x.txt", "in hidden dir\n");
    hs_put_text("shown.txt", "shown\n");
    SERVE(hs_root);
    expect_get("/.secret", 404, NULL);
    expect_get("/%2esecret", 404, NULL);
    expect_get("/.hid/x.txt", 404, NULL);
    expect_get("/.hid/", 404, NULL);
    struct got g;
    CURL(&g, "/", "-H", "X-Test: 1");
    ts_assert(g.code == 200 && strstr(g.body, "shown.txt"), "listing: %d", g.code);
    ts_assert(!strstr(g.body, ".secret") && !strstr(g.body, ".hid"),
              "the listing shows dotfiles:\n%s", g.body);
    got_free(&g);
    stop_server();

    SERVE(hs_root, "--dotfiles");
    expect_get("/.secret", 200, "hidden\n");
    expect_get("/%2esecret", 200, "hidden\n");
    expect_get("/.hid/x.txt", 200, "in hidden dir\n");
    CURL(&g, "/", "-H", "X-Test: 1");
    ts_assert(g.code == 200 && strstr(g.body, ".secret"), "--dotfiles listing:\n%s", g.body);
    got_free(&g);
}

/* ------------------------------------------------------------------------ */
/* Directories                                                              */
/* ------------------------------------------------------------------------ */

Test(http, index_and_redirect, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text("index.html", "<p>root index</p>\n");
    hs_make_dir("sub");
    hs_put_text("sub/index.html", "<p>sub index</p>\n");
    hs_make_dir("a dir");
    hs_put_text("a dir/index.html", "<p>spaced</p>\n");
    SERVE(hs_root);
    struct got g;
    CURL(&g, "/", "-H", "X-Test: 1");
    ts_assert(g.code == 200, "/: %d", g.code);
    expect_field(&g, "Content-Type", "text/html; charset=utf-8");
    expect_body(&g, "<p>root index</p>\n", 18);
    got_free(&g);
    expect_get("/sub/", 200, "<p>sub index</p>\n");
    expect_get("/sub/?q=1", 200, "<p>sub index</p>\n");

    CURL(&g, "/sub?x=1&y=%20", "-H", "X-Test: 1");
    ts_assert(g.code == 301, "/sub?x=1: %d", g.code);
    expect_field(&g, "Location", "/sub/?x=1&y=%20");
    got_free(&g);
    CURL(&g, "/sub", "-H", "X-Test: 1");
    ts_assert(g.code == 301, "/sub: %d", g.code);
    expect_field(&g, "Location", "/sub/");
    got_free(&g);
    CURL(&g, "/a%20dir", "-H", "X-Test: 1");
    ts_assert(g.code == 301, "/a%%20dir: %d", g.code);
    expect_field(&g, "Location", "/a%20dir/");
    got_free(&g);
    expect_get("/a%20dir/", 200, "<p>spaced</p>\n");
    /* A file named with a trailing slash is not a directory. */
    expect_get("/sub/index.html/", 404, NULL);
}

/* Where needle first occurs in hay, or -1. */
static long pos(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p ? p - hay : -1;
}

Test(http, listing, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_make_dir("list");
    hs_put_text("list/b.txt", "b");
    hs_put_text("list/a.txt", "a");
    hs_put_text("list/C.txt", "c");
    hs_put_text("list/<x>&\"'.txt", "x");
    hs_make_dir("list/zdir");
    SERVE(hs_root);
    struct got g;
    CURL(&g, "/list/", "-H", "X-Test: 1");
    ts_assert(g.code == 200, "status %d", g.code);
    expect_field(&g, "Content-Type", "text/html; charset=utf-8");
    const char *b = g.body;
    ts_assert(strstr(b, "href=\"../\""), "no parent link:\n%s", b);
    ts_assert(strstr(b, "&lt;x&gt;&amp;"), "the name is not HTML-escaped:\n%s", b);
    ts_assert(!strstr(b, "<x>"), "a raw '<x>' from a file name is in the page");
    ts_assert(strstr(b, "href=\"%3Cx%3E%26%22%27.txt\""), "href not percent-encoded:\n%s", b);
    long a = pos(b, "href=\"a.txt\""), bb = pos(b, "href=\"b.txt\""),
         c = pos(b, "href=\"C.txt\""), z = pos(b, "href=\"zdir/\"");
    ts_assert(a >= 0 && bb >= 0 && c >= 0 && z >= 0, "an entry is missing:\n%s", b);
    ts_assert(z < c && c < a && a < bb, "not sorted (dirs first, then byte order):\n%s", b);
    got_free(&g);

    /* The root has no parent link. */
    CURL(&g, "/", "-H", "X-Test: 1");
    ts_assert(g.code == 200 && strstr(g.body, "href=\"list/\""), "root listing:\n%s", g.body);
    ts_assert(!strstr(g.body, "href=\"../\""), "the root listing links to its parent");
    got_free(&g);
    stop_server();

    SERVE(hs_root, "--no-listing");
    expect_get("/list/", 403, NULL);
    expect_get("/", 403, NULL);
    expect_get("/list/a.txt", 200, "a");
}

/* ------------------------------------------------------------------------ */
/* Validators and ranges                                                    */
/* ------------------------------------------------------------------------ */

static void etag_of(const char *path, char *etag, size_t size)
{
    struct got g;
    CURL(&g, path, "-I");
    ts_assert(g.code == 200 && hs_field(g.head, "ETag", etag, size), "no ETag for %s", path);
    got_free(&g);
}

Test(http, conditional_requests, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text("c.txt", "conditional\n");
    hs_set_mtime("c.txt", OLD_MTIME);
    SERVE(hs_root);
    char etag[256], h[300];
    etag_of("/c.txt", etag, sizeof etag);
    struct got g;

    snprintf(h, sizeof h, "If-None-Match: %s", etag);
    CURL(&g, "/c.txt", "-H", h);
    ts_assert(g.code == 304, "If-None-Match (same): %d", g.code);
    ts_assert(g.body_len == 0, "a 304 with a body");
    expect_field(&g, "ETag", etag);
    got_free(&g);
    CURL(&g, "/c.txt", "-H", "If-None-Match: *");
    ts_assert(g.code == 304, "If-None-Match *: %d", g.code);
    got_free(&g);
    CURL(&g, "/c.txt", "-H", "If-None-Match: \"other\"");
    ts_assert(g.code == 200, "If-None-Match (other): %d", g.code);
    got_free(&g);

    CURL(&g, "/c.txt", "-H", "If-Modified-Since: " OLD_DATE);
    ts_assert(g.code == 304, "If-Modified-Since (same): %d", g.code);
    got_free(&g);
    CURL(&g, "/c.txt", "-H", "If-Modified-Since: Sat, 01 Jan 2022 00:00:00 GMT");
    ts_assert(g.code == 304, "If-Modified-Since (later): %d", g.code);
    got_free(&g);
    CURL(&g, "/c.txt", "-H", "If-Modified-Since: Wed, 01 Jan 2020 00:00:00 GMT");
    ts_assert(g.code == 200, "If-Modified-Since (older): %d", g.code);
    expect_body(&g, "conditional\n", 12);
    got_free(&g);
    /* If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2). */
    CURL(&g, "/c.txt", "-H", "If-None-Match: \"other\"", "-H",
         "If-Modified-Since: " OLD_DATE);
    ts_assert(g.code == 200, "If-None-Match other + IMS same: %d", g.code);
    got_free(&g);

    CURL(&g, "/c.txt", "-H", "If-Match: \"nope\"");
    ts_assert(g.code == 412, "If-Match mismatch: %d", g.code);
    got_free(&g);
    snprintf(h, sizeof h, "If-Match: %s", etag);
    CURL(&g, "/c.txt", "-H", h);
    ts_assert(g.code == 200, "If-Match same: %d", g.code);
    got_free(&g);
    CURL(&g, "/c.txt", "-H", "If-Unmodified-Since: Wed, 01 Jan 2020 00:00:00 GMT");
    ts_assert(g.code == 412, "If-Unmodified-Since older: %d", g.code);
    got_free(&g);
}

static void expect_range(const char *range, const char *data, size_t size, size_t first,
                         size_t last)
{
    char h[128], cr[128];
    struct got g;
    snprintf(h, sizeof h, "Range: %s", range);
    CURL(&g, "/r.bin", "-H", h);
    ts_assert(g.code == 206, "%s: status %d", range, g.code);
    snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", first, last, size);
    expect_field(&g, "Content-Range", cr);
    snprintf(cr, sizeof cr, "%zu", last - first + 1);
    expect_field(&g, "Content-Length", cr);
    expect_body(&g, data + first, last - first + 1);
    got_free(&g);
}

Test(http, ranges, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    char data[1000];
    ts_fill(data, sizeof data, 7);
    hs_put_file("r.bin", data, sizeof data);
    SERVE(hs_root);
    expect_range("bytes=0-4", data, 1000, 0, 4);
    expect_range("bytes=10-10", data, 1000, 10, 10);
    expect_range("bytes=-100", data, 1000, 900, 999);
    expect_range("bytes=-5000", data, 1000, 0, 999);
    expect_range("bytes=990-", data, 1000, 990, 999);
    expect_range("bytes=995-5000", data, 1000, 995, 999);

    struct got g;
    CURL(&g, "/r.bin", "-H", "Range: bytes=1000-");
    ts_assert(g.code == 416, "bytes=1000-: %d", g.code);
    expect_field(&g, "Content-Range", "bytes */1000");
    got_free(&g);
    CURL(&g, "/r.bin", "-H", "Range: bytes=5000-6000");
    ts_assert(g.code == 416, "bytes=5000-6000: %d", g.code);
    expect_field(&g, "Content-Range", "bytes */1000");
    got_free(&g);

    char etag[256], h[300];
    etag_of("/r.bin", etag, sizeof etag);
    CURL(&g, "/r.bin", "-H", "Range: bytes=0-4", "-H", "If-Range: \"stale\"");
    ts_assert(g.code == 200, "If-Range stale: %d", g.code);
    expect_no_field(&g, "Content-Range");
    expect_body(&g, data, sizeof data);
    got_free(&g);
    snprintf(h, sizeof h, "If-Range: %s", etag);
    CURL(&g, "/r.bin", "-H", "Range: bytes=0-4", "-H", h);
    ts_assert(g.code == 206, "If-Range current: %d", g.code);
    expect_body(&g, data, 5);
    got_free(&g);
    /* HEAD with a range: the fields of the part, no body. */
    CURL(&g, "/r.bin", "-I", "-H", "Range: bytes=0-4");
    ts_assert(g.code == 206, "HEAD range: %d", g.code);
    expect_field(&g, "Content-Range", "bytes 0-4/1000");
    got_free(&g);
}

/* ------------------------------------------------------------------------ */
/* Methods, versions, connections                                           */
/* ------------------------------------------------------------------------ */

Test(http, methods, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text("m.txt", "method\n");
    SERVE(hs_root);
    static const char *const refused[] = {"POST", "PUT", "DELETE"};
    for (size_t i = 0; i < 3; i++) {
        struct got g;
        CURL(&g, "/m.txt", "-X", refused[i], "--data-binary", "abc");
        ts_assert(g.code == 405, "%s: %d", refused[i], g.code);
        expect_field(&g, "Allow", "GET, HEAD");
        got_free(&g);
    }
    struct got g;
    CURL(&g, "/m.txt", "-X", "BREW");
    ts_assert(g.code == 501, "BREW: %d", g.code);
    expect_no_field(&g, "Allow");
    got_free(&g);
    expect_get("/m.txt", 200, "method\n");
}

/* Files k0.txt ... k<n-1>.txt, each holding its own name. */
static void put_k_files(int n)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "k%d.txt", i);
        hs_put_text(name, name);
    }
}

/* Each transfer's %{num_connects}, space-separated, from curl -v over urls. */
static char *connects_over(int nurls, const char *const *extra, char **err)
{
    char urls[8][128];
    const char *argv[40] = {"curl", "-v", "-sS", "--max-time", "20", "-o", "/dev/null",
                            "-w", "%{http_code}:%{num_connects} "};
    int n = 9;
    for (int i = 0; extra[i]; i++)
        argv[n++] = extra[i];
    for (int i = 0; i < nurls && i < 8; i++) {
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/k%d.txt", port, i);
        argv[n++] = "-o";
        argv[n++] = "/dev/null";
        argv[n++] = urls[i];
    }
    argv[n] = NULL;
    char *out;
    int status = hs_run(argv, CURL_MS, &out, err);
    ts_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "curl: status 0x%x: %s", status, *err);
    return out;
}

Test(http, keep_alive_reuses_the_connection, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    put_k_files(3);
    SERVE(hs_root);
    char *err, *out = connects_over(3, (const char *const[]){NULL}, &err);
    ts_assert(strcmp(out, "200:1 200:0 200:0 ") == 0, "connects: %s\n%s", out, err);
    ts_assert(strstr(err, "Re-using existing connection"), "no reuse in:\n%s", err);
    free(out);
    free(err);
}

Test(http, http10_works_and_closes, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    put_k_files(2);
    SERVE(hs_root);
    char *err, *out = connects_over(2, (const char *const[]){"--http1.0", NULL}, &err);
    ts_assert(strcmp(out, "200:1 200:1 ") == 0, "HTTP/1.0 connects: %s\n%s", out, err);
    free(out);
    free(err);

    /* Raw: no Host needed, the server closes after the response. */
    size_t len;
    char *all = raw_exchange("GET /k0.txt HTTP/1.0\r\n\r\n", &len);
    ts_assert(strncmp(all, "HTTP/1.1 200 ", 13) == 0, "HTTP/1.0 response: %s", all);
    char *body = strstr(all, "\r\n\r\n");
    ts_assert(body && strcmp(body + 4, "k0.txt") == 0, "HTTP/1.0 body: %s", all);
    ts_assert(!strcasestr(all, "keep-alive"), "HTTP/1.0 answered with keep-alive: %s", all);
    free(all);
    /* HTTP/1.0 asking for keep-alive gets it, and says so. */
    all = raw_exchange("GET /k0.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                       "GET /k1.txt HTTP/1.0\r\n\r\n", &len);
    ts_assert(strcasestr(all, "Connection: keep-alive\r\n") && strstr(all, "k1.txt"),
              "HTTP/1.0 keep-alive: %s", all);
    free(all);
}

/* ------------------------------------------------------------------------ */
/* The access log                                                           */
/* ------------------------------------------------------------------------ */

#define CLF_DATE "[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000"
#define CLF_START "^127\\.0\\.0\\.1 - - \\[" CLF_DATE "\\] "
#define CLF_TAIL " \"-\" \"curl/[^\"]+\" [01] [0-9]+$"

Test(http, access_log_has_one_line_per_request, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    put_k_files(3);
    SERVE(hs_root);
    char *err, *out = connects_over(3, (const char *const[]){NULL}, &err);
    free(out);
    free(err);
    expect_get("/nope", 404, NULL);
    /* Flushed every second: the lines come without stopping the server. */
    char line[1024];
    int rc = ts_wait_log(srv, CLF_START "\"GET /nope HTTP/1\\.1\" 404 [0-9]+" CLF_TAIL, HS_IO_MS,
                         line, sizeof line);
    ts_assert(rc == 0, "no access-log line for /nope");
    stop_server();
    for (int i = 0; i < 3; i++) {
        char re[512];
        snprintf(re, sizeof re, CLF_START "\"GET /k%d\\.txt HTTP/1\\.1\" 200 6" CLF_TAIL, i);
        ts_assert(ts_log_count(srv, re) == 1, "not one line for k%d.txt", i);
    }
    ts_assert(ts_log_count(srv, "^127\\.0\\.0\\.1 - - \\[") == 4, "not 4 access-log lines");
}

Test(http, access_log_file_and_off, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    hs_put_text("k0.txt", "k0.txt");
    char logpath[512];
    snprintf(logpath, sizeof logpath, "%s/access.log", hs_tmp);
    SERVE(hs_root, "--access-log", logpath);
    expect_get("/k0.txt", 200, "k0.txt");
    expect_get("/k0.txt", 200, "k0.txt");
    stop_server();
    ts_assert(ts_log_count(srv, "^127\\.0\\.0\\.1 - - ") == 0, "access lines on stdout");
    size_t len;
    char *text = hs_slurp(logpath, &len);
    int lines = 0;
    for (char *s = text; (s = strstr(s, "\"GET /k0.txt HTTP/1.1\" 200 6 ")); s++)
        lines++;
    ts_assert(lines == 2, "%d lines in the access log file:\n%s", lines, text);
    free(text);

    SERVE(hs_root, "--access-log", "off");
    expect_get("/k0.txt", 200, "k0.txt");
    stop_server();
    ts_assert(ts_log_count(srv, "GET /k0\\.txt") == 0, "--access-log off still logs");
}

/* Read from fd until want has come (or the deadline): whether it came. */
static bool recv_until(int fd, const char *want, int timeout_ms)
{
    char buf[8192];
    size_t len = 0;
    int64_t end = ts_now_ms() + timeout_ms;
    while (ts_now_ms() < end && len < sizeof buf - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, want))
            return true;
    }
    return false;
}

/* Sockets systemd passes (systemd-socket-activate passes one as a .socket
 * unit does, LISTEN_FDS) are served like bound ones: three requests on one
 * kept-alive connection. systemd's sockets are blocking: a worker that kept
 * one so slept in accept4 after the first request, and the second waited
 * for another client to come. */
Test(http, systemd_socket_serves_kept_alive_connections, .timeout = TIMEOUT)
{
    const char *activate = "/usr/bin/systemd-socket-activate";
    if (access(activate, X_OK) != 0)
        cr_skip_test("systemd-socket-activate (Debian's systemd package) is not installed");
    hs_tree("http");
    hs_put_text("index.html", "activated\n");
    char bin[4096], sock[400];
    ts_assert(realpath(ts_build_dir(), bin) && strlen(bin) < sizeof bin - 9, "build dir");
    strcat(bin, "/prefork");
    snprintf(sock, sizeof sock, "%s/activated.sock", hs_tmp);
    struct ts_proc *p = TS_START(activate, "-l", sock, bin, "serve", hs_root, "-w", "1");
    ts_assert(ts_wait_log(p, "Listening on", HS_START_MS, NULL, 0) == 0, "%s", ts_log(p));
    int fd = ts_connect_unix(sock, HS_START_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        ts_assert(ts_send_all(fd, req, sizeof req - 1, 5000) == 0, "send %d", i + 1);
        ts_assert(recv_until(fd, "activated\n", 10000), "no answer to request %d: %s", i + 1,
                  ts_log(p));
    }
    close(fd);
}
