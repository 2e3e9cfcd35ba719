/* accept.c — a worker taking connections, from the listeners (exclusive wake-ups, taking turns, pausing, holding back over its share) or from the master, and handing them to the service. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/worker/worker.h"

#define ACCEPT_PAUSE_MS 100     /* after EMFILE and friends */
#define ACCEPT_WARN_EVERY_MS 10000
#define BALANCE_STUCK_MS 5 /* holding back: how long the others get to take a connection */

static pf_io_fn on_listener, on_arrival;

/* ---- polling the listeners ---- */

static void listeners_del(pf_worker *w)
{
    if (!w->listening && !w->watching)
        return;
    for (int i = 0; i < w->nl; i++)
        pf_loop_del(w->loop, w->lfd[i]);
    w->listening = w->watching = false;
}

/* Poll the listeners to accept (EPOLLEXCLUSIVE, level-triggered) or, when
 * holding back, to watch them (EPOLLET; see hold_back). EPOLLEXCLUSIVE
 * cannot be changed with EPOLL_CTL_MOD, so a change deletes and re-adds. */
static void listeners_poll(pf_worker *w, bool accept)
{
    listeners_del(w);
    for (int i = 0; i < w->nl; i++) {
        int err = pf_loop_add(w->loop, w->lfd[i], EPOLLIN | (accept ? EPOLLEXCLUSIVE : EPOLLET),
                              accept ? on_listener : on_arrival, w);
        if (err < 0)
            pf_log(PF_LOG_ERROR, "epoll_ctl(add listener): %s", strerror(-err));
    }
    w->listening = accept;
    w->watching = !accept;
    PF__PUT(w->score->accepting, accept ? PF__ACCEPTING : PF__ACCEPT_HELD);
}

/* EPOLLEXCLUSIVE: of all the workers waiting on a listener, the kernel wakes
 * one (or a few) per connection, not all of them: no thundering herd. */
static void listeners_on(pf_worker *w)
{
    if (!w->listening && !w->draining)
        listeners_poll(w, true);
}

static void listeners_off(pf_worker *w)
{
    listeners_del(w);
    PF__PUT(w->score->accepting, PF__ACCEPT_OFF);
}

/* ---- a new connection ---- */

static void add_conn(pf_worker *w)
{
    w->active++;
    PF__ADD(w->score->accepted, 1);
    pf__worker_set_state(w);
}

static void opened(pf_worker *w, int fd, const struct sockaddr_storage *peer, socklen_t len,
                   bool proxy)
{
    add_conn(w);
    if (proxy)
        pf__proxy_begin(w, fd, peer, len);
    else
        w->svc->on_conn(w, fd, (const struct sockaddr *)peer, len, w->svc->ud);
}

/* ---- accepting ---- */

static void on_resume(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    pf_worker *w = ud;
    w->paused = false;
    if (w->active < w->resume_below)
        listeners_on(w);
}

/* Out of descriptors or memory: the connection stays queued in the kernel.
 * Spinning on a level-triggered listener would burn the CPU, so stop polling
 * it for a moment; in shared mode other workers take the queue meanwhile. */
static void accept_pause(pf_worker *w, int err)
{
    uint64_t now = pf_loop_now(w->loop);
    /* Without the timer that ends it, a pause would last for ever: the
     * worker goes on accepting instead, spinning rather than deaf. */
    int terr = pf_timer_start(w->loop, &w->resume, ACCEPT_PAUSE_MS);
    if (!w->warned_at || now - w->warned_at >= ACCEPT_WARN_EVERY_MS) {
        if (terr < 0)
            pf_log(PF_LOG_WARN, "accept4: %s; cannot pause accepts (timer: %s)",
                   strerror(err), strerror(-terr));
        else
            pf_log(PF_LOG_WARN, "accept4: %s; pausing accepts for %d ms", strerror(err),
                   ACCEPT_PAUSE_MS);
        w->warned_at = now;
    }
    if (terr < 0)
        return;
    listeners_off(w);
    w->paused = true;
}

static void accept_failed(pf_worker *w, int err)
{
    switch (err) {
    case EAGAIN:
    case EINTR:
    /* accept(2): errors of the connection itself, already gone. */
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        accept_pause(w, err);
        return;
    default:
        pf_log(PF_LOG_ERROR, "accept4: %s; this worker stops accepting",
               strerror(err));
        listeners_off(w);
    }
}

/* Accept one connection from listener fd and hand it to the service:
 * 0, or accept4's error as a negative errno. */
static int accept_one(pf_worker *w, int fd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int c = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return -errno;
    int i = 0;
    while (i < w->nl && w->lfd[i] != fd)
        i++;
    opened(w, c, &peer, len, i < w->nl && w->lproxy[i]);
    return 0;
}

/* EPOLLEXCLUSIVE wakes the first idle waiter in the listener's wait queue,
 * so one worker would take a whole burst of connections while the others
 * sleep: fine for short requests, bad for long-lived ones (keep-alive, a
 * download). After a batch, a worker that took something goes to the back
 * of the queue (delete and add again): idle workers take turns. That is two
 * epoll_ctl calls, so it is done after a batch of several connections (a
 * burst), when this worker holds several connections (long-lived ones pile
 * up), and otherwise at most once per millisecond: short connections are
 * served and closed inside the accept callback, so a steady stream of them
 * costs little, and busy workers are skipped by the kernel anyway. */
static void requeue(pf_worker *w, int fd, unsigned got)
{
    uint64_t now = pf_loop_now(w->loop);
    bool holding = w->active >= 2; /* long-lived connections pile up here */
    if (w->cfg->workers < 2 || !w->listening || (got < 2 && !holding && now == w->requeued_at))
        return;
    w->requeued_at = now;
    pf_loop_del(w->loop, fd);
    int err = pf_loop_add(w->loop, fd, EPOLLIN | EPOLLEXCLUSIVE, on_listener, w);
    if (err < 0)
        pf_log(PF_LOG_ERROR, "epoll_ctl(re-add listener): %s", strerror(-err));
}

/* ---- balance (shared mode; balance.c) ---- */

static bool over_share(pf_worker *w)
{
    return w->balancing && pf__balance_over(&w->balance, w->active, pf_loop_now(w->loop));
}

/* Over its share, a worker leaves new connections to the others: it stops
 * waiting on the listeners exclusively, so the kernel wakes one of them,
 * and watches them instead (edge-triggered, not exclusive: a wake-up for
 * each arrival, and no event for what stays queued), to take its turn
 * again as soon as it is back within its share. It keeps what it holds. */
static void hold_back(pf_worker *w)
{
    if (!w->watching && !w->draining)
        listeners_poll(w, false);
}

/* Whether a connection is waiting on a listener. */
static bool queued(const pf_worker *w)
{
    struct pollfd fds[PF_MAX_LISTENERS];
    for (int i = 0; i < w->nl; i++)
        fds[i] = (struct pollfd){.fd = w->lfd[i], .events = POLLIN};
    return w->nl && poll(fds, (nfds_t)w->nl, 0) > 0;
}

/* Take what is queued, as on_listener would (a batch per listener). */
static void take_waiting(pf_worker *w)
{
    uint64_t cap = (uint64_t)w->cfg->max_conns;
    for (int i = 0; i < w->nl; i++)
        for (unsigned n = 0; n < w->cfg->accept_batch && w->active < cap; n++) {
            int err = accept_one(w, w->lfd[i]);
            if (err < 0) {
                accept_failed(w, -err);
                break;
            }
        }
}

/* Back within its share: accept again (the level-triggered listener reports
 * at once a connection still queued). Else give the others BALANCE_STUCK_MS
 * to take what arrived. The board is read afresh at each arrival: in a burst
 * the others' counts change within the millisecond. */
static void on_arrival(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)fd, (void)events;
    pf_worker *w = ud;
    pf__balance_forget(&w->balance);
    if (!over_share(w)) {
        if (w->active < w->resume_below)
            listeners_on(w);
    } else if (!pf_timer_active(&w->stuck)) {
        pf__balance_others_moved(&w->balance, pf_loop_now(loop));
        if (pf_timer_start(loop, &w->stuck, BALANCE_STUCK_MS) < 0)
            listeners_on(w); /* nothing would end the holding back */
    }
}

/* BALANCE_STUCK_MS after an arrival while over its share: back within it,
 * the worker accepts again (a burst may have ended with the others holding
 * back too, a connection still queued). Else, a connection still queued
 * while the others have accepted nothing since: they may be unable to
 * (stopped, stuck in a slow handler, starved of CPU), so this worker takes
 * it. None is stranded; one waits at most about BALANCE_STUCK_MS more. */
static void on_stuck(pf_loop *loop, pf_timer *t, void *ud)
{
    pf_worker *w = ud;
    if (!w->watching)
        return;
    bool moved = pf__balance_others_moved(&w->balance, pf_loop_now(loop));
    if (!over_share(w)) {
        if (w->active < w->resume_below)
            listeners_on(w);
        return;
    }
    if (!queued(w))
        return;
    if (!moved)
        take_waiting(w);
    if (w->watching && pf_timer_start(loop, t, BALANCE_STUCK_MS) < 0)
        listeners_on(w); /* nothing would end the holding back */
}

static void on_listener(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    pf_worker *w = ud;
    unsigned got = 0;
    PF__ADD(w->score->wakeups, 1);
    for (; got < w->cfg->accept_batch && w->listening; got++) {
        if (w->active >= (uint64_t)w->cfg->max_conns) {
            listeners_off(w);
            return;
        }
        int err = accept_one(w, fd);
        if (err < 0) {
            accept_failed(w, -err);
            break;
        }
        if (over_share(w)) {
            hold_back(w);
            return;
        }
    }
    if (got)
        requeue(w, fd, got);
}

/* ---- services with their own main loop (prefork.h) ---- */

int pf_worker_accept(pf_worker *w, int fd, struct sockaddr_storage *peer, socklen_t *len)
{
    struct sockaddr_storage ss;
    socklen_t n = sizeof ss;
    int c, got;
    if (fd == w->ctl) {
        /* The master sends an own-main worker one connection a message. */
        struct pf__peer_rec rec;
        ssize_t r = pf_fd_recv(fd, &c, 1, &got, &rec, sizeof rec);
        if (r <= 0 || got != 1)
            return r < 0 ? (int)r : r == 0 ? -EPIPE : -EAGAIN;
        n = (size_t)r >= sizeof rec ? rec.len : 0;
        if (n)
            memcpy(&ss, rec.addr, n);
    } else if ((c = accept4(fd, (struct sockaddr *)&ss, &n, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    add_conn(w);
    if (peer)
        memcpy(peer, &ss, n);
    if (len)
        *len = n;
    return c;
}

/* ---- the library loop's entry points (worker.h) ---- */

void pf__accept_init(pf_worker *w)
{
    pf_timer_init(&w->resume, on_resume, w);
    pf_timer_init(&w->stuck, on_stuck, w);
}

void pf__accept_start(pf_worker *w)
{
    listeners_on(w);
}

void pf__accept_closed(pf_worker *w)
{
    if (w->paused || w->listening || w->draining || w->active >= w->resume_below)
        return;
    if (over_share(w))
        hold_back(w);
    else
        listeners_on(w);
}

int pf__accept_passed(pf_worker *w, int fd)
{
    for (;;) {
        struct pf__peer_rec recs[PF__PASS_MAX];
        int fds[PF__PASS_MAX], n;
        ssize_t len = pf_fd_recv(fd, fds, PF__PASS_MAX, &n, recs, sizeof recs);
        if (len == -EAGAIN || len == -EINTR)
            return 0;
        if (len <= 0 && len != -EMSGSIZE)
            return -1;
        for (int i = 0; i < n; i++) {
            struct sockaddr_storage peer;
            socklen_t plen = 0;
            if ((size_t)len >= sizeof recs[0] * (size_t)(i + 1) && recs[i].len) {
                plen = recs[i].len;
                memcpy(&peer, recs[i].addr, plen);
            }
            bool proxy = (size_t)len >= sizeof recs[0] * (size_t)(i + 1) && recs[i].proxy;
            opened(w, fds[i], &peer, plen, proxy);
        }
    }
}

/* Connections already in the accept queue when the pool stops would be
 * reset when the last copy of the listener closes: take them first (up to
 * the cap), and serve them like the others. Then close this worker's
 * copies of the listeners: the master keeps its own, so in shared mode
 * nothing queued is lost. */
void pf__accept_drain(pf_worker *w)
{
    listeners_off(w);
    for (int i = 0; i < w->nl && !w->paused; i++)
        while (w->active < (uint64_t)w->cfg->max_conns && accept_one(w, w->lfd[i]) == 0)
            ;
    for (int i = 0; i < w->nl; i++)
        close(w->lfd[i]);
    w->nl = 0;
}
