/* worker.h — the worker object, shared by the worker's files. */
#ifndef PF_WORKER_H
#define PF_WORKER_H

#include <sys/socket.h>

#include "internal.h"

/*
 * A worker is split by job:
 *   worker.c   set-up, the library loop, control (signals, the master's
 *              socket, dispatched connections), draining, the slot it writes
 *   accept.c   taking connections from the listeners: exclusive wake-ups,
 *              taking turns, pausing when out of descriptors, and holding
 *              back over its share in shared mode (balance.c counts)
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

/* worker.c: publish the worker's state and count in the slot; count a new
 * connection; count one and hand it to the service. */
void pf__worker_set_state(pf_worker *w);
void pf__worker_add_conn(pf_worker *w);
void pf__worker_opened(pf_worker *w, int fd, const struct sockaddr_storage *peer, socklen_t len);

/* accept.c, for the library loop: set up the timers; start accepting;
 * after a connection closed, accept again if it had stopped (at its cap,
 * or over its share); and, to drain, stop for good: take what is already
 * queued (up to the cap) and close this worker's copies of the listeners. */
void pf__accept_init(pf_worker *w);
void pf__accept_start(pf_worker *w);
void pf__accept_closed(pf_worker *w);
void pf__accept_drain(pf_worker *w);

#endif
