/* ocsp.c — OCSP stapling from a file: the response is read by the master (at start and on HUP) and sent to clients that ask for it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "tls/internal.h"

/*
 * The user's own tooling fetches the response from the CA's responder
 * (openssl ocsp, certbot...) and writes it to the file; a HUP makes the
 * new generation staple the fresh one. We check that the file is a
 * successful OCSP response, not what it says about the certificate: the
 * client checks that, and a stale one is the tooling's to renew.
 */
#define OCSP_MAX (64 * 1024)

static int read_all(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return -errno;
    unsigned char *buf = malloc(OCSP_MAX);
    size_t n = buf ? fread(buf, 1, OCSP_MAX, f) : 0;
    int err = !buf ? -ENOMEM : ferror(f) ? -EIO : n == OCSP_MAX ? -EFBIG : 0;
    fclose(f);
    if (err < 0) {
        free(buf);
        return err;
    }
    *out = buf;
    *len = n;
    return 0;
}

int tls__ocsp_load(const char *path, struct tls__staple *st, char *why, size_t size)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int err = read_all(path, &der, &len);
    if (err < 0) {
        snprintf(why, size, "--tls-ocsp %s: %s", path,
                 err == -EFBIG ? "larger than 64 KiB" : strerror(-err));
        return -EINVAL;
    }
    const unsigned char *p = der;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    int status = r ? OCSP_response_status(r) : -1;
    OCSP_RESPONSE_free(r);
    ERR_clear_error();
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(why, size, "--tls-ocsp %s: %s", path,
                 status < 0 ? "not an OCSP response (DER)" : OCSP_response_status_str(status));
        free(der);
        return -EINVAL;
    }
    st->der = der;
    st->len = len;
    return 0;
}

/* A client asked for the certificate's status: a copy of the response,
 * which OpenSSL frees with the connection. */
static int on_status(SSL *ssl, void *ud)
{
    const struct tls__staple *st = ud;
    unsigned char *copy = st->der ? OPENSSL_memdup(st->der, st->len) : NULL;
    if (!copy)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)st->len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

void tls__ocsp_use(SSL_CTX *ctx, struct tls__staple *st)
{
    SSL_CTX_set_tlsext_status_cb(ctx, on_status);
    SSL_CTX_set_tlsext_status_arg(ctx, st);
}
