/* internal.h — what the TLS module's files share (tls__ names): the loaded contexts, the ticket keys, kernel TLS, the transport. */
#ifndef PF_TLS_INTERNAL_H
#define PF_TLS_INTERNAL_H

#include <stdint.h>
#include <openssl/ssl.h>

#include "tls/tls.h"
#include "http/transport.h"

/* context.c: one SSL_CTX per certificate pair, the first the default; the
 * others are chosen by the name the client asks for (SNI). Made whole by
 * the master (at start, and again on each HUP), inherited by the workers
 * at fork. */
struct tls__staple {
    unsigned char *der; /* an OCSP response, or NULL */
    size_t len;
};
struct tls__set {
    SSL_CTX *ctx[TLS_MAX_PAIRS];
    X509 *cert[TLS_MAX_PAIRS]; /* the leaf of each chain, owned by its ctx */
    struct tls__staple staple[TLS_MAX_PAIRS];
    int n;
};
int tls__set_load(const struct tls_config *tc, bool ktls, struct tls__set **out, char *why,
                  size_t size);
void tls__set_free(struct tls__set *set);
extern struct tls__set *tls__active; /* what new connections get */

/* ocsp.c: read an OCSP response file and check that it is a current
 * "good" about cert; staple it to handshakes of ctx that ask for one. */
int tls__ocsp_load(const char *path, X509 *cert, struct tls__staple *st, char *why,
                   size_t size);
void tls__ocsp_use(SSL_CTX *ctx, struct tls__staple *st);

/* tickets.c: the session-ticket keys, shared by the master and every
 * worker (one mapping, made before the first fork). */
#define TLS_KEYS 3
int tls__keys_init(void);
void tls__keys_rotate(void);
void tls__keys_free(void);
void tls__keys_use(SSL_CTX *ctx); /* seal and open this context's tickets with them */

/* sessions.c: TLS 1.2 sessions by ID, shared by every worker (one
 * mapping of `entries` slots, made before the first fork; 0: none), for
 * clients that resume without tickets. put: -EBUSY when the slot is being
 * written (not kept), -EINVAL when it does not fit; get: the session's
 * length in der (room for TLS_SESSION_MAX), or 0. */
#define TLS_SESSION_MAX 452
int tls__sessions_init(unsigned entries);
void tls__sessions_free(void);
void tls__sessions_use(SSL_CTX *ctx); /* this context's session cache (or none) */
int tls__sessions_put(const unsigned char *id, size_t id_len, const unsigned char *der,
                      size_t len, int64_t expires);
size_t tls__sessions_get(const unsigned char *id, size_t id_len, unsigned char *der);
void tls__sessions_remove(const unsigned char *id, size_t id_len);

/* ktls.c: whether the kernel can take over the record layer ("tls" in
 * /proc/sys/net/ipv4/tcp_available_ulp). */
bool tls__ktls_available(void);

/* sink.c: the BIO OpenSSL reads and writes a connection's records
 * through when the kernel does not make them. Reads: one that comes back
 * short marks the socket empty, and later ones say "retry" without a
 * system call until tls__sink_rearm (at each transport read: the event
 * loop has run since). Writes: between begin and end, the records of several
 * writes are gathered and sent at once, after what is held (end: 0 when
 * all went, -EAGAIN when the socket took only part and the rest is held,
 * or -errno); keep ends a gather by holding it, unsent (0 or -ENOMEM, then
 * still gathering); a write outside begin/end, or flush, sends what is
 * held first. One method, made by the master before the workers fork. */
#define TLS_SINK_GATHER (64 * 1024) /* the most plaintext one gather carries */
struct tls__sink {
    int fd;
    bool gathering;
    bool overflow; /* this gather outgrew the shared buffer: it goes on in held */
    bool drained;  /* a read came back short: the socket is empty until rearmed */
    bool eof;      /* a read met the end of the stream */
    char *held; /* records the socket did not take yet, allocated while there are */
    size_t held_len, held_off, held_cap;
};
int tls__sink_init(void);
void tls__sink_free_method(void);
BIO *tls__sink_bio(struct tls__sink *s, int fd);
void tls__sink_begin(struct tls__sink *s);
int tls__sink_end(struct tls__sink *s, bool last); /* last: the FIN follows (MSG_MORE) */
int tls__sink_keep(struct tls__sink *s);
int tls__sink_flush(struct tls__sink *s); /* 0: nothing held; -EAGAIN; -errno */
void tls__sink_rearm(struct tls__sink *s);
void tls__sink_close(struct tls__sink *s);

/* conn.c: the transport (read, write, files, close_notify). */
extern const struct http_tp_ops tls__tp;
int tls__conn_open(struct http_tp *tp, SSL_CTX *ctx);

/* conn.c: OpenSSL's first queued error as text, and the queue cleared. */
const char *tls__error(char *buf, size_t size);

#endif
