/* py_log.c — Python exceptions and text into the pool's error log, one log line per line. */
#include <string.h>

#include "py.h"

void py_log_text(enum pf_log_level level, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        if (len > 0)
            pf_log(level, "%.*s", (int)len, p);
        len += nl != NULL;
        p += len;
        n -= len;
    }
}

/* traceback.format_exception joined: a new str, or NULL. */
static PyObject *format_exception(PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *mod = PyImport_ImportModule("traceback");
    if (!mod)
        return NULL;
    PyObject *lines = PyObject_CallMethod(mod, "format_exception", "OOO", type,
                                          value ? value : Py_None, tb ? tb : Py_None);
    Py_DECREF(mod);
    if (!lines)
        return NULL;
    PyObject *empty = PyUnicode_FromString("");
    PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    return text;
}

void py_log_exception(const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return;
    PyErr_NormalizeException(&type, &value, &tb);
    pf_log(PF_LOG_ERROR, "%s", what);
    PyObject *text = format_exception(type, value, tb);
    Py_ssize_t n;
    const char *p = text ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (p)
        py_log_text(PF_LOG_ERROR, p, (size_t)n);
    else
        PyErr_Clear();
    Py_XDECREF(text);
    Py_DECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}
