/* bench_support.c — what the benchmark clients share: option numbers, the server's address, error lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_support.h"

int bench_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "HOST:PORT", with brackets around an IPv6 literal, for pf_addr_parse. */
int bench_resolve(const char *prog, const char *host, int port, struct pf_addr *a)
{
    char spec[128];
    const char *why = NULL;
    const char *fmt = strchr(host, ':') ? "[%s]:%d" : "%s:%d";
    if (snprintf(spec, sizeof spec, fmt, host, port) >= (int)sizeof spec)
        return -ENAMETOOLONG;
    if (pf_addr_parse(spec, a, &why) < 0 || a->kind != PF_ADDR_TCP || a->any) {
        fprintf(stderr, "%s: bad address %s: %s\n", prog, spec, why ? why : "not a host");
        return -EINVAL;
    }
    return 0;
}

void bench_conn_error(int *reported, const char *prog, long id, const char *fmt, va_list ap)
{
    if ((*reported)++ >= BENCH_MAX_REPORTED)
        return;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%s: connection %ld: %s\n", prog, id, msg);
}
