/* bench_support.h — what the benchmark clients share: option numbers and the server's address. */
#ifndef PF_BENCH_SUPPORT_H
#define PF_BENCH_SUPPORT_H

#include "prefork.h"

/* s as a whole decimal number within lo..hi into *out: 0, or -1 if it is not. */
int bench_parse_long(const char *s, long lo, long hi, long *out);

/* HOST (an IPv4 or IPv6 literal, or localhost) and PORT as a TCP address to
 * connect to. On failure, a line naming prog and the address on stderr and
 * a negative errno. */
int bench_resolve(const char *prog, const char *host, int port, struct pf_addr *a);

#endif
