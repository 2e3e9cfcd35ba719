/* cidr.c — address ranges ("10.0.0.0/8", "::1", "unix"): parsed from text, alone or in lists, matched against a peer's address. */
#include "prefork.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

/*
 * A range is an IPv4 or IPv6 prefix; a bare address is a range of one. An
 * IPv4 range also matches the IPv4-mapped IPv6 form of its addresses
 * (::ffff:10.1.2.3), which is how a dual-stack socket reports an IPv4
 * peer. "unix" matches connections over a Unix socket, whose peers have no
 * address (a balancer on the same host).
 */

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return -EINVAL;
}

int pf_cidr_parse(const char *spec, struct pf_cidr *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (strcmp(spec, "unix") == 0) {
        out->family = AF_UNIX;
        return 0;
    }
    char text[INET6_ADDRSTRLEN + 4];
    const char *slash = strchr(spec, '/');
    size_t n = slash ? (size_t)(slash - spec) : strlen(spec);
    if (n == 0 || n >= INET6_ADDRSTRLEN)
        return fail(why, "expected an address or ADDRESS/BITS");
    memcpy(text, spec, n);
    text[n] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, text, out->addr) == 1)
        out->family = AF_INET, max = 32;
    else if (inet_pton(AF_INET6, text, out->addr) == 1)
        out->family = AF_INET6, max = 128;
    else
        return fail(why, "not an IPv4 or IPv6 address");
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return fail(why, "expected a prefix length after '/'");
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return fail(why, "expected a prefix length after '/'");
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return fail(why, "prefix length longer than the address");
    }
    out->bits = bits;
    /* Host bits set ("10.1.2.3/8") are refused: the range meant is unclear. */
    for (unsigned i = bits; i < max; i++)
        if (out->addr[i / 8] & (0x80 >> (i % 8)))
            return fail(why, "address has bits set past its prefix length");
    return 0;
}

int pf_cidr_parse_list(const char *spec, struct pf_cidr *out, int max, const char **why)
{
    if (strcmp(spec, "*") == 0)
        spec = "0.0.0.0/0,::/0,unix";
    int n = 0;
    char item[64];
    for (const char *p = spec;; p++) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item)
            return fail(why, "expected CIDR[,CIDR...], e.g. 10.0.0.0/8,::1");
        if (n == max)
            return fail(why, "too many ranges");
        memcpy(item, p, len);
        item[len] = '\0';
        if (pf_cidr_parse(item, &out[n++], why) < 0)
            return -EINVAL;
        p += len;
        if (!*p)
            return n;
    }
}

static bool prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    if (memcmp(a, b, bits / 8) != 0)
        return false;
    if (bits % 8 == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
    return (a[bits / 8] & mask) == (b[bits / 8] & mask);
}

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool pf_cidr_match(const struct pf_cidr *c, const struct sockaddr *sa, socklen_t len)
{
    if (len < sizeof(sa_family_t) || sa->sa_family == AF_UNIX)
        return c->family == AF_UNIX;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        return c->family == AF_INET && prefix_eq(c->addr, (const void *)&in->sin_addr, c->bits);
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const unsigned char *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (c->family == AF_INET6)
            return prefix_eq(c->addr, a, c->bits);
        return c->family == AF_INET && memcmp(a, v4_mapped, 12) == 0 &&
               prefix_eq(c->addr, a + 12, c->bits);
    }
    return false;
}

bool pf_cidr_match_any(const struct pf_cidr *list, int n, const struct sockaddr *sa,
                       socklen_t len)
{
    for (int i = 0; i < n; i++)
        if (pf_cidr_match(&list[i], sa, len))
            return true;
    return false;
}
