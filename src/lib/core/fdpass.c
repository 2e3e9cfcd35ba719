/* fdpass.c — passes descriptors with a little data over a Unix socket (SCM_RIGHTS). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "prefork.h"

/*
 * These calls are meant for SOCK_SEQPACKET or SOCK_DGRAM socketpairs: their
 * message boundaries keep each batch of descriptors with its own data, and a
 * message is sent whole or not at all. They also work on SOCK_STREAM, which
 * keeps no boundaries and may send only part of the data (see pf_fd_send).
 * Only SOCK_SEQPACKET and SOCK_STREAM report a closed peer as a 0 read; a
 * datagram socket has no end of file.
 */

/* Linux 6.5 added SO_PASSPIDFD: a receiver that turns it on gets a pidfd of
 * the sender with every message, as an SCM_PIDFD control message. That is a
 * descriptor installed in our table, so it must be closed like any extra
 * one. Older C library headers lack the name; the value is the kernel's. */
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/* Bytes of control data for one full batch. */
#define FDS_SPACE CMSG_SPACE(sizeof(int) * PF_FD_MAX_PASS)

/* The receive buffer also has room for what SO_PASSCRED (SCM_CREDENTIALS)
 * and SO_PASSPIDFD (SCM_PIDFD) add: the kernel writes those before the
 * descriptors, so without the room they would push a full batch out of the
 * buffer. Anything bigger (an SO_PASSSEC label, say) truncates the control
 * data, and the message is refused with -EMSGSIZE. */
#define RECV_SPACE \
    (FDS_SPACE + CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int)))

static int send_error(int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK)
        return -EAGAIN;
    /* A connected datagram socket whose peer is gone says ECONNREFUSED where
     * a stream or seqpacket one says EPIPE or ECONNRESET: all mean the same
     * to the caller. */
    if (err == EPIPE || err == ECONNRESET || err == ECONNREFUSED)
        return -EPIPE;
    return -err;
}

int pf_fd_send(int sock, const int *fds, int n, const void *data, size_t len)
{
    if (!fds || n < 1 || n > PF_FD_MAX_PASS || !data || len < 1)
        return -EINVAL;

    /* The union gives the buffer the alignment a struct cmsghdr needs. */
    union {
        struct cmsghdr align;
        char buf[FDS_SPACE];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);

    ssize_t r;
    do
        r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return send_error(errno);
    /* Only SOCK_STREAM can send part of the data. The descriptors have
     * travelled with the first byte, so the message cannot be completed or
     * taken back: report it, and the stream is no longer usable. */
    if ((size_t)r < len)
        return -EMSGSIZE;
    return 0;
}

/* Walk every control message: keep up to `keep` descriptors from the
 * SCM_RIGHTS ones in fds, close all the others (and any SCM_PIDFD), and
 * ignore the rest, which hold no descriptors. Returns how many were kept. */
static int take_fds(struct msghdr *msg, int *fds, int keep)
{
    int got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET ||
            (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            /* memcpy: the data of a control message need not be aligned
             * for an int. */
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (c->cmsg_type == SCM_RIGHTS && got < keep)
                fds[got++] = fd;
            else
                close(fd);
        }
    }
    return got;
}

ssize_t pf_fd_recv(int sock, int *fds, int max, int *n, void *data,
                   size_t len)
{
    if (n)
        *n = 0;
    if (!n || max < 0 || (max > 0 && !fds) || !data || len < 1)
        return -EINVAL;

    union {
        struct cmsghdr align;
        char buf[RECV_SPACE];
    } ctl;
    struct iovec iov = {.iov_base = data, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t r;
    do {
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof ctl.buf;
        r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;

    /* A truncated message is refused whole: its data or its descriptors are
     * missing (the kernel drops those that did not fit). A 0-byte read means
     * the peer closed, or an empty seqpacket message that looks the same;
     * either way its descriptors are not the caller's to handle. */
    bool cut = msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC);
    *n = take_fds(&msg, fds, cut || r == 0 ? 0 : max);
    return cut ? -EMSGSIZE : r;
}
