/* clock.c — the clocks: monotonic for timeouts (in microseconds for short spans, and a coarse one for figures), wall for display. */
#include <time.h>

#include "internal.h"

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t pf__mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

uint64_t pf__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The same clock as of the last tick (a few ms behind): cheaper to read, for
 * what is only displayed, on paths that run for every request. */
uint64_t pf__mono_coarse_ms(void) { return clock_ms(CLOCK_MONOTONIC_COARSE); }

uint64_t pf__wall_ms(void) { return clock_ms(CLOCK_REALTIME); }
