/* transport.c — the plain transport: a connection's I/O straight on its socket (read, writev, sendfile). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/transport.h"

/* A file body goes out one slice per loop iteration (see output.c). On TCP
 * a slice is what the kernel sends as one packet: the largest multiple of
 * the current MSS that fits a 64 KB GSO packet (on loopback, one
 * 65,483-byte segment). bench/README.md has the measurements. */
#define GSO_BYTES 64000
#define SLICE_OTHER (256 * 1024) /* where there is no MSS: Unix sockets */

static ssize_t plain_read(struct http_tp *tp, void *buf, size_t n)
{
    ssize_t r;
    do
        r = read(tp->fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

/* Retried on EINTR: with edge-triggered epoll, giving up on a socket that
 * is not full would wait for an edge that never comes. */
static ssize_t plain_writev(struct http_tp *tp, const struct iovec *iov, int n, unsigned how)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    int flags = MSG_NOSIGNAL | (how & (HTTP_TP_MORE | HTTP_TP_LAST) ? MSG_MORE : 0);
    ssize_t r;
    /* One piece (most responses: head and body in the scratch) takes
     * send(): the kernel then imports no message header or vector. */
    do
        r = n == 1 ? send(tp->fd, iov->iov_base, iov->iov_len, flags) : sendmsg(tp->fd, &m, flags);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static ssize_t plain_sendfile(struct http_tp *tp, int fd, uint64_t off, size_t n)
{
    off_t o = (off_t)off;
    ssize_t r;
    do
        r = sendfile(tp->fd, fd, &o, n);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static int plain_shutdown(struct http_tp *tp)
{
    return shutdown(tp->fd, SHUT_WR) < 0 ? -errno : 0;
}

/* Nothing is held above the socket. */
static bool plain_pending(struct http_tp *tp)
{
    (void)tp;
    return false;
}

/* Read at every slice while it moves: the MSS grows over a connection's
 * first packets (it is held to half the peer's window until that opens),
 * and a stale one would split each slice into a full packet and a runt.
 * Once two reads agree, the figure serves SLICE_REUSE slices before it is
 * read again: reading it each time was one system call in three of a large
 * file's (17 getsockopt beside 17 sendfile per MiB). */
#define SLICE_REUSE 16

static size_t read_slice(int fd)
{
    int mss = 0;
    socklen_t len = sizeof mss;
    if (getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len) < 0 || mss <= 0)
        return SLICE_OTHER;
    return GSO_BYTES > mss ? GSO_BYTES / (size_t)mss * (size_t)mss : (size_t)mss;
}

static size_t plain_slice(struct http_tp *tp)
{
    if (tp->slice_uses) {
        tp->slice_uses--;
        return tp->slice;
    }
    size_t slice = read_slice(tp->fd);
    tp->slice_uses = slice == tp->slice ? SLICE_REUSE : 0;
    tp->slice = slice;
    return slice;
}

static void plain_close(struct http_tp *tp)
{
    (void)tp;
}

const struct http_tp_ops http_tp_plain = {
    .name = "plain",
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .shutdown = plain_shutdown,
    .pending = plain_pending,
    .slice = plain_slice,
    .close = plain_close,
    .secure = false,
};
