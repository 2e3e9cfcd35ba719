/* py_gil.c — a worker's one Python thread: the GIL released while C waits, taken back to call Python. */
#include "py.h"

/* The worker thread's state while the GIL is released, and how deep the
 * calls that took it are (a callback may run inside another). */
static PyThreadState *saved;
static int depth;

void py_gil_worker_start(void)
{
    saved = PyEval_SaveThread();
    depth = 0;
}

void py_enter(void)
{
    if (depth++ == 0)
        PyEval_RestoreThread(saved);
}

void py_leave(void)
{
    if (--depth == 0)
        saved = PyEval_SaveThread();
}

void py_gil_worker_end(void)
{
    if (depth++ == 0 && saved)
        PyEval_RestoreThread(saved);
}
