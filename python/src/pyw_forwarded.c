/* pyw_forwarded.c — the scheme a proxy in front says the client used (X-Forwarded-Proto and its kin), believed from --forwarded-allow-ips only. */
#include <errno.h>

#include "py.h"

/*
 * A proxy that ends TLS in front of the server (nginx, a balancer) passes
 * the request on over plain HTTP and says in a header that the client used
 * HTTPS. The application needs to know (wsgi.url_scheme: the links and
 * redirects it makes, secure cookies), and only the proxy may say it: the
 * header counts when the peer is in --forwarded-allow-ips (by default the
 * loopback addresses and Unix sockets: a proxy on the same host). The
 * headers, with the value that means HTTPS, are those gunicorn reads:
 * X-Forwarded-Proto: https, X-Forwarded-Protocol: ssl, X-Forwarded-Ssl: on.
 * Headers that disagree (one says HTTPS, another does not) are a 400, as
 * the scheme would be a guess. A connection over TLS is HTTPS whatever its
 * headers say.
 */

#define MAX_ALLOW 32

static struct pf_cidr allow[MAX_ALLOW];
static int nallow;

#define LIT(s) s, sizeof s - 1
static const struct {
    const char *name; /* lower case */
    size_t name_len;
    const char *https; /* the value that means HTTPS, lower case */
    size_t https_len;
} schemes[] = {
    {LIT("x-forwarded-proto"), LIT("https")},
    {LIT("x-forwarded-protocol"), LIT("ssl")},
    {LIT("x-forwarded-ssl"), LIT("on")},
};

void pyw_forwarded_init(void)
{
    nallow = pf_cidr_parse_list("127.0.0.1,::1,unix", allow, MAX_ALLOW, NULL);
}

int pyw_forwarded_allow(const char *spec, const char **why)
{
    if (!*spec) { /* "": no proxy is believed */
        nallow = 0;
        return 0;
    }
    int n = pf_cidr_parse_list(spec, allow, MAX_ALLOW, why);
    if (n < 0)
        return n;
    nallow = n;
    return 0;
}

/* 1 HTTPS, 0 HTTP, -1 no such header; -EPROTO for two that disagree. */
static int said(const struct http_request *q)
{
    int scheme = -1;
    for (size_t i = 0; i < q->nheaders; i++) {
        const struct http_header *h = &q->headers[i];
        for (size_t k = 0; k < sizeof schemes / sizeof schemes[0]; k++) {
            if (!http_name_is(h->name, h->name_len, schemes[k].name, schemes[k].name_len))
                continue;
            int this = http_name_is(h->value, h->value_len, schemes[k].https,
                                    schemes[k].https_len);
            if (scheme >= 0 && this != scheme)
                return -EPROTO;
            scheme = this;
        }
    }
    return scheme;
}

int pyw_scheme(struct http_exchange *x)
{
    if (http_ex_secure(x))
        return 1;
    int scheme = nallow ? said(http_ex_request(x)) : -1;
    if (scheme == -1)
        return 0;
    socklen_t len;
    const struct sockaddr *peer = http_ex_peer(x, &len);
    if (!pf_cidr_match_any(allow, nallow, peer, len))
        return 0; /* anyone may send the header: only a proxy is believed */
    return scheme;
}
