/* worker.c — a worker process: its event loop, accepting, draining, and the scoreboard slot it writes. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define HEARTBEAT_MS 500
#define ACCEPT_PAUSE_MS 100     /* after EMFILE and friends */
#define ACCEPT_WARN_EVERY_MS 10000
#define BALANCE_STUCK_MS 5 /* holding back: how long the others get to take a connection */

struct pf_worker {
    int index;
    unsigned generation;
    int ctl;   /* to the master; EOF means the master is gone */
    int sigfd; /* TERM: drain */
    int lfd[PF_MAX_LISTENERS];
    int nl;
    bool listening; /* accepting: the listeners polled with EPOLLEXCLUSIVE */
    bool watching;  /* holding back: polled with EPOLLET, to look at each arrival */
    bool paused, draining;
    bool balancing; /* shared mode: hold back when over its share */
    int status;
    uint64_t active;
    uint64_t requests, max_requests; /* recycling: ask once past the limit */
    bool recycle_asked;
    uint64_t resume_below; /* re-arm accepting under this many conns */
    uint64_t warned_at;
    uint64_t requeued_at;  /* last time this worker went to the back of the queue */
    pf_loop *loop;
    struct pf__score *score;
    struct pf__balance balance;
    const struct pf_config *cfg;
    const struct pf_service *svc;
    pf_timer beat, resume, stuck;
};

int pf_worker_index(const pf_worker *w) { return w->index; }
unsigned pf_worker_generation(const pf_worker *w) { return w->generation; }
pf_loop *pf_worker_loop(pf_worker *w) { return w->loop; }
int pf_worker_drain_fd(const pf_worker *w) { return w->sigfd; }
bool pf_worker_draining(const pf_worker *w) { return w->draining; }

int pf_worker_listeners(const pf_worker *w, const int **fds)
{
    if (w->cfg->mode == PF_MODE_DISPATCH) {
        *fds = &w->ctl;
        return 1;
    }
    *fds = w->lfd;
    return w->nl;
}

void pf_worker_heartbeat(pf_worker *w)
{
    PF__PUT(w->score->heartbeat_ms, pf__mono_ms());
}

/* Past --max-requests the worker asks to be replaced, once; it keeps
 * serving until the master has its successor ready and tells it to drain. */
static void ask_recycle(pf_worker *w)
{
    char msg = PF__MSG_RECYCLE;
    w->recycle_asked = true;
    if (send(w->ctl, &msg, 1, MSG_NOSIGNAL) < 0)
        pf_log(PF_LOG_WARN, "send(recycle) to master: %s", strerror(errno));
}

void pf_worker_count(pf_worker *w, uint64_t requests, uint64_t bytes)
{
    if (requests) {
        PF__ADD(w->score->requests, requests);
        w->requests += requests;
        if (w->max_requests && w->requests >= w->max_requests && !w->recycle_asked)
            ask_recycle(w);
    }
    if (bytes)
        PF__ADD(w->score->bytes, bytes);
}

void pf_worker_set_activity(pf_worker *w, const char *what)
{
    pf__score_set_activity(w->score, what);
}

void pf_worker_exit(pf_worker *w, int status)
{
    w->status = status;
    pf_loop_stop(w->loop);
}

void pf_worker_ready(pf_worker *w)
{
    char msg = PF__MSG_READY;
    PF__PUT(w->score->state, w->active ? PF_STATE_BUSY : PF_STATE_IDLE);
    if (send(w->ctl, &msg, 1, MSG_NOSIGNAL) < 0)
        pf_log(PF_LOG_WARN, "send(ready) to master: %s", strerror(errno));
}

static void set_state(pf_worker *w)
{
    enum pf_state st = w->draining ? PF_STATE_DRAINING
                       : w->active ? PF_STATE_BUSY
                                   : PF_STATE_IDLE;
    PF__PUT(w->score->state, st);
    PF__PUT(w->score->active, w->active);
}

/* ---- accepting ---- */

static pf_io_fn on_listener;

static pf_io_fn on_arrival;

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
    if (!w->warned_at || now - w->warned_at >= ACCEPT_WARN_EVERY_MS) {
        pf_log(PF_LOG_WARN, "accept4: %s; pausing accepts for %d ms",
               strerror(err), ACCEPT_PAUSE_MS);
        w->warned_at = now;
    }
    listeners_off(w);
    w->paused = true;
    pf_timer_start(w->loop, &w->resume, ACCEPT_PAUSE_MS);
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

static void conn_opened(pf_worker *w, int fd, const struct sockaddr_storage *peer,
                        socklen_t len)
{
    w->active++;
    PF__ADD(w->score->accepted, 1);
    set_state(w);
    w->svc->on_conn(w, fd, (const struct sockaddr *)peer, len, w->svc->ud);
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
    conn_opened(w, c, &peer, len);
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
    if (pf_loop_add(w->loop, fd, EPOLLIN | EPOLLEXCLUSIVE, on_listener, w) < 0)
        pf_log(PF_LOG_ERROR, "epoll_ctl(re-add listener): %s", strerror(errno));
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
    for (int i = 0; i < w->nl; i++)
        for (unsigned n = 0; n < w->cfg->accept_batch && w->active < (uint64_t)w->cfg->max_conns; n++) {
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
        pf_timer_start(loop, &w->stuck, BALANCE_STUCK_MS);
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
    if (w->watching)
        pf_timer_start(loop, t, BALANCE_STUCK_MS);
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
    w->active++;
    PF__ADD(w->score->accepted, 1);
    set_state(w);
    if (peer)
        memcpy(peer, &ss, n);
    if (len)
        *len = n;
    return c;
}

void pf_worker_close_conn(pf_worker *w, int fd)
{
    /* An accepted socket is this worker's alone (close-on-exec, never
     * passed on), so closing it also takes it out of epoll. */
    pf__loop_forget(w->loop, fd);
    close(fd);
    if (w->active > 0)
        w->active--;
    set_state(w);
    if (w->draining && w->active == 0)
        pf_worker_exit(w, 0);
    else if (!w->paused && !w->listening && w->active < w->resume_below) {
        if (over_share(w))
            hold_back(w);
        else
            listeners_on(w);
    }
}

/* ---- draining and control ---- */

/* Connections already in the accept queue when the pool stops would be
 * reset when the last copy of the listener closes: take them first (up to
 * the cap), and serve them like the others. */
static void take_queued(pf_worker *w)
{
    for (int i = 0; i < w->nl; i++)
        while (w->active < (uint64_t)w->cfg->max_conns && accept_one(w, w->lfd[i]) == 0)
            ;
}

/* Stop accepting at once and close this worker's copies of the listeners:
 * the master keeps its own, so in shared mode nothing queued is lost. */
static void drain(pf_worker *w)
{
    if (w->draining)
        return;
    listeners_off(w);
    if (!w->paused)
        take_queued(w);
    w->draining = true;
    for (int i = 0; i < w->nl; i++)
        close(w->lfd[i]);
    w->nl = 0;
    set_state(w);
    pf_log(PF_LOG_DEBUG, "draining %llu connections",
           (unsigned long long)w->active);
    if (w->svc->on_drain)
        w->svc->on_drain(w, w->svc->ud);
    if (w->active == 0)
        pf_worker_exit(w, 0);
}

/* USR1 from the master: logrotate moved the logs away. */
static void reopen(pf_worker *w)
{
    int err = pf__log_reopen();
    if (err < 0)
        pf_log(PF_LOG_ERROR, "reopening the error log: %s", strerror(-err));
    if (w->svc->on_reopen)
        w->svc->on_reopen(w, w->svc->ud);
}

static bool term_pending(pf_worker *w)
{
    struct signalfd_siginfo si;
    bool term = false;
    while (read(w->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        term |= si.ssi_signo == SIGTERM;
        if (si.ssi_signo == SIGUSR1)
            reopen(w);
    }
    return term;
}

bool pf_worker_poll_control(pf_worker *w)
{
    if (term_pending(w) && !w->draining) {
        w->draining = true;
        set_state(w);
    }
    return w->draining;
}

static void on_signal(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)fd, (void)events;
    if (term_pending(ud))
        drain(ud);
}

/* From the master: connections (dispatch mode), each with its peer
 * address as the message's bytes. End of stream means the master has gone,
 * and a worker never outlives it. */
static void on_ctl(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    pf_worker *w = ud;
    for (;;) {
        struct pf__peer_rec recs[PF__PASS_MAX];
        int fds[PF__PASS_MAX], n;
        ssize_t len = pf_fd_recv(fd, fds, PF__PASS_MAX, &n, recs, sizeof recs);
        if (len == -EAGAIN || len == -EINTR)
            return;
        if (len <= 0 && len != -EMSGSIZE) {
            pf_log(PF_LOG_WARN, "master has gone; exiting");
            pf_worker_exit(w, 1);
            return;
        }
        for (int i = 0; i < n; i++) {
            struct sockaddr_storage peer;
            socklen_t plen = 0;
            if ((size_t)len >= sizeof recs[0] * (size_t)(i + 1) && recs[i].len) {
                plen = recs[i].len;
                memcpy(&peer, recs[i].addr, plen);
            }
            conn_opened(w, fds[i], &peer, plen);
        }
    }
}

static void on_beat(pf_loop *loop, pf_timer *t, void *ud)
{
    PF__PUT(((pf_worker *)ud)->score->heartbeat_ms, pf_loop_now(loop));
    pf_timer_start(loop, t, HEARTBEAT_MS);
}

/* ---- set-up ---- */

/* Workers leave the pool's signals to the master (a Ctrl-C reaches the whole
 * process group), except TERM, which means "drain" even when it comes from
 * elsewhere, such as systemd's KillMode=control-group, and USR1, which the
 * master forwards: reopen the logs. */
static int worker_signals(pf_worker *w)
{
    static const int ignored[] = {SIGINT, SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU, SIGPIPE};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        signal(ignored[i], SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_SETMASK, &set, NULL) < 0)
        return -errno;
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return w->sigfd < 0 ? -errno : 0;
}

static int run_library_loop(pf_worker *w)
{
    int err = pf_loop_add(w->loop, w->sigfd, EPOLLIN, on_signal, w);
    if (err == 0)
        err = pf_loop_add(w->loop, w->ctl, EPOLLIN, on_ctl, w);
    if (err < 0) {
        pf_log(PF_LOG_ERROR, "epoll_ctl: %s", strerror(-err));
        return 1;
    }
    pf_timer_init(&w->beat, on_beat, w);
    pf_timer_init(&w->resume, on_resume, w);
    pf_timer_init(&w->stuck, on_stuck, w);
    pf_timer_start(w->loop, &w->beat, HEARTBEAT_MS);
    listeners_on(w);
    pf_worker_ready(w);
    err = pf_loop_run(w->loop);
    if (err < 0) {
        pf_log(PF_LOG_ERROR, "epoll_wait: %s", strerror(-err));
        return 1;
    }
    return w->status;
}

static int serve(pf_worker *w)
{
    const struct pf_service *svc = w->svc;
    if (svc->init) {
        int err = svc->init(w, svc->ud);
        if (err < 0) {
            pf_log(PF_LOG_ERROR, "service start-up failed: %s", strerror(-err));
            return 1;
        }
    }
    int status = svc->main ? svc->main(w, svc->ud) : run_library_loop(w);
    if (svc->fini)
        svc->fini(w, svc->ud);
    return status;
}

static int setup(pf_worker *w, const struct pf__worker_spec *spec)
{
    uint64_t max = (uint64_t)spec->cfg->max_conns;
    w->index = spec->index;
    w->generation = spec->generation;
    w->ctl = spec->ctl;
    w->nl = spec->nlisteners;
    memcpy(w->lfd, spec->listeners, (size_t)w->nl * sizeof(int));
    w->score = spec->score;
    w->balance = (struct pf__balance){.board = spec->board, .self = spec->score};
    w->balancing = spec->cfg->mode == PF_MODE_SHARED && spec->board;
    w->cfg = spec->cfg;
    w->svc = spec->svc;
    w->resume_below = max - max / 16;
    w->max_requests = spec->max_requests;
    PF__PUT(w->score->pid, getpid());
    PF__PUT(w->score->started_ms, pf__wall_ms());
    PF__PUT(w->score->heartbeat_ms, pf__mono_ms());
    PF__PUT(w->score->state, PF_STATE_STARTING);
    int err = worker_signals(w);
    if (err == 0)
        err = pf_loop_new(&w->loop);
    if (err < 0)
        pf_log(PF_LOG_ERROR, "worker set-up: %s", strerror(-err));
    return err;
}

/* Runs in the child right after fork; never returns. The worker exits with
 * _exit, after flushing its own stdio: exit() would also run atexit handlers
 * that the master's program registered (deleting a pidfile, say). */
_Noreturn void pf__worker_run(const struct pf__worker_spec *spec)
{
    pf_worker w = {.sigfd = -1};
    /* A worker never outlives its master: the kernel kills it when the
     * master dies, and the check closes the race with a master that died
     * before the prctl. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != spec->master)
        _exit(1);
    int status = setup(&w, spec) < 0 ? 1 : serve(&w);
    fflush(NULL);
    _exit(status);
}
