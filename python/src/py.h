/* py.h — what the files of the prefork._prefork extension share: the pool glue (py_), the WSGI server (pyw_). */
#ifndef PF_PY_H
#define PF_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>

#include "prefork.h"
#include "http/http.h"

/*
 * One worker process runs one thread of Python: the thread that forked.
 * The master holds the GIL for the whole of pf_pool_run (it runs no Python
 * code, and a fork needs the GIL held); a worker takes it back after fork
 * with PyOS_AfterFork_Child, then releases it whenever C waits in its loop
 * and takes it only to call the application (py_enter / py_leave).
 */

/* ---- py_gil.c: the worker's one thread state ---- */
void py_gil_worker_start(void); /* after fork, GIL held: release it */
void py_enter(void);            /* take the GIL (nested calls count) */
void py_leave(void);
void py_gil_worker_end(void);   /* before exit: hold it for good */

/* ---- py_log.c: Python errors into the pool's error log ---- */
/* Log the current exception with its traceback (one log line per line),
 * after a line of context; clears it. */
void py_log_exception(const char *what);
/* Log text, one line per '\n'-separated part, at level. */
void py_log_text(enum pf_log_level level, const char *p, size_t n);

/* ---- py_watch.c: --timeout, the Python stack of a stuck request ---- */
int py_watch_start(unsigned timeout_ms); /* in a worker, GIL held */
void py_watch_enter(pf_loop *loop);      /* the app is called for a request */
void py_watch_leave(void);               /* ... and returned */

/* ---- py_pool.c: the pool, run from Python ---- */
/* What a worker serves, set by the master before forking. */
struct py_serve {
    PyObject *app;     /* the WSGI callable or socket handler; NULL: load it */
    PyObject *loader;  /* called with no argument in each worker for app */
    unsigned timeout_ms;
    struct http_config http;
    const char *server_name, *server_port; /* SERVER_NAME/PORT without Host */
};
extern struct py_serve py_serve;

/* Each worker's common start: after-fork hooks, then the application
 * (loaded here unless preloaded), then the watchdog. 0 or -errno. */
int py_worker_init(void);
void py_worker_fini(void);

PyObject *py_run(PyObject *self, PyObject *args, PyObject *kw);

/* ---- py_sock.c: prefork.serve(handler): a socket per connection ---- */
void py_sock_service(struct pf_service *svc);

/* ---- pyw_*.c: the WSGI server ---- */
extern PyTypeObject pyw_input_type, pyw_errors_type, pyw_wrapper_type, pyw_start_type,
    pyw_write_type;

void pyw_handler(struct http_handler *h);

/* A request body as it arrives: in memory up to a bound, then in an
 * unlinked temporary file. Owned by whoever holds it; pyw_body_free. */
struct pyw_body {
    char *mem;
    size_t len, cap;
    int fd;        /* -1 while in memory */
    uint64_t size; /* bytes in all */
};
void pyw_body_init(struct pyw_body *b);
int pyw_body_add(struct pyw_body *b, const char *p, size_t n);
void pyw_body_free(struct pyw_body *b);

/* wsgi.input over a body, which the new object takes over (b is left
 * empty). NULL body: an empty input (a shared one). */
PyObject *pyw_input_new(struct pyw_body *b);

/* The environ of a request (a new dict), wsgi.input being input. */
int pyw_environ_init(void);
PyObject *pyw_environ(struct http_exchange *x, PyObject *input, uint64_t body_size);

/* wsgi.errors: one object per worker. */
extern PyObject *pyw_errors;
PyObject *pyw_errors_new(void);

/* The state of one request while the application answers: the
 * start_response callable itself (a Python object), see pyw_start.c. */
struct pyw_req {
    PyObject_HEAD
    vectorcallfunc vcall;    /* start_response(status, headers, exc_info=None) */
    struct http_exchange *x; /* NULL once the exchange has gone */
    struct pyw_body body;
    PyObject *status;        /* str, from start_response */
    PyObject *headers;       /* list of (str, str) */
    PyObject *result;        /* what the app returned */
    PyObject *iter;          /* its iterator while streaming */
    PyObject *write;         /* the write() callable handed out */
    int64_t length;          /* the body's declared length, or -1 */
    uint64_t written;        /* body bytes given to the core */
    bool head_sent;
};

struct pyw_req *pyw_req_new(struct http_exchange *x);
/* The head: status and fields from start_response, then the framing.
 * 0, or -1 with a line logged (the response must then fail). */
int pyw_send_head(struct pyw_req *r, int64_t length);
/* Body bytes: 0 write on, 1 wait for room, 2 the declared length is
 * reached (the rest was cut: end now), -1 the exchange failed. */
int pyw_send(struct pyw_req *r, const char *p, size_t n);
/* Answer with the app's result (a new reference, taken). */
void pyw_respond(struct pyw_req *r, PyObject *result);
/* The response failed: a 500 if no head went out, else the connection is
 * cut. Then pyw_req_done. */
void pyw_fail(struct pyw_req *r);
/* The request is over: result.close(), references dropped; r is free. */
void pyw_req_done(struct pyw_req *r);

#endif
