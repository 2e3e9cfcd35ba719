/* http_support.c — helpers shared by the tests of `prefork serve`: tree, server, raw exchanges, responses, programs. */
#include "http_support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#define MAX_SERVE_ARGS 40

char hs_base[256], hs_root[300], hs_tmp[300];

/* ------------------------------------------------------------------------ */
/* The document-root tree                                                   */
/* ------------------------------------------------------------------------ */

void hs_tree(const char *prefix)
{
    cr_assert(!hs_base[0], "one tree per test");
    const char *t = getenv("TMPDIR");
    snprintf(hs_base, sizeof hs_base, "%s/%s-XXXXXX", t && *t ? t : "/tmp", prefix);
    cr_assert_not_null(mkdtemp(hs_base), "mkdtemp: %s", strerror(errno));
    snprintf(hs_root, sizeof hs_root, "%s/root", hs_base);
    snprintf(hs_tmp, sizeof hs_tmp, "%s/tmp", hs_base);
    cr_assert(mkdir(hs_root, 0755) == 0 && mkdir(hs_tmp, 0755) == 0, "mkdir: %s",
              strerror(errno));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0; /* best effort: carry on with the rest of the tree */
}

void hs_cleanup(void)
{
    ts_cleanup();
    if (hs_base[0])
        nftw(hs_base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    hs_base[0] = hs_root[0] = hs_tmp[0] = '\0';
}

void hs_path(const char *rel, char *out, size_t size)
{
    cr_assert(hs_root[0], "no tree: call hs_tree first");
    snprintf(out, size, "%s/%s", hs_root, rel);
}

void hs_put_file(const char *rel, const void *data, size_t n)
{
    char path[1024];
    hs_path(rel, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, n), (ssize_t)n, "write %s", path);
    close(fd);
}

void hs_put_text(const char *rel, const char *text)
{
    hs_put_file(rel, text, strlen(text));
}

void hs_make_dir(const char *rel)
{
    char path[1024];
    hs_path(rel, path, sizeof path);
    cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %s", path, strerror(errno));
}

void hs_set_mtime(const char *rel, time_t t)
{
    char path[1024];
    hs_path(rel, path, sizeof path);
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "utimensat: %s", strerror(errno));
}

char *hs_slurp(const char *path, size_t *len)
{
    struct hs_buf b = {0};
    hs_buf_add(&b, "", 0);
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return b.p;
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        hs_buf_add(&b, chunk, (size_t)n);
    close(fd);
    *len = b.len;
    return b.p;
}

/* ------------------------------------------------------------------------ */
/* The server                                                               */
/* ------------------------------------------------------------------------ */

int hs_serve(struct ts_proc **srv, const char *const *args)
{
    const char *argv[MAX_SERVE_ARGS] = {"prefork", "serve", "-l", "127.0.0.1:0"};
    int n = 4;
    for (int i = 0; args[i]; i++) {
        cr_assert_lt(n, MAX_SERVE_ARGS - 1, "too many arguments for prefork serve");
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    struct ts_proc *p = ts_start(argv);
    int port = ts_wait_port(p, HS_START_MS);
    ts_assert(port > 0, "no start-up line with a port: %s", strerror(-port));
    if (srv)
        *srv = p;
    return port;
}

/* ------------------------------------------------------------------------ */
/* Bytes                                                                    */
/* ------------------------------------------------------------------------ */

void hs_buf_add(struct hs_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

const char *hs_shown(const char *s, size_t n)
{
    static char out[200];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof out; i++) {
        char c = s[i];
        if (c == '\r' || c == '\n' || c == '\0') {
            out[o++] = '\\';
            out[o++] = c == '\r' ? 'r' : c == '\n' ? 'n' : '0';
        } else {
            out[o++] = c >= 0x20 && c < 0x7f ? c : '?';
        }
    }
    snprintf(out + o, sizeof out - o, "%s", o + 5 >= sizeof out ? "..." : "");
    return out;
}

/* ------------------------------------------------------------------------ */
/* Raw connections                                                          */
/* ------------------------------------------------------------------------ */

int hs_connect(int port)
{
    int fd = ts_connect_tcp(port, HS_IO_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    return fd;
}

int hs_read_to_eof(int fd, struct hs_buf *b, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    char chunk[65536];
    hs_buf_add(b, "", 0);
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            hs_buf_add(b, chunk, (size_t)n);
            continue;
        }
        if (n == 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - ts_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            return -ETIMEDOUT;
    }
}

char *hs_exchange(int port, const void *req, size_t n, size_t *len)
{
    int fd = hs_connect(port);
    int err = ts_send_all(fd, req, n, HS_IO_MS);
    ts_assert(err == 0, "send [%s]: %s", hs_shown(req, n), strerror(-err));
    struct hs_buf b = {0};
    err = hs_read_to_eof(fd, &b, HS_IO_MS);
    close(fd);
    ts_assert(err == 0, "[%s]: %s; got [%s]", hs_shown(req, n), strerror(-err), b.p);
    *len = b.len;
    return b.p;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

const char *hs_field(const char *head, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *s = strstr(head, "\r\n"); s && s[2] && s[2] != '\r';
         s = strstr(s + 2, "\r\n")) {
        const char *line = s + 2;
        if (strncasecmp(line, name, n) != 0 || line[n] != ':')
            continue;
        const char *v = line + n + 1;
        v += strspn(v, " \t");
        snprintf(out, size, "%.*s", (int)strcspn(v, "\r\n"), v);
        return out;
    }
    return NULL;
}

long hs_parse_resp(const char *p, size_t n, bool head_only, struct hs_resp *r)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end || n < 13 || strncmp(p, "HTTP/1.1 ", 9) != 0)
        return -1;
    size_t hl = (size_t)(end + 4 - p), cl = 0;
    snprintf(r->head, sizeof r->head, "%.*s", (int)hl, p);
    r->status = atoi(p + 9);
    char v[64];
    if (!head_only && r->status != 304 && hs_field(r->head, "Content-Length", v, sizeof v))
        cl = strtoul(v, NULL, 10);
    if (hl + cl > n)
        return -1;
    r->body = p + hl;
    r->body_len = cl;
    return (long)(hl + cl);
}

/* ------------------------------------------------------------------------ */
/* Programs                                                                 */
/* ------------------------------------------------------------------------ */

/* In the child, between fork and exec: it dies with the test and starts with
 * default SIGPIPE (the test ignores it). */
_Noreturn static void exec_child(const char *const *argv, pid_t parent, int out, int err)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* Read both pipes until both close or the deadline passes. */
static bool drain_pipes(int fds[2], struct hs_buf out[2], int64_t deadline)
{
    int open_fds = 2;
    char chunk[65536];
    while (open_fds > 0) {
        struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int64_t left = deadline - ts_now_ms();
        if (left <= 0 || poll(pfd, 2, (int)left) == 0)
            return false;
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !pfd[i].revents)
                continue;
            ssize_t n = read(fds[i], chunk, sizeof chunk);
            if (n > 0) {
                hs_buf_add(&out[i], chunk, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
            }
        }
    }
    return true;
}

int hs_run(const char *const *argv, int timeout_ms, char **out, char **err)
{
    int po[2], pe[2];
    cr_assert(pipe2(po, O_CLOEXEC) == 0 && pipe2(pe, O_CLOEXEC) == 0);
    pid_t parent = getpid(), pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        exec_child(argv, parent, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    int fds[2] = {po[0], pe[0]}, status = -ETIMEDOUT;
    struct hs_buf b[2] = {{0}, {0}};
    hs_buf_add(&b[0], "", 0);
    hs_buf_add(&b[1], "", 0);
    int64_t deadline = ts_now_ms() + timeout_ms;
    bool done = drain_pipes(fds, b, deadline);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    while (done && waitpid(pid, &status, WNOHANG) == 0 && ts_now_ms() < deadline)
        poll(NULL, 0, 5);
    if (!done || status == -ETIMEDOUT) {
        ts_kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        status = -ETIMEDOUT;
    }
    *out = b[0].p;
    *err = b[1].p;
    return status;
}
