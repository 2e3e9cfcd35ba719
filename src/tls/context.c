/* context.c — one OpenSSL context per certificate pair, with the protocol defaults, ALPN and the choice by SNI. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/internal.h"

struct tls__set *tls__active;

/* Mozilla's "intermediate" configuration (version 5.7): TLS 1.2 suites
 * with forward secrecy and AEAD only, TLS 1.3's three, and its groups. */
#define CIPHERS_12 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
                   "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" \
                   "DHE-RSA-CHACHA20-POLY1305"
#define CIPHERS_13 "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define GROUPS "X25519:prime256v1:secp384r1"

/* Every context resumes the others' sessions: one session id context. */
static const unsigned char sid_ctx[] = "prefork";

/* ALPN: HTTP/1.1 is all we speak. A client that offers protocols but not
 * this one cannot be served: a fatal no_application_protocol alert, as
 * RFC 7301 says. One that offers none goes on without ALPN. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *ud)
{
    (void)ssl, (void)ud;
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof h11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* SNI: the first pair whose certificate covers the name (its subject
 * alternative names, wildcards as browsers take them); none: the default.
 * The set is the one the connection started with (its SSL_CTX's ex data
 * is not needed: a worker's tls__active never changes). */
static int on_servername(SSL *ssl, int *alert, void *ud)
{
    (void)alert;
    const struct tls__set *set = ud;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || set->n < 2)
        return SSL_TLSEXT_ERR_OK;
    for (int i = 0; i < set->n; i++)
        if (X509_check_host(set->cert[i], name, 0, 0, NULL) == 1) {
            if (i > 0)
                SSL_set_SSL_CTX(ssl, set->ctx[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_OK;
}

/* A key with a passphrase would make OpenSSL ask on the terminal: refuse. */
static int no_passphrase(char *buf, int size, int rw, void *ud)
{
    (void)buf, (void)size, (void)rw, (void)ud;
    return -1;
}

static void defaults(SSL_CTX *ctx, bool ktls, unsigned rotate_s, unsigned min_version)
{
    SSL_CTX_set_min_proto_version(ctx, min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    /* No renegotiation either way (OpenSSL 3 refuses a client's unless
     * SSL_OP_ALLOW_CLIENT_RENEGOTIATION; this also stops our own). A peer
     * that closes without close_notify is an end of stream: HTTP frames its
     * messages itself, and a cut one is seen as such. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | (ktls ? SSL_OP_ENABLE_KTLS : 0));
    SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Released while empty: an idle connection keeps no record buffers.
     * Partial writes: a write that stops on a full socket reports what
     * went, as write(2) does; and its retry may come from another buffer
     * holding the same bytes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Records are read as many at a time as the socket holds, into
     * OpenSSL's buffer: a header and a body per record would be two
     * read(2) calls each. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_max_early_data(ctx, 0);
    SSL_CTX_set_recv_max_early_data(ctx, 0);
    /* Tickets, and sessions by ID in the table every worker shares. */
    tls__sessions_use(ctx);
    SSL_CTX_set_num_tickets(ctx, 1);
    /* A ticket opens as long as its key is kept: two rotations at least. */
    SSL_CTX_set_timeout(ctx, 2 * (long)rotate_s);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    tls__keys_use(ctx);
}

/* --tls-ciphers: OpenSSL takes a list if it knows one suite of it. */
static int suites(SSL_CTX *ctx, const char *ciphers, char *why, size_t size)
{
    if (SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : CIPHERS_12) != 1) {
        ERR_clear_error();
        if (ciphers)
            snprintf(why, size, "--tls-ciphers '%.200s': OpenSSL knows no TLS 1.2 suite in "
                     "it (`openssl ciphers -v LIST` shows what it takes)", ciphers);
        else
            snprintf(why, size, "OpenSSL refuses the default TLS 1.2 suites");
        return -EINVAL;
    }
    if (SSL_CTX_set_ciphersuites(ctx, CIPHERS_13) != 1 ||
        SSL_CTX_set1_groups_list(ctx, GROUPS) != 1) {
        ERR_clear_error();
        snprintf(why, size, "OpenSSL refuses the TLS 1.3 suites or the groups");
        return -EINVAL;
    }
    return 0;
}

/* The chain, then its key, then whether they belong together: each
 * failure says which file and why, in one line. */
/* Whether the file can be read at all, with the system's reason: clearer
 * than what OpenSSL says of a file it could not open. */
static int readable(const char *opt, const char *path, char *why, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, size, "%s %s: %s", opt, path, strerror(errno));
        return -EINVAL;
    }
    close(fd);
    return 0;
}

static bool mismatch(void)
{
    unsigned long e = ERR_peek_error();
    return ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
}

static int load_pair(SSL_CTX *ctx, const struct tls_pair *p, char *why, size_t size)
{
    char err[160];
    if (readable("--tls-cert", p->cert, why, size) < 0 ||
        readable("--tls-key", p->key, why, size) < 0)
        return -EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, p->cert) != 1) {
        snprintf(why, size, "--tls-cert %s: %s", p->cert, tls__error(err, sizeof err));
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, p->key, SSL_FILETYPE_PEM) != 1) {
        bool encrypted = ERR_GET_REASON(ERR_peek_error()) == ERR_R_INTERRUPTED_OR_CANCELLED;
        if (mismatch() || encrypted) {
            ERR_clear_error();
            snprintf(why, size, encrypted ? "--tls-key %s: has a passphrase; give the key "
                                            "decrypted (openssl pkey -in KEY -out FILE)%.0s"
                                          : "--tls-key %s: does not match the certificate in %s",
                     p->key, p->cert);
            return -EINVAL;
        }
        snprintf(why, size, "--tls-key %s: %s", p->key, tls__error(err, sizeof err));
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(why, size, "--tls-key %s: does not match the certificate in %s", p->key,
                 p->cert);
        return -EINVAL;
    }
    return 0;
}

/* --tls-client-ca: the authorities a client certificate must chain to,
 * named to the client in the request (so it picks the right one). A
 * certificate that does not verify fails the handshake in either mode. */
static int client_certs(SSL_CTX *ctx, const struct tls_config *tc, char *why, size_t size)
{
    char err[160];
    if (!tc->client_ca)
        return 0;
    if (readable("--tls-client-ca", tc->client_ca, why, size) < 0)
        return -EINVAL;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tc->client_ca);
    if (!names || SSL_CTX_load_verify_locations(ctx, tc->client_ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        snprintf(why, size, "--tls-client-ca %s: %s", tc->client_ca,
                 ERR_peek_error() ? tls__error(err, sizeof err) : "no certificate in it");
        return -EINVAL;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (tc->client_optional ? 0 :
                                               SSL_VERIFY_FAIL_IF_NO_PEER_CERT), NULL);
    return 0;
}

static int make_ctx(const struct tls_config *tc, int i, bool ktls, SSL_CTX **out, char *why,
                    size_t size)
{
    const struct tls_pair *p = &tc->pairs[i];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(why, size, "SSL_CTX_new: out of memory");
        return -ENOMEM;
    }
    defaults(ctx, ktls, tc->ticket_rotate_s, tc->min_version);
    int err = suites(ctx, tc->ciphers, why, size);
    if (!err)
        err = load_pair(ctx, p, why, size);
    if (!err)
        err = client_certs(ctx, tc, why, size);
    if (err < 0) {
        SSL_CTX_free(ctx);
        return err;
    }
    *out = ctx;
    return 0;
}

int tls__set_load(const struct tls_config *tc, bool ktls, struct tls__set **out, char *why,
                  size_t size)
{
    struct tls__set *set = calloc(1, sizeof *set);
    if (!set) {
        snprintf(why, size, "out of memory");
        return -ENOMEM;
    }
    for (int i = 0; i < tc->ncerts; i++) {
        int err = make_ctx(tc, i, ktls, &set->ctx[i], why, size);
        if (err < 0) {
            tls__set_free(set);
            return err;
        }
        set->cert[i] = SSL_CTX_get0_certificate(set->ctx[i]);
        set->n++;
        if (tc->pairs[i].ocsp) {
            err = tls__ocsp_load(tc->pairs[i].ocsp, set->cert[i], &set->staple[i], why, size);
            if (err < 0) {
                tls__set_free(set);
                return err;
            }
            tls__ocsp_use(set->ctx[i], &set->staple[i]);
        }
    }
    SSL_CTX_set_tlsext_servername_callback(set->ctx[0], on_servername);
    SSL_CTX_set_tlsext_servername_arg(set->ctx[0], set);
    *out = set;
    return 0;
}

void tls__set_free(struct tls__set *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n; i++) {
        SSL_CTX_free(set->ctx[i]);
        free(set->staple[i].der);
    }
    free(set);
}
