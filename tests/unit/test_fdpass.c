/* test_fdpass.c — tests of pf_fd_send and pf_fd_recv, across fork and in one process. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prefork.h"

#include "child_support.h"

/* A check inside a forked child: Criterion's asserts belong to the test
 * process, so a child reports a failure through its exit status. */
#define CHILD_CHECK(cond)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "child: line %d: %s failed\n", __LINE__, #cond);  \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

/* The number of descriptors this process has open. */
static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int count = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            count++;
    closedir(d);
    return count - 1; /* the directory's own descriptor */
}

static void seqpacket_pair(int sv[2], int flags)
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0, sv), 0);
}

/* Fork a child that dies with the test process (a failed assert or a
 * Criterion timeout) and in any case after a bounded time. */
static int open_null(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    return fd;
}

/* A payload holding every byte value, zeros included. */
static void fill_payload(unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)i;
}

/* Child: make k pipes, send their write ends in one message, then expect
 * byte 'A'+i on pipe i followed by end of file, which proves the parent
 * wrote into, then closed, the very pipes the child made. */
static _Noreturn void child_send_pipes(int sock, int k)
{
    int rd[PF_FD_MAX_PASS], wr[PF_FD_MAX_PASS];
    for (int i = 0; i < k; i++) {
        int p[2];
        CHILD_CHECK(pipe2(p, O_CLOEXEC) == 0);
        rd[i] = p[0];
        wr[i] = p[1];
    }
    unsigned char payload[256];
    fill_payload(payload, sizeof payload);
    CHILD_CHECK(pf_fd_send(sock, wr, k, payload, sizeof payload) == 0);
    for (int i = 0; i < k; i++)
        close(wr[i]);
    for (int i = 0; i < k; i++) {
        char b = 0;
        CHILD_CHECK(read(rd[i], &b, 1) == 1 && b == 'A' + i);
        CHILD_CHECK(read(rd[i], &b, 1) == 0);
    }
    _exit(0);
}

/* Parent: receive k pipe ends from a child, check them, and write through them. */
static void pass_pipes(int k)
{
    int sv[2];
    seqpacket_pair(sv, 0);
    pid_t pid = tu_fork_child();
    if (pid == 0) {
        close(sv[0]);
        child_send_pipes(sv[1], k);
    }
    close(sv[1]);

    int fds[PF_FD_MAX_PASS], n = -1;
    unsigned char buf[512], want[256];
    fill_payload(want, sizeof want);
    ssize_t r = pf_fd_recv(sv[0], fds, PF_FD_MAX_PASS, &n, buf, sizeof buf);
    cr_assert_eq(r, (ssize_t)sizeof want);
    cr_assert_eq(n, k);
    cr_assert_eq(memcmp(buf, want, sizeof want), 0, "data bytes changed");
    for (int i = 0; i < k; i++) {
        int fl = fcntl(fds[i], F_GETFD);
        cr_assert(fl >= 0 && (fl & FD_CLOEXEC), "fd %d is not close-on-exec", i);
        char b = (char)('A' + i);
        cr_assert_eq(write(fds[i], &b, 1), 1);
        close(fds[i]);
    }
    tu_wait_ok(pid);
    close(sv[0]);
}

Test(fdpass, one_fd_is_the_same_pipe, .timeout = 10) { pass_pipes(1); }

Test(fdpass, several_fds, .timeout = 10) { pass_pipes(5); }

Test(fdpass, max_fds, .timeout = 10) { pass_pipes(PF_FD_MAX_PASS); }

Test(fdpass, extras_beyond_max_are_closed, .timeout = 10)
{
    int sv[2];
    seqpacket_pair(sv, 0);
    pid_t pid = tu_fork_child();
    if (pid == 0) {
        close(sv[0]);
        int fds[5];
        for (int i = 0; i < 5; i++)
            CHILD_CHECK((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
        CHILD_CHECK(pf_fd_send(sv[1], fds, 5, "x", 1) == 0);
        _exit(0);
    }
    close(sv[1]);

    int before = fd_count();
    int fds[2], n = -1;
    char b;
    cr_assert_eq(pf_fd_recv(sv[0], fds, 2, &n, &b, 1), 1);
    cr_assert_eq(n, 2);
    cr_assert_eq(fd_count(), before + 2, "extra descriptors leaked");
    close(fds[0]);
    close(fds[1]);
    cr_assert_eq(fd_count(), before);
    tu_wait_ok(pid);
    close(sv[0]);
}

Test(fdpass, max_zero_closes_all, .timeout = 10)
{
    int sv[2];
    seqpacket_pair(sv, 0);
    int fd = open_null();
    cr_assert_eq(pf_fd_send(sv[0], &fd, 1, "x", 1), 0);
    close(fd);
    int before = fd_count(), n = -1;
    char b;
    cr_assert_eq(pf_fd_recv(sv[1], NULL, 0, &n, &b, 1), 1);
    cr_assert_eq(n, 0);
    cr_assert_eq(fd_count(), before);
    close(sv[0]);
    close(sv[1]);
}

Test(fdpass, truncated_data_closes_everything, .timeout = 10)
{
    int sv[2];
    seqpacket_pair(sv, 0);
    int fds[3] = {open_null(), open_null(), open_null()};
    char big[100] = {0};
    cr_assert_eq(pf_fd_send(sv[0], fds, 3, big, sizeof big), 0);
    for (int i = 0; i < 3; i++)
        close(fds[i]);

    int before = fd_count(), n = -1;
    char small[10];
    cr_assert_eq(pf_fd_recv(sv[1], fds, 3, &n, small, sizeof small), -EMSGSIZE);
    cr_assert_eq(n, 0);
    cr_assert_eq(fd_count(), before, "descriptors of a truncated message leaked");
    close(sv[0]);
    close(sv[1]);
}

/* Send fds with len bytes of data by hand, to make messages pf_fd_send
 * refuses to. */
static void raw_send(int sock, const int *fds, size_t nfds, size_t len)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 3 * PF_FD_MAX_PASS)];
    } ctl;
    cr_assert_leq(nfds, 3 * PF_FD_MAX_PASS);
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = "x", .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    cr_assert_eq(sendmsg(sock, &msg, 0), (ssize_t)len);
}

/* More descriptors than pf_fd_recv has room for: the control data is
 * truncated (MSG_CTRUNC), and what did arrive must be closed. */
Test(fdpass, truncated_control_closes_everything, .timeout = 10)
{
    enum { MANY = 3 * PF_FD_MAX_PASS }; /* more than the receive buffer holds */
    int sv[2];
    seqpacket_pair(sv, 0);
    int fds[MANY];
    for (int i = 0; i < MANY; i++)
        fds[i] = open_null();
    raw_send(sv[0], fds, MANY, 1);
    for (int i = 0; i < MANY; i++)
        close(fds[i]);

    int before = fd_count(), n = -1;
    char b;
    cr_assert_eq(pf_fd_recv(sv[1], fds, PF_FD_MAX_PASS, &n, &b, 1), -EMSGSIZE);
    cr_assert_eq(n, 0);
    cr_assert_eq(fd_count(), before);
    close(sv[0]);
    close(sv[1]);
}

/* An empty seqpacket message reads as 0, like a closed peer: the caller
 * will not look at its descriptors, so they must not stay open. */
Test(fdpass, empty_message_closes_its_fds, .timeout = 10)
{
    int sv[2];
    seqpacket_pair(sv, 0);
    int fd = open_null();
    raw_send(sv[0], &fd, 1, 0);
    close(fd);
    int before = fd_count(), n = -1;
    char b;
    cr_assert_eq(pf_fd_recv(sv[1], &fd, 1, &n, &b, 1), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(fd_count(), before);
    close(sv[0]);
    close(sv[1]);
}

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76 /* Linux 6.5; older headers lack it */
#endif

/* Credentials and a pidfd, which a receiver may ask for, come before the
 * descriptors: a full batch must still fit, and the pidfd must be closed. */
Test(fdpass, other_control_messages_are_ignored, .timeout = 10)
{
    int sv[2], one = 1;
    seqpacket_pair(sv, 0);
    cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
    bool pidfd = setsockopt(sv[1], SOL_SOCKET, SO_PASSPIDFD, &one, sizeof one) == 0;
    if (!pidfd)
        cr_log_info("SO_PASSPIDFD unsupported (%s): testing SO_PASSCRED only",
                    strerror(errno));
    int fds[PF_FD_MAX_PASS];
    for (int i = 0; i < PF_FD_MAX_PASS; i++)
        fds[i] = open_null();
    cr_assert_eq(pf_fd_send(sv[0], fds, PF_FD_MAX_PASS, "x", 1), 0);
    for (int i = 0; i < PF_FD_MAX_PASS; i++)
        close(fds[i]);

    int before = fd_count(), n = -1;
    char b;
    cr_assert_eq(pf_fd_recv(sv[1], fds, PF_FD_MAX_PASS, &n, &b, 1), 1);
    cr_assert_eq(n, PF_FD_MAX_PASS);
    cr_assert_eq(fd_count(), before + PF_FD_MAX_PASS, "a pidfd leaked");
    for (int i = 0; i < PF_FD_MAX_PASS; i++)
        close(fds[i]);
    close(sv[0]);
    close(sv[1]);
}

/* A peer that has exited: sends fail with -EPIPE, a read sees end of file.
 * SIGPIPE keeps its default action on purpose, so that a send without
 * MSG_NOSIGNAL would kill the test (Linux raises it for stream sockets). */
static void check_closed_peer(int type)
{
    cr_assert_neq(signal(SIGPIPE, SIG_DFL), SIG_ERR);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = tu_fork_child();
    if (pid == 0) {
        close(sv[0]);
        close(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    tu_wait_ok(pid);

    int fd = open_null(), n = -1;
    cr_assert_eq(pf_fd_send(sv[0], &fd, 1, "x", 1), -EPIPE);
    cr_assert_eq(pf_fd_send(sv[0], &fd, 1, "x", 1), -EPIPE);
    char b;
    cr_assert_eq(pf_fd_recv(sv[0], &fd, 1, &n, &b, 1), 0);
    cr_assert_eq(n, 0);
    close(fd);
    close(sv[0]);
}

Test(fdpass, closed_peer_seqpacket, .timeout = 10) { check_closed_peer(SOCK_SEQPACKET); }

Test(fdpass, closed_peer_stream, .timeout = 10) { check_closed_peer(SOCK_STREAM); }

Test(fdpass, closed_datagram_peer_is_epipe, .timeout = 10)
{
    cr_assert_neq(signal(SIGPIPE, SIG_DFL), SIG_ERR);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[1]);
    int fd = open_null();
    cr_assert_eq(pf_fd_send(sv[0], &fd, 1, "x", 1), -EPIPE);
    close(fd);
    close(sv[0]);
}

Test(fdpass, invalid_arguments, .timeout = 10)
{
    int sv[2];
    seqpacket_pair(sv, 0);
    int fds[PF_FD_MAX_PASS + 1];
    for (int i = 0; i <= PF_FD_MAX_PASS; i++)
        fds[i] = 0;
    char b = 0;
    cr_assert_eq(pf_fd_send(sv[0], fds, 0, &b, 1), -EINVAL);
    cr_assert_eq(pf_fd_send(sv[0], fds, -1, &b, 1), -EINVAL);
    cr_assert_eq(pf_fd_send(sv[0], fds, PF_FD_MAX_PASS + 1, &b, 1), -EINVAL);
    cr_assert_eq(pf_fd_send(sv[0], fds, 1, &b, 0), -EINVAL);
    cr_assert_eq(pf_fd_send(sv[0], NULL, 1, &b, 1), -EINVAL);
    cr_assert_eq(pf_fd_send(sv[0], fds, 1, NULL, 1), -EINVAL);
    int bad = -1;
    cr_assert_eq(pf_fd_send(sv[0], &bad, 1, &b, 1), -EBADF);

    int n = -1;
    cr_assert_eq(pf_fd_recv(sv[1], fds, 1, NULL, &b, 1), -EINVAL);
    cr_assert_eq(pf_fd_recv(sv[1], fds, 1, &n, &b, 0), -EINVAL);
    cr_assert_eq(n, 0, "*n must be set even on failure");
    cr_assert_eq(pf_fd_recv(sv[1], fds, 1, &n, NULL, 1), -EINVAL);
    cr_assert_eq(pf_fd_recv(sv[1], fds, -1, &n, &b, 1), -EINVAL);
    cr_assert_eq(pf_fd_recv(sv[1], NULL, 1, &n, &b, 1), -EINVAL);
    close(sv[0]);
    close(sv[1]);
}

Test(fdpass, nonblocking_empty_and_full, .timeout = 10)
{
    int sv[2];
    seqpacket_pair(sv, SOCK_NONBLOCK);
    int fd = open_null(), n = -1;
    char b;
    cr_assert_eq(pf_fd_recv(sv[1], &fd, 1, &n, &b, 1), -EAGAIN);
    cr_assert_eq(n, 0);

    /* The receive queue holds only a few messages (net.unix.max_dgram_qlen). */
    int sent = 0, r;
    while ((r = pf_fd_send(sv[0], &fd, 1, "x", 1)) == 0 && sent < 100000)
        sent++;
    cr_assert_eq(r, -EAGAIN);
    cr_assert_gt(sent, 0);
    close(fd);

    int before = fd_count();
    for (int i = 0; i < sent; i++) {
        cr_assert_eq(pf_fd_recv(sv[1], &fd, 1, &n, &b, 1), 1);
        cr_assert_eq(n, 1);
        close(fd);
    }
    cr_assert_eq(pf_fd_recv(sv[1], &fd, 1, &n, &b, 1), -EAGAIN);
    cr_assert_eq(fd_count(), before);
    close(sv[0]);
    close(sv[1]);
}

/* On a stream socket a send can be short; the descriptor still arrives,
 * with the first bytes. */
Test(fdpass, stream_short_send_is_emsgsize, .timeout = 10)
{
    enum { BIG = 8 << 20 }; /* far more than a socket buffer holds */
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    char *big = calloc(1, BIG);
    cr_assert_not_null(big);
    int fd = open_null();
    cr_assert_eq(pf_fd_send(sv[0], &fd, 1, big, BIG), -EMSGSIZE);
    close(fd);

    int before = fd_count(), n = -1;
    cr_assert_gt(pf_fd_recv(sv[1], &fd, 1, &n, big, BIG), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(fd_count(), before + 1);
    close(fd);
    free(big);
    close(sv[0]);
    close(sv[1]);
}

/* The project's use case: a parent accepts TCP connections and hands each
 * to a child, which serves it (here: echoes one line). */
enum { CONNS = 3 };

static _Noreturn void echo_child(int sock)
{
    for (int i = 0; i < CONNS; i++) {
        int conn = -1, n = 0;
        char tag;
        CHILD_CHECK(pf_fd_recv(sock, &conn, 1, &n, &tag, 1) == 1);
        CHILD_CHECK(n == 1 && tag == 'c');
        char line[64];
        size_t got = 0;
        while (got == 0 || line[got - 1] != '\n') {
            ssize_t r = read(conn, line + got, sizeof line - got);
            CHILD_CHECK(r > 0);
            got += (size_t)r;
        }
        CHILD_CHECK(write(conn, line, got) == (ssize_t)got);
        close(conn);
    }
    int conn, n;
    char tag;
    CHILD_CHECK(pf_fd_recv(sock, &conn, 1, &n, &tag, 1) == 0); /* parent done */
    _exit(0);
}

static int tcp_listener(struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(l, 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *addr;
    cr_assert_eq(bind(l, (struct sockaddr *)addr, len), 0);
    cr_assert_eq(listen(l, 16), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)addr, &len), 0);
    return l;
}

static int tcp_client(const struct sockaddr_in *addr)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(c, 0);
    struct timeval tv = {.tv_sec = 5};
    cr_assert_eq(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    cr_assert_eq(connect(c, (const struct sockaddr *)addr, sizeof *addr), 0);
    return c;
}

static void expect_echo(int client, int i)
{
    char msg[32], back[32];
    int len = snprintf(msg, sizeof msg, "hello %d\n", i);
    cr_assert_eq(write(client, msg, (size_t)len), len);
    int got = 0;
    while (got < len) {
        ssize_t r = read(client, back + got, sizeof back - (size_t)got);
        cr_assert_gt(r, 0, "no echo on connection %d", i);
        got += (int)r;
    }
    cr_assert_eq(got, len);
    cr_assert_eq(memcmp(back, msg, (size_t)len), 0);
}

Test(fdpass, hands_tcp_connections_to_a_child, .timeout = 10)
{
    struct sockaddr_in addr;
    int l = tcp_listener(&addr), sv[2];
    seqpacket_pair(sv, 0);
    pid_t pid = tu_fork_child();
    if (pid == 0) {
        close(l);
        close(sv[0]);
        echo_child(sv[1]);
    }
    close(sv[1]);

    int clients[CONNS];
    for (int i = 0; i < CONNS; i++) {
        clients[i] = tcp_client(&addr);
        int conn = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        cr_assert_geq(conn, 0);
        cr_assert_eq(pf_fd_send(sv[0], &conn, 1, "c", 1), 0);
        close(conn); /* the child's copy keeps the connection open */
    }
    for (int i = 0; i < CONNS; i++) {
        expect_echo(clients[i], i);
        close(clients[i]);
    }
    close(sv[0]);
    tu_wait_ok(pid);
    close(l);
}
