/* pyw_errors.c — wsgi.errors: a text stream whose lines go to the pool's error log, tagged with the worker. */
#include <stdlib.h>
#include <string.h>

#include "py.h"

/* Text is kept until a newline (or flush) so that a line written in
 * pieces is logged as one. */
struct pyw_errors {
    PyObject_HEAD
    char *buf;
    size_t len;
};

PyObject *pyw_errors;

PyObject *pyw_errors_new(void)
{
    struct pyw_errors *e = PyObject_New(struct pyw_errors, &pyw_errors_type);
    if (e) {
        e->buf = NULL;
        e->len = 0;
    }
    return (PyObject *)e;
}

#define LINE_MAX_KEPT 8192

static void flush(struct pyw_errors *e)
{
    if (e->len)
        py_log_text(PF_LOG_ERROR, e->buf, e->len);
    e->len = 0;
}

static int keep(struct pyw_errors *e, const char *p, size_t n)
{
    if (e->len + n > LINE_MAX_KEPT)
        flush(e);
    if (n > LINE_MAX_KEPT) {
        py_log_text(PF_LOG_ERROR, p, n);
        return 0;
    }
    if (!e->buf && !(e->buf = malloc(LINE_MAX_KEPT))) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
    return 0;
}

static int write_str(struct pyw_errors *e, PyObject *s)
{
    Py_ssize_t n;
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                     Py_TYPE(s)->tp_name);
        return -1;
    }
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (!p)
        return -1;
    const char *nl = memrchr(p, '\n', (size_t)n);
    if (!nl)
        return keep(e, p, (size_t)n);
    size_t head = (size_t)(nl - p) + 1;
    if (keep(e, p, head) < 0)
        return -1;
    flush(e);
    return keep(e, nl + 1, (size_t)n - head);
}

static PyObject *errors_write(PyObject *self, PyObject *s)
{
    if (write_str((struct pyw_errors *)self, s) < 0)
        return NULL;
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(s));
}

static PyObject *errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq), *s;
    if (!it)
        return NULL;
    while ((s = PyIter_Next(it)) != NULL) {
        int err = write_str((struct pyw_errors *)self, s);
        Py_DECREF(s);
        if (err < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *errors_flush(PyObject *self, PyObject *unused)
{
    (void)unused;
    flush((struct pyw_errors *)self);
    Py_RETURN_NONE;
}

static PyMethodDef errors_methods[] = {
    {"write", errors_write, METH_O, "write(str): to the error log, line by line"},
    {"writelines", errors_writelines, METH_O, "writelines(seq)"},
    {"flush", errors_flush, METH_NOARGS, "log what is kept"},
    {NULL, NULL, 0, NULL},
};

static void errors_dealloc(PyObject *self)
{
    struct pyw_errors *e = (struct pyw_errors *)self;
    flush(e);
    free(e->buf);
    PyObject_Free(self);
}

PyTypeObject pyw_errors_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prefork.Errors",
    .tp_basicsize = sizeof(struct pyw_errors),
    .tp_dealloc = errors_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.errors: lines written go to the error log",
    .tp_methods = errors_methods,
};
