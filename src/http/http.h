/* http.h — the HTTP/1.1 server core as its users see it: options, the handler interface, a request and its response. */
#ifndef PF_HTTP_HTTP_H
#define PF_HTTP_HTTP_H

/*
 * The core reads requests, keeps connections alive, pipelines, enforces the
 * limits and timeouts, writes the access log, and frames responses. What a
 * response says is decided by a handler, which any service fills in: the
 * static site (src/static/) is one, the Python server another.
 *
 *   handler->request(x)        a request head has arrived; x is the exchange
 *     http_ex_request(x)       method, target, version, header fields
 *     http_body_read(x, cb)    ask for the body: pieces as they arrive
 *     http_res_status(x, 200)  then header fields, then
 *     http_res_start(x, len)   the head is done; then body pieces:
 *     http_res_write / http_res_file, and http_res_end(x).
 *
 * A handler may answer at once, inside request(), or later: from a body
 * callback, a timer, or when the core says it may write again. The exchange
 * stays valid until http_res_end returns or the core aborts it (the client
 * went, a timeout): then the abort callback (http_ex_on_abort) runs, and x is
 * gone once it returns. Everything runs on the worker's one thread.
 *
 * Conventions as in prefork.h: 0 (or a count) on success, -errno on failure.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "prefork.h"
#include "http/parse.h"

/* Header fields one request may have, at most (the option's upper bound). */
#define HTTP_MAX_HEADERS 256

/* The core's options, shared by every service built on it. Fill with
 * http_config_init, then change what you need; read-only once the pool
 * runs (each worker has its copy after fork). */
struct http_config {
    struct http_limits limits;       /* head bytes (431), target (414), fields (431) */
    unsigned header_timeout_ms;      /* a request head must arrive within this */
    unsigned keepalive_timeout_ms;   /* an idle connection is closed after this */
    unsigned send_timeout_ms;        /* a response making no progress is dropped */
    unsigned body_timeout_ms;        /* a request body making no progress: 408 */
    unsigned max_keepalive_requests; /* then Connection: close (0 = unlimited) */
    unsigned hsts_max_age_s;         /* > 0: responses over TLS carry
                                        Strict-Transport-Security: max-age=N */
    unsigned https_port;             /* > 0: every request that arrives over
                                        plain TCP is answered with a redirect to
                                        https://HOST:https_port/TARGET (301, or
                                        308 but for GET and HEAD); the handler
                                        sees only TLS requests */
    uint64_t max_body;               /* a wanted body past this is a 413; an unwanted
                                        one is read away up to this, else the
                                        connection closes after the response */
    size_t high_water;               /* queued response bytes past which a write
                                        says "later" (HTTP_RES_LATER) */
    char health_path[128];           /* answered by the core: 200, or 503 once the pool
                                        is stopping ("": off); see http_config_set */
    int access_log_fd;               /* opened by the master; -1 = off */
    const char *access_log_path;     /* reopened on USR1; NULL: not a file */
    /* What each new connection speaks under HTTP (transport.h): NULL is
     * plain TCP for all; src/tls's tls_source() adds TLS on the listeners
     * that asked for it. */
    const struct http_tp_source *transport;
};

void http_config_init(struct http_config *cfg);

/* Set one option from text by its command-line long name: header-timeout,
 * keepalive-timeout, send-timeout, body-timeout (seconds), max-header-bytes,
 * max-uri-bytes, max-headers, max-body-bytes, keepalive-requests, hsts
 * (seconds; 0 off), and health-path (a path such as /healthz: a GET or
 * HEAD of it, whatever its query, is answered by the core itself, 200 "ok"
 * while the pool serves and 503 "stopping" from the moment a graceful stop
 * begins, pre-stop delay included, so that a balancer takes the host out
 * first; the handler never sees it). Returns 0, -ENOENT (not one of these),
 * or -EINVAL with *why set to a static reason. */
int http_config_set(struct http_config *cfg, const char *name, const char *value,
                    const char **why);

/* One option of a table that http_option_set reads: a name, where its value
 * goes in the struct (offset and size), its range, and what to multiply the
 * text by (1000: seconds into milliseconds). Services with options of their
 * own reuse it. */
struct http_option {
    const char *name;
    size_t offset, size; /* sizeof the field: 4 (unsigned) or 8 (uint64_t, size_t) */
    unsigned long lo, hi, scale;
    const char *why;     /* the reason given for a bad value */
};
int http_option_set(const struct http_option *table, size_t n, void *base, const char *name,
                    const char *value, const char **why);

struct http_server;   /* one per worker: its connections, scratch, access log */
struct http_exchange; /* one request and its response, owned by the core */

/* What a service provides. request is required. */
struct http_handler {
    /* In each worker after fork, before serving (the server's loop and
     * worker are ready). < 0 stops the worker with a start failure. */
    int (*init)(struct http_server *s, void *ud);
    /* A request head has arrived and is valid. */
    void (*request)(struct http_exchange *x, void *ud);
    /* The worker is about to exit. */
    void (*fini)(void *ud);
    void *ud;
};

/* The libprefork service that runs the core with handler h in every worker.
 * cfg and h must outlive the pool. */
void http_service(const struct http_config *cfg, const struct http_handler *h,
                  struct pf_service *svc);

/* A server outside a pool, on a loop of the caller's (tests, or a program
 * with its own main): h->init runs here. Connections are given to it with
 * http_server_add_conn (it owns fd from then on); http_server_free closes
 * them all and runs h->fini. */
int http_server_new(const struct http_config *cfg, const struct http_handler *h, pf_loop *loop,
                    struct http_server **out);
void http_server_add_conn(struct http_server *s, int fd, const struct sockaddr *peer,
                          socklen_t peerlen);
void http_server_free(struct http_server *s);

pf_loop *http_server_loop(const struct http_server *s);
pf_worker *http_server_worker(const struct http_server *s); /* NULL outside a pool */

/* ---- the request ---- */

/* The parsed head (parse.h). Its strings point into the connection's
 * buffer and stay valid until the exchange ends. */
const struct http_request *http_ex_request(const struct http_exchange *x);

/* The client's address (peerlen 0 when unknown, e.g. a Unix socket's). */
const struct sockaddr *http_ex_peer(const struct http_exchange *x, socklen_t *len);

struct http_server *http_ex_server(const struct http_exchange *x);

/* Whether the request arrived over TLS (a listener with ",tls"): what a
 * service needs for URLs it builds, for WSGI's wsgi.url_scheme "https"
 * and HTTPS=on, or to refuse plain HTTP. */
bool http_ex_secure(const struct http_exchange *x);
/* The verified client certificate's subject (RFC 2253) into buf, NUL
 * terminated: its length, 0 when the client gave none (or not over TLS). */
size_t http_ex_client_dn(const struct http_exchange *x, char *buf, size_t size);

/* The exchange ended before http_res_end: the client went, a timeout, a
 * failed write. fn runs once; x is gone when it returns, and fn may not
 * answer on it. A handler waiting for body pieces is told through its body
 * callback instead. */
typedef void http_ex_fn(struct http_exchange *x, void *ud);
void http_ex_on_abort(struct http_exchange *x, http_ex_fn *fn, void *ud);

/* ---- the request body ---- */

/* Whether the request has a body to read (Content-Length > 0, or chunked). */
bool http_body_expected(const struct http_exchange *x);

/* What a body callback is told, besides the bytes. */
#define HTTP_BODY_MORE 0 /* a piece; more follow */
#define HTTP_BODY_END 1  /* the last piece (n may be 0): the body is whole */

/* Body pieces: status HTTP_BODY_MORE or HTTP_BODY_END with p[0..n), valid
 * during the call only; or status < 0, the body failed and the exchange has
 * ended (x is gone when the callback returns): -EMSGSIZE past max_body (the
 * core answered 413), -EPROTO bad chunked framing (400), -ETIMEDOUT no
 * progress within body_timeout_ms (408), -ECONNRESET the client went. When
 * the response had already begun, the connection just closes. */
typedef void http_body_fn(struct http_exchange *x, const char *p, size_t n, int status,
                          void *ud);

/* Ask for the body, once per exchange. "Expect: 100-continue" is answered
 * now, not before. Pieces are delivered from the loop as they arrive,
 * starting with those already received as soon as the calling callback
 * returns (never from inside this call). A request without a body gets one
 * HTTP_BODY_END call at once. Returns 0, -EALREADY (asked before), or
 * -EMSGSIZE for a Content-Length past max_body (then no callback runs: the
 * handler answers, usually 413, and the connection closes after). */
int http_body_read(struct http_exchange *x, http_body_fn *cb, void *ud);

/* The same, but the body is collected in memory and delivered in one
 * HTTP_BODY_END call (or a failure). Bounded by max_body. */
int http_body_read_whole(struct http_exchange *x, http_body_fn *cb, void *ud);

/* ---- the response ---- */

/* Begin the response: status 200..999 (1xx are the core's own: -EINVAL) and
 * a reason phrase (NULL: the standard one). Then header fields, each name a
 * token and each value free of CR, LF and NUL (else -EINVAL, nothing
 * added). Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE,
 * Trailer and Upgrade are the core's: -EPERM (use the length argument of
 * http_res_start, and http_res_close). The core adds Date and Server. */
int http_res_status(struct http_exchange *x, int status, const char *reason);
int http_res_header(struct http_exchange *x, const char *name, size_t name_len,
                    const char *value, size_t value_len);

/* A set of header fields checked once and sent with many responses (a
 * cached file's, a rule's): each http_fields_add checks as
 * http_res_header does (-EINVAL, -EPERM, -ENOMEM; nothing added then), and
 * http_res_fields appends the whole set to a response with no check per
 * request. Start from {0}; http_fields_free releases it. */
#define HTTP_FIELDS_DATE 0x1   /* the set has a Date: the core adds none */
#define HTTP_FIELDS_SERVER 0x2 /* the set has a Server */
struct http_fields {
    char *p; /* "Name: value\r\n" lines */
    size_t len, cap;
    unsigned who;
};
int http_fields_add(struct http_fields *f, const char *name, size_t name_len, const char *value,
                    size_t value_len);
/* Append the fields of another set (checked already). 0 or -ENOMEM. */
int http_fields_append(struct http_fields *f, const struct http_fields *more);
void http_fields_free(struct http_fields *f);
int http_res_fields(struct http_exchange *x, const struct http_fields *f);

/* The connection closes once this response is out (Connection: close). */
void http_res_close(struct http_exchange *x);

/* The head is complete. length: the body's size, or HTTP_LENGTH_UNKNOWN:
 * then HTTP/1.1 responses are chunked and HTTP/1.0 ones end with the
 * connection. HEAD requests, 204 and 304 carry no body whatever is written
 * (a HEAD's Content-Length is still the given length). */
#define HTTP_LENGTH_UNKNOWN (-1)
int http_res_start(struct http_exchange *x, int64_t length);

/* Body bytes, copied. Returns 0: write on; HTTP_RES_LATER: taken, but the
 * unsent bytes are past high_water: wait for the writable callback before
 * writing more; -EMSGSIZE: more than the length given (nothing taken, the
 * connection will close); -EINVAL: no head yet, or after the end; -EPIPE:
 * the connection failed (the abort callback follows). */
#define HTTP_RES_LATER 1
int http_res_write(struct http_exchange *x, const void *p, size_t n);

/* Body bytes from a file: len bytes from off, sent with sendfile (read into
 * memory when small). The core owns fd from the call on (closed when sent,
 * or on any failure). Returns as http_res_write; a file that turns out
 * shorter than len ends the connection. */
int http_res_file(struct http_exchange *x, int fd, uint64_t off, uint64_t len);

/* The response is whole: the chunked ending goes out, and the connection
 * goes on with the next request (or closes). x is gone when this returns.
 * A body shorter than the length given ends the connection. Returns 0 or
 * -EINVAL (no head started). */
int http_res_end(struct http_exchange *x);

/* Give up on the response: the connection closes at once, without what
 * was not sent yet (a client then sees a response cut short). x is gone
 * when this returns; the abort callback does not run. */
void http_res_abort(struct http_exchange *x);

/* For a handler that answers on the loop's thread and has to block until
 * its bytes are out (WSGI's write(), which returns once the data is sent):
 * after HTTP_RES_LATER, send now and wait in poll(2) for the socket until
 * no more than high_water bytes are left, each wait bounded by
 * send_timeout_ms. The worker's other connections wait meanwhile. Returns
 * 0; -EINVAL outside the exchange's own callbacks or before the head;
 * -ETIMEDOUT or -EPIPE: the connection failed (the abort callback follows). */
int http_res_flush_wait(struct http_exchange *x);

/* Called when the unsent bytes have gone below high_water again after a
 * write said HTTP_RES_LATER. NULL stops it. */
void http_res_on_writable(struct http_exchange *x, http_ex_fn *fn, void *ud);

/* A complete response with the core's small HTML page for status (an
 * error, a 408...). A head begun but still unsent is taken back first (a
 * handler that finds a bad header field can still answer 500); -EINVAL
 * once a head went out. Returns as http_res_end. */
int http_res_error(struct http_exchange *x, int status);

/* After http_res_status and any fields of its own (Allow, Location): the
 * core's small HTML page for that status as the body, and the end. */
int http_res_page(struct http_exchange *x);

/* A complete response with a body in memory, in one call: the status and
 * header fields must have been given. Returns as http_res_end. */
int http_res_body(struct http_exchange *x, const void *p, size_t n);

/* The reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *http_reason(int status);

#endif
