/* inherit.c — USR2, the new master's side: take the listeners an old master passed, adopt them by address, and say when ready. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/master/pool.h"

/* The protocol between the two masters is told in upgrade.c: the old one
 * puts its listeners at 3, 4, ... (LISTEN_FDS, as systemd would) and a
 * pipe at PREFORK_UPGRADE_FD, on which this side writes "R" once all its
 * workers are ready. The same path takes sockets from systemd. */

void pf__upgrade_ready(pf_pool *p)
{
    if (p->upgrade_fd < 0)
        return;
    if (write(p->upgrade_fd, "R", 1) != 1)
        pf_log(PF_LOG_WARN, "telling the old master we are ready: %s", strerror(errno));
    close(p->upgrade_fd);
    p->upgrade_fd = -1;
}

/* Take what a previous master passed: its listeners (LISTEN_FDS) and the
 * pipe to answer on. Called when the pool is created. */
void pf__inherit(pf_pool *p)
{
    const char *fd = getenv("PREFORK_UPGRADE_FD");
    p->upgrade_fd = -1;
    if (fd) {
        p->upgrade_fd = atoi(fd);
        if (p->upgrade_fd < 3 || fcntl(p->upgrade_fd, F_SETFD, FD_CLOEXEC) < 0)
            p->upgrade_fd = -1;
        unsetenv("PREFORK_UPGRADE_FD");
    }
    int n = pf_listen_systemd(p->inherited, NULL, PF__MAX_INHERITED);
    p->ninherited = n == -E2BIG ? PF__MAX_INHERITED : n > 0 ? n : 0;
    /* systemd passes blocking sockets: a worker's accept loop, which goes
     * on until EAGAIN, would then sleep in accept4 with its connections
     * waiting. (An old master's are non-blocking already.) */
    for (int i = 0; i < p->ninherited; i++) {
        int fl = fcntl(p->inherited[i], F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK))
            fcntl(p->inherited[i], F_SETFL, fl | O_NONBLOCK);
    }
}

/* Whether a bound socket serves the asked address; port 0 in the request
 * matches any port (a test, or a second master of one started so). */
static bool same_address(const struct pf_addr *a, const struct sockaddr_storage *ss,
                         socklen_t len)
{
    if (a->kind == PF_ADDR_UNIX)
        return ss->ss_family == AF_UNIX && len == a->len && memcmp(ss, &a->ss, len) == 0;
    if (ss->ss_family != a->ss.ss_family && !a->any)
        return false;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)ss, *y = (const void *)&a->ss;
        return (y->sin_port == 0 || x->sin_port == y->sin_port) &&
               (a->any || x->sin_addr.s_addr == y->sin_addr.s_addr);
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)ss, *y = (const void *)&a->ss;
        return (y->sin6_port == 0 || x->sin6_port == y->sin6_port) &&
               (a->any || memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0);
    }
    return false;
}

/* Whether inherited socket fd is the one address a asks for: fd:N names
 * it by number (systemd's sockets given flags: -l fd:3,tls), the others
 * by the address it is bound to. */
static bool asked_for(const struct pf_addr *a, int fd)
{
    if (a->kind == PF_ADDR_FD)
        return fd == a->fd;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && same_address(a, &ss, len);
}

/* An inherited socket for this address: its fd (taken off the list), or -1.
 * The list keeps its order, the old master's rows in their places in the
 * port's reuseport group: the k-th row bound here takes place k, which CPU
 * steering (reuseport.c) counts on. */
int pf__adopt(pf_pool *p, const struct pf_addr *a)
{
    for (int i = 0; i < p->ninherited; i++) {
        int fd = p->inherited[i];
        if (!asked_for(a, fd))
            continue;
        p->ninherited--;
        memmove(&p->inherited[i], &p->inherited[i + 1],
                sizeof p->inherited[0] * (size_t)(p->ninherited - i));
        return fd;
    }
    return -1;
}

/* A socket pf__adopt gave a row that then failed to bind: back at the head
 * of the list, where it was among the sockets of its address. Closing it
 * would move the group's last socket into its place. */
void pf__unadopt(pf_pool *p, int fd)
{
    memmove(&p->inherited[1], &p->inherited[0], sizeof p->inherited[0] * (size_t)p->ninherited);
    p->inherited[0] = fd;
    p->ninherited++;
}
