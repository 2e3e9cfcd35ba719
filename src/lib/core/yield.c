/* yield.c — whether a loop with nothing to do gives its CPU away once before it sleeps: only while such yields come back soon. */
#include <sched.h>

#include "internal.h"

/*
 * A yield is a bet that the task this CPU turns to will hand the loop its
 * next work soon (a client on the same CPU writing the next request), so
 * that the loop finds it without a sleep and a wake-up. The bet is lost
 * when that task is busy for its whole time slice: a client doing TLS
 * handshakes, say, keeps the CPU a millisecond or more, and the work that
 * comes for the loop meanwhile waits, where a sleeping loop would have been
 * woken for it at once. So each yield is timed, and the loop keeps a running
 * share of slow ones (about the last sixteen, in 1/256). Above a quarter it
 * sleeps without yielding, trying one yield in sixteen to see whether
 * things changed. On the development machine a quarter keeps every yield
 * that paid with plain HTTP (a tenth of those took a millisecond or more)
 * and drops most of those of a TLS client's handshakes (three in five).
 */

#define YIELD_SLOW_US 1000u
#define YIELD_SHARE_MAX 64u /* a quarter, in 1/256 */
#define YIELD_PROBE_EVERY 16u

bool pf__yield_wanted(struct pf__yield *y)
{
    if (y->slow_share < YIELD_SHARE_MAX)
        return true;
    return ++y->skipped % YIELD_PROBE_EVERY == 0;
}

void pf__yield_record(struct pf__yield *y, uint64_t took_us)
{
    y->slow_share = y->slow_share - y->slow_share / 16 + (took_us >= YIELD_SLOW_US ? 16 : 0);
}

void pf__yield_cpu(struct pf__yield *y)
{
    uint64_t t0 = pf__mono_us();
    sched_yield();
    pf__yield_record(y, pf__mono_us() - t0);
}
