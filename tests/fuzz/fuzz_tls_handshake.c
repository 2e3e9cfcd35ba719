/* fuzz_tls_handshake.c — libFuzzer target: whatever a client sends first on a TLS port, read by the TLS transport as the HTTP core would, with the server's real context. */
/* fuzz-sources: src/tls/conn.c src/tls/sink.c src/tls/context.c src/tls/tickets.c src/tls/sessions.c src/tls/ocsp.c src/tls/config.c src/lib/core/log.c src/lib/core/clock.c */
/* fuzz-libs: -lssl -lcrypto */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls/internal.h"

/*
 * Each input goes to the server's end of a socketpair as the client's
 * bytes, then the client's side closes; the transport reads (the handshake
 * runs inside the reads) until it would wait, ends or fails, and the
 * connection is closed. OpenSSL parses the records; what is fuzzed is our
 * glue: the read loop, the errors, plain HTTP's answer, the ticket
 * callback on a ticket the input carries, close_notify. The certificate is
 * made at start-up, in a temporary folder.
 */

static struct tls__set *set;

static void write_pem(const char *path, EVP_PKEY *k, X509 *x)
{
    FILE *f = fopen(path, "w");
    if (!f || !(k ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x)))
        abort();
    fclose(f);
}

static void setup(void)
{
    char dir[] = "/tmp/fuzz-tls-XXXXXX", cert[64], key[64], why[256];
    if (!mkdtemp(dir))
        abort();
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    write_pem(cert, NULL, x);
    write_pem(key, k, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
    struct tls_config tc;
    tls_config_init(&tc);
    tc.pairs[0] = (struct tls_pair){cert, key, NULL};
    tc.ncerts = tc.nkeys = 1;
    if (tls__sink_init() < 0 || tls__keys_init() < 0 || tls__sessions_init(64) < 0 ||
        tls__set_load(&tc, false, &set, why, sizeof why) < 0) {
        fprintf(stderr, "fuzz_tls_handshake: %s\n", why);
        abort();
    }
    unlink(cert);
    unlink(key);
    rmdir(dir);
    signal(SIGPIPE, SIG_IGN);
    pf_log_set_level(PF_LOG_ERROR);
}

/* The worker's counters, which the transport bumps after a handshake: no
 * worker here. */
pf_worker *pf_worker_self(void) { return NULL; }
void pf_worker_count_tls(pf_worker *w, bool resumed) { (void)w, (void)resumed; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    char buf[4096];
    int sv[2];
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return 0;
    if (size && write(sv[1], data, size) < 0)
        size = 0;
    shutdown(sv[1], SHUT_WR);
    struct http_tp tp = {NULL, sv[0], NULL, false};
    if (tls__conn_open(&tp, set->ctx[0]) < 0)
        abort(); /* nothing would be fuzzed */
    for (int i = 0; i < 64; i++) {
        ssize_t n = tp.ops->read(&tp, buf, sizeof buf);
        if (n <= 0 && !(n == -EAGAIN && tp.ops->pending(&tp)))
            break;
        while (read(sv[1], buf, sizeof buf) > 0)
            ; /* what the server answered: keep its socket writable */
    }
    tp.ops->close(&tp);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
