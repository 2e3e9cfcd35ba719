/* dispatch.c — dispatch mode: the master accepts and hands each connection to the least busy ready worker (SCM_RIGHTS). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool.h"

/*
 * The master accepts in batches and sends each connection, with its peer
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

#define DISPATCH_BATCH 64     /* accepts per wake-up */
#define DISPATCH_QUEUE 1024   /* accepted, not yet sent */
#define DISPATCH_RETRY_MS 5   /* while every worker is full */

struct pf__pending {
    int fd;
    socklen_t len;
    struct sockaddr_storage peer;
};

static pf_io_fn on_accept;

/* Poll (or stop polling) every socket the master accepts on. */
static void listen_on(pf_pool *p, bool on)
{
    if (p->dispatch_listening == on)
        return;
    for (int i = 0; i < p->ndfds; i++) {
        if (on)
            pf_loop_add(p->loop, p->dfds[i], EPOLLIN, on_accept, p);
        else
            pf_loop_del(p->loop, p->dfds[i]);
    }
    p->dispatch_listening = on;
}

/* Add fd to, or take it off, the sockets the master accepts on: the
 * listeners in dispatch mode, a retired row in reuseport mode. */
void pf__dispatch_watch(pf_pool *p, int fd, bool on)
{
    int i = 0;
    while (i < p->ndfds && p->dfds[i] != fd)
        i++;
    if (on && i == p->ndfds) {
        if (p->ndfds == p->capdfds) {
            int cap = p->capdfds ? 2 * p->capdfds : 16;
            int *n = realloc(p->dfds, sizeof *n * (size_t)cap);
            if (!n)
                return;
            p->dfds = n;
            p->capdfds = cap;
        }
        p->dfds[p->ndfds++] = fd;
        if (p->dispatch_listening)
            pf_loop_add(p->loop, fd, EPOLLIN, on_accept, p);
    } else if (!on && i < p->ndfds) {
        if (p->dispatch_listening)
            pf_loop_del(p->loop, fd);
        p->dfds[i] = p->dfds[--p->ndfds];
    }
}

/* Open connections plus those sent and not taken yet. */
static uint64_t load_of(const struct pf__slot *s)
{
    const struct pf__score *sc = pf__score_of(s);
    uint64_t taken = PF__GET(sc->accepted);
    uint64_t inflight = s->dispatched > taken ? s->dispatched - taken : 0;
    return PF__GET(sc->active) + inflight;
}

static struct pf__slot *pick(pf_pool *p)
{
    struct pf__slot *best = NULL;
    uint64_t best_load = UINT64_MAX;
    int n = p->slot_hi + 1;
    for (int k = 0; k < n; k++) {
        struct pf__slot *s = &p->slots[(p->rr + k) % n];
        if (!s->pool || !s->pid || !s->ready || s->retiring)
            continue;
        uint64_t load = load_of(s);
        if (load < (uint64_t)p->cfg.max_conns && load < best_load) {
            best = s;
            best_load = load;
        }
    }
    if (best)
        p->rr = (int)(best - p->slots + 1) % n;
    return best;
}

/* Send the oldest waiting connection: 0 sent, -EAGAIN no worker can take it. */
static int send_first(pf_pool *p)
{
    struct pf__pending *c = &p->pending[p->pending_head];
    for (int tries = 0; tries < 4; tries++) {
        struct pf__slot *s = pick(p);
        if (!s)
            return -EAGAIN;
        char none = 0;
        int err = c->len ? pf_fd_send(s->ctl, &c->fd, 1, &c->peer, c->len)
                         : pf_fd_send(s->ctl, &c->fd, 1, &none, 1);
        if (err == 0) {
            s->dispatched++;
            close(c->fd);
            p->pending_head = (p->pending_head + 1) % DISPATCH_QUEUE;
            p->npending--;
            return 0;
        }
        /* Its socket is full, or it has just died: another one may do. */
    }
    return -EAGAIN;
}

static void flush(pf_pool *p)
{
    while (p->npending > 0 && send_first(p) == 0)
        ;
    bool open = p->npending == 0 && p->phase == PF__RUNNING;
    listen_on(p, open);
    if (!open && p->phase == PF__RUNNING)
        pf_timer_start(p->loop, &p->dispatch_retry, DISPATCH_RETRY_MS);
}

static void on_retry(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    flush(ud);
}

static bool push(pf_pool *p, int fd, const struct sockaddr_storage *peer, socklen_t len)
{
    if (p->npending == DISPATCH_QUEUE)
        return false;
    struct pf__pending *c = &p->pending[(p->pending_head + p->npending) % DISPATCH_QUEUE];
    c->fd = fd;
    c->len = len <= sizeof c->peer ? len : 0;
    if (c->len)
        memcpy(&c->peer, peer, c->len);
    p->npending++;
    return true;
}

static void on_accept(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    pf_pool *p = ud;
    for (int i = 0; i < DISPATCH_BATCH && p->npending < DISPATCH_QUEUE; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int c = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pf_log(PF_LOG_WARN, "accept4: %s", strerror(errno));
            break;
        }
        push(p, c, &peer, len);
    }
    flush(p);
}

/* After a worker's death: what it had not taken goes to another one. */
void pf__dispatch_recover(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    int fds[PF_FD_MAX_PASS], n, got = 0;
    struct sockaddr_storage peer;
    ssize_t len;
    if (s->ctl_peer < 0)
        return;
    while ((len = pf_fd_recv(s->ctl_peer, fds, PF_FD_MAX_PASS, &n, &peer, sizeof peer)) > 0)
        for (int i = 0; i < n; i++, got++)
            if (!push(p, fds[i], &peer, len > 1 ? (socklen_t)len : 0))
                close(fds[i]); /* the queue is full: cannot happen with the cap */
    close(s->ctl_peer);
    s->ctl_peer = -1;
    if (got) {
        pf_log(PF_LOG_INFO, "dispatching again %d connection%s worker %d had not taken", got,
               got == 1 ? "" : "s", s->index);
        flush(p);
    }
}

int pf__dispatch_start(pf_pool *p)
{
    p->pending = calloc(DISPATCH_QUEUE, sizeof *p->pending);
    if (!p->pending)
        return -ENOMEM;
    pf_timer_init(&p->dispatch_retry, on_retry, p);
    for (int i = 0; p->cfg.mode == PF_MODE_DISPATCH && i < p->nls; i++)
        pf__dispatch_watch(p, p->lfd[i], true);
    listen_on(p, true);
    return 0;
}

/* Stopping: no more accepting; what waits here is closed (like a queue). */
void pf__dispatch_stop(pf_pool *p)
{
    if (!p->pending)
        return;
    listen_on(p, false);
    pf_timer_stop(p->loop, &p->dispatch_retry);
    while (p->npending > 0) {
        close(p->pending[p->pending_head].fd);
        p->pending_head = (p->pending_head + 1) % DISPATCH_QUEUE;
        p->npending--;
    }
}

void pf__dispatch_free(pf_pool *p)
{
    pf__dispatch_stop(p);
    free(p->pending);
    p->pending = NULL;
    free(p->dfds);
    p->dfds = NULL;
    p->ndfds = p->capdfds = 0;
}
