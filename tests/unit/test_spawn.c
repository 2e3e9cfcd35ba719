/* test_spawn.c — unit tests of the master's slot table on its own, with a policy of the test's: a failed start logs the error its step returned, and a death is reported through the ops. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/master/pool.h"

static pf_pool *pool;
static char said[4096]; /* the lines logged, one after another */
static int deaths, reaps;

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

/* ---- the test's policy ---- */

/* Fails as a step does whose last system call was not the one at fault:
 * errno says one thing, the return code another. */
static int prepare_fails(struct pf__slot *s, int out[2], const char **step)
{
    (void)s, (void)out;
    *step = "the test's step";
    errno = EINTR;
    return -EADDRINUSE;
}

static int prepare_ok(struct pf__slot *s, int out[2], const char **step)
{
    (void)s, (void)out, (void)step;
    return 0;
}

static void child_exits(struct pf__slot *s, int ctl, pid_t master, const int out[2])
{
    (void)s, (void)ctl, (void)master, (void)out;
    _exit(3);
}

static void forked(struct pf__slot *s, int worker_end, const int out[2])
{
    (void)s, (void)worker_end, (void)out;
}

static void slot_event(struct pf__slot *s) { (void)s; }

static int cleared_status = -1;
static void cleared(struct pf__slot *s, int status)
{
    cr_expect(s->pid > 0, "cleared before the slot forgets its pid");
    cleared_status = status;
}

static bool died(struct pf__slot *s, int status)
{
    (void)s;
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 3, "status %#x", status);
    deaths++;
    return true; /* handled: no respawn */
}

static void give_up(pf_pool *p)
{
    (void)p;
    cr_expect_fail("the slot table gave up");
}

static void reaped(pf_pool *p)
{
    reaps++;
    pf_loop_stop(p->loop);
}

static struct pf__spawn_ops ops = {
    .prepare = prepare_ok, .child = child_exits, .forked = forked, .cleared = cleared,
    .ready = slot_event, .recycle = slot_event, .died = died, .give_up = give_up,
    .reaped = reaped,
};

/* ---- set-up: a master's state, as master.c makes it, minus signals ---- */

static void cleanup(void)
{
    if (!pool)
        return;
    free(pool->slots);
    pf__board_destroy(pool->board, pool->boardfd);
    pool->board = NULL;
    pool->boardfd = -1;
    pf_loop_free(pool->loop);
    pool->loop = NULL;
    pf_pool_free(pool);
    pool = NULL;
    pf_log_set_sink(NULL, NULL);
}

TestSuite(spawn, .fini = cleanup, .timeout = 30);

static pf_pool *master_state(void)
{
    struct pf_config cfg;
    struct pf_service svc = {.on_conn = on_conn};
    pf_config_init(&cfg);
    cr_assert_eq(pf_pool_new(&pool, &cfg, &svc), 0);
    cr_assert_eq(pf_loop_new(&pool->loop), 0);
    cr_assert_eq(pf__board_create(&pool->board, &pool->boardfd), 0);
    pool->nslots = PF__BOARD_SLOTS;
    pool->slots = calloc((size_t)pool->nslots, sizeof *pool->slots);
    cr_assert_not_null(pool->slots);
    pool->ops = &ops;
    pf_log_set_sink(sink, NULL);
    return pool;
}

Test(spawn, a_failed_start_logs_the_error_its_step_returned_and_backs_off)
{
    pf_pool *p = master_state();
    ops.prepare = prepare_fails;
    struct pf__slot *s = pf__slot_find_empty(p);
    cr_assert_not_null(s);
    pf__spawn(s, 0, 1);
    cr_expect_not_null(strstr(said, "starting worker 0: the test's step: Address already in use"),
                       "logged:\n%s", said);
    cr_expect_null(strstr(said, strerror(EINTR)), "not the stale errno; logged:\n%s", said);
    cr_expect(s->waiting && pf_timer_active(&s->respawn), "a respawn is scheduled");
    cr_expect_eq(s->pid, 0);
    cr_expect_eq(p->running, 0);
}

Test(spawn, a_death_is_reported_through_the_ops)
{
    pf_pool *p = master_state();
    ops.prepare = prepare_ok;
    struct pf__slot *s = pf__slot_find_empty(p);
    pf__spawn(s, 0, 1);
    cr_assert_gt(s->pid, 0, "forked; logged:\n%s", said);
    cr_assert_eq(p->running, 1);
    cr_assert_eq(pf_loop_run(p->loop), 0); /* until reaped() stops it */
    cr_expect_eq(deaths, 1);
    cr_expect_eq(reaps, 1);
    cr_expect(WIFEXITED(cleared_status) && WEXITSTATUS(cleared_status) == 3,
              "cleared with the wait status: %#x", cleared_status);
    cr_expect_eq(s->pid, 0, "the slot is empty again");
    cr_expect_eq(p->running, 0);
    cr_expect_not(s->waiting, "handled by the policy: no respawn");
    cr_expect_eq(pf__slot_find_empty(p), s);
}
