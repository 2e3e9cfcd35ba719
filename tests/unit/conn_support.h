/* conn_support.h — a harness for the HTTP core's connections: a server on a loop of the test's own, a client over a socketpair, and a small response reader. */
#ifndef TU_CONN_SUPPORT_H
#define TU_CONN_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "http/transport.h"

/*
 * One server per test, driven by the test's thread: the client side of a
 * socketpair is non-blocking, and every client step runs the loop a little
 * (th_pump) so that the server can answer. Every wait is bounded by a
 * deadline (TH_DEADLINE_MS); nothing sleeps for a fixed time.
 */

#define TH_DEADLINE_MS 5000

struct th {
    pf_loop *loop;
    struct http_config cfg;
    struct http_handler h;
    struct http_server *s;
    int fd; /* the client's end */
};

/* The test's harness: fini frees it even when an assertion ends a test. */
extern struct th th;

/* Make the server with handler fn (ud passed to it); cfg may be changed
 * through th.cfg first by calling th_config() then th_start(). tp: the
 * transport new connections get (NULL: plain). */
void th_config(void);
void th_start(void (*fn)(struct http_exchange *x, void *ud), void *ud,
              const struct http_tp_ops *tp);
/* A new connection: returns the client's descriptor (also th.fd). */
int th_connect(void);
void th_fini(void);

/* Handlers many tests share: "hello" with a length, whatever was asked
 * (a body, if any, unread); the target back as the body (tells pipelined
 * answers apart). */
void th_hello(struct http_exchange *x, void *ud);
void th_echo_target(struct http_exchange *x, void *ud);

/* Run the loop for at most ms (it may return sooner on no event). */
void th_pump(unsigned ms);
/* Run the loop until *flag is true or the deadline passes; returns *flag. */
bool th_pump_until(const bool *flag);

/* Send all of p (pumping while the socket is full); false on failure. */
bool th_send(const void *p, size_t n);
bool th_sends(const char *s);

/* A response as the client read it. */
struct th_resp {
    int status;
    char head[8192]; /* the status line and fields, NUL-terminated */
    char *body;      /* malloc'd, NUL-terminated (chunked: decoded) */
    size_t body_len;
    bool chunked;
    bool closed;     /* the server closed after it */
};

/* Read one response (no_body: a HEAD's or 304's). true if whole. */
bool th_read(struct th_resp *r, bool no_body);
void th_resp_free(struct th_resp *r);
/* The value of field name in r->head ("" when none), into buf. */
const char *th_field(const struct th_resp *r, const char *name, char *buf, size_t size);
/* Whether the server has closed the connection (EOF within the deadline),
 * with nothing else to read. */
bool th_closed(void);
/* Whether the server closes the connection within the deadline, whatever
 * it sends before. */
bool th_eof(void);
/* Bytes the client can read now, after pumping for ms. */
size_t th_peek(char *buf, size_t size, unsigned ms);

/* FNV-1a, to compare bodies without keeping them. */
uint64_t th_hash(uint64_t h, const void *p, size_t n);
#define TH_HASH0 0xcbf29ce484222325ull

#endif
