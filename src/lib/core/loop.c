/* loop.c — the event loop: epoll for descriptors, a binary min-heap for timers, a queue of deferred calls. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/core/internal.h"

/* The watcher of one fd. The table is indexed by fd, like the kernel's own
 * descriptor table, so a lookup is one load. `gen` changes every time the
 * slot is reused: an event already fetched by epoll_wait for an fd that a
 * callback closed and reopened in the same batch is recognised as stale. */
struct watch {
    pf_io_fn *cb;
    void *ud;
    unsigned events;
    uint32_t gen;
    bool used;
};

struct pf_loop {
    int epfd;
    struct watch *w;
    size_t nw;
    pf_timer **heap;
    size_t nheap, capheap;
    pf_defer queue;   /* deferred calls started: sentinel of a circular list */
    pf_defer running; /* those this iteration runs (see defer_take) */
    uint64_t now;
    bool stop;
    bool firing;   /* inside run_timers */
    bool no_yield; /* sleep without yielding first (pf__loop_no_yield) */
    struct pf__yield yield; /* whether yields pay here (yield.c) */
};

#define LOOP_BATCH 256

int pf_loop_new(pf_loop **out)
{
    pf_loop *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int err = -errno;
        free(l);
        return err;
    }
    l->now = pf__mono_ms();
    l->queue.prev = l->queue.next = &l->queue;
    l->running.prev = l->running.next = &l->running;
    *out = l;
    return 0;
}

/* The loop is going away: deferred calls still queued become inactive. */
static void defer_forget_all(pf_defer *head)
{
    while (head->next != head)
        pf_defer_stop(NULL, head->next);
}

void pf_loop_free(pf_loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    defer_forget_all(&l->queue);
    defer_forget_all(&l->running);
    free(l->w);
    free(l->heap);
    free(l);
}

uint64_t pf_loop_now(const pf_loop *l) { return l->now; }

void pf_loop_stop(pf_loop *l) { l->stop = true; }

/* Grow the watcher table to hold fd; amortised doubling. */
static int watch_reserve(pf_loop *l, int fd)
{
    if ((size_t)fd < l->nw)
        return 0;
    size_t n = l->nw ? l->nw : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct watch *w = realloc(l->w, n * sizeof *w);
    if (!w)
        return -ENOMEM;
    memset(w + l->nw, 0, (n - l->nw) * sizeof *w);
    l->w = w;
    l->nw = n;
    return 0;
}

static struct watch *watch_get(pf_loop *l, int fd)
{
    if (fd < 0 || (size_t)fd >= l->nw || !l->w[fd].used)
        return NULL;
    return &l->w[fd];
}

static int ctl(pf_loop *l, int op, int fd, unsigned events, uint32_t gen)
{
    struct epoll_event ev = {.events = events,
                             .data.u64 = (uint64_t)gen << 32 | (uint32_t)fd};
    return epoll_ctl(l->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int pf_loop_add(pf_loop *l, int fd, unsigned events, pf_io_fn *cb, void *ud)
{
    if (fd < 0 || !cb)
        return -EINVAL;
    if (watch_get(l, fd))
        return -EEXIST;
    int err = watch_reserve(l, fd);
    if (err < 0)
        return err;
    struct watch *w = &l->w[fd];
    err = ctl(l, EPOLL_CTL_ADD, fd, events, w->gen + 1);
    if (err < 0)
        return err;
    w->gen++;
    w->cb = cb;
    w->ud = ud;
    w->events = events;
    w->used = true;
    return 0;
}

int pf_loop_mod(pf_loop *l, int fd, unsigned events)
{
    struct watch *w = watch_get(l, fd);
    if (!w)
        return -ENOENT;
    if (w->events == events)
        return 0;
    int err = ctl(l, EPOLL_CTL_MOD, fd, events, w->gen);
    if (err == 0)
        w->events = events;
    return err;
}

/* Drop the watcher without telling epoll, for an fd about to be closed
 * that nothing else shares: the close removes it from epoll by itself, and
 * EPOLL_CTL_DEL would be one more system call per connection. */
void pf__loop_forget(pf_loop *l, int fd)
{
    struct watch *w = watch_get(l, fd);
    if (w) {
        w->used = false;
        w->gen++;
    }
}

int pf_loop_del(pf_loop *l, int fd)
{
    struct watch *w = watch_get(l, fd);
    if (!w)
        return -ENOENT;
    w->used = false;
    w->gen++;
    /* The fd may already be closed; then the kernel dropped it itself,
     * unless another descriptor shares the open file (see prefork.h). */
    int err = ctl(l, EPOLL_CTL_DEL, fd, 0, 0);
    return err == -EBADF || err == -ENOENT ? 0 : err;
}

/* ---- timers: a min-heap on `due`; t->slot is the heap index + 1 ---- */

static void heap_set(pf_loop *l, size_t i, pf_timer *t)
{
    l->heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(pf_loop *l, size_t i)
{
    pf_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->due <= t->due)
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void heap_down(pf_loop *l, size_t i)
{
    pf_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[c]->due)
            c++;
        if (t->due <= l->heap[c]->due)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void pf_timer_init(pf_timer *t, pf_timer_fn *cb, void *ud)
{
    t->due = 0;
    t->later = 0;
    t->slot = 0;
    t->cb = cb;
    t->ud = ud;
}

void pf_timer_stop(pf_loop *l, pf_timer *t)
{
    t->later = 0;
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    pf_timer *last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_set(l, i, last);
    heap_up(l, i);
    heap_down(l, last->slot - 1);
}

/* Room for one more timer: 0 or -ENOMEM. */
static int heap_reserve(pf_loop *l)
{
    if (l->nheap < l->capheap)
        return 0;
    size_t n = l->capheap ? 2 * l->capheap : 16;
    pf_timer **h = realloc(l->heap, n * sizeof *h);
    if (!h)
        return -ENOMEM;
    l->heap = h;
    l->capheap = n;
    return 0;
}

/* A connection's idle timeout is restarted by every request, always later
 * than before: rather than two heap operations each time (with 10,000
 * connections, 2 x 14 levels of cache misses), the timer keeps its place
 * and remembers the later time; run_timers moves it there when the earlier
 * one comes, once per timeout at most. An active timer due earlier moves
 * up in place: it keeps its slot, so that start cannot fail. */
int pf_timer_start(pf_loop *l, pf_timer *t, uint64_t ms)
{
    /* While timers fire, a 0 ms timer must wait for the next turn, or a
     * callback restarting itself would keep the loop inside run_timers. */
    if (ms == 0 && l->firing)
        ms = 1;
    uint64_t due = ms > UINT64_MAX - l->now ? UINT64_MAX : l->now + ms;
    if (t->slot && due >= t->due) {
        t->later = due > t->due ? due : 0;
        return 0;
    }
    t->later = 0;
    if (t->slot) {
        t->due = due;
        heap_up(l, t->slot - 1);
        return 0;
    }
    int err = heap_reserve(l);
    if (err < 0)
        return err;
    t->due = due;
    heap_set(l, l->nheap++, t);
    heap_up(l, l->nheap - 1);
    return 0;
}

/* Milliseconds epoll_wait may sleep: until the first timer, or for ever. */
static int next_timeout(const pf_loop *l)
{
    if (l->nheap == 0)
        return -1;
    uint64_t due = l->heap[0]->due;
    if (due <= l->now)
        return 0;
    return due - l->now > INT_MAX ? INT_MAX : (int)(due - l->now);
}

/* Fire the timers due now. A timer (re)started from a callback is due
 * later than now (see pf_timer_start), so this ends. */
static void run_timers(pf_loop *l)
{
    l->firing = true;
    while (l->nheap > 0 && l->heap[0]->due <= l->now && !l->stop) {
        pf_timer *t = l->heap[0];
        if (t->later) { /* restarted since: move it to its real time */
            t->due = t->later;
            t->later = 0;
            heap_down(l, 0);
            continue;
        }
        pf_timer_stop(l, t);
        t->cb(l, t, t->ud);
    }
    l->firing = false;
}

/* ---- deferred calls: circular lists through two sentinels. Started
 * calls join `queue`; before each epoll_wait the queue moves whole to
 * `running`, which that iteration empties, so a call queued meanwhile waits
 * for the next iteration. A stop unlinks a call from whichever list holds
 * it. ---- */

void pf_defer_init(pf_defer *d, pf_defer_fn *cb, void *ud)
{
    d->prev = d->next = NULL;
    d->cb = cb;
    d->ud = ud;
}

void pf_defer_start(pf_loop *l, pf_defer *d)
{
    if (d->next)
        return;
    d->prev = l->queue.prev;
    d->next = &l->queue;
    d->prev->next = d;
    l->queue.prev = d;
}

void pf_defer_stop(pf_loop *l, pf_defer *d)
{
    (void)l;
    if (!d->next)
        return;
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->prev = d->next = NULL;
}

/* Append the queue to `running` (which pf_loop_stop from a callback may have left
 * unfinished) and empty it. */
static void defer_take(pf_loop *l)
{
    pf_defer *first = l->queue.next, *last = l->queue.prev;
    if (first == &l->queue)
        return;
    first->prev = l->running.prev;
    first->prev->next = first;
    last->next = &l->running;
    l->running.prev = last;
    l->queue.prev = l->queue.next = &l->queue;
}

static void run_deferred(pf_loop *l)
{
    while (l->running.next != &l->running && !l->stop) {
        pf_defer *d = l->running.next;
        pf_defer_stop(l, d);
        d->cb(l, d, d->ud);
    }
}

static void dispatch(pf_loop *l, const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    struct watch *w = watch_get(l, fd);
    if (w && w->gen == gen)
        w->cb(l, fd, ev->events, w->ud);
}

/* Fetch the ready events, sleeping only when there are none. A poll comes
 * first; with nothing ready, nothing queued and no timer due, the CPU goes
 * once to whatever else is runnable on it (sched_yield) before the loop
 * sleeps. Where threads outnumber CPUs (a proxy, the application or the
 * clients on the same machine), the task yielded to is often the one about
 * to hand this loop its next work, which the second poll then finds without
 * a sleep and a wake-up: those cost several microseconds each, the two
 * extra system calls well under one. On a CPU with nothing else to run
 * sched_yield returns at once; it never repeats, so an idle loop sleeps.
 * Yields that keep the loop away long are given up (yield.c).
 *
 * A loop that others wait on is better off asleep: a sleeping loop is woken
 * the moment its work comes, a yielded one waits for its turn behind the
 * task it yielded to. So the master, which hands connections out in
 * dispatch mode and relays the workers' log lines, does not yield
 * (pf__loop_no_yield; bench/README.md has the figures). */
static int wait_events(pf_loop *l, struct epoll_event *evs, bool busy)
{
    if (l->no_yield && !busy)
        return epoll_wait(l->epfd, evs, LOOP_BATCH, next_timeout(l));
    int n = epoll_wait(l->epfd, evs, LOOP_BATCH, 0);
    if (n != 0 || busy || next_timeout(l) == 0)
        return n;
    if (pf__yield_wanted(&l->yield))
        pf__yield_cpu(&l->yield);
    l->now = pf__mono_ms();
    return epoll_wait(l->epfd, evs, LOOP_BATCH, next_timeout(l));
}

void pf__loop_no_yield(pf_loop *l)
{
    l->no_yield = true;
}

int pf_loop_run(pf_loop *l)
{
    struct epoll_event evs[LOOP_BATCH];
    l->stop = false;
    l->now = pf__mono_ms();
    while (!l->stop) {
        defer_take(l);
        int n = wait_events(l, evs, l->running.next != &l->running);
        if (n < 0 && errno != EINTR)
            return -errno;
        l->now = pf__mono_ms();
        for (int i = 0; i < n && !l->stop; i++)
            dispatch(l, &evs[i]);
        run_deferred(l);
        run_timers(l);
    }
    return 0;
}
