/* proxy.c — the PROXY protocol header (v1 text, v2 binary) a balancer sends first on a connection: parsed, never guessed. */
#include "prefork.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

/*
 * The header is HAProxy's PROXY protocol (versions 1 and 2). A listener
 * that expects it takes nothing else: the first bytes are the v1 prefix
 * "PROXY " or the 12-byte v2 signature, or the connection is refused. Both
 * forms are parsed from one buffer holding the connection's first bytes;
 * the caller reads more while the answer is "incomplete", up to
 * PF_PROXY_MAX bytes. Nothing is read past the header, whose length is
 * returned: the stream (HTTP, TLS) starts there.
 */

#define V1_MAX 107 /* the whole v1 line, CRLF included */

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" ---- */

/* The next space-separated word of line[*at..end): its start and length. */
static int word(const char *line, size_t end, size_t *at, const char **w, size_t *n)
{
    size_t i = *at;
    while (i < end && line[i] != ' ')
        i++;
    if (i == *at)
        return -1; /* empty: two spaces, or nothing left */
    *w = line + *at;
    *n = i - *at;
    *at = i < end ? i + 1 : i;
    return 0;
}

static int v1_port(const char *p, size_t n, uint16_t *out)
{
    unsigned v = 0;
    if (n == 0 || n > 5 || (p[0] == '0' && n > 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int v1_addr(int family, const char *p, size_t n, uint16_t port,
                   struct sockaddr_storage *ss, socklen_t *len)
{
    char text[INET6_ADDRSTRLEN];
    if (n >= sizeof text)
        return -1;
    memcpy(text, p, n);
    text[n] = '\0';
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        *len = sizeof *in;
        return inet_pton(AF_INET, text, &in->sin_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    *len = sizeof *in6;
    return inet_pton(AF_INET6, text, &in6->sin6_addr) == 1 ? 0 : -1;
}

static int v1(const char *buf, size_t n, struct pf_proxy *out)
{
    size_t k = n < V1_MAX ? n : V1_MAX;
    const char *cr = memchr(buf, '\r', k), *lf = memchr(buf, '\n', k);
    if (lf && (!cr || lf < cr))
        return -EPROTO; /* a bare LF */
    if (!cr)
        return n >= V1_MAX ? -EPROTO : 0;
    size_t end = (size_t)(cr - buf);
    if (end + 1 >= n)
        return 0; /* the LF is still to come */
    if (buf[end + 1] != '\n' || memchr(buf, '\0', end))
        return -EPROTO;
    size_t at = 6;
    const char *w[5];
    size_t wn[5];
    if (word(buf, end, &at, &w[0], &wn[0]) < 0)
        return -EPROTO;
    if (wn[0] == 7 && memcmp(w[0], "UNKNOWN", 7) == 0) {
        out->local = true; /* the rest of the line is ignored */
        return (int)end + 2;
    }
    int family = wn[0] == 4 && memcmp(w[0], "TCP4", 4) == 0   ? AF_INET
                 : wn[0] == 4 && memcmp(w[0], "TCP6", 4) == 0 ? AF_INET6
                                                               : 0;
    if (!family)
        return -EPROTO;
    for (int i = 1; i < 5; i++)
        if (word(buf, end, &at, &w[i], &wn[i]) < 0)
            return -EPROTO;
    uint16_t sport, dport;
    if (at != end || buf[end - 1] == ' ' || v1_port(w[3], wn[3], &sport) < 0 ||
        v1_port(w[4], wn[4], &dport) < 0 ||
        v1_addr(family, w[1], wn[1], sport, &out->src, &out->srclen) < 0 ||
        v1_addr(family, w[2], wn[2], dport, &out->dst, &out->dstlen) < 0)
        return -EPROTO;
    return (int)end + 2;
}

/* ---- version 2: signature, version and command, family, length ---- */

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void v2_inet(const unsigned char *a, struct pf_proxy *out)
{
    struct sockaddr_in *s = (struct sockaddr_in *)&out->src, *d = (struct sockaddr_in *)&out->dst;
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    s->sin_family = d->sin_family = AF_INET;
    memcpy(&s->sin_addr, a, 4);
    memcpy(&d->sin_addr, a + 4, 4);
    memcpy(&s->sin_port, a + 8, 2); /* both in network order already */
    memcpy(&d->sin_port, a + 10, 2);
    out->srclen = out->dstlen = sizeof(struct sockaddr_in);
}

static void v2_inet6(const unsigned char *a, struct pf_proxy *out)
{
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src,
                        *d = (struct sockaddr_in6 *)&out->dst;
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    s->sin6_family = d->sin6_family = AF_INET6;
    memcpy(&s->sin6_addr, a, 16);
    memcpy(&d->sin6_addr, a + 16, 16);
    memcpy(&s->sin6_port, a + 32, 2);
    memcpy(&d->sin6_port, a + 34, 2);
    out->srclen = out->dstlen = sizeof(struct sockaddr_in6);
}

static void v2_unix_one(const unsigned char *a, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *u = (struct sockaddr_un *)ss;
    memset(ss, 0, sizeof *ss);
    u->sun_family = AF_UNIX;
    memcpy(u->sun_path, a, 108); /* sun_path is 108 bytes on Linux */
    size_t n = strnlen(u->sun_path, sizeof u->sun_path);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* TLVs after the addresses: each type, a 16-bit length, the value. ALPN
 * and the authority are kept (cut to their fields' size); the others are
 * skipped. Every length must fit in what is left. */
static int v2_tlvs(const unsigned char *p, size_t n, struct pf_proxy *out)
{
    while (n > 0) {
        if (n < 3)
            return -EPROTO;
        size_t len = be16(p + 1);
        if (len > n - 3)
            return -EPROTO;
        char *to = p[0] == 0x01 ? out->alpn : p[0] == 0x02 ? out->authority : NULL;
        size_t cap = p[0] == 0x01 ? sizeof out->alpn : sizeof out->authority;
        if (to) {
            size_t k = len < cap - 1 ? len : cap - 1;
            memcpy(to, p + 3, k);
            to[k] = '\0';
        }
        p += 3 + len;
        n -= 3 + len;
    }
    return 0;
}

static int v2(const unsigned char *buf, size_t n, struct pf_proxy *out)
{
    if (n < 16)
        return 0;
    size_t len = be16(buf + 14), total = 16 + len;
    unsigned version = buf[12] >> 4, command = buf[12] & 0x0f;
    unsigned family = buf[13] >> 4, transport = buf[13] & 0x0f;
    if (version != 2 || command > 1 || family > 3 || transport > 2)
        return -EPROTO;
    if (total > PF_PROXY_MAX)
        return -EMSGSIZE;
    if (n < total)
        return 0;
    /* LOCAL (a health check from the balancer itself) and UNSPEC keep the
     * connection's own endpoints, and their block is skipped unread, as the
     * specification asks; so is a family other than the stream's. */
    if (command == 0 || family == 0) {
        out->local = true;
        return (int)total;
    }
    static const size_t need[4] = {0, 12, 36, 216};
    if (len < need[family])
        return -EPROTO;
    const unsigned char *a = buf + 16;
    if (v2_tlvs(a + need[family], len - need[family], out) < 0)
        return -EPROTO;
    if (transport != 1)
        out->local = true;
    else if (family == 1)
        v2_inet(a, out);
    else if (family == 2)
        v2_inet6(a, out);
    else {
        v2_unix_one(a, &out->src, &out->srclen);
        v2_unix_one(a + 108, &out->dst, &out->dstlen);
    }
    return (int)total;
}

int pf_proxy_parse(const void *data, size_t n, struct pf_proxy *out)
{
    const unsigned char *buf = data;
    memset(out, 0, sizeof *out);
    size_t k = n < sizeof v2_sig ? n : sizeof v2_sig;
    if (memcmp(buf, v2_sig, k) == 0)
        return n < sizeof v2_sig ? 0 : v2(buf, n, out);
    k = n < 6 ? n : 6;
    if (memcmp(buf, "PROXY ", k) == 0)
        return n < 6 ? 0 : v1((const char *)buf, n, out);
    return -EPROTO;
}
