/* spawn.c — the slot table, the master's leaf: forking workers, reaping them through pidfds, signalling them, respawning with back-off. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/master/pool.h"

/*
 * This file decides nothing about modes, programs or generations: what a
 * fork needs, what a death or a message means, it asks the policy above
 * through p->ops (struct pf__spawn_ops; supervise.c). What it owns: the
 * slots, the processes' pidfds and control sockets, the back-off counters.
 */

#define BACKOFF_FIRST_MS 100

static pf_timer_fn on_respawn;

struct pf__score *pf__score_of(const struct pf__slot *s)
{
    return &s->pool->board->slot[s - s->pool->slots];
}

/* Slot i, set up on first use: the table has room for every slot, but a
 * slot's page is touched only once used, since each worker inherits the
 * master's dirty pages in its RSS. */
static struct pf__slot *slot_at(pf_pool *p, int i)
{
    struct pf__slot *s = &p->slots[i];
    if (!s->pool) {
        s->pool = p;
        s->pidfd = s->ctl = s->ctl_peer = s->notify_fd = s->out_fd = -1;
        if (i > p->slot_hi)
            p->slot_hi = i;
        PF__PUT(p->board->used, (uint32_t)p->slot_hi + 1);
        pf_timer_init(&s->respawn, on_respawn, s);
    }
    return s;
}

/* The first slot with neither a process nor a respawn on the way, or
 * NULL when the table is full. */
struct pf__slot *pf__slot_find_empty(pf_pool *p)
{
    for (int i = 0; i < p->nslots; i++) {
        struct pf__slot *s = slot_at(p, i);
        if (!s->pid && !s->waiting)
            return s;
    }
    return NULL;
}

void pf__slot_signal(struct pf__slot *s, int sig)
{
    /* A pidfd names the process itself, never a recycled pid. */
    if (s->pid && pidfd_send_signal(s->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
        pf_log(PF_LOG_ERROR, "pidfd_send_signal(worker %d, SIG%s): %s", s->index,
               sigabbrev_np(sig), strerror(errno));
}

void pf__signal_all(pf_pool *p, int sig)
{
    for (int i = 0; i <= p->slot_hi; i++)
        pf__slot_signal(&p->slots[i], sig);
}

/* Stop a slot for good: a scheduled respawn is cancelled, a live worker
 * told to drain. It is not respawned when it exits. */
void pf__retire(struct pf__slot *s)
{
    s->retiring = true;
    s->succeeds = NULL;
    if (s->waiting) {
        pf_timer_stop(s->pool->loop, &s->respawn);
        s->waiting = false;
    }
    if (s->pid) {
        PF__PUT(pf__score_of(s)->state, PF_STATE_DRAINING);
        pf__slot_signal(s, s->pool->cfg.stop_signal);
    }
}

void pf__cancel_respawns(pf_pool *p)
{
    for (int i = 0; i <= p->slot_hi; i++)
        if (p->slots[i].waiting) {
            pf_timer_stop(p->loop, &p->slots[i].respawn);
            p->slots[i].waiting = false;
        }
}

/* Live or scheduled workers of a generation that are not retiring. */
int pf__count(const pf_pool *p, unsigned generation, bool ready_only)
{
    int n = 0;
    for (int i = 0; i <= p->slot_hi; i++) {
        const struct pf__slot *s = &p->slots[i];
        if (s->pool && s->generation == generation && !s->retiring &&
            (s->pid || s->waiting) && (!ready_only || s->ready))
            n++;
    }
    return n;
}

/* ---- reaping ---- */

static void log_exit(const struct pf__slot *s, int status, uint64_t uptime)
{
    /* Expected news while stopping, or for a worker told to go. */
    enum pf_log_level level = s->pool->phase == PF__RUNNING && !s->retiring
                                  ? PF_LOG_WARN : PF_LOG_INFO;
    char up[32];
    snprintf(up, sizeof up, "%llu.%03llu s", (unsigned long long)(uptime / 1000),
             (unsigned long long)(uptime % 1000));
    if (WIFSIGNALED(status))
        pf_log(level, "worker %d (pid %d) killed by signal %d (SIG%s)%s after %s",
               s->index, (int)s->pid, WTERMSIG(status), sigabbrev_np(WTERMSIG(status)),
               WCOREDUMP(status) ? ", core dumped" : "", up);
    else if (WEXITSTATUS(status) != 0)
        pf_log(level, "worker %d (pid %d) exited with status %d after %s", s->index,
               (int)s->pid, WEXITSTATUS(status), up);
    else
        pf_log(PF_LOG_INFO, "worker %d (pid %d) exited after %s", s->index, (int)s->pid, up);
}

static void slot_clear(struct pf__slot *s, int status)
{
    pf_pool *p = s->pool;
    p->ops->cleared(s, status);
    pf_loop_del(p->loop, s->pidfd);
    close(s->pidfd);
    pf_loop_del(p->loop, s->ctl);
    close(s->ctl);
    s->pidfd = s->ctl = -1;
    s->pid = 0;
    s->hung_at = 0;
    s->killed = false;
    pf__board_retire(p->board, pf__score_of(s)); /* its counters stay the pool's */
    pf__score_reset(pf__score_of(s), s->index, s->generation);
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
    int err = pf_timer_start(p->loop, &s->respawn, ms);
    if (err < 0) {
        /* A slot nobody brings back: the pool would serve short for ever. */
        pf_log(PF_LOG_ERROR, "scheduling worker %d's respawn: %s", s->index, strerror(-err));
        p->ops->give_up(p);
        return;
    }
    s->waiting = true;
}

static void after_death(struct pf__slot *s, int status, uint64_t uptime)
{
    pf_pool *p = s->pool;
    bool ready = s->ready;
    if (WIFEXITED(status) && WEXITSTATUS(status) == PF_EXIT_FATAL) {
        pf_log(PF_LOG_ERROR, "worker %d exited with status %d (fatal): stopping",
               s->index, PF_EXIT_FATAL);
        p->ops->give_up(p);
        return;
    }
    s->failed = ready ? 0 : s->failed + 1;
    if (s->failed >= p->cfg.max_start_failures) {
        pf_log(PF_LOG_ERROR, "worker %d failed to start %u times in a row; giving up",
               s->index, s->failed);
        p->ops->give_up(p);
        return;
    }
    if (!ready || uptime < p->cfg.min_uptime_ms) {
        s->quick++;
        respawn_later(s);
    } else {
        s->quick = 0;
        pf__spawn(s, s->index, s->generation);
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
    if (s->pool->phase == PF__RUNNING && !s->retiring)
        pf__count_restart(s->pool, PF_RESTART_CRASH);
    slot_clear(s, status);
    if (s->pool->phase == PF__RUNNING && !s->retiring && !s->pool->ops->died(s, status))
        after_death(s, status, uptime);
    s->pool->ops->reaped(s->pool);
}

/* Ready: said by the worker on its control socket, or by the master for
 * a program (NOTIFY_SOCKET's READY=1, or its ready delay). Once only. */
void pf__slot_ready(struct pf__slot *s)
{
    if (s->ready || !s->pid)
        return;
    s->ready = true;
    s->failed = 0;
    pf_log(PF_LOG_DEBUG, "worker %d (pid %d) ready", s->index, (int)s->pid);
    s->pool->ops->ready(s);
}

static void on_ctl(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)events;
    struct pf__slot *s = ud;
    char msg;
    ssize_t n = recv(fd, &msg, 1, MSG_DONTWAIT);
    if (n == 1 && msg == PF__MSG_READY) {
        pf__slot_ready(s);
    } else if (n == 1 && msg == PF__MSG_RECYCLE) {
        s->pool->ops->recycle(s);
    } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        pf_loop_del(loop, fd); /* the worker is gone; its pidfd will say how */
    }
}

/* ---- spawning ---- */

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

/* The child: the policy makes it a worker; it must not come back. */
_Noreturn static void in_child(struct pf__slot *s, const int sv[2], pid_t master,
                               const int out[2])
{
    close(sv[0]);
    s->pool->ops->child(s, sv[1], master, out);
    _exit(127);
}

static void close_pair(int fd[2])
{
    if (fd[0] >= 0)
        close(fd[0]), close(fd[1]);
    fd[0] = fd[1] = -1;
}

/* Fork slot s's worker: its pid, or -errno with *step naming what failed
 * (nothing is left open then). sv[0] is the master's end of the control
 * socketpair. */
static pid_t fork_worker(struct pf__slot *s, int sv[2], const char **step)
{
    pf_pool *p = s->pool;
    int out[2] = {-1, -1};
    int err = p->ops->prepare(s, out, step);
    if (err < 0)
        return err;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        err = -errno;
        *step = "socketpair";
        close_pair(out);
        return err;
    }
    pf__score_reset(pf__score_of(s), s->index, s->generation);
    pid_t master = getpid();
    fflush(NULL); /* or the child would write the master's buffers again */
    pid_t pid = fork();
    if (pid == 0)
        in_child(s, sv, master, out);
    if (pid < 0) {
        err = -errno;
        *step = "fork";
        close_pair(sv);
        close_pair(out);
        return err;
    }
    p->ops->forked(s, sv[1], out);
    close(sv[1]);
    return pid;
}

void pf__spawn(struct pf__slot *s, int index, unsigned generation)
{
    pf_pool *p = s->pool;
    int sv[2];
    const char *step = "";
    s->index = index;
    s->generation = generation;
    if ((uint32_t)index >= PF__GET(p->board->index_hi))
        PF__PUT(p->board->index_hi, (uint32_t)index + 1);
    s->ready = s->retiring = s->waiting = false;
    s->succeeds = NULL;
    s->started = pf__mono_ms();
    pid_t pid = fork_worker(s, sv, &step);
    if (pid < 0) {
        pf_log(PF_LOG_ERROR, "starting worker %d: %s: %s", index, step, strerror((int)-pid));
        goto retry;
    }
    p->running++;
    pf__score_forked(pf__score_of(s), pid);
    int err = watch_child(s, pid, sv[0]);
    if (err < 0) {
        /* Unsupervised, it would be a worker nobody reaps: end it now. */
        pf_log(PF_LOG_ERROR, "pidfd_open/epoll_ctl for worker %d: %s", index, strerror(-err));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        slot_clear(s, status);
        goto retry;
    }
    return;
retry:
    s->quick++;
    respawn_later(s);
}

static void on_respawn(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    struct pf__slot *s = ud;
    s->waiting = false;
    if (s->pool->phase == PF__RUNNING && !s->retiring)
        pf__spawn(s, s->index, s->generation);
}
