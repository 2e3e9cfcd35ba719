/* body.c — the request body: framing, 100-continue, limits, handed to the handler in pieces or whole, or read away for keep-alive. */
#include <errno.h>

#include "http/core.h"

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

bool http_body_expected(const struct http_exchange *x)
{
    return x->framing != BODY_NONE;
}

bool http_body_settled(const struct http_exchange *x)
{
    return x->framing == BODY_NONE || x->body_done || x->c->close;
}

/* A client that sent "Expect: 100-continue" and got no 100 may never send
 * the body (RFC 9110 10.1.1), and then nothing can tell where the next
 * request starts; a declared body past the bound is not worth reading. */
static bool not_worth_reading(const struct http_exchange *x)
{
    if (x->framing == BODY_NONE || x->body_done)
        return false;
    if (x->req.expect_continue && !x->continued && x->body_seen == 0)
        return true;
    return x->framing == BODY_LENGTH &&
           x->body_seen + x->body_left > x->c->hs->cfg->max_body;
}

bool http_body_must_close(const struct http_exchange *x)
{
    return x->mode == BODY_UNWANTED && not_worth_reading(x);
}

/* The body goes no further: answered with a status when no response began,
 * else the connection just ends. The handler is told err, once, and may no
 * longer use x. */
void http_body_fail(struct http_exchange *x, int err)
{
    struct http_conn *c = x->c;
    bool reading = x->mode == BODY_STREAM || x->mode == BODY_WHOLE;
    bool told = x->aborted || x->stage == RES_ENDED;
    c->close = true;
    c->unread = true;
    x->body_done = true;
    x->aborted = true;
    if (!told && reading)
        x->body_cb(x, NULL, 0, err, x->body_ud);
    else if (!told && x->on_abort)
        x->on_abort(x, x->abort_ud);
    if (err == -ECONNRESET) {
        c->state = C_DEAD;
        return;
    }
    if (x->stage == RES_ENDED)
        return; /* the response is whole; the connection closes after it */
    x->aborted = false; /* the core answers on it now */
    int r = http_res_error(x, err == -EMSGSIZE ? 413 : err == -ETIMEDOUT ? 408 : 400);
    x->aborted = true;
    if (r < 0)
        c->state = C_DEAD; /* a response began: only the close can tell */
}

static int start(struct http_exchange *x, enum body_mode mode, http_body_fn *cb, void *ud)
{
    struct http_conn *c = x->c;
    if (x->mode == BODY_STREAM || x->mode == BODY_WHOLE)
        return -EALREADY;
    if (x->aborted || x->stage == RES_ENDED || c->state == C_DEAD)
        return -EINVAL;
    if (x->framing == BODY_LENGTH && x->body_left > c->hs->cfg->max_body) {
        c->close = true;
        return -EMSGSIZE;
    }
    x->mode = mode;
    x->body_cb = cb;
    x->body_ud = ud;
    size_t have;
    http_conn_input(c, &have);
    if (x->framing != BODY_NONE && x->req.expect_continue && !x->continued &&
        x->stage == RES_NONE && have == 0 && x->body_seen == 0) {
        x->continued = true;
        http_out_append(c, continue_line, sizeof continue_line - 1);
    }
    if (c->hs->running != c)
        http_conn_kick(c);
    return 0;
}

int http_body_read(struct http_exchange *x, http_body_fn *cb, void *ud)
{
    return start(x, BODY_STREAM, cb, ud);
}

int http_body_read_whole(struct http_exchange *x, http_body_fn *cb, void *ud)
{
    return start(x, BODY_WHOLE, cb, ud);
}

/* Hand over one piece: to the handler, into the whole body, or nowhere. */
static int deliver(struct http_exchange *x, const char *p, size_t n, bool end)
{
    x->body_seen += n;
    x->body_done = end;
    if (x->body_seen > x->c->hs->cfg->max_body) {
        if (x->mode == BODY_DISCARD) {
            x->c->close = true; /* not worth reading away: close instead */
            x->c->unread = true;
            return -1;
        }
        http_body_fail(x, -EMSGSIZE);
        return -1;
    }
    if (x->stage == RES_ENDED || x->aborted)
        return 1; /* the handler is done with the exchange */
    if (x->mode == BODY_STREAM && (n || end))
        x->body_cb(x, p, n, end ? HTTP_BODY_END : HTTP_BODY_MORE, x->body_ud);
    if (x->mode != BODY_WHOLE)
        return 1;
    if (http_buf_append(&x->whole, p, n) < 0) {
        http_body_fail(x, -EMSGSIZE);
        return -1;
    }
    if (end)
        x->body_cb(x, x->whole.p ? x->whole.p : "", x->whole.len, HTTP_BODY_END, x->body_ud);
    return 1;
}

static int step_length(struct http_exchange *x, const char *p, size_t len)
{
    size_t n = len < x->body_left ? len : (size_t)x->body_left;
    x->body_left -= n;
    int r = deliver(x, p, n, x->body_left == 0); /* before the bytes move */
    http_conn_consume(x->c, n);
    return r;
}

static int step_chunked(struct http_exchange *x, const char *p, size_t len)
{
    struct http_chunk_out out;
    ssize_t n = http_chunked_decode(&x->dec, p, len, &out);
    if (n < 0) {
        if (x->mode == BODY_DISCARD) {
            x->c->close = true;
            x->c->unread = true;
            return -1;
        }
        http_body_fail(x, -EPROTO); /* bad framing, an overflow, a line too long */
        return -1;
    }
    if (n == 0 && !out.done)
        return 0;
    /* out.data points into p: deliver before consuming moves the bytes. */
    int r = deliver(x, out.data, out.len, out.done);
    http_conn_consume(x->c, (size_t)n);
    return r;
}

int http_body_step(struct http_exchange *x)
{
    size_t len;
    if (x->body_done || x->framing == BODY_NONE) {
        if (!x->body_done)
            deliver(x, "", 0, true);
        return 1;
    }
    const char *p = http_conn_input(x->c, &len);
    if (len == 0)
        return 0;
    if (x->framing == BODY_LENGTH)
        return step_length(x, p, len);
    return step_chunked(x, p, len);
}

void http_body_discard(struct http_exchange *x)
{
    struct http_conn *c = x->c;
    if (http_body_settled(x))
        return;
    if (not_worth_reading(x)) {
        c->close = true;
        c->unread = true;
        return;
    }
    x->mode = BODY_DISCARD;
}
