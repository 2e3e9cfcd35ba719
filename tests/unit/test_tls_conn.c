/* test_tls_conn.c — the TLS transport against an OpenSSL client over a socketpair: the handshake in reads, tickets with the answer, whole reads, short reads, close_notify, record sizes, writes stopped by a full socket, plain HTTP, the loading errors. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls/internal.h"

/* A self-signed certificate and key, made here: no key is committed. */
static char dir[64], cert[128], key[128];
static struct tls_config tc;

static void write_pem(const char *path, EVP_PKEY *k, X509 *x)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert(k ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)
                : PEM_write_X509(f, x));
    fclose(f);
}

static void make_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    cr_assert(k && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    cr_assert(X509_sign(x, k, EVP_sha256()) > 0);
    write_pem(cert, NULL, x);
    write_pem(key, k, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/tlsunit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    make_cert();
    tls_config_init(&tc);
    const char *why;
    cr_assert_eq(tls_config_set(&tc, "tls-cert", cert, &why), 0);
    cr_assert_eq(tls_config_set(&tc, "tls-key", key, &why), 0);
}

static void teardown(void)
{
    tls_unload();
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

TestSuite(tls_conn, .init = setup, .fini = teardown, .timeout = 60);

/* ---- a connection: our transport on one end, an OpenSSL client on the other ---- */

struct pair {
    struct http_tp tp; /* the server's end */
    int cfd;
    SSL_CTX *cctx;
    SSL *c;
};

static void open_pair(struct pair *p)
{
    char why[256];
    int sv[2];
    cr_assert_eq(tls_load(&tc, why, sizeof why), 0, "%s", why);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p->tp = (struct http_tp){.ops = &http_tp_plain, .fd = sv[0]};
    cr_assert_eq(tls__conn_open(&p->tp, tls__active->ctx[0]), 0);
    cr_assert_eq(p->tp.ops, &tls__tp);
    p->cfd = sv[1];
    p->cctx = SSL_CTX_new(TLS_client_method());
    p->c = SSL_new(p->cctx);
    SSL_set_fd(p->c, p->cfd);
    SSL_set_connect_state(p->c);
}

static void close_pair(struct pair *p)
{
    p->tp.ops->close(&p->tp);
    close(p->tp.fd);
    SSL_free(p->c);
    SSL_CTX_free(p->cctx);
    close(p->cfd);
}

/* Both sides step until the handshake is done; the server only through
 * its reads, as the HTTP core drives it. Then a first request goes over,
 * read until the socket is empty (as the core reads): the session tickets
 * kept to go with an answer leave then. The client takes them in, so
 * that later bytes are application data only. */
static void handshake(struct pair *p)
{
    char buf[64];
    int i;
    for (i = 0; i < 100 && SSL_do_handshake(p->c) != 1; i++)
        cr_assert_eq(p->tp.ops->read(&p->tp, buf, sizeof buf), -EAGAIN);
    cr_assert_lt(i, 100, "no handshake");
    cr_assert_eq(SSL_write(p->c, "ping", 4), 4);
    cr_assert_eq(p->tp.ops->read(&p->tp, buf, sizeof buf), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    cr_assert_eq(p->tp.ops->read(&p->tp, buf, sizeof buf), -EAGAIN);
    cr_assert_lt(SSL_read(p->c, buf, sizeof buf), 0); /* the ticket, no data */
}

/* TLS 1.3 session tickets, made when the client's Finished is read, wait
 * for the answer to the request read with it and leave in its send; a
 * read that finds the socket empty sends them. */
Test(tls_conn, tickets_leave_with_the_answer)
{
    struct pair p;
    open_pair(&p);
    char buf[64];
    int i;
    for (i = 0; i < 100 && SSL_do_handshake(p.c) != 1; i++)
        cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), -EAGAIN);
    cr_assert_lt(i, 100, "no handshake");
    cr_assert_eq(SSL_write(p.c, "ping", 4), 4);
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), 4);
    cr_assert_eq(recv(p.cfd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT), -1, "tickets sent alone");
    struct iovec iov = {"pong", 4};
    cr_assert_eq(p.tp.ops->writev(&p.tp, &iov, 1, 0), 4);
    cr_assert_eq(SSL_read(p.c, buf, sizeof buf), 4);
    cr_assert_eq(memcmp(buf, "pong", 4), 0);
    cr_assert_eq(SSL_SESSION_is_resumable(SSL_get0_session(p.c)), 1, "no ticket came");
    /* Another request, read to the end of the socket: nothing waits. */
    cr_assert_eq(SSL_write(p.c, "ping", 4), 4);
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), 4);
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), -EAGAIN);
    cr_assert_eq(recv(p.cfd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT), -1);
    close_pair(&p);
}

/* The client sends n records of 100 bytes. */
static void client_records(struct pair *p, int n)
{
    char rec[100];
    memset(rec, 'r', sizeof rec);
    for (int i = 0; i < n; i++)
        cr_assert_eq(SSL_write(p->c, rec, sizeof rec), (int)sizeof rec);
}

Test(tls_conn, reads_take_every_record_in)
{
    struct pair p;
    open_pair(&p);
    handshake(&p);
    char buf[4096];
    client_records(&p, 3);
    /* Three records, one read: a short read means the socket is empty. */
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), 300);
    cr_assert_not(p.tp.ops->pending(&p.tp));
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), -EAGAIN);
    /* Into a small buffer: the rest is held above the socket, and
     * pending() says so. */
    client_records(&p, 3);
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, 150), 150);
    cr_assert(p.tp.ops->pending(&p.tp));
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), 150);
    /* The client's close_notify: the end of the stream. */
    SSL_shutdown(p.c);
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), 0);
    close_pair(&p);
}

/* read() calls this thread has made (/proc/thread-self/io counts them;
 * the read of the file itself is counted once it is done). */
static long reads_made(void)
{
    char buf[512];
    int fd = open("/proc/thread-self/io", O_RDONLY);
    cr_assert_geq(fd, 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    const char *at = strstr(buf, "syscr: ");
    cr_assert_not_null(at);
    return atol(at + 7);
}

/* A read that comes back short has emptied the socket: OpenSSL's next ask
 * is answered "retry" without a system call, until the next transport
 * read (an event has come since). */
Test(tls_conn, a_short_read_empties_the_socket)
{
    struct pair p;
    open_pair(&p);
    handshake(&p);
    char buf[4096];
    client_records(&p, 3);
    long base = reads_made();
    base = reads_made() - base; /* what one look costs */
    long r0 = reads_made();
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), 300);
    cr_assert_eq(reads_made() - r0 - base, 1, "one read(), not one more to meet EAGAIN");
    /* The next transport read asks the kernel again, and sees what came. */
    client_records(&p, 1);
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), 100);
    r0 = reads_made();
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), -EAGAIN);
    cr_assert_eq(reads_made() - r0 - base, 1);
    close_pair(&p);
}

/* The last bytes a connection sends carry close_notify: the client reads
 * the answer, then the end of the stream, before the server closes. */
Test(tls_conn, the_last_bytes_carry_close_notify)
{
    struct pair p;
    open_pair(&p);
    handshake(&p);
    char buf[64];
    struct iovec iov[2] = {{"po", 2}, {"ng", 2}};
    cr_assert_eq(p.tp.ops->writev(&p.tp, iov, 2, HTTP_TP_LAST), 4);
    cr_assert_eq(SSL_read(p.c, buf, sizeof buf), 4);
    cr_assert_eq(memcmp(buf, "pong", 4), 0);
    int r = SSL_read(p.c, buf, sizeof buf);
    cr_assert_eq(SSL_get_error(p.c, r), SSL_ERROR_ZERO_RETURN, "no close_notify yet");
    close_pair(&p);
}

/* close_notify at close says the stream ended whole; a connection cut in
 * the middle of an exchange (tp.cut) ends without one, so a client cannot
 * take a body cut short for a whole one. */
Test(tls_conn, a_cut_connection_ends_without_close_notify)
{
    for (int cut = 0; cut < 2; cut++) {
        struct pair p;
        open_pair(&p);
        handshake(&p);
        char buf[64];
        struct iovec iov = {"part", 4};
        cr_assert_eq(p.tp.ops->writev(&p.tp, &iov, 1, 0), 4);
        p.tp.cut = cut;
        p.tp.ops->close(&p.tp);
        p.tp.ops = &http_tp_plain; /* closed: close_pair closes nothing more */
        shutdown(p.tp.fd, SHUT_WR);
        cr_assert_eq(SSL_read(p.c, buf, sizeof buf), 4);
        int r = SSL_read(p.c, buf, sizeof buf);
        int e = SSL_get_error(p.c, r);
        if (cut)
            cr_assert_neq(e, SSL_ERROR_ZERO_RETURN, "close_notify after a cut");
        else
            cr_assert_eq(e, SSL_ERROR_ZERO_RETURN, "no close_notify after a whole exchange");
        ERR_clear_error();
        close_pair(&p);
    }
}

/* The first 16 KiB go in records of one TCP segment each, then full ones. */
Test(tls_conn, small_records_first)
{
    struct pair p;
    open_pair(&p);
    handshake(&p);
    static char body[64 * 1024], raw[96 * 1024];
    memset(body, 'b', sizeof body);
    struct iovec iov = {body, sizeof body};
    cr_assert_eq(p.tp.ops->writev(&p.tp, &iov, 1, 0), (ssize_t)sizeof body);
    ssize_t n = read(p.cfd, raw, sizeof raw);
    cr_assert_gt(n, (ssize_t)sizeof body);
    int small = 0, full = 0, i = 0;
    for (ssize_t at = 0; at + 5 <= n; i++) {
        size_t len = (size_t)(unsigned char)raw[at + 3] << 8 | (unsigned char)raw[at + 4];
        cr_assert_eq(raw[at], 0x17, "record %d is not application data", i);
        if (len <= 1360 + 17)
            small += full == 0;
        else
            full++;
        at += 5 + (ssize_t)len;
        cr_assert(len <= 1360 + 17 || len >= 16384 || at == n, "record %d: %zu bytes", i, len);
    }
    cr_assert(small >= 12 && small <= 13, "%d small records first", small);
    cr_assert_geq(full, 2, "then full ones: %d", full);
    close_pair(&p);
}

/* A socket that fills: the write stops with -EAGAIN and OpenSSL keeps a
 * record; the caller gives the same bytes again and every byte arrives
 * once, in order. */
Test(tls_conn, writes_stopped_by_a_full_socket)
{
    struct pair p;
    open_pair(&p);
    int small = 4096;
    setsockopt(p.tp.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    handshake(&p);
    size_t total = 1 << 20, sent = 0, got = 0;
    unsigned char *src = malloc(total), *dst = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (unsigned char)(i * 7 + i / 251);
    int stops = 0;
    while (got < total) {
        if (sent < total) {
            struct iovec iov = {src + sent, total - sent};
            ssize_t r = p.tp.ops->writev(&p.tp, &iov, 1, 0);
            if (r == -EAGAIN)
                stops++;
            else
                cr_assert_gt(r, 0, "write: %zd", r);
            sent += r > 0 ? (size_t)r : 0;
        }
        int r = SSL_read(p.c, dst + got, 8192);
        got += r > 0 ? (size_t)r : 0;
    }
    cr_assert_gt(stops, 10, "the socket never filled");
    cr_assert_eq(memcmp(src, dst, total), 0, "bytes differ");
    free(src);
    free(dst);
    close_pair(&p);
}

/* A file, read and encrypted in the worker (no kernel TLS on a Unix socket). */
Test(tls_conn, files_are_read_and_written)
{
    struct pair p;
    open_pair(&p);
    handshake(&p);
    char path[160];
    snprintf(path, sizeof path, "%s/f", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 100000; i++)
        fputc('a' + i % 26, f);
    fclose(f);
    int fd = open(path, O_RDONLY);
    char dst[100000];
    size_t got = 0;
    uint64_t off = 10;
    while (got < 100000 - 10) {
        if (off < 100000) {
            ssize_t r = p.tp.ops->sendfile(&p.tp, fd, off, 100000 - off);
            cr_assert(r > 0 || r == -EAGAIN, "sendfile: %zd", r);
            off += r > 0 ? (uint64_t)r : 0;
        }
        int r = SSL_read(p.c, dst + got, (int)(sizeof dst - got));
        got += r > 0 ? (size_t)r : 0;
    }
    for (size_t i = 0; i < got; i++)
        cr_assert_eq(dst[i], 'a' + (int)((i + 10) % 26), "byte %zu", i);
    close(fd);
    unlink(path);
    close_pair(&p);
}

Test(tls_conn, plain_http_is_answered)
{
    struct pair p;
    open_pair(&p);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(write(p.cfd, req, sizeof req - 1), (ssize_t)sizeof req - 1);
    char buf[512];
    cr_assert_eq(p.tp.ops->read(&p.tp, buf, sizeof buf), -EPROTO);
    ssize_t n = read(p.cfd, buf, sizeof buf - 1);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert(strncmp(buf, "HTTP/1.1 400 ", 13) == 0 && strstr(buf, "https://"), "%s", buf);
    close_pair(&p);
}

Test(tls_conn, loading_errors_say_which_file)
{
    char why[256];
    struct tls_config bad = tc;
    bad.pairs[0].key = cert;
    cr_assert_eq(tls_load(&bad, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "--tls-key") && strstr(why, cert), "%s", why);
    bad = tc;
    bad.nkeys = 0;
    cr_assert_eq(tls_load(&bad, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "in pairs"), "%s", why);
    bad = tc;
    bad.pairs[0].cert = "/nonexistent/c.pem";
    cr_assert_eq(tls_load(&bad, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "No such file"), "%s", why);
    const char *w;
    cr_assert_eq(tls_config_set(&bad, "tls-ticket-rotate", "0", &w), -EINVAL);
    cr_assert_eq(tls_config_set(&bad, "tls-ticket-rotate", "60", &w), 0);
    cr_assert_eq(bad.ticket_rotate_s, 60u);
    cr_assert_eq(bad.session_cache, 20000u, "the default session cache");
    cr_assert_eq(tls_config_set(&bad, "tls-session-cache", "x", &w), -EINVAL);
    cr_assert_eq(tls_config_set(&bad, "tls-session-cache", "1000001", &w), -EINVAL);
    cr_assert_eq(tls_config_set(&bad, "tls-session-cache", "0", &w), 0);
    cr_assert_eq(bad.session_cache, 0u);
    cr_assert_eq(tls_config_set(&bad, "nope", "1", &w), -ENOENT);
}

/* A session from one connection, offered on a new one after rot key
 * rotations: whether it resumed. The client reads the ticket that comes
 * with the first answer (handshake() does), and keeps the session. */
static bool resumes_after(SSL_SESSION **sess, int rot)
{
    struct pair p;
    open_pair(&p);
    if (*sess)
        SSL_set_session(p.c, *sess);
    handshake(&p);
    bool reused = SSL_session_reused(p.c);
    SSL_SESSION_free(*sess);
    *sess = SSL_get1_session(p.c);
    SSL_shutdown(p.c);
    close_pair(&p);
    for (int i = 0; i < rot; i++)
        tls__keys_rotate();
    return reused;
}

/* The ring keeps three keys: a ticket opens after one and two rotations
 * (each resumption brings a ticket under the newest key, so the chain
 * goes on), and no longer once its key has been replaced. */
Test(tls_conn, tickets_survive_two_rotations_not_three)
{
    SSL_SESSION *sess = NULL;
    cr_assert_not(resumes_after(&sess, 0), "a first connection cannot resume");
    cr_assert(resumes_after(&sess, 1), "at once");
    cr_assert(resumes_after(&sess, 2), "after one rotation");
    cr_assert(resumes_after(&sess, 3), "after two rotations");
    cr_assert_not(resumes_after(&sess, 0), "after three rotations the key is gone");
    SSL_SESSION_free(sess);
}
