/* program.c — the master's side of workers that run a program: sd_notify sockets, captured output, ready delay, lifetime. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/master/pool.h"

/*
 * A worker that execs another program (prefork run) keeps its pid but loses
 * the library: it cannot tick the scoreboard or say READY on the control
 * socket. So the master does it on the program's behalf:
 *  - each slot has a datagram socket at an abstract address, given to the
 *    worker as NOTIFY_SOCKET (systemd's sd_notify protocol): READY=1 marks
 *    it ready, WATCHDOG=1 ticks its heartbeat, STATUS= is its activity.
 *    Abstract sockets have no permissions, so a message counts only if the
 *    kernel's credentials (SO_PASSCRED) name the worker's own pid;
 *  - its stdout and stderr go through a pipe, and each line is logged as
 *    the worker's ("worker 2 (pid 4711)  info  ...");
 *  - without READY=1 it counts as ready after --ready-delay;
 *  - after --max-lifetime (plus jitter) it is recycled.
 * Here the master writes the worker's scoreboard slot, the one exception
 * to "each slot is written by its own worker".
 */

#define OUT_LINE 512

static void tag(const struct pf__slot *s, char *buf, size_t size)
{
    snprintf(buf, size, "worker %d (pid %d)", s->index, (int)s->pid);
}

static void mark_ready(struct pf__slot *s)
{
    if (s->ready || !s->pid)
        return;
    PF__PUT(pf__score_of(s)->state, PF_STATE_IDLE);
    pf__slot_ready(s);
}

/* ---- NOTIFY_SOCKET ---- */

static void notify_line(struct pf__slot *s, const char *line, size_t n)
{
    struct pf__score *sc = pf__score_of(s);
    if (n == 7 && memcmp(line, "READY=1", 7) == 0) {
        mark_ready(s);
    } else if (n == 10 && memcmp(line, "WATCHDOG=1", 10) == 0) {
        PF__PUT(sc->heartbeat_ms, pf__mono_ms());
    } else if (n >= 7 && memcmp(line, "STATUS=", 7) == 0) {
        char what[sizeof sc->activity];
        size_t k = n - 7 < sizeof what - 1 ? n - 7 : sizeof what - 1;
        memcpy(what, line + 7, k);
        what[k] = '\0';
        pf__score_set_activity(sc, k ? what : NULL);
    }
}

/* The sender's pid, from SCM_CREDENTIALS; descriptors sent along (an
 * FDSTORE=1, say) are closed: the master keeps none. */
static pid_t sender(struct msghdr *m)
{
    pid_t pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            pid = cred.pid;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int *fds = (int *)CMSG_DATA(c);
            for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                close(fds[i]);
        }
    }
    return pid;
}

static void on_notify(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    struct pf__slot *s = ud;
    for (;;) {
        char buf[2048];
        union {
            struct cmsghdr align;
            char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
        } ctl;
        struct iovec iov = {buf, sizeof buf - 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl,
                           .msg_controllen = sizeof ctl};
        ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return;
        if (sender(&m) != s->pid || !s->pid)
            continue; /* not from this slot's worker */
        for (char *p = buf, *end = buf + n; p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            notify_line(s, p, len);
            p += len + 1;
        }
    }
}

/* "@prefork/MASTERPID/SLOT": one per slot, kept across respawns. */
static int notify_open(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "prefork/%d/%d", (int)getpid(),
                     (int)(s - p->slots));
    int one = 1, err = 0, fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, len) < 0)
        err = -errno;
    else
        err = pf_loop_add(p->loop, fd, EPOLLIN, on_notify, s); /* returns -errno itself */
    if (err < 0) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    s->notify_fd = fd;
    return 0;
}

/* ---- captured output ---- */

static void emit_line(struct pf__slot *s, const char *line, size_t n)
{
    char source[64];
    tag(s, source, sizeof source);
    pf__log_as(source, PF_LOG_INFO, line, n);
}

static void out_flush(struct pf__slot *s)
{
    if (s->out_len)
        emit_line(s, s->out_buf, s->out_len);
    s->out_len = 0;
}

static void out_close(struct pf__slot *s)
{
    out_flush(s);
    pf_loop_del(s->pool->loop, s->out_fd);
    close(s->out_fd);
    s->out_fd = -1;
}

/* Whole lines are logged as they come; a line longer than the buffer is
 * logged in pieces. */
static void on_output(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    struct pf__slot *s = ud;
    for (;;) {
        ssize_t n = read(fd, s->out_buf + s->out_len, OUT_LINE - s->out_len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            out_close(s);
            return;
        }
        s->out_len += (size_t)n;
        char *p = s->out_buf, *nl;
        while ((nl = memchr(p, '\n', s->out_len - (size_t)(p - s->out_buf))) != NULL) {
            emit_line(s, p, (size_t)(nl - p));
            p = nl + 1;
        }
        s->out_len -= (size_t)(p - s->out_buf);
        memmove(s->out_buf, p, s->out_len);
        if (s->out_len == OUT_LINE)
            out_flush(s);
    }
}

/* ---- timers ---- */

static void on_ready_delay(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    mark_ready(ud);
}

static void on_lifetime(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    struct pf__slot *s = ud;
    pf_log(PF_LOG_INFO, "worker %d (pid %d) reached its max lifetime", s->index, (int)s->pid);
    pf__recycle(s);
}

/* ---- hooks around fork ---- */

int pf__program_before(struct pf__slot *s, int out[2])
{
    const struct pf_config *cfg = &s->pool->cfg;
    out[0] = out[1] = -1;
    if (!s->out_buf && cfg->capture_output && !(s->out_buf = malloc(OUT_LINE)))
        return -ENOMEM;
    if (cfg->notify && s->notify_fd < 0) {
        int err = notify_open(s);
        if (err < 0)
            return err;
    }
    if (cfg->capture_output && pipe2(out, O_CLOEXEC) < 0)
        return -errno;
    return 0;
}

void pf__program_child(struct pf__slot *s, const int out[2])
{
    if (s->notify_fd >= 0) {
        char name[64];
        snprintf(name, sizeof name, "@prefork/%d/%d", (int)getppid(), (int)(s - s->pool->slots));
        setenv("NOTIFY_SOCKET", name, 1);
    }
    if (out[1] >= 0) {
        pf__log_keep_stderr(); /* on failure its lines are relayed: tagged twice */
        dup2(out[1], STDOUT_FILENO);
        dup2(out[1], STDERR_FILENO);
        close(out[0]);
        close(out[1]);
    }
}

void pf__program_parent(struct pf__slot *s, const int out[2])
{
    pf_pool *p = s->pool;
    if (out[1] >= 0) {
        close(out[1]);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        s->out_fd = out[0];
        s->out_len = 0;
        if (pf_loop_add(p->loop, out[0], EPOLLIN, on_output, s) < 0)
            out_close(s);
    }
    int err = 0;
    if (p->cfg.ready_delay_ms) {
        pf_timer_init(&s->ready_timer, on_ready_delay, s);
        if ((err = pf_timer_start(p->loop, &s->ready_timer, p->cfg.ready_delay_ms)) < 0)
            pf_log(PF_LOG_ERROR, "worker %d: starting its ready delay: %s; it must say "
                   "READY=1", s->index, strerror(-err));
    }
    if (p->cfg.max_lifetime_ms) {
        uint64_t jitter = p->cfg.max_lifetime_jitter_ms
                              ? (uint64_t)random() % (p->cfg.max_lifetime_jitter_ms + 1u) : 0;
        pf_timer_init(&s->life_timer, on_lifetime, s);
        if ((err = pf_timer_start(p->loop, &s->life_timer, p->cfg.max_lifetime_ms + jitter)) < 0)
            pf_log(PF_LOG_ERROR, "worker %d: starting its max lifetime: %s; it is not "
                   "recycled", s->index, strerror(-err));
    }
}

/* The worker is gone: what it printed last is logged, its timers stop. */
void pf__program_gone(struct pf__slot *s)
{
    if (s->out_fd >= 0) {
        on_output(s->pool->loop, s->out_fd, 0, s); /* the pipe's last bytes */
        if (s->out_fd >= 0)
            out_close(s);
    }
    if (s->pool->cfg.ready_delay_ms)
        pf_timer_stop(s->pool->loop, &s->ready_timer);
    if (s->pool->cfg.max_lifetime_ms)
        pf_timer_stop(s->pool->loop, &s->life_timer);
}

/* The pool is done: a slot's socket and buffer go with it. */
void pf__program_free(struct pf__slot *s)
{
    if (s->notify_fd >= 0)
        close(s->notify_fd);
    s->notify_fd = -1;
    free(s->out_buf);
    s->out_buf = NULL;
}

/* In a new worker: the other slots' program descriptors are the master's. */
void pf__program_close(const struct pf__slot *s)
{
    if (s->notify_fd >= 0)
        close(s->notify_fd);
    if (s->out_fd >= 0)
        close(s->out_fd);
}
