/* handoff.c — the master's hand-off: it accepts on some sockets (every listener in dispatch mode, a retired reuseport row) and passes each connection to the least busy ready worker (SCM_RIGHTS). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/master/pool.h"

/*
 * Dispatch mode hands off every connection; reuseport mode those the
 * kernel still hashes to the row of a worker index the pool no longer has
 * (reuseport.c). The master accepts in batches and sends each connection, with its peer
 * address as the message's bytes, over the chosen worker's control
 * socketpair. The choice: the ready worker of the serving generation with
 * the lowest load (open connections plus connections sent but not taken
 * yet), round-robin among equals; a worker at --max-conns is skipped. When
 * no worker can take more, the master stops polling the listeners and the
 * kernel's queue holds the rest.
 *
 * Nothing sent is lost when a worker dies before taking it: the master
 * keeps a duplicate of the worker's end of the socketpair, so what the
 * worker had not read stays queued there; after the death the master
 * reads it back and dispatches it again.
 */

#define HANDOFF_BATCH 64     /* accepts per wake-up */
#define HANDOFF_QUEUE 1024   /* accepted, not yet sent */
#define HANDOFF_RETRY_MS 5   /* while every worker is full */

struct pf__pending {
    int fd;
    socklen_t len;
    struct sockaddr_storage peer;
    bool proxy; /* its listener requires the PROXY protocol */
};

static pf_io_fn on_accept;

/* Poll (or stop polling) every socket the master accepts on. */
static void listen_on(pf_pool *p, bool on)
{
    struct pf__handoff *h = &p->handoff;
    if (h->listening == on)
        return;
    for (int i = 0; i < h->nfds; i++) {
        if (on)
            pf_loop_add(p->loop, h->fds[i], EPOLLIN, on_accept, p);
        else
            pf_loop_del(p->loop, h->fds[i]);
    }
    h->listening = on;
}

/* Add fd to, or take it off, the sockets the master accepts on: the
 * listeners in dispatch mode, a retired row in reuseport mode. */
void pf__handoff_watch(pf_pool *p, int fd, bool on)
{
    struct pf__handoff *h = &p->handoff;
    int i = 0;
    while (i < h->nfds && h->fds[i] != fd)
        i++;
    if (on && i == h->nfds) {
        if (h->nfds == h->capfds) {
            int cap = h->capfds ? 2 * h->capfds : 16;
            int *n = realloc(h->fds, sizeof *n * (size_t)cap);
            if (!n)
                return;
            h->fds = n;
            h->capfds = cap;
        }
        h->fds[h->nfds++] = fd;
        if (h->listening)
            pf_loop_add(p->loop, fd, EPOLLIN, on_accept, p);
    } else if (!on && i < h->nfds) {
        if (h->listening)
            pf_loop_del(p->loop, fd);
        h->fds[i] = h->fds[--h->nfds];
    }
}

/* Open connections plus those sent and not taken yet. */
static uint64_t load_of(const struct pf__slot *s)
{
    const struct pf__score *sc = pf__score_of(s);
    uint64_t taken = PF__GET(sc->accepted);
    uint64_t inflight = s->handed > taken ? s->handed - taken : 0;
    return PF__GET(sc->active) + inflight;
}

/* The least loaded ready worker, and in *room how many more it may take;
 * *ready counts the workers that could take any. */
static struct pf__slot *pick(pf_pool *p, uint64_t *room, int *ready)
{
    struct pf__handoff *h = &p->handoff;
    struct pf__slot *best = NULL;
    uint64_t best_load = UINT64_MAX;
    int n = p->slot_hi + 1;
    *ready = 0;
    for (int k = 0; k < n; k++) {
        struct pf__slot *s = &p->slots[(h->rr + k) % n];
        if (!s->pool || !s->pid || !s->ready || s->retiring)
            continue;
        uint64_t load = load_of(s);
        if (load >= (uint64_t)p->cfg.max_conns)
            continue;
        ++*ready;
        if (load < best_load) {
            best = s;
            best_load = load;
        }
    }
    if (best) {
        h->rr = (int)(best - p->slots + 1) % n;
        *room = (uint64_t)p->cfg.max_conns - best_load;
    }
    return best;
}

/* How many waiting connections go in one message: several when many wait
 * (one sendmsg and one recvmsg instead of many), but no more than this
 * worker's fair share of them, and one at a time to a worker with a main
 * of its own, which takes one connection per poll. */
static int batch_size(const pf_pool *p, uint64_t room, int ready)
{
    const struct pf__handoff *h = &p->handoff;
    int k = (h->npending + ready - 1) / ready;
    if (p->svc.main || k < 1)
        k = 1;
    if (k > PF__PASS_MAX)
        k = PF__PASS_MAX;
    return (uint64_t)k > room ? (int)room : k;
}

static void fill_record(struct pf__peer_rec *r, const struct pf__pending *c)
{
    r->len = c->len <= sizeof r->addr ? (uint16_t)c->len : 0;
    if (r->len)
        memcpy(r->addr, &c->peer, r->len);
    r->proxy = c->proxy;
}

/* Send the oldest waiting connections: 0 sent, -EAGAIN no worker can
 * take them. */
static int send_first(pf_pool *p)
{
    struct pf__handoff *h = &p->handoff;
    for (int tries = 0; tries < 4; tries++) {
        uint64_t room;
        int ready, fds[PF__PASS_MAX];
        struct pf__peer_rec recs[PF__PASS_MAX];
        struct pf__slot *s = pick(p, &room, &ready);
        if (!s)
            return -EAGAIN;
        int k = batch_size(p, room, ready);
        for (int i = 0; i < k; i++) {
            const struct pf__pending *c = &h->pending[(h->head + i) % HANDOFF_QUEUE];
            fds[i] = c->fd;
            fill_record(&recs[i], c);
        }
        if (pf_fd_send(s->ctl, fds, k, recs, sizeof recs[0] * (size_t)k) == 0) {
            s->handed += (uint64_t)k;
            for (int i = 0; i < k; i++)
                close(fds[i]);
            h->head = (h->head + k) % HANDOFF_QUEUE;
            h->npending -= k;
            return 0;
        }
        /* Its socket is full, or it has just died: another one may do. */
    }
    return -EAGAIN;
}

static void flush(pf_pool *p)
{
    struct pf__handoff *h = &p->handoff;
    while (h->npending > 0 && send_first(p) == 0)
        ;
    bool open = h->npending == 0 && p->phase == PF__RUNNING;
    /* Without the retry timer, the next arrival is what tries again. */
    if (!open && p->phase == PF__RUNNING &&
        pf_timer_start(p->loop, &h->retry, HANDOFF_RETRY_MS) < 0)
        open = true;
    listen_on(p, open);
}

static void on_retry(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    flush(ud);
}

static bool push(pf_pool *p, int fd, const struct sockaddr_storage *peer, socklen_t len,
                 bool proxy)
{
    struct pf__handoff *h = &p->handoff;
    if (h->npending == HANDOFF_QUEUE)
        return false;
    struct pf__pending *c = &h->pending[(h->head + h->npending) % HANDOFF_QUEUE];
    c->fd = fd;
    c->len = len <= sizeof c->peer ? len : 0;
    if (c->len)
        memcpy(&c->peer, peer, c->len);
    c->proxy = proxy;
    h->npending++;
    return true;
}

static void on_accept(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    pf_pool *p = ud;
    struct pf__handoff *h = &p->handoff;
    bool proxy = pf__listener_flags_of(p, fd) & PF_ADDR_PROXY;
    for (int i = 0; i < HANDOFF_BATCH && h->npending < HANDOFF_QUEUE; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int c = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pf_log(PF_LOG_WARN, "accept4: %s", strerror(errno));
            break;
        }
        push(p, c, &peer, len, proxy);
    }
    flush(p);
}

/* After a worker's death: what it had not taken goes to another one. */
void pf__handoff_recover(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    int fds[PF__PASS_MAX], n, got = 0;
    struct pf__peer_rec recs[PF__PASS_MAX];
    ssize_t len;
    if (s->ctl_peer < 0)
        return;
    while ((len = pf_fd_recv(s->ctl_peer, fds, PF__PASS_MAX, &n, recs, sizeof recs)) > 0)
        for (int i = 0; i < n; i++, got++) {
            struct sockaddr_storage peer;
            socklen_t plen = 0;
            if ((size_t)len >= sizeof recs[0] * (size_t)(i + 1) && recs[i].len) {
                plen = recs[i].len;
                memcpy(&peer, recs[i].addr, plen);
            }
            bool proxy = (size_t)len >= sizeof recs[0] * (size_t)(i + 1) && recs[i].proxy;
            if (!push(p, fds[i], &peer, plen, proxy))
                close(fds[i]); /* the queue is full: cannot happen with the cap */
        }
    close(s->ctl_peer);
    s->ctl_peer = -1;
    if (got) {
        pf_log(PF_LOG_INFO, "dispatching again %d connection%s worker %d had not taken", got,
               got == 1 ? "" : "s", s->index);
        flush(p);
    }
}

int pf__handoff_start(pf_pool *p)
{
    struct pf__handoff *h = &p->handoff;
    h->pending = calloc(HANDOFF_QUEUE, sizeof *h->pending);
    if (!h->pending)
        return -ENOMEM;
    pf_timer_init(&h->retry, on_retry, p);
    for (int i = 0; p->cfg.mode == PF_MODE_DISPATCH && i < p->nls; i++)
        pf__handoff_watch(p, p->lfd[i], true);
    listen_on(p, true);
    return 0;
}

/* Stopping: no more accepting; what waits here is closed (like a queue). */
void pf__handoff_stop(pf_pool *p)
{
    struct pf__handoff *h = &p->handoff;
    if (!h->pending)
        return;
    listen_on(p, false);
    pf_timer_stop(p->loop, &h->retry);
    while (h->npending > 0) {
        close(h->pending[h->head].fd);
        h->head = (h->head + 1) % HANDOFF_QUEUE;
        h->npending--;
    }
}

void pf__handoff_free(pf_pool *p)
{
    struct pf__handoff *h = &p->handoff;
    pf__handoff_stop(p);
    free(h->pending);
    h->pending = NULL;
    free(h->fds);
    h->fds = NULL;
    h->nfds = h->capfds = 0;
}
