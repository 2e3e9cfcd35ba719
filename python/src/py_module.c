/* py_module.c — the prefork._prefork extension module: its types and its one entry point, run(). */
#include "py.h"

PyMODINIT_FUNC PyInit__prefork(void);

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))py_run, METH_VARARGS | METH_KEYWORDS,
     "run(kind, app, loader, options, listen, what, access_log=None, error_log=None,\n"
     "    pidfile=None, uid=-1, gid=-1, upgrade_argv=None, level=0, worker_exit=None)\n"
     "    -> exit status\n\n"
     "Run the pool until it stops (prefork.serve_wsgi and prefork.serve call it).\n"
     "loader() runs in each worker and returns the application; worker_exit() runs\n"
     "in a worker that leaves cleanly."},
    {"worker", py_worker, METH_NOARGS,
     "worker() -> (index, generation) in a worker process, None elsewhere\n\n"
     "index counts from 0 to workers-1 and is reused by a worker's replacement;\n"
     "generation starts at 1 and grows with each reload (HUP)."},
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
