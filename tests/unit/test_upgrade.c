/* test_upgrade.c — unit tests of USR2 on the old master's side: an upgrade with more sockets than a new master can inherit is refused before anything is forked. */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lib/master/pool.h"

/* Descriptor numbers no process has (above any RLIMIT_NOFILE): the test
 * counts sockets without opening thousands; closing them is EBADF. */
#define FAKE_FD (1 << 28)

static pf_pool *pool;
static pf_loop *loop;
static char said[4096]; /* the lines logged, one after another */

static void sink(void *ud, enum pf_log_level level, const char *source, const char *msg)
{
    (void)ud, (void)level, (void)source;
    size_t n = strlen(said);
    snprintf(said + n, sizeof said - n, "%s\n", msg);
}

static void on_conn(pf_worker *w, int fd, const struct sockaddr *peer, socklen_t len, void *ud)
{
    (void)w, (void)fd, (void)peer, (void)len, (void)ud;
}

static void cleanup(void)
{
    if (pool && pool->heir > 0) { /* a forked heir, before the fix */
        kill(pool->heir, SIGKILL);
        waitpid(pool->heir, NULL, 0);
    }
    pf_pool_free(pool);
    pf_loop_free(loop);
    pool = NULL;
    loop = NULL;
    pf_log_set_sink(NULL, NULL);
}

TestSuite(upgrade, .fini = cleanup, .timeout = 30);

/* A reuseport pool that has started serving with nls listeners and rows
 * reuseport rows besides row 0, every socket a row's own. */
static pf_pool *serving_pool(int nls, int rows)
{
    static char *argv[] = {"/bin/true", NULL};
    struct pf_config cfg;
    struct pf_service svc = {.on_conn = on_conn};
    pf_config_init(&cfg);
    cfg.mode = PF_MODE_REUSEPORT;
    cr_assert_eq(pf_pool_new(&pool, &cfg, &svc), 0);
    cr_assert_eq(pf_loop_new(&loop), 0);
    pool->loop = loop;
    pool->started = true;
    pf_pool_set_upgrade(pool, argv[0], argv);
    for (int l = 0; l < nls; l++)
        pool->lfd[l] = pool->ls[l].fd = FAKE_FD + l;
    pool->nls = nls;
    pool->rows = calloc(PF_MAX_WORKERS, sizeof *pool->rows);
    pool->order = calloc(PF_MAX_WORKERS, sizeof *pool->order);
    cr_assert(pool->rows && pool->order);
    pool->norder = 1;
    for (int i = 1; i <= rows; i++) {
        pool->rows[i] = malloc(sizeof(int) * (size_t)nls);
        cr_assert_not_null(pool->rows[i]);
        for (int l = 0; l < nls; l++)
            pool->rows[i][l] = FAKE_FD + i * PF_MAX_LISTENERS + l;
        pool->order[pool->norder++] = i;
    }
    pf_log_set_sink(sink, NULL);
    return pool;
}

Test(upgrade, more_sockets_than_an_heir_can_inherit_is_refused_before_forking)
{
    /* 64 listeners x (1 + 64 rows) = 4160 sockets, past PF__MAX_INHERITED. */
    pf_pool *p = serving_pool(PF_MAX_LISTENERS, 64);
    pf__upgrade(p);
    cr_expect_eq(p->heir, 0, "no new master was forked");
    cr_expect_not_null(strstr(said, "upgrade refused"), "one clear line; logged:\n%s", said);
    cr_expect_not_null(strstr(said, "4160"), "it says how many; logged:\n%s", said);
    cr_expect_eq(p->phase, PF__RUNNING, "the old master keeps serving");
}
