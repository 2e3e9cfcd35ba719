/* supervise.c — the pool's answers to the slot table: what each fork, message and death means for its mode, its programs and its generations. */
#include <fcntl.h>
#include <unistd.h>

#include "lib/master/pool.h"

/* spawn.c forks, reaps and backs off; every decision that depends on the
 * pool's options or state is taken here, or in the file named. */

static int prepare(struct pf__slot *s, int out[2], const char **step)
{
    int err = pf__rp_bind(s->pool, s->index); /* reuseport: this index's sockets first */
    if (err < 0) {
        *step = "binding its reuseport sockets";
        return err;
    }
    err = pf__program_before(s, out);
    if (err < 0)
        *step = "its NOTIFY_SOCKET or output pipe";
    return err;
}

/* The master keeps the worker's end of the control socket open too, where
 * it passes connections (dispatch mode, a retired reuseport row), so that
 * what the worker never read survives its death (see handoff.c). */
static void forked(struct pf__slot *s, int worker_end, const int out[2])
{
    s->handed = 0;
    if (s->pool->cfg.mode != PF_MODE_SHARED)
        s->ctl_peer = fcntl(worker_end, F_DUPFD_CLOEXEC, 3);
    pf__program_parent(s, out);
}

static void cleared(struct pf__slot *s, int status)
{
    pf__handoff_recover(s);
    pf__program_gone(s);
    pf__event(s->pool, PF_EVENT_WORKER_EXIT, s, status);
}

const struct pf__spawn_ops pf__supervise = {
    .prepare = prepare,
    .child = pf__become_worker,
    .forked = forked,
    .cleared = cleared,
    .ready = pf__on_ready,
    .recycle = pf__recycle,
    .died = pf__on_death,
    .give_up = pf__give_up,
    .reaped = pf__finish_if_done,
};
