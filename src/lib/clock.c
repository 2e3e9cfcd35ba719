/* clock.c — the two clocks: monotonic for timeouts, wall for display. */
#include <time.h>

#include "internal.h"

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t pf__mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

uint64_t pf__wall_ms(void) { return clock_ms(CLOCK_REALTIME); }
