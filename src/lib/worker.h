/* worker.h — the worker object, shared by the worker's files. */
#ifndef PF_WORKER_H
#define PF_WORKER_H

#include <sys/socket.h>

#include "internal.h"

/*
 * A worker is split by job:
 *   worker.c   set-up, the library loop, control (signals, the master's
 *              socket), draining, closing connections, its counters
 *   accept.c   taking connections, from the listeners (exclusive wake-ups,
 *              taking turns, pausing when out of descriptors, holding back
 *              over its share in shared mode: balance.c counts) or from
 *              the master, and handing them to the service
 */

struct pf_worker {
    int index;
    unsigned generation;
    int ctl;   /* to the master; EOF means the master is gone */
    int sigfd; /* TERM: drain */
    int lfd[PF_MAX_LISTENERS];
    int nl;
    bool listening; /* accepting: the listeners polled with EPOLLEXCLUSIVE */
    bool watching;  /* holding back: polled with EPOLLET, to look at each arrival */
    bool paused, draining;
    bool balancing; /* shared mode: hold back when over its share */
    int status;
    uint64_t active;
    uint64_t requests, max_requests; /* recycling: ask once past the limit */
    bool recycle_asked;
    uint64_t resume_below; /* re-arm accepting under this many conns */
    uint64_t warned_at;
    uint64_t requeued_at;  /* last time this worker went to the back of the queue */
    pf_loop *loop;
    struct pf__score *score;
    struct pf__balance balance;
    const struct pf_config *cfg;
    const struct pf_service *svc;
    pf_timer beat, resume, stuck;
};

/* Publish the worker's state and connection count in its slot. */
static inline void pf__worker_set_state(pf_worker *w)
{
    enum pf_state st = w->draining ? PF_STATE_DRAINING
                       : w->active ? PF_STATE_BUSY
                                   : PF_STATE_IDLE;
    PF__PUT(w->score->state, st);
    PF__PUT(w->score->active, w->active);
}

/* accept.c, for the library loop: set up the timers; start accepting;
 * take the connections the master passed on socket fd (dispatch mode):
 * 0 once none is left, -1 when the master has gone; after a connection
 * closed, accept again if it had stopped (at its cap, or over its share);
 * and, to drain, stop for good: take what is already queued (up to the
 * cap) and close this worker's copies of the listeners. */
void pf__accept_init(pf_worker *w);
void pf__accept_start(pf_worker *w);
int pf__accept_passed(pf_worker *w, int fd);
void pf__accept_closed(pf_worker *w);
void pf__accept_drain(pf_worker *w);

#endif
