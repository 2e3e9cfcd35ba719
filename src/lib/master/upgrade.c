/* upgrade.c — USR2, the old master's side: exec the program anew as an heir that inherits the listeners; hand over once it is ready. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/master/pool.h"

/*
 * The protocol between the two masters:
 *  - the old master forks; the child puts the listeners at fds 3, 4, ... and
 *    execs the program with LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES (as
 *    systemd would), plus PREFORK_UPGRADE_FD, the write end of a pipe;
 *  - the new master adopts the sockets whose addresses it was asked to
 *    listen on, starts its workers, and once they are all ready writes "R"
 *    on the pipe;
 *  - then the old master says MAINPID= to systemd and stops gracefully,
 *    leaving the socket files and the pidfile to the new one. If the new
 *    master exits or is not ready in time, the old one keeps serving.
 * This file is the old master's side; inherit.c is the new master's.
 */

#define FD_PARK 512 /* descriptors are moved above this while being placed */

static void heir_done(pf_pool *p)
{
    pf_timer_stop(p->loop, &p->heir_timer);
    if (p->heir_pipe >= 0) {
        pf_loop_del(p->loop, p->heir_pipe);
        close(p->heir_pipe);
    }
    if (p->heir_pidfd >= 0) {
        pf_loop_del(p->loop, p->heir_pidfd);
        close(p->heir_pidfd);
    }
    p->heir_pipe = p->heir_pidfd = -1;
    p->heir = 0;
}

static void heir_failed(pf_pool *p, const char *why)
{
    pf_log(PF_LOG_ERROR, "upgrade failed: new master (pid %d) %s; still serving", (int)p->heir,
           why);
    heir_done(p);
}

static void on_heir_exit(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)fd, (void)events;
    pf_pool *p = ud;
    int status;
    if (waitpid(p->heir, &status, WNOHANG) <= 0)
        return;
    char why[64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "was killed by SIG%s", sigabbrev_np(WTERMSIG(status)));
    else
        snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
    heir_failed(p, why);
}

static void on_heir_timeout(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    pf_pool *p = ud;
    kill(p->heir, SIGQUIT); /* it is not serving yet: nothing to drain */
    waitpid(p->heir, NULL, 0);
    heir_failed(p, "was not ready in time and was stopped");
}

static void on_heir_pipe(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    pf_pool *p = ud;
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n != 1 || c != 'R') { /* closed without a word: its pidfd will say why */
        pf_loop_del(p->loop, p->heir_pipe);
        return;
    }
    pid_t heir = p->heir;
    pf_log(PF_LOG_INFO, "upgrade: new master (pid %d) is ready; this one drains and exits",
           (int)heir);
    pf__notify("MAINPID=%d", (int)heir);
    p->handed_over = true;
    PF__COUNT(p, upgrades);
    heir_done(p); /* the heir lives on, reparented when this master exits */
    pf__stop_graceful(p, "upgraded");
}

struct fdlist {
    int *fd;
    int n;
};

static void collect(pf_pool *p, int fd, void *ud)
{
    (void)p;
    struct fdlist *l = ud;
    l->fd[l->n++] = fd;
}

static void count(pf_pool *p, int fd, void *ud)
{
    (void)p, (void)fd;
    ++*(int *)ud;
}

/* The listening sockets an heir would inherit: row 0, then every
 * reuseport row's own. */
static int sockets_to_pass(pf_pool *p)
{
    int n = p->nls;
    pf__rp_each(p, count, &n);
    return n;
}

/* In the child: every listening socket (row 0, then the reuseport rows)
 * to 3, 4, ... and the pipe after them, none close-on-exec; parked above
 * the highest target first, so that no dup2 clobbers a source. n, counted
 * by the parent, is at most PF__MAX_INHERITED. Returns 0 or -errno. */
static int place_fds(pf_pool *p, int n, int pipe_w)
{
    static int fds[PF__MAX_INHERITED + 1];
    struct fdlist all = {fds, 0};
    int park = 3 + n + 1 > FD_PARK ? 3 + n + 1 : FD_PARK;
    for (int i = 0; i < p->nls; i++)
        all.fd[all.n++] = p->lfd[i];
    pf__rp_each(p, collect, &all);
    all.fd[all.n] = pipe_w;
    for (int i = 0; i <= all.n; i++)
        if ((all.fd[i] = fcntl(all.fd[i], F_DUPFD_CLOEXEC, park)) < 0)
            return -errno;
    for (int i = 0; i <= all.n; i++)
        if (dup2(all.fd[i], 3 + i) < 0)
            return -errno;
    return 0;
}

/* LISTEN_FDNAMES is informational here: the new master matches sockets
 * by the address they are bound to. */
static void set_env(int nfds)
{
    char num[16];
    snprintf(num, sizeof num, "%d", nfds);
    setenv("LISTEN_FDS", num, 1);
    unsetenv("LISTEN_FDNAMES");
    snprintf(num, sizeof num, "%d", (int)getpid());
    setenv("LISTEN_PID", num, 1);
    snprintf(num, sizeof num, "%d", 3 + nfds);
    setenv("PREFORK_UPGRADE_FD", num, 1);
}

_Noreturn static void exec_heir(pf_pool *p, int n, int pipe_w)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int err = place_fds(p, n, pipe_w);
    if (err < 0) {
        pf_log(PF_LOG_ERROR, "upgrade: placing descriptors (fcntl/dup2): %s", strerror(-err));
        _exit(127);
    }
    set_env(n);
    if (p->upgrade_dir && chdir(p->upgrade_dir) < 0) {
        pf_log(PF_LOG_ERROR, "upgrade: chdir %s: %s", p->upgrade_dir, strerror(errno));
        _exit(127);
    }
    execv(p->upgrade_path, p->upgrade_argv);
    pf_log(PF_LOG_ERROR, "upgrade: exec %s: %s", p->upgrade_path, strerror(errno));
    _exit(127);
}

static int watch_heir(pf_pool *p, pid_t pid, int pipe_r)
{
    p->heir = pid;
    p->heir_pipe = pipe_r;
    p->heir_pidfd = pidfd_open(pid, 0);
    if (p->heir_pidfd < 0)
        return -errno;
    int err = pf_loop_add(p->loop, p->heir_pidfd, EPOLLIN, on_heir_exit, p);
    if (err == 0)
        err = pf_loop_add(p->loop, pipe_r, EPOLLIN, on_heir_pipe, p);
    pf_timer_init(&p->heir_timer, on_heir_timeout, p);
    if (err == 0) /* without it, an heir that never gets ready blocks upgrades */
        err = pf_timer_start(p->loop, &p->heir_timer, p->cfg.ready_timeout_ms);
    return err;
}

/* Whether an heir could take n sockets: a new master reads at most
 * PF__MAX_INHERITED (pf__inherit), and the child needs descriptors for
 * them twice over while it places them (parked, then at 3, 4, ...). */
static bool can_pass(int n)
{
    struct rlimit rl;
    if (n > PF__MAX_INHERITED) {
        pf_log(PF_LOG_ERROR, "SIGUSR2: upgrade refused: %d listening sockets (listeners x "
               "reuseport rows), a new master inherits at most %d; still serving",
               n, PF__MAX_INHERITED);
        return false;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)(FD_PARK > 2 * n + 5 ? FD_PARK + n + 1 : 2 * n + 5)) {
        pf_log(PF_LOG_ERROR, "SIGUSR2: upgrade refused: passing %d listening sockets needs "
               "more descriptors than RLIMIT_NOFILE (%llu); still serving",
               n, (unsigned long long)rl.rlim_cur);
        return false;
    }
    return true;
}

void pf__upgrade(pf_pool *p)
{
    int fds[2];
    if (p->phase != PF__RUNNING)
        return;
    if (!p->upgrade_path || p->heir || !p->started || p->reloading) {
        pf_log(PF_LOG_WARN, "SIGUSR2: %s", !p->upgrade_path ? "this program cannot be upgraded"
                                           : p->heir ? "an upgrade is already under way"
                                                     : "workers are still starting; try later");
        return;
    }
    int n = sockets_to_pass(p);
    if (!can_pass(n))
        return;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        pf_log(PF_LOG_ERROR, "upgrade: pipe2: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        exec_heir(p, n, fds[1]);
    close(fds[1]);
    if (pid < 0) {
        pf_log(PF_LOG_ERROR, "upgrade: fork: %s", strerror(errno));
        close(fds[0]);
        return;
    }
    pf_log(PF_LOG_INFO, "SIGUSR2: upgrading: started a new master (pid %d) from %s", (int)pid,
           p->upgrade_path);
    int err = watch_heir(p, pid, fds[0]);
    if (err < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        heir_failed(p, "could not be watched");
    }
}
