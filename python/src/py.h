/* py.h — what the files of the prefork._prefork extension share: the pool glue (py_), the WSGI server (pyw_). */
#ifndef PF_PY_H
#define PF_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

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
/* Slot 0 is the loop's thread, 1..threads those of --threads. */
int py_watch_start(unsigned timeout_ms, int slots, pf_worker *w); /* in a worker, GIL held */
void py_watch_thread(int slot); /* the calling thread runs slot's requests */
void py_watch_enter(int slot, const struct http_request *q); /* the app is called (for q,
                                                                or NULL: a connection) ... */
void py_watch_leave(int slot);                               /* ... and returned */

/* ---- py_master.c: the hooks that run in the master ---- */
/* fn (None: no hooks) is called as fn(kind, index, generation, pid, status) on
 * the pool's events, kind "ready", "reloaded", "worker_exit", and "reload" on
 * HUP (an exception fails the reload). After tls_service: it chains TLS's. */
void py_master_hooks(PyObject *fn, struct pf_service *svc);

/* ---- py_pool.c: the pool, run from Python ---- */
/* What a worker serves, set by the master before forking. */
struct py_serve {
    PyObject *app;     /* the WSGI callable or socket handler (preloaded), or NULL */
    PyObject *loader;  /* NULL, or called with no argument in each worker: the app */
    PyObject *worker_exit; /* NULL, or called with no argument in a worker leaving cleanly */
    unsigned timeout_ms;
    unsigned threads;  /* > 1: the app runs in this many threads per worker */
    struct http_config http;
    const char *server_name, *server_port; /* SERVER_NAME/PORT without Host */
};
extern struct py_serve py_serve;

/* Each worker's common start: after-fork hooks, then the loader (which
 * runs the post_fork and post_worker_init hooks around loading the
 * application, or returns the preloaded one), then the watchdog. 0 or
 * -errno. */
int py_worker_init(pf_worker *w);
void py_worker_fini(void);

PyObject *py_run(PyObject *self, PyObject *args, PyObject *kw);
PyObject *py_worker(PyObject *self, PyObject *unused); /* (index, generation) or None */

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
int pyw_environ_init(bool multithread);
PyObject *pyw_environ(const struct http_request *q, const struct sockaddr *peer,
                      socklen_t peerlen, bool secure, PyObject *input, uint64_t body_size);
/* A client certificate that verified (--tls-client-ca): its subject, a
 * copy (free()) or NULL for none; then into the environ as mod_ssl names
 * it, SSL_CLIENT_S_DN and SSL_CLIENT_VERIFY=SUCCESS (0, or -1 with an
 * exception set). */
char *pyw_client_dn(struct http_exchange *x);
int pyw_environ_client(PyObject *env, const char *dn);

/* The request's scheme: 1 HTTPS (over TLS, or so forwarded by a proxy in
 * --forwarded-allow-ips), 0 HTTP, -EPROTO when forwarded headers disagree
 * (a 400). pyw_forwarded_init sets the default proxies (loopback, Unix);
 * pyw_forwarded_allow takes the option's CIDR list ("" for none), 0 or
 * -EINVAL with *why set. */
void pyw_forwarded_init(void);
int pyw_forwarded_allow(const char *spec, const char **why);
int pyw_scheme(struct http_exchange *x);

/* wsgi.errors: one object per worker. */
extern PyObject *pyw_errors;
PyObject *pyw_errors_new(void);

/* ---- pyw_thread.c: --threads N ---- */

/* One step of a response, built by a thread and applied by the loop: the
 * head, body bytes, a file, the end, or a failure (any of them at once). */
struct pyw_op {
    bool head;
    int status;
    char *reason;              /* NULL: the standard one */
    struct http_fields fields; /* checked by http_fields_add */
    bool close;
    int64_t length;
    struct iovec *iov;         /* body bytes the thread keeps alive */
    int iovcnt, iovcap;
    char *copy;                /* or a copy of them, owned by the op */
    int fd;                    /* a file (-1: none), owned by the op */
    uint64_t off, len;
    bool end, fail;
};

/* A request handed to a thread: what the app needs, copied off the
 * connection, and the op it is answering with. */
struct pyw_job {
    struct pyw_job *next;
    struct http_exchange *x; /* the loop's own; NULL once the exchange is gone */
    struct http_request *q;  /* the head (http_request_dup) */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    bool secure;
    char *client_dn;         /* as pyw_req's, moved to it */
    struct pyw_body body;
    struct pyw_op op;
    bool waiting;            /* the loop's: the op waits for room */
    bool detached;           /* the last op, posted without waiting: the loop frees j */
    int result;              /* the loop's answer to the op posted */
    bool posted;             /* under the lock: posted, not answered yet */
    pthread_cond_t *wake;    /* the thread waiting for the answer */
};

/* From the loop: start n threads (GIL held); hand them a request; a job
 * for x (its head copied, its abort watched), NULL when out of memory. */
int pyw_threads_start(struct http_server *s, unsigned n);
void pyw_threads_stop(void); /* GIL not held */
struct pyw_job *pyw_job_new(struct http_exchange *x, bool secure);
void pyw_job_push(struct pyw_job *j);
void pyw_job_free(struct pyw_job *j);

/* From a thread, GIL held: the loop applies j->op (the GIL is released
 * meanwhile; writes wait there for room), then the op is emptied.
 * 0, or -errno (-EPIPE: the exchange is gone). */
int pyw_job_post(struct pyw_job *j);
/* The same for the op that ends the response, when it is small (no file,
 * body bytes up to 64 KiB): they are copied, the op posted, and the job
 * left to the loop, which frees it; the thread goes on at once. 0, or -1:
 * too big, post it and wait. */
int pyw_job_detach(struct pyw_job *j);

/* ---- pyw_start.c, pyw_response.c: one request while the app answers ---- */

/* The state of one request while the application answers: the
 * start_response callable itself (a Python object), see pyw_start.c. */
struct pyw_req {
    PyObject_HEAD
    vectorcallfunc vcall;    /* start_response(status, headers, exc_info=None) */
    struct http_exchange *x; /* on the loop's thread: the exchange */
    struct pyw_job *job;     /* in a thread of --threads: the job */
    const struct http_request *q;
    const struct sockaddr *peer;
    socklen_t peerlen;
    bool secure;             /* it came over TLS */
    bool open;               /* the response may still be written */
    char *client_dn;         /* over TLS, the client certificate's subject; NULL: none */
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

/* A request answered on the loop's thread, or in a thread of --threads
 * (the job's body moves into the request); secure: HTTPS (pyw_scheme).
 * NULL with an exception set. */
struct pyw_req *pyw_req_new(struct http_exchange *x, bool secure);
struct pyw_req *pyw_req_new_job(struct pyw_job *j);
/* Build the environ, call the application, answer with what it returns;
 * slot: the --timeout watch slot of the calling thread. */
void pyw_call_app(struct pyw_req *r, int slot);
/* The head: status and fields from start_response, then the framing.
 * 0, or -1 with a line logged (the response must then fail). */
int pyw_send_head(struct pyw_req *r, int64_t length);
/* Body bytes: 0 write on, 1 wait for room, 2 the declared length is
 * reached (the rest was cut: end now), -1 the exchange failed. more: more
 * bytes follow at once (a thread then sends them together). */
int pyw_send(struct pyw_req *r, const char *p, size_t n, bool more);
/* Answer with the app's result (a new reference, taken). */
void pyw_respond(struct pyw_req *r, PyObject *result);
/* The response failed: a 500 if no head went out, else the connection is
 * cut. Then pyw_req_done. */
void pyw_fail(struct pyw_req *r);
/* The request is over: result.close(), references dropped; r is free. */
void pyw_req_done(struct pyw_req *r);

/* ---- pyw_out.c: where a response goes ---- */
/* Straight to the exchange on the loop's thread; from a thread of
 * --threads, into the job's op, posted at a write without more, the end
 * or a failure. Results as the http_res_ calls'. */
int pyw_out_status(struct pyw_req *r, int code, const char *reason);
int pyw_out_header(struct pyw_req *r, const char *name, size_t nn, const char *value,
                   size_t vn);
void pyw_out_close(struct pyw_req *r);
int pyw_out_start(struct pyw_req *r, int64_t length);
int pyw_out_write(struct pyw_req *r, const char *p, size_t n, bool more);
/* After a write said HTTP_RES_LATER: wait until the bytes are out (on the
 * loop's thread, blocking it; a thread waited in its write already). */
int pyw_out_wait(struct pyw_req *r);
int pyw_out_file(struct pyw_req *r, int fd, uint64_t off, uint64_t len);
void pyw_out_end(struct pyw_req *r);
void pyw_out_fail(struct pyw_req *r);

#endif
