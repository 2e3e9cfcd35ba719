/* test_timer_nomem.c — out of memory when a timer starts: an active timer still moves, a new one fails cleanly, and an HTTP connection without its timeout is closed, not left open for ever. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "conn_support.h"

/*
 * This program is linked with -Wl,--wrap=realloc (the Makefile does it for
 * every unit test named *_nomem): the library's calls to realloc come here,
 * and fail while `failing` is set. Only the objects linked statically are
 * wrapped, not libc's nor Criterion's own calls.
 */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool failing;
static unsigned failed;

void *__wrap_realloc(void *p, size_t n)
{
    if (failing) {
        failed++;
        return NULL;
    }
    return __real_realloc(p, n);
}

TestSuite(nomem, .init = th_config, .fini = th_fini, .timeout = 30);

static void fired(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)t;
    *(int *)ud += 1;
    pf_loop_stop(loop);
}

Test(nomem, an_active_timer_moves_without_allocating_and_a_new_one_fails_cleanly)
{
    pf_loop *loop;
    pf_timer t[17];
    int hits[17] = {0};
    cr_assert_eq(pf_loop_new(&loop), 0);
    for (int i = 0; i < 16; i++) { /* the heap's first size: full */
        pf_timer_init(&t[i], fired, &hits[i]);
        cr_assert_eq(pf_timer_start(loop, &t[i], 60000 + (uint64_t)i), 0);
    }
    pf_timer_init(&t[16], fired, &hits[16]);
    failing = true;
    int early = pf_timer_start(loop, &t[7], 0);    /* moved earlier */
    int late = pf_timer_start(loop, &t[3], 90000); /* moved later */
    int fresh = pf_timer_start(loop, &t[16], 0);   /* needs a bigger heap */
    failing = false;
    cr_expect_eq(early, 0);
    cr_expect_eq(late, 0);
    cr_expect_eq(fresh, -ENOMEM);
    cr_expect_not(pf_timer_active(&t[16]), "a start that failed leaves the timer inactive");
    cr_expect(pf_timer_active(&t[7]) && pf_timer_active(&t[3]));
    cr_assert_eq(pf_loop_run(loop), 0);
    cr_expect_eq(hits[7], 1, "the moved timer fires first");
    for (int i = 0; i < 17; i++)
        cr_expect(i == 7 || hits[i] == 0, "timer %d did not fire", i);
    pf_loop_free(loop);
}

static void hello(struct http_exchange *x, void *ud)
{
    (void)ud;
    http_res_status(x, 200, NULL);
    http_res_body(x, "hello", 5);
}

/* The connection's header timeout is its first timer on this loop: the
 * heap must grow for it, and cannot. Without the timer, a client that
 * sends nothing would hold the connection for ever; it is closed. */
Test(nomem, a_connection_whose_timer_cannot_be_armed_is_closed)
{
    int fds[2];
    th_start(hello, NULL, NULL);
    cr_assert_eq(pipe(fds), 0); /* grow the watcher table first: only the heap fails */
    cr_assert_eq(pf_loop_add(th.loop, fds[0], PF_EV_READ, (pf_io_fn *)(void (*)(void))abort, NULL), 0);
    pf_loop_del(th.loop, fds[0]);
    close(fds[0]);
    close(fds[1]);
    failing = true;
    th_connect();
    failing = false;
    cr_assert_gt(failed, 0, "the timer's start met the failure");
    cr_expect(th_eof(), "the server closed the connection");
}
