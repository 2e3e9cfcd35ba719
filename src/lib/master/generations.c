/* generations.c — generations of workers: readiness, HUP rolling reload, TTIN/TTOU, recycling, hung workers. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "lib/master/pool.h"

#define WATCHDOG_MAX_TICK_MS 1000

/* ---- readiness ---- */

/* The first generation is all ready: from now on the pool serves. A pool
 * that cannot write its pidfile stops instead: whatever reads the file
 * (systemd's PIDFile=, an init script, prefork status --pidfile) would find
 * no pid or a stale one. After USR2 the old master then keeps serving. */
static void started(pf_pool *p)
{
    p->started = true;
    p->serving = p->generation;
    PF__PUT(p->board->generation, p->serving);
    if (p->cfg.pidfile) {
        int err = pf__pidfile_write(p->cfg.pidfile, getpid());
        if (err < 0) {
            pf_log(PF_LOG_ERROR, "writing pidfile %s: %s", p->cfg.pidfile, strerror(-err));
            p->result = err;
            pf__stop_graceful(p, "no pidfile");
            return;
        }
    }
    pf_log(PF_LOG_DEBUG, "all %d workers ready", p->workers);
    pf__notify("READY=1\nMAINPID=%d", (int)getpid());
    pf__upgrade_ready(p);
    pf__event(p, PF_EVENT_READY, NULL, 0);
}

static bool all_ready(const pf_pool *p)
{
    return pf__count(p, p->generation, true) >= p->workers;
}

/* ---- HUP: a rolling reload ---- */

static void retire_older(pf_pool *p, unsigned generation)
{
    for (int i = 0; i <= p->slot_hi; i++) {
        struct pf__slot *s = &p->slots[i];
        if (s->pool && s->generation < generation && !s->retiring && (s->pid || s->waiting)) {
            pf__retire(s);
            pf__count_restart(p, PF_RESTART_RELOAD);
        }
    }
}

/* Old generations drain within --graceful-timeout; beyond the cap on
 * generations alive at once, the oldest is killed rather than left to
 * pile up. */
static void enforce_cap(pf_pool *p)
{
    for (;;) {
        unsigned oldest = 0, alive = 0, seen[64];
        for (int i = 0; i <= p->slot_hi; i++) {
            const struct pf__slot *s = &p->slots[i];
            if (!s->pool || !s->pid || s->killed)
                continue;
            bool known = false;
            for (unsigned k = 0; k < alive; k++)
                known |= seen[k] == s->generation;
            if (!known && alive < 64)
                seen[alive++] = s->generation;
            if (!oldest || s->generation < oldest)
                oldest = s->generation;
        }
        if (alive <= p->cfg.max_generations)
            return;
        pf_log(PF_LOG_WARN, "%u generations alive (cap %u): killing generation %u", alive,
               p->cfg.max_generations, oldest);
        for (int i = 0; i <= p->slot_hi; i++) {
            struct pf__slot *s = &p->slots[i];
            if (s->pool && s->pid && s->generation == oldest) {
                pf__slot_signal(s, SIGKILL);
                s->killed = true;
            }
        }
    }
}

static void reload_done(pf_pool *p)
{
    pf_timer_stop(p->loop, &p->reload_timer);
    p->reloading = false;
    unsigned old = p->serving;
    p->serving = p->generation;
    PF__PUT(p->board->generation, p->serving);
    PF__COUNT(p, reloads);
    retire_older(p, p->generation);
    pf_log(PF_LOG_INFO, "generation %u ready (%d workers); generation %u drains", p->generation,
           p->workers, old);
    pf__notify("READY=1");
    enforce_cap(p);
    pf__event(p, PF_EVENT_RELOADED, NULL, 0);
    if (p->reload_pending) {
        p->reload_pending = false;
        pf__reload(p);
    }
}

/* The new generation did not come up: it goes, the serving one stays. */
static void reload_abort(pf_pool *p, const char *why)
{
    pf_timer_stop(p->loop, &p->reload_timer);
    for (int i = 0; i <= p->slot_hi; i++) {
        struct pf__slot *s = &p->slots[i];
        if (s->pool && s->generation == p->generation && !s->retiring)
            pf__retire(s);
    }
    pf_log(PF_LOG_ERROR, "reload failed: %s; generation %u keeps serving", why, p->serving);
    PF__COUNT(p, reloads_failed);
    p->generation = p->serving;
    p->reloading = p->reload_pending = false;
    pf__notify("READY=1");
}

static void on_reload_timeout(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    pf_pool *p = ud;
    char why[96];
    snprintf(why, sizeof why, "generation %u not ready after %u ms", p->generation,
             p->cfg.ready_timeout_ms);
    reload_abort(p, why);
}

void pf__reload(pf_pool *p)
{
    if (p->phase != PF__RUNNING)
        return;
    if (p->reloading || !p->started) {
        pf_log(PF_LOG_INFO, "SIGHUP: workers are still starting; the reload follows");
        p->reload_pending = true;
        return;
    }
    if (p->svc.on_master_reload) {
        char why[256] = "the service refused it";
        if (p->svc.on_master_reload(p->svc.ud, why, sizeof why) < 0) {
            pf_log(PF_LOG_ERROR, "SIGHUP: reload failed: %s; generation %u keeps serving", why,
                   p->serving);
            return;
        }
    }
    p->generation = ++p->gen_seq;
    p->reloading = true;
    pf__notify("RELOADING=1");
    pf_log(PF_LOG_INFO, "SIGHUP: reloading: starting generation %u (%d workers)", p->generation,
           p->workers);
    for (int i = 0; i < p->workers; i++) {
        struct pf__slot *s = pf__slot_find_empty(p);
        if (!s) {
            reload_abort(p, "no free slot in the scoreboard");
            return;
        }
        pf__spawn(s, i, p->generation);
    }
    pf_timer_init(&p->reload_timer, on_reload_timeout, p);
    int err = pf_timer_start(p->loop, &p->reload_timer, p->cfg.ready_timeout_ms);
    if (err < 0) { /* a generation that never came up would block reloads for ever */
        char why[96];
        snprintf(why, sizeof why, "starting its ready timeout: %s", strerror(-err));
        reload_abort(p, why);
    }
}

/* ---- events from the slots ---- */

static struct pf__slot *successor_of(pf_pool *p, const struct pf__slot *s)
{
    for (int i = 0; i <= p->slot_hi; i++)
        if (p->slots[i].pool && p->slots[i].succeeds == s)
            return &p->slots[i];
    return NULL;
}

void pf__on_ready(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    if (s->succeeds) {
        struct pf__slot *old = s->succeeds;
        pf_log(PF_LOG_INFO, "worker %d (pid %d) takes over from pid %d", s->index, (int)s->pid,
               (int)old->pid);
        pf__retire(old);
        s->succeeds = NULL; /* or a later use of the old slot would look recycled */
    }
    if (p->phase != PF__RUNNING || s->generation != p->generation || !all_ready(p))
        return;
    if (!p->started)
        started(p);
    else if (p->reloading)
        reload_done(p);
}

bool pf__on_death(struct pf__slot *s, int status)
{
    pf_pool *p = s->pool;
    (void)status;
    if (p->reloading && s->generation == p->generation && !s->ready) {
        char why[96];
        snprintf(why, sizeof why, "a worker of generation %u exited before it was ready",
                 s->generation);
        reload_abort(p, why);
        return true;
    }
    /* A worker being recycled that dies first: its successor is on the way. */
    struct pf__slot *next = successor_of(p, s);
    if (next) {
        next->succeeds = NULL;
        return true;
    }
    return false;
}

/* ---- TTIN / TTOU ---- */

void pf__resize(pf_pool *p, int delta)
{
    const char *sig = delta > 0 ? "SIGTTIN" : "SIGTTOU";
    int target = p->workers + delta;
    if (p->phase != PF__RUNNING)
        return;
    if (target < 1 || target > PF_MAX_WORKERS) {
        pf_log(PF_LOG_WARN, "%s: staying at %d worker%s", sig, p->workers,
               p->workers == 1 ? "" : "s");
        return;
    }
    p->workers = target;
    pf_log(PF_LOG_INFO, "%s: %d worker%s", sig, target, target == 1 ? "" : "s");
    pf__rp_steer(p);
    if (delta > 0) {
        struct pf__slot *s = pf__slot_find_empty(p);
        pf__rp_orphan(p, target - 1, false); /* the master polled it meanwhile */
        if (s)
            pf__spawn(s, target - 1, p->generation);
        return;
    }
    pf__rp_orphan(p, target, true); /* its queue goes on filling: see reuseport.c */
    for (int i = 0; i <= p->slot_hi; i++) {
        struct pf__slot *s = &p->slots[i];
        if (s->pool && s->generation == p->generation && s->index == target && !s->retiring)
            pf__retire(s);
    }
}

/* ---- recycling (--max-requests) ---- */

/* The replacement starts first; the old worker drains once it is ready,
 * so capacity never dips. */
void pf__recycle(struct pf__slot *s)
{
    pf_pool *p = s->pool;
    if (p->phase != PF__RUNNING || s->retiring || s->generation != p->generation ||
        successor_of(p, s))
        return;
    struct pf__slot *n = pf__slot_find_empty(p);
    if (!n)
        return;
    pf_log(PF_LOG_INFO, "worker %d (pid %d) served its max requests; starting its replacement",
           s->index, (int)s->pid);
    pf__count_restart(p, PF_RESTART_RECYCLE);
    pf__spawn(n, s->index, s->generation);
    n->succeeds = s;
}

/* ---- hung workers (--timeout) ---- */

static void report_hung(struct pf__slot *s, uint64_t age, uint64_t now)
{
    struct pf__score *sc = pf__score_of(s);
    char what[sizeof sc->activity];
    memcpy(what, sc->activity, sizeof what); /* a torn copy only misleads a log line */
    what[sizeof what - 1] = '\0';
    uint64_t since = PF__GET(sc->activity_ms);
    if (what[0])
        pf_log(PF_LOG_WARN,
               "worker %d (pid %d) is not responding: no heartbeat for %llu ms, busy with "
               "'%s' for %llu ms; SIGTERM, then SIGKILL in %u ms",
               s->index, (int)s->pid, (unsigned long long)age, what,
               (unsigned long long)(since && now > since ? now - since : 0),
               s->pool->cfg.hung_grace_ms);
    else
        pf_log(PF_LOG_WARN,
               "worker %d (pid %d) is not responding: no heartbeat for %llu ms; SIGTERM, "
               "then SIGKILL in %u ms",
               s->index, (int)s->pid, (unsigned long long)age, s->pool->cfg.hung_grace_ms);
}

/* A hung worker is replaced at once; it gets a soft signal (TERM: drain,
 * if it ever gets back to its loop), then KILL after the grace period. */
static void check_slot(struct pf__slot *s, uint64_t now)
{
    pf_pool *p = s->pool;
    uint64_t beat = PF__GET(pf__score_of(s)->heartbeat_ms);
    uint64_t age = beat && now > beat ? now - beat : 0;
    if (s->hung_at == 0 && s->ready && age > p->cfg.timeout_ms) {
        report_hung(s, age, now);
        pf__count_restart(p, PF_RESTART_TIMEOUT);
        s->hung_at = now;
        bool replace = !s->retiring && p->phase == PF__RUNNING;
        pf__retire(s);
        struct pf__slot *n = replace ? pf__slot_find_empty(p) : NULL;
        if (n)
            pf__spawn(n, s->index, s->generation);
    } else if (s->hung_at && s->hung_at != UINT64_MAX && now - s->hung_at >= p->cfg.hung_grace_ms) {
        pf_log(PF_LOG_WARN, "worker %d (pid %d) still not responding; killing it", s->index,
               (int)s->pid);
        pf__slot_signal(s, SIGKILL);
        s->hung_at = UINT64_MAX;
    }
}

static void watchdog_arm(pf_pool *p, unsigned ms)
{
    int err = pf_timer_start(p->loop, &p->watchdog, ms);
    if (err < 0)
        pf_log(PF_LOG_ERROR, "starting the watchdog timer: %s; hung workers are no longer "
               "detected", strerror(-err));
}

static void on_watchdog(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    pf_pool *p = ud;
    uint64_t now = pf__mono_ms();
    for (int i = 0; i <= p->slot_hi; i++)
        if (p->slots[i].pool && p->slots[i].pid)
            check_slot(&p->slots[i], now);
    unsigned tick = p->cfg.timeout_ms / 2;
    watchdog_arm(p, tick < WATCHDOG_MAX_TICK_MS ? (tick ? tick : 1) : WATCHDOG_MAX_TICK_MS);
}

void pf__watchdog_start(pf_pool *p)
{
    pf_timer_init(&p->watchdog, on_watchdog, p);
    pf_timer_init(&p->reload_timer, on_reload_timeout, p);
    if (p->cfg.timeout_ms)
        watchdog_arm(p, WATCHDOG_MAX_TICK_MS);
}
