/* worker.h — the worker object, shared by the worker's files. */
#ifndef PF_WORKER_H
#define PF_WORKER_H

#include <sys/socket.h>

#include "lib/worker/spec.h"

/*
 * A worker is split by job:
 *   worker.c   set-up, the library loop, control (signals, the master's
 *              socket), draining, closing connections, its counters
 *   accept.c   taking connections, from the listeners (exclusive wake-ups,
 *              taking turns, pausing when out of descriptors, holding back
 *              over its share in shared mode: balance.c counts) or from
 *              the master, and handing them to the service
 *   balance.c  shared mode: whether a worker is over its share
 *   exec.c     pf_worker_exec: a worker that becomes another program
 *   spec.h     what the master hands a new worker (pf__worker_run)
 * They use lib/core; nothing here knows the master's side.
 */

/* balance.c: in shared mode a worker is over its share when it holds more
 * than 1.25 times the connections of the least loaded other worker taking
 * connections (accepting or holding back), plus 4 (pf__balance_over; the
 * board is read at most once per ms).
 * pf__balance_others_moved reads it afresh and tells whether the other
 * workers have accepted anything since its last call; after
 * pf__balance_forget, the next pf__balance_over reads it afresh too. */
#define PF__BALANCE_RATIO_DIV 4 /* 1 + 1/4 */
#define PF__BALANCE_SLACK 4
struct pf__balance {
    const struct pf__board *board;
    const struct pf__score *self;
    uint64_t fewest;  /* the least loaded other worker's connections */
    uint64_t read_ms; /* loop time of that reading; 0: none */
    uint64_t accepted; /* the others' accepted total, at the last look */
};
bool pf__balance_over(struct pf__balance *b, uint64_t active, uint64_t now_ms);
bool pf__balance_others_moved(struct pf__balance *b, uint64_t now_ms);
void pf__balance_forget(struct pf__balance *b);

struct pf_worker {
    int index;
    unsigned generation;
    int ctl;   /* to the master; EOF means the master is gone */
    int sigfd; /* TERM: drain */
    int lfd[PF_MAX_LISTENERS];
    bool lproxy[PF_MAX_LISTENERS]; /* the listener requires the PROXY protocol */
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
    _Atomic bool hung; /* pf_worker_hung: the heartbeat has stopped for good */
};

/* proxy.c: a connection (counted already) from a listener that requires the
 * PROXY protocol: its header is read, then the service's on_conn gets the
 * connection with the client's address; or it is closed (an untrusted
 * source, a bad or late header). */
void pf__proxy_begin(pf_worker *w, int fd, const struct sockaddr_storage *peer,
                     socklen_t len);

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
