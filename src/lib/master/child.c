/* child.c — a new worker's first steps after the fork: drop the master's descriptors and privileges, then become a worker. */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/master/pool.h"
#include "lib/worker/spec.h"

/* Drop every descriptor that belongs to the master, so a worker holds its
 * listeners, its control socket and nothing else. */
static void close_master_fds(pf_pool *p, const struct pf__slot *keep)
{
    for (int i = 0; i <= p->slot_hi; i++) {
        const struct pf__slot *s = &p->slots[i];
        if (s != keep && s->pid) {
            close(s->pidfd);
            close(s->ctl);
        }
        if (s->pool && s->ctl_peer >= 0)
            close(s->ctl_peer);
        if (s->pool)
            pf__program_close(s);
    }
    /* Dispatch mode: the master accepts; workers hold no listener. In
     * reuseport mode, each holds its own row only. */
    for (int i = 0; p->cfg.mode == PF_MODE_DISPATCH && i < p->nls; i++)
        close(p->lfd[i]);
    pf__rp_close_others(p, keep->index);
    /* After USR2: sockets of the old master's rows that no row has adopted
     * yet (the later indexes, while the workers start) are not this one's. */
    for (int i = 0; i < p->ninherited; i++)
        close(p->inherited[i]);
    close(p->sigfd);
    close(p->boardfd);
    pf__metrics_close_in_child(p);
    if (p->heir_pipe >= 0)
        close(p->heir_pipe);
    if (p->heir_pidfd >= 0)
        close(p->heir_pidfd);
    pf_loop_free(p->loop);
}

/* setgroups, then setgid, then setuid: in that order, or a step fails. */
static int drop_privileges(const struct pf_config *cfg)
{
    if (!cfg->drop_privileges)
        return 0;
    if (setgroups(1, &cfg->gid) < 0 || setgid(cfg->gid) < 0 || setuid(cfg->uid) < 0) {
        pf_log(PF_LOG_ERROR, "dropping privileges to uid %d gid %d: %s", (int)cfg->uid,
               (int)cfg->gid, strerror(errno));
        return -1;
    }
    return 0;
}

/* A worker's recycling limit: max-requests plus its own random jitter, so
 * that workers started together do not all restart together. */
static uint64_t request_limit(const struct pf_config *cfg)
{
    if (!cfg->max_requests)
        return 0;
    uint64_t jitter = cfg->max_requests_jitter
                          ? (uint64_t)random() % ((uint64_t)cfg->max_requests_jitter + 1)
                          : 0;
    return cfg->max_requests + jitter;
}

void pf__become_worker(struct pf__slot *s, int ctl, pid_t master, const int out[2])
{
    pf_pool *p = s->pool;
    pf__program_child(s, out);
    close_master_fds(p, s);
    pf__log_set_source("worker %d (pid %d)", s->index, (int)getpid());
    pf__pin_worker(&p->cfg, s->index);
    if (drop_privileges(&p->cfg) < 0)
        _exit(PF_EXIT_FATAL);
    unsigned flags[PF_MAX_LISTENERS];
    for (int i = 0; i < p->nls; i++)
        flags[i] = p->ls[i].flags;
    struct pf__worker_spec spec = {
        .index = s->index, .generation = s->generation, .master = master,
        .listener_flags = flags,
        .max_requests = request_limit(&p->cfg), .ctl = ctl,
        .listeners = pf__rp_row(p, s->index),
        .nlisteners = p->cfg.mode == PF_MODE_DISPATCH ? 0 : p->nls,
        .score = pf__score_of(s), .board = p->board, .cfg = &p->cfg, .svc = &p->svc,
    };
    pf__worker_run(&spec);
}
