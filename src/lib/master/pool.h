/* pool.h — the pool object and the master's state, shared by the master's files (src/lib/master). */
#ifndef PF_POOL_H
#define PF_POOL_H

#include <sys/stat.h>

#include "lib/core/internal.h"

/*
 * The master is split by job, in two layers. The slot table is the leaf:
 *   spawn.c        fork, reap (pidfds), signal, respawn with back-off; it
 *                  knows nothing of modes, programs or generations, and
 *                  reports each event through struct pf__spawn_ops
 * The policy above it:
 *   supervise.c    the pool's answers to the slot table (pf__supervise)
 *   child.c        a new worker's first steps: drop the master's descriptors
 *                  and privileges, then become a worker (lib/worker)
 *   master.c       pf_pool_run: set-up, signals, stopping
 *   generations.c  readiness, HUP reloads, TTIN/TTOU, recycling, hung workers
 *   handoff.c      the master accepts on some sockets and passes each
 *                  connection to a worker: every listener in dispatch mode,
 *                  a retired row in reuseport mode
 *   reuseport.c    reuseport mode: a socket per worker index, owned by the master
 *   program.c      workers that exec a program: sd_notify, output, lifetime
 *   upgrade.c      USR2, the old master's side: exec an heir, hand over
 *   inherit.c      USR2, the new master's side: take the listeners, say ready
 *   pool.c         the pool object, its listeners (bound, inherited, adopted)
 *   notify.c       sd_notify and the pidfile
 * They use lib/core, and lib/worker only through worker/spec.h (child.c).
 */

/* Sockets a previous master may pass: every listener, times every worker
 * index in reuseport mode. */
#define PF__MAX_INHERITED 4096

struct pf__listener {
    int fd;
    char name[128];    /* bound address, "127.0.0.1:8000" */
    unsigned flags;    /* PF_ADDR_TLS ..., from its spec */
    char path[108];    /* Unix socket we created, to unlink at the end */
    dev_t dev;         /* ... only if it is still our socket file */
    ino_t ino;
};

/* One supervised process. Slot i of the table uses scoreboard slot i. */
struct pf__slot {
    struct pf_pool *pool;    /* NULL until the slot is first used */
    pid_t pid;               /* 0 when no process */
    int pidfd;               /* -1 when none */
    int ctl;                 /* master's end of the control socketpair */
    int ctl_peer;            /* hand-off: a dup of the worker's end, -1 */
    uint64_t handed;         /* hand-off: connections passed to this worker */
    int notify_fd;           /* program.c: its NOTIFY_SOCKET, -1 */
    int out_fd;              /* program.c: its stdout/stderr pipe, -1 */
    char *out_buf;           /* program.c: a partial output line */
    size_t out_len;
    pf_timer ready_timer, life_timer;
    int index;               /* worker index within its generation */
    unsigned generation;
    bool ready;              /* said READY */
    bool retiring;           /* told to drain: never respawned */
    bool waiting;            /* a respawn is scheduled (respawn timer) */
    bool killed;             /* sent SIGKILL, not reaped yet */
    struct pf__slot *succeeds; /* recycling: retire that one once ready */
    uint64_t started;        /* monotonic ms */
    uint64_t hung_at;        /* the watchdog's soft signal, 0 if none */
    unsigned quick;          /* consecutive quick deaths: the back-off level */
    unsigned failed;         /* consecutive deaths before READY */
    pf_timer respawn;
};

enum pf__phase { PF__RUNNING, PF__STOPPING, PF__STOPPED };

/* The master's hand-off (handoff.c): the sockets it accepts on itself, and
 * the connections accepted but not passed to a worker yet. */
struct pf__handoff {
    int *fds;                    /* what the master accepts on */
    int nfds, capfds;
    bool listening;              /* fds are polled */
    struct pf__pending *pending; /* accepted, not sent yet (a ring) */
    int head, npending;
    int rr;                      /* round-robin start among equals */
    pf_timer retry;              /* while every worker is full */
};

/* What the slot table (spawn.c) asks of the policy above it, and tells it.
 * spawn.c holds the pointer (pf_pool.ops); supervise.c fills it in. */
struct pf__spawn_ops {
    /* Before the fork: what the new worker needs (its reuseport row, its
     * program's output pipe into out, else -1s): 0, or -errno with *step
     * naming what failed. */
    int (*prepare)(struct pf__slot *s, int out[2], const char **step);
    /* In the child: become the worker (does not return). ctl is its end
     * of the control socketpair, master the master's pid. */
    void (*child)(struct pf__slot *s, int ctl, pid_t master, const int out[2]);
    /* In the master after the fork; worker_end is the child's end of the
     * control socketpair, closed by the caller after this. */
    void (*forked)(struct pf__slot *s, int worker_end, const int out[2]);
    /* Reaped, with its wait status: release what was the worker's
     * (connections not taken yet, its output). */
    void (*cleared)(struct pf__slot *s, int status);
    /* The worker said READY (or the master said it for a program). */
    void (*ready)(struct pf__slot *s);
    /* The worker asked to be replaced (max-requests). */
    void (*recycle)(struct pf__slot *s);
    /* A death while running, not asked for: true if handled (no respawn). */
    bool (*died)(struct pf__slot *s, int status);
    /* The pool cannot go on: a fatal exit, too many start failures, a
     * respawn that cannot be scheduled. */
    void (*give_up)(pf_pool *p);
    /* After every reap: the pool may be done. */
    void (*reaped)(pf_pool *p);
};

struct pf_pool {
    struct pf_config cfg;
    struct pf_service svc;
    struct pf__listener ls[PF_MAX_LISTENERS];
    int lfd[PF_MAX_LISTENERS];
    int nls;
    int inherited[PF__MAX_INHERITED]; /* from a previous master, not yet adopted */
    int ninherited;
    const char *upgrade_path;        /* pf_pool_set_upgrade */
    char *const *upgrade_argv;
    const char *upgrade_dir;         /* pf_pool_set_upgrade_dir, or NULL */
    /* master state, while pf_pool_run runs */
    const struct pf__spawn_ops *ops;
    pf_loop *loop;
    int sigfd;
    struct pf__board *board;
    int boardfd;
    struct pf__slot *slots;
    int nslots;
    int running;          /* processes alive */
    int slot_hi;          /* the highest slot index ever used: scans of the
                           * slots stop there, so the unused part of the table
                           * stays untouched (on some kernels even a read makes
                           * a page resident, in every worker's RSS too) */
    int workers;          /* the size of the current generation (TTIN/TTOU) */
    unsigned generation;  /* the current generation: serving, or starting */
    unsigned serving;     /* the last generation that was all ready */
    unsigned gen_seq;     /* numbers generations: only goes up */
    bool reloading;       /* the newest generation is not all ready yet */
    bool reload_pending;  /* a HUP came during a reload */
    bool started;         /* the first generation has been all ready */
    enum pf__phase phase;
    bool fast;
    int sigints;
    int result;
    pf_timer grace, reload_timer, watchdog, prestop, tick;
    /* USR2, old master's side */
    pid_t heir;           /* the new master, 0 if none */
    int heir_pidfd, heir_pipe;
    pf_timer heir_timer;
    bool handed_over;     /* the heir is serving: leave the socket files */
    /* USR2, new master's side: where to say "ready" (-1: not an heir) */
    int upgrade_fd;
    struct pf__handoff handoff;  /* dispatch mode, and retired reuseport rows */
    /* reuseport mode: rows[i] = worker index i's sockets (row 0: lfd);
     * order[k] = the row at place k of its ports' reuseport groups */
    int **rows;
    int *order;
    int norder;
    bool steering; /* pf__rp_steer has run: a row bound later steers again */
};

/* The restart counters in the scoreboard (the master is their one writer). */
static inline void pf__count_restart(pf_pool *p, enum pf_restart_cause cause)
{
    PF__PUT(p->board->restarts[cause], PF__GET(p->board->restarts[cause]) + 1);
}
#define PF__COUNT(p, field) PF__PUT((p)->board->field, PF__GET((p)->board->field) + 1)

/* metrics.c: the listener of --metrics-listen, bound and watched by the
 * master (0 or -errno, logged), then closed; its fd in a new worker. */
int pf__metrics_start(pf_pool *p);
void pf__metrics_stop(pf_pool *p);
void pf__metrics_close_in_child(pf_pool *p);

/* pool.c */
void pf__pool_close_listeners(pf_pool *p);
/* The flags (PF_ADDR_*) of the listener fd is, or is a reuseport copy of. */
unsigned pf__listener_flags_of(pf_pool *p, int fd);
void pf__tune_listener(const pf_pool *p, int fd);

/* spawn.c: the slot table (the leaf) */
struct pf__slot *pf__slot_find_empty(pf_pool *p);
void pf__spawn(struct pf__slot *s, int index, unsigned generation);
void pf__slot_ready(struct pf__slot *s);
void pf__slot_signal(struct pf__slot *s, int sig);
void pf__signal_all(pf_pool *p, int sig);
void pf__retire(struct pf__slot *s);
void pf__cancel_respawns(pf_pool *p);
int pf__count(const pf_pool *p, unsigned generation, bool ready_only);
struct pf__score *pf__score_of(const struct pf__slot *s);

/* supervise.c */
extern const struct pf__spawn_ops pf__supervise;

/* child.c: in a new worker (does not return) */
void pf__become_worker(struct pf__slot *s, int ctl, pid_t master, const int out[2]);

/* master.c */
void pf__stop_graceful(pf_pool *p, const char *why);
void pf__give_up(pf_pool *p);
void pf__finish_if_done(pf_pool *p);
void pf__event(pf_pool *p, enum pf_event_kind kind, const struct pf__slot *s, int status);

/* generations.c */
void pf__on_ready(struct pf__slot *s);
bool pf__on_death(struct pf__slot *s, int status); /* true: handled, no respawn */
void pf__reload(pf_pool *p);
void pf__resize(pf_pool *p, int delta);
void pf__recycle(struct pf__slot *s);
void pf__watchdog_start(pf_pool *p);

/* handoff.c */
int pf__handoff_start(pf_pool *p);
void pf__handoff_stop(pf_pool *p);
void pf__handoff_free(pf_pool *p);
void pf__handoff_recover(struct pf__slot *s);
void pf__handoff_watch(pf_pool *p, int fd, bool on);

/* program.c */
int pf__program_before(struct pf__slot *s, int out[2]);
void pf__program_child(struct pf__slot *s, const int out[2]);
void pf__program_parent(struct pf__slot *s, const int out[2]);
void pf__program_gone(struct pf__slot *s);
void pf__program_close(const struct pf__slot *s);
void pf__program_free(struct pf__slot *s);

/* reuseport.c */
int pf__rp_bind(pf_pool *p, int index);
const int *pf__rp_row(pf_pool *p, int index);
void pf__rp_orphan(pf_pool *p, int index, bool orphan);
void pf__rp_each(pf_pool *p, void (*fn)(pf_pool *p, int fd, void *ud), void *ud);
void pf__rp_close_others(pf_pool *p, int index);
void pf__rp_free(pf_pool *p);
void pf__rp_steer(pf_pool *p);

/* upgrade.c: the old master's side */
void pf__upgrade(pf_pool *p);

/* inherit.c: the new master's side */
void pf__inherit(pf_pool *p);       /* take the old master's listeners */
void pf__upgrade_ready(pf_pool *p); /* tell the old master */
int pf__adopt(pf_pool *p, const struct pf_addr *a);
void pf__unadopt(pf_pool *p, int fd); /* put an adopted socket back, first */

/* notify.c: systemd's sd_notify protocol (a no-op without NOTIFY_SOCKET),
 * and the pidfile. */
void pf__notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int pf__pidfile_write(const char *path, pid_t pid);
void pf__pidfile_remove(const char *path, pid_t pid);

#endif
