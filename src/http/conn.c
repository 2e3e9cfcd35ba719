/* conn.c — one HTTP connection: read, parse, answer, send (sendfile), keep-alive, pipelining, timeouts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/alog.h"
#include "http/conn.h"
#include "http/handler.h"

#define SMALL_BODY (16 * 1024)   /* file bodies up to this go out with the head */
/* A file body goes out one slice per loop iteration; then the connection
 * waits for the next iteration (a pf_defer) while the others are served.
 * On TCP a slice is what the kernel sends as one packet: the largest
 * multiple of the current MSS that fits a 64 KB GSO packet (on loopback,
 * one 65,483-byte segment), the head included in the first. The reason is
 * pacing: under a congestion control that paces (BBR, the default on many
 * hosts) with no fq qdisc to do it (loopback has no qdisc at all), TCP
 * sends the first packet of a write at once and holds back each one after
 * it on a kernel timer, armed and fired per packet (a virtual machine pays
 * exits for both). A socket written one packet an iteration has caught up with
 * its pacing by the time it is written again, and needs no timer. 1 MiB
 * responses on loopback, BBR, 2 workers: 85 instead of 200 us of worker CPU
 * each, and 1.3x lighttpd's req/s instead of 0.6x; without pacing (cubic)
 * the extra calls cost about 15 us per MiB (bench/README.md). */
#define GSO_BYTES 64000
#define SLICE_OTHER (256 * 1024) /* where there is no MSS: Unix sockets */
#define LINGER_MS 2000           /* reading leftovers before a close, at most */
#define LINGER_BYTES (64 * 1024)
#define IN_FIRST 1024            /* first size of a connection's own buffer */
#define DRAIN_QUIET_MS 1000      /* a draining worker's idle connections wait this */

enum conn_state { C_READ, C_WRITE, C_LINGER };

/* What the connection's one timer is counting. */
enum conn_wait { W_NONE, W_HEAD, W_IDLE, W_SEND, W_LINGER };

/* What a connection costs at rest (keep-alive, nothing pending) is this
 * struct and nothing else: input is read into the worker's scratch and only
 * copied into a buffer of the connection's own when a request is split
 * across reads, and output likewise only when the socket is full. */
struct http_conn {
    struct http_worker *hw;
    struct http_conn *prev, *next;
    int fd;
    enum conn_state state;
    enum conn_wait wait;
    bool close_after;  /* the next response ends the connection */
    bool closing;      /* the response being sent ends the connection */
    bool unread;       /* the client may have sent bytes we did not read */
    bool client_close; /* the client asked to close: it sends nothing more */
    bool served;       /* has answered a request: idle waits use keepalive */
    bool drained;      /* a short read emptied the socket: new bytes raise an edge */
    bool hangup;       /* epoll reported a hangup: read until the end, whatever */
    unsigned requests;
    char *in;          /* own buffer; NULL when nothing is buffered */
    size_t in_len, in_cap;
    struct http_scan scan;
    char *out;         /* unsent head and small body; NULL when none */
    size_t out_len, out_off;
    int file;          /* file body still to send, -1 when none */
    uint32_t head_queued; /* head bytes held (MSG_MORE) for the first slice */
    uint64_t file_off, file_left, body_sent;
    uint64_t started_us;
    struct http_alog_entry *entry; /* the access-log line of a response in flight */
    pf_timer timer;
    pf_defer more;     /* queued while a response waits for its next slice */
    char peer[46];
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- life and death ---- */

static void conn_free(struct http_conn *c)
{
    struct http_worker *hw = c->hw;
    pf_timer_stop(hw->loop, &c->timer);
    pf_defer_stop(hw->loop, &c->more);
    if (c->prev)
        c->prev->next = c->next;
    else
        hw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->file >= 0)
        close(c->file);
    free(c->in);
    free(c->out);
    free(c->entry);
    pf_worker_close_conn(hw->w, c->fd);
    free(c);
}

static void arm(struct http_conn *c, enum conn_wait wait, unsigned ms)
{
    c->wait = wait;
    pf_timer_start(c->hw->loop, &c->timer, ms);
}

/* The header timeout runs from the first byte of a request (or from the
 * connection's start) to the end of its head, whatever the client sends in
 * between: a client trickling bytes cannot hold a connection for ever. */
static void arm_reading(struct http_conn *c)
{
    if (c->in_len || !c->served) {
        if (c->wait != W_HEAD)
            arm(c, W_HEAD, c->hw->cfg->header_timeout_ms);
    } else if (c->wait != W_IDLE || !c->hw->draining) {
        arm(c, W_IDLE, c->hw->draining ? DRAIN_QUIET_MS : c->hw->cfg->keepalive_timeout_ms);
    }
}

/* Closing with unread request bytes in the socket makes the kernel send a
 * reset, which can destroy the response still in flight to the client. So
 * after a response that ends the connection: shut our side, then read and
 * discard what the client still sends, for a short while. */
static void linger(struct http_conn *c)
{
    if (shutdown(c->fd, SHUT_WR) < 0) {
        conn_free(c);
        return;
    }
    c->state = C_LINGER;
    c->file_left = 0;
    c->body_sent = 0; /* counts discarded bytes from here on */
    arm(c, W_LINGER, LINGER_MS);
}

/* After a response that ends the connection: closing at once is safe only
 * if the client sent nothing we did not read (a close with unread bytes
 * sends a reset). One read tells; otherwise linger. */
static bool finish(struct http_conn *c, size_t buffered)
{
    /* A client that asked to close sends no further request (RFC 9112
     * 9.6): nothing can be pending, no need to look. */
    if (!c->unread && buffered == 0 && c->client_close) {
        conn_free(c);
        return false;
    }
    if (!c->unread && buffered == 0) {
        ssize_t n;
        do
            n = read(c->fd, c->hw->in, c->hw->in_cap);
        while (n < 0 && errno == EINTR);
        if (n == 0 || (n < 0 && errno == EAGAIN)) {
            conn_free(c);
            return false;
        }
    }
    linger(c);
    return c->state == C_LINGER;
}

static void linger_read(struct http_conn *c)
{
    char *buf = c->hw->in;
    for (;;) {
        ssize_t n = read(c->fd, buf, c->hw->in_cap);
        if ((n > 0 && (c->body_sent += (uint64_t)n) < LINGER_BYTES) ||
            (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        conn_free(c);
        return;
    }
}

/* ---- input ---- */

/* Where the unparsed bytes are: the connection's own buffer, or the scratch
 * (filled by this very callback, never shared across callbacks). */
struct input {
    char *p;
    size_t len;
    bool scratch;
};

/* Keep unparsed bytes past this callback: the scratch belongs to whichever
 * connection runs next. */
static int stash(struct http_conn *c, const struct input *in)
{
    if (!in->scratch || in->len == 0)
        return 0;
    size_t cap = IN_FIRST;
    while (cap < in->len)
        cap *= 2;
    c->in = malloc(cap);
    if (!c->in)
        return -ENOMEM;
    memcpy(c->in, in->p, in->len);
    c->in_len = in->len;
    c->in_cap = cap;
    return 0;
}

/* Drop n consumed bytes from the front of the input. */
static void consume(struct http_conn *c, struct input *in, size_t n)
{
    in->p += n;
    in->len -= n;
    if (in->scratch)
        return;
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    in->p = c->in;
    if (c->in_len == 0) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
        in->p = NULL;
    }
}

/* Read more bytes: 1 got some, 0 would block, -1 end of stream or error.
 * A partial head in the scratch moves to the connection's own buffer
 * first, so that the new bytes land after it.
 *
 * A read that returns less than it asked for has emptied the socket's
 * queue (TCP's recvmsg stops only when nothing is left), and bytes that
 * come later make epoll report the socket again. So after a short read,
 * the next read waits for that report rather than being made only to
 * fail with EAGAIN: one syscall fewer per request on keep-alive. A
 * hangup is the exception: it is reported once, and the end of stream
 * behind the last bytes is only seen by reading on. */
static int fill(struct http_conn *c, struct input *in)
{
    size_t max = c->hw->cfg->limits.max_head, want;
    ssize_t n;
    if (c->drained)
        return 0;
    if (in->scratch && in->len) {
        if (stash(c, in) < 0)
            return -1;
        *in = (struct input){c->in, c->in_len, false};
    }
    if (!c->in) {
        want = c->hw->in_cap;
        do
            n = read(c->fd, c->hw->in, want);
        while (n < 0 && errno == EINTR);
        if (n > 0)
            *in = (struct input){c->hw->in, (size_t)n, true};
    } else {
        if (c->in_len == c->in_cap) {
            size_t cap = c->in_cap * 2 > max ? max : c->in_cap * 2;
            char *p = cap > c->in_cap ? realloc(c->in, cap) : NULL;
            if (!p)
                return -1; /* the parser answers 431 before this happens */
            c->in = p;
            c->in_cap = cap;
        }
        want = c->in_cap - c->in_len;
        do
            n = read(c->fd, c->in + c->in_len, want);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            c->in_len += (size_t)n;
            *in = (struct input){c->in, c->in_len, false};
        }
    }
    if (n > 0) {
        c->drained = (size_t)n < want && !c->hangup;
        return 1;
    }
    return n < 0 && errno == EAGAIN ? 0 : -1;
}

/* ---- output ---- */

/* send(2), retried on EINTR: with edge-triggered epoll, giving up on a
 * socket that is not full would wait for an edge that never comes. */
static ssize_t send_some(int fd, const void *p, size_t n, int flags)
{
    ssize_t r;
    do
        r = send(fd, p, n, MSG_NOSIGNAL | flags);
    while (r < 0 && errno == EINTR);
    return r;
}

/* How far flush got. */
enum flush_result {
    F_FAILED = -1,
    F_FULL,  /* the socket is full: EPOLLOUT resumes */
    F_SLICE, /* a slice of the file went out: the next loop iteration resumes */
    F_DONE,  /* the whole response is out */
};

/* The size of a slice on fd (see GSO_BYTES). Read at every slice: the MSS
 * grows over a connection's first packets (it is held to half the peer's
 * window until that opens), and a stale one would split each slice into a
 * full packet and a runt, the very thing slicing avoids. */
static size_t slice_size(int fd)
{
    int mss = 0;
    socklen_t len = sizeof mss;
    if (getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len) < 0 || mss <= 0)
        return SLICE_OTHER;
    return GSO_BYTES > mss ? GSO_BYTES / (size_t)mss * (size_t)mss : (size_t)mss;
}

/* One sendfile of at most one slice of the file body. Any
 * progress is a slice, even a short one: the next call then meets EAGAIN,
 * and only that guarantees an EPOLLOUT edge to come. */
static enum flush_result send_slice(struct http_conn *c)
{
    off_t off = (off_t)c->file_off;
    size_t len = slice_size(c->fd);
    len -= c->head_queued < len ? c->head_queued : 0;
    c->head_queued = 0;
    if (len > c->file_left)
        len = c->file_left;
    ssize_t n;
    do
        n = sendfile(c->fd, c->file, &off, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? F_FULL : F_FAILED;
    if (n == 0)
        return F_FAILED; /* the file shrank under us: the length we promised is a lie */
    c->file_off += (uint64_t)n;
    c->file_left -= (uint64_t)n;
    c->body_sent += (uint64_t)n;
    return c->file_left ? F_SLICE : F_DONE;
}

/* Send what is pending: the unsent head (and small body), then a slice of
 * the file body. */
static enum flush_result flush(struct http_conn *c)
{
    while (c->out && c->out_off < c->out_len) {
        ssize_t n = send_some(c->fd, c->out + c->out_off, c->out_len - c->out_off, 0);
        if (n < 0)
            return errno == EAGAIN ? F_FULL : F_FAILED;
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    return c->file_left ? send_slice(c) : F_DONE;
}

/* Where the response in flight stands: grows with every byte sent. */
static uint64_t sent_mark(const struct http_conn *c) { return c->out_off + c->file_off; }

/* The response is not all out: wait for room in the socket, or for the
 * next iteration after a slice. The send timeout counts from the last
 * progress: an event that sent nothing (the client sending more while it
 * does not read) leaves it running, or a trickle of bytes could hold the
 * connection for ever. A restart with progress is O(1). */
static void wait_to_send(struct http_conn *c, enum flush_result r, bool progress)
{
    c->state = C_WRITE;
    if (r == F_SLICE)
        pf_defer_start(c->hw->loop, &c->more);
    if (progress)
        arm(c, W_SEND, c->hw->cfg->send_timeout_ms);
}

static void log_done(struct http_conn *c, struct http_alog_entry *e)
{
    if (c->hw->alog && e)
        http_alog_add(c->hw->alog, e, c->body_sent, now_us() - c->started_us);
}

/* The response went out whole. */
static void response_done(struct http_conn *c, struct http_alog_entry *e)
{
    log_done(c, e);
    pf_worker_count(c->hw->w, 1, c->body_sent);
    pf_worker_set_activity(c->hw->w, NULL);
    if (c->file >= 0)
        close(c->file);
    c->file = -1;
    c->state = C_READ;
    c->wait = W_NONE; /* the next request's head gets a clock of its own */
    c->served = true;
    c->requests++;
}

/* Queue the head (and a small body) in the scratch and try to send it all
 * at once; whatever does not go is copied into the connection. */
static int send_reply(struct http_conn *c, const struct http_reply *r, int minor)
{
    struct http_buf *out = &c->hw->out;
    bool body = !r->head_only && r->length > 0;
    c->file = r->fd; /* from here the connection owns (and closes) it */
    if (http_reply_head(r, minor, out) < 0)
        return -1;
    size_t head_len = out->len;
    c->file_off = r->offset;
    c->file_left = body && r->fd >= 0 ? r->length : 0;
    c->body_sent = 0;
    if (body && r->body && http_buf_append(out, r->body, r->length) < 0)
        return -1;
    if (c->file_left && c->file_left <= SMALL_BODY &&
        http_buf_reserve(out, c->file_left) == 0) {
        ssize_t n = pread(c->file, out->p + out->len, c->file_left, (off_t)c->file_off);
        if (n == (ssize_t)c->file_left) {
            out->len += (size_t)n;
            c->file_left = 0;
        }
    }
    c->body_sent = out->len - head_len; /* memory bodies count once queued */
    ssize_t n = send_some(c->fd, out->p, out->len, c->file_left ? MSG_MORE : 0);
    if (n < 0 && errno != EAGAIN)
        return -1;
    size_t sent = n > 0 ? (size_t)n : 0;
    c->head_queued = c->file_left && sent == out->len ? (uint32_t)sent : 0;
    if (sent < out->len) {
        c->out = malloc(out->len - sent);
        if (!c->out)
            return -1;
        memcpy(c->out, out->p + sent, out->len - sent);
        c->out_len = out->len - sent;
        c->out_off = 0;
    }
    return 0;
}

/* ---- requests ---- */

static void begin_request(struct http_conn *c)
{
    if (c->hw->alog)
        c->started_us = now_us(); /* the log's request time; no clock read without one */
    c->close_after = c->close_after || c->hw->draining ||
                     (c->hw->cfg->max_keepalive_requests &&
                      c->requests + 1 >= c->hw->cfg->max_keepalive_requests);
}

/* Answer one parsed (or refused) request: the reply is decided, its log
 * line prepared, and sending starts. Returns -1 if the connection failed. */
static int answer(struct http_conn *c, const struct http_request *req, int parsed)
{
    struct http_worker *hw = c->hw;
    struct http_reply r;
    http_reply_init(&r);
    begin_request(c);
    if (parsed == HTTP_PARSE_INVALID) {
        r.close = true;
        http_reply_error(&r, req->status, &hw->body);
    } else {
        http_handle(hw, req, &r);
    }
    if (c->close_after)
        r.close = true;
    c->closing = r.close;
    /* A body we do not read, or bytes we could not frame, are still coming. */
    c->unread = parsed == HTTP_PARSE_INVALID ||
                (parsed > 0 && (req->content_length > 0 || req->chunked));
    c->client_close = parsed > 0 && !req->keep_alive;
    http_buf_reset(&hw->out);
    struct http_alog_entry entry;
    if (hw->alog)
        http_alog_format(&entry, c->peer, parsed > 0 ? req : NULL, r.status);
    if (send_reply(c, &r, parsed > 0 ? req->version_minor : 1) < 0)
        return -1;
    enum flush_result done = flush(c);
    if (done == F_FAILED)
        return -1;
    if (done == F_DONE) {
        response_done(c, hw->alog ? &entry : NULL);
        return 0;
    }
    /* More to send later: keep the log line until then. */
    wait_to_send(c, done, true);
    if (hw->alog && (c->entry = malloc(sizeof entry)) != NULL)
        memcpy(c->entry, &entry, sizeof entry);
    return 0;
}

/* "METHOD TARGET" for `prefork status`, the target cut at 100 bytes. Built
 * by hand: this runs on every request, and snprintf was 2% of a worker. */
static void set_activity(struct http_conn *c, const struct http_request *req)
{
    char line[128];
    size_t m = req->method_len < 16 ? req->method_len : 16;
    size_t t = req->target_len < 100 ? req->target_len : 100;
    memcpy(line, req->method_name, m);
    line[m] = ' ';
    memcpy(line + m + 1, req->target, t);
    line[m + 1 + t] = '\0';
    pf_worker_set_activity(c->hw->w, line);
}

/* Parse and answer what is buffered: 1 answered one, 0 needs more bytes,
 * -1 the connection is done for. */
static int next_request(struct http_conn *c, struct input *in)
{
    struct http_request req;
    struct http_header hdrs[HTTP_MAX_HEADERS];
    if (in->len == 0)
        return 0;
    int n = http_parse_request(in->p, in->len, &c->hw->cfg->limits, &req, hdrs,
                               HTTP_MAX_HEADERS, &c->scan);
    if (n == HTTP_PARSE_INCOMPLETE)
        return 0;
    if (n > 0)
        set_activity(c, &req);
    if (answer(c, &req, n) < 0)
        return -1;
    consume(c, in, n > 0 ? (size_t)n : in->len);
    return 1;
}

/* Serve until the socket would block or the connection ends. Returns
 * whether the connection is still there. */
static bool run(struct http_conn *c)
{
    struct input in = {c->in, c->in_len, false};
    for (;;) {
        if (c->state == C_WRITE)
            break;
        if (c->closing)
            return finish(c, in.len);
        int r = next_request(c, &in);
        if (r < 0)
            goto dead;
        if (r > 0)
            continue;
        r = fill(c, &in);
        if (r < 0)
            goto dead;
        if (r == 0)
            break;
    }
    if (stash(c, &in) < 0)
        goto dead;
    if (c->state != C_WRITE) /* else answer armed the send timeout */
        arm_reading(c);
    return true;
dead:
    conn_free(c);
    return false;
}

/* Go on with the response in flight; once it is out, serve what follows. */
static void send_more(struct http_conn *c)
{
    uint64_t mark = sent_mark(c);
    enum flush_result r = flush(c);
    if (r == F_FAILED) {
        conn_free(c);
        return;
    }
    if (r != F_DONE) {
        wait_to_send(c, r, sent_mark(c) != mark);
        return;
    }
    response_done(c, c->entry);
    free(c->entry);
    c->entry = NULL;
    run(c);
}

static void on_io(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)fd;
    struct http_conn *c = ud;
    if (events & (PF_EV_READ | PF_EV_RDHUP | PF_EV_HUP | PF_EV_ERROR))
        c->drained = false;
    if (events & (PF_EV_RDHUP | PF_EV_HUP | PF_EV_ERROR))
        c->hangup = true;
    if (c->state == C_LINGER) {
        linger_read(c);
        return;
    }
    if (c->state == C_WRITE && (events & PF_EV_ERROR)) {
        conn_free(c);
        return;
    }
    if (c->state == C_WRITE)
        send_more(c);
    else
        run(c);
}

/* The next iteration after a slice: send the next one. */
static void on_more(pf_loop *loop, pf_defer *d, void *ud)
{
    (void)loop, (void)d;
    struct http_conn *c = ud;
    if (c->state == C_WRITE)
        send_more(c);
}

/* A timeout: the head was too slow (408 if part of one came), the
 * connection idle too long, or the client stopped reading. */
static void on_timer(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    struct http_conn *c = ud;
    if (c->wait == W_IDLE && c->hw->draining) {
        linger(c); /* quiet for a while: half-close, so a late request meets a FIN */
        return;
    }
    if (c->wait == W_HEAD && c->in_len > 0) {
        struct http_reply r;
        http_reply_init(&r);
        r.close = true;
        http_reply_error(&r, 408, &c->hw->body);
        http_buf_reset(&c->hw->out);
        if (http_reply_head(&r, 1, &c->hw->out) == 0 &&
            http_buf_append(&c->hw->out, r.body, r.length) == 0) {
            ssize_t n = send(c->fd, c->hw->out.p, c->hw->out.len, MSG_NOSIGNAL);
            (void)n; /* best effort: the connection closes either way */
        }
        linger(c);
        return;
    }
    conn_free(c);
}

void http_conn_open(struct http_worker *hw, int fd, const struct sockaddr *peer,
                    socklen_t peerlen)
{
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        pf_worker_close_conn(hw->w, fd);
        return;
    }
    c->hw = hw;
    c->fd = fd;
    c->file = -1;
    c->next = hw->conns;
    if (hw->conns)
        hw->conns->prev = c;
    hw->conns = c;
    pf_timer_init(&c->timer, on_timer, c);
    pf_defer_init(&c->more, on_more, c);
    if (hw->alog)
        http_alog_peer(peer, peerlen, c->peer, sizeof c->peer);
    arm(c, W_HEAD, hw->cfg->header_timeout_ms);
    /* The request has usually arrived with the connection: serve it before
     * registering, and a short connection is answered and closed without
     * ever touching epoll. Then edge-triggered, both directions, registered
     * once: no epoll_ctl per request; bytes that arrived in between are
     * reported at once. */
    if (!run(c))
        return;
    if (pf_loop_add(hw->loop, fd, PF_EV_READ | PF_EV_WRITE | PF_EV_RDHUP | PF_EV_EDGE,
                    on_io, c) < 0)
        conn_free(c);
}

/* Closing an idle keep-alive connection races with a request the client
 * may be sending at that moment, which would then meet a reset. So: every
 * connection answers its next request with Connection: close, and one
 * that stays quiet for DRAIN_QUIET_MS is half-closed and lingered. */
void http_conn_drain_all(struct http_worker *hw)
{
    for (struct http_conn *c = hw->conns; c; c = c->next) {
        c->close_after = true;
        if (c->state == C_READ && c->in_len == 0)
            arm(c, W_IDLE, DRAIN_QUIET_MS);
    }
}
