/* conn.c — the TLS transport under an HTTP connection: non-blocking handshake and records on the socket, record sizes for latency then throughput, files, close_notify. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/internal.h"

/*
 * The handshake runs inside the first reads: SSL_read on a server that
 * has not finished it goes on with it, so the HTTP core needs no state of
 * its own for it, and its header timeout covers it (a silent or slow
 * handshake is closed like a slow request head).
 *
 * Record sizes (writes without kernel TLS): a record can be decrypted only
 * once all of it has arrived. The first bytes after a quiet spell go in
 * records that each fit one TCP segment, so a browser can parse the head
 * and the start of a page from the first packets; once about one initial
 * congestion window has gone (10 segments, RFC 6928) records are full
 * size, 16 KiB, the cheapest per byte. Without kernel TLS the records of
 * one write leave in one send (sink.c): a quarter of the system calls.
 */
#define SMALL_RECORD 1360        /* payload per record: one 1448-byte segment, with room */
#define SMALL_BYTES (16 * 1024)  /* how much goes in small records */
#define QUIET_MS 1000            /* after this long without writing, small again */
#define WRITE_MAX (64 * 1024)    /* one SSL_write: four full records */
#define FILE_BUF (64 * 1024)
#define SLOW_GATHER (16 * 1024)  /* a gather's plaintext once the socket was found full */

struct tls_conn {
    SSL *ssl;
    size_t wpend;       /* a write that met a full socket: its length, retried as is */
    size_t small_left;  /* bytes still to go in small records */
    uint64_t last_ms;   /* when we last wrote */
    int err;            /* an end or error met after bytes were returned: next read's */
    bool ended;         /* ... that err is waiting */
    bool failed;        /* a fatal error: no close_notify */
    bool shut;          /* close_notify went */
    bool counted;       /* its handshake is in the worker's counters */
    bool gathers;       /* writes go through the sink (no kernel TLS) */
    bool slow;          /* a gather met a full socket: one record each from then on */
    size_t held_plain;  /* the plaintext of records held in the sink, not yet said to have gone */
    struct tls__sink sink;
    char *client_dn;    /* the verified client's subject, made at its first request */
};

/* One worker serves one connection at a time: one buffer for them all. */
static char file_buf[FILE_BUF];

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *tls__error(char *buf, size_t size)
{
    /* The first error is the cause; the later ones say where it surfaced
     * ("PEM lib"). */
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, size, "%s", r ? r : e ? "OpenSSL error" : "unknown error");
    ERR_clear_error();
    return buf;
}

/* What SSL_get_error says, as the transport's -errno. */
static int failure(struct tls_conn *t, int r)
{
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0; /* the peer's close_notify (or its plain close): ours answers it */
    t->failed = true;
    if (e == SSL_ERROR_SYSCALL && errno)
        return errno == EAGAIN ? -EPROTO : -errno;
    char why[160];
    pf_log(PF_LOG_DEBUG, "TLS: %s", tls__error(why, sizeof why));
    return e == SSL_ERROR_SYSCALL ? -ECONNRESET : -EPROTO;
}

/* Plain HTTP on a TLS port: say so, as a client's user can read it, then
 * close. What the client sent is read away first (up to 64 KiB), or the
 * close would reset the connection and lose the answer. */
static void answer_plain(int fd)
{
#define PLAIN_BODY "This port speaks HTTPS: use https:// URLs\n"
    static const char msg[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                              "Content-Length: 42\r\nConnection: close\r\n\r\n" PLAIN_BODY;
    _Static_assert(sizeof PLAIN_BODY - 1 == 42, "Content-Length");
    char sink[4096];
    for (int i = 0; i < 16 && read(fd, sink, sizeof sink) > 0; i++)
        ; /* at most 64 KiB: a client that keeps sending cannot hold us here */
    (void)!send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
}

static bool is_plain_http(void)
{
    return ERR_GET_REASON(ERR_peek_error()) == SSL_R_HTTP_REQUEST;
}

/* A finished handshake, full or resumed, into the metrics (once). */
static void count_handshake(struct tls_conn *t)
{
    pf_worker *w = pf_worker_self();
    t->counted = true;
    if (w)
        pf_worker_count_tls(w, SSL_session_reused(t->ssl));
}

/* The sink's failure as the transport's: -EAGAIN, or the connection's end. */
static int sink_failed(struct tls_conn *t, int err)
{
    if (err != -EAGAIN)
        t->failed = true;
    return err;
}

/* Read records until n bytes are in or the socket is empty: a short read
 * then means the socket is empty (transport.h), which one SSL_read per
 * record could not tell. An end or error met after some bytes is kept for
 * the next call, and pending() says a call is due. */
static ssize_t read_records(struct http_tp *tp, struct tls_conn *t, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t one;
        ERR_clear_error();
        errno = 0;
        int r = SSL_read_ex(t->ssl, (char *)buf + got, n - got, &one);
        if (!t->counted && SSL_is_init_finished(t->ssl))
            count_handshake(t);
        if (r == 1) {
            got += one;
            continue;
        }
        if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_WRITE)
            tp->read_needs_write = true;
        if (SSL_get_error(t->ssl, r) == SSL_ERROR_SSL && is_plain_http())
            answer_plain(tp->fd);
        int err = failure(t, r);
        if (err == -EAGAIN || got == 0)
            return got ? (ssize_t)got : err;
        t->ended = true;
        t->err = err;
        break;
    }
    return (ssize_t)got;
}

/* Without kernel TLS, what OpenSSL writes while reading (a handshake
 * flight, alerts, TLS 1.3 session tickets after the client's Finished) is
 * gathered. When the read brings request bytes it is kept, to leave with
 * the answer in one packet (or at the next read that finds the socket
 * empty); else it is sent now. */
static ssize_t tls_read(struct http_tp *tp, void *buf, size_t n)
{
    struct tls_conn *t = tp->state;
    tp->read_needs_write = false;
    if (t->ended)
        return t->err;
    if (!t->gathers)
        return read_records(tp, t, buf, n);
    tls__sink_rearm(&t->sink);
    tls__sink_begin(&t->sink);
    ssize_t r = read_records(tp, t, buf, n);
    if (r > 0 && tls__sink_keep(&t->sink) == 0)
        return r;
    int err = tls__sink_end(&t->sink, false);
    if (err == -EAGAIN && r == -EAGAIN)
        tp->read_needs_write = true; /* the socket is full: the rest goes when writable */
    if (err < 0 && err != -EAGAIN)
        return sink_failed(t, err); /* records lost or the peer gone: what was read is moot */
    return r;
}

/* close_notify, once, where the handshake finished and nothing failed: a
 * client can tell our end from a cut. It does not wait for the client's. */
static void notify(struct tls_conn *t)
{
    if (t->shut || t->failed || !SSL_is_init_finished(t->ssl))
        return;
    t->shut = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

/* How much the next SSL_write may carry (see the top of this file). */
static size_t write_limit(struct tls_conn *t)
{
    uint64_t now = now_ms();
    if (BIO_get_ktls_send(SSL_get_wbio(t->ssl)))
        return WRITE_MAX; /* the kernel makes the records */
    if (now - t->last_ms >= QUIET_MS)
        t->small_left = SMALL_BYTES;
    t->last_ms = now;
    return t->small_left ? SMALL_RECORD : WRITE_MAX;
}

/* Write p[0, len) in records, up to budget bytes: bytes written, or
 * -errno when none were. A write stopped by a full socket keeps its record
 * in OpenSSL, which wants the same bytes again: their length is kept, the
 * caller gives them again (it has not been told they went). */
static ssize_t write_records(struct tls_conn *t, const char *p, size_t len, size_t budget)
{
    size_t total = 0;
    if (len > budget)
        len = budget;
    while (total < len) {
        size_t chunk = t->wpend ? t->wpend : write_limit(t);
        size_t done;
        if (chunk > len - total)
            chunk = len - total;
        ERR_clear_error();
        errno = 0;
        int r = SSL_write_ex(t->ssl, p + total, chunk, &done);
        if (r != 1) {
            int err = failure(t, r);
            if (err == -EAGAIN)
                t->wpend = chunk;
            return total ? (ssize_t)total : err == 0 ? -EPIPE : err;
        }
        t->wpend = 0;
        t->small_left -= done < t->small_left ? done : t->small_left;
        total += done;
    }
    return (ssize_t)total;
}

/* How much plaintext one write may take (see write_buf). */
static size_t budget(const struct tls_conn *t)
{
    return !t->gathers ? SIZE_MAX : t->slow ? SLOW_GATHER : TLS_SINK_GATHER;
}

/* Write p[0, len): bytes written, or -errno when none were. Without
 * kernel TLS the records of one call are gathered and sent at once
 * (sink.c). When the socket takes only part of them, the call says none
 * went (-EAGAIN), as a plain socket would: the caller gives the same bytes
 * again once the socket is writable, and then the held records go and the
 * call says how many bytes they carried. A client that has once filled
 * its socket gets gathers of one full record from then on: what is held
 * for it stays about the size of the buffer OpenSSL would keep. last: the
 * connection sends nothing after these bytes; once all are in records,
 * close_notify joins them in the same send, whose last packet waits for
 * the FIN of the close that follows. */
static ssize_t write_buf(struct tls_conn *t, const char *p, size_t len, bool last)
{
    if (!t->gathers)
        return write_records(t, p, len, SIZE_MAX);
    if (t->held_plain) {
        int err = tls__sink_flush(&t->sink);
        if (err < 0)
            return sink_failed(t, err);
        size_t done = t->held_plain;
        t->held_plain = 0;
        return done <= len ? (ssize_t)done : sink_failed(t, -EIO);
    }
    tls__sink_begin(&t->sink);
    ssize_t r = write_records(t, p, len, budget(t));
    last = last && r == (ssize_t)len;
    if (last)
        notify(t); /* close_notify leaves with the last bytes */
    int err = tls__sink_end(&t->sink, last);
    if (err < 0 && err != -EAGAIN)
        return sink_failed(t, err);
    if (err == 0 || r <= 0)
        return r;
    t->slow = true;
    t->held_plain = (size_t)r;
    return -EAGAIN;
}

/* Several pieces are copied into one buffer first: records are not cut at
 * each piece's end. Most writes are one piece (head and body together). */
static ssize_t tls_writev(struct http_tp *tp, const struct iovec *iov, int n, unsigned flags)
{
    struct tls_conn *t = tp->state;
    bool last = flags & HTTP_TP_LAST;
    if (n == 1)
        return write_buf(t, iov->iov_base, iov->iov_len, last);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t k = iov[i].iov_len < sizeof file_buf - len ? iov[i].iov_len : sizeof file_buf - len;
        memcpy(file_buf + len, iov[i].iov_base, k);
        len += k;
        last &= k == iov[i].iov_len; /* all of it fits: else not the last bytes yet */
    }
    return write_buf(t, file_buf, len, last);
}

/* A file: with kernel TLS, sendfile itself; else read, then write. */
static ssize_t tls_sendfile(struct http_tp *tp, int fd, uint64_t off, size_t n)
{
    struct tls_conn *t = tp->state;
    if (BIO_get_ktls_send(SSL_get_wbio(t->ssl))) {
        ERR_clear_error();
        ossl_ssize_t r = SSL_sendfile(t->ssl, fd, (off_t)off, n, 0);
        return r >= 0 ? r : failure(t, (int)r);
    }
    if (t->held_plain) /* the records of the first bytes are made: they go first */
        return write_buf(t, NULL, n, false);
    if (n > sizeof file_buf)
        n = sizeof file_buf;
    if (n > budget(t))
        n = budget(t);
    ssize_t got = pread(fd, file_buf, n, (off_t)off);
    if (got <= 0)
        return got < 0 ? -errno : 0;
    return write_buf(t, file_buf, (size_t)got, false);
}

static int tls_shutdown(struct http_tp *tp)
{
    notify(tp->state);
    return shutdown(tp->fd, SHUT_WR) < 0 ? -errno : 0;
}

static bool tls_pending(struct http_tp *tp)
{
    struct tls_conn *t = tp->state;
    return t->ended || SSL_has_pending(t->ssl);
}

static size_t tls_slice(struct http_tp *tp)
{
    (void)tp;
    return WRITE_MAX;
}

/* The subject as RFC 2253 text (malloc'd), or NULL. Only a certificate
 * that verified: with SSL_VERIFY_PEER a bad one has failed the handshake
 * already; a resumed session keeps its client's. */
static char *subject_of(SSL *ssl)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    BIO *b = BIO_new(BIO_s_mem());
    char *text = NULL;
    if (b && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) > 0 &&
        BIO_write(b, "", 1) == 1) /* the NUL */
        BIO_get_mem_data(b, &text);
    text = text ? strdup(text) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return text;
}

/* A connection's client never changes (no renegotiation): its subject is
 * made once, at the first request that asks, not at each. */
static size_t tls_client_dn(struct http_tp *tp, char *buf, size_t size)
{
    struct tls_conn *t = tp->state;
    if (!t->client_dn && SSL_get0_peer_certificate(t->ssl))
        t->client_dn = subject_of(t->ssl);
    if (!t->client_dn || size == 0)
        return 0;
    int n = snprintf(buf, size, "%s", t->client_dn);
    return n > 0 ? ((size_t)n < size ? (size_t)n : size - 1) : 0;
}

static void tls_close(struct http_tp *tp)
{
    struct tls_conn *t = tp->state;
    if (t->gathers) /* what is held (an alert, tickets) goes if it can */
        (void)tls__sink_flush(&t->sink);
    if (!tp->cut)
        notify(t);
    SSL_free(t->ssl);
    tls__sink_close(&t->sink);
    free(t->client_dn);
    free(t);
    tp->state = NULL;
}

const struct http_tp_ops tls__tp = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .shutdown = tls_shutdown,
    .pending = tls_pending,
    .slice = tls_slice,
    .close = tls_close,
    .client_dn = tls_client_dn,
    .secure = true,
};

/* Reads and writes through the sink, one BIO both ways. 1 on success, as
 * SSL_set_fd. */
static int set_bio(struct tls_conn *t, int fd)
{
    BIO *b = tls__sink_bio(&t->sink, fd);
    if (!b)
        return 0;
    SSL_set_bio(t->ssl, b, b);
    return 1;
}

int tls__conn_open(struct http_tp *tp, SSL_CTX *ctx)
{
    struct tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->ssl = SSL_new(ctx);
    t->gathers = !(SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS);
    if (!t->ssl || (t->gathers ? set_bio(t, tp->fd) : SSL_set_fd(t->ssl, tp->fd)) != 1) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_accept_state(t->ssl);
    tp->ops = &tls__tp;
    tp->state = t;
    return 0;
}
