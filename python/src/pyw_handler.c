/* pyw_handler.c — the WSGI server as an HTTP core handler: the body received whole, then the application called, on the loop's thread or in one of --threads. */
#include <errno.h>
#include <string.h>

#include "py.h"

void pyw_call_app(struct pyw_req *r, int slot)
{
    uint64_t size = r->body.size;
    PyObject *input = pyw_input_new(&r->body);
    PyObject *env =
        input ? pyw_environ(r->q, r->peer, r->peerlen, r->secure, input, size) : NULL;
    Py_XDECREF(input);
    if (env && r->client_dn && pyw_environ_client(env, r->client_dn) < 0)
        Py_CLEAR(env);
    if (!env) {
        py_log_exception("cannot build the WSGI environ:");
        pyw_fail(r);
        return;
    }
    py_watch_enter(slot, r->q);
    PyObject *args[2] = {env, (PyObject *)r};
    PyObject *result = PyObject_Vectorcall(py_serve.app, args, 2, NULL);
    Py_DECREF(env);
    if (!result) {
        const struct http_request *q = r->q;
        char line[160];
        snprintf(line, sizeof line, "error in the application for '%.*s %.*s':",
                 (int)q->method_len, q->method_name,
                 (int)(q->target_len > 100 ? 100 : q->target_len), q->target);
        py_log_exception(line);
        pyw_fail(r);
    } else {
        pyw_respond(r, result);
    }
    py_watch_leave(slot);
}

/* ---- the app on the loop's thread ---- */

/* Body pieces as they arrive; the app runs once the body is whole. */
static void on_body(struct http_exchange *x, const char *p, size_t n, int status, void *ud)
{
    struct pyw_req *r = ud;
    py_enter();
    if (status < 0) {
        r->x = NULL; /* the core answered (413, 400, 408) or the client went */
        r->open = false;
        pyw_req_done(r);
    } else if (n && pyw_body_add(&r->body, p, n) < 0) {
        http_res_error(x, 500);
        r->x = NULL;
        r->open = false;
        pyw_req_done(r);
    } else if (status == HTTP_BODY_END) {
        pyw_call_app(r, 0);
    }
    py_leave();
}

static void on_request(struct http_exchange *x, void *ud)
{
    (void)ud;
    int https = pyw_scheme(x);
    if (https < 0) {
        http_res_error(x, 400); /* forwarded headers that disagree */
        return;
    }
    py_enter();
    struct pyw_req *r = pyw_req_new(x, https);
    if (!r) {
        PyErr_Clear();
        http_res_error(x, 500);
    } else if (!http_body_expected(x)) {
        pyw_call_app(r, 0);
    } else {
        int err = http_body_read(x, on_body, r);
        if (err < 0) {
            /* -EMSGSIZE: a Content-Length past --max-body-bytes */
            http_res_error(x, err == -EMSGSIZE ? 413 : 500);
            r->x = NULL;
            r->open = false;
            pyw_req_done(r);
        }
    }
    py_leave();
}

/* ---- the app in threads: the loop's thread stays out of Python ---- */

static void on_job_body(struct http_exchange *x, const char *p, size_t n, int status, void *ud)
{
    struct pyw_job *j = ud;
    if (status < 0) { /* the core answered (413, 400, 408) or the client went */
        pyw_job_free(j);
    } else if (n && pyw_body_add(&j->body, p, n) < 0) {
        j->x = NULL;
        http_res_error(x, 500);
        pyw_job_free(j);
    } else if (status == HTTP_BODY_END) {
        pyw_job_push(j);
    }
}

static void on_job_request(struct http_exchange *x, void *ud)
{
    (void)ud;
    int https = pyw_scheme(x);
    if (https < 0) {
        http_res_error(x, 400);
        return;
    }
    struct pyw_job *j = pyw_job_new(x, https);
    if (!j) {
        pf_log(PF_LOG_ERROR, "no memory for a request; answering 500");
        http_res_error(x, 500);
    } else if (!http_body_expected(x)) {
        pyw_job_push(j);
    } else {
        int err = http_body_read(x, on_job_body, j);
        if (err < 0) {
            j->x = NULL;
            http_res_error(x, err == -EMSGSIZE ? 413 : 500);
            pyw_job_free(j);
        }
    }
}

/* ---- the worker ---- */

static int on_init(struct http_server *s, void *ud)
{
    (void)ud;
    int err = py_worker_init(http_server_worker(s));
    if (err == 0 && pyw_environ_init(py_serve.threads > 1) < 0) {
        py_log_exception("cannot set up the WSGI environ:");
        err = -ENOMEM;
    }
    if (err == 0 && py_serve.threads > 1)
        err = pyw_threads_start(s, py_serve.threads);
    if (err == 0)
        py_gil_worker_start();
    return err;
}

static void on_fini(void *ud)
{
    (void)ud;
    if (py_serve.threads > 1)
        pyw_threads_stop();
    py_worker_fini();
}

void pyw_handler(struct http_handler *h)
{
    memset(h, 0, sizeof *h);
    h->init = on_init;
    h->request = py_serve.threads > 1 ? on_job_request : on_request;
    h->fini = on_fini;
}
