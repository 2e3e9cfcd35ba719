/* test_http_load.c — `prefork serve` under concurrency: many clients, idle connections, wrk. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_support.h"

#define LOAD_MS 40000  /* all 500 clients, on 2 slow cores under ASan */
#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */

#define SMALL_LEN 1000        /* goes out with the head */
#define MID_LEN (64 * 1024)   /* goes out by sendfile */

static struct ts_proc *srv;
static int port;
static char *small_data, *mid_data;

static void fini(void)
{
    hs_cleanup();
    free(small_data);
    free(mid_data);
    small_data = mid_data = NULL;
}

TestSuite(http_load, .fini = fini);

/* A fresh root with small.bin and mid.bin, and the server on it. */
static void serve_files(void)
{
    hs_tree("pf-http");
    small_data = malloc(SMALL_LEN);
    mid_data = malloc(MID_LEN);
    cr_assert(small_data && mid_data);
    ts_fill(small_data, SMALL_LEN, 1);
    ts_fill(mid_data, MID_LEN, 2);
    hs_put_file("small.bin", small_data, SMALL_LEN);
    hs_put_file("mid.bin", mid_data, MID_LEN);
    port = HS_SERVE(&srv, "-w", "2", "--access-log", "off", hs_root);
}

/* ---- many clients in one poll loop ---- */

struct client {
    int fd;
    const char *req;
    size_t req_len, req_off;
    char *in;
    size_t len, cap;
    bool done;  /* a whole response came, or the end of the stream */
    bool eof;
};

static void client_start(struct client *c, const char *req)
{
    memset(c, 0, sizeof *c);
    c->req = req;
    c->req_len = strlen(req);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(c->fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((in_port_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(c->fd, (struct sockaddr *)&sin, sizeof sin);
    ts_assert(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
}

/* Queue another request on an open connection. */
static void client_again(struct client *c, const char *req)
{
    c->req = req;
    c->req_len = strlen(req);
    c->req_off = 0;
    c->len = 0;
    c->done = false;
}

static void client_send(struct client *c)
{
    int err = 0;
    socklen_t elen = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    ts_assert(err == 0, "connect: %s", strerror(err));
    ssize_t w = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
    if (w > 0)
        c->req_off += (size_t)w;
    else
        ts_assert(errno == EAGAIN || errno == EINTR, "send: %s", strerror(errno));
}

static void client_recv(struct client *c)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 128 * 1024;
        c->in = realloc(c->in, c->cap);
        cr_assert_not_null(c->in);
    }
    ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len - 1, 0);
    if (r > 0) {
        c->len += (size_t)r;
        c->in[c->len] = '\0';
        struct hs_resp resp;
        c->done = hs_parse_resp(c->in, c->len, false, &resp) > 0;
    } else if (r == 0) {
        c->done = c->eof = true;
    } else {
        ts_assert(errno == EAGAIN || errno == EINTR, "recv: %s", strerror(errno));
    }
}

/* Drive every client until each has its response, or fail at the deadline. */
static void drive(struct client *cs, int n, int timeout_ms)
{
    struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
    int *idx = calloc((size_t)n, sizeof *idx);
    cr_assert(pfd && idx);
    int64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (cs[i].done)
                continue;
            short ev = cs[i].req_off < cs[i].req_len ? POLLOUT : POLLIN;
            pfd[k] = (struct pollfd){cs[i].fd, ev, 0};
            idx[k++] = i;
        }
        if (k == 0)
            break;
        int64_t left = deadline - ts_now_ms();
        ts_assert(left > 0, "%d of %d clients still waiting after %d ms", k, n, timeout_ms);
        int r = poll(pfd, (nfds_t)k, (int)left);
        ts_assert(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        for (int j = 0; j < k && r > 0; j++) {
            struct client *c = &cs[idx[j]];
            if (!pfd[j].revents)
                continue;
            if (c->req_off < c->req_len)
                client_send(c);
            else
                client_recv(c);
        }
    }
    free(pfd);
    free(idx);
}

/* Client i's response: 200 with the body of the file it asked for. */
static void check_client(const struct client *c, int i, bool mid)
{
    struct hs_resp r;
    ts_assert(c->len > 0, "client %d: no response (connection closed)", i);
    long used = hs_parse_resp(c->in, c->len, false, &r);
    ts_assert(used > 0 && r.status == 200, "client %d: [%.100s]", i, c->in);
    size_t want = mid ? MID_LEN : SMALL_LEN;
    ts_assert(r.body_len == want && memcmp(r.body, mid ? mid_data : small_data, want) == 0,
              "client %d: wrong body (%zu bytes)", i, r.body_len);
}

static void clients_free(struct client *cs, int n)
{
    for (int i = 0; i < n; i++) {
        if (cs[i].fd >= 0)
            close(cs[i].fd);
        free(cs[i].in);
    }
    free(cs);
}

#define GET_SMALL "GET /small.bin HTTP/1.1\r\nHost: x\r\n\r\n"
#define GET_SMALL_CLOSE "GET /small.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
#define GET_MID_CLOSE "GET /mid.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

Test(http_load, five_hundred_concurrent_connections, .timeout = TIMEOUT)
{
    enum { N = 500 };
    serve_files();
    struct client *cs = calloc(N, sizeof *cs);
    cr_assert_not_null(cs);
    for (int i = 0; i < N; i++)
        client_start(&cs[i], i % 2 ? GET_MID_CLOSE : GET_SMALL_CLOSE);
    drive(cs, N, LOAD_MS);
    for (int i = 0; i < N; i++)
        check_client(&cs[i], i, i % 2);
    clients_free(cs, N);
}

Test(http_load, idle_connections_do_not_starve_new_clients, .timeout = TIMEOUT)
{
    enum { IDLE = 200, SILENT = 100 };
    serve_files();
    /* 200 keep-alive connections that have each been served once. */
    struct client *cs = calloc(IDLE, sizeof *cs);
    cr_assert_not_null(cs);
    for (int i = 0; i < IDLE; i++)
        client_start(&cs[i], GET_SMALL);
    drive(cs, IDLE, LOAD_MS);
    for (int i = 0; i < IDLE; i++)
        check_client(&cs[i], i, false);
    /* And 100 that connected and said nothing. */
    int silent[SILENT];
    for (int i = 0; i < SILENT; i++) {
        silent[i] = ts_connect_tcp(port, HS_IO_MS);
        ts_assert(silent[i] >= 0, "connect: %s", strerror(-silent[i]));
    }

    /* A new client is served promptly (generous for a slow machine). */
    int64_t t0 = ts_now_ms();
    struct client fresh;
    client_start(&fresh, GET_SMALL_CLOSE);
    drive(&fresh, 1, HS_IO_MS);
    int64_t took = ts_now_ms() - t0;
    check_client(&fresh, -1, false);
    close(fresh.fd);
    free(fresh.in);
    ts_assert(took < 2000, "a new client waited %lld ms beside %d idle connections",
              (long long)took, IDLE + SILENT);

    /* The idle ones are still served on their own connections. */
    for (int i = 0; i < IDLE; i++)
        client_again(&cs[i], GET_SMALL);
    drive(cs, IDLE, LOAD_MS);
    for (int i = 0; i < IDLE; i++) {
        ts_assert(!cs[i].eof, "idle connection %d was closed", i);
        check_client(&cs[i], i, false);
    }
    for (int i = 0; i < SILENT; i++)
        close(silent[i]);
    clients_free(cs, IDLE);
}

/* ---- wrk ---- */

/* The full path of a program on PATH, or false. */
static bool on_path(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path && *path ? path : "/usr/bin:/bin");
    for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, size, "%s/%s", d, name);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

Test(http_load, wrk_sees_no_errors, .timeout = TIMEOUT)
{
    char wrk[512];
    if (!on_path("wrk", wrk, sizeof wrk))
        cr_skip_test("wrk is not installed");
    serve_files();
    char url[128], *out, *err;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/small.bin", port);
    const char *argv[] = {wrk, "-t2", "-c16", "-d2s", "--timeout", "5s", url, NULL};
    int status = hs_run(argv, 20000, &out, &err);
    /* One text, stdout then stderr: what wrk says, wherever it says it. */
    struct hs_buf all = {0};
    hs_buf_add(&all, out, strlen(out));
    hs_buf_add(&all, err, strlen(err));
    free(out);
    free(err);
    out = all.p;
    ts_assert(status >= 0, "wrk ran past its deadline:\n%s", out);
    ts_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wrk: status 0x%x\n%s", status,
              out);
    const char *sum = strstr(out, " requests in ");
    ts_assert(sum, "no summary from wrk:\n%s", out);
    const char *line = sum;
    while (line > out && line[-1] != '\n')
        line--;
    long requests = strtol(line, NULL, 10);
    ts_assert(requests > 0, "wrk made no request:\n%s", out);
    /* wrk prints these lines only when the counts are not zero. */
    ts_assert(!strstr(out, "Socket errors:"), "wrk saw socket errors:\n%s", out);
    ts_assert(!strstr(out, "Non-2xx or 3xx responses:"), "wrk saw non-2xx responses:\n%s", out);
    ts_assert(ts_pid_alive(srv->pid), "the server died under wrk");
    free(out);
}
