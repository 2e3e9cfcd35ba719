/* py_watch.c — --timeout for Python: the stuck request and its Python stack go to the error log before the master kills the worker. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "py.h"

/*
 * The master sees a worker stuck in Python by its heartbeat, which stops
 * while the loop does not run; it then sends TERM (which a worker only
 * reads from its loop) and SIGKILL a grace period later (5 s). Before that,
 * a thread of this worker notices the same request has been in Python for
 * the timeout, logs it, and has faulthandler (registered for DUMP_SIG)
 * print the Python stack of every thread into a pipe, which it copies into
 * the error log line by line. faulthandler's dump is async-signal-safe and
 * runs in the stuck thread itself, so it works in a busy loop or a
 * blocking call alike.
 *
 * The cost per request is two relaxed stores (py_watch_enter/leave); the
 * thread wakes up four times per timeout, at most every 250 ms.
 */

static _Atomic uint64_t entered_ms; /* 0: not in the app */
static _Atomic uint64_t seq;        /* requests entered */
static unsigned timeout;
static pthread_t main_thread;
static int dump_pipe[2] = {-1, -1};

#define DUMP_SIG (SIGRTMIN + 4)

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void py_watch_enter(pf_loop *loop)
{
    if (!timeout)
        return;
    (void)loop;
    atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed);
    atomic_store_explicit(&entered_ms, mono_ms(), memory_order_relaxed);
}

void py_watch_leave(void)
{
    if (timeout)
        atomic_store_explicit(&entered_ms, 0, memory_order_relaxed);
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

static void *watch(void *ud)
{
    (void)ud;
    unsigned tick = timeout / 4 < 250 ? (timeout / 4 ? timeout / 4 : 1) : 250;
    uint64_t reported = 0;
    for (;;) {
        struct timespec ts = {tick / 1000, (long)(tick % 1000) * 1000000};
        nanosleep(&ts, NULL);
        uint64_t at = atomic_load_explicit(&entered_ms, memory_order_relaxed);
        uint64_t s = atomic_load_explicit(&seq, memory_order_relaxed);
        if (!at || s == reported || mono_ms() - at < timeout)
            continue;
        reported = s;
        pf_log(PF_LOG_WARN, "request stuck in Python for %llu ms (--timeout); its Python stack:",
               (unsigned long long)(mono_ms() - at));
        pthread_kill(main_thread, DUMP_SIG);
        copy_dump();
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

int py_watch_start(unsigned timeout_ms)
{
    if (!timeout_ms)
        return 0;
    if (pipe2(dump_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    if (register_dump() < 0) {
        py_log_exception("faulthandler.register failed; no Python stack on --timeout");
        return 0;
    }
    timeout = timeout_ms;
    main_thread = pthread_self();
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
