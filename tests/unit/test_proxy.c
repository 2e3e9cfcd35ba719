/* test_proxy.c — unit tests for pf_proxy_parse: PROXY protocol v1 and v2 headers, good, cut short and bad. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "prefork.h"

/* Parse n bytes from a heap block of exactly n bytes (ASan sees a read past
 * it), and check that every shorter prefix asks for more. */
static int parse_exact(const void *p, size_t n, struct pf_proxy *out)
{
    for (size_t k = 0; k < n; k++) {
        void *b = malloc(k ? k : 1);
        memcpy(b, p, k);
        struct pf_proxy tmp;
        int r = pf_proxy_parse(b, k, &tmp);
        free(b);
        if (r != 0)
            return r < 0 ? r : -1000; /* an error before the whole header: reported as is */
    }
    void *b = malloc(n);
    memcpy(b, p, n);
    int r = pf_proxy_parse(b, n, out);
    free(b);
    return r;
}

static void expect_in4(const struct sockaddr_storage *ss, socklen_t len, const char *ip,
                       unsigned port)
{
    const struct sockaddr_in *in = (const void *)ss;
    char text[INET_ADDRSTRLEN];
    cr_assert_eq(len, sizeof *in);
    cr_assert_eq(in->sin_family, AF_INET);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    cr_assert_str_eq(text, ip);
    cr_assert_eq(ntohs(in->sin_port), port);
}

static void expect_in6(const struct sockaddr_storage *ss, socklen_t len, const char *ip,
                       unsigned port)
{
    const struct sockaddr_in6 *in6 = (const void *)ss;
    char text[INET6_ADDRSTRLEN];
    cr_assert_eq(len, sizeof *in6);
    cr_assert_eq(in6->sin6_family, AF_INET6);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    cr_assert_str_eq(text, ip);
    cr_assert_eq(ntohs(in6->sin6_port), port);
}

/* ---- version 1 ---- */

Test(proxy, v1_tcp4, .timeout = 10)
{
    static const char h[] = "PROXY TCP4 198.18.0.7 198.18.1.1 56324 443\r\nGET / HTTP/1.1\r\n";
    struct pf_proxy p;
    size_t len = strlen("PROXY TCP4 198.18.0.7 198.18.1.1 56324 443\r\n");
    cr_assert_eq(parse_exact(h, len, &p), (int)len);
    cr_assert_eq(pf_proxy_parse(h, sizeof h - 1, &p), (int)len); /* the request is not read */
    cr_assert_not(p.local);
    expect_in4(&p.src, p.srclen, "198.18.0.7", 56324);
    expect_in4(&p.dst, p.dstlen, "198.18.1.1", 443);
}

Test(proxy, v1_tcp6_and_unknown, .timeout = 10)
{
    static const char h6[] = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
    struct pf_proxy p;
    cr_assert_eq(parse_exact(h6, sizeof h6 - 1, &p), (int)sizeof h6 - 1);
    expect_in6(&p.src, p.srclen, "2001:db8::1", 0);
    expect_in6(&p.dst, p.dstlen, "::1", 65535);
    static const char u[] = "PROXY UNKNOWN\r\n", u2[] = "PROXY UNKNOWN ffff:f...f 1 2 3\r\n";
    cr_assert_eq(parse_exact(u, sizeof u - 1, &p), (int)sizeof u - 1);
    cr_assert(p.local);
    cr_assert_eq(parse_exact(u2, sizeof u2 - 1, &p), (int)sizeof u2 - 1);
    cr_assert(p.local);
}

Test(proxy, v1_longest_line, .timeout = 10)
{
    /* 107 bytes: the specification's worst case. */
    static const char h[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    struct pf_proxy p;
    cr_assert_eq(sizeof h - 1, 104);
    cr_assert_eq(parse_exact(h, sizeof h - 1, &p), 104);
    char line[200];
    memset(line, 'x', sizeof line); /* no CRLF within 107 bytes: refused */
    memcpy(line, "PROXY UNKNOWN ", 14);
    cr_assert_eq(pf_proxy_parse(line, 106, &p), 0);
    cr_assert_eq(pf_proxy_parse(line, 107, &p), -EPROTO);
    memcpy(line + 105, "\r\n", 2);
    cr_assert_eq(pf_proxy_parse(line, 107, &p), 107);
}

Test(proxy, v1_bad, .timeout = 10)
{
    static const char *bad[] = {
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",  "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",      "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY \r\n",                          "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "GET / HTTP/1.1\r\n\r\n",              "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pf_proxy p;
        cr_assert_eq(pf_proxy_parse(bad[i], strlen(bad[i]), &p), -EPROTO, "%s", bad[i]);
    }
}

/* ---- version 2 ---- */

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A v2 header: signature, ver/cmd, fam, then len bytes of body. */
static size_t v2(unsigned char *out, unsigned vercmd, unsigned fam, const void *body, size_t len)
{
    memcpy(out, sig, 12);
    out[12] = (unsigned char)vercmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(len >> 8);
    out[15] = (unsigned char)len;
    memcpy(out + 16, body, len);
    return 16 + len;
}

Test(proxy, v2_tcp4_with_tlvs, .timeout = 10)
{
    unsigned char body[64] = {198, 18, 0, 7, 198, 18, 1, 1, 0xdc, 0x04, 0x01, 0xbb};
    size_t n = 12;
    static const unsigned char tlvs[] = {
        0x01, 0x00, 0x08, 'h', 't', 't', 'p', '/', '1', '.', '1', /* ALPN */
        0x04, 0x00, 0x02, 0, 0,                                   /* NOOP */
        0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm'};
    memcpy(body + n, tlvs, sizeof tlvs);
    n += sizeof tlvs;
    unsigned char h[128];
    size_t len = v2(h, 0x21, 0x11, body, n);
    struct pf_proxy p;
    cr_assert_eq(parse_exact(h, len, &p), (int)len);
    cr_assert_not(p.local);
    expect_in4(&p.src, p.srclen, "198.18.0.7", 56324);
    expect_in4(&p.dst, p.dstlen, "198.18.1.1", 443);
    cr_assert_str_eq(p.alpn, "http/1.1");
    cr_assert_str_eq(p.authority, "example.com");
}

Test(proxy, v2_tcp6_local_unix_unspec, .timeout = 10)
{
    unsigned char body[256] = {0}, h[300];
    struct pf_proxy p;
    body[15] = 1;                      /* src ::1 */
    body[16] = 0x20, body[17] = 0x01;  /* dst 2001:... */
    body[32] = 0x30, body[33] = 0x39;  /* 12345 */
    body[34] = 0x00, body[35] = 0x50;  /* 80 */
    size_t len = v2(h, 0x21, 0x21, body, 36);
    cr_assert_eq(parse_exact(h, len, &p), (int)len);
    expect_in6(&p.src, p.srclen, "::1", 12345);
    expect_in6(&p.dst, p.dstlen, "2001::", 80);
    len = v2(h, 0x20, 0x21, body, 36); /* LOCAL: addresses ignored, length honoured */
    cr_assert_eq(parse_exact(h, len, &p), (int)len);
    cr_assert(p.local);
    len = v2(h, 0x20, 0x00, body, 0); /* LOCAL, UNSPEC, no body: HAProxy's health check */
    cr_assert_eq(parse_exact(h, len, &p), 16);
    cr_assert(p.local);
    memset(body, 0, sizeof body);
    strcpy((char *)body, "/run/client.sock");
    strcpy((char *)body + 108, "/run/server.sock");
    len = v2(h, 0x21, 0x31, body, 216);
    cr_assert_eq(parse_exact(h, len, &p), (int)len);
    const struct sockaddr_un *u = (const void *)&p.src;
    cr_assert_eq(u->sun_family, AF_UNIX);
    cr_assert_str_eq(u->sun_path, "/run/client.sock");
    cr_assert_eq(p.srclen, offsetof(struct sockaddr_un, sun_path) + 16);
    len = v2(h, 0x21, 0x12, body, 12); /* INET over DGRAM: not this stream's */
    cr_assert_eq(parse_exact(h, len, &p), (int)len);
    cr_assert(p.local);
}

Test(proxy, v2_bad, .timeout = 10)
{
    unsigned char body[64] = {0}, h[128];
    struct pf_proxy p;
    size_t len;
    static const unsigned bad_heads[][2] = {
        {0x11, 0x11}, {0x31, 0x11}, {0x22, 0x11}, {0x2f, 0x11}, {0x21, 0x41}, {0x21, 0x13},
    };
    for (size_t i = 0; i < sizeof bad_heads / sizeof bad_heads[0]; i++) {
        len = v2(h, bad_heads[i][0], bad_heads[i][1], body, 12);
        cr_assert_eq(pf_proxy_parse(h, len, &p), -EPROTO, "head %zu", i);
    }
    len = v2(h, 0x21, 0x11, body, 11); /* shorter than its addresses */
    cr_assert_eq(pf_proxy_parse(h, len, &p), -EPROTO);
    len = v2(h, 0x21, 0x21, body, 12);
    cr_assert_eq(pf_proxy_parse(h, len, &p), -EPROTO);
    body[12] = 0x01, body[13] = 0x00, body[14] = 0x09; /* a TLV past the header's end */
    len = v2(h, 0x21, 0x11, body, 12 + 3 + 8);
    cr_assert_eq(pf_proxy_parse(h, len, &p), -EPROTO);
    len = v2(h, 0x21, 0x11, body, 12 + 2); /* half a TLV head */
    cr_assert_eq(pf_proxy_parse(h, len, &p), -EPROTO);
    h[14] = 0xff, h[15] = 0xff; /* 65535 bytes announced: past the limit, said at once */
    cr_assert_eq(pf_proxy_parse(h, 16, &p), -EMSGSIZE);
    h[14] = (PF_PROXY_MAX - 16) >> 8, h[15] = (PF_PROXY_MAX - 16) & 0xff;
    cr_assert_eq(pf_proxy_parse(h, 16, &p), 0); /* the longest taken: wait for it */
    unsigned char nearly[12];
    memcpy(nearly, sig, 12);
    nearly[11] = 0x0b; /* the signature but for its last byte */
    cr_assert_eq(pf_proxy_parse(nearly, 11, &p), 0);
    cr_assert_eq(pf_proxy_parse(nearly, 12, &p), -EPROTO);
}
