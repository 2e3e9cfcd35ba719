/* pool.c — the pool object: options, the service, and the listeners it binds before forking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/master/pool.h"

int pf_pool_new(pf_pool **out, const struct pf_config *cfg,
                const struct pf_service *svc)
{
    if (!svc || (!svc->on_conn && !svc->main) || pf_config_check(cfg, NULL) < 0)
        return -EINVAL;
    pf_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->cfg = *cfg;
    p->svc = *svc;
    p->sigfd = -1;
    p->boardfd = -1;
    p->heir_pidfd = p->heir_pipe = -1;
    pf__inherit(p);
    *out = p;
    return 0;
}

void pf_pool_set_upgrade(pf_pool *p, const char *path, char *const *argv)
{
    p->upgrade_path = path;
    p->upgrade_argv = argv;
}

void pf_pool_set_upgrade_dir(pf_pool *p, const char *dir)
{
    p->upgrade_dir = dir;
}

void pf_pool_free(pf_pool *p)
{
    if (!p)
        return;
    pf__pool_close_listeners(p);
    for (int i = 0; i < p->ninherited; i++)
        close(p->inherited[i]);
    if (p->upgrade_fd >= 0)
        close(p->upgrade_fd);
    free(p);
}

/* Remember a Unix socket file we created, to remove it at the end, but only
 * if it is still ours: a newer server may have replaced it meanwhile. */
static void remember_path(struct pf__listener *l, const struct pf_addr *a)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
    struct stat st;
    if (un->sun_path[0] == '\0' || stat(un->sun_path, &st) < 0)
        return; /* abstract socket: nothing on disk */
    snprintf(l->path, sizeof l->path, "%s", un->sun_path);
    l->dev = st.st_dev;
    l->ino = st.st_ino;
}

void pf__tune_listener(const pf_pool *p, int fd)
{
    int one = 1;
    if (p->cfg.tcp_nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* not TCP: harmless */
    if (p->cfg.defer_accept)
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
}

static void add_listener(pf_pool *p, int fd)
{
    pf__tune_listener(p, fd);
    struct pf__listener *l = &p->ls[p->nls];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(l, 0, sizeof *l);
    l->fd = fd;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        pf_addr_format((struct sockaddr *)&ss, len, l->name, sizeof l->name) < 0)
        snprintf(l->name, sizeof l->name, "fd:%d", fd);
    p->lfd[p->nls++] = fd;
}

int pf_pool_listen(pf_pool *p, const char *spec)
{
    struct pf_addr a;
    if (p->nls >= PF_MAX_LISTENERS)
        return -E2BIG;
    int err = pf_addr_parse(spec, &a, NULL);
    if (err < 0)
        return err;
    /* A socket inherited from the previous master (USR2) or from systemd
     * is taken as it is: binding again would fail, or drop its queue. */
    int fd = pf__adopt(p, &a);
    if (fd < 0)
        fd = pf_listen_open(&a, p->cfg.backlog,
                            p->cfg.mode == PF_MODE_REUSEPORT ? PF_LISTEN_REUSEPORT : 0);
    if (fd < 0)
        return fd;
    add_listener(p, fd);
    p->ls[p->nls - 1].flags = a.flags;
    if (a.kind == PF_ADDR_UNIX)
        remember_path(&p->ls[p->nls - 1], &a);
    return 0;
}

/* The sockets were collected when the pool was made (pf__inherit), before
 * anything could bind: adopt the ones no address has claimed. */
int pf_pool_listen_systemd(pf_pool *p)
{
    int n = 0;
    while (p->ninherited > 0 && p->nls < PF_MAX_LISTENERS) {
        add_listener(p, p->inherited[--p->ninherited]);
        n++;
    }
    return n;
}

int pf_pool_listener_count(const pf_pool *p) { return p->nls; }

int pf_pool_listener_flags(const pf_pool *p, int i)
{
    return i < 0 || i >= p->nls ? -ENOENT : (int)p->ls[i].flags;
}

unsigned pf__listener_flags_of(pf_pool *p, int fd)
{
    for (int i = 0; i < p->nls; i++)
        if (p->ls[i].fd == fd)
            return p->ls[i].flags;
    for (int w = 1; p->rows && w < PF_MAX_WORKERS; w++) /* reuseport rows: never bound here */
        for (int i = 0; p->rows[w] && i < p->nls; i++)
            if (p->rows[w][i] == fd)
                return p->ls[i].flags;
    return 0;
}

int pf_pool_listener_name(const pf_pool *p, int i, char *buf, size_t size)
{
    if (i < 0 || i >= p->nls)
        return -ENOENT;
    snprintf(buf, size, "%s", p->ls[i].name);
    return 0;
}

/* After an upgrade the socket files belong to the new master as well (the
 * same sockets): they stay. */
void pf__pool_close_listeners(pf_pool *p)
{
    pf__rp_free(p); /* reuseport rows first: they are told apart from row 0 */
    for (int i = 0; i < p->nls; i++) {
        struct pf__listener *l = &p->ls[i];
        struct stat st;
        if (l->path[0] && !p->handed_over && stat(l->path, &st) == 0 &&
            st.st_dev == l->dev && st.st_ino == l->ino)
            unlink(l->path);
        close(l->fd);
    }
    p->nls = 0;
}
