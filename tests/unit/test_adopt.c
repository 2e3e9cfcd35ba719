/* test_adopt.c — unit tests of a new master's reuseport rows: they adopt the old master's sockets in order, and a row that fails gives them back. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/master/pool.h"

static pf_pool *pool;

static void on_conn(pf_worker *w, int fd, const struct sockaddr *peer, socklen_t len, void *ud)
{
    (void)w, (void)peer, (void)len, (void)ud;
    close(fd);
}

static void cleanup(void)
{
    pf_pool_free(pool); /* closes the rows and the sockets not adopted */
    pool = NULL;
}

TestSuite(adopt, .fini = cleanup);

/* A reuseport pool with two TCP listeners on loopback, as a new master
 * has it before its workers start. */
static pf_pool *two_listeners(void)
{
    struct pf_config cfg;
    struct pf_service svc = {.on_conn = on_conn};
    pf_config_init(&cfg);
    cfg.mode = PF_MODE_REUSEPORT;
    cfg.workers = 3;
    cr_assert_eq(pf_pool_new(&pool, &cfg, &svc), 0);
    cr_assert_eq(pf_pool_listen(pool, "127.0.0.1:0"), 0);
    cr_assert_eq(pf_pool_listen(pool, "127.0.0.1:0"), 0);
    return pool;
}

/* Another socket in listener l's reuseport group: one the old master
 * passed, put on the inherited list at its end. */
static int pass(pf_pool *p, int l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    struct pf_addr a = {.kind = PF_ADDR_TCP, .fd = -1};
    cr_assert_eq(getsockname(p->lfd[l], (struct sockaddr *)&ss, &len), 0);
    a.ss = ss;
    a.len = len;
    int fd = pf_listen_open(&a, 16, PF_LISTEN_REUSEPORT);
    cr_assert_geq(fd, 0, "a socket for listener %d: %d", l, fd);
    p->inherited[p->ninherited++] = fd;
    return fd;
}

/* Lower the open-file limit to the lowest free descriptor: every one below
 * it is open, so the next socket() fails with EMFILE. */
static void no_more_fds(void)
{
    int next = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(next, 0);
    close(next);
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = (rlim_t)next;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void fds_again(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

Test(adopt, rows_take_the_old_masters_sockets_in_the_order_they_were_passed)
{
    pf_pool *p = two_listeners();
    int l1a = pass(p, 1), l0a = pass(p, 0), l0b = pass(p, 0), l1b = pass(p, 1);
    const int *row2 = pf__rp_row(p, 2); /* worker 2 starts first */
    cr_assert_not_null(row2);
    cr_expect_eq(row2[0], l0a);
    cr_expect_eq(row2[1], l1a);
    const int *row1 = pf__rp_row(p, 1);
    cr_assert_not_null(row1);
    cr_expect_eq(row1[0], l0b);
    cr_expect_eq(row1[1], l1b);
    cr_expect_eq(p->ninherited, 0);
    cr_assert_eq(p->norder, 3);
    cr_expect_eq(p->order[1], 2, "place 1 is the row bound first");
    cr_expect_eq(p->order[2], 1);
}

Test(adopt, a_row_that_fails_to_bind_gives_its_adopted_socket_back_at_the_head)
{
    pf_pool *p = two_listeners();
    struct pf_addr a;
    cr_assert_eq(pf_addr_parse("127.0.0.1:0", &a, NULL), 0);
    int stranger = pf_listen_open(&a, 16, 0); /* another port's socket, first on the list */
    cr_assert_geq(stranger, 0);
    p->inherited[p->ninherited++] = stranger;
    int l0a = pass(p, 0), l0b = pass(p, 0); /* listener 0 has two, listener 1 none */

    no_more_fds();
    const int *failed = pf__rp_row(p, 1);
    fds_again();
    cr_expect_null(failed, "listener 0 adopted, listener 1 out of descriptors");
    cr_assert_eq(p->ninherited, 3, "the adopted socket is back on the list");
    cr_expect_eq(p->inherited[0], l0a, "at the head, ahead of its port's later sockets");
    cr_expect_eq(p->inherited[1], stranger);
    cr_expect_eq(p->inherited[2], l0b);
    cr_expect_geq(fcntl(l0a, F_GETFD), 0, "and still open");
    cr_expect_eq(p->norder, 1, "no place taken");

    const int *row1 = pf__rp_row(p, 1);
    cr_assert_not_null(row1);
    cr_expect_eq(row1[0], l0a, "the next try takes the same socket, so the same place");
    cr_expect_geq(row1[1], 0);
    cr_expect_neq(row1[1], p->lfd[1]);
    cr_expect_eq(p->ninherited, 2);
    cr_expect_eq(p->inherited[0], stranger);
    cr_expect_eq(p->inherited[1], l0b);
}

/* A socket systemd passed (on the inherited list) that an address names by
 * number, fd:N, is that listener: taken off the list, so it is neither
 * adopted a second time by pf_pool_listen_systemd nor closed as unclaimed. */
Test(adopt, fd_n_takes_the_inherited_socket_by_its_number)
{
    struct pf_config cfg;
    struct pf_service svc = {.on_conn = on_conn};
    pf_config_init(&cfg);
    cr_assert_eq(pf_pool_new(&pool, &cfg, &svc), 0);
    struct pf_addr a = {.kind = PF_ADDR_TCP, .fd = -1};
    cr_assert_eq(pf_addr_parse("127.0.0.1:0", &a, NULL), 0);
    int fd = pf_listen_open(&a, 16, 0);
    cr_assert_geq(fd, 0);
    pool->inherited[pool->ninherited++] = fd;
    char spec[32];
    snprintf(spec, sizeof spec, "fd:%d,tls", fd);
    cr_assert_eq(pf_pool_listen(pool, spec), 0);
    cr_assert_eq(pool->ninherited, 0, "fd:%d left on the inherited list", fd);
    cr_assert_eq(pf_pool_listener_count(pool), 1);
    cr_assert_eq(pool->lfd[0], fd);
    cr_assert_eq(pf_pool_listener_flags(pool, 0), PF_ADDR_TLS);
    cr_assert_eq(pf_pool_listen_systemd(pool), 0, "adopted a second time");
}
