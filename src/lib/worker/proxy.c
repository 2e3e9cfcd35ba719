/* proxy.c — a connection from a listener that requires the PROXY protocol: the balancer's header read first, and the service given the client's address. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/worker/worker.h"

/*
 * The header is taken only from trusted sources (proxy-allow-from): a
 * connection from anywhere else is closed at once, since its header would
 * let any client claim any address. The header is read with MSG_PEEK and
 * consumed exactly (recv of its length once pf_proxy_parse knows it), so
 * the bytes after it stay in the socket for the service: HTTP, or a TLS
 * handshake. A header still incomplete after proxy_timeout_ms, malformed,
 * or from a listener that expects one but gets none (the specification
 * forbids guessing) closes the connection. Meanwhile the connection counts
 * as the worker's (active), and a draining worker waits for it as for any.
 */

struct pending {
    pf_worker *w;
    int fd;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    pf_timer timer;
    char buf[PF_PROXY_MAX];
};

static void fail(struct pending *p, const char *why)
{
    char addr[64] = "?";
    pf_addr_format((const struct sockaddr *)&p->peer, p->peerlen, addr, sizeof addr);
    pf_log(PF_LOG_DEBUG, "PROXY header from %s: %s; connection closed", addr, why);
    pf_timer_stop(p->w->loop, &p->timer);
    pf_worker_close_conn(p->w, p->fd); /* unwatches and closes */
    free(p);
}

static void done(struct pending *p, const struct pf_proxy *h)
{
    pf_worker *w = p->w;
    int fd = p->fd;
    pf_timer_stop(w->loop, &p->timer);
    pf_loop_del(w->loop, fd); /* the service watches it its own way */
    const struct sockaddr_storage *peer = h->local ? &p->peer : &h->src;
    socklen_t len = h->local ? p->peerlen : h->srclen;
    struct sockaddr_storage copy = *peer;
    free(p);
    w->svc->on_conn(w, fd, (const struct sockaddr *)&copy, len, w->svc->ud);
}

/* Peek at what has arrived; once the header is whole, consume exactly it. */
static void try_header(struct pending *p)
{
    ssize_t n = recv(p->fd, p->buf, sizeof p->buf, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        fail(p, n == 0 ? "closed before its end" : strerror(errno));
        return;
    }
    struct pf_proxy h;
    int r = pf_proxy_parse(p->buf, (size_t)n, &h);
    if (r == 0 && (size_t)n == sizeof p->buf)
        r = -EMSGSIZE;
    if (r == 0)
        return; /* more to come: the next edge */
    if (r < 0) {
        fail(p, r == -EMSGSIZE ? "longer than the limit" : "not a valid PROXY header");
        return;
    }
    ssize_t got = recv(p->fd, p->buf, (size_t)r, 0);
    if (got != r) {
        fail(p, "could not consume it");
        return;
    }
    done(p, &h);
}

static void on_io(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)fd, (void)events;
    try_header(ud);
}

static void on_timeout(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    fail(ud, "incomplete at the timeout");
}

void pf__proxy_begin(pf_worker *w, int fd, const struct sockaddr_storage *peer,
                     socklen_t len)
{
    const struct pf_config *cfg = w->cfg;
    if (!pf_cidr_match_any(cfg->proxy_allow, cfg->nproxy_allow, (const struct sockaddr *)peer,
                           len)) {
        char addr[64] = "?";
        pf_addr_format((const struct sockaddr *)peer, len, addr, sizeof addr);
        pf_log(PF_LOG_WARN, "a connection from %s, which proxy-allow-from does not trust, to a "
               "PROXY listener: closed", addr);
        pf_worker_close_conn(w, fd);
        return;
    }
    struct pending *p = malloc(sizeof *p);
    if (!p) {
        pf_worker_close_conn(w, fd);
        return;
    }
    p->w = w;
    p->fd = fd;
    p->peer = *peer;
    p->peerlen = len;
    pf_timer_init(&p->timer, on_timeout, p);
    if (pf_loop_add(w->loop, fd, EPOLLIN | EPOLLET | EPOLLRDHUP, on_io, p) < 0 ||
        pf_timer_start(w->loop, &p->timer, cfg->proxy_timeout_ms) < 0) {
        fail(p, "out of memory");
        return;
    }
    try_header(p); /* with TCP_DEFER_ACCEPT it is usually there already */
}
