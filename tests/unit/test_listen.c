/* test_listen.c — unit tests for pf_listen_open, pf_listen_somaxconn and pf_listen_systemd on loopback. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prefork.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static int open_spec(const char *spec, int backlog, int flags)
{
    struct pf_addr a;
    const char *why = NULL;

    cr_assert_eq(pf_addr_parse(spec, &a, &why), 0, "%s: %s", spec,
                 why ? why : "?");
    return pf_listen_open(&a, backlog, flags);
}

static unsigned local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    cr_assert_eq(ss.ss_family, AF_INET6);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void expect_nonblock_cloexec(int fd)
{
    cr_expect(fcntl(fd, F_GETFL) & O_NONBLOCK, "fd %d blocking", fd);
    cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC, "fd %d not close-on-exec", fd);
}

static int connect_v4(unsigned port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((in_port_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0,
                 "connect 127.0.0.1:%u: %s", port, strerror(errno));
    return fd;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&un, sizeof un), 0,
                 "connect %s: %s", path, strerror(errno));
    return fd;
}

/* The listeners are non-blocking: wait (bounded) for the connection. */
static void expect_accept(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    int c;

    cr_assert_eq(poll(&p, 1, 5000), 1, "no connection to accept");
    c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(c, 0, "accept4: %s", strerror(errno));
    close(c);
}

/* A temporary directory for Unix socket paths, removed by fini. */
static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/pf-listen-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char path[128];

    snprintf(path, sizeof path, "%s/s", dir);
    unlink(path);
    rmdir(dir);
}

static char *sock_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s/s", dir);
    return buf;
}

static int open_unix_at(const char *path)
{
    char spec[160];

    snprintf(spec, sizeof spec, "unix:%s", path);
    return open_spec(spec, 0, 0);
}

/* A plain Unix socket bound to path, listening or not. */
static int bind_unix_raw(const char *path, bool do_listen)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
    if (do_listen)
        cr_assert_eq(listen(fd, 8), 0);
    return fd;
}

/* ------------------------------------------------------------------------ */
/* TCP                                                                      */
/* ------------------------------------------------------------------------ */

Test(listen, tcp_v4_port0, .timeout = 10)
{
    int fd = open_spec("127.0.0.1:0", 0, 0);
    int c;

    cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
    cr_expect_neq(local_port(fd), 0);
    expect_nonblock_cloexec(fd);
    c = connect_v4(local_port(fd));
    expect_accept(fd);
    close(c);
    close(fd);
}

Test(listen, tcp_port_in_use, .timeout = 10)
{
    int fd = open_spec("127.0.0.1:0", 0, 0);
    char spec[32];

    cr_assert_geq(fd, 0);
    snprintf(spec, sizeof spec, "127.0.0.1:%u", local_port(fd));
    cr_expect_eq(open_spec(spec, 0, 0), -EADDRINUSE);
    /* Without REUSEPORT on the first socket, asking for it does not help. */
    cr_expect_eq(open_spec(spec, 0, PF_LISTEN_REUSEPORT), -EADDRINUSE);
    close(fd);
}

Test(listen, tcp_reuseport, .timeout = 10)
{
    int a = open_spec("127.0.0.1:0", 0, PF_LISTEN_REUSEPORT);
    int b;
    char spec[32];
    int on = 0;
    socklen_t len = sizeof on;

    cr_assert_geq(a, 0);
    cr_assert_eq(getsockopt(a, SOL_SOCKET, SO_REUSEPORT, &on, &len), 0);
    cr_expect_eq(on, 1);
    snprintf(spec, sizeof spec, "127.0.0.1:%u", local_port(a));
    b = open_spec(spec, 0, PF_LISTEN_REUSEPORT);
    cr_assert_geq(b, 0, "second REUSEPORT bind: %s", strerror(-b));
    cr_expect_eq(local_port(b), local_port(a));
    /* A third socket that does not ask for REUSEPORT is still refused. */
    cr_expect_eq(open_spec(spec, 0, 0), -EADDRINUSE);
    close(b);
    close(a);
}

Test(listen, tcp_v6_loopback, .timeout = 10)
{
    int fd = open_spec("[::1]:0", 0, 0);
    int v6only = -1;
    socklen_t len = sizeof v6only;

    if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT)
        cr_skip("no IPv6 on lo: %s", strerror(-fd));
    cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
    cr_expect_neq(local_port(fd), 0);
    cr_assert_eq(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    cr_expect_eq(v6only, 1, "a [V6] literal is bound IPv6-only");
    expect_nonblock_cloexec(fd);
    close(fd);
}

/* ":0" listens on every interface, so IPv4 loopback reaches it whether it
 * got the dual-stack [::] or the 0.0.0.0 fallback. */
Test(listen, tcp_any_accepts_v4, .timeout = 10)
{
    int fd = open_spec(":0", 0, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int c;

    cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET6) {
        int v6only = -1;
        len = sizeof v6only;
        cr_assert_eq(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len),
                     0);
        cr_expect_eq(v6only, 0, "[::] must be dual-stack");
    }
    expect_nonblock_cloexec(fd);
    c = connect_v4(local_port(fd));
    expect_accept(fd);
    close(c);
    close(fd);
}

/* TCP_INFO on a listening socket reports its accept-queue limit in
 * tcpi_sacked, which shows the backlog that listen() was given. */
static unsigned backlog_of(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;

    cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
    return ti.tcpi_sacked;
}

Test(listen, backlog_default, .timeout = 10)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int want = 4096;
    int fd;

    if (f) {
        cr_assert_eq(fscanf(f, "%d", &want), 1);
        fclose(f);
    }
    cr_expect_eq(pf_listen_somaxconn(), want);
    fd = open_spec("127.0.0.1:0", 0, 0);
    cr_assert_geq(fd, 0);
    cr_expect_eq(backlog_of(fd), (unsigned)want);
    close(fd);
    fd = open_spec("127.0.0.1:0", -5, 0);
    cr_assert_geq(fd, 0);
    cr_expect_eq(backlog_of(fd), (unsigned)want);
    close(fd);
    fd = open_spec("127.0.0.1:0", 7, 0);
    cr_assert_geq(fd, 0);
    cr_expect_eq(backlog_of(fd), 7);
    close(fd);
}

/* ------------------------------------------------------------------------ */
/* Unix                                                                     */
/* ------------------------------------------------------------------------ */

TestSuite(unix_listen, .init = make_dir, .fini = remove_dir);

Test(unix_listen, fresh_path, .timeout = 10)
{
    char path[128];
    struct stat st;
    int fd, c;

    umask(027);
    fd = open_unix_at(sock_path(path, sizeof path));
    cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
    expect_nonblock_cloexec(fd);
    cr_assert_eq(lstat(path, &st), 0);
    cr_expect(S_ISSOCK(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0750, "mode %o follows the umask",
                 st.st_mode & 0777);
    c = connect_unix(path);
    expect_accept(fd);
    close(c);
    close(fd);
}

Test(unix_listen, stale_socket_replaced, .timeout = 10)
{
    char path[128];
    int old, fd, c;

    sock_path(path, sizeof path);
    old = bind_unix_raw(path, true);
    close(old); /* dies without unlinking: the file stays */
    cr_assert_eq(access(path, F_OK), 0);
    fd = open_unix_at(path);
    cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
    c = connect_unix(path);
    expect_accept(fd);
    close(c);
    close(fd);
}

Test(unix_listen, stale_never_listened, .timeout = 10)
{
    char path[128];
    int old, fd;

    sock_path(path, sizeof path);
    old = bind_unix_raw(path, false);
    close(old);
    fd = open_unix_at(path);
    cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
    close(fd);
}

Test(unix_listen, live_socket_kept, .timeout = 10)
{
    char path[128];
    int live, c;

    sock_path(path, sizeof path);
    live = bind_unix_raw(path, true);
    cr_expect_eq(open_unix_at(path), -EADDRINUSE);
    /* The live server still owns the path. The probe's own connection is
     * queued on it too; accept that one first. */
    expect_accept(live);
    c = connect_unix(path);
    expect_accept(live);
    close(c);
    close(live);
}

/* A live server whose backlog is full makes the probe's connect wait; the
 * wait is bounded and still counts as live. */
Test(unix_listen, live_socket_full_backlog, .timeout = 10)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char path[96];
    int live, c[8], n = 0;

    sock_path(path, sizeof path);
    live = bind_unix_raw(path, false);
    cr_assert_eq(listen(live, 0), 0);
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    for (; n < 8; n++) {
        c[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        cr_assert_geq(c[n], 0);
        if (connect(c[n], (struct sockaddr *)&un, sizeof un) < 0) {
            cr_assert_eq(errno, EAGAIN, "connect: %s", strerror(errno));
            break;
        }
    }
    cr_assert_lt(n, 8, "the backlog never filled");
    cr_expect_eq(open_unix_at(path), -EADDRINUSE);
    for (int i = 0; i <= n; i++)
        close(c[i]);
    close(live);
}

Test(unix_listen, regular_file_kept, .timeout = 10)
{
    char path[128], got[16] = {0};
    int f;

    sock_path(path, sizeof path);
    f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_geq(f, 0);
    cr_assert_eq(write(f, "keep", 4), 4);
    close(f);
    cr_expect_eq(open_unix_at(path), -EEXIST);
    f = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(f, 0, "the file was removed");
    cr_expect_eq(read(f, got, sizeof got - 1), 4);
    cr_expect_str_eq(got, "keep");
    close(f);
}

Test(unix_listen, missing_directory, .timeout = 10)
{
    char path[128];

    snprintf(path, sizeof path, "%s/no/such/s", dir);
    cr_expect_eq(open_unix_at(path), -ENOENT);
}

Test(unix_listen, abstract, .timeout = 10)
{
    char spec[64];
    int a;

    snprintf(spec, sizeof spec, "unix:@pf-test-%ld", (long)getpid());
    a = open_spec(spec, 0, 0);
    cr_assert_geq(a, 0, "open: %s", strerror(-a));
    cr_expect_eq(open_spec(spec, 0, 0), -EADDRINUSE);
    close(a);
    /* The name went with its socket. */
    a = open_spec(spec, 0, 0);
    cr_expect_geq(a, 0);
    close(a);
}

/* ------------------------------------------------------------------------ */
/* Inherited descriptors                                                    */
/* ------------------------------------------------------------------------ */

static int open_fd_spec(int fd)
{
    char spec[32];

    snprintf(spec, sizeof spec, "fd:%d", fd);
    return open_spec(spec, 0, 0);
}

Test(listen, fd_listening, .timeout = 10)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* blocking, inheritable */

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(listen(fd, 8), 0);
    cr_expect_eq(open_fd_spec(fd), fd);
    expect_nonblock_cloexec(fd);
    close(fd);
}

Test(listen, fd_not_listening, .timeout = 10)
{
    int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int p[2];

    cr_assert_geq(tcp, 0);
    cr_assert_geq(udp, 0);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    cr_expect_eq(open_fd_spec(tcp), -EINVAL);
    cr_expect_eq(open_fd_spec(udp), -EINVAL);
    cr_expect_eq(open_fd_spec(p[0]), -ENOTSOCK);
    close(tcp);
    close(udp);
    close(p[0]);
    close(p[1]);
    cr_assert_lt(fcntl(1000, F_GETFD), 0, "fd 1000 is open");
    cr_expect_eq(open_fd_spec(1000), -EBADF);
}

/* ------------------------------------------------------------------------ */
/* systemd socket activation                                                */
/* ------------------------------------------------------------------------ */

/* fds 3 and 4 belong to Criterion in the test process (its event fds and
 * pipes, used by its threads), so each case runs in a forked child that
 * may overwrite them; results come back through shared memory. */
struct sd_case {
    const char *pid;   /* LISTEN_PID: NULL unset, "self", "parent", or as is */
    const char *fds;   /* LISTEN_FDS, NULL unset */
    const char *names; /* LISTEN_FDNAMES, NULL unset */
    int nsock;         /* listening sockets placed at 3.. */
    int max;
};

struct sd_result {
    int r;
    int fds[4];
    char names[4][64];
    bool env_left;
    int cloexec[2];
};

/* In the child: no Criterion asserts, which would talk to the runner
 * through descriptors the child is about to overwrite. */
static void place_sockets(int n)
{
    struct pf_addr a;

    if (pf_addr_parse("127.0.0.1:0", &a, NULL) < 0)
        _exit(2);
    for (int i = 0; i < n; i++) {
        int s = pf_listen_open(&a, 0, 0);
        if (s < 0 || dup2(s, 3 + i) < 0) /* dup2 clears close-on-exec */
            _exit(2);
        close(s);
    }
}

static void set_env(const char *name, const char *value)
{
    char buf[32];

    if (!value)
        return;
    if (strcmp(value, "self") == 0)
        snprintf(buf, sizeof buf, "%ld", (long)getpid());
    else if (strcmp(value, "parent") == 0)
        snprintf(buf, sizeof buf, "%ld", (long)getppid());
    else {
        setenv(name, value, 1);
        return;
    }
    setenv(name, buf, 1);
}

static void sd_child(const struct sd_case *c, struct sd_result *out)
{
    char(*names)[64] = out->names;

    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    place_sockets(c->nsock);
    set_env("LISTEN_PID", c->pid);
    set_env("LISTEN_FDS", c->fds);
    set_env("LISTEN_FDNAMES", c->names);
    out->r = pf_listen_systemd(out->fds, names, c->max);
    out->env_left = getenv("LISTEN_PID") || getenv("LISTEN_FDS") ||
                    getenv("LISTEN_FDNAMES");
    for (int i = 0; i < 2; i++)
        out->cloexec[i] = fcntl(3 + i, F_GETFD) & FD_CLOEXEC;
    _exit(0);
}

static struct sd_result run_sd(const struct sd_case *c)
{
    struct sd_result *shared, res;
    int status;
    pid_t pid;

    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(shared, MAP_FAILED);
    memset(shared, 0, sizeof *shared);
    for (int i = 0; i < 4; i++)
        shared->fds[i] = -1;
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        sd_child(c, shared);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child failed (status %d)", status);
    res = *shared;
    munmap(shared, sizeof *shared);
    return res;
}

Test(systemd, two_named, .timeout = 10)
{
    struct sd_case c = {"self", "2", "a:b", 2, 4};
    struct sd_result r = run_sd(&c);

    cr_expect_eq(r.r, 2);
    cr_expect_eq(r.fds[0], 3);
    cr_expect_eq(r.fds[1], 4);
    cr_expect_str_eq(r.names[0], "a");
    cr_expect_str_eq(r.names[1], "b");
    cr_expect_not(r.env_left, "variables still set");
    cr_expect(r.cloexec[0] && r.cloexec[1], "fds not close-on-exec");
}

Test(systemd, unnamed_and_long_names, .timeout = 10)
{
    char longname[100 + 3];
    struct sd_case c = {"self", "2", NULL, 2, 2};
    struct sd_result r = run_sd(&c);

    cr_expect_eq(r.r, 2);
    cr_expect_str_eq(r.names[0], "unknown");
    cr_expect_str_eq(r.names[1], "unknown");
    memset(longname, 'n', 100);
    strcpy(longname + 100, ":x");
    c.names = longname;
    r = run_sd(&c);
    cr_expect_eq(r.r, 2);
    cr_expect_eq(strlen(r.names[0]), 63);
    cr_expect_str_eq(r.names[1], "x");
}

Test(systemd, one_without_names_array, .timeout = 10)
{
    struct sd_case c = {"self", "1", "only", 1, 1};
    struct sd_result r = run_sd(&c);

    cr_expect_eq(r.r, 1);
    cr_expect_str_eq(r.names[0], "only");
}

Test(systemd, more_than_max, .timeout = 10)
{
    struct sd_case c = {"self", "2", "a:b", 2, 1};
    struct sd_result r = run_sd(&c);

    cr_expect_eq(r.r, -E2BIG);
    cr_expect_eq(r.fds[0], 3);
    cr_expect_eq(r.fds[1], -1, "wrote past max");
    cr_expect(r.cloexec[0] && r.cloexec[1], "the extra fd leaks to children");
    cr_expect_not(r.env_left);
}

Test(systemd, other_pid_or_absent, .timeout = 10)
{
    struct sd_case other = {"parent", "2", "a:b", 2, 4};
    struct sd_case absent = {NULL, NULL, NULL, 2, 4};
    struct sd_case no_fds = {"self", NULL, NULL, 2, 4};
    struct sd_result r = run_sd(&other);

    cr_expect_eq(r.r, 0);
    cr_expect_not(r.env_left);
    cr_expect(!r.cloexec[0] && !r.cloexec[1], "touched fds not ours");
    r = run_sd(&absent);
    cr_expect_eq(r.r, 0);
    r = run_sd(&no_fds);
    cr_expect_eq(r.r, 0);
    cr_expect_not(r.env_left);
}

Test(systemd, malformed, .timeout = 10)
{
    static const struct sd_case cases[] = {
        {"abc", "2", NULL, 2, 4},   {"", "2", NULL, 2, 4},
        {"0", "2", NULL, 2, 4},     {"-1", "2", NULL, 2, 4},
        {"self", "x", NULL, 2, 4},  {"self", "-1", NULL, 2, 4},
        {"self", "2x", NULL, 2, 4}, {"self", "", NULL, 2, 4},
        {"self", "99999999999999999999", NULL, 2, 4},
        {"self", "2", "a", 2, 4},   {"self", "2", "a:b:c", 2, 4},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sd_result r = run_sd(&cases[i]);
        cr_expect_eq(r.r, -EINVAL, "case %zu (pid %s, fds %s, names %s)", i,
                     cases[i].pid, cases[i].fds,
                     cases[i].names ? cases[i].names : "unset");
        cr_expect_not(r.env_left, "case %zu left variables", i);
    }
}

Test(systemd, bad_arguments, .timeout = 10)
{
    int fds[1];

    cr_expect_eq(pf_listen_systemd(fds, NULL, -1), -EINVAL);
    cr_expect_eq(pf_listen_systemd(NULL, NULL, 1), -EINVAL);
}
