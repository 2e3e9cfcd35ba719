/* worker.c — a worker process: set-up, its event loop, control from the master, draining, its heartbeat and counters. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/worker/worker.h"

#define HEARTBEAT_MS 500

/* The one worker of this process, for code that has no pointer to it. */
static pf_worker *self;
pf_worker *pf_worker_self(void) { return self; }

int pf_worker_index(const pf_worker *w) { return w->index; }
unsigned pf_worker_generation(const pf_worker *w) { return w->generation; }
pf_loop *pf_worker_loop(pf_worker *w) { return w->loop; }
int pf_worker_drain_fd(const pf_worker *w) { return w->sigfd; }
bool pf_worker_draining(const pf_worker *w) { return w->draining; }

bool pf_worker_stopping(const pf_worker *w)
{
    const struct pf__board *b = w->balance.board;
    return b && PF__GET(b->stopping);
}

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
    if (!atomic_load_explicit(&w->hung, memory_order_relaxed))
        PF__PUT(w->score->heartbeat_ms, pf__mono_ms());
}

/* The heartbeat goes back by the timeout and stops, so the master's next
 * check finds the worker as it finds one whose loop has stopped. */
void pf_worker_hung(pf_worker *w)
{
    atomic_store_explicit(&w->hung, true, memory_order_relaxed);
    uint64_t now = pf__mono_ms(), t = w->cfg->timeout_ms;
    PF__PUT(w->score->heartbeat_ms, now > t ? now - t : 1);
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

/* Upper bounds of the duration buckets, as Prometheus clients name theirs
 * (0.5 ms to 10 s); the last bucket holds the rest. */
static const uint64_t bounds_us[PF_DURATION_BUCKETS - 1] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

uint64_t pf_duration_bound_us(int i)
{
    return i >= 0 && i < PF_DURATION_BUCKETS - 1 ? bounds_us[i] : UINT64_MAX;
}

/* One writer per slot field: a plain load and store, no locked add. */
#define BUMP(field, n) PF__PUT(field, PF__GET(field) + (n))

void pf_worker_count_response(pf_worker *w, int status, uint64_t bytes, uint64_t us)
{
    pf_worker_count(w, 1, bytes);
    struct pf__score *s = w->score;
    if (status >= 100 && status < 600)
        BUMP(s->status[status / 100 - 1], 1);
    BUMP(s->duration_us, us);
    int b = 0;
    while (b < PF_DURATION_BUCKETS - 1 && us > bounds_us[b])
        b++;
    BUMP(s->hist[b], 1);
}

void pf_worker_count_tls(pf_worker *w, bool resumed)
{
    if (resumed)
        BUMP(w->score->tls_resumed, 1);
    else
        BUMP(w->score->tls_full, 1);
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

void pf_worker_close_conn(pf_worker *w, int fd)
{
    /* An accepted socket is this worker's alone (close-on-exec, never
     * passed on), so closing it also takes it out of epoll. */
    pf__loop_forget(w->loop, fd);
    close(fd);
    if (w->active > 0)
        w->active--;
    pf__worker_set_state(w);
    if (w->draining && w->active == 0)
        pf_worker_exit(w, 0);
    else
        pf__accept_closed(w);
}

/* ---- draining and control ---- */

/* TERM: stop accepting at once (taking what is already queued), and exit
 * once the last connection has closed. */
static void drain(pf_worker *w)
{
    if (w->draining)
        return;
    pf__accept_drain(w);
    w->draining = true;
    pf__worker_set_state(w);
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
        pf__worker_set_state(w);
    }
    return w->draining;
}

static void on_signal(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)fd, (void)events;
    if (term_pending(ud))
        drain(ud);
}

/* From the master: connections (dispatch mode). End of stream means the
 * master has gone, and a worker never outlives it. */
static void on_ctl(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    pf_worker *w = ud;
    if (pf__accept_passed(w, fd) < 0) {
        pf_log(PF_LOG_WARN, "master has gone; exiting");
        pf_worker_exit(w, 1);
    }
}

/* Restarted first thing, in the place it has just left: cannot fail. */
static void on_beat(pf_loop *loop, pf_timer *t, void *ud)
{
    pf_worker *w = ud;
    if (!atomic_load_explicit(&w->hung, memory_order_relaxed))
        PF__PUT(w->score->heartbeat_ms, pf_loop_now(loop));
    (void)pf_timer_start(loop, t, HEARTBEAT_MS);
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
    pf__accept_init(w);
    if ((err = pf_timer_start(w->loop, &w->beat, HEARTBEAT_MS)) < 0) {
        pf_log(PF_LOG_ERROR, "starting the heartbeat timer: %s", strerror(-err));
        return 1;
    }
    pf__accept_start(w);
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
    self = w;
    w->index = spec->index;
    w->generation = spec->generation;
    w->ctl = spec->ctl;
    w->nl = spec->nlisteners;
    memcpy(w->lfd, spec->listeners, (size_t)w->nl * sizeof(int));
    for (int i = 0; i < w->nl; i++)
        w->lproxy[i] = spec->listener_flags && (spec->listener_flags[i] & PF_ADDR_PROXY);
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
