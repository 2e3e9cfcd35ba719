/* master.c — the supervisor: forks the workers, reaps and respawns them with back-off, stops the pool. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool.h"

#define BACKOFF_FIRST_MS 100

static void spawn(struct pf__slot *s);
static pf_timer_fn on_respawn;

int pf__signals_master(sigset_t *set)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1,
                               SIGUSR2, SIGTTIN, SIGTTOU};
    sigemptyset(set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(set, sigs[i]);
    return 0;
}

/* ---- the slot table ---- */

static struct pf__score *score_of(const struct pf__slot *s)
{
    return &s->pool->board->slot[s - s->pool->slots];
}

static void slot_signal(struct pf__slot *s, int sig)
{
    /* A pidfd names the process itself, never a recycled pid. */
    if (s->pid && pidfd_send_signal(s->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
        pf_log(PF_LOG_ERROR, "pidfd_send_signal(worker %d, %s): %s", s->index,
               sigabbrev_np(sig), strerror(errno));
}

static void signal_all(pf_pool *p, int sig)
{
    for (int i = 0; i < p->nslots; i++)
        slot_signal(&p->slots[i], sig);
}

static void cancel_respawns(pf_pool *p)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i].pool)
            pf_timer_stop(p->loop, &p->slots[i].respawn);
}

/* ---- stopping ---- */

static void finish_if_done(pf_pool *p)
{
    if (p->phase == PF__STOPPING && p->running == 0) {
        p->phase = PF__STOPPED;
        pf_loop_stop(p->loop);
    }
}

/* Stop accepting at once: the master's copies of the listeners close now,
 * the workers' as they drain, and then new clients are refused rather than
 * left waiting in a queue nobody serves. */
static void stop_graceful(pf_pool *p, const char *why)
{
    if (p->phase != PF__RUNNING)
        return;
    p->phase = PF__STOPPING;
    pf_log(PF_LOG_INFO, "%s: stopping gracefully (open connections have %u.%03u s)",
           why, p->cfg.graceful_timeout_ms / 1000, p->cfg.graceful_timeout_ms % 1000);
    cancel_respawns(p);
    pf__pool_close_listeners(p);
    signal_all(p, SIGTERM);
    pf_timer_start(p->loop, &p->grace, p->cfg.graceful_timeout_ms);
    finish_if_done(p);
}

static void stop_fast(pf_pool *p, const char *why)
{
    if (p->fast)
        return;
    pf_log(PF_LOG_INFO, "%s: stopping now", why);
    p->phase = PF__STOPPING;
    p->fast = true;
    cancel_respawns(p);
    pf_timer_stop(p->loop, &p->grace);
    pf__pool_close_listeners(p);
    signal_all(p, SIGKILL);
    finish_if_done(p);
}

static void on_grace(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    pf_pool *p = ud;
    pf_log(PF_LOG_WARN, "graceful timeout: killing %d worker%s", p->running,
           p->running == 1 ? "" : "s");
    signal_all(p, SIGKILL);
}

static void give_up(pf_pool *p)
{
    p->result = -ECHILD;
    stop_graceful(p, "giving up");
}

/* ---- reaping ---- */

static void log_exit(const struct pf__slot *s, int status, uint64_t uptime)
{
    /* While stopping, deaths are expected news. */
    enum pf_log_level quiet = s->pool->phase == PF__RUNNING ? PF_LOG_WARN : PF_LOG_INFO;
    char up[32];
    snprintf(up, sizeof up, "%llu.%03llu s", (unsigned long long)(uptime / 1000),
             (unsigned long long)(uptime % 1000));
    if (WIFSIGNALED(status))
        pf_log(quiet, "worker %d (pid %d) killed by signal %d (SIG%s)%s after %s",
               s->index, (int)s->pid, WTERMSIG(status), sigabbrev_np(WTERMSIG(status)),
               WCOREDUMP(status) ? ", core dumped" : "", up);
    else if (WEXITSTATUS(status) != 0)
        pf_log(quiet, "worker %d (pid %d) exited with status %d after %s",
               s->index, (int)s->pid, WEXITSTATUS(status), up);
    else
        pf_log(PF_LOG_INFO, "worker %d (pid %d) exited after %s", s->index,
               (int)s->pid, up);
}

static void slot_clear(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    pf_loop_del(p->loop, s->pidfd);
    close(s->pidfd);
    pf_loop_del(p->loop, s->ctl);
    close(s->ctl);
    s->pidfd = s->ctl = -1;
    s->pid = 0;
    pf__score_reset(score_of(s), s->index, s->generation);
    p->running--;
}

/* Exponential back-off for workers that die young: 100 ms, 200 ms, ...
 * capped, so a crashing service can never become a fork loop. */
static void respawn_later(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    unsigned shift = s->quick > 20 ? 20 : s->quick - 1;
    uint64_t ms = (uint64_t)BACKOFF_FIRST_MS << shift;
    if (ms > p->cfg.backoff_max_ms)
        ms = p->cfg.backoff_max_ms;
    pf_log(PF_LOG_WARN, "respawning worker %d in %llu ms (%u quick exit%s in a row)",
           s->index, (unsigned long long)ms, s->quick, s->quick == 1 ? "" : "s");
    pf_timer_start(p->loop, &s->respawn, ms);
}

static void after_death(struct pf__slot *s, int status, uint64_t uptime)
{
    pf_pool *p = s->pool;
    bool ready = s->ready;
    if (WIFEXITED(status) && WEXITSTATUS(status) == PF_EXIT_FATAL) {
        pf_log(PF_LOG_ERROR, "worker %d exited with status %d (fatal): stopping",
               s->index, PF_EXIT_FATAL);
        give_up(p);
        return;
    }
    s->failed = ready ? 0 : s->failed + 1;
    if (s->failed >= p->cfg.max_start_failures) {
        pf_log(PF_LOG_ERROR, "worker %d failed to start %u times in a row; giving up",
               s->index, s->failed);
        give_up(p);
        return;
    }
    if (!ready || uptime < p->cfg.min_uptime_ms) {
        s->quick++;
        respawn_later(s);
    } else {
        s->quick = 0;
        spawn(s);
    }
}

static void on_pidfd(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)fd, (void)events;
    struct pf__slot *s = ud;
    int status;
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return;
    if (r < 0) {
        pf_log(PF_LOG_ERROR, "waitpid(%d): %s", (int)s->pid, strerror(errno));
        status = 0;
    }
    uint64_t uptime = pf_loop_now(loop) - s->started;
    log_exit(s, status, uptime);
    slot_clear(s);
    if (s->pool->phase == PF__RUNNING)
        after_death(s, status, uptime);
    finish_if_done(s->pool);
}

static void on_ctl(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)events;
    struct pf__slot *s = ud;
    char msg;
    ssize_t n = recv(fd, &msg, 1, MSG_DONTWAIT);
    if (n == 1 && msg == PF__MSG_READY) {
        s->ready = true;
        s->failed = 0;
        pf_log(PF_LOG_DEBUG, "worker %d (pid %d) ready", s->index, (int)s->pid);
    } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        pf_loop_del(loop, fd); /* the worker is gone; its pidfd will say how */
    }
}

/* ---- spawning ---- */

/* In the new worker: drop every descriptor that belongs to the master, so a
 * worker holds its listeners, its control socket and nothing else. */
static void close_master_fds(pf_pool *p, const struct pf__slot *self)
{
    for (int i = 0; i < p->nslots; i++) {
        const struct pf__slot *s = &p->slots[i];
        if (s != self && s->pid) {
            close(s->pidfd);
            close(s->ctl);
        }
    }
    close(p->sigfd);
    close(p->boardfd);
    pf_loop_free(p->loop);
}

_Noreturn static void become_worker(struct pf__slot *s, int ctl, pid_t master)
{
    pf_pool *p = s->pool;
    close_master_fds(p, s);
    struct pf__worker_spec spec = {
        .index = s->index, .generation = s->generation, .master = master,
        .ctl = ctl, .listeners = p->lfd, .nlisteners = p->nls,
        .score = score_of(s), .cfg = &p->cfg, .svc = &p->svc,
    };
    pf__worker_run(&spec);
}

static int watch_child(struct pf__slot *s, pid_t pid, int ctl)
{
    pf_pool *p = s->pool;
    s->pid = pid;
    s->ctl = ctl;
    s->pidfd = pidfd_open(pid, 0);
    if (s->pidfd < 0)
        return -errno;
    int err = pf_loop_add(p->loop, s->pidfd, EPOLLIN, on_pidfd, s);
    if (err == 0)
        err = pf_loop_add(p->loop, ctl, EPOLLIN, on_ctl, s);
    return err;
}

/* Slot i, set up on first use (see master_setup). */
static struct pf__slot *slot_at(pf_pool *p, int i)
{
    struct pf__slot *s = &p->slots[i];
    if (!s->pool) {
        s->pool = p;
        s->index = i;
        s->pidfd = s->ctl = -1;
        pf_timer_init(&s->respawn, on_respawn, s);
    }
    return s;
}

static void spawn(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        goto failed;
    s->generation = p->generation;
    s->ready = false;
    s->started = pf__mono_ms();
    pf__score_reset(score_of(s), s->index, s->generation);
    pid_t master = getpid();
    fflush(NULL); /* or the child would write the master's buffers again */
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        become_worker(s, sv[1], master);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        goto failed;
    }
    p->running++;
    int err = watch_child(s, pid, sv[0]);
    if (err < 0) {
        /* Unsupervised, it would be a worker nobody reaps: end it now. */
        pf_log(PF_LOG_ERROR, "pidfd_open/epoll_ctl for worker %d: %s", s->index,
               strerror(-err));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        slot_clear(s);
        goto retry;
    }
    return;
failed:
    pf_log(PF_LOG_ERROR, "fork/socketpair for worker %d: %s", s->index, strerror(errno));
retry:
    s->quick++;
    respawn_later(s);
}

static void on_respawn(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    struct pf__slot *s = ud;
    if (s->pool->phase == PF__RUNNING)
        spawn(s);
}

/* ---- signals ---- */

static void handle_signal(pf_pool *p, int sig)
{
    switch (sig) {
    case SIGTERM:
        stop_graceful(p, "SIGTERM");
        break;
    case SIGINT:
        /* Ctrl-C twice: the second one does not wait. */
        if (++p->sigints >= 2)
            stop_fast(p, "second SIGINT");
        else
            stop_graceful(p, "SIGINT");
        break;
    case SIGQUIT:
        stop_fast(p, "SIGQUIT");
        break;
    default:
        pf_log(PF_LOG_WARN, "SIG%s: not handled by this version; ignored",
               sigabbrev_np(sig));
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

static void log_started(const pf_pool *p)
{
    char where[512];
    size_t n = 0;
    where[0] = '\0';
    for (int i = 0; i < p->nls && n < sizeof where; i++)
        n += (size_t)snprintf(where + n, sizeof where - n, "%s%s", i ? ", " : "",
                              p->ls[i].name);
    pf_log(PF_LOG_INFO, "started %d worker%s (%s) on %s", p->cfg.workers,
           p->cfg.workers == 1 ? "" : "s", pf_mode_name(p->cfg.mode), where);
}

static int master_setup(pf_pool *p, sigset_t *old)
{
    sigset_t set;
    pf__signals_master(&set);
    if (sigprocmask(SIG_BLOCK, &set, old) < 0)
        return -errno;
    p->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (p->sigfd < 0)
        return -errno;
    int err = pf_loop_new(&p->loop);
    if (err == 0)
        err = pf__board_create(&p->board, &p->boardfd);
    if (err == 0)
        err = pf_loop_add(p->loop, p->sigfd, EPOLLIN, on_signal, p);
    if (err < 0)
        return err;
    /* Room for every slot, but a slot's page is touched only once used:
     * each worker inherits the master's dirty pages in its RSS. */
    p->nslots = PF__BOARD_SLOTS;
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    if (!p->slots)
        return -ENOMEM;
    pf_timer_init(&p->grace, on_grace, p);
    return 0;
}

static void master_teardown(pf_pool *p, const sigset_t *old)
{
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

int pf_pool_run(pf_pool *p)
{
    if (p->nls == 0 || p->loop)
        return -EINVAL;
    /* A client that goes away must not kill the master. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldpipe;
    sigaction(SIGPIPE, &ign, &oldpipe);
    sigset_t old;
    p->phase = PF__RUNNING;
    p->generation = 1;
    p->result = 0;
    int err = master_setup(p, &old);
    if (err == 0) {
        for (int i = 0; i < p->cfg.workers; i++)
            spawn(slot_at(p, i));
        log_started(p);
        err = pf_loop_run(p->loop);
        if (err < 0)
            pf_log(PF_LOG_ERROR, "epoll_wait: %s", strerror(-err));
    }
    master_teardown(p, &old);
    sigaction(SIGPIPE, &oldpipe, NULL);
    return err < 0 ? err : p->result;
}
