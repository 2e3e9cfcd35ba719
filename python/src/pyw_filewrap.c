/* pyw_filewrap.c — wsgi.file_wrapper: a file the server sends with sendfile when it has a descriptor, else reads in blocks. */
#include <stddef.h>

#include "py.h"
#include <structmember.h>

struct pyw_wrapper {
    PyObject_HEAD
    PyObject *filelike;
    Py_ssize_t blksize;
};

static PyObject *wrapper_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *names[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n:file_wrapper", names, &filelike, &blksize))
        return NULL;
    struct pyw_wrapper *w = (struct pyw_wrapper *)type->tp_alloc(type, 0);
    if (!w)
        return NULL;
    Py_INCREF(filelike);
    w->filelike = filelike;
    w->blksize = blksize > 0 ? blksize : 8192;
    return (PyObject *)w;
}

static void wrapper_dealloc(PyObject *self)
{
    struct pyw_wrapper *w = (struct pyw_wrapper *)self;
    PyObject_GC_UnTrack(self);
    Py_CLEAR(w->filelike);
    Py_TYPE(self)->tp_free(self);
}

static int wrapper_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((struct pyw_wrapper *)self)->filelike);
    return 0;
}

static int wrapper_clear(PyObject *self)
{
    Py_CLEAR(((struct pyw_wrapper *)self)->filelike);
    return 0;
}

/* Iterated when the file has no descriptor (io.BytesIO, say). */
static PyObject *wrapper_next(PyObject *self)
{
    struct pyw_wrapper *w = (struct pyw_wrapper *)self;
    if (!w->filelike)
        return NULL;
    PyObject *data = PyObject_CallMethod(w->filelike, "read", "n", w->blksize);
    if (data && PyBytes_Check(data) && PyBytes_GET_SIZE(data) == 0)
        Py_CLEAR(data); /* the end */
    return data;
}

static PyObject *wrapper_close(PyObject *self, PyObject *unused)
{
    struct pyw_wrapper *w = (struct pyw_wrapper *)self;
    (void)unused;
    if (!w->filelike || !PyObject_HasAttrString(w->filelike, "close"))
        Py_RETURN_NONE;
    return PyObject_CallMethod(w->filelike, "close", NULL);
}

static PyMethodDef wrapper_methods[] = {
    {"close", wrapper_close, METH_NOARGS, "close the file"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef wrapper_members[] = {
    {"filelike", T_OBJECT, offsetof(struct pyw_wrapper, filelike), READONLY, "the file"},
    {"blksize", T_PYSSIZET, offsetof(struct pyw_wrapper, blksize), READONLY, "block size"},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject pyw_wrapper_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prefork.FileWrapper",
    .tp_basicsize = sizeof(struct pyw_wrapper),
    .tp_dealloc = wrapper_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "wsgi.file_wrapper(filelike, blksize=8192)",
    .tp_traverse = wrapper_traverse,
    .tp_clear = wrapper_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = wrapper_next,
    .tp_methods = wrapper_methods,
    .tp_members = wrapper_members,
    .tp_new = wrapper_new,
};
