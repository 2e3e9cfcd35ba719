/* spawn.c — the slot table: forking workers, reaping them through pidfds, respawning with back-off. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool.h"

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

struct pf__slot *pf__slot_free(pf_pool *p)
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

static void slot_clear(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    pf__dispatch_recover(s);
    pf__program_gone(s);
    pf_loop_del(p->loop, s->pidfd);
    close(s->pidfd);
    pf_loop_del(p->loop, s->ctl);
    close(s->ctl);
    s->pidfd = s->ctl = -1;
    s->pid = 0;
    s->hung_at = 0;
    s->killed = false;
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
        pf__give_up(p);
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
        pf__give_up(p);
        return;
    }
    s->failed = ready ? 0 : s->failed + 1;
    if (s->failed >= p->cfg.max_start_failures) {
        pf_log(PF_LOG_ERROR, "worker %d failed to start %u times in a row; giving up",
               s->index, s->failed);
        pf__give_up(p);
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
    slot_clear(s);
    if (s->pool->phase == PF__RUNNING && !s->retiring && !pf__on_death(s, status))
        after_death(s, status, uptime);
    pf__finish_if_done(s->pool);
}

static void on_ctl(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)events;
    struct pf__slot *s = ud;
    char msg;
    ssize_t n = recv(fd, &msg, 1, MSG_DONTWAIT);
    if (n == 1 && msg == PF__MSG_READY && !s->ready) {
        s->ready = true;
        s->failed = 0;
        pf_log(PF_LOG_DEBUG, "worker %d (pid %d) ready", s->index, (int)s->pid);
        pf__on_ready(s);
    } else if (n == 1 && msg == PF__MSG_RECYCLE) {
        pf__recycle(s);
    } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        pf_loop_del(loop, fd); /* the worker is gone; its pidfd will say how */
    }
}

/* ---- spawning ---- */

/* In a new child: drop every descriptor that belongs to the master, so a
 * worker holds its listeners, its control socket and nothing else. */
void pf__close_slot_fds(pf_pool *p, const struct pf__slot *keep)
{
    for (int i = 0; i <= p->slot_hi; i++) {
        const struct pf__slot *s = &p->slots[i];
        if (s != keep && s->pid) {
            close(s->pidfd);
            close(s->ctl);
        }
        if (s->pool && s->ctl_peer >= 0)
            close(s->ctl_peer);
        if (s->pool)
            pf__program_close(s);
    }
    /* Dispatch mode: the master accepts; workers hold no listener. In
     * reuseport mode, each holds its own row only. */
    for (int i = 0; p->cfg.mode == PF_MODE_DISPATCH && i < p->nls; i++)
        close(p->lfd[i]);
    if (keep)
        pf__rp_close_others(p, keep->index);
    /* After USR2: sockets of the old master's rows that no row has adopted
     * yet (the later indexes, while the workers start) are not this one's. */
    for (int i = 0; i < p->ninherited; i++)
        close(p->inherited[i]);
    close(p->sigfd);
    close(p->boardfd);
    if (p->heir_pipe >= 0)
        close(p->heir_pipe);
    if (p->heir_pidfd >= 0)
        close(p->heir_pidfd);
    pf_loop_free(p->loop);
}

/* setgroups, then setgid, then setuid: in that order, or a step fails. */
static int drop_privileges(const struct pf_config *cfg)
{
    if (!cfg->drop_privileges)
        return 0;
    if (setgroups(1, &cfg->gid) < 0 || setgid(cfg->gid) < 0 || setuid(cfg->uid) < 0) {
        pf_log(PF_LOG_ERROR, "dropping privileges to uid %d gid %d: %s", (int)cfg->uid,
               (int)cfg->gid, strerror(errno));
        return -1;
    }
    return 0;
}

/* A worker's recycling limit: max-requests plus its own random jitter, so
 * that workers started together do not all restart together. */
static uint64_t request_limit(const struct pf_config *cfg)
{
    if (!cfg->max_requests)
        return 0;
    uint64_t jitter = cfg->max_requests_jitter
                          ? (uint64_t)random() % ((uint64_t)cfg->max_requests_jitter + 1)
                          : 0;
    return cfg->max_requests + jitter;
}

_Noreturn static void become_worker(struct pf__slot *s, int ctl, pid_t master,
                                    const int out[2])
{
    pf_pool *p = s->pool;
    pf__program_child(s, out);
    pf__close_slot_fds(p, s);
    pf__log_set_source("worker %d (pid %d)", s->index, (int)getpid());
    pf__pin_worker(&p->cfg, s->index);
    if (drop_privileges(&p->cfg) < 0)
        _exit(PF_EXIT_FATAL);
    struct pf__worker_spec spec = {
        .index = s->index, .generation = s->generation, .master = master,
        .max_requests = request_limit(&p->cfg), .ctl = ctl,
        .listeners = pf__rp_row(p, s->index),
        .nlisteners = p->cfg.mode == PF_MODE_DISPATCH ? 0 : p->nls,
        .score = pf__score_of(s), .board = p->board, .cfg = &p->cfg, .svc = &p->svc,
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

void pf__spawn(struct pf__slot *s, int index, unsigned generation)
{
    pf_pool *p = s->pool;
    int sv[2];
    s->index = index;
    s->generation = generation;
    s->ready = s->retiring = s->waiting = false;
    s->succeeds = NULL;
    s->dispatched = 0;
    s->started = pf__mono_ms();
    int out[2] = {-1, -1}, err;
    const char *step;
    if ((err = pf__rp_bind(p, index)) < 0) { /* reuseport: this index's sockets first */
        step = "binding its reuseport sockets";
        goto failed;
    }
    if ((err = pf__program_before(s, out)) < 0) {
        step = "its NOTIFY_SOCKET or output pipe";
        goto failed;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        err = -errno;
        step = "socketpair";
        if (out[0] >= 0)
            close(out[0]), close(out[1]);
        goto failed;
    }
    pf__score_reset(pf__score_of(s), index, generation);
    pid_t master = getpid();
    fflush(NULL); /* or the child would write the master's buffers again */
    pid_t pid = fork();
    err = pid < 0 ? -errno : 0;
    if (pid == 0) {
        close(sv[0]);
        become_worker(s, sv[1], master, out);
    }
    /* Dispatch: the master keeps the worker's end open too, so that what
     * the worker never read survives its death (see dispatch.c). */
    if (pid > 0 && p->cfg.mode != PF_MODE_SHARED)
        s->ctl_peer = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
    close(sv[1]);
    if (pid < 0) {
        step = "fork";
        close(sv[0]);
        if (out[0] >= 0)
            close(out[0]), close(out[1]);
        goto failed;
    }
    p->running++;
    pf__score_forked(pf__score_of(s), pid);
    pf__program_parent(s, out);
    err = watch_child(s, pid, sv[0]);
    if (err < 0) {
        /* Unsupervised, it would be a worker nobody reaps: end it now. */
        pf_log(PF_LOG_ERROR, "pidfd_open/epoll_ctl for worker %d: %s", index, strerror(-err));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        slot_clear(s);
        goto retry;
    }
    return;
failed:
    pf_log(PF_LOG_ERROR, "starting worker %d: %s: %s", index, step, strerror(-err));
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
