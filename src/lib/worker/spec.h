/* spec.h — what the master hands a freshly forked worker: the one door from the master's side into the worker's. */
#ifndef PF_WORKER_SPEC_H
#define PF_WORKER_SPEC_H

#include "lib/core/internal.h"

/* Everything a worker starts from; the master's copy of the pool stays
 * behind in the child, untouched. */
struct pf__worker_spec {
    int index;
    unsigned generation;
    uint64_t max_requests; /* recycle after this many; 0 never */
    pid_t master;
    int ctl; /* the worker's end of its control socketpair */
    const int *listeners;
    const unsigned *listener_flags; /* PF_ADDR_* of each listener (all of them,
                                       also in dispatch mode) */
    int nlisteners;
    struct pf__score *score;
    const struct pf__board *board;
    const struct pf_config *cfg;
    const struct pf_service *svc;
};

/* worker.c: serve as the worker spec describes, then exit. */
_Noreturn void pf__worker_run(const struct pf__worker_spec *spec);

#endif
