/* bench_support.h — what the benchmark clients share: option numbers, the server's address, error lines. */
#ifndef PF_BENCH_SUPPORT_H
#define PF_BENCH_SUPPORT_H

#include <stdarg.h>

#include "prefork.h"

/* s as a whole decimal number within lo..hi into *out: 0, or -1 if it is not. */
int bench_parse_long(const char *s, long lo, long hi, long *out);

/* HOST (an IPv4 or IPv6 literal, or localhost) and PORT as a TCP address to
 * connect to. On failure, a line naming prog and the address on stderr and
 * a negative errno. */
int bench_resolve(const char *prog, const char *host, int port, struct pf_addr *a);

/* A connection's error: the first BENCH_MAX_REPORTED that one counter sees
 * are printed, one line each ("prog: connection ID: message"), so that a
 * dead server does not flood stderr; the caller counts them all. */
#define BENCH_MAX_REPORTED 5
void bench_conn_error(int *reported, const char *prog, long id, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
