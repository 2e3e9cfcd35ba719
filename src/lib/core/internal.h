/* internal.h — the library's shared core (pf__ names): clock, loop, log, CPUs, the scoreboard, the master-worker protocol; never installed. */
#ifndef PF_INTERNAL_H
#define PF_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>

#include "prefork.h"

/* clock.c */
uint64_t pf__mono_ms(void); /* CLOCK_MONOTONIC, for every timeout */
uint64_t pf__mono_us(void); /* the same in microseconds, for short spans */
uint64_t pf__mono_coarse_ms(void); /* the same, as of the last tick: for per-request figures */
uint64_t pf__wall_ms(void); /* CLOCK_REALTIME, for display only */

/* loop.c: forget fd's watcher without EPOLL_CTL_DEL (fd is being closed and
 * is the last reference to its file). */
void pf__loop_forget(pf_loop *loop, int fd);

/* loop.c: sleep at once when nothing is ready, without yielding the CPU
 * first (see wait_events): for a loop the others wait on, the master's. */
void pf__loop_no_yield(pf_loop *loop);

/* yield.c: a loop's yields before sleeping, kept only while they come back
 * soon. pf__yield_wanted: whether to yield now; pf__yield_cpu: yield once,
 * timed; pf__yield_record: count one that took took_us. */
struct pf__yield {
    unsigned slow_share; /* of the recent yields, those that took 1 ms or more, in 1/256 */
    unsigned skipped;    /* yields skipped since the share went over its bound */
};
bool pf__yield_wanted(struct pf__yield *y);
void pf__yield_cpu(struct pf__yield *y);
void pf__yield_record(struct pf__yield *y, uint64_t took_us);

/* affinity.c: parse a CPU list ("0-3,6") into PF_MAX_CPUS bits (0 or
 * -EINVAL); the CPUs workers are pinned to, in order, into cpus (room for
 * PF_MAX_CPUS, or NULL) and their count (or -errno): worker i runs on
 * cpus[i % count]; pin the calling worker to its CPU when cfg->cpu_affinity
 * (logs on failure). */
int pf__cpus_parse(const char *text, uint64_t *bits);
int pf__cpus_usable(const struct pf_config *cfg, int *cpus);
void pf__pin_worker(const struct pf_config *cfg, int index);

/* log.c: the source tag of this process's lines ("master", "worker 2 (pid 4711)"). */
void pf__log_set_source(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* scoreboard.c: the shared-memory table, one slot per worker process. Each
 * field is written by one process only: the master resets a slot before it
 * forks into it and after it has reaped its worker; in between, the worker
 * alone writes it. Readers copy fields with relaxed atomic loads. */
#define PF__BOARD_MAGIC 0x70666b62u /* "pfkb" */
#define PF__BOARD_VERSION 3u
#define PF__BOARD_SLOTS (2 * PF_MAX_WORKERS) /* room for two generations */

struct pf__score {
    _Atomic int32_t pid;
    _Atomic uint32_t state; /* enum pf_state */
    _Atomic uint32_t index;
    _Atomic uint32_t generation;
    _Atomic uint64_t started_ms;   /* wall clock */
    _Atomic uint64_t heartbeat_ms; /* monotonic clock */
    _Atomic uint64_t accepted;
    _Atomic uint64_t wakeups;
    _Atomic uint64_t requests;
    _Atomic uint64_t bytes;
    _Atomic uint64_t active;
    _Atomic uint32_t accepting;    /* PF__ACCEPT_*: how it polls the listeners */
    _Atomic uint64_t status[5];    /* responses by class: 1xx .. 5xx */
    _Atomic uint64_t duration_us;  /* request durations, summed */
    _Atomic uint64_t hist[PF_DURATION_BUCKETS]; /* requests per duration bucket (not
                                                   cumulative; the last: past them all) */
    _Atomic uint64_t tls_full, tls_resumed; /* TLS handshakes */
    _Atomic uint64_t activity_ms;  /* monotonic clock, when it began */
    _Atomic uint32_t activity_seq; /* odd while activity is being written */
    char activity[128];
} __attribute__((aligned(64)));

/* What the workers of one index counted before they exited: the master
 * adds a slot's counters here when it reaps its worker, so that the pool's
 * counters by index never go back when a worker is replaced. */
struct pf__totals {
    _Atomic uint64_t accepted, requests, bytes;
    _Atomic uint64_t status[5];
    _Atomic uint64_t duration_us;
    _Atomic uint64_t hist[PF_DURATION_BUCKETS];
    _Atomic uint64_t tls_full, tls_resumed;
};

struct pf__board {
    uint32_t magic;
    uint32_t version;
    uint32_t nslots;
    int32_t master_pid;
    _Atomic uint32_t used; /* slots below this one have been used */
    _Atomic uint32_t stopping; /* the pool is stopping (its pre-stop delay too) */
    /* Written by the master only: */
    _Atomic uint32_t mode;       /* enum pf_mode */
    _Atomic uint32_t generation; /* the one serving */
    _Atomic uint32_t index_hi;   /* worker indexes below this one have been used */
    _Atomic uint64_t started_ms; /* the master's start, wall clock */
    _Atomic uint64_t restarts[PF_RESTART_CAUSES];
    _Atomic uint64_t reloads, reloads_failed, upgrades;
    _Atomic uint32_t retire_seq; /* odd while a reaped slot moves into retired */
    struct pf__totals retired[PF_MAX_WORKERS];
    struct pf__score slot[];
};

/* scoreboard.c: the pool's figures and one index's totals (its live slots
 * and its retired workers), for the metrics and prefork status; a reaped
 * slot's counters into its index's totals (master). */
void pf__board_pool(const struct pf__board *b, struct pf_pool_info *out);
bool pf__board_totals(const struct pf__board *b, int index, struct pf_worker_totals *out);
void pf__board_retire(struct pf__board *b, struct pf__score *s);

/* Relaxed is enough: each field has one writer and readers only display or
 * compare counters; nothing else is published through them. */
#define PF__PUT(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define PF__GET(field) atomic_load_explicit(&(field), memory_order_relaxed)
#define PF__ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

int pf__board_create(struct pf__board **out, int *memfd);
void pf__board_destroy(struct pf__board *b, int memfd);
void pf__score_reset(struct pf__score *s, int index, unsigned generation);
void pf__score_forked(struct pf__score *s, pid_t pid);
void pf__score_set_activity(struct pf__score *s, const char *what);

/* A slot's accepting: not taking connections (at its cap, paused, draining,
 * or a service with its own main loop); accepting; or holding back, over
 * its share, until the others catch up (accept.c). */
enum { PF__ACCEPT_OFF, PF__ACCEPTING, PF__ACCEPT_HELD };

/* The master-worker protocol. The hand-off (master/handoff.c to
 * worker/accept.c): the master passes up to PF__PASS_MAX connections in one
 * SCM_RIGHTS message; its bytes are one record per descriptor, in order,
 * holding the peer's address (len 0: unknown or a Unix socket). */
#define PF__PASS_MAX 8
struct pf__peer_rec {
    uint16_t len;
    uint8_t addr[28]; /* fits sockaddr_in and sockaddr_in6 */
    uint8_t proxy;    /* from a listener that requires the PROXY protocol */
};

/* Messages a worker sends its master on the control socket (one byte each). */
#define PF__MSG_READY 'R'
#define PF__MSG_RECYCLE 'M' /* served its max-requests: replace me */

/* log.c: reopen the error log at the path it was opened with (USR1). */
int pf__log_reopen(void);
/* log.c: a worker about to lend its stderr to captured output keeps a copy
 * of it for its own lines. */
int pf__log_keep_stderr(void);
/* log.c: log n bytes of text as if from another source (a worker's output). */
void pf__log_as(const char *source, enum pf_log_level level, const char *text, size_t n);

#endif
