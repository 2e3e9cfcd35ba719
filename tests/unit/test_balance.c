/* test_balance.c — tests of shared mode's balance rule: when a worker holds more than its share of the connections. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lib/worker/worker.h"

/* A board of 8 slots in plain memory: balance.c only reads it. */
#define NSLOTS 8
static struct pf__board *board;

static void cleanup(void)
{
    free(board);
    board = NULL;
}

TestSuite(balance, .fini = cleanup);

static struct pf__board *make_board(uint32_t used)
{
    board = aligned_alloc(64, sizeof *board + NSLOTS * sizeof(struct pf__score));
    cr_assert_not_null(board);
    memset(board, 0, sizeof *board + NSLOTS * sizeof(struct pf__score));
    board->nslots = NSLOTS;
    PF__PUT(board->used, used);
    return board;
}

/* Slot i: a ready worker polling the listeners, holding `active`. */
static void worker(int i, uint64_t active)
{
    PF__PUT(board->slot[i].state, active ? PF_STATE_BUSY : PF_STATE_IDLE);
    PF__PUT(board->slot[i].accepting, PF__ACCEPTING);
    PF__PUT(board->slot[i].active, active);
}

static struct pf__balance self(int i)
{
    return (struct pf__balance){.board = board, .self = &board->slot[i]};
}

Test(balance, over_its_share_past_a_quarter_more_plus_four_of_the_least_loaded)
{
    make_board(3);
    worker(0, 0);
    worker(1, 20);
    worker(2, 9);
    struct pf__balance b = self(0);
    /* The least loaded other worker holds 9: the bound is 9 + 9/4 + 4 = 15. */
    cr_assert_not(pf__balance_over(&b, 15, 1));
    cr_assert(pf__balance_over(&b, 16, 1));
    cr_assert_eq(b.fewest, 9u);
}

Test(balance, small_counts_never_trip_it)
{
    make_board(2);
    worker(0, 0);
    worker(1, 0);
    struct pf__balance b = self(0);
    cr_assert_not(pf__balance_over(&b, PF__BALANCE_SLACK, 1));
    cr_assert(pf__balance_over(&b, PF__BALANCE_SLACK + 1, 2));
}

Test(balance, alone_or_with_no_other_accepting_worker_it_is_never_over)
{
    make_board(4);
    worker(0, 500);
    struct pf__balance b = self(0);
    cr_assert_not(pf__balance_over(&b, 500, 1), "no other worker");
    worker(1, 0);
    PF__PUT(board->slot[1].accepting, PF__ACCEPT_OFF); /* at its cap, or paused */
    worker(2, 0);
    PF__PUT(board->slot[2].state, PF_STATE_DRAINING);
    worker(3, 0);
    PF__PUT(board->slot[3].state, PF_STATE_STARTING);
    cr_assert_not(pf__balance_over(&b, 500, 2), "none of the others takes connections");
}

/* A worker holding back still takes connections (at its next look), so it
 * counts as the least loaded; one that takes none does not. */
Test(balance, a_worker_holding_back_counts_one_taking_none_does_not)
{
    make_board(3);
    worker(0, 0);
    worker(1, 3);
    PF__PUT(board->slot[1].accepting, PF__ACCEPT_HELD);
    worker(2, 40);
    struct pf__balance b = self(0);
    cr_assert(pf__balance_over(&b, 9, 1), "3 held by a worker holding back: 9 is over");
    cr_assert_eq(b.fewest, 3u);
    PF__PUT(board->slot[1].accepting, PF__ACCEPT_OFF);
    cr_assert_not(pf__balance_over(&b, 9, 2), "the next least loaded holds 40");
}

Test(balance, only_the_slots_in_use_are_read)
{
    make_board(2);
    worker(0, 30);
    worker(1, 30);
    worker(5, 0); /* beyond `used`: not read */
    struct pf__balance b = self(0);
    cr_assert_not(pf__balance_over(&b, 30, 1));
    PF__PUT(board->used, 6);
    cr_assert_not(pf__balance_over(&b, 30, 1), "the reading is kept for the same millisecond");
    cr_assert(pf__balance_over(&b, 30, 2), "a new millisecond reads slot 5 too");
}

Test(balance, others_moved_tells_whether_the_others_accepted_anything)
{
    make_board(3);
    worker(0, 10);
    worker(1, 2);
    worker(2, 2);
    struct pf__balance b = self(0);
    pf__balance_others_moved(&b, 1); /* the first look */
    cr_assert_not(pf__balance_others_moved(&b, 2));
    PF__ADD(board->slot[0].accepted, 5); /* its own accepts do not count */
    cr_assert_not(pf__balance_others_moved(&b, 3));
    PF__ADD(board->slot[2].accepted, 1);
    cr_assert(pf__balance_others_moved(&b, 4));
    cr_assert_not(pf__balance_others_moved(&b, 5));
    PF__PUT(board->slot[1].active, 0);
    pf__balance_others_moved(&b, 5); /* reads the board afresh, in the same ms too */
    cr_assert_eq(b.fewest, 0u);
}
