/* master.c — the supervisor's run loop: set-up, signals, and stopping (graceful, fast, after a delay). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/master/pool.h"

/* The signals the master handles (through a signalfd). */
static void signals_master(sigset_t *set)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1,
                               SIGUSR2, SIGTTIN, SIGTTOU};
    sigemptyset(set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(set, sigs[i]);
}

/* ---- stopping ---- */

void pf__finish_if_done(pf_pool *p)
{
    if (p->phase == PF__STOPPING && p->running == 0) {
        p->phase = PF__STOPPED;
        pf_loop_stop(p->loop);
    }
}

/* Tell the service (pf_service.on_master_event); s: the worker, or NULL. */
void pf__event(pf_pool *p, enum pf_event_kind kind, const struct pf__slot *s, int status)
{
    if (!p->svc.on_master_event)
        return;
    struct pf_event ev = {.kind = kind, .generation = s ? s->generation : p->serving,
                          .index = s ? s->index : -1, .pid = s ? s->pid : 0,
                          .status = status};
    p->svc.on_master_event(p->svc.ud, &ev);
}

static void stop_timers(pf_pool *p)
{
    pf_timer_stop(p->loop, &p->tick);
    pf__cancel_respawns(p);
    pf_timer_stop(p->loop, &p->reload_timer);
    pf_timer_stop(p->loop, &p->watchdog);
    pf_timer_stop(p->loop, &p->prestop);
}

/* Stop accepting at once: the master's copies of the listeners close now,
 * the workers' as they drain, and then new clients are refused rather than
 * left waiting in a queue nobody serves. */
void pf__stop_graceful(pf_pool *p, const char *why)
{
    if (p->phase != PF__RUNNING)
        return;
    p->phase = PF__STOPPING;
    if (!p->handed_over && p->board) /* a new master serves on: not a stop */
        PF__PUT(p->board->stopping, 1);
    pf_log(PF_LOG_INFO, "%s: stopping gracefully (up to %u.%03u s for open connections)",
           why, p->cfg.graceful_timeout_ms / 1000, p->cfg.graceful_timeout_ms % 1000);
    if (!p->handed_over) /* else systemd follows the new master already */
        pf__notify("STOPPING=1");
    stop_timers(p);
    pf__handoff_stop(p);
    pf__pool_close_listeners(p);
    pf__signal_all(p, p->cfg.stop_signal);
    int err = pf_timer_start(p->loop, &p->grace, p->cfg.graceful_timeout_ms);
    if (err < 0) { /* nothing would bound the wait: no wait */
        pf_log(PF_LOG_ERROR, "starting the graceful timeout: %s; killing the workers now",
               strerror(-err));
        pf__signal_all(p, SIGKILL);
    }
    pf__finish_if_done(p);
}

static void stop_fast(pf_pool *p, const char *why)
{
    if (p->fast)
        return;
    pf_log(PF_LOG_INFO, "%s: stopping now", why);
    if (p->phase == PF__RUNNING)
        pf__notify("STOPPING=1");
    p->phase = PF__STOPPING;
    p->fast = true;
    stop_timers(p);
    pf_timer_stop(p->loop, &p->grace);
    pf__handoff_stop(p);
    pf__pool_close_listeners(p);
    pf__signal_all(p, SIGKILL);
    pf__finish_if_done(p);
}

static void on_grace(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    pf_pool *p = ud;
    pf_log(PF_LOG_WARN, "graceful timeout: killing %d worker%s", p->running,
           p->running == 1 ? "" : "s");
    pf__signal_all(p, SIGKILL);
}

void pf__give_up(pf_pool *p)
{
    p->result = -ECHILD;
    pf__stop_graceful(p, "giving up");
}

/* --pre-stop-delay: keep serving while a load balancer notices that this
 * node is going (its health check fails elsewhere, or it is deregistered). */
static void on_prestop(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    pf__stop_graceful(ud, "pre-stop delay over");
}

static void stop_requested(pf_pool *p, const char *sig)
{
    if (p->phase != PF__RUNNING || pf_timer_active(&p->prestop))
        return;
    if (!p->cfg.pre_stop_delay_ms) {
        pf__stop_graceful(p, sig);
        return;
    }
    int err = pf_timer_start(p->loop, &p->prestop, p->cfg.pre_stop_delay_ms);
    if (err < 0) {
        pf_log(PF_LOG_ERROR, "starting the pre-stop delay: %s", strerror(-err));
        pf__stop_graceful(p, sig);
        return;
    }
    if (p->board)
        PF__PUT(p->board->stopping, 1);
    pf_log(PF_LOG_INFO, "%s: still serving for %u ms (pre-stop delay), then stopping", sig,
           p->cfg.pre_stop_delay_ms);
    pf__notify("STOPPING=1");
}

/* ---- signals ---- */

static void reopen_logs(pf_pool *p)
{
    int err = pf__log_reopen();
    if (err < 0)
        pf_log(PF_LOG_ERROR, "reopening the error log: %s", strerror(-err));
    else
        pf_log(PF_LOG_INFO, "SIGUSR1: logs reopened");
    pf__signal_all(p, SIGUSR1);
}

static void handle_signal(pf_pool *p, int sig)
{
    switch (sig) {
    case SIGTERM:
        stop_requested(p, "SIGTERM");
        break;
    case SIGINT:
        /* Ctrl-C twice: the second one does not wait. */
        if (++p->sigints >= 2)
            stop_fast(p, "second SIGINT");
        else
            stop_requested(p, "SIGINT");
        break;
    case SIGQUIT:
        stop_fast(p, "SIGQUIT");
        break;
    case SIGHUP:
        pf__reload(p);
        break;
    case SIGUSR1:
        reopen_logs(p);
        break;
    case SIGUSR2:
        pf__upgrade(p);
        break;
    case SIGTTIN:
        pf__resize(p, +1);
        break;
    case SIGTTOU:
        pf__resize(p, -1);
        break;
    }
}

static void on_signal(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        handle_signal(ud, (int)si.ssi_signo);
}

/* ---- set-up and tear-down ---- */

static int master_setup(pf_pool *p, sigset_t *old)
{
    sigset_t set;
    signals_master(&set);
    if (sigprocmask(SIG_BLOCK, &set, old) < 0)
        return -errno;
    p->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (p->sigfd < 0)
        return -errno;
    int err = pf_loop_new(&p->loop);
    if (err == 0) {
        pf__loop_no_yield(p->loop);
        err = pf__board_create(&p->board, &p->boardfd);
    }
    if (err == 0) {
        PF__PUT(p->board->mode, (uint32_t)p->cfg.mode);
        PF__PUT(p->board->started_ms, pf__wall_ms());
        err = pf__metrics_start(p);
    }
    if (err == 0)
        err = pf_loop_add(p->loop, p->sigfd, EPOLLIN, on_signal, p);
    if (err < 0)
        return err;
    p->ops = &pf__supervise;
    p->nslots = PF__BOARD_SLOTS;
    p->slot_hi = 0;
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    if (!p->slots)
        return -ENOMEM;
    pf_timer_init(&p->grace, on_grace, p);
    pf_timer_init(&p->prestop, on_prestop, p);
    srandom((unsigned)(getpid() ^ pf__mono_ms())); /* max-requests jitter */
    return 0;
}

static void master_teardown(pf_pool *p, const sigset_t *old)
{
    if (p->loop)
        pf__metrics_stop(p);
    if (p->cfg.pidfile && !p->handed_over)
        pf__pidfile_remove(p->cfg.pidfile, getpid());
    pf__handoff_free(p);
    for (int i = 0; p->slots && i <= p->slot_hi; i++)
        if (p->slots[i].pool)
            pf__program_free(&p->slots[i]);
    free(p->slots);
    p->slots = NULL;
    pf__board_destroy(p->board, p->boardfd);
    p->board = NULL;
    p->boardfd = -1;
    pf_loop_free(p->loop);
    p->loop = NULL;
    if (p->sigfd >= 0)
        close(p->sigfd);
    p->sigfd = -1;
    sigprocmask(SIG_SETMASK, old, NULL);
}

/* The service's periodic work in the master (pf_service.on_master_tick). */
static void on_tick(pf_loop *loop, pf_timer *t, void *ud)
{
    pf_pool *p = ud;
    p->svc.on_master_tick(p->svc.ud);
    int err = pf_timer_start(loop, t, p->svc.master_tick_ms);
    if (err < 0)
        pf_log(PF_LOG_ERROR, "restarting the service's master tick: %s; it stops", strerror(-err));
}

static void tick_start(pf_pool *p)
{
    if (!p->svc.on_master_tick || !p->svc.master_tick_ms)
        return;
    pf_timer_init(&p->tick, on_tick, p);
    int err = pf_timer_start(p->loop, &p->tick, p->svc.master_tick_ms);
    if (err < 0)
        pf_log(PF_LOG_ERROR, "starting the service's master tick: %s", strerror(-err));
}

static void start_workers(pf_pool *p)
{
    p->generation = p->gen_seq = 1;
    p->workers = p->cfg.workers;
    for (int i = 0; i < p->workers; i++)
        pf__spawn(pf__slot_find_empty(p), i, p->generation);
    char where[512];
    size_t n = 0;
    where[0] = '\0';
    for (int i = 0; i < p->nls && n < sizeof where; i++)
        n += (size_t)snprintf(where + n, sizeof where - n, "%s%s", i ? ", " : "",
                              p->ls[i].name);
    pf_log(PF_LOG_INFO, "started %d worker%s (%s) on %s", p->workers,
           p->workers == 1 ? "" : "s", pf_mode_name(p->cfg.mode), where);
    pf__watchdog_start(p);
    tick_start(p);
    if (p->cfg.mode != PF_MODE_SHARED && pf__handoff_start(p) < 0)
        pf_log(PF_LOG_ERROR, "hand-off: out of memory; nothing will be passed on");
    pf__rp_steer(p);
}

/* Sockets a previous master passed that no address asked for. */
static void close_unclaimed(pf_pool *p)
{
    for (int i = 0; i < p->ninherited; i++) {
        pf_log(PF_LOG_WARN, "closing inherited socket fd %d: no listen address asks for it",
               p->inherited[i]);
        close(p->inherited[i]);
    }
    p->ninherited = 0;
}

int pf_pool_run(pf_pool *p)
{
    if (p->nls == 0 || p->loop)
        return -EINVAL;
    /* A client that goes away must not kill the master. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldpipe;
    sigaction(SIGPIPE, &ign, &oldpipe);
    sigset_t old;
    p->phase = PF__RUNNING;
    p->result = 0;
    int err = master_setup(p, &old);
    if (err == 0) {
        start_workers(p);
        close_unclaimed(p); /* after the reuseport rows took theirs */
        err = pf_loop_run(p->loop);
        if (err < 0)
            pf_log(PF_LOG_ERROR, "epoll_wait: %s", strerror(-err));
    }
    master_teardown(p, &old);
    sigaction(SIGPIPE, &oldpipe, NULL);
    return err < 0 ? err : p->result;
}
