/* exec.c — pf_worker_exec: a worker becomes another program, its listeners at 3, 4, ... as systemd's socket activation passes them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/worker/worker.h"

#define FD_PARK 512 /* descriptors are moved above this while being placed */

/* Descriptors 3, 4, ... get the listeners, close-on-exec cleared; parked
 * above FD_PARK first (past the last target: at most PF_MAX_LISTENERS),
 * so that no dup2 clobbers a source. 0 or -errno. */
static int place_listeners(const int *fds, int n)
{
    int parked[PF_MAX_LISTENERS];
    for (int i = 0; i < n; i++)
        if ((parked[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, FD_PARK)) < 0)
            return -errno;
    for (int i = 0; i < n; i++)
        if (dup2(parked[i], 3 + i) < 0)
            return -errno;
    for (int i = 0; i < n; i++)
        close(parked[i]);
    return 0;
}

static void set_env(const pf_worker *w, int n)
{
    char num[32], names[PF_MAX_LISTENERS * 7 + 1] = "";
    for (int i = 0; i < n; i++)
        strcat(names, i ? ":listen" : "listen");
    snprintf(num, sizeof num, "%d", n);
    setenv("LISTEN_FDS", num, 1);
    snprintf(num, sizeof num, "%d", (int)getpid());
    setenv("LISTEN_PID", num, 1);
    setenv("LISTEN_FDNAMES", names, 1);
    snprintf(num, sizeof num, "%d", w->index);
    setenv("PREFORK_WORKER", num, 1);
    snprintf(num, sizeof num, "%u", w->generation);
    setenv("PREFORK_GENERATION", num, 1);
}

/* The program starts as a fresh process would: default signal handling,
 * nothing blocked, stdin from /dev/null (the terminal is the master's). */
static void reset_process(void)
{
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fd != STDIN_FILENO) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
}

int pf_worker_exec(pf_worker *w, char *const argv[])
{
    if (!argv || !argv[0])
        return -EINVAL;
    if (w->cfg->mode == PF_MODE_DISPATCH)
        return -ENOTSUP; /* connections come one by one over the control socket */
    int err = place_listeners(w->lfd, w->nl);
    if (err < 0) {
        pf_log(PF_LOG_ERROR, "placing the listeners at fd 3 (fcntl/dup2): %s", strerror(-err));
        return err;
    }
    set_env(w, w->nl);
    reset_process();
    execvp(argv[0], argv);
    err = -errno;
    pf_log(PF_LOG_ERROR, "exec %s: %s", argv[0], strerror(-err));
    return err;
}
