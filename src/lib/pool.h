/* pool.h — the pool object, shared by pool.c (set-up, listeners) and master.c (supervision). */
#ifndef PF_POOL_H
#define PF_POOL_H

#include <sys/stat.h>

#include "internal.h"

struct pf__listener {
    int fd;
    char name[128];    /* bound address, "127.0.0.1:8000" */
    char fdname[64];   /* LISTEN_FDNAMES entry */
    char path[108];    /* Unix socket we created, to unlink at the end */
    dev_t dev;         /* ... only if it is still our socket file */
    ino_t ino;
};

/* One supervised process. Slot i of the table uses scoreboard slot i. */
struct pf__slot {
    struct pf_pool *pool;
    pid_t pid;          /* 0 when no process */
    int pidfd;          /* -1 when none */
    int ctl;            /* master's end of the control socketpair */
    int index;
    unsigned generation;
    bool ready;         /* said READY */
    uint64_t started;   /* monotonic ms */
    unsigned quick;     /* consecutive quick deaths: the back-off level */
    unsigned failed;    /* consecutive deaths before READY */
    pf_timer respawn;
};

enum pf__phase { PF__RUNNING, PF__STOPPING, PF__STOPPED };

struct pf_pool {
    struct pf_config cfg;
    struct pf_service svc;
    struct pf__listener ls[PF_MAX_LISTENERS];
    int lfd[PF_MAX_LISTENERS];
    int nls;
    /* master state, while pf_pool_run runs */
    pf_loop *loop;
    int sigfd;
    struct pf__board *board;
    int boardfd;
    struct pf__slot *slots;
    int nslots;
    int running; /* processes alive */
    unsigned generation;
    enum pf__phase phase;
    bool fast;
    int sigints;
    int result;
    pf_timer grace;
};

void pf__pool_close_listeners(pf_pool *p);

#endif
