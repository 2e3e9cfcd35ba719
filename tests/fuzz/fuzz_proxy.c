/* fuzz_proxy.c — libFuzzer target: the PROXY protocol parser agrees with itself, whole or cut, and never reads past its input. */
/* fuzz-sources: src/lib/core/proxy.c */

/*
 * The input, copied to a heap block of exactly its size, is parsed whole;
 * then every prefix must say "more" (0) below the header's length, the same
 * header at and past it, and the same error where the whole input failed
 * (an error may show earlier, never later). A parsed header's addresses
 * must be of its family, and the text TLVs terminated.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "prefork.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_proxy: check failed at line %d: %s\n", __LINE__, #c);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int parse_copy(const uint8_t *data, size_t n, struct pf_proxy *out)
{
    uint8_t *b = malloc(n ? n : 1);
    memcpy(b, data, n);
    int r = pf_proxy_parse(b, n, out);
    free(b);
    return r;
}

static void check_header(const struct pf_proxy *p)
{
    CHECK(memchr(p->alpn, '\0', sizeof p->alpn) != NULL);
    CHECK(memchr(p->authority, '\0', sizeof p->authority) != NULL);
    if (p->local)
        return;
    int f = p->src.ss_family;
    CHECK(f == AF_INET || f == AF_INET6 || f == AF_UNIX);
    CHECK(p->dst.ss_family == f);
    if (f == AF_INET)
        CHECK(p->srclen == sizeof(struct sockaddr_in) && p->dstlen == p->srclen);
    else if (f == AF_INET6)
        CHECK(p->srclen == sizeof(struct sockaddr_in6) && p->dstlen == p->srclen);
    else
        CHECK(p->srclen <= sizeof(struct sockaddr_un) && p->dstlen <= sizeof(struct sockaddr_un));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pf_proxy whole, part;
    int r = parse_copy(data, size, &whole);
    CHECK(r == 0 || r == -EPROTO || r == -EMSGSIZE || (r > 0 && (size_t)r <= size));
    CHECK(r <= PF_PROXY_MAX);
    if (r > 0)
        check_header(&whole);
    size_t step = size > 600 ? size / 300 : 1;
    for (size_t k = 0; k < size; k += step) {
        int q = parse_copy(data, k, &part);
        if (r > 0 && k < (size_t)r)
            CHECK(q == 0);
        else if (r > 0)
            CHECK(q == r && memcmp(&part, &whole, sizeof part) == 0);
        else if (r < 0)
            CHECK(q == 0 || q == r);
        else
            CHECK(q == 0);
    }
    return 0;
}
