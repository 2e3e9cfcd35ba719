/* test_http_load.c — `prefork serve` under concurrency: many clients, idle connections, wrk. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#define PREFORK "prefork"
#define START_MS 20000 /* generous: a slow machine under ASan */
#define IO_MS 10000
#define LOAD_MS 40000  /* all 500 clients, on 2 slow cores under ASan */
#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */

#define SMALL_LEN 1000        /* goes out with the head */
#define MID_LEN (64 * 1024)   /* goes out by sendfile */

static char base[256], root[300];
static struct ts_proc *srv;
static int port;
static char *small_data, *mid_data;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0; /* best effort: carry on with the rest of the tree */
}

static void fini(void)
{
    ts_cleanup();
    if (base[0])
        nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    base[0] = '\0';
    free(small_data);
    free(mid_data);
    small_data = mid_data = NULL;
}

TestSuite(http_load, .fini = fini);

static void put_file(const char *rel, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, n), (ssize_t)n, "write %s", path);
    close(fd);
}

/* A fresh root with small.bin and mid.bin, and the server on it. */
static void serve_files(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/pf-http-XXXXXX", t && *t ? t : "/tmp");
    cr_assert_not_null(mkdtemp(base), "mkdtemp: %s", strerror(errno));
    snprintf(root, sizeof root, "%s/root", base);
    cr_assert_eq(mkdir(root, 0755), 0, "mkdir: %s", strerror(errno));
    small_data = malloc(SMALL_LEN);
    mid_data = malloc(MID_LEN);
    cr_assert(small_data && mid_data);
    ts_fill(small_data, SMALL_LEN, 1);
    ts_fill(mid_data, MID_LEN, 2);
    put_file("small.bin", small_data, SMALL_LEN);
    put_file("mid.bin", mid_data, MID_LEN);
    srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2", "--access-log", "off");
    port = ts_wait_port(srv, START_MS);
    ts_assert(port > 0, "no start-up line with a port: %s", strerror(-port));
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

/* The response's status, its body and the bytes it takes, or -1 while it is
 * not whole. */
static long parse_resp(const char *p, size_t n, int *status, const char **body, size_t *blen)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end || strncmp(p, "HTTP/1.1 ", 9) != 0)
        return -1;
    size_t hl = (size_t)(end + 4 - p), cl = 0;
    const char *f = strcasestr(p, "\r\nContent-Length:");
    if (f && f < end)
        cl = strtoul(f + 17, NULL, 10);
    if (hl + cl > n)
        return -1;
    *status = atoi(p + 9);
    *body = p + hl;
    *blen = cl;
    return (long)(hl + cl);
}

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
        int status;
        const char *body;
        size_t blen;
        c->done = parse_resp(c->in, c->len, &status, &body, &blen) > 0;
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
    int status;
    const char *body;
    size_t blen;
    ts_assert(c->len > 0, "client %d: no response (connection closed)", i);
    long used = parse_resp(c->in, c->len, &status, &body, &blen);
    ts_assert(used > 0 && status == 200, "client %d: [%.100s]", i, c->in);
    size_t want = mid ? MID_LEN : SMALL_LEN;
    ts_assert(blen == want && memcmp(body, mid ? mid_data : small_data, want) == 0,
              "client %d: wrong body (%zu bytes)", i, blen);
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
        silent[i] = ts_connect_tcp(port, IO_MS);
        ts_assert(silent[i] >= 0, "connect: %s", strerror(-silent[i]));
    }

    /* A new client is served promptly (generous for a slow machine). */
    int64_t t0 = ts_now_ms();
    struct client fresh;
    client_start(&fresh, GET_SMALL_CLOSE);
    drive(&fresh, 1, IO_MS);
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

/* Run argv with stdout and stderr into one pipe, read whole; returns the
 * wait status or -ETIMEDOUT (the program is then killed by its pid). */
static int run_capture(char *const *argv, int timeout_ms, char *out, size_t size)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t parent = getpid(), pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    int64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        int64_t left = deadline - ts_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            break;
        ssize_t n = read(p[0], out + len, size - 1 - len);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
        if (n > 0)
            len += (size_t)n;
        if (len == size - 1)
            break;
    }
    out[len] = '\0';
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (ts_now_ms() >= deadline) {
            ts_kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -ETIMEDOUT;
        }
        poll(NULL, 0, 5);
    }
    return status;
}

Test(http_load, wrk_sees_no_errors, .timeout = TIMEOUT)
{
    char wrk[512];
    if (!on_path("wrk", wrk, sizeof wrk))
        cr_skip_test("wrk is not installed");
    serve_files();
    char url[128], out[16384];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/small.bin", port);
    char *argv[] = {wrk, "-t2", "-c16", "-d2s", "--timeout", "5s", url, NULL};
    int status = run_capture(argv, 20000, out, sizeof out);
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
}
