/* py_master.c — the master's Python hooks: the pool's events (ready, a HUP, a worker's exit) passed to the callable serve_wsgi and serve give. */
#include <stdio.h>

#include "py.h"

/*
 * The master runs no application code, but a configuration's hooks are
 * the operator's code and some belong to the master (gunicorn's
 * when_ready, on_reload, child_exit). The master's thread holds the GIL
 * for the whole of pf_pool_run, so its loop calls Python directly, between
 * two events: a hook that blocks stalls the supervision, as it would in
 * gunicorn's arbiter.
 */

static PyObject *on_event; /* on_event(kind, index, generation, pid, status) */
static int (*tls_reload)(void *ud, char *why, size_t size); /* the reload before ours */

static PyObject *call(const char *kind, int index, unsigned generation, pid_t pid, int status)
{
    return PyObject_CallFunction(on_event, "siIii", kind, index, generation, (int)pid, status);
}

static void event(void *ud, const struct pf_event *ev)
{
    static const char *const kinds[] = {
        [PF_EVENT_READY] = "ready",
        [PF_EVENT_RELOADED] = "reloaded",
        [PF_EVENT_WORKER_EXIT] = "worker_exit",
    };
    (void)ud;
    if ((size_t)ev->kind >= sizeof kinds / sizeof *kinds)
        return; /* an event of a newer library: no hook for it */
    PyObject *r = call(kinds[ev->kind], ev->index, ev->generation, ev->pid, ev->status);
    if (!r)
        py_log_exception("a hook failed in the master:");
    Py_XDECREF(r);
}

/* HUP: the hook first, so that one that raises leaves everything as it
 * was (the certificates too); the reload then fails with its traceback. */
static int reload(void *ud, char *why, size_t size)
{
    PyObject *r = call("reload", -1, 0, 0, 0);
    if (!r) {
        py_log_exception("the on_reload hook failed:");
        snprintf(why, size, "the on_reload hook raised (its traceback is above)");
        return -1;
    }
    Py_DECREF(r);
    return tls_reload ? tls_reload(ud, why, size) : 0;
}

void py_master_hooks(PyObject *fn, struct pf_service *svc)
{
    if (fn == Py_None)
        return;
    on_event = Py_NewRef(fn);
    tls_reload = svc->on_master_reload;
    svc->on_master_reload = reload;
    svc->on_master_event = event;
}
