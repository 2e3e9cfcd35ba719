/* conn.c — one HTTP connection: reading heads, the exchange in flight, keep-alive, pipelining, timeouts, the lingering close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/alog.h"
#include "http/core.h"

#define LINGER_MS 2000           /* reading leftovers before a close, at most */
#define LINGER_BYTES (64 * 1024)
#define IN_FIRST 1024            /* first size of a connection's own buffer */
#define BODY_WINDOW (64 * 1024)  /* a body is read this much at a time */
#define DRAIN_QUIET_MS 1000      /* a draining worker's idle connections wait this */

enum run_result { DEAD, ALIVE };

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- life and death ---- */

static void conn_free(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    c->tp.cut = c->x != NULL; /* mid-exchange: no clean end for the client to trust */
    if (c->x) {
        http_ex_abort(c->x);
        http_ex_recycle(hs, c->x);
    }
    if (hs->in_owner == c)
        hs->in_owner = NULL;
    pf_timer_stop(hs->loop, &c->timer);
    pf_defer_stop(hs->loop, &c->more);
    if (c->prev)
        c->prev->next = c->next;
    else
        hs->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    http_out_free(c);
    free(c->in);
    c->tp.ops->close(&c->tp);
    if (hs->w) {
        pf_worker_close_conn(hs->w, c->tp.fd);
    } else {
        pf_loop_del(hs->loop, c->tp.fd);
        close(c->tp.fd);
    }
    free(c);
}

void http_conn_close(struct http_conn *c)
{
    conn_free(c);
}

int http_conn_arm(struct http_conn *c, enum conn_wait wait, unsigned ms)
{
    c->wait = wait;
    return pf_timer_start(c->hs->loop, &c->timer, ms);
}

void http_conn_kick(struct http_conn *c)
{
    pf_defer_start(c->hs->loop, &c->more);
}

/* ---- input ---- */

/*
 * A connection's unconsumed input is in one of two places: the worker's
 * scratch (hs->in, while the connection runs: reads land there, and most
 * requests are parsed and answered straight from it), or the connection's
 * own buffer. In front of the unconsumed bytes, `pinned` bytes hold the
 * head of the open exchange, whose strings the handler reads until the
 * exchange ends. When the connection stops running with bytes in the
 * scratch, they move into its own buffer (and the head's strings with
 * them): the scratch belongs to whichever connection runs next.
 */
const char *http_conn_input(struct http_conn *c, size_t *len)
{
    struct http_server *hs = c->hs;
    if (hs->in_owner == c) {
        *len = hs->in_len;
        return hs->in + hs->in_off;
    }
    *len = c->in_len - c->pinned;
    return c->in + c->pinned;
}

static void own_free(struct http_conn *c)
{
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
}

void http_conn_consume(struct http_conn *c, size_t n)
{
    struct http_server *hs = c->hs;
    if (hs->in_owner == c) {
        hs->in_off += n;
        hs->in_len -= n;
        if (hs->in_len == 0 && c->pinned == 0)
            hs->in_owner = NULL;
        return;
    }
    memmove(c->in + c->pinned, c->in + c->pinned + n, c->in_len - c->pinned - n);
    c->in_len -= n;
    if (c->in_len == 0)
        own_free(c);
}

/* The head stays at the front of the input until its exchange ends. */
static void pin(struct http_conn *c, size_t head)
{
    struct http_server *hs = c->hs;
    if (hs->in_owner == c) {
        hs->in_off += head;
        hs->in_len -= head;
    }
    c->pinned = head;
}

static void unpin(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    size_t head = c->pinned;
    c->pinned = 0;
    if (hs->in_owner == c) {
        if (hs->in_len == 0)
            hs->in_owner = NULL;
        return;
    }
    if (!c->in)
        return;
    memmove(c->in, c->in + head, c->in_len - head);
    c->in_len -= head;
    if (c->in_len == 0)
        own_free(c);
}

/* Move the scratch's bytes (head included) into the connection's buffer. */
static int stash(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    if (hs->in_owner != c)
        return 0;
    size_t len = c->pinned + hs->in_len, cap = IN_FIRST;
    const char *from = hs->in + hs->in_off - c->pinned;
    hs->in_owner = NULL;
    while (cap < len)
        cap *= 2;
    c->in = malloc(cap);
    if (!c->in)
        return -ENOMEM;
    memcpy(c->in, from, len);
    c->in_len = len;
    c->in_cap = cap;
    if (c->x && c->pinned)
        http_ex_rebase(c->x, from, c->pinned, c->in);
    return 0;
}

/* Room for more in the own buffer: a head may grow to max_head, a body
 * window follows the pinned head. */
static int grow(struct http_conn *c)
{
    size_t max = c->x ? c->pinned + BODY_WINDOW : c->hs->cfg->limits.max_head;
    if (c->in_len < c->in_cap)
        return 0;
    size_t cap = c->in_cap ? c->in_cap * 2 : IN_FIRST;
    if (cap > max)
        cap = max;
    char *p = cap > c->in_cap ? realloc(c->in, cap) : NULL;
    if (!p)
        return -1; /* the parser answers 431 before this happens */
    if (c->x && c->pinned && p != c->in)
        http_ex_rebase(c->x, c->in, c->pinned, p);
    c->in = p;
    c->in_cap = cap;
    return 0;
}

/* Where the next read goes: the scratch when nothing is kept anywhere. */
static char *read_room(struct http_conn *c, size_t *want)
{
    struct http_server *hs = c->hs;
    if (!c->x && !c->in && hs->in_owner != c) {
        hs->in_owner = c;
        hs->in_off = hs->in_len = 0;
        *want = hs->in_cap;
        return hs->in;
    }
    if (stash(c) < 0 || grow(c) < 0)
        return NULL;
    *want = c->in_cap - c->in_len;
    return c->in + c->in_len;
}

/*
 * Read more bytes: 1 got some, 0 would block, -1 end of stream or error.
 *
 * A read that returns less than it asked for has emptied the socket's
 * queue (TCP's recvmsg stops only when nothing is left) unless the
 * transport holds bytes above it, and bytes that come later make epoll
 * report the socket again. So after a short read, the next read waits for
 * that report rather than being made only to fail with EAGAIN: one syscall
 * fewer per request on keep-alive. A hangup is the exception: it is
 * reported once, and the end of stream behind the last bytes is only seen
 * by reading on.
 */
int http_conn_fill(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    size_t want;
    if (c->edge == EDGE_EMPTY)
        return 0;
    char *room = read_room(c, &want);
    if (!room)
        return -1;
    ssize_t n = c->tp.ops->read(&c->tp, room, want);
    if (n > 0) {
        if (hs->in_owner == c && room == hs->in)
            hs->in_len = (size_t)n;
        else
            c->in_len += (size_t)n;
        if ((size_t)n < want && c->edge != EDGE_HANGUP && !c->tp.ops->pending(&c->tp))
            c->edge = EDGE_EMPTY;
        return 1;
    }
    if (hs->in_owner == c && hs->in_len == 0 && c->pinned == 0)
        hs->in_owner = NULL;
    if (n == -EAGAIN) {
        c->edge = EDGE_EMPTY;
        return 0;
    }
    return -1;
}

/* ---- closing ---- */

/* Closing with unread request bytes in the socket makes the kernel send a
 * reset, which can destroy the response still in flight to the client. So
 * after a response that ends the connection: shut our side, then read and
 * discard what the client still sends, for a short while. A shutdown that
 * fails (the peer reset the connection) leaves nothing to wait for. */
static enum run_result linger(struct http_conn *c)
{
    if (c->tp.ops->shutdown(&c->tp) < 0)
        return DEAD;
    c->state = C_LINGER;
    c->sent = 0; /* counts discarded bytes from here on */
    return http_conn_arm(c, W_LINGER, LINGER_MS) < 0 ? DEAD : ALIVE;
}

/* After a response that ends the connection: closing at once is safe only
 * if the client sent nothing we did not read (a close with unread bytes
 * sends a reset). One read tells; otherwise linger. */
static enum run_result finish(struct http_conn *c)
{
    size_t buffered;
    http_conn_input(c, &buffered);
    /* A client that asked to close sends no further request (RFC 9112
     * 9.6): nothing can be pending, no need to look. */
    if (!c->unread && buffered == 0 && c->peer_done)
        return DEAD;
    if (!c->unread && buffered == 0) {
        ssize_t n = c->tp.ops->read(&c->tp, c->hs->in, c->hs->in_cap);
        if (n == 0 || n == -EAGAIN)
            return DEAD;
    }
    return linger(c);
}

static void linger_read(struct http_conn *c)
{
    for (;;) {
        ssize_t n = c->tp.ops->read(&c->tp, c->hs->in, c->hs->in_cap);
        if (n > 0 && (c->sent += (uint64_t)n) < LINGER_BYTES)
            continue;
        if (n == -EAGAIN)
            return;
        conn_free(c);
        return;
    }
}

/* ---- one exchange ---- */

/* "METHOD TARGET" for `prefork status`, the target cut at 100 bytes. Built
 * by hand: this runs on every request, and snprintf showed in profiles. */
static void set_activity(struct http_conn *c, const struct http_request *req)
{
    char line[128];
    size_t m = req->method_len < 16 ? req->method_len : 16;
    size_t t = req->target_len < 100 ? req->target_len : 100;
    if (!c->hs->w)
        return;
    memcpy(line, req->method_name, m);
    line[m] = ' ';
    memcpy(line + m + 1, req->target, t);
    line[m + 1 + t] = '\0';
    pf_worker_set_activity(c->hs->w, line);
}

static void framing(struct http_exchange *x)
{
    if (x->req.chunked) {
        x->framing = BODY_CHUNKED;
        http_chunked_init(&x->dec);
    } else if (x->req.content_length > 0) {
        x->framing = BODY_LENGTH;
        x->body_left = (uint64_t)x->req.content_length;
    }
}

/* A head that could not be parsed: the core answers, the connection ends. */
static void refuse(struct http_conn *c, struct http_exchange *x, int status)
{
    size_t len;
    http_conn_input(c, &len);
    http_conn_consume(c, len);
    x->invalid = true;
    c->close = true;
    c->unread = true;
    http_res_error(x, status);
}

static struct http_exchange *open_exchange(struct http_conn *c)
{
    struct http_exchange *x = http_ex_new(c);
    if (!x)
        return NULL;
    x->started_us = now_us(); /* the request's time: the log's, the metrics' */
    c->x = x;
    c->state = C_EXCHANGE;
    return x;
}

/* Parse what is buffered; on a whole head, open the exchange and give it
 * to the handler. 1 done so, 0 needs more bytes, -1 out of memory. */
static int next_head(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    size_t len;
    const char *p = http_conn_input(c, &len);
    if (len == 0)
        return 0;
    struct http_exchange *x = open_exchange(c);
    if (!x)
        return -1;
    int n = http_parse_request(p, len, &hs->cfg->limits, &x->req, x->hdrs,
                               hs->cfg->limits.max_headers, &c->scan);
    if (n == HTTP_PARSE_INCOMPLETE) {
        c->x = NULL;
        c->state = C_READ;
        http_ex_recycle(hs, x);
        return 0;
    }
    if (n == HTTP_PARSE_INVALID) {
        refuse(c, x, x->req.status);
        return 1;
    }
    pin(c, (size_t)n);
    framing(x);
    c->peer_done = !x->req.keep_alive;
    set_activity(c, &x->req);
    if (hs->cfg->health_path[0] && http_health(x))
        ; /* answered by the core, on any listener (a balancer's check) */
    else if (hs->cfg->https_port && !c->tp.ops->secure)
        http_redirect_https(x);
    else
        hs->h->request(x, hs->h->ud);
    return 1;
}

/* The response is out and the body settled: log, count, and get ready for
 * the next request. */
static void exchange_done(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    struct http_exchange *x = c->x;
    uint64_t bytes = x->no_body ? 0 : x->written;
    if (hs->alog) {
        struct http_alog_entry e;
        char peer[46];
        http_alog_peer(&c->peer.sa, c->peer_len, peer, sizeof peer);
        http_alog_format(&e, peer, x->invalid ? NULL : &x->req, x->status);
        http_alog_add(hs->alog, &e, bytes, now_us() - x->started_us);
    }
    if (hs->w) {
        pf_worker_count_response(hs->w, x->status, bytes, now_us() - x->started_us);
        pf_worker_set_activity(hs->w, NULL);
    }
    if (x->framing != BODY_NONE && !x->body_done)
        c->unread = true; /* the connection closes with body bytes unread */
    c->x = NULL;
    unpin(c);
    http_ex_recycle(hs, x);
    c->state = C_READ;
    c->wait = W_NONE; /* the next request's head gets a clock of its own */
    c->sent = 0;
    c->requests++;
}

/* The handler wrote past high_water and waits: tell it once there is room. */
static void writable(struct http_conn *c)
{
    struct http_exchange *x = c->x;
    if (x && x->later && !x->aborted && x->stage == RES_STARTED &&
        c->q_bytes <= c->hs->cfg->high_water) {
        x->later = false;
        if (x->on_writable)
            x->on_writable(x, x->writable_ud);
    }
}

/* ---- the state machine ---- */

/* What the exchange in flight needs next: 1 go on, 0 wait, -1 failed,
 * 2 the response is all the handler will give and the body is settled:
 * what is left is sending it. */
static int exchange_step(struct http_conn *c)
{
    struct http_exchange *x = c->x;
    if (x->stage == RES_ENDED && !x->body_done && x->mode != BODY_DISCARD)
        http_body_discard(x);
    bool reading = !x->body_done && (x->mode == BODY_STREAM || x->mode == BODY_WHOLE ||
                                     (x->mode == BODY_DISCARD && !c->close));
    if (reading) {
        int r = http_body_step(x);
        if (r != 0)
            return c->state == C_DEAD ? -1 : 1;
        r = http_conn_fill(c);
        if (r < 0)
            http_body_fail(x, -ECONNRESET);
        return r < 0 ? -1 : r;
    }
    if (x->stage != RES_ENDED)
        return 0; /* the handler is at work */
    if (!http_body_settled(x)) {
        http_body_discard(x);
        return 1;
    }
    return 2;
}

/* Send the response; once it is all out, the exchange is done. A response
 * that ends the connection ends the transport's stream with its last bytes
 * (finish sends nothing more). */
static int send_out(struct http_conn *c)
{
    enum flush_result f = http_out_flush(c, c->close);
    c->hs->flushed = true;
    if (f == F_FAILED)
        return -1;
    if (f != F_DONE) {
        if (f == F_SLICE)
            http_conn_kick(c); /* the next slice on the next iteration */
        return 0;
    }
    exchange_done(c);
    return 1;
}

/* Serve until the socket would block, the handler is at work, or the
 * connection ends. */
static enum run_result serve(struct http_conn *c)
{
    for (;;) {
        if (c->state == C_DEAD)
            return DEAD;
        if (c->x) {
            int r = exchange_step(c);
            if (r == 2)
                r = send_out(c);
            if (r < 0)
                return DEAD;
            if (r == 0)
                return ALIVE;
            continue;
        }
        if (c->close)
            return finish(c);
        int r = next_head(c);
        if (r < 0)
            return DEAD;
        if (r == 0 && (r = http_conn_fill(c)) <= 0)
            return r < 0 ? DEAD : ALIVE;
    }
}

/* What to wait for, once serve has stopped: 0, or -ENOMEM when the
 * timer could not be started (see http_conn_arm). */
static int arm_waiting(struct http_conn *c, uint64_t sent0, uint64_t seen0)
{
    struct http_server *hs = c->hs;
    struct http_exchange *x = c->x;
    if (c->q) {
        /* The send timeout counts from the last progress: an event that
         * sent nothing (the client sending more while it does not read)
         * leaves it running, or a trickle of bytes could hold the
         * connection for ever. A restart with progress is O(1). */
        if (c->wait != W_SEND || c->sent != sent0)
            return http_conn_arm(c, W_SEND, hs->cfg->send_timeout_ms);
    } else if (x && x->mode != BODY_UNWANTED && !x->body_done) {
        if (c->wait != W_BODY || x->body_seen != seen0)
            return http_conn_arm(c, W_BODY, hs->cfg->body_timeout_ms);
    } else if (x) {
        c->wait = W_NONE; /* the handler's time is its own (the pool's --timeout) */
        pf_timer_stop(hs->loop, &c->timer);
    } else if (c->in_len || hs->in_owner == c || c->requests == 0) {
        /* The header timeout runs from the first byte of a request (or
         * from the connection's start) to the end of its head, whatever
         * the client sends in between. */
        if (c->wait != W_HEAD)
            return http_conn_arm(c, W_HEAD, hs->cfg->header_timeout_ms);
    } else if (c->wait != W_IDLE || !hs->draining) {
        return http_conn_arm(c, W_IDLE,
                             hs->draining ? DRAIN_QUIET_MS : hs->cfg->keepalive_timeout_ms);
    }
    return 0;
}

/* Run the connection: serve, send what the scratch holds, keep what is
 * left, and arm the timer for what comes next. Returns whether the
 * connection is still there. */
static bool conn_run(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    uint64_t sent0 = c->sent, seen0 = c->x ? c->x->body_seen : 0;
    hs->running = c;
    hs->flushed = false;
    enum run_result r = serve(c);
    /* What the handler wrote without ending (a head, a piece of a stream),
     * or wrote from outside a callback, goes out now. */
    if (r == ALIVE && c->state != C_LINGER && (hs->out.len || (c->q && !hs->flushed))) {
        enum flush_result f = http_out_flush(c, false);
        if (f == F_FAILED)
            r = DEAD;
        else if (f == F_SLICE)
            http_conn_kick(c);
    }
    if (r == ALIVE && c->state != C_LINGER && stash(c) < 0)
        r = DEAD;
    hs->running = NULL;
    http_buf_reset(&hs->out);
    if (r == ALIVE && c->state != C_LINGER && arm_waiting(c, sent0, seen0) < 0)
        r = DEAD;
    if (r == DEAD) {
        conn_free(c);
        return false;
    }
    writable(c);
    return true;
}

static void on_io(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)fd;
    struct http_conn *c = ud;
    if (events & (PF_EV_READ | PF_EV_RDHUP | PF_EV_HUP | PF_EV_ERROR) && c->edge != EDGE_HANGUP)
        c->edge = EDGE_UNKNOWN;
    /* A read that had to write first (transport.h) goes on when writable. */
    if (events & PF_EV_WRITE && c->tp.read_needs_write && c->edge != EDGE_HANGUP)
        c->edge = EDGE_UNKNOWN;
    if (events & (PF_EV_RDHUP | PF_EV_HUP | PF_EV_ERROR))
        c->edge = EDGE_HANGUP;
    if (c->state == C_LINGER) {
        linger_read(c);
        return;
    }
    if (events & PF_EV_ERROR) {
        conn_free(c); /* a reset: nothing can reach the client */
        return;
    }
    conn_run(c);
}

/* The next iteration: the next slice, or output written outside a callback. */
static void on_more(pf_loop *loop, pf_defer *d, void *ud)
{
    (void)loop, (void)d;
    struct http_conn *c = ud;
    if (c->state != C_LINGER)
        conn_run(c);
}

/* A timeout: the head was too slow (408 if part of one came), the body
 * stalled (408), the connection idle too long, or the client stopped
 * reading. */
static void on_timer(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    struct http_conn *c = ud;
    size_t buffered;
    http_conn_input(c, &buffered);
    if (c->wait == W_IDLE && c->hs->draining) {
        if (linger(c) == DEAD) /* quiet for a while: half-close, so a late request meets a FIN */
            conn_free(c);
        return;
    }
    if (c->wait == W_BODY && c->x) {
        c->hs->running = c;
        http_body_fail(c->x, -ETIMEDOUT);
        c->hs->running = NULL;
        conn_run(c);
        return;
    }
    if (c->wait == W_HEAD && buffered > 0 && !c->x) {
        c->hs->running = c;
        struct http_exchange *x = open_exchange(c);
        if (x)
            refuse(c, x, 408);
        c->hs->running = NULL;
        if (x) {
            conn_run(c);
            return;
        }
    }
    conn_free(c);
}

void http_conn_open(struct http_server *hs, int fd, const struct sockaddr *peer,
                    socklen_t peerlen)
{
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        if (hs->w)
            pf_worker_close_conn(hs->w, fd);
        else
            close(fd);
        return;
    }
    c->hs = hs;
    c->tp = (struct http_tp){.ops = hs->tp, .fd = fd};
    const struct http_tp_source *src = hs->cfg->transport;
    if (src && src->open(&c->tp, src->ud) < 0) {
        free(c);
        if (hs->w)
            pf_worker_close_conn(hs->w, fd);
        else
            close(fd);
        return;
    }
    if (peer && peerlen <= sizeof c->peer) {
        memcpy(&c->peer, peer, peerlen);
        c->peer_len = peerlen;
    }
    c->next = hs->conns;
    if (hs->conns)
        hs->conns->prev = c;
    hs->conns = c;
    pf_timer_init(&c->timer, on_timer, c);
    pf_defer_init(&c->more, on_more, c);
    if (http_conn_arm(c, W_HEAD, hs->cfg->header_timeout_ms) < 0) {
        conn_free(c); /* without its header timeout, it could be held for ever */
        return;
    }
    /* The request has usually arrived with the connection: serve it before
     * registering, and a short connection is answered and closed without
     * ever touching epoll. Then edge-triggered, both directions, registered
     * once: no epoll_ctl per request; bytes that arrived in between are
     * reported at once. */
    if (!conn_run(c))
        return;
    if (pf_loop_add(hs->loop, fd, PF_EV_READ | PF_EV_WRITE | PF_EV_RDHUP | PF_EV_EDGE, on_io,
                    c) < 0)
        conn_free(c);
}

/* Closing an idle keep-alive connection races with a request the client
 * may be sending at that moment, which would then meet a reset. So: every
 * connection answers its next request with Connection: close (the server
 * is draining), one with a response in flight closes after it, and one
 * that stays quiet for DRAIN_QUIET_MS is half-closed and lingered. */
void http_conn_drain_all(struct http_server *hs)
{
    for (struct http_conn *c = hs->conns, *next; c; c = next) {
        next = c->next;
        if (c->x)
            c->close = true;
        else if (c->state == C_READ && c->in_len == 0 &&
                 http_conn_arm(c, W_IDLE, DRAIN_QUIET_MS) < 0)
            conn_free(c);
    }
}
