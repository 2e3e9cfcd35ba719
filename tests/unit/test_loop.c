/* test_loop.c — tests of the event loop: descriptor watchers, stale events, stopping, the timer heap and deferred calls. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/internal.h"
#include "prefork.h"

/* ---- helpers ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The test's loop, also kept here so that the suite's fini frees it when a
 * failed assertion ends the test early (no leak reports after a failure). */
static pf_loop *test_loop;

static pf_loop *new_loop(void)
{
    cr_assert_eq(pf_loop_new(&test_loop), 0);
    cr_assert_not_null(test_loop);
    return test_loop;
}

static void end_loop(void)
{
    pf_loop_free(test_loop);
    test_loop = NULL;
}

TestSuite(loop, .fini = end_loop);
TestSuite(timer, .fini = end_loop);
TestSuite(defer, .fini = end_loop);

static void make_pipe(int p[2])
{
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void put_byte(int fd)
{
    cr_assert_eq(write(fd, "x", 1), 1);
}

/* Put the file of src under the number fd (free, or to be replaced) and
 * close src: the caller then owns fd only. The lowest-number rule often
 * gives src that very number already. */
static void move_fd(int src, int fd)
{
    if (src == fd)
        return;
    cr_assert_eq(dup3(src, fd, O_CLOEXEC), fd);
    close(src);
}

static void close_pair(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/* Raise the soft descriptor limit so that tests may use high fd numbers. */
static int raise_nofile(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur > INT32_MAX ? INT32_MAX : (int)rl.rlim_cur;
}

/* What an I/O callback saw. */
struct hit {
    int calls;
    int fd;
    unsigned events;
    void *ud;
    pf_loop *loop;
    bool stop; /* stop the loop on the first call */
};

static void record(pf_loop *l, int fd, unsigned events, void *ud)
{
    struct hit *h = ud;
    h->calls++;
    h->fd = fd;
    h->events = events;
    h->ud = ud;
    h->loop = l;
    if (h->stop)
        pf_loop_stop(l);
}

/* A turn counter: a pipe that always holds a byte is readable on every turn
 * of a level-triggered loop, so its callback runs once per epoll_wait. It
 * stops the loop after stop_at turns, which bounds a test by turns, not by
 * time: "nothing happened during 5 turns" needs no sleep. */
struct turns {
    int n, stop_at;
    int p[2];
};

static void count_turn(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)fd;
    (void)events;
    struct turns *t = ud;
    t->n++;
    if (t->stop_at && t->n >= t->stop_at)
        pf_loop_stop(l);
}

static void turns_start(pf_loop *l, struct turns *t, int stop_at)
{
    make_pipe(t->p);
    put_byte(t->p[1]);
    t->n = 0;
    t->stop_at = stop_at;
    cr_assert_eq(pf_loop_add(l, t->p[0], PF_EV_READ, count_turn, t), 0);
}

/* A guard timer: stops a loop that would otherwise wait for ever when the
 * code under test misbehaves, and says so. */
struct guard {
    pf_timer t;
    bool fired;
};

static void guard_fire(pf_loop *l, pf_timer *t, void *ud)
{
    (void)t;
    ((struct guard *)ud)->fired = true;
    pf_loop_stop(l);
}

static void guard_start(pf_loop *l, struct guard *g, uint64_t ms)
{
    g->fired = false;
    pf_timer_init(&g->t, guard_fire, g);
    cr_assert_eq(pf_timer_start(l, &g->t, ms), 0);
}

static void stop_timer_cb(pf_loop *l, pf_timer *t, void *ud)
{
    (void)t;
    (*(int *)ud)++;
    pf_loop_stop(l);
}

/* Run the loop for one turn: the callbacks of what is ready now, then a
 * 0 ms timer stops it. */
static void one_turn(pf_loop *l)
{
    int stops = 0;
    pf_timer t;
    pf_timer_init(&t, stop_timer_cb, &stops);
    cr_assert_eq(pf_timer_start(l, &t, 0), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(stops, 1);
}

/* Two pipes with a byte waiting in each: both read ends ready at once. */
static void two_ready_pipes(int a[2], int b[2])
{
    make_pipe(a);
    make_pipe(b);
    put_byte(a[1]);
    put_byte(b[1]);
}

/* ---- creating a loop ---- */

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

Test(loop, new_uses_one_cloexec_fd_and_free_releases_it, .timeout = 10)
{
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(probe, 0);
    close(probe); /* the lowest free number: epoll_create1 takes it */
    new_loop();
    cr_assert(fd_open(probe), "the loop did not take the lowest free fd");
    cr_assert(fcntl(probe, F_GETFD) & FD_CLOEXEC, "epoll fd is not close-on-exec");
    end_loop();
    cr_assert_not(fd_open(probe), "pf_loop_free did not close the epoll fd");
    pf_loop_free(NULL);
}

Test(loop, free_does_not_close_watched_fds, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    struct hit h = {0};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &h), 0);
    end_loop();
    cr_assert(fd_open(p[0]) && fd_open(p[1]));
    close_pair(p);
}

/* ---- descriptors ---- */

Test(loop, pipe_read_event_has_fd_events_and_ud, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    struct hit h = {.stop = true};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &h), 0);
    put_byte(p[1]);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 1);
    cr_assert_eq(h.fd, p[0]);
    cr_assert_eq(h.ud, &h);
    cr_assert_eq(h.loop, l);
    cr_assert(h.events & PF_EV_READ, "events 0x%x", h.events);
    cr_assert_not(h.events & PF_EV_WRITE);
    end_loop();
    close_pair(p);
}

Test(loop, pipe_write_end_is_writable, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    struct hit h = {.stop = true};
    cr_assert_eq(pf_loop_add(l, p[1], PF_EV_WRITE, record, &h), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 1);
    cr_assert_eq(h.fd, p[1]);
    cr_assert(h.events & PF_EV_WRITE, "events 0x%x", h.events);
    end_loop();
    close_pair(p);
}

/* A socketpair walked through write, read and peer shutdown, with
 * pf_loop_mod switching the interest from inside the callback. */
struct conv {
    int s[2];
    int step;
    unsigned ev[3];
};

static void conv_cb(pf_loop *l, int fd, unsigned events, void *ud)
{
    struct conv *c = ud;
    char buf[8];
    cr_assert_eq(fd, c->s[0]);
    cr_assert_lt(c->step, 3);
    c->ev[c->step] = events;
    switch (c->step++) {
    case 0: /* writable: now wait for data, and for the peer's shutdown */
        cr_assert_eq(pf_loop_mod(l, fd, PF_EV_READ | PF_EV_RDHUP), 0);
        cr_assert_eq(send(c->s[1], "hi", 2, MSG_NOSIGNAL), 2);
        break;
    case 1: /* data */
        cr_assert_eq(recv(fd, buf, sizeof buf, 0), 2);
        cr_assert_eq(memcmp(buf, "hi", 2), 0);
        close(c->s[1]);
        c->s[1] = -1;
        break;
    case 2: /* end of stream */
        cr_assert_eq(recv(fd, buf, sizeof buf, 0), 0);
        pf_loop_stop(l);
        break;
    }
}

Test(loop, socketpair_write_read_rdhup_with_mod, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct conv c = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c.s), 0);
    cr_assert_eq(pf_loop_add(l, c.s[0], PF_EV_WRITE, conv_cb, &c), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(c.step, 3);
    cr_assert(c.ev[0] & PF_EV_WRITE, "0x%x", c.ev[0]);
    cr_assert(c.ev[1] & PF_EV_READ, "0x%x", c.ev[1]);
    cr_assert_not(c.ev[1] & PF_EV_WRITE, "mod did not drop WRITE: 0x%x", c.ev[1]);
    cr_assert(c.ev[2] & PF_EV_RDHUP, "0x%x", c.ev[2]);
    end_loop();
    close(c.s[0]);
}

/* EPOLLERR and EPOLLHUP are reported even when not asked for. */
Test(loop, error_and_hup_are_always_reported, .timeout = 10)
{
    pf_loop *l = new_loop();
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    struct hit err = {0}, hup = {0};
    cr_assert_eq(pf_loop_add(l, a[1], 0, record, &err), 0);
    cr_assert_eq(pf_loop_add(l, b[0], 0, record, &hup), 0);
    close(a[0]); /* the write end now has no reader: EPOLLERR */
    close(b[1]); /* the read end now has no writer: EPOLLHUP */
    struct turns t;
    turns_start(l, &t, 3);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_geq(err.calls, 1);
    cr_assert(err.events & PF_EV_ERROR, "0x%x", err.events);
    cr_assert_geq(hup.calls, 1);
    cr_assert(hup.events & PF_EV_HUP, "0x%x", hup.events);
    end_loop();
    close(a[1]);
    close(b[0]);
    close_pair(t.p);
}

Test(loop, double_add_is_eexist_and_keeps_first_watcher, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    struct hit first = {.stop = true}, second = {.stop = true};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &first), 0);
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &second), -EEXIST);
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_WRITE, record, &first), -EEXIST);
    put_byte(p[1]);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(first.calls, 1);
    cr_assert_eq(second.calls, 0);
    end_loop();
    close_pair(p);
}

Test(loop, mod_and_del_of_unknown_fds_are_enoent, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    cr_assert_eq(pf_loop_mod(l, p[0], PF_EV_READ), -ENOENT); /* never added */
    cr_assert_eq(pf_loop_del(l, p[0]), -ENOENT);
    cr_assert_eq(pf_loop_mod(l, 100000, PF_EV_READ), -ENOENT); /* past the table */
    cr_assert_eq(pf_loop_del(l, 100000), -ENOENT);
    cr_assert_lt(pf_loop_mod(l, -1, PF_EV_READ), 0);
    cr_assert_lt(pf_loop_del(l, -1), 0);

    struct hit h = {0};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &h), 0);
    cr_assert_eq(pf_loop_mod(l, p[1], PF_EV_WRITE), -ENOENT); /* a neighbour */
    cr_assert_eq(pf_loop_del(l, p[0]), 0);
    cr_assert_eq(pf_loop_del(l, p[0]), -ENOENT); /* twice */
    cr_assert_eq(pf_loop_mod(l, p[0], PF_EV_READ), -ENOENT);
    end_loop();
    close_pair(p);
}

Test(loop, add_rejects_bad_fds_and_remembers_nothing, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct hit h = {0};
    cr_assert_lt(pf_loop_add(l, -1, PF_EV_READ, record, &h), 0);

    int p[2];
    make_pipe(p);
    int fd = p[0];
    close(p[0]);
    cr_assert_eq(pf_loop_add(l, fd, PF_EV_READ, record, &h), -EBADF);

    /* epoll refuses regular files (EPERM); the number must stay free. */
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    int file = dup(fileno(f));
    fclose(f);
    move_fd(file, fd);
    cr_assert_eq(pf_loop_add(l, fd, PF_EV_READ, record, &h), -EPERM);
    cr_assert_eq(pf_loop_mod(l, fd, PF_EV_WRITE), -ENOENT);
    cr_assert_eq(pf_loop_del(l, fd), -ENOENT);
    close(fd);

    int q[2];
    make_pipe(q);
    move_fd(q[0], fd);
    h.stop = true;
    cr_assert_eq(pf_loop_add(l, fd, PF_EV_READ, record, &h), 0);
    put_byte(q[1]);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 1);
    cr_assert_eq(h.fd, fd);
    end_loop();
    close(fd);
    close(q[1]);
    close(p[1]);
}

Test(loop, del_of_an_already_closed_fd_is_fine, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    struct hit old = {0};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &old), 0);
    int fd = p[0];
    close(p[0]);
    cr_assert_eq(pf_loop_del(l, fd), 0);

    /* The number is free again for a new descriptor and a new watcher. */
    int q[2];
    make_pipe(q);
    move_fd(q[0], fd);
    struct hit h = {.stop = true};
    cr_assert_eq(pf_loop_add(l, fd, PF_EV_READ, record, &h), 0);
    put_byte(q[1]);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 1);
    cr_assert_eq(old.calls, 0);
    end_loop();
    close(fd);
    close(q[1]);
    close(p[1]);
}

Test(loop, deleted_fd_gets_no_more_events, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    struct hit h = {0};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &h), 0);
    put_byte(p[1]);
    cr_assert_eq(pf_loop_del(l, p[0]), 0);
    struct turns t;
    turns_start(l, &t, 5);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(t.n, 5);
    cr_assert_eq(h.calls, 0);
    end_loop();
    close_pair(p);
    close_pair(t.p);
}

Test(loop, mod_changes_the_interest, .timeout = 10)
{
    pf_loop *l = new_loop();
    int s[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
    struct hit h = {0};
    cr_assert_eq(pf_loop_add(l, s[0], PF_EV_READ, record, &h), 0);
    cr_assert_eq(pf_loop_mod(l, s[0], PF_EV_READ), 0); /* unchanged: fine */
    struct turns t;
    turns_start(l, &t, 4);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 0, "nothing to read, yet called");

    cr_assert_eq(pf_loop_mod(l, s[0], PF_EV_WRITE), 0);
    t.n = 0;
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_geq(h.calls, 3, "writable for 4 turns, called %d times", h.calls);
    cr_assert(h.events & PF_EV_WRITE);

    cr_assert_eq(pf_loop_mod(l, s[0], PF_EV_READ), 0);
    h.calls = 0;
    t.n = 0;
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 0);
    end_loop();
    close_pair(s);
    close_pair(t.p);
}

Test(loop, edge_triggered_fires_once_level_every_turn, .timeout = 10)
{
    pf_loop *l = new_loop();
    int e[2], v[2];
    make_pipe(e);
    make_pipe(v);
    struct hit edge = {0}, level = {0};
    cr_assert_eq(pf_loop_add(l, e[0], PF_EV_READ | PF_EV_EDGE, record, &edge), 0);
    cr_assert_eq(pf_loop_add(l, v[0], PF_EV_READ, record, &level), 0);
    put_byte(e[1]);
    put_byte(v[1]);
    struct turns t;
    turns_start(l, &t, 6);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(edge.calls, 1);
    /* The turn counter may stop the loop before the last turn's other events. */
    cr_assert_geq(level.calls, 5);
    end_loop();
    close_pair(e);
    close_pair(v);
    close_pair(t.p);
}

/* Two readable pipes: whichever callback runs first deletes the other, whose
 * event is already in the same epoll batch; it must not be delivered. A 0 ms
 * timer ends the turn (timers run after the batch). */
struct pair_state {
    int fd[2];
    int calls[2];
    pf_loop *loop;
};

static void delete_other(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)events;
    struct pair_state *s = ud;
    int me = fd == s->fd[0] ? 0 : 1;
    s->calls[me]++;
    if (s->calls[0] + s->calls[1] == 1)
        cr_assert_eq(pf_loop_del(l, s->fd[!me]), 0);
}

Test(loop, callback_deleting_another_fd_in_the_same_batch, .timeout = 10)
{
    pf_loop *l = new_loop();
    int a[2], b[2];
    two_ready_pipes(a, b);
    struct pair_state s = {.fd = {a[0], b[0]}};
    cr_assert_eq(pf_loop_add(l, a[0], PF_EV_READ, delete_other, &s), 0);
    cr_assert_eq(pf_loop_add(l, b[0], PF_EV_READ, delete_other, &s), 0);
    one_turn(l);
    cr_assert_eq(s.calls[0] + s.calls[1], 1, "calls %d and %d", s.calls[0], s.calls[1]);
    end_loop();
    close_pair(a);
    close_pair(b);
}

/* The same, but the callback also closes the other fd and puts a new
 * descriptor under its number (dup3), watched by a new callback. The stale
 * event fetched for the old descriptor must not reach the new watcher. */
struct reuse_state {
    int fd[2];
    int calls[2];
    int newcalls;
    int newpipe[2];
    unsigned newevents;
    int reused;
};

static void new_watcher(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)l;
    struct reuse_state *s = ud;
    cr_assert_eq(fd, s->reused);
    s->newcalls++;
    s->newevents = events;
}

static void reuse_other(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)events;
    struct reuse_state *s = ud;
    int me = fd == s->fd[0] ? 0 : 1;
    s->calls[me]++;
    if (s->calls[0] + s->calls[1] != 1)
        return;
    int other = s->fd[!me];
    cr_assert_eq(pf_loop_del(l, other), 0);
    close(other);
    /* The new descriptor is readable too: were the stale event handed to
     * the new watcher, nothing could tell it apart from a real one. */
    cr_assert_eq(dup3(s->newpipe[0], other, O_CLOEXEC), other);
    s->reused = other;
    cr_assert_eq(pf_loop_add(l, other, PF_EV_READ | PF_EV_WRITE, new_watcher, s), 0);
}

Test(loop, stale_event_not_delivered_to_reused_fd_number, .timeout = 10)
{
    pf_loop *l = new_loop();
    int a[2], b[2];
    two_ready_pipes(a, b);
    struct reuse_state s = {.fd = {a[0], b[0]}, .reused = -1};
    make_pipe(s.newpipe);
    put_byte(s.newpipe[1]);
    cr_assert_eq(pf_loop_add(l, a[0], PF_EV_READ, reuse_other, &s), 0);
    cr_assert_eq(pf_loop_add(l, b[0], PF_EV_READ, reuse_other, &s), 0);
    one_turn(l);
    cr_assert_eq(s.calls[0] + s.calls[1], 1);
    cr_assert_eq(s.newcalls, 0, "the stale event reached the new watcher (events 0x%x)",
                 s.newevents);

    /* The new watcher works from the next epoll_wait on. */
    one_turn(l);
    cr_assert_eq(s.newcalls, 1);
    cr_assert(s.newevents & PF_EV_READ);
    cr_assert_not(s.newevents & PF_EV_WRITE, "a read end is not writable: 0x%x", s.newevents);
    end_loop();
    close(s.reused);
    close(a[0] == s.reused ? b[0] : a[0]);
    close(a[1]);
    close(b[1]);
    close_pair(s.newpipe);
}

/* Deleting and re-adding the same open fd in the same batch: the event
 * fetched for the first watcher is not the second watcher's. */
struct readd_state {
    int fd[2];
    int calls[2];
    struct hit fresh;
};

static void readd_other(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)events;
    struct readd_state *s = ud;
    int me = fd == s->fd[0] ? 0 : 1;
    s->calls[me]++;
    if (s->calls[0] + s->calls[1] != 1)
        return;
    cr_assert_eq(pf_loop_del(l, s->fd[!me]), 0);
    cr_assert_eq(pf_loop_add(l, s->fd[!me], PF_EV_READ, record, &s->fresh), 0);
}

Test(loop, stale_event_not_delivered_after_del_and_readd, .timeout = 10)
{
    pf_loop *l = new_loop();
    int a[2], b[2];
    two_ready_pipes(a, b);
    struct readd_state s = {.fd = {a[0], b[0]}};
    cr_assert_eq(pf_loop_add(l, a[0], PF_EV_READ, readd_other, &s), 0);
    cr_assert_eq(pf_loop_add(l, b[0], PF_EV_READ, readd_other, &s), 0);
    one_turn(l);
    cr_assert_eq(s.calls[0] + s.calls[1], 1);
    cr_assert_eq(s.fresh.calls, 0, "the stale event reached the re-added watcher");
    one_turn(l);
    cr_assert_eq(s.fresh.calls, 1);
    end_loop();
    close_pair(a);
    close_pair(b);
}

/* A callback may delete and close its own fd. */
static void self_close(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)events;
    (*(int *)ud)++;
    cr_assert_eq(pf_loop_del(l, fd), 0);
    close(fd);
}

Test(loop, callback_deletes_and_closes_its_own_fd, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    put_byte(p[1]);
    int calls = 0;
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, self_close, &calls), 0);
    struct turns t;
    turns_start(l, &t, 4);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(calls, 1);
    cr_assert_not(fd_open(p[0]));
    end_loop();
    close(p[1]);
    close_pair(t.p);
}

Test(loop, stop_from_callback_returns_and_run_resumes, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    put_byte(p[1]);
    struct hit h = {.stop = true};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &h), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 1);
    /* Level-triggered and not drained: a new run delivers it again. */
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(h.calls, 2);
    end_loop();
    close_pair(p);
}

Test(loop, stop_from_timer_returns, .timeout = 10)
{
    pf_loop *l = new_loop();
    int stops = 0;
    pf_timer t;
    pf_timer_init(&t, stop_timer_cb, &stops);
    cr_assert_eq(pf_timer_start(l, &t, 10), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(stops, 1);
    cr_assert_not(pf_timer_active(&t));
    end_loop();
}

/* A callback adds a very high fd, which grows the watcher table while the
 * loop is dispatching (a use-after-free here shows under ASan). */
struct grow_state {
    int high;
    struct hit hit;
    int calls;
};

static void add_high(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)fd;
    (void)events;
    struct grow_state *g = ud;
    if (g->calls++ == 0)
        cr_assert_eq(pf_loop_add(l, g->high, PF_EV_READ, record, &g->hit), 0);
}

Test(loop, high_fd_added_from_a_callback, .timeout = 10)
{
    int limit = raise_nofile();
    int high = limit > 5000 ? 4999 : limit - 1;
    cr_assert_gt(high, 200);
    pf_loop *l = new_loop();
    int p[2], q[2];
    make_pipe(p);
    make_pipe(q);
    put_byte(p[1]);
    put_byte(q[1]);
    cr_assert_eq(dup3(q[0], high, O_CLOEXEC), high);
    struct grow_state g = {.high = high, .hit = {.stop = true}};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, add_high, &g), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(g.hit.calls, 1);
    cr_assert_eq(g.hit.fd, high);
    end_loop();
    close_pair(p);
    close_pair(q);
    close(high);
}

/* More ready descriptors than one epoll_wait batch returns. */
#define MANY 300

struct many_state {
    int seen[MANY];
    int done;
};

struct many_fd {
    struct many_state *s;
    int i;
};

static void drain_one(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)events;
    struct many_fd *m = ud;
    char c;
    cr_assert_eq(read(fd, &c, 1), 1);
    m->s->seen[m->i]++;
    if (++m->s->done == MANY)
        pf_loop_stop(l);
}

Test(loop, more_ready_fds_than_one_batch, .timeout = 10)
{
    raise_nofile();
    pf_loop *l = new_loop();
    static int p[MANY][2];
    static struct many_fd m[MANY];
    static struct many_state s;
    for (int i = 0; i < MANY; i++) {
        make_pipe(p[i]);
        put_byte(p[i][1]);
        m[i] = (struct many_fd){&s, i};
        cr_assert_eq(pf_loop_add(l, p[i][0], PF_EV_READ, drain_one, &m[i]), 0);
    }
    struct guard g;
    guard_start(l, &g, 5000);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_not(g.fired, "only %d of %d fds were served", s.done, MANY);
    for (int i = 0; i < MANY; i++)
        cr_assert_eq(s.seen[i], 1, "fd %d served %d times", i, s.seen[i]);
    end_loop();
    for (int i = 0; i < MANY; i++)
        close_pair(p[i]);
}

/* ---- timers ---- */

struct fired {
    int calls;
    uint64_t now;      /* pf_loop_now at the call */
    uint64_t real;     /* the monotonic clock at the call */
    bool active;       /* pf_timer_active inside the call */
    bool stop;
};

static void timer_record(pf_loop *l, pf_timer *t, void *ud)
{
    struct fired *f = ud;
    f->calls++;
    f->now = pf_loop_now(l);
    f->real = mono_ms();
    f->active = pf_timer_active(t);
    if (f->stop)
        pf_loop_stop(l);
}

Test(timer, init_is_inactive_and_stop_of_inactive_is_harmless, .timeout = 10)
{
    pf_loop *l = new_loop();
    pf_timer t;
    memset(&t, 0xa5, sizeof t);
    struct fired f = {0};
    pf_timer_init(&t, timer_record, &f);
    cr_assert_not(pf_timer_active(&t));
    cr_assert_eq(t.cb, timer_record);
    cr_assert_eq(t.ud, &f);
    pf_timer_stop(l, &t);
    pf_timer_stop(l, &t);
    cr_assert_not(pf_timer_active(&t));
    cr_assert_eq(pf_timer_start(l, &t, 1000), 0);
    cr_assert(pf_timer_active(&t));
    pf_timer_stop(l, &t);
    pf_timer_stop(l, &t);
    cr_assert_not(pf_timer_active(&t));
    end_loop();
}

Test(timer, fires_once_after_its_delay, .timeout = 10)
{
    uint64_t t0 = mono_ms();
    pf_loop *l = new_loop();
    uint64_t start = pf_loop_now(l);
    cr_assert_geq(start, t0);
    struct fired f = {.stop = true};
    pf_timer t;
    pf_timer_init(&t, timer_record, &f);
    cr_assert_eq(pf_timer_start(l, &t, 50), 0);
    cr_assert(pf_timer_active(&t));
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(f.calls, 1);
    cr_assert_not(f.active, "a one-shot timer is inactive in its callback");
    cr_assert_geq(f.now, start + 50);
    cr_assert_geq(f.real, t0 + 50, "fired %llu ms after start",
                  (unsigned long long)(f.real - t0));
    cr_assert_not(pf_timer_active(&t));
    end_loop();
}

/* 200 timers with random delays fire in the order of their due times. */
#define NRANDOM 200

struct order_state {
    int order[NRANDOM];
    uint64_t ms[NRANDOM];
    uint64_t start;
    int n;
    pf_timer t[NRANDOM];
    bool bad_now, bad_active;
};

static void order_cb(pf_loop *l, pf_timer *t, void *ud)
{
    struct order_state *s = ud;
    int i = (int)(t - s->t);
    if (pf_loop_now(l) < s->start + s->ms[i])
        s->bad_now = true;
    if (pf_timer_active(t))
        s->bad_active = true;
    s->order[s->n++] = i;
    if (s->n == NRANDOM)
        pf_loop_stop(l);
}

Test(timer, two_hundred_random_timers_fire_in_due_order, .timeout = 10)
{
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    pf_loop *l = new_loop();
    static struct order_state s;
    s.start = pf_loop_now(l);
    for (int i = 0; i < NRANDOM; i++) {
        s.ms[i] = (uint64_t)(rand() % 400);
        pf_timer_init(&s.t[i], order_cb, &s);
        cr_assert_eq(pf_timer_start(l, &s.t[i], s.ms[i]), 0);
    }
    struct guard g;
    guard_start(l, &g, 5000);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_not(g.fired, "seed %u: only %d timers fired", seed, s.n);
    cr_assert_eq(s.n, NRANDOM);
    cr_assert_not(s.bad_now, "seed %u: a timer fired before its due time", seed);
    cr_assert_not(s.bad_active, "seed %u: a timer was active in its callback", seed);
    int count[NRANDOM] = {0};
    for (int k = 0; k < NRANDOM; k++) {
        count[s.order[k]]++;
        if (k > 0)
            cr_assert_leq(s.ms[s.order[k - 1]], s.ms[s.order[k]],
                          "seed %u: fired %llu ms before %llu ms", seed,
                          (unsigned long long)s.ms[s.order[k - 1]],
                          (unsigned long long)s.ms[s.order[k]]);
    }
    for (int i = 0; i < NRANDOM; i++)
        cr_assert_eq(count[i], 1, "seed %u: timer %d fired %d times", seed, i, count[i]);
    end_loop();
}

/* A stops B before B is due; D is stopped before the loop runs; C ends it. */
struct stop_state {
    pf_timer a, b, c, d;
    struct fired fb, fd, fc;
    int a_calls;
};

static void stop_b(pf_loop *l, pf_timer *t, void *ud)
{
    (void)t;
    struct stop_state *s = ud;
    s->a_calls++;
    cr_assert(pf_timer_active(&s->b));
    pf_timer_stop(l, &s->b);
    cr_assert_not(pf_timer_active(&s->b));
}

Test(timer, stopped_before_due_never_fires, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct stop_state s = {.fc = {.stop = true}};
    pf_timer_init(&s.a, stop_b, &s);
    pf_timer_init(&s.b, timer_record, &s.fb);
    pf_timer_init(&s.c, timer_record, &s.fc);
    pf_timer_init(&s.d, timer_record, &s.fd);
    cr_assert_eq(pf_timer_start(l, &s.a, 20), 0);
    cr_assert_eq(pf_timer_start(l, &s.b, 80), 0);
    cr_assert_eq(pf_timer_start(l, &s.c, 200), 0);
    cr_assert_eq(pf_timer_start(l, &s.d, 10), 0);
    pf_timer_stop(l, &s.d);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(s.a_calls, 1);
    cr_assert_eq(s.fb.calls, 0);
    cr_assert_eq(s.fd.calls, 0);
    cr_assert_eq(s.fc.calls, 1);
    end_loop();
}

/* Two timers due in the same run: the first to fire stops the other. */
struct race_state {
    pf_timer t[2];
    int calls[2];
};

static void stop_sibling(pf_loop *l, pf_timer *t, void *ud)
{
    struct race_state *s = ud;
    int me = t == &s->t[0] ? 0 : 1;
    s->calls[me]++;
    pf_timer_stop(l, &s->t[!me]);
}

Test(timer, callback_stops_another_due_timer, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct race_state s = {0};
    for (int i = 0; i < 2; i++) {
        pf_timer_init(&s.t[i], stop_sibling, &s);
        cr_assert_eq(pf_timer_start(l, &s.t[i], 0), 0);
    }
    struct fired end = {.stop = true};
    pf_timer e;
    pf_timer_init(&e, timer_record, &end);
    cr_assert_eq(pf_timer_start(l, &e, 30), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(s.calls[0] + s.calls[1], 1, "calls %d and %d", s.calls[0], s.calls[1]);
    end_loop();
}

Test(timer, restart_moves_an_active_timer_earlier, .timeout = 10)
{
    pf_loop *l = new_loop();
    uint64_t start = pf_loop_now(l);
    struct fired f = {.stop = true};
    pf_timer t;
    pf_timer_init(&t, timer_record, &f);
    cr_assert_eq(pf_timer_start(l, &t, 60000), 0);
    cr_assert_eq(pf_timer_start(l, &t, 20), 0);
    cr_assert(pf_timer_active(&t));
    struct guard g;
    guard_start(l, &g, 5000);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_not(g.fired, "the restarted timer kept its old due time");
    cr_assert_eq(f.calls, 1);
    cr_assert_geq(f.now, start + 20);
    end_loop();
}

/* T is due at 20 ms; at 5 ms P restarts it for 150 ms from then; at 60 ms
 * Q checks T has not fired; T then fires once, 150 ms after the restart. */
struct later_state {
    pf_timer t, p, q;
    struct fired ft;
    uint64_t restarted_at;
    int q_calls, t_calls_at_q;
    bool t_active_at_q;
};

static void restart_t(pf_loop *l, pf_timer *p, void *ud)
{
    (void)p;
    struct later_state *s = ud;
    s->restarted_at = pf_loop_now(l);
    cr_assert_eq(pf_timer_start(l, &s->t, 150), 0);
}

static void probe_t(pf_loop *l, pf_timer *q, void *ud)
{
    (void)l;
    (void)q;
    struct later_state *s = ud;
    s->q_calls++;
    s->t_calls_at_q = s->ft.calls;
    s->t_active_at_q = pf_timer_active(&s->t);
}

Test(timer, restart_moves_an_active_timer_later, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct later_state s = {.ft = {.stop = true}};
    pf_timer_init(&s.t, timer_record, &s.ft);
    pf_timer_init(&s.p, restart_t, &s);
    pf_timer_init(&s.q, probe_t, &s);
    cr_assert_eq(pf_timer_start(l, &s.t, 20), 0);
    cr_assert_eq(pf_timer_start(l, &s.p, 5), 0);
    cr_assert_eq(pf_timer_start(l, &s.q, 60), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(s.q_calls, 1);
    cr_assert_eq(s.t_calls_at_q, 0, "T fired at its old due time");
    cr_assert(s.t_active_at_q);
    cr_assert_eq(s.ft.calls, 1);
    cr_assert_geq(s.ft.now, s.restarted_at + 150);
    end_loop();
}

/* A periodic timer: restarted from its own callback. */
struct periodic {
    pf_timer t;
    int calls, limit;
    uint64_t last_now;
    bool went_back;
    uint64_t first_now;
};

static void tick(pf_loop *l, pf_timer *t, void *ud)
{
    struct periodic *p = ud;
    uint64_t now = pf_loop_now(l);
    if (p->calls == 0)
        p->first_now = now;
    else if (now < p->last_now)
        p->went_back = true;
    p->last_now = now;
    if (++p->calls == p->limit) {
        pf_loop_stop(l);
        return;
    }
    cr_assert_eq(pf_timer_start(l, t, 2), 0);
}

Test(timer, periodic_restart_from_own_callback, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct periodic p = {.limit = 20};
    pf_timer_init(&p.t, tick, &p);
    cr_assert_eq(pf_timer_start(l, &p.t, 2), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(p.calls, 20);
    cr_assert_not(p.went_back);
    cr_assert_geq(p.last_now, p.first_now + 19 * 2);
    end_loop();
}

/* A timer restarted for 0 ms from its own callback runs again on the next
 * turn: the loop goes back to epoll_wait in between, which the turn counter
 * (an always-readable pipe) proves by being called between every two runs. */
struct zero_state {
    pf_timer t;
    struct turns *turns;
    int calls;
    int last_turn;
    int same_turn; /* runs in the same turn as the previous run */
};

static void zero_again(pf_loop *l, pf_timer *t, void *ud)
{
    struct zero_state *z = ud;
    if (z->calls > 0 && z->turns->n <= z->last_turn)
        z->same_turn++;
    z->last_turn = z->turns->n;
    if (++z->calls == 100) {
        pf_loop_stop(l);
        return;
    }
    cr_assert_eq(pf_timer_start(l, t, 0), 0);
}

static void zero_timer_run(int idle_timers)
{
    pf_loop *l = new_loop();
    struct turns t;
    turns_start(l, &t, 0);
    struct zero_state z = {.turns = &t};
    pf_timer_init(&z.t, zero_again, &z);
    cr_assert_eq(pf_timer_start(l, &z.t, 0), 0);
    pf_timer idle[16];
    struct fired idle_fired = {0};
    for (int i = 0; i < idle_timers; i++) {
        pf_timer_init(&idle[i], timer_record, &idle_fired);
        cr_assert_eq(pf_timer_start(l, &idle[i], 3600 * 1000), 0);
    }
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(z.calls, 100);
    cr_assert_eq(z.same_turn, 0, "%d of 99 restarts ran in the same turn (%d idle timers)",
                 z.same_turn, idle_timers);
    cr_assert_geq(t.n, 100, "fd events delivered in %d turns only", t.n);
    cr_assert_eq(idle_fired.calls, 0);
    end_loop();
    close_pair(t.p);
}

Test(timer, zero_ms_restart_runs_on_the_next_turn, .timeout = 10)
{
    zero_timer_run(0);
}

/* The same with other timers pending but not due: the loop's "at most as many
 * timers as were present" budget then lets the 0 ms timer run several times
 * in one turn. */
Test(timer, zero_ms_restart_runs_on_the_next_turn_with_idle_timers, .timeout = 10)
{
    zero_timer_run(10);
}

/* A callback may free its own timer: the loop must not touch it afterwards
 * (ASan reports a use-after-free otherwise). */
static void free_self(pf_loop *l, pf_timer *t, void *ud)
{
    (*(int *)ud)++;
    free(t);
    pf_loop_stop(l);
}

Test(timer, callback_may_free_its_timer, .timeout = 10)
{
    pf_loop *l = new_loop();
    int calls = 0;
    pf_timer *t = malloc(sizeof *t);
    cr_assert_not_null(t);
    pf_timer_init(t, free_self, &calls);
    cr_assert_eq(pf_timer_start(l, t, 1), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(calls, 1);
    end_loop();
}

/* A timer started from an I/O callback, in the same loop. */
struct io_timer {
    pf_timer t;
    struct fired f;
    uint64_t started_at;
};

static void start_from_io(pf_loop *l, int fd, unsigned events, void *ud)
{
    (void)events;
    struct io_timer *s = ud;
    char c;
    cr_assert_eq(read(fd, &c, 1), 1);
    s->started_at = pf_loop_now(l);
    cr_assert_eq(pf_timer_start(l, &s->t, 30), 0);
}

Test(timer, started_from_an_io_callback, .timeout = 10)
{
    pf_loop *l = new_loop();
    int p[2];
    make_pipe(p);
    put_byte(p[1]);
    struct io_timer s = {.f = {.stop = true}};
    pf_timer_init(&s.t, timer_record, &s.f);
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, start_from_io, &s), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(s.f.calls, 1);
    cr_assert_geq(s.f.now, s.started_at + 30);
    end_loop();
    close_pair(p);
}

/* A delay so long that now + ms overflows must not wrap into the past. */
Test(timer, huge_delay_does_not_fire, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct fired never = {0}, end = {.stop = true};
    pf_timer a, b, e;
    pf_timer_init(&a, timer_record, &never);
    pf_timer_init(&b, timer_record, &never);
    pf_timer_init(&e, timer_record, &end);
    cr_assert_eq(pf_timer_start(l, &a, UINT64_MAX / 2), 0);
    cr_assert_eq(pf_timer_start(l, &b, UINT64_MAX), 0);
    cr_assert_eq(pf_timer_start(l, &e, 20), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(never.calls, 0, "a timer of UINT64_MAX ms fired at once");
    cr_assert(pf_timer_active(&a) && pf_timer_active(&b));
    end_loop();
}

/* Heap integrity: random starts and stops checked against a model after every
 * operation. The check reads the timers' private fields through their
 * documented meaning ("slot: heap index + 1", "later: when it fires"): the
 * active timers' slots must be exactly 1..n, every timer's due must not be
 * below its parent's, and each must fire when the model says, in order. */
#define NMODEL 64

struct model {
    pf_timer t[NMODEL];
    bool active[NMODEL];
    uint64_t due[NMODEL];
    uint64_t start;
    int fired[NMODEL];
    int order[NMODEL];
    int nfired, nexpect;
};

static void check_heap(const struct model *m, unsigned seed, int op)
{
    const pf_timer *at[NMODEL + 1] = {0};
    int n = 0;
    for (int i = 0; i < NMODEL; i++) {
        const pf_timer *t = &m->t[i];
        cr_assert_eq(pf_timer_active(t), m->active[i], "seed %u op %d: timer %d", seed, op, i);
        if (!m->active[i])
            continue;
        n++;
        /* A timer restarted later keeps its place (due) and fires at later. */
        uint64_t fires = t->later ? t->later : t->due;
        cr_assert_eq(fires, m->due[i], "seed %u op %d: timer %d due", seed, op, i);
        cr_assert(t->later == 0 || t->later > t->due, "seed %u op %d: timer %d later %llu, due %llu",
                  seed, op, i, (unsigned long long)t->later, (unsigned long long)t->due);
        cr_assert(t->slot >= 1 && t->slot <= NMODEL, "seed %u op %d: slot %zu", seed, op,
                  t->slot);
        cr_assert_null(at[t->slot], "seed %u op %d: two timers in slot %zu", seed, op, t->slot);
        at[t->slot] = t;
    }
    for (int s = 1; s <= n; s++) {
        cr_assert_not_null(at[s], "seed %u op %d: hole at slot %d of %d", seed, op, s, n);
        if (s > 1)
            cr_assert_leq(at[s / 2]->due, at[s]->due, "seed %u op %d: heap order at %d", seed,
                          op, s);
    }
}

static void model_cb(pf_loop *l, pf_timer *t, void *ud)
{
    struct model *m = ud;
    int i = (int)(t - m->t);
    m->fired[i]++;
    m->order[m->nfired++] = i;
    if (m->nfired == m->nexpect)
        pf_loop_stop(l);
}

Test(timer, heap_integrity_under_random_start_and_stop, .timeout = 10)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    pf_loop *l = new_loop();
    static struct model m;
    m.start = pf_loop_now(l);
    for (int i = 0; i < NMODEL; i++)
        pf_timer_init(&m.t[i], model_cb, &m);
    for (int op = 0; op < 20000; op++) {
        int i = rand() % NMODEL;
        if (rand() % 3 == 0) {
            pf_timer_stop(l, &m.t[i]);
            m.active[i] = false;
        } else {
            /* A narrow range makes equal due times, and their ties, common. */
            uint64_t ms = (uint64_t)(rand() % 150);
            cr_assert_eq(pf_timer_start(l, &m.t[i], ms), 0);
            m.active[i] = true;
            m.due[i] = m.start + ms;
        }
        check_heap(&m, seed, op);
    }
    for (int i = 0; i < NMODEL; i++)
        m.nexpect += m.active[i];
    if (m.nexpect == 0) {
        end_loop();
        return;
    }
    struct guard g;
    guard_start(l, &g, 5000);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_not(g.fired, "seed %u: %d of %d fired", seed, m.nfired, m.nexpect);
    for (int i = 0; i < NMODEL; i++)
        cr_assert_eq(m.fired[i], m.active[i] ? 1 : 0, "seed %u: timer %d fired %d times", seed,
                     i, m.fired[i]);
    for (int k = 1; k < m.nfired; k++)
        cr_assert_leq(m.due[m.order[k - 1]], m.due[m.order[k]], "seed %u: order at %d", seed, k);
    end_loop();
}

/* pf_loop_now is monotonic, close to the monotonic clock, and read once per
 * iteration (stable within a callback). */
struct now_state {
    pf_timer t;
    uint64_t prev;
    int calls;
    bool back, moved_in_callback, outside;
    uint64_t lo;
};

static void now_cb(pf_loop *l, pf_timer *t, void *ud)
{
    struct now_state *s = ud;
    uint64_t now = pf_loop_now(l);
    uint64_t real = mono_ms();
    if (now < s->prev)
        s->back = true;
    if (now < s->lo || now > real)
        s->outside = true;
    s->prev = now;
    uint64_t until = real + 3;
    while (mono_ms() < until)
        ;
    if (pf_loop_now(l) != now)
        s->moved_in_callback = true;
    if (++s->calls == 30)
        pf_loop_stop(l);
    else
        cr_assert_eq(pf_timer_start(l, t, 1), 0);
}

Test(loop, now_is_monotonic_and_cached_per_iteration, .timeout = 10)
{
    uint64_t before = mono_ms();
    pf_loop *l = new_loop();
    uint64_t first = pf_loop_now(l);
    cr_assert_geq(first, before);
    cr_assert_leq(first, mono_ms());
    struct now_state s = {.lo = before};
    pf_timer_init(&s.t, now_cb, &s);
    cr_assert_eq(pf_timer_start(l, &s.t, 1), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(s.calls, 30);
    cr_assert_not(s.back, "pf_loop_now went backwards");
    cr_assert_not(s.outside, "pf_loop_now outside [start, the clock]");
    cr_assert_not(s.moved_in_callback, "pf_loop_now changed inside a callback");
    /* Each callback ends 3 clock milliseconds after its own pf_loop_now at
     * the earliest, and the next reads the clock later: 29 gaps of 3 ms. */
    cr_assert_geq(s.prev, first + 29 * 3, "30 callbacks of 3 ms each, yet now moved %llu ms",
                  (unsigned long long)(s.prev - first));
    end_loop();
}

static uint64_t thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* With nothing to do, the loop polls, yields the CPU once and then sleeps
 * until its timer: 400 ms of waiting take a few milliseconds of CPU at
 * most. A loop that kept polling or yielding would spend most of them. */
Test(loop, an_idle_loop_sleeps_instead_of_spinning, .timeout = 10)
{
    /* The wall clock starts before the loop: a timer counts from the loop's
     * time as of its last turn (here, its creation), not from the call. */
    uint64_t wall = mono_ms();
    pf_loop *l = new_loop();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct hit h = {0};
    cr_assert_eq(pf_loop_add(l, p[0], PF_EV_READ, record, &h), 0);
    struct guard g;
    guard_start(l, &g, 400);
    uint64_t cpu = thread_cpu_ms();
    cr_assert_eq(pf_loop_run(l), 0);
    cpu = thread_cpu_ms() - cpu;
    wall = mono_ms() - wall;
    cr_assert(g.fired);
    cr_assert_eq(h.calls, 0);
    cr_assert_geq(wall, 400);
    cr_assert_lt(cpu, 100, "the idle loop used %llu ms of CPU in %llu ms", (unsigned long long)cpu,
                 (unsigned long long)wall);
    end_loop();
    close(p[0]);
    close(p[1]);
}

/* In a child whose sched_yield is fatal (a seccomp filter: SIGSYS), run a
 * loop with nothing ready until a 50 ms timer stops it; the child's wait
 * status. The filter checks the system call number of the ABI the test was
 * built for, as it runs. */
static int idle_run_where_yield_kills(bool no_yield)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_yield, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
            _exit(3);
        pf_loop *l;
        if (pf_loop_new(&l) < 0)
            _exit(4);
        if (no_yield)
            pf__loop_no_yield(l);
        pf_timer t;
        int calls = 0;
        pf_timer_init(&t, stop_timer_cb, &calls);
        int err = pf_timer_start(l, &t, 50);
        if (err == 0)
            err = pf_loop_run(l);
        pf_loop_free(l);
        _exit(err == 0 && calls == 1 ? 0 : 5);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* A loop yields before it sleeps; one told not to (the master's) never
 * calls sched_yield, and still sleeps until its timer. */
Test(loop, a_no_yield_loop_never_calls_sched_yield, .timeout = 10)
{
    int st = idle_run_where_yield_kills(false);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
              "the default loop did not yield before sleeping (status 0x%x)", st);
    st = idle_run_where_yield_kills(true);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "no-yield loop: status 0x%x", st);
}

/* ---- deferred calls ---- */

/* One deferred call's record: when it ran (the turn counter's value, which
 * the always-ready pipe of struct turns raises once per loop iteration),
 * how often, and in what order among others. */
struct deferred {
    pf_defer d;
    struct turns *turns;
    int *order;       /* shared counter: the order of the calls */
    int calls, turn, rank;
    int again;        /* requeue itself this many more times */
    int last_turn;    /* the turn of the previous call, for requeues */
    bool same_turn;   /* a requeued call ran in the turn that queued it */
    pf_defer *cancel; /* stop this one when called */
    bool stop;        /* stop the loop when called */
};

static void deferred_record(pf_loop *l, pf_defer *d, void *ud)
{
    struct deferred *r = ud;
    cr_assert_not(pf_defer_active(d), "a deferred call is still queued inside its callback");
    r->calls++;
    r->turn = r->turns ? r->turns->n : 0;
    if (r->calls > 1 && r->turn == r->last_turn)
        r->same_turn = true;
    r->last_turn = r->turn;
    if (r->order)
        r->rank = ++*r->order;
    if (r->cancel)
        pf_defer_stop(l, r->cancel);
    if (r->again > 0) {
        r->again--;
        pf_defer_start(l, d);
    } else if (r->stop) {
        pf_loop_stop(l);
    }
}

static void deferred_init(struct deferred *r, struct turns *t, int *order)
{
    memset(r, 0, sizeof *r);
    r->turns = t;
    r->order = order;
    pf_defer_init(&r->d, deferred_record, r);
}

Test(defer, init_is_inactive_and_start_and_stop_are_idempotent, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct deferred r;
    memset(&r.d, 0xa5, sizeof r.d);
    deferred_init(&r, NULL, NULL);
    cr_assert_not(pf_defer_active(&r.d));
    cr_assert_eq(r.d.cb, deferred_record);
    cr_assert_eq(r.d.ud, &r);
    pf_defer_stop(l, &r.d); /* not queued: nothing happens */
    cr_assert_not(pf_defer_active(&r.d));
    pf_defer_start(l, &r.d);
    pf_defer_start(l, &r.d); /* queued already: still queued once */
    cr_assert(pf_defer_active(&r.d));
    pf_defer_stop(l, &r.d);
    cr_assert_not(pf_defer_active(&r.d));
    pf_defer_stop(l, &r.d);
    cr_assert_not(pf_defer_active(&r.d));
}

/* Queued before the loop runs: each runs once, in its first iteration,
 * after that iteration's descriptor events, in the order queued. */
Test(defer, runs_once_in_the_next_iteration_in_queue_order, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct turns t;
    turns_start(l, &t, 3);
    int order = 0;
    struct deferred r[3];
    for (int i = 0; i < 3; i++)
        deferred_init(&r[i], &t, &order);
    pf_defer_start(l, &r[1].d);
    pf_defer_start(l, &r[0].d);
    pf_defer_start(l, &r[2].d);
    pf_defer_start(l, &r[0].d); /* no effect: queued already */
    cr_assert_eq(pf_loop_run(l), 0);
    int want_rank[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r[i].calls, 1, "call %d ran %d times", i, r[i].calls);
        cr_assert_eq(r[i].turn, 1, "call %d ran after %d iterations' events", i, r[i].turn);
        cr_assert_eq(r[i].rank, want_rank[i], "call %d ran as number %d", i, r[i].rank);
        cr_assert_not(pf_defer_active(&r[i].d));
    }
    end_loop();
    close_pair(t.p);
}

/* Queued from its own callback, a call waits for the next iteration: a
 * call that always requeues itself cannot keep the loop inside one turn. */
Test(defer, requeued_from_its_callback_runs_in_the_next_iteration, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct turns t;
    turns_start(l, &t, 0);
    struct deferred r;
    deferred_init(&r, &t, NULL);
    r.again = 49;
    r.stop = true;
    pf_defer_start(l, &r.d);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(r.calls, 50);
    cr_assert_not(r.same_turn, "a requeued call ran in the iteration that queued it");
    cr_assert_eq(r.turn, 50, "50 calls took %d iterations", r.turn);
    end_loop();
    close_pair(t.p);
}

/* Queued from a descriptor's callback (as a response sent a slice at a
 * time is), a call runs after the next iteration's events, not in the
 * iteration that queued it. */
struct io_defer {
    struct turns turns;
    struct deferred r;
    int queued_at;
};

static void queue_on_turn(pf_loop *l, int fd, unsigned events, void *ud)
{
    struct io_defer *s = ud;
    count_turn(l, fd, events, &s->turns);
    if (s->turns.n == 2) {
        s->queued_at = s->turns.n;
        pf_defer_start(l, &s->r.d);
    }
}

Test(defer, queued_from_an_io_callback_runs_in_the_next_iteration, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct io_defer s = {0};
    make_pipe(s.turns.p);
    put_byte(s.turns.p[1]);
    s.turns.stop_at = 5;
    deferred_init(&s.r, &s.turns, NULL);
    cr_assert_eq(pf_loop_add(l, s.turns.p[0], PF_EV_READ, queue_on_turn, &s), 0);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(s.r.calls, 1);
    cr_assert_eq(s.r.turn, s.queued_at + 1, "queued in iteration %d, it ran after iteration %d's events",
                 s.queued_at, s.r.turn);
    end_loop();
    close_pair(s.turns.p);
}

/* While a call is queued the loop polls without sleeping: with nothing
 * else ready and only a far timer, the calls still all run (a loop that
 * slept would wait for the guard, and the test would say so). */
Test(defer, loop_does_not_sleep_while_one_is_queued, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct guard g;
    guard_start(l, &g, 8000);
    struct deferred r;
    deferred_init(&r, NULL, NULL);
    r.again = 99;
    r.stop = true;
    pf_defer_start(l, &r.d);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_not(g.fired, "the loop slept with a deferred call queued");
    cr_assert_eq(r.calls, 100);
    end_loop();
}

/* Stopped before its turn, a call never runs: stopped by the code that
 * queued it, or by another deferred call of the same iteration. */
Test(defer, stopped_before_its_turn_never_runs, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct turns t;
    turns_start(l, &t, 3);
    struct deferred a, b, c;
    deferred_init(&a, &t, NULL);
    deferred_init(&b, &t, NULL);
    deferred_init(&c, &t, NULL);
    a.cancel = &b.d;
    pf_defer_start(l, &a.d);
    pf_defer_start(l, &b.d);
    pf_defer_start(l, &c.d);
    pf_defer_stop(l, &c.d);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 0, "stopped by an earlier call of its iteration, it still ran");
    cr_assert_eq(c.calls, 0, "stopped before the loop ran, it still ran");
    cr_assert_not(pf_defer_active(&b.d));
    end_loop();
    close_pair(t.p);
}

/* pf_loop_stop from a deferred callback returns at once; the calls of that
 * iteration still waiting run when the loop runs again, before the ones
 * queued since. */
Test(defer, stop_from_a_callback_keeps_the_rest_for_the_next_run, .timeout = 10)
{
    pf_loop *l = new_loop();
    int order = 0;
    struct deferred a, b, c;
    deferred_init(&a, NULL, &order);
    deferred_init(&b, NULL, &order);
    deferred_init(&c, NULL, &order);
    a.stop = true;
    c.stop = true;
    pf_defer_start(l, &a.d);
    pf_defer_start(l, &b.d);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 0, "the loop was stopped, yet the next call ran");
    cr_assert(pf_defer_active(&b.d), "a call not yet run is no longer queued");
    pf_defer_start(l, &c.d);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(b.rank, 2);
    cr_assert_eq(c.rank, 3, "a call queued later ran before one kept from the stopped run");
    end_loop();
}

/* A callback may free its own struct: the loop does not touch it after
 * the call (ASan reports a use-after-free otherwise). */
static void defer_free_self(pf_loop *l, pf_defer *d, void *ud)
{
    (*(int *)ud)++;
    free(d);
    pf_loop_stop(l);
}

Test(defer, callback_may_free_its_defer, .timeout = 10)
{
    pf_loop *l = new_loop();
    int calls = 0;
    pf_defer *d = malloc(sizeof *d);
    cr_assert_not_null(d);
    pf_defer_init(d, defer_free_self, &calls);
    pf_defer_start(l, d);
    cr_assert_eq(pf_loop_run(l), 0);
    cr_assert_eq(calls, 1);
    end_loop();
}

/* Freeing a loop with calls queued leaves them inactive, not pointing into
 * freed memory: stopping or requeueing them later is safe. */
Test(defer, freeing_the_loop_leaves_queued_calls_inactive, .timeout = 10)
{
    pf_loop *l = new_loop();
    struct deferred a, b;
    deferred_init(&a, NULL, NULL);
    deferred_init(&b, NULL, NULL);
    pf_defer_start(l, &a.d);
    pf_defer_start(l, &b.d);
    end_loop();
    cr_assert_not(pf_defer_active(&a.d));
    cr_assert_not(pf_defer_active(&b.d));
}

/* How many of n would-be yields the policy allows, each yield taking
 * took_us, or slow_us one in every `every` (0: never). */
static int yields_allowed(struct pf__yield *y, int n, uint64_t took_us, int every, uint64_t slow_us)
{
    int allowed = 0;
    for (int i = 1; i <= n; i++) {
        if (!pf__yield_wanted(y))
            continue;
        allowed++;
        pf__yield_record(y, every && i % every == 0 ? slow_us : took_us);
    }
    return allowed;
}

/* Yields that come back soon are all kept, also with one slow in ten (what
 * plain HTTP with wrk on the same CPUs gave); when most keep the loop away a
 * millisecond or more (a client busy with TLS handshakes), the loop yields
 * once in sixteen times only, and all again once those come back soon. */
Test(yield, slow_yields_are_given_up_and_taken_up_again, .timeout = 10)
{
    struct pf__yield y = {0};
    cr_assert_eq(yields_allowed(&y, 1000, 5, 0, 0), 1000);
    cr_assert_eq(yields_allowed(&y, 1000, 300, 10, 1500), 1000, "one slow yield in ten stopped them");
    y = (struct pf__yield){0};
    cr_assert_eq(yields_allowed(&y, 10, 2000, 0, 0), 5, "five slow yields in a row are enough");
    cr_assert_eq(yields_allowed(&y, 160, 2000, 0, 0), 10, "still slow: one try in sixteen");
    cr_assert_eq(yields_allowed(&y, 640, 1500, 5, 1000), 40, "3 slow in 5 is still too many");
    int n = yields_allowed(&y, 400, 20, 0, 0);
    cr_assert(n > 40 && n < 400, "fast again: %d of 400 allowed", n);
    cr_assert_eq(yields_allowed(&y, 100, 20, 0, 0), 100, "fast again: every yield is back");
}
