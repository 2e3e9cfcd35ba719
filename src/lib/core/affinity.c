/* affinity.c — pinning each worker to one CPU (cpu-affinity): the CPU list, its checks, the pin. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "lib/core/internal.h"

#define WORD_BITS 64

static bool listed(const uint64_t *list, int cpu)
{
    return list[cpu / WORD_BITS] >> (cpu % WORD_BITS) & 1;
}

/* One CPU number of a list: digits only, below PF_MAX_CPUS. Advances *s. */
static int parse_cpu(const char **s)
{
    int v = 0;
    if (**s < '0' || **s > '9')
        return -1;
    for (; **s >= '0' && **s <= '9'; (*s)++) {
        v = v * 10 + (**s - '0');
        if (v >= PF_MAX_CPUS)
            return -1;
    }
    return v;
}

/* "0-3,6" (the syntax of taskset -c and /sys cpulists) into bits. */
int pf__cpus_parse(const char *text, uint64_t *bits)
{
    uint64_t out[PF_MAX_CPUS / WORD_BITS] = {0};
    const char *s = text;
    for (;;) {
        int lo = parse_cpu(&s), hi = lo;
        if (lo >= 0 && *s == '-') {
            s++;
            hi = parse_cpu(&s);
        }
        if (lo < 0 || hi < lo)
            return -EINVAL;
        for (int c = lo; c <= hi; c++)
            out[c / WORD_BITS] |= (uint64_t)1 << (c % WORD_BITS);
        if (*s == '\0')
            break;
        if (*s++ != ',')
            return -EINVAL;
    }
    memcpy(bits, out, sizeof out);
    return 0;
}

/* The CPUs a worker may be pinned to, in order: those this process may
 * run on (its affinity mask, which taskset and cgroup cpusets narrow),
 * narrowed to the configured list unless it is empty ("auto"). Returns
 * their count, 0 when none is left, or -errno. */
static int usable_cpus(const struct pf_config *cfg, int *cpus)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
        return -errno;
    bool any = false;
    for (int w = 0; w < PF_MAX_CPUS / WORD_BITS; w++)
        any |= cfg->cpu_list[w] != 0;
    int n = 0;
    for (int c = 0; c < PF_MAX_CPUS && c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed) && (!any || listed(cfg->cpu_list, c)))
            cpus[n++] = c;
    return n;
}

int pf__cpus_usable(const struct pf_config *cfg, int *cpus)
{
    int mine[PF_MAX_CPUS];
    return usable_cpus(cfg, cpus ? cpus : mine);
}

/* In a new worker: run only on the (index mod n)-th usable CPU, so that
 * workers spread one per CPU and stay there (a busy process the scheduler
 * rarely moves can otherwise share a CPU with another one for seconds).
 * A failure is logged and leaves the worker unpinned: it still serves. */
void pf__pin_worker(const struct pf_config *cfg, int index)
{
    int cpus[PF_MAX_CPUS];
    if (!cfg->cpu_affinity)
        return;
    int n = usable_cpus(cfg, cpus);
    if (n <= 0) {
        pf_log(PF_LOG_WARN, "cpu-affinity: no usable CPU (%s); running unpinned",
               n < 0 ? strerror(-n) : "none of the list is allowed");
        return;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus[index % n], &one);
    if (sched_setaffinity(0, sizeof one, &one) < 0) {
        pf_log(PF_LOG_WARN, "cpu-affinity: pinning to CPU %d: %s; running unpinned",
               cpus[index % n], strerror(errno));
        return;
    }
    pf_log(PF_LOG_DEBUG, "pinned to CPU %d", cpus[index % n]);
}
