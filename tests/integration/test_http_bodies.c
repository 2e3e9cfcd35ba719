/* test_http_bodies.c — request bodies and streamed responses through the HTTP core on a real pool, driven by curl over TCP. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_support.h"

#define CURL_MS 60000
#define TIMEOUT 120 /* every Test: one value per program (Criterion 2.4 under ASan) */

static struct ts_proc *srv;
static int port;

TestSuite(bodies, .fini = hs_cleanup);

/* tests/helpers/http_bodies with 2 workers and ARGS (NULL: none); waits for its port. */
#define START(...)                                                                         \
    do {                                                                                   \
        hs_tree("bodies");                                                                 \
        srv = TS_START("tests/helpers/http_bodies", "-l", "127.0.0.1:0", "-w", "2",       \
                       __VA_ARGS__);                                                     \
        port = ts_wait_port(srv, HS_START_MS);                                             \
        ts_assert(port > 0, "no port");                                                    \
    } while (0)

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* A file of n bytes under hs_tmp, a known pattern; its path into path. */
static char *make_file(size_t n, char *path, size_t size)
{
    char *data = malloc(n + 1);
    cr_assert_not_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 131 + i / 4096);
    snprintf(path, size, "%s/up-%zu", hs_tmp, n);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    return data;
}

/* curl ARGS... URL: its stdout (the body, -w appended) and stderr. */
static int curl(char **out, char **err, const char *path, const char *const *extra)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    const char *argv[32] = {"curl", "-sS", "--max-time", "50"};
    int n = 4;
    for (int i = 0; extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n++] = url;
    argv[n] = NULL;
    int status = hs_run(argv, CURL_MS, out, err);
    ts_assert(status >= 0 && WIFEXITED(status), "curl %s: status 0x%x: %s", path, status, *err);
    return WEXITSTATUS(status);
}
#define CURL(out, err, path, ...) curl(out, err, path, (const char *const[]){__VA_ARGS__, NULL})

static void expect_sum(const char *out, const char *data, size_t n)
{
    char want[64];
    snprintf(want, sizeof want, "%zu %016llx\n200", n,
             (unsigned long long)fnv(0xcbf29ce484222325ull, data, n));
    ts_assert(strcmp(out, want) == 0, "got [%s], expected [%s]", out, want);
}

static void upload(const char *path, size_t n, const char *framing)
{
    char file[512], at[520], *out, *err;
    char *data = make_file(n, file, sizeof file);
    snprintf(at, sizeof at, "@%s", file);
    int rc = framing ? CURL(&out, &err, path, "-w", "%{http_code}", "--data-binary", at, "-H",
                            framing)
                     : CURL(&out, &err, path, "-w", "%{http_code}", "--data-binary", at);
    ts_assert(rc == 0, "curl exit %d: %s", rc, err);
    expect_sum(out, data, n);
    free(out);
    free(err);
    free(data);
}

Test(bodies, uploads_of_0_1_and_5mib_by_length_are_byte_exact, .timeout = TIMEOUT)
{
    START("--max-body-bytes", "8388608");
    upload("/sum", 0, NULL);
    upload("/sum", 1, NULL);
    /* curl sends "Expect: 100-continue" for a body this large: the 100
     * comes when the handler asks, then the body. */
    upload("/sum", 5u << 20, NULL);
    upload("/whole", 5u << 20, NULL);
}

Test(bodies, chunked_uploads_are_byte_exact, .timeout = TIMEOUT)
{
    START("--max-body-bytes", "8388608");
    upload("/sum", 1, "Transfer-Encoding: chunked");
    upload("/sum", 5u << 20, "Transfer-Encoding: chunked");
    upload("/whole", 70000, "Transfer-Encoding: chunked");
}

Test(bodies, body_past_the_limit_is_413_and_the_pool_goes_on, .timeout = TIMEOUT)
{
    char file[512], at[520], *out, *err;
    START("--max-body-bytes", "1000");
    free(make_file(5000, file, sizeof file));
    snprintf(at, sizeof at, "@%s", file);
    CURL(&out, &err, "/sum", "-w", "%{http_code}", "-o", "/dev/null", "--data-binary", at);
    ts_assert(strcmp(out, "413") == 0, "got [%s] (%s)", out, err);
    free(out);
    free(err);
    CURL(&out, &err, "/sum", "-w", "%{http_code}", "-o", "/dev/null", "--data-binary", at, "-H",
         "Transfer-Encoding: chunked");
    ts_assert(strcmp(out, "413") == 0, "chunked: got [%s] (%s)", out, err);
    free(out);
    free(err);
    upload("/sum", 1000, NULL);
}

Test(bodies, a_streamed_response_arrives_whole_and_chunked, .timeout = TIMEOUT)
{
    char *out, *err;
    START(NULL);
    char raw[512];
    snprintf(raw, sizeof raw, "%s/raw", hs_tmp);
    int rc = CURL(&out, &err, "/stream?5120", "--raw", "-o", raw, "-w", "%{http_code}");
    ts_assert(rc == 0 && strcmp(out, "200") == 0, "curl exit %d: %s %s", rc, out, err);
    free(out);
    free(err);
    /* 5 MiB in 1 KiB chunks, "400\r\n" + 1024 + "\r\n" each, and "0\r\n\r\n". */
    size_t len;
    char *got = hs_slurp(raw, &len);
    ts_assert(len == 5120 * (5 + 1024 + 2) + 5, "raw stream of %zu bytes", len);
    ts_assert(memcmp(got, "400\r\nabc", 8) == 0 && memcmp(got + len - 5, "0\r\n\r\n", 5) == 0,
              "chunked framing: [%.8s...]", got);
    free(got);
    rc = CURL(&out, &err, "/stream?3", "-w", "%{http_code}");
    ts_assert(rc == 0, "curl exit %d: %s", rc, err);
    ts_assert(strlen(out) == 3 * 1024 + 3 && strncmp(out, "abcdefghij", 10) == 0 &&
                  strcmp(out + 3 * 1024, "200") == 0,
              "decoded stream: [%.40s...] of %zu bytes", out, strlen(out));
    free(out);
    free(err);
}

/* Close with a reset (SO_LINGER 0), as a client that gives up does. */
static void reset_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* Clients that reset in the middle of a body, of a stream: the workers
 * stay up (none is replaced) and answer the next request. */
Test(bodies, resets_mid_body_and_mid_stream_leave_the_workers_serving, .timeout = TIMEOUT)
{
    START(NULL);
    for (int i = 0; i < 20; i++) {
        int fd = hs_connect(port);
        static const char head[] = "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                                   "partial body";
        static const char get[] = "GET /stream?100000 HTTP/1.1\r\nHost: x\r\n\r\n";
        const char *req = i % 2 ? head : get;
        size_t len = i % 2 ? sizeof head - 1 : sizeof get - 1;
        ts_assert(ts_send_all(fd, req, len, HS_IO_MS) == 0, "send");
        if (i % 2 == 0) {
            char buf[4096];
            struct pollfd pfd = {fd, POLLIN, 0};
            ts_assert(poll(&pfd, 1, HS_IO_MS) == 1 && read(fd, buf, sizeof buf) > 0,
                      "the stream began");
        }
        reset_close(fd);
    }
    char *out, *err;
    int rc = CURL(&out, &err, "/", "-w", "%{http_code}");
    ts_assert(rc == 0 && strcmp(out, "ok\n200") == 0, "after resets: [%s] %s", out, err);
    free(out);
    free(err);
    ts_assert(ts_log_count(srv, "exited|killed|signal") == 0, "a worker died:\n%s", ts_log(srv));
}
