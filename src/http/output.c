/* output.c — a connection's output in order: the worker's scratch while it runs, then pieces it keeps; files go out a slice per loop iteration. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/core.h"

/* A file body up to this size is read into the scratch and goes out with
 * the head, in one send. */
#define SMALL_FILE (16 * 1024)
#define SEG_MIN 1024

/*
 * The order of a connection's bytes: first the segments it keeps (c->q),
 * then, while it is the running connection, the scratch (hs->out). Most
 * responses never leave the scratch: the head and body collect there and go
 * out in one send at the end. Only what the socket does not take is copied
 * into a segment, and only then does the connection hold memory for it.
 *
 * A file body goes out one slice per loop iteration, then the connection
 * waits for the next iteration (a pf_defer) while the others are served.
 * The reason is pacing: under a congestion control that paces (BBR) with no
 * fq qdisc to do it (loopback has none), TCP sends the first packet of a
 * write at once and holds back each one after it on a kernel timer, armed
 * and fired per packet. A socket written one packet an iteration has caught
 * up with its pacing by the time it is written again, and needs no timer
 * (bench/README.md has the measurements).
 */

static struct http_seg *seg_new(struct http_conn *c, int fd, size_t cap)
{
    struct http_seg *s = malloc(sizeof *s + cap);
    if (!s)
        return NULL;
    s->next = NULL;
    s->fd = fd;
    s->off = s->len = 0;
    s->cap = cap;
    if (c->q_tail)
        c->q_tail->next = s;
    else
        c->q = s;
    c->q_tail = s;
    return s;
}

static int seg_bytes(struct http_conn *c, const void *p, size_t n)
{
    struct http_seg *s = c->q_tail;
    if (n == 0)
        return 0;
    if (!s || s->fd >= 0 || s->cap - s->len < n) {
        s = seg_new(c, -1, n < SEG_MIN ? SEG_MIN : n);
        if (!s)
            return -ENOMEM;
    }
    memcpy(s->mem + s->len, p, n);
    s->len += n;
    c->q_bytes += n;
    return 0;
}

static void seg_pop(struct http_conn *c)
{
    struct http_seg *s = c->q;
    c->q = s->next;
    if (!c->q)
        c->q_tail = NULL;
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

void http_out_free(struct http_conn *c)
{
    while (c->q)
        seg_pop(c);
    c->q_bytes = 0;
}

bool http_out_pending(const struct http_conn *c)
{
    return c->q || (c->hs->running == c && c->hs->out.len);
}

int http_out_append(struct http_conn *c, const void *p, size_t n)
{
    struct http_server *hs = c->hs;
    if (hs->running != c) {
        http_conn_kick(c); /* sent on the next iteration, with what follows */
        return seg_bytes(c, p, n);
    }
    return http_buf_append(&hs->out, p, n) < 0 ? -ENOMEM : 0;
}

/* Pieces of one line, with one reservation of the scratch. */
int http_out_appendv(struct http_conn *c, const struct iovec *v, int n)
{
    struct http_buf *out = &c->hs->out;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i].iov_len;
    if (c->hs->running != c || http_buf_reserve(out, total) < 0) {
        for (int i = 0; i < n; i++)
            if (http_out_append(c, v[i].iov_base, v[i].iov_len) < 0)
                return -ENOMEM;
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (v[i].iov_len) /* a NULL value of length 0 is allowed */
            memcpy(out->p + out->len, v[i].iov_base, v[i].iov_len);
        out->len += v[i].iov_len;
    }
    out->p[out->len] = '\0';
    return 0;
}

/* The scratch goes out now, or into a segment, so that a segment can follow
 * it. flags: HTTP_TP_MORE when a file follows at once (how much was held
 * that way is returned through *held), HTTP_TP_LAST when nothing does. */
static int send_scratch(struct http_conn *c, unsigned flags, uint32_t *held)
{
    struct http_buf *out = &c->hs->out;
    bool more = flags & HTTP_TP_MORE;
    size_t sent = 0;
    *held = 0;
    if (c->hs->running != c || out->len == 0)
        return 0;
    if (!c->q) {
        struct iovec iov = {out->p, out->len};
        ssize_t n = c->tp.ops->writev(&c->tp, &iov, 1, flags);
        if (n < 0 && n != -EAGAIN)
            return (int)n;
        sent = n > 0 ? (size_t)n : 0;
        c->sent += sent;
        if (more && sent == out->len)
            *held = (uint32_t)sent;
    }
    int err = seg_bytes(c, out->p + sent, out->len - sent);
    http_buf_reset(out);
    return err;
}

/* A small file is read into the scratch: no segment, one send with the
 * head. Returns 1 when done so, 0 to send it as a file. */
static int small_file(struct http_conn *c, int fd, uint64_t off, uint64_t len)
{
    struct http_buf *out = &c->hs->out;
    if (c->hs->running != c || c->q || len > SMALL_FILE || http_buf_reserve(out, len) < 0)
        return 0;
    ssize_t n = pread(fd, out->p + out->len, len, (off_t)off);
    if (n != (ssize_t)len)
        return 0; /* sendfile will see what is wrong */
    out->len += (size_t)n;
    close(fd);
    return 1;
}

int http_out_file(struct http_conn *c, int fd, uint64_t off, uint64_t len)
{
    uint32_t held;
    if (len == 0 || small_file(c, fd, off, len)) {
        if (len == 0)
            close(fd);
        return 0;
    }
    int err = send_scratch(c, HTTP_TP_MORE, &held);
    struct http_seg *s = err ? NULL : seg_new(c, fd, 0);
    if (!s) {
        close(fd);
        return err ? err : -ENOMEM;
    }
    s->off = off;
    s->len = len;
    s->cap = held; /* a file segment's cap: head bytes held before it */
    c->q_bytes += len;
    if (c->hs->running != c)
        http_conn_kick(c);
    return 0;
}

/* Without sendfile (a transport that cannot): read, then write. */
static ssize_t copy_file(struct http_conn *c, struct http_seg *s, size_t len)
{
    char buf[16384];
    if (len > sizeof buf)
        len = sizeof buf;
    ssize_t n = pread(s->fd, buf, len, (off_t)s->off);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    struct iovec iov = {buf, (size_t)n};
    return c->tp.ops->writev(&c->tp, &iov, 1, 0); /* a short write re-reads */
}

/* One slice of a file segment. Any progress is a slice, even a short one:
 * the next call then meets EAGAIN, and only that guarantees an EPOLLOUT
 * edge to come. */
static enum flush_result send_slice(struct http_conn *c, struct http_seg *s)
{
    size_t len = c->tp.ops->slice(&c->tp);
    len -= s->cap < len ? s->cap : 0;
    s->cap = 0;
    if (len > s->len)
        len = (size_t)s->len;
    ssize_t n = c->tp.ops->sendfile(&c->tp, s->fd, s->off, len);
    if (n == -ENOTSUP || n == -EINVAL)
        n = copy_file(c, s, len);
    if (n == -EAGAIN)
        return F_FULL;
    if (n <= 0)
        return F_FAILED; /* 0: the file shrank under us: the length we promised is a lie */
    s->off += (uint64_t)n;
    s->len -= (uint64_t)n;
    c->q_bytes -= (uint64_t)n;
    c->sent += (uint64_t)n;
    if (s->len)
        return F_SLICE;
    seg_pop(c);
    return c->q ? F_SLICE : F_DONE;
}

static enum flush_result send_bytes(struct http_conn *c, struct http_seg *s, bool last)
{
    unsigned flags = !s->next ? (last ? HTTP_TP_LAST : 0) : s->next->fd >= 0 ? HTTP_TP_MORE : 0;
    while (s->off < s->len) {
        struct iovec iov = {s->mem + s->off, (size_t)(s->len - s->off)};
        ssize_t n = c->tp.ops->writev(&c->tp, &iov, 1, flags);
        if (n < 0)
            return n == -EAGAIN ? F_FULL : F_FAILED;
        s->off += (uint64_t)n;
        c->q_bytes -= (uint64_t)n;
        c->sent += (uint64_t)n;
    }
    seg_pop(c);
    return F_DONE;
}

enum flush_result http_out_flush(struct http_conn *c, bool last)
{
    uint32_t held;
    if (send_scratch(c, last ? HTTP_TP_LAST : 0, &held) < 0)
        return F_FAILED;
    while (c->q) {
        enum flush_result r = c->q->fd >= 0 ? send_slice(c, c->q) : send_bytes(c, c->q, last);
        if (r != F_DONE)
            return r;
    }
    return F_DONE;
}
