/* py_watch.c — --timeout for Python: the stuck request and its Python stack go to the error log before the master kills the worker. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "py.h"

/*
 * The master sees a worker stuck in Python by its heartbeat, which stops
 * while the loop does not run; it then sends TERM (which a worker only
 * reads from its loop) and SIGKILL a grace period later (5 s). Before that,
 * a thread of this worker notices that a request has been in Python for
 * the timeout, logs it, and has faulthandler (registered for DUMP_SIG)
 * print the Python stack of every thread into a pipe, which it copies into
 * the error log line by line. faulthandler's dump is async-signal-safe and
 * runs in the stuck thread itself, so it works in a busy loop or a
 * blocking call alike. With --threads the loop runs on while a thread is
 * stuck, so the heartbeat does not stop by itself: pf_worker_hung stops it.
 *
 * Each thread that calls the app has a slot (0: the loop's thread). The
 * cost per request is a few relaxed stores and a copy of the request line
 * (py_watch_enter/leave); the thread wakes up four times per timeout, at
 * most every 250 ms.
 */

#define LINE_MAX_SHOWN 120

struct slot {
    _Atomic uint64_t entered_ms; /* 0: not in the app */
    _Atomic uint64_t seq;        /* requests entered */
    pthread_t thread;
    char line[LINE_MAX_SHOWN];   /* "GET /path", torn only while it changes */
    uint64_t reported;
};

static struct slot *slots;
static int nslots;
static unsigned timeout;
static pf_worker *worker;
static int dump_pipe[2] = {-1, -1};

#define DUMP_SIG (SIGRTMIN + 4)

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void py_watch_thread(int slot)
{
    if (timeout)
        slots[slot].thread = pthread_self();
}

void py_watch_enter(int slot, const struct http_request *q)
{
    if (!timeout)
        return;
    struct slot *s = &slots[slot];
    if (q)
        snprintf(s->line, sizeof s->line, "%.*s %.*s", (int)q->method_len, q->method_name,
                 (int)(q->target_len > 100 ? 100 : q->target_len), q->target);
    else
        snprintf(s->line, sizeof s->line, "a connection");
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed);
    atomic_store_explicit(&s->entered_ms, mono_ms(), memory_order_release);
}

void py_watch_leave(int slot)
{
    if (timeout)
        atomic_store_explicit(&slots[slot].entered_ms, 0, memory_order_relaxed);
}

/* Copy what faulthandler wrote into the log, until it has been quiet for
 * 200 ms. */
static void copy_dump(void)
{
    char buf[8192];
    size_t len = 0;
    struct pollfd p = {.fd = dump_pipe[0], .events = POLLIN};
    while (poll(&p, 1, 200) > 0) {
        ssize_t n = read(dump_pipe[0], buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            size_t line = (size_t)(nl - buf);
            pf_log(PF_LOG_WARN, "  %.*s", (int)line, buf);
            memmove(buf, nl + 1, len - line - 1);
            len -= line + 1;
        }
        if (len == sizeof buf - 1)
            len = 0; /* a line longer than the buffer: dropped */
    }
}

/* The first stuck request of slot s is reported, once. */
static bool check(struct slot *s)
{
    uint64_t at = atomic_load_explicit(&s->entered_ms, memory_order_acquire);
    uint64_t n = atomic_load_explicit(&s->seq, memory_order_relaxed);
    if (!at || n == s->reported || mono_ms() - at < timeout)
        return false;
    s->reported = n;
    char line[sizeof s->line];
    memcpy(line, s->line, sizeof line);
    line[sizeof line - 1] = '\0';
    pf_log(PF_LOG_WARN, "request '%s' stuck in Python for %llu ms (--timeout); the worker is "
           "replaced. The Python stack:", line, (unsigned long long)(mono_ms() - at));
    pthread_kill(s->thread, DUMP_SIG);
    copy_dump();
    return true;
}

static void *watch(void *ud)
{
    (void)ud;
    unsigned tick = timeout / 4 < 250 ? (timeout / 4 ? timeout / 4 : 1) : 250;
    bool hung = false;
    for (;;) {
        struct timespec ts = {tick / 1000, (long)(tick % 1000) * 1000000};
        nanosleep(&ts, NULL);
        for (int i = 0; i < nslots; i++)
            if (check(&slots[i]) && !hung && worker) {
                pf_worker_hung(worker);
                hung = true;
            }
    }
    return NULL;
}

/* faulthandler.register(DUMP_SIG, file=pipe, all_threads=True). */
static int register_dump(void)
{
    PyObject *fh = PyImport_ImportModule("faulthandler");
    if (!fh)
        return -1;
    PyObject *reg = PyObject_GetAttrString(fh, "register");
    PyObject *args = Py_BuildValue("(i)", DUMP_SIG);
    PyObject *kw = Py_BuildValue("{s:i,s:O}", "file", dump_pipe[1], "all_threads", Py_True);
    PyObject *r = reg && args && kw ? PyObject_Call(reg, args, kw) : NULL;
    Py_XDECREF(reg);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_DECREF(fh);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

int py_watch_start(unsigned timeout_ms, int n, pf_worker *w)
{
    if (!timeout_ms)
        return 0;
    slots = calloc((size_t)n, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    nslots = n;
    worker = w;
    if (pipe2(dump_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    if (register_dump() < 0) {
        py_log_exception("faulthandler.register failed; no Python stack on --timeout");
        return 0;
    }
    timeout = timeout_ms;
    slots[0].thread = pthread_self();
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread takes no signal */
    int err = pthread_create(&t, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return -err;
    pthread_detach(t);
    return 0;
}
