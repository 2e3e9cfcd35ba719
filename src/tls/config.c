/* config.c — the TLS options (certificates, OCSP, tickets and sessions, versions and suites, client certificates) parsed by name, as every face of prefork spells them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"

const char tls_help[] =
    "TLS options (for listeners given as ADDR,tls):\n"
    "      --tls-cert FILE          certificate chain (PEM, leaf first); repeatable:\n"
    "                               the first pair is the default, the others are\n"
    "                               chosen by the name the client asks for (SNI)\n"
    "      --tls-key FILE           the private key of the certificate given in the\n"
    "                               same position (PEM, not encrypted); both are read\n"
    "                               by the master, before --user applies; HUP reads\n"
    "                               them again\n"
    "      --tls-ocsp FILE          an OCSP response (DER) for the --tls-cert given\n"
    "                               last, stapled when a client asks; HUP reads it\n"
    "                               again (refresh it with your own tooling)\n"
    "      --tls-ticket-rotate SEC  session-ticket keys, shared by every worker, are\n"
    "                               replaced this often (default 3600); a ticket\n"
    "                               resumes for two periods at least\n"
    "      --tls-session-cache N    TLS 1.2 sessions kept for clients that resume by\n"
    "                               session ID, not ticket, shared by every worker\n"
    "                               (default 20000, 512 bytes each; 0: none)\n"
    "      --tls-min-version V      1.2 (the default: TLS 1.2 and 1.3) or 1.3 (TLS 1.3\n"
    "                               only: Mozilla's \"modern\" setting)\n"
    "      --tls-ciphers LIST       TLS 1.2 suites, in OpenSSL's syntax (default:\n"
    "                               Mozilla's intermediate list, forward secret and\n"
    "                               AEAD only); TLS 1.3 keeps its three\n"
    "      --tls-client-ca FILE     ask each client for a certificate issued by an\n"
    "                               authority in FILE (PEM); read by the master,\n"
    "                               again on HUP\n"
    "      --tls-verify-client MODE required (the default with --tls-client-ca: a\n"
    "                               client without a valid certificate is refused)\n"
    "                               or optional (one without any is served too)\n";

void tls_config_init(struct tls_config *tc)
{
    memset(tc, 0, sizeof *tc);
    tc->ticket_rotate_s = 3600;
    tc->session_cache = 20000;
    tc->min_version = 12;
}

static int set_min_version(struct tls_config *tc, const char *value, const char **why)
{
    if (strcmp(value, "1.2") != 0 && strcmp(value, "1.3") != 0) {
        *why = "must be 1.2 or 1.3 (older versions are never served)";
        return -EINVAL;
    }
    tc->min_version = value[2] == '2' ? 12 : 13;
    return 0;
}

static int set_ciphers(struct tls_config *tc, const char *value, const char **why)
{
    if (*value == '\0' || strlen(value) > 4096) {
        *why = "must be a list of suites in OpenSSL's syntax, such as "
               "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
        return -EINVAL;
    }
    tc->ciphers = value;
    return 0;
}

static int set_verify(struct tls_config *tc, const char *value, const char **why)
{
    if (strcmp(value, "required") != 0 && strcmp(value, "optional") != 0) {
        *why = "must be required or optional";
        return -EINVAL;
    }
    tc->client_optional = value[0] == 'o';
    tc->verify_named = true;
    return 0;
}

static int set_rotate(struct tls_config *tc, const char *value, const char **why)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (*value < '0' || *value > '9' || errno || *end || v < 1 || v > 7 * 86400) {
        *why = "must be whole seconds from 1 to 604800";
        return -EINVAL;
    }
    tc->ticket_rotate_s = (unsigned)v;
    return 0;
}

static int set_cache(struct tls_config *tc, const char *value, const char **why)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (*value < '0' || *value > '9' || errno || *end || v > 1000000) {
        *why = "must be a number of sessions from 0 to 1000000";
        return -EINVAL;
    }
    tc->session_cache = (unsigned)v;
    return 0;
}

int tls_config_set_ocsp(struct tls_config *tc, int i, const char *value, const char **why)
{
    if (i < 0 || i >= tc->ncerts || tc->pairs[i].ocsp) {
        *why = "goes after the --tls-cert it is for (one each)";
        return -EINVAL;
    }
    if (*value == '\0') {
        *why = "must be a file name";
        return -EINVAL;
    }
    tc->pairs[i].ocsp = value;
    if (!tc->first[0])
        snprintf(tc->first, sizeof tc->first, "tls-ocsp");
    return 0;
}

static int set_one(struct tls_config *tc, const char *name, const char *value,
                   const char **why)
{
    bool cert = strcmp(name, "tls-cert") == 0;
    if (strcmp(name, "tls-ticket-rotate") == 0)
        return set_rotate(tc, value, why);
    if (strcmp(name, "tls-ocsp") == 0)
        return tls_config_set_ocsp(tc, tc->ncerts - 1, value, why);
    if (strcmp(name, "tls-session-cache") == 0)
        return set_cache(tc, value, why);
    if (strcmp(name, "tls-min-version") == 0)
        return set_min_version(tc, value, why);
    if (strcmp(name, "tls-ciphers") == 0)
        return set_ciphers(tc, value, why);
    if (strcmp(name, "tls-verify-client") == 0)
        return set_verify(tc, value, why);
    if (strcmp(name, "tls-client-ca") == 0) {
        if (*value == '\0') {
            *why = "must be a file name";
            return -EINVAL;
        }
        tc->client_ca = value;
        return 0;
    }
    if (!cert && strcmp(name, "tls-key") != 0)
        return -ENOENT;
    int *n = cert ? &tc->ncerts : &tc->nkeys;
    if (*value == '\0') {
        *why = "must be a file name";
        return -EINVAL;
    }
    if (*n == TLS_MAX_PAIRS) {
        *why = "at most 32 certificates";
        return -EINVAL;
    }
    if (cert)
        tc->pairs[(*n)++].cert = value;
    else
        tc->pairs[(*n)++].key = value;
    return 0;
}

int tls_config_set(struct tls_config *tc, const char *name, const char *value,
                   const char **why)
{
    int err = set_one(tc, name, value, why);
    if (err == 0 && !tc->first[0])
        snprintf(tc->first, sizeof tc->first, "%s", name);
    return err;
}

bool tls_config_used(const struct tls_config *tc)
{
    return tc->first[0] || tc->ncerts > 0 || tc->nkeys > 0;
}
