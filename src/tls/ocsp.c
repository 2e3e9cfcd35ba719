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
 * new generation staple the fresh one. We check, as HAProxy does, that the
 * file is a successful response about this certificate (its serial number
 * and its issuer's name), saying "good", and current: stapling one for a
 * replaced certificate, or an expired one, would make strict clients
 * refuse the site. Its signature is the client's to check (the responder's
 * certificate is not ours to trust).
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

/* Seconds of clock difference forgiven in the response's dates. */
#define OCSP_SKEW 300

/* Whether id names cert: its serial number, and its issuer's name hashed
 * with the id's digest. */
static bool names_cert(const OCSP_CERTID *id, X509 *cert)
{
    ASN1_OCTET_STRING *name_hash = NULL;
    ASN1_OBJECT *md = NULL;
    ASN1_INTEGER *serial = NULL;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    if (!OCSP_id_get0_info(&name_hash, &md, NULL, &serial, (OCSP_CERTID *)id) ||
        ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(cert)) != 0)
        return false;
    const EVP_MD *dg = EVP_get_digestbyobj(md);
    return dg && X509_NAME_digest(X509_get_issuer_name(cert), dg, h, &hl) &&
           (unsigned)name_hash->length == hl && memcmp(name_hash->data, h, hl) == 0;
}

/* What is wrong with r as a staple for cert, or NULL when nothing is. */
static const char *staple_problem(OCSP_RESPONSE *r, X509 *cert)
{
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
    const char *problem = "not about this certificate (its serial number and issuer)";
    for (int i = 0; bs && i < OCSP_resp_count(bs); i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
        ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL;
        if (!names_cert(OCSP_SINGLERESP_get0_id(sr), cert))
            continue;
        int status = OCSP_single_get0_status(sr, NULL, NULL, &this_upd, &next_upd);
        if (status != V_OCSP_CERTSTATUS_GOOD)
            problem = status == V_OCSP_CERTSTATUS_REVOKED ? "says the certificate is revoked"
                                                          : "says the certificate is unknown";
        else if (!OCSP_check_validity(this_upd, next_upd, OCSP_SKEW, -1))
            problem = "out of date (renew it)";
        else
            problem = NULL;
        break;
    }
    if (!bs)
        problem = "no basic response in it";
    OCSP_BASICRESP_free(bs);
    ERR_clear_error();
    return problem;
}

int tls__ocsp_load(const char *path, X509 *cert, struct tls__staple *st, char *why,
                   size_t size)
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
    const char *problem = status < 0 ? "not an OCSP response (DER)"
                          : status != OCSP_RESPONSE_STATUS_SUCCESSFUL
                              ? OCSP_response_status_str(status)
                              : staple_problem(r, cert);
    OCSP_RESPONSE_free(r);
    ERR_clear_error();
    if (problem) {
        snprintf(why, size, "--tls-ocsp %s: %s", path, problem);
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
