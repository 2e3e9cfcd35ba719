/* pyw_input.c — wsgi.input: the whole request body, in memory or in a temporary file, read(), readline(), readlines(), iteration; never past the body. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "py.h"

struct pyw_input {
    PyObject_HEAD
    char *mem;     /* the body in memory, or NULL */
    int fd;        /* ... or in this file, or -1 */
    uint64_t size; /* its length */
    uint64_t pos;  /* what was read */
};

/* A body of 0 bytes needs no state: one object serves every such request. */
static PyObject *empty;

PyObject *pyw_input_new(struct pyw_body *b)
{
    if (!b || b->size == 0) {
        if (!empty)
            empty = (PyObject *)PyObject_New(struct pyw_input, &pyw_input_type);
        if (!empty)
            return NULL;
        struct pyw_input *e = (struct pyw_input *)empty;
        e->mem = NULL;
        e->fd = -1;
        e->size = e->pos = 0;
        Py_INCREF(empty);
        return empty;
    }
    struct pyw_input *in = PyObject_New(struct pyw_input, &pyw_input_type);
    if (!in)
        return NULL;
    in->mem = b->mem;
    in->fd = b->fd;
    in->size = b->size;
    in->pos = 0;
    pyw_body_init(b); /* taken over */
    return (PyObject *)in;
}

static void input_dealloc(PyObject *self)
{
    struct pyw_input *in = (struct pyw_input *)self;
    free(in->mem);
    if (in->fd >= 0)
        close(in->fd);
    PyObject_Free(self);
}

/* size argument: None or negative means all. */
static int get_size(PyObject *const *args, Py_ssize_t n, uint64_t left, uint64_t *out)
{
    *out = left;
    if (n > 1) {
        PyErr_SetString(PyExc_TypeError, "expected at most one argument");
        return -1;
    }
    if (n == 0 || args[0] == Py_None)
        return 0;
    Py_ssize_t v = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v >= 0 && (uint64_t)v < left)
        *out = (uint64_t)v;
    return 0;
}

static int pread_all(struct pyw_input *in, char *p, uint64_t off, size_t n)
{
    while (n > 0) {
        ssize_t r = pread(in->fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return 0;
}

/* The next n bytes as a bytes object. */
static PyObject *take(struct pyw_input *in, uint64_t n)
{
    if (in->mem) {
        PyObject *b = PyBytes_FromStringAndSize(in->mem + in->pos, (Py_ssize_t)n);
        if (b)
            in->pos += n;
        return b;
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (b && n && pread_all(in, PyBytes_AS_STRING(b), in->pos, (size_t)n) < 0)
        Py_CLEAR(b);
    if (b)
        in->pos += n;
    return b;
}

static PyObject *input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyw_input *in = (struct pyw_input *)self;
    uint64_t n;
    if (get_size(args, nargs, in->size - in->pos, &n) < 0)
        return NULL;
    return take(in, n);
}

/* Bytes up to and including the next '\n', at most max. */
static int line_length(struct pyw_input *in, uint64_t max, uint64_t *out)
{
    if (in->mem) {
        const char *nl = memchr(in->mem + in->pos, '\n', (size_t)max);
        *out = nl ? (uint64_t)(nl - (in->mem + in->pos)) + 1 : max;
        return 0;
    }
    char buf[8192];
    uint64_t seen = 0;
    while (seen < max) {
        size_t k = max - seen < sizeof buf ? (size_t)(max - seen) : sizeof buf;
        if (pread_all(in, buf, in->pos + seen, k) < 0)
            return -1;
        const char *nl = memchr(buf, '\n', k);
        if (nl) {
            *out = seen + (uint64_t)(nl - buf) + 1;
            return 0;
        }
        seen += k;
    }
    *out = max;
    return 0;
}

static PyObject *readline(struct pyw_input *in, uint64_t max)
{
    uint64_t n;
    if (line_length(in, max, &n) < 0)
        return NULL;
    return take(in, n);
}

static PyObject *input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyw_input *in = (struct pyw_input *)self;
    uint64_t max;
    if (get_size(args, nargs, in->size - in->pos, &max) < 0)
        return NULL;
    return readline(in, max);
}

static PyObject *input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyw_input *in = (struct pyw_input *)self;
    uint64_t hint, got = 0;
    if (get_size(args, nargs, UINT64_MAX, &hint) < 0)
        return NULL;
    if (nargs == 1 && args[0] != Py_None && hint == 0)
        hint = UINT64_MAX; /* 0 means no hint, as in io */
    PyObject *list = PyList_New(0);
    while (list && in->pos < in->size && got < hint) {
        PyObject *line = readline(in, in->size - in->pos);
        if (!line || PyList_Append(list, line) < 0)
            Py_CLEAR(list);
        if (line)
            got += (uint64_t)PyBytes_GET_SIZE(line);
        Py_XDECREF(line);
    }
    return list;
}

static PyObject *input_next(PyObject *self)
{
    struct pyw_input *in = (struct pyw_input *)self;
    if (in->pos >= in->size)
        return NULL; /* StopIteration */
    return readline(in, in->size - in->pos);
}

static PyObject *input_close(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    Py_RETURN_NONE;
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
     "read(size=-1): at most size bytes of the body, all that is left by default"},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
     "readline(size=-1): the next line, with its newline"},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
     "readlines(hint=-1): the lines left"},
    {"close", input_close, METH_NOARGS, "does nothing: the server owns the body"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject pyw_input_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prefork.Input",
    .tp_basicsize = sizeof(struct pyw_input),
    .tp_dealloc = input_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, received whole before the application runs",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = input_next,
    .tp_methods = input_methods,
};
