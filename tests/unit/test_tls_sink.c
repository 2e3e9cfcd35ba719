/* test_tls_sink.c — the socket writer under TLS connections: a gather leaves in one send, what a full socket refuses is held and goes first, in order. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/internal.h"

/* A SOCK_SEQPACKET pair keeps each send whole: one recv, one send. */
static int sv[2];
static struct tls__sink sink;
static BIO *bio;

static void setup(void)
{
    cr_assert_eq(tls__sink_init(), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
    bio = tls__sink_bio(&sink, sv[0]);
    cr_assert_not_null(bio);
}

static void teardown(void)
{
    BIO_free(bio);
    tls__sink_close(&sink);
    tls__sink_free_method();
    close(sv[0]);
    close(sv[1]);
}

TestSuite(tls_sink, .init = setup, .fini = teardown, .timeout = 30);

/* The next message on the peer's end, into buf: its length, or -1. */
static ssize_t message(char *buf, size_t size)
{
    return recv(sv[1], buf, size, MSG_DONTWAIT);
}

Test(tls_sink, a_gather_leaves_in_one_send)
{
    static char rec[3][16 * 1024 + 22], got[80 * 1024];
    for (int i = 0; i < 3; i++)
        memset(rec[i], 'a' + i, sizeof rec[i]);
    tls__sink_begin(&sink);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(BIO_write(bio, rec[i], sizeof rec[i]), (int)sizeof rec[i]);
    cr_assert_eq(BIO_wpending(bio), 3 * sizeof rec[0]);
    cr_assert_eq(BIO_flush(bio), 1); /* inside a gather: end sends */
    cr_assert_eq(message(got, sizeof got), -1, "nothing before end");
    cr_assert_eq(tls__sink_end(&sink, false), 0);
    cr_assert_eq(message(got, sizeof got), (ssize_t)(3 * sizeof rec[0]), "one message");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(memcmp(got + i * sizeof rec[0], rec[i], sizeof rec[i]), 0);
    /* Outside a gather, a write is a send of its own. */
    cr_assert_eq(BIO_write(bio, "alert", 5), 5);
    cr_assert_eq(message(got, sizeof got), 5);
    cr_assert_eq(BIO_wpending(bio), 0);
}

/* Kept bytes (a read's tickets) wait, then lead the next gather's send. */
Test(tls_sink, kept_bytes_lead_the_next_send)
{
    char got[64];
    tls__sink_begin(&sink);
    cr_assert_eq(BIO_write(bio, "tickets|", 8), 8);
    cr_assert_eq(tls__sink_keep(&sink), 0);
    cr_assert_eq(message(got, sizeof got), -1, "kept, not sent");
    cr_assert_eq(BIO_wpending(bio), 8);
    tls__sink_begin(&sink);
    cr_assert_eq(BIO_write(bio, "answer", 6), 6);
    cr_assert_eq(tls__sink_end(&sink, false), 0);
    cr_assert_eq(message(got, sizeof got), 14, "one message");
    cr_assert_eq(memcmp(got, "tickets|answer", 14), 0);
    cr_assert_null(sink.held);
    /* Kept, then a write outside a gather: they go first, each a send. */
    tls__sink_begin(&sink);
    cr_assert_eq(BIO_write(bio, "kept", 4), 4);
    cr_assert_eq(tls__sink_keep(&sink), 0);
    cr_assert_eq(BIO_write(bio, "alert", 5), 5);
    cr_assert_eq(message(got, sizeof got), 4);
    cr_assert_eq(message(got, sizeof got), 5);
    cr_assert_eq(memcmp(got, "alert", 5), 0);
}

/* Fill the socket with gathers until one is refused in part: its rest is
 * held. Every byte comes out once, in order, once the peer reads. */
Test(tls_sink, a_full_socket_holds_the_rest_which_goes_first)
{
    int sndbuf = 32 * 1024; /* a few pieces, each sent whole (a packet socket) */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    static char piece[8 * 1024], got[64 * 1024];
    int n = 0, err = 0;
    while (err == 0 && n < 1000) {
        memset(piece, n, sizeof piece);
        tls__sink_begin(&sink);
        cr_assert_eq(BIO_write(bio, piece, sizeof piece), (int)sizeof piece);
        err = tls__sink_end(&sink, false);
        n++;
    }
    cr_assert_eq(err, -EAGAIN, "the socket never filled");
    cr_assert_gt(BIO_wpending(bio), 0);
    /* A write outside a gather (an alert) waits behind what is held. */
    cr_assert_eq(BIO_write(bio, "x", 1), -1);
    cr_assert(BIO_should_retry(bio) && BIO_should_write(bio));
    cr_assert_eq(BIO_flush(bio), 0);
    cr_assert(BIO_should_retry(bio));
    /* A gather meanwhile goes on behind it too. */
    memset(piece, n, sizeof piece);
    tls__sink_begin(&sink);
    cr_assert_eq(BIO_write(bio, piece, sizeof piece), (int)sizeof piece);
    cr_assert_eq(tls__sink_end(&sink, false), -EAGAIN);
    n++;
    /* Read everything: pieces 0..n-1, each byte its piece's number. */
    size_t total = 0, want = (size_t)n * sizeof piece;
    for (int spins = 0; total < want && spins < 100000; spins++) {
        ssize_t m = message(got, sizeof got);
        for (ssize_t i = 0; i < m; i++)
            cr_assert_eq((unsigned char)got[i], (unsigned char)((total + (size_t)i) / sizeof piece),
                         "byte %zu", total + (size_t)i);
        total += m > 0 ? (size_t)m : 0;
        int f = tls__sink_flush(&sink);
        cr_assert(f == 0 || f == -EAGAIN, "flush: %d", f);
    }
    cr_assert_eq(total, want);
    cr_assert_eq(tls__sink_flush(&sink), 0);
    cr_assert_eq(BIO_wpending(bio), 0);
    cr_assert_null(sink.held, "held is freed once sent");
}

Test(tls_sink, a_closed_peer_is_an_error)
{
    close(sv[1]);
    sv[1] = -1;
    tls__sink_begin(&sink);
    cr_assert_eq(BIO_write(bio, "abc", 3), 3);
    cr_assert_eq(tls__sink_end(&sink, false), -EPIPE);
    errno = 0;
    cr_assert_eq(BIO_write(bio, "abc", 3), -1);
    cr_assert_not(BIO_should_retry(bio));
    cr_assert_eq(errno, EPIPE);
}
