/* transport.h — the seam under a connection: how its bytes are read and written (plain TCP here; TLS plugs in beside it). */
#ifndef PF_HTTP_TRANSPORT_H
#define PF_HTTP_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * A connection does all its I/O through these calls, never on the socket
 * itself, so that a transport that keeps state above the socket (TLS
 * records) fits under it unchanged. The rules a transport keeps:
 *   - every call is non-blocking: -EAGAIN when it cannot go on now, and an
 *     event on tp->fd (readable or writable) says when to try again;
 *   - read returns bytes (> 0), 0 at the end of the stream, or -errno;
 *   - a read that returns less than asked has emptied the socket only if
 *     pending() says false: bytes held above the socket raise no event;
 *   - sendfile may return -ENOTSUP: the caller reads the file and writes;
 *   - a read that must write first (a TLS handshake whose socket is full)
 *     sets tp->read_needs_write and returns -EAGAIN: then the writable
 *     event is the one to read again on;
 *   - close releases the transport's state; the caller closes tp->fd.
 */
struct http_tp;

/* writev's flags. MORE: further bytes follow at once (MSG_MORE: hold a
 * short packet). LAST: these are the last bytes the connection sends (it
 * is closed or shut down right after): a transport may end its stream
 * with them (TLS: close_notify in the same send, once all are taken) and
 * hold their last packet for the FIN to join it. */
#define HTTP_TP_MORE 1u
#define HTTP_TP_LAST 2u

struct http_tp_ops {
    const char *name;
    ssize_t (*read)(struct http_tp *tp, void *buf, size_t n);
    ssize_t (*writev)(struct http_tp *tp, const struct iovec *iov, int n, unsigned flags);
    ssize_t (*sendfile)(struct http_tp *tp, int fd, uint64_t off, size_t n);
    /* Our side is done sending (the peer reads an end of stream). */
    int (*shutdown)(struct http_tp *tp);
    bool (*pending)(struct http_tp *tp);
    /* How many bytes of a file to send in one loop iteration. */
    size_t (*slice)(struct http_tp *tp);
    void (*close)(struct http_tp *tp);
    /* The subject of the certificate the client gave and the server
     * verified (RFC 2253 text) into buf: its length, 0 when none (NULL:
     * never one). */
    size_t (*client_dn)(struct http_tp *tp, char *buf, size_t size);
    bool secure; /* the bytes are encrypted (TLS): http_ex_secure says so */
};

struct http_tp {
    const struct http_tp_ops *ops;
    int fd;
    void *state; /* the transport's own, NULL for plain TCP */
    bool read_needs_write; /* see the rules above */
    bool cut; /* set before close: the connection ends in the middle of an
                 exchange, so the transport must not say it ended cleanly */
    /* The plain transport's file slice (transport.c): the last figure, and
     * how many more slices it serves before the MSS is read again. */
    size_t slice;
    unsigned slice_uses;
};

/* Chooses each new connection's transport: open() is given tp with the
 * plain transport on the accepted socket, and may put another in its
 * place (tp->ops, tp->state). Returns 0, or -errno: the connection is
 * then closed. Set in http_config.transport; NULL: plain for all. */
struct http_tp_source {
    int (*open)(struct http_tp *tp, void *ud);
    void *ud;
};

/* Plain sockets: TCP, or Unix stream sockets. */
extern const struct http_tp_ops http_tp_plain;

/* The transport the server's next connections get (plain by default). */
struct http_server;
void http_server_set_transport(struct http_server *s, const struct http_tp_ops *ops);

#endif
