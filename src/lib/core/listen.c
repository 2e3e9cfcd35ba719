/* listen.c — open listening sockets: TCP, Unix, inherited fds and systemd socket activation. */
#include "prefork.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define SOMAXCONN_PATH "/proc/sys/net/core/somaxconn"
#define SOMAXCONN_DEFAULT 4096 /* the kernel's default since Linux 5.4 */
#define SD_LISTEN_FDS_START 3  /* fixed by systemd's protocol */

/* Strictly decimal digits, at least one, at most max. Used for /proc and the
 * systemd variables, where strtol's leniency (spaces, signs) would let
 * garbage through. */
static int parse_decimal(const char *s, long max, long *out)
{
    long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

static int set_int(int fd, int level, int opt, int value)
{
    return setsockopt(fd, level, opt, &value, sizeof value) < 0 ? -errno : 0;
}

static int listen_or_close(int fd, int backlog)
{
    int err;

    if (listen(fd, backlog) == 0)
        return fd;
    err = -errno;
    close(fd);
    return err;
}

/* ------------------------------------------------------------------------ */
/* TCP                                                                      */
/* ------------------------------------------------------------------------ */

/* A bound, not yet listening, TCP socket. SO_REUSEADDR lets a restarted
 * server bind while old connections sit in TIME_WAIT. An IPv6 socket is
 * IPv6-only unless it is the dual-stack wildcard (any). */
static int bind_tcp(const struct sockaddr *sa, socklen_t len, bool any,
                    int flags)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    int err;

    if (fd < 0)
        return -errno;
    err = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (!err && sa->sa_family == AF_INET6)
        err = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? 0 : 1);
    if (!err && (flags & PF_LISTEN_REUSEPORT))
        err = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (!err && bind(fd, sa, len) < 0)
        err = -errno;
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* ":PORT" binds [::] for both families; a kernel without IPv6 (booted with
 * ipv6.disable=1, or no address to bind) gets 0.0.0.0 instead. */
static int bind_any(const struct pf_addr *a, int flags)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = sin6->sin6_port,
                              .sin_addr.s_addr = htonl(INADDR_ANY)};
    int fd = bind_tcp((const struct sockaddr *)&a->ss, a->len, true, flags);

    if (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)
        return fd;
    return bind_tcp((const struct sockaddr *)&sin, sizeof sin, true, flags);
}

static int open_tcp(const struct pf_addr *a, int backlog, int flags)
{
    int fd;

    if (a->any)
        fd = bind_any(a, flags);
    else
        fd = bind_tcp((const struct sockaddr *)&a->ss, a->len, false, flags);
    if (fd < 0)
        return fd;
    return listen_or_close(fd, backlog);
}

/* ------------------------------------------------------------------------ */
/* Unix                                                                     */
/* ------------------------------------------------------------------------ */

/* Is a server accepting on the socket at sa? A blocking connect answers at
 * once: ECONNREFUSED when nobody listens. Only a live server with a full
 * backlog makes it wait, so SO_SNDTIMEO (which bounds a Unix connect) caps
 * that at one second, and the timeout counts as live. Returns 1 live,
 * 0 stale, or -errno when it cannot tell. */
static int probe_live(const struct sockaddr *sa, socklen_t len)
{
    struct timeval tv = {.tv_sec = 1};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r;

    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        r = -errno;
    else if (connect(fd, sa, len) == 0 || errno == EAGAIN)
        r = 1;
    else if (errno == ECONNREFUSED || errno == ENOENT)
        r = 0;
    else
        r = -errno;
    close(fd);
    return r;
}

/* bind said EADDRINUSE. Remove the path if it is a socket nobody serves
 * (left by a server that died without unlinking it). Never remove anything
 * that is not a socket. Between the probe and the unlink another server
 * could take the path; that race is inherent to filesystem sockets.
 * Returns 0 when the caller should bind again. */
static int clear_stale(const char *path, const struct sockaddr *sa,
                       socklen_t len)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    if (probe_live(sa, len) != 0)
        return -EADDRINUSE;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* sun_path bounded by len, as a C string: a caller-built address may fill
 * the whole field without a terminator. */
static void unix_path(const struct pf_addr *a, char *out, size_t size)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = a->len > off ? a->len - off : 0;

    if (n > size - 1)
        n = size - 1;
    memcpy(out, un->sun_path, n);
    out[n] = '\0';
}

/* The socket file gets 0777 minus the umask, as for any bind: the caller
 * decides who may connect through its umask or the directory's mode. */
static int open_unix(const struct pf_addr *a, int backlog)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
    char path[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err;

    if (fd < 0)
        return -errno;
    if (bind(fd, sa, a->len) == 0)
        return listen_or_close(fd, backlog);
    err = -errno;
    unix_path(a, path, sizeof path);
    /* An abstract name (leading NUL, so path is "") vanishes with its last
     * socket, so it is never stale: EADDRINUSE there means a live server. */
    if (err == -EADDRINUSE && path[0] != '\0') {
        err = clear_stale(path, sa, a->len);
        if (!err && bind(fd, sa, a->len) == 0)
            return listen_or_close(fd, backlog);
        if (!err)
            err = -errno;
    }
    close(fd);
    return err;
}

/* ------------------------------------------------------------------------ */
/* Inherited descriptors                                                    */
/* ------------------------------------------------------------------------ */

static int get_int(int fd, int opt, int *value)
{
    socklen_t len = sizeof *value;

    return getsockopt(fd, SOL_SOCKET, opt, value, &len) < 0 ? -errno : 0;
}

static int set_fd_flags(int fd, bool nonblock)
{
    int fl;

    if (nonblock) {
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return -errno;
    }
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

/* Check that fd is a listening stream socket, then make it non-blocking and
 * close-on-exec like every descriptor the library hands out. */
static int adopt_fd(int fd)
{
    struct stat st;
    int type, acc, err;

    if (fd < 0)
        return -EBADF;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    err = get_int(fd, SO_TYPE, &type);
    if (!err && type != SOCK_STREAM)
        err = -EINVAL;
    if (!err)
        err = get_int(fd, SO_ACCEPTCONN, &acc);
    if (!err && acc != 1)
        err = -EINVAL;
    if (!err)
        err = set_fd_flags(fd, true);
    return err ? err : fd;
}

/* ------------------------------------------------------------------------ */
/* Public entry points                                                      */
/* ------------------------------------------------------------------------ */

/* PF_LISTEN_REUSEPORT applies to TCP only: Linux refuses SO_REUSEPORT on
 * Unix sockets (since 6.12), and an inherited fd is already bound. */
int pf_listen_open(const struct pf_addr *a, int backlog, int flags)
{
    if (!a)
        return -EINVAL;
    if (backlog <= 0)
        backlog = pf_listen_somaxconn();
    switch (a->kind) {
    case PF_ADDR_TCP:
        return open_tcp(a, backlog, flags);
    case PF_ADDR_UNIX:
        return open_unix(a, backlog);
    case PF_ADDR_FD:
        return adopt_fd(a->fd);
    }
    return -EINVAL;
}

int pf_listen_somaxconn(void)
{
    char buf[32];
    ssize_t n;
    long v;
    int fd = open(SOMAXCONN_PATH, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return SOMAXCONN_DEFAULT;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return SOMAXCONN_DEFAULT;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (parse_decimal(buf, INT_MAX, &v) < 0 || v == 0)
        return SOMAXCONN_DEFAULT;
    return (int)v;
}

/* ------------------------------------------------------------------------ */
/* systemd socket activation                                                */
/* ------------------------------------------------------------------------ */

/* Count the colon-separated names in LISTEN_FDNAMES. */
static long count_names(const char *s)
{
    long n = 1;

    for (; *s; s++)
        n += *s == ':';
    return n;
}

/* Copy the i-th colon-separated name of s into out, cut to 63 bytes. A
 * missing LISTEN_FDNAMES names every fd "unknown", as sd_listen_fds does. */
static void copy_name(const char *s, int i, char out[64])
{
    size_t n;

    if (!s) {
        strcpy(out, "unknown");
        return;
    }
    for (; i > 0; i--)
        s = strchr(s, ':') + 1;
    n = strcspn(s, ":");
    if (n > 63)
        n = 63;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* The work of pf_listen_systemd, reading the variables it then unsets. */
static int take_systemd(int *fds, char (*names)[64], int max)
{
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    const char *names_s = getenv("LISTEN_FDNAMES");
    long pid, n;
    int i, err;

    if (!pid_s)
        return 0;
    if (parse_decimal(pid_s, INT_MAX, &pid) < 0 || pid == 0)
        return -EINVAL;
    if (pid != getpid() || !fds_s)
        return 0;
    if (parse_decimal(fds_s, INT_MAX - SD_LISTEN_FDS_START, &n) < 0)
        return -EINVAL;
    if (names_s && n > 0 && count_names(names_s) != n)
        return -EINVAL;
    /* Every passed fd becomes close-on-exec, also those beyond max, so
     * none leaks into the children. */
    for (i = 0; i < n; i++) {
        err = set_fd_flags(SD_LISTEN_FDS_START + i, false);
        if (err)
            return err;
    }
    for (i = 0; i < n && i < max; i++) {
        fds[i] = SD_LISTEN_FDS_START + i;
        if (names)
            copy_name(names_s, i, names[i]);
    }
    return n > max ? -E2BIG : (int)n;
}

int pf_listen_systemd(int *fds, char (*names)[64], int max)
{
    int r;

    if (max < 0 || (max > 0 && !fds))
        return -EINVAL;
    r = take_systemd(fds, names, max);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return r;
}
