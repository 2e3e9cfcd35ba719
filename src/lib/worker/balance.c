/* balance.c — shared mode: whether a worker holds more than its share of the pool's connections. */
#include <stdint.h>

#include "lib/worker/worker.h"

/*
 * In shared mode the kernel hands a new connection to whichever worker
 * gets to it first, so the long-lived ones (keep-alive, downloads,
 * WebSockets) can pile up on one worker while another sits nearly empty,
 * and the crowded worker's clients wait on one CPU while the other has
 * time to spare. So a worker that holds more than 1.25 times the
 * connections of the least loaded other worker, plus PF__BALANCE_SLACK,
 * leaves new connections to the others for a while (accept.c). The slack
 * keeps small counts, and short connections, from ever tripping it. The
 * others may all be holding back too: they watch every arrival, and the
 * least loaded of them then accepts again.
 *
 * The counts come from the scoreboard, read at most once per millisecond
 * of the worker's loop clock, over the slots the master has used so far.
 */

struct reading {
    uint64_t fewest;   /* the least loaded other worker taking connections */
    uint64_t accepted; /* what all the others have accepted */
};

static struct reading scan(const struct pf__balance *b)
{
    struct reading r = {.fewest = UINT64_MAX};
    uint32_t used = PF__GET(b->board->used);
    for (uint32_t i = 0; i < used && i < b->board->nslots; i++) {
        const struct pf__score *s = &b->board->slot[i];
        if (s == b->self)
            continue;
        r.accepted += PF__GET(s->accepted);
        uint32_t state = PF__GET(s->state), how = PF__GET(s->accepting);
        if (how == PF__ACCEPT_OFF || (state != PF_STATE_IDLE && state != PF_STATE_BUSY))
            continue;
        uint64_t active = PF__GET(s->active);
        if (active < r.fewest)
            r.fewest = active;
    }
    return r;
}

static uint64_t look(struct pf__balance *b, uint64_t now_ms)
{
    struct reading r = scan(b);
    b->fewest = r.fewest;
    b->read_ms = now_ms;
    return r.accepted;
}

bool pf__balance_over(struct pf__balance *b, uint64_t active, uint64_t now_ms)
{
    if (active <= PF__BALANCE_SLACK)
        return false;
    if (b->read_ms != now_ms)
        look(b, now_ms);
    return b->fewest != UINT64_MAX &&
           active > b->fewest + b->fewest / PF__BALANCE_RATIO_DIV + PF__BALANCE_SLACK;
}

bool pf__balance_others_moved(struct pf__balance *b, uint64_t now_ms)
{
    uint64_t accepted = look(b, now_ms);
    bool moved = accepted != b->accepted;
    b->accepted = accepted;
    return moved;
}

void pf__balance_forget(struct pf__balance *b)
{
    b->read_ms = 0;
}
