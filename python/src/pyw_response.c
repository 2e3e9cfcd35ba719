/* pyw_response.c — the WSGI response: status and fields checked, framing chosen, the iterable sent with back-pressure, file_wrapper by sendfile. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "py.h"

/* Latin-1 bytes of a str (PEP 3333: native strings hold bytes as code
 * points below 256). ASCII is read in place; *tmp gets a bytes object to
 * drop otherwise. -1 with an exception set for anything else. */
static int latin1(PyObject *s, const char **p, size_t *n, PyObject **tmp)
{
    *tmp = NULL;
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "expected str, got %.100s", Py_TYPE(s)->tp_name);
        return -1;
    }
    if (PyUnicode_IS_ASCII(s)) {
        *p = (const char *)PyUnicode_DATA(s);
        *n = (size_t)PyUnicode_GET_LENGTH(s);
        return 0;
    }
    *tmp = PyUnicode_AsLatin1String(s);
    if (!*tmp)
        return -1;
    *p = PyBytes_AS_STRING(*tmp);
    *n = (size_t)PyBytes_GET_SIZE(*tmp);
    return 0;
}

static void log_refused(struct pyw_req *r, const char *what, const char *p, size_t n)
{
    (void)r;
    pf_log(PF_LOG_ERROR, "the application's %s was refused (not a valid field, or CR, LF or "
           "NUL in it): '%.*s'; answering 500", what, (int)(n > 200 ? 200 : n), p);
}

static int send_status(struct pyw_req *r)
{
    const char *p;
    size_t n;
    PyObject *tmp;
    if (latin1(r->status, &p, &n, &tmp) < 0)
        return -1;
    int code = 0, err = -EINVAL;
    if (n >= 3 && p[0] >= '1' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
        p[2] <= '9' && (n == 3 || p[3] == ' ') && !memchr(p, '\0', n)) {
        code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        err = pyw_out_status(r, code, n > 4 ? p + 4 : NULL);
    }
    if (err < 0)
        log_refused(r, "status", p, n);
    Py_XDECREF(tmp);
    return err < 0 ? -1 : 0;
}

static bool name_is(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

/* Content-Length from the app: digits only, else the field is refused. */
static int parse_length(const char *p, size_t n, int64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = (int64_t)v;
    return 0;
}

/* One (name, value) of response_headers. Framing fields are the core's:
 * Content-Length becomes the length given to it, "Connection: close"
 * closes, the other hop-by-hop fields (which PEP 3333 forbids) are dropped. */
static int send_field(struct pyw_req *r, PyObject *item, int64_t *length)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "each response header must be a (name, value) tuple");
        return -1;
    }
    const char *name, *value;
    size_t nn, vn;
    PyObject *t1, *t2 = NULL;
    int rc = -1;
    if (latin1(PyTuple_GET_ITEM(item, 0), &name, &nn, &t1) < 0 ||
        latin1(PyTuple_GET_ITEM(item, 1), &value, &vn, &t2) < 0)
        goto out;
    if (name_is(name, nn, "content-length")) {
        rc = parse_length(value, vn, length);
        if (rc < 0)
            log_refused(r, "Content-Length", value, vn);
        goto out;
    }
    if (memchr(value, '\0', vn) || memchr(name, '\0', nn)) {
        log_refused(r, "header field", name, nn);
        goto out;
    }
    int err = pyw_out_header(r, name, nn, value, vn);
    if (err == -EPERM) {
        if (name_is(name, nn, "connection") && vn >= 5 && strncasecmp(value, "close", 5) == 0)
            pyw_out_close(r);
        err = 0;
    }
    if (err < 0)
        log_refused(r, "header field", name, nn);
    rc = err < 0 ? -1 : 0;
out:
    Py_XDECREF(t1);
    Py_XDECREF(t2);
    return rc;
}

int pyw_send_head(struct pyw_req *r, int64_t length)
{
    if (!r->status) {
        PyErr_SetString(PyExc_AssertionError,
                        "the application sent a body before calling start_response");
        return -1;
    }
    if (send_status(r) < 0)
        return -1;
    int64_t declared = -1;
    Py_ssize_t n = PyList_GET_SIZE(r->headers);
    for (Py_ssize_t i = 0; i < n; i++)
        if (send_field(r, PyList_GET_ITEM(r->headers, i), &declared) < 0)
            return -1;
    if (declared >= 0)
        length = declared;
    if (pyw_out_start(r, length) < 0)
        return -1;
    r->length = length;
    r->head_sent = true;
    return 0;
}

int pyw_send(struct pyw_req *r, const char *p, size_t n, bool more)
{
    bool cut = false;
    if (r->length >= 0 && n > (uint64_t)r->length - r->written) {
        pf_log(PF_LOG_WARN, "the application sent more than its Content-Length (%lld): the "
               "body is cut there and the connection closed", (long long)r->length);
        n = (size_t)((uint64_t)r->length - r->written);
        pyw_out_close(r);
        cut = true;
        more = false;
    }
    int s = n ? pyw_out_write(r, p, n, more) : 0;
    if (s < 0)
        return -1;
    r->written += n;
    return cut ? 2 : s == HTTP_RES_LATER;
}

/* ---- the end ---- */

static void finish(struct pyw_req *r)
{
    if (!r->head_sent && pyw_send_head(r, 0) < 0) {
        if (PyErr_Occurred())
            py_log_exception("error in the application's response:");
        pyw_fail(r);
        return;
    }
    pyw_out_end(r);
    pyw_req_done(r);
}

static void fail_with(struct pyw_req *r, const char *what)
{
    if (PyErr_Occurred()) {
        const struct http_request *q = r->q;
        char line[160];
        snprintf(line, sizeof line, "%s for '%.*s %.*s':", what, (int)q->method_len,
                 q->method_name, (int)(q->target_len > 100 ? 100 : q->target_len), q->target);
        py_log_exception(line);
    }
    pyw_fail(r);
}

/* ---- a list or tuple: every byte is known, so is the length ---- */

static void respond_seq(struct pyw_req *r)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(r->result);
    PyObject **items = PySequence_Fast_ITEMS(r->result);
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "the response iterable must yield bytes, not %.100s",
                         Py_TYPE(items[i])->tp_name);
            fail_with(r, "error in the application's response");
            return;
        }
        total += (uint64_t)PyBytes_GET_SIZE(items[i]);
    }
    if (!r->head_sent && pyw_send_head(r, (int64_t)total) < 0) {
        fail_with(r, "error in the application's response");
        return;
    }
    /* The list keeps every item alive until the end goes out with them. */
    for (Py_ssize_t i = 0; i < n; i++) {
        int s = pyw_send(r, PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i]),
                         true);
        if (s < 0) {
            pyw_fail(r);
            return;
        }
        if (s == 2)
            break;
    }
    finish(r);
}

/* ---- any other iterable: chunked unless the app gave a length ---- */

static void pump(struct pyw_req *r);

static void on_writable(struct http_exchange *x, void *ud)
{
    struct pyw_req *r = ud;
    (void)x;
    py_enter();
    py_watch_enter(0, r->q);
    pump(r);
    py_watch_leave(0);
    py_leave();
}

/* One item of the iterator: 0 go on, 1 wait for room, 2 done, -1 failed
 * (a line logged); each ending ends the request. */
static int pump_one(struct pyw_req *r)
{
    PyObject *item = PyIter_Next(r->iter);
    if (!item) {
        if (PyErr_Occurred())
            return -1;
        finish(r);
        return 2;
    }
    if (!PyBytes_Check(item)) {
        PyErr_Format(PyExc_TypeError, "the response iterable must yield bytes, not %.100s",
                     Py_TYPE(item)->tp_name);
        Py_DECREF(item);
        return -1;
    }
    if (!r->head_sent && pyw_send_head(r, HTTP_LENGTH_UNKNOWN) < 0) {
        Py_DECREF(item);
        return -1;
    }
    int s = pyw_send(r, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item), false);
    Py_DECREF(item);
    if (s < 0) {
        pyw_fail(r);
        return 2;
    }
    if (s == 2) {
        finish(r);
        return 2;
    }
    return s;
}

static void pump(struct pyw_req *r)
{
    int s;
    while ((s = pump_one(r)) == 0)
        ;
    if (s < 0)
        fail_with(r, "error in the application's response");
    else if (s == 1) /* only on the loop's thread: a thread waits in pyw_send */
        http_res_on_writable(r->x, on_writable, r);
}

/* ---- wsgi.file_wrapper: a regular file goes out with sendfile ---- */

/* 1 sent (r is done), 0 not a regular file with a descriptor: iterate. */
static int send_file(struct pyw_req *r)
{
    PyObject *filelike = PyObject_GetAttrString(r->result, "filelike");
    PyObject *fo = filelike ? PyObject_CallMethod(filelike, "fileno", NULL) : NULL;
    int fd = fo ? PyLong_AsLong(fo) : -1;
    Py_XDECREF(fo);
    PyObject *pos = fd >= 0 ? PyObject_CallMethod(filelike, "tell", NULL) : NULL;
    long long off = pos ? PyLong_AsLongLong(pos) : -1;
    Py_XDECREF(pos);
    Py_XDECREF(filelike);
    PyErr_Clear();
    struct stat st;
    if (fd < 0 || off < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    uint64_t len = (uint64_t)st.st_size > (uint64_t)off ? (uint64_t)st.st_size - (uint64_t)off : 0;
    if (pyw_send_head(r, (int64_t)len) < 0) {
        fail_with(r, "error in the application's response");
        return 1;
    }
    if ((uint64_t)r->length < len)
        len = (uint64_t)r->length; /* the app's own Content-Length is shorter */
    int dup = len ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (len && (dup < 0 || pyw_out_file(r, dup, (uint64_t)off, len) < 0)) {
        pyw_fail(r);
        return 1;
    }
    r->written = len;
    finish(r);
    return 1;
}

void pyw_respond(struct pyw_req *r, PyObject *result)
{
    r->result = result;
    if (Py_IS_TYPE(result, &pyw_wrapper_type) && send_file(r))
        return;
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        respond_seq(r);
        return;
    }
    r->iter = PyObject_GetIter(result);
    if (!r->iter) {
        fail_with(r, "error in the application's response");
        return;
    }
    pump(r);
}
