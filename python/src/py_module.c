/* py_module.c — the prefork._prefork extension module: its types, run() and the small calls beside it. */
#include <string.h>

#include "py.h"

PyMODINIT_FUNC PyInit__prefork(void);

/* log(level, text): text into the error log at "error", "warn", "info" or
 * "debug", one log line per line. */
static PyObject *py_log(PyObject *self, PyObject *args)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const enum pf_log_level levels[] = {PF_LOG_ERROR, PF_LOG_WARN, PF_LOG_INFO,
                                               PF_LOG_DEBUG};
    const char *level, *text;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "ss#:log", &level, &text, &n))
        return NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(level, names[i]) == 0) {
            py_log_text(levels[i], text, (size_t)n);
            Py_RETURN_NONE;
        }
    return PyErr_Format(PyExc_ValueError, "log level '%s': error, warn, info or debug", level);
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))py_run, METH_VARARGS | METH_KEYWORDS,
     "run(kind, app, loader, options, listen, what, access_log=None, error_log=None,\n"
     "    pidfile=None, uid=-1, gid=-1, upgrade_argv=None, level=0, worker_exit=None,\n"
     "    upgrade_dir=None, capture_output=False, master_event=None, check=False)\n"
     "    -> exit status\n\n"
     "Run the pool until it stops (prefork.serve_wsgi and prefork.serve call it).\n"
     "loader() runs in each worker and returns the application; worker_exit() runs\n"
     "in a worker that leaves cleanly; capture_output: each line the workers print\n"
     "(stdout, stderr) becomes a line of the error log, tagged with its worker;\n"
     "master_event(kind, index, generation, pid, status) runs in the master on the\n"
     "pool's events: \"ready\", \"reloaded\", \"worker_exit\" (status: the wait status),\n"
     "and \"reload\" on HUP, before the new generation (an exception fails the reload);\n"
     "check: read and check every option (certificates too) and return 0, serving nothing."},
    {"worker", py_worker, METH_NOARGS,
     "worker() -> (index, generation) in a worker process, None elsewhere\n\n"
     "index counts from 0 to workers-1 and is reused by a worker's replacement;\n"
     "generation starts at 1 and grows with each reload (HUP)."},
    {"log", py_log, METH_VARARGS,
     "log(level, text): text into the pool's error log, level \"error\", \"warn\",\n"
     "\"info\" or \"debug\", one log line per line of text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "prefork._prefork",
    .m_doc = "The C side of prefork: libprefork's pool and the HTTP/1.1 core, with a WSGI "
             "server on top.",
    .m_size = -1,
    .m_methods = methods,
};

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
    if (PyType_Ready(t) < 0)
        return -1;
    if (!name)
        return 0;
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__prefork(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (add_type(m, &pyw_input_type, NULL) < 0 || add_type(m, &pyw_errors_type, NULL) < 0 ||
        add_type(m, &pyw_start_type, NULL) < 0 || add_type(m, &pyw_write_type, NULL) < 0 ||
        add_type(m, &pyw_wrapper_type, "FileWrapper") < 0 ||
        PyModule_AddStringConstant(m, "version", PF_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
