/* pyw_start.c — start_response and write(): the state of one request as the WSGI application sees it (PEP 3333). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "py.h"

/* write(data), handed out by start_response. It points at its request,
 * which owns it; if the app keeps it past the request it is cut loose
 * (r = NULL) and then refuses to write. */
struct pyw_write {
    PyObject_HEAD
    vectorcallfunc vcall;
    struct pyw_req *r;
};

/* One request object is kept for the next request when nobody else holds
 * it: a keep-alive request then allocates neither it nor its write(). */
static struct pyw_req *spare;

static PyObject *start_call(PyObject *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames);

static void req_abort(struct http_exchange *x, void *ud)
{
    struct pyw_req *r = ud;
    (void)x;
    py_enter();
    r->x = NULL;
    r->open = false;
    pyw_req_done(r);
    py_leave();
}

static void req_clear(struct pyw_req *r)
{
    r->x = NULL;
    r->job = NULL;
    r->open = true;
    pyw_body_init(&r->body);
    r->status = r->headers = r->result = r->iter = NULL;
    r->length = -1;
    r->written = 0;
    r->head_sent = false;
    r->client_dn = NULL;
}

static struct pyw_req *req_new(void)
{
    struct pyw_req *r = spare;
    if (r) {
        spare = NULL;
    } else {
        r = PyObject_New(struct pyw_req, &pyw_start_type);
        if (!r)
            return NULL;
        r->vcall = start_call;
        r->write = NULL;
    }
    req_clear(r);
    return r;
}

struct pyw_req *pyw_req_new(struct http_exchange *x, bool secure)
{
    struct pyw_req *r = req_new();
    if (!r)
        return NULL;
    r->x = x;
    r->q = http_ex_request(x);
    r->peer = http_ex_peer(x, &r->peerlen);
    r->secure = secure;
    r->client_dn = pyw_client_dn(x);
    http_ex_on_abort(x, req_abort, r);
    return r;
}

struct pyw_req *pyw_req_new_job(struct pyw_job *j)
{
    struct pyw_req *r = req_new();
    if (!r)
        return NULL;
    r->job = j;
    r->q = j->q;
    r->peer = (const struct sockaddr *)&j->peer;
    r->peerlen = j->peerlen;
    r->secure = j->secure;
    r->client_dn = j->client_dn;
    j->client_dn = NULL;
    r->body = j->body;
    pyw_body_init(&j->body);
    return r;
}

static void close_result(PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result) || PyBytes_CheckExact(result))
        return;
    PyObject *close = PyObject_GetAttrString(result, "close");
    if (!close) {
        PyErr_Clear();
        return;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (!r)
        py_log_exception("error in the close() of the application's response:");
    Py_XDECREF(r);
}

void pyw_req_done(struct pyw_req *r)
{
    if (r->result)
        close_result(r->result);
    Py_CLEAR(r->iter);
    Py_CLEAR(r->result);
    Py_CLEAR(r->status);
    Py_CLEAR(r->headers);
    pyw_body_free(&r->body);
    free(r->client_dn);
    r->client_dn = NULL;
    r->x = NULL;
    r->open = false;
    if (r->job) {
        pyw_job_free(r->job);
        r->job = NULL;
    }
    if (r->write && Py_REFCNT(r->write) > 1) {
        ((struct pyw_write *)r->write)->r = NULL; /* the app kept it */
        Py_CLEAR(r->write);
    }
    if (!spare && Py_REFCNT(r) == 1)
        spare = r;
    else
        Py_DECREF(r);
}

void pyw_fail(struct pyw_req *r)
{
    pyw_out_fail(r);
    pyw_req_done(r);
}

/* ---- start_response(status, response_headers, exc_info=None) ---- */

/* exc_info given once the head went out: raise it again (PEP 3333). */
static PyObject *reraise(PyObject *exc_info)
{
    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError, "exc_info must be a (type, value, traceback) tuple");
        return NULL;
    }
    PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
             *tb = PyTuple_GET_ITEM(exc_info, 2);
    Py_INCREF(t);
    Py_INCREF(v);
    Py_INCREF(tb);
    PyErr_Restore(t, v, tb == Py_None ? (Py_DECREF(tb), NULL) : tb);
    return NULL;
}

static PyObject *new_write(struct pyw_req *r);

static PyObject *start_call(PyObject *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    struct pyw_req *r = (struct pyw_req *)self;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    PyObject *exc_info = n == 3 ? args[2] : Py_None;
    if (kwnames && PyTuple_GET_SIZE(kwnames) == 1 && n == 2 &&
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "exc_info") == 0)
        exc_info = args[2];
    else if (kwnames || n < 2 || n > 3)
        return PyErr_Format(PyExc_TypeError,
                            "start_response(status, response_headers, exc_info=None)");
    if (!r->open)
        return PyErr_Format(PyExc_RuntimeError, "start_response after the request ended");
    if (!PyUnicode_Check(args[0]))
        return PyErr_Format(PyExc_TypeError, "status must be a str, not %.100s",
                            Py_TYPE(args[0])->tp_name);
    if (!PyList_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "response_headers must be a list, not %.100s",
                            Py_TYPE(args[1])->tp_name);
    if (exc_info != Py_None) {
        if (r->head_sent)
            return reraise(exc_info);
    } else if (r->status) {
        return PyErr_Format(PyExc_AssertionError,
                            "start_response called a second time without exc_info");
    }
    Py_INCREF(args[0]);
    Py_XSETREF(r->status, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(r->headers, args[1]);
    if (!r->write && !(r->write = new_write(r)))
        return NULL;
    Py_INCREF(r->write);
    return r->write;
}

static void start_dealloc(PyObject *self)
{
    struct pyw_req *r = (struct pyw_req *)self;
    if (r->write)
        ((struct pyw_write *)r->write)->r = NULL;
    Py_CLEAR(r->write);
    Py_CLEAR(r->status);
    Py_CLEAR(r->headers);
    pyw_body_free(&r->body);
    free(r->client_dn);
    PyObject_Free(self);
}

PyTypeObject pyw_start_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prefork.StartResponse",
    .tp_basicsize = sizeof(struct pyw_req),
    .tp_dealloc = start_dealloc,
    .tp_vectorcall_offset = offsetof(struct pyw_req, vcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "start_response(status, response_headers, exc_info=None) -> write",
};

/* ---- write(data) ---- */

static PyObject *write_call(PyObject *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    struct pyw_req *r = ((struct pyw_write *)self)->r;
    if (kwnames || PyVectorcall_NARGS(nargsf) != 1)
        return PyErr_Format(PyExc_TypeError, "write(data) takes one bytes argument");
    if (!PyBytes_Check(args[0]))
        return PyErr_Format(PyExc_TypeError, "write() takes bytes, not %.100s",
                            Py_TYPE(args[0])->tp_name);
    if (!r || !r->open)
        return PyErr_Format(PyExc_RuntimeError, "write() after the response ended");
    if (!r->head_sent && pyw_send_head(r, HTTP_LENGTH_UNKNOWN) < 0)
        return PyErr_Format(PyExc_RuntimeError, "the response head was refused");
    int s = pyw_send(r, PyBytes_AS_STRING(args[0]), (size_t)PyBytes_GET_SIZE(args[0]), false);
    if (s == 1 && pyw_out_wait(r) < 0) /* write() returns once the bytes are out */
        s = -1;
    if (s < 0)
        return PyErr_Format(PyExc_OSError, "the client has gone");
    Py_RETURN_NONE;
}

static void write_dealloc(PyObject *self)
{
    PyObject_Free(self);
}

PyTypeObject pyw_write_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prefork.Write",
    .tp_basicsize = sizeof(struct pyw_write),
    .tp_dealloc = write_dealloc,
    .tp_vectorcall_offset = offsetof(struct pyw_write, vcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "write(data): the imperative way to send body bytes (PEP 3333)",
};

static PyObject *new_write(struct pyw_req *r)
{
    struct pyw_write *w = PyObject_New(struct pyw_write, &pyw_write_type);
    if (!w)
        return NULL;
    w->vcall = write_call;
    w->r = r;
    return (PyObject *)w;
}
