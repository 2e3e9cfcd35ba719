/* exchange.c — one request and its response: made, reused, moved, aborted; what a handler may ask of it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http/core.h"

#define SPARE_MAX 16 /* ended exchanges a worker keeps for reuse */

/* An exchange holds room for max_headers fields, a few KiB: made once and
 * reused, so serving a request allocates nothing, and a connection at rest
 * holds none. */
struct http_exchange *http_ex_new(struct http_conn *c)
{
    struct http_server *hs = c->hs;
    struct http_exchange *x = hs->spare;
    size_t nh = hs->cfg->limits.max_headers;
    if (x) {
        hs->spare = x->next_spare;
        hs->nspare--;
    } else {
        x = malloc(sizeof *x + nh * sizeof x->hdrs[0]);
        if (!x)
            return NULL;
    }
    memset(x, 0, sizeof *x);
    x->c = c;
    x->length = HTTP_LENGTH_UNKNOWN;
    http_buf_init(&x->whole, hs->cfg->max_body);
    return x;
}

void http_ex_recycle(struct http_server *hs, struct http_exchange *x)
{
    http_buf_free(&x->whole);
    if (hs->nspare >= SPARE_MAX) {
        free(x);
        return;
    }
    x->next_spare = hs->spare;
    hs->spare = x;
    hs->nspare++;
}

/* The handler learns that the exchange failed, once: through the body
 * callback if it waits for the body, else through its abort callback. */
void http_ex_abort(struct http_exchange *x)
{
    if (x->aborted || x->invalid || x->stage == RES_ENDED)
        return;
    x->aborted = true;
    bool reading = (x->mode == BODY_STREAM || x->mode == BODY_WHOLE) && !x->body_done;
    if (reading && x->body_cb)
        x->body_cb(x, NULL, 0, -ECONNRESET, x->body_ud);
    else if (x->on_abort)
        x->on_abort(x, x->abort_ud);
}

static void move(const char **p, const char *from, size_t len, const char *to)
{
    if (*p && *p >= from && *p <= from + len)
        *p = to + (*p - from);
}

void http_ex_rebase(struct http_exchange *x, const char *from, size_t len, const char *to)
{
    struct http_request *r = &x->req;
    move(&r->method_name, from, len, to);
    move(&r->target, from, len, to);
    move(&r->path, from, len, to);
    move(&r->host, from, len, to);
    for (size_t i = 0; i < r->nheaders; i++) {
        move(&r->headers[i].name, from, len, to);
        move(&r->headers[i].value, from, len, to);
    }
}

const struct http_request *http_ex_request(const struct http_exchange *x)
{
    return &x->req;
}

const struct sockaddr *http_ex_peer(const struct http_exchange *x, socklen_t *len)
{
    *len = x->c->peer_len;
    return &x->c->peer.sa;
}

struct http_server *http_ex_server(const struct http_exchange *x)
{
    return x->c->hs;
}

bool http_ex_secure(const struct http_exchange *x)
{
    return x->c->tp.ops->secure;
}

size_t http_ex_client_dn(const struct http_exchange *x, char *buf, size_t size)
{
    const struct http_tp_ops *ops = x->c->tp.ops;
    return ops->client_dn ? ops->client_dn(&x->c->tp, buf, size) : 0;
}

void http_ex_on_abort(struct http_exchange *x, http_ex_fn *fn, void *ud)
{
    x->on_abort = fn;
    x->abort_ud = ud;
}
