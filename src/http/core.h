/* core.h — what the core's own files share: the server, a connection, an exchange, the output queue. */
#ifndef PF_HTTP_CORE_H
#define PF_HTTP_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "http/buf.h"
#include "http/chunked.h"
#include "http/http.h"
#include "http/transport.h"

struct http_alog;

/* One per worker process. A worker serves one connection at a time, so the
 * connection that runs (conn_run on the stack) borrows the scratch space:
 * reads land in `in`, a response's head and small body collect in `out`
 * and go out in one send. What is left when it stops running is copied
 * into buffers of its own; at rest a connection holds none. */
struct http_server {
    const struct http_config *cfg;
    const struct http_handler *h;
    pf_worker *w;                 /* NULL outside a pool (the unit tests) */
    pf_loop *loop;
    const struct http_tp_ops *tp; /* the transport new connections get */
    char *in;                     /* read scratch: max_head bytes */
    size_t in_cap;
    struct http_conn *in_owner;   /* whose unconsumed input is in the scratch */
    size_t in_off, in_len;        /* ... at in[in_off, in_off + in_len) */
    struct http_buf out;          /* output scratch of the running connection */
    struct http_conn *running;    /* the connection being served, or NULL */
    struct http_buf page;         /* error pages */
    struct http_alog *alog;       /* NULL when the access log is off */
    struct http_conn *conns;      /* every open connection, for draining */
    struct http_exchange *spare;  /* ended exchanges kept for reuse */
    unsigned nspare;
    bool flushed;                 /* the running connection's output was sent */
    bool draining;
};

/* A piece of output a connection keeps because the socket was full: bytes
 * (mem[off, len)) or a file range (fd, from off, len bytes left). */
struct http_seg {
    struct http_seg *next;
    int fd;           /* -1: bytes */
    uint64_t off, len;
    size_t cap;
    char mem[];
};

enum conn_state {
    C_READ,     /* between requests, or reading a head */
    C_EXCHANGE, /* an exchange is open */
    C_LINGER,   /* closing: our side shut, reading what the client still sends */
    C_DEAD,     /* failed: freed once the calls on the stack return */
};

/* What the connection's one timer is counting. */
enum conn_wait { W_NONE, W_HEAD, W_IDLE, W_BODY, W_SEND, W_LINGER };

/* What the connection knows of its input without reading. */
enum conn_edge {
    EDGE_UNKNOWN, /* bytes may be waiting: read */
    EDGE_EMPTY,   /* a short read emptied the socket: the next bytes raise an event */
    EDGE_HANGUP,  /* the peer hung up: read on to the end, whatever the reads return */
};

union http_peer {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

/* What a connection costs at rest (keep-alive, nothing pending) is this
 * struct and nothing else. */
struct http_conn {
    struct http_server *hs;
    struct http_conn *prev, *next;
    struct http_tp tp;
    enum conn_state state;
    enum conn_wait wait;
    enum conn_edge edge;
    bool close;       /* the connection ends after the response in flight */
    bool peer_done;   /* the client sends nothing more: it asked to close */
    bool unread;      /* request bytes we never framed may still come */
    socklen_t peer_len;
    unsigned requests;
    char *in;         /* own input buffer; NULL when nothing is kept */
    size_t in_len, in_cap;
    size_t pinned;    /* bytes before the unconsumed input that hold the open
                         exchange's head (in the scratch or in `in`) */
    struct http_scan scan;
    struct http_exchange *x; /* the exchange in flight, NULL between requests */
    struct http_seg *q, *q_tail; /* output kept back, in order */
    uint64_t q_bytes;
    uint64_t sent;    /* bytes of the response in flight that went out */
    pf_timer timer;
    pf_defer more;    /* the next slice, or output written outside a callback */
    union http_peer peer;
};

/* How the request body is framed, and how far it has been read. */
enum body_framing { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum body_mode { BODY_UNWANTED, BODY_STREAM, BODY_WHOLE, BODY_DISCARD };
enum res_stage { RES_NONE, RES_HEAD, RES_STARTED, RES_ENDED };

struct http_exchange {
    struct http_conn *c;
    struct http_exchange *next_spare;
    struct http_request req;
    int status;
    enum res_stage stage;
    bool invalid;     /* the head was refused: the core answers */
    bool no_body;     /* HEAD, 204, 304: body bytes are dropped */
    bool chunked;     /* the response is chunked */
    bool later;       /* a write said HTTP_RES_LATER */
    bool aborted;
    bool own_date, own_server; /* the handler gave Date, Server */
    size_t head_at;   /* where the head starts in the scratch; SIZE_MAX: not there */
    int64_t length;   /* the response body's length, or HTTP_LENGTH_UNKNOWN */
    uint64_t written; /* body bytes the handler gave */
    uint64_t started_us;
    /* The request body. */
    enum body_framing framing;
    enum body_mode mode;
    bool body_done;   /* every body byte has been read */
    bool continued;   /* 100 Continue went out */
    uint64_t body_left; /* BODY_LENGTH: bytes still to come */
    uint64_t body_seen; /* bytes delivered or discarded */
    struct http_chunked dec;
    http_body_fn *body_cb;
    void *body_ud;
    struct http_buf whole;
    http_ex_fn *on_abort, *on_writable;
    void *abort_ud, *writable_ud;
    struct http_header hdrs[]; /* cfg->limits.max_headers */
};

/* ---- conn.c ---- */
void http_conn_open(struct http_server *hs, int fd, const struct sockaddr *peer,
                    socklen_t peerlen);
void http_conn_drain_all(struct http_server *hs);
/* Close at once (the handler of an open exchange is told). */
void http_conn_close(struct http_conn *c);
/* The unconsumed input of c, after the head of its exchange. */
const char *http_conn_input(struct http_conn *c, size_t *len);
void http_conn_consume(struct http_conn *c, size_t n);
/* Read more input (into c's own buffer when an exchange is open): 1 got
 * some, 0 would block, -1 end of stream or failure. */
int http_conn_fill(struct http_conn *c);
/* Wake c's loop on the next iteration (output to flush, or more to do). */
void http_conn_kick(struct http_conn *c);
/* Wait for wait, for ms: 0, or -ENOMEM when the timer was not running and
 * could not be started (pf_timer_start); the caller then closes c, which
 * would otherwise have no timeout at all. */
int http_conn_arm(struct http_conn *c, enum conn_wait wait, unsigned ms);

/* ---- output.c: the bytes of a connection, in order ---- */
enum flush_result {
    F_FAILED = -1,
    F_FULL,  /* the socket is full: EPOLLOUT resumes */
    F_SLICE, /* a slice of a file went out: the next loop iteration resumes */
    F_DONE,  /* all is out */
};
int http_out_append(struct http_conn *c, const void *p, size_t n);
int http_out_appendv(struct http_conn *c, const struct iovec *v, int n);
int http_out_file(struct http_conn *c, int fd, uint64_t off, uint64_t len);
/* Send the scratch (when c runs) and the kept segments, as far as they go.
 * last: they end the connection (the transport may close its stream with
 * the last bytes: HTTP_TP_LAST). */
enum flush_result http_out_flush(struct http_conn *c, bool last);
bool http_out_pending(const struct http_conn *c);
void http_out_free(struct http_conn *c);

/* ---- exchange.c ---- */
struct http_exchange *http_ex_new(struct http_conn *c);
void http_ex_recycle(struct http_server *hs, struct http_exchange *x);
/* The exchange failed: the handler is told (once) and forgets it. */
void http_ex_abort(struct http_exchange *x);

/* server.c: whether the pool is stopping (a graceful stop has begun, its
 * pre-stop delay included). health.c: the health path, answered when x
 * asks for it (true: x is answered and ended). */
bool http_stopping(const struct http_server *hs);
bool http_health(struct http_exchange *x);
/* Move the head of c's exchange by delta bytes (its buffer moved). */
void http_ex_rebase(struct http_exchange *x, const char *from, size_t len, const char *to);


/* ---- redirect.c ---- */
/* Answer x with a redirect to its URL over https (cfg->https_port). */
void http_redirect_https(struct http_exchange *x);

/* ---- body.c ---- */
/* Read and hand over (or discard) what the body mode asks: 1 progress or
 * nothing left to do, 0 needs more input, -1 the exchange ended (failed). */
int http_body_step(struct http_exchange *x);
/* The response ended with the body not all read: discard the rest if it
 * is small enough, else the connection closes. */
void http_body_discard(struct http_exchange *x);
/* Whether nothing of the body is left in the connection. */
bool http_body_settled(const struct http_exchange *x);
/* Whether the body will not be read away, so the response must close the
 * connection (decided before its head goes out). */
bool http_body_must_close(const struct http_exchange *x);
/* Fail the body: answer status if no response began, tell the handler err. */
void http_body_fail(struct http_exchange *x, int err);

#endif
