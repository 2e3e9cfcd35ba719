/* reuseport.c — reuseport mode: one SO_REUSEPORT socket per listener and worker index, owned by the master. */
#include <errno.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/master/pool.h"

/*
 * Row i holds the sockets that worker index i listens on, one per
 * listener; row 0 is the pool's own listeners. The kernel spreads new
 * connections over a port's sockets by a hash of the connection.
 *
 * The master owns every row, so nothing queued on a socket is lost with its
 * worker: a respawned, recycled or reloaded worker with the same index takes
 * the same sockets over. When the pool shrinks, the kernel keeps hashing
 * connections to the retired row, so the master polls that row itself and
 * passes what arrives to the other workers (its hand-off, handoff.c, as in
 * dispatch mode); a later TTIN gives the row back to a worker.
 *
 * Unix sockets cannot be reuseport: every row shares the one socket, as in
 * shared mode. So does a socket handed over without SO_REUSEPORT (systemd).
 */

/*
 * Steering (with cpu-affinity): worker i runs on CPU cpus[i], so a classic
 * BPF program on each port's group sends a connection to row i's place when
 * CPU cpus[i] handles its SYN (the CPU of the NIC queue, or of the client on
 * loopback): the socket, its wake-ups and the worker share a CPU. A row's
 * place is the order in which it joined (order[]): the master never closes
 * a row, and one that fails to bind (out of descriptors, say) leaves the
 * groups as they were, so a later row takes the next place and the failed
 * one, bound again, the one after. After USR2 the old master passes its
 * rows in place order and the new one adopts them in that order. With more
 * workers than CPUs, some CPU has two and the kernel's hash spreads instead.
 */

#define STEER_NONE 0xffffffffu /* not a socket of the group: the kernel hashes */

static bool is_reuseport(int fd)
{
    int on = 0;
    socklen_t len = sizeof on;
    return getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 && on;
}

/* The address row 0's socket is bound to, as a pf_addr to bind again. */
static int bound_addr(int fd, struct pf_addr *a)
{
    memset(a, 0, sizeof *a);
    a->len = sizeof a->ss;
    if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0)
        return -errno;
    a->kind = PF_ADDR_TCP;
    a->fd = -1;
    return 0;
}

/* Whether row 0's listener fd has a socket per row (a TCP socket with
 * SO_REUSEPORT), and then the address it is bound to, in a. */
static bool per_row(int fd, struct pf_addr *a)
{
    return is_reuseport(fd) && bound_addr(fd, a) == 0 && a->ss.ss_family != AF_UNIX;
}

/* Undo a row that failed at listener l: each socket it opened was the last
 * of its group, so closing it leaves the others' places; adopted ones go
 * back to the inherited list for the next row. */
static void unbind_row(pf_pool *p, const int *row, const bool *adopted, int l)
{
    while (l-- > 0) {
        if (row[l] == p->lfd[l])
            continue;
        if (adopted[l])
            pf__unadopt(p, row[l]);
        else
            close(row[l]);
    }
}

static int bind_row(pf_pool *p, int *row)
{
    bool adopted[PF_MAX_LISTENERS];
    for (int l = 0; l < p->nls; l++) {
        struct pf_addr a;
        int fd = -1, err = 0;
        if (!per_row(p->lfd[l], &a)) {
            row[l] = p->lfd[l]; /* shared with row 0 */
            continue;
        }
        fd = pf__adopt(p, &a); /* from the previous master, after USR2 */
        adopted[l] = fd >= 0;
        if (fd < 0)
            fd = err = pf_listen_open(&a, p->cfg.backlog, PF_LISTEN_REUSEPORT);
        if (err < 0) {
            pf_log(PF_LOG_ERROR, "binding %s again (SO_REUSEPORT): %s", p->ls[l].name,
                   strerror(-err));
            unbind_row(p, row, adopted, l);
            return err;
        }
        pf__tune_listener(p, fd);
        row[l] = fd;
    }
    return 0;
}

/* Row index's place in its ports' groups, or -1 while it is not bound. */
static int place_of(const pf_pool *p, int index)
{
    for (int k = 0; k < p->norder; k++)
        if (p->order[k] == index)
            return k;
    return index == 0 ? 0 : -1;
}

/* The program: "load the CPU; if it is cpus[i], return row i's place";
 * else (or while row i is not bound) none. */
static int steer_code(const pf_pool *p, const int *cpus, int n, struct sock_filter *code)
{
    int len = 0;
    code[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU);
    for (int i = 0; i < n; i++) {
        int place = place_of(p, i);
        if (place < 0)
            continue;
        unsigned cpu = (unsigned)cpus[i];
        code[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, cpu, 0, 1);
        code[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (unsigned)place);
    }
    code[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, STEER_NONE);
    return len;
}

/* Steer new connections to the worker on their CPU, or stop steering:
 * at start and whenever the worker count changes. Failures are logged;
 * the kernel's hash then spreads connections, as without cpu-affinity. */
void pf__rp_steer(pf_pool *p)
{
    struct sock_filter code[2 * PF_MAX_CPUS + 2];
    int cpus[PF_MAX_CPUS], n;
    if (p->cfg.mode != PF_MODE_REUSEPORT || !p->cfg.cpu_affinity ||
        (n = pf__cpus_usable(&p->cfg, cpus)) <= 0)
        return;
    p->steering = true;
    bool on = p->workers <= n;
    unsigned short len = on ? (unsigned short)steer_code(p, cpus, p->workers, code) : 0;
    struct sock_fprog prog = {.len = len, .filter = code};
    for (int l = 0; l < p->nls; l++) {
        struct pf_addr a;
        if (!per_row(p->lfd[l], &a))
            continue;
        int r = on ? setsockopt(p->lfd[l], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog)
                   : setsockopt(p->lfd[l], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, NULL, 0);
        if (r < 0 && on)
            pf_log(PF_LOG_WARN, "steering connections on %s by CPU: %s", p->ls[l].name,
                   strerror(errno));
    }
    if (on)
        pf_log(PF_LOG_DEBUG, "connections steered to the worker on their CPU");
    else
        pf_log(PF_LOG_INFO, "%d workers on %d CPUs: connections spread by hash, not by CPU",
               p->workers, n);
}

/* Bind row index's sockets, the first time: 0 or -errno. */
int pf__rp_bind(pf_pool *p, int index)
{
    if (p->cfg.mode != PF_MODE_REUSEPORT || index == 0)
        return 0;
    if (!p->rows) {
        p->rows = calloc(PF_MAX_WORKERS, sizeof *p->rows);
        p->order = calloc(PF_MAX_WORKERS, sizeof *p->order);
        if (!p->rows || !p->order) {
            pf__rp_free(p);
            return -ENOMEM;
        }
        p->norder = 1; /* place 0: row 0, the pool's own listeners */
    }
    if (!p->rows[index]) {
        int *row = malloc(sizeof(int) * (size_t)p->nls);
        int err = row ? bind_row(p, row) : -ENOMEM;
        if (err < 0) {
            free(row);
            return err;
        }
        p->rows[index] = row;
        p->order[p->norder++] = index;
        pf_log(PF_LOG_DEBUG, "worker %d's sockets bound: place %d in their reuseport groups",
               index, p->norder - 1);
        if (p->steering) /* bound after start (TTIN, or after a failure): steer to it too */
            pf__rp_steer(p);
    }
    return 0;
}

/* Row index's sockets (binding them the first time), or NULL. */
const int *pf__rp_row(pf_pool *p, int index)
{
    if (pf__rp_bind(p, index) < 0)
        return NULL;
    return p->cfg.mode != PF_MODE_REUSEPORT || index == 0 ? p->lfd : p->rows[index];
}

/* Poll a retired row from the master (or stop, when a worker takes it). */
void pf__rp_orphan(pf_pool *p, int index, bool orphan)
{
    if (p->cfg.mode != PF_MODE_REUSEPORT || index == 0 || !p->rows || !p->rows[index])
        return;
    for (int l = 0; l < p->nls; l++)
        if (p->rows[index][l] != p->lfd[l])
            pf__handoff_watch(p, p->rows[index][l], orphan);
}

/* Every row's own sockets (not row 0, not shared ones), in place order,
 * for fn. */
void pf__rp_each(pf_pool *p, void (*fn)(pf_pool *p, int fd, void *ud), void *ud)
{
    for (int k = 1; k < p->norder; k++) {
        const int *row = p->rows[p->order[k]];
        for (int l = 0; l < p->nls; l++)
            if (row[l] != p->lfd[l])
                fn(p, row[l], ud);
    }
}

/* In a worker: close the rows that are not its own. */
void pf__rp_close_others(pf_pool *p, int index)
{
    for (int i = 1; p->rows && i < PF_MAX_WORKERS; i++)
        for (int l = 0; i != index && p->rows[i] && l < p->nls; l++)
            if (p->rows[i][l] != p->lfd[l])
                close(p->rows[i][l]);
    if (index != 0 && p->cfg.mode == PF_MODE_REUSEPORT)
        for (int l = 0; l < p->nls; l++)
            if (p->rows && p->rows[index] && p->rows[index][l] != p->lfd[l])
                close(p->lfd[l]);
}

void pf__rp_free(pf_pool *p)
{
    for (int i = 1; p->rows && i < PF_MAX_WORKERS; i++) {
        for (int l = 0; p->rows[i] && l < p->nls; l++)
            if (p->rows[i][l] != p->lfd[l])
                close(p->rows[i][l]);
        free(p->rows[i]);
    }
    free(p->rows);
    free(p->order);
    p->rows = NULL;
    p->order = NULL;
    p->norder = 0;
}
