/* sink.c — the socket under a connection's records, without kernel TLS: reads that know the socket is empty, the records of one write in one send, what the socket cannot take yet held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tls/internal.h"

/*
 * OpenSSL hands its write BIO one record at a time, so a 64 KiB write is
 * four sends of 16 KiB, and the first 16 KiB of a response, in small
 * records, a dozen. Between tls__sink_begin and tls__sink_end this BIO
 * gathers them instead, in one buffer the whole worker shares (it serves
 * one connection at a time), and end sends them at once: a quarter of
 * the system calls, and of the wake-ups of the client. tls__sink_keep
 * ends a gather without sending: what a read made (TLS 1.3 session
 * tickets, after the client's Finished) then leaves with the answer to
 * the request read at the same time, in one packet.
 *
 * What is kept, and what the socket does not take, is copied out to the
 * connection's own held buffer (allocated then, freed once sent), since
 * records cannot be made again. It goes before anything else: the next
 * end sends it and the gather in one call; a write outside begin/end (a
 * handshake flight, an alert, close_notify) first sends it, and says
 * "retry" while it cannot.
 *
 * Reads: OpenSSL reads ahead, as much as its buffer takes, and asks again
 * until the socket says EAGAIN. A read that came back short has already
 * emptied the socket (the descriptor is edge-triggered: whatever arrives
 * later raises an event), so until the next tls__sink_rearm the BIO says
 * "retry" without asking the kernel: two reads fewer per connection (after
 * the ClientHello and after the request).
 */
#define GATHER_CAP (TLS_SINK_GATHER + 64 * 1024) /* records of the gather, and room */

static char gather[GATHER_CAP];
static size_t gathered;
static BIO_METHOD *method;

static int hold(struct tls__sink *s, const char *p, size_t len)
{
    if (!len)
        return 0;
    if (s->held_off) { /* what went makes room */
        memmove(s->held, s->held + s->held_off, s->held_len - s->held_off);
        s->held_len -= s->held_off;
        s->held_off = 0;
    }
    if (s->held_len + len > s->held_cap) {
        size_t cap = s->held_len + len;
        char *n = realloc(s->held, cap);
        if (!n)
            return -ENOMEM;
        s->held = n;
        s->held_cap = cap;
    }
    memcpy(s->held + s->held_len, p, len);
    s->held_len += len;
    return 0;
}

static void release(struct tls__sink *s)
{
    free(s->held);
    s->held = NULL;
    s->held_len = s->held_off = s->held_cap = 0;
}

/* Send what iov[0, n) holds: how much went (possibly 0), or -errno other
 * than EAGAIN. more: MSG_MORE or 0. */
static ssize_t send_iov(int fd, struct iovec *iov, int n, int more)
{
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t r;
    do
        r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT | more);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EAGAIN ? 0 : -errno;
    return r;
}

static ssize_t send_some(int fd, const char *p, size_t len)
{
    return send_iov(fd, &(struct iovec){(void *)p, len}, 1, 0);
}

int tls__sink_flush(struct tls__sink *s)
{
    while (s->held_off < s->held_len) {
        ssize_t n = send_some(s->fd, s->held + s->held_off, s->held_len - s->held_off);
        if (n <= 0)
            return n < 0 ? (int)n : -EAGAIN;
        s->held_off += (size_t)n;
    }
    release(s);
    return 0;
}

void tls__sink_begin(struct tls__sink *s)
{
    s->gathering = true;
    s->overflow = false;
    gathered = 0;
}

int tls__sink_end(struct tls__sink *s, bool last)
{
    s->gathering = false;
    size_t len = gathered, old = s->held_len - s->held_off;
    gathered = 0;
    if (s->overflow) /* all of it is in held already */
        return tls__sink_flush(s);
    if (old + len == 0)
        return 0;
    struct iovec iov[2] = {{NULL, old}, {gather, len}};
    if (old) /* held is NULL when nothing is */
        iov[0].iov_base = s->held + s->held_off;
    ssize_t n = send_iov(s->fd, iov + !old, 2 - !old, last ? MSG_MORE : 0);
    if (n < 0)
        return (int)n;
    size_t sent = (size_t)n;
    if (sent == old + len) {
        release(s);
        return 0;
    }
    if (sent < old) {
        s->held_off += sent;
        sent = 0;
    } else {
        s->held_off = s->held_len;
        sent -= old;
    }
    return hold(s, gather + sent, len - sent) < 0 ? -ENOMEM : -EAGAIN;
}

int tls__sink_keep(struct tls__sink *s)
{
    if (!s->overflow && gathered && hold(s, gather, gathered) < 0)
        return -ENOMEM; /* still gathering: end can send it */
    s->gathering = false;
    gathered = 0;
    return 0;
}

static int nomem(void)
{
    errno = ENOMEM;
    return -1;
}

void tls__sink_rearm(struct tls__sink *s)
{
    s->drained = false;
}

static int sink_read(BIO *b, char *p, int len)
{
    struct tls__sink *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (s->drained) {
        BIO_set_retry_read(b);
        return -1;
    }
    ssize_t n;
    do
        n = read(s->fd, p, (size_t)len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN)
            BIO_set_retry_read(b);
        return -1; /* errno says why: SSL_ERROR_SYSCALL */
    }
    if (n == 0)
        s->eof = true;
    else if (n < len)
        s->drained = true;
    return (int)n;
}

static int sink_write(BIO *b, const char *p, int len)
{
    struct tls__sink *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    size_t n = (size_t)len;
    if (s->gathering) {
        if (!s->overflow && gathered + n <= sizeof gather) {
            memcpy(gather + gathered, p, n);
            gathered += n;
            return len;
        }
        /* More than the buffer: what it has, then all the rest, in held. */
        if (!s->overflow) {
            if (hold(s, gather, gathered) < 0)
                return nomem();
            gathered = 0;
            s->overflow = true;
        }
        return hold(s, p, n) < 0 ? nomem() : len;
    }
    int err = tls__sink_flush(s);
    if (err == -EAGAIN) {
        BIO_set_retry_write(b);
        return -1;
    }
    if (err < 0) {
        errno = -err;
        return -1;
    }
    ssize_t sent = send_some(s->fd, p, n);
    if (sent > 0)
        return (int)sent;
    if (sent == 0)
        BIO_set_retry_write(b);
    else
        errno = (int)-sent;
    return -1;
}

static long sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    struct tls__sink *s = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: {
        BIO_clear_retry_flags(b);
        if (s->gathering)
            return 1; /* end sends */
        int err = tls__sink_flush(s);
        if (err == -EAGAIN)
            BIO_set_retry_write(b);
        return err == 0;
    }
    case BIO_CTRL_EOF: /* tells an unexpected end from a failed read */
        return s->eof;
    case BIO_CTRL_WPENDING:
        return (long)(s->held_len - s->held_off + (s->gathering ? gathered : 0));
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = s->fd;
        return s->fd;
    case BIO_CTRL_DUP:
        return 1;
    default:
        return 0;
    }
}

static int sink_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* Made once, in the master before the workers fork (tls_load). */
int tls__sink_init(void)
{
    if (method)
        return 0;
    method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "prefork tls sink");
    if (!method || BIO_meth_set_write(method, sink_write) != 1 ||
        BIO_meth_set_read(method, sink_read) != 1 ||
        BIO_meth_set_ctrl(method, sink_ctrl) != 1 || BIO_meth_set_create(method, sink_create) != 1) {
        BIO_meth_free(method);
        method = NULL;
        return -ENOMEM;
    }
    return 0;
}

void tls__sink_free_method(void)
{
    BIO_meth_free(method);
    method = NULL;
}

BIO *tls__sink_bio(struct tls__sink *s, int fd)
{
    BIO *b = method ? BIO_new(method) : NULL;
    if (!b)
        return NULL;
    *s = (struct tls__sink){.fd = fd};
    BIO_set_data(b, s);
    return b;
}

void tls__sink_close(struct tls__sink *s)
{
    release(s);
}
