/* scoreboard.c — the shared-memory table of workers: created by the master, read by status tools. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/internal.h"

/* The board lives in a memfd rather than an anonymous mapping so that
 * another process (prefork status, a test) can find it through
 * /proc/MASTER/fd and map it read-only, with no socket or file to manage. */
#define BOARD_NAME "prefork-scoreboard"

static size_t board_size(uint32_t nslots)
{
    return sizeof(struct pf__board) + nslots * sizeof(struct pf__score);
}

int pf__board_create(struct pf__board **out, int *memfd)
{
    size_t size = board_size(PF__BOARD_SLOTS);
    int err, fd = memfd_create(BOARD_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
        goto fail;
    struct pf__board *b =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (b == MAP_FAILED)
        goto fail;
    b->magic = PF__BOARD_MAGIC;
    b->version = PF__BOARD_VERSION;
    b->nslots = PF__BOARD_SLOTS;
    b->master_pid = getpid();
    *out = b;
    *memfd = fd;
    return 0;
fail:
    err = -errno;
    close(fd);
    return err;
}

void pf__board_destroy(struct pf__board *b, int memfd)
{
    if (b)
        munmap(b, board_size(b->nslots));
    if (memfd >= 0)
        close(memfd);
}

void pf__score_reset(struct pf__score *s, int index, unsigned generation)
{
    PF__PUT(s->pid, 0);
    PF__PUT(s->state, PF_STATE_EMPTY);
    PF__PUT(s->index, (uint32_t)index);
    PF__PUT(s->generation, generation);
    PF__PUT(s->started_ms, 0);
    PF__PUT(s->heartbeat_ms, 0);
    PF__PUT(s->accepted, 0);
    PF__PUT(s->wakeups, 0);
    PF__PUT(s->requests, 0);
    PF__PUT(s->bytes, 0);
    PF__PUT(s->active, 0);
    for (int i = 0; i < 5; i++)
        PF__PUT(s->status[i], 0);
    PF__PUT(s->duration_us, 0);
    for (int i = 0; i < PF_DURATION_BUCKETS; i++)
        PF__PUT(s->hist[i], 0);
    PF__PUT(s->tls_full, 0);
    PF__PUT(s->tls_resumed, 0);
    PF__PUT(s->accepting, PF__ACCEPT_OFF);
    PF__PUT(s->activity_ms, 0);
    pf__score_set_activity(s, NULL);
}

/* The master's record of a worker, written right after its fork: the board
 * shows the worker from then on, not only once the worker has run its own
 * set-up (which writes the same pid). The state moves only from EMPTY, so a
 * worker already further along is never set back. */
void pf__score_forked(struct pf__score *s, pid_t pid)
{
    PF__PUT(s->pid, (int32_t)pid);
    uint32_t empty = PF_STATE_EMPTY;
    atomic_compare_exchange_strong(&s->state, &empty, (uint32_t)PF_STATE_STARTING);
}

/* A sequence lock: the writer makes the count odd while it copies, readers
 * retry until they see the same even count before and after their copy. */
void pf__score_set_activity(struct pf__score *s, const char *what)
{
    uint32_t seq = PF__GET(s->activity_seq);
    atomic_store_explicit(&s->activity_seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    size_t n = what ? strnlen(what, sizeof s->activity - 1) : 0;
    if (n)
        memcpy(s->activity, what, n);
    s->activity[n] = '\0';
    PF__PUT(s->activity_ms, n ? pf__mono_coarse_ms() : 0);
    atomic_store_explicit(&s->activity_seq, seq + 2, memory_order_release);
}

/* A writer killed in the middle leaves the count odd for ever, and a busy
 * one may keep a reader from a clean copy: then the reader reports nothing
 * rather than a torn mix of two strings. */
static void read_activity(const struct pf__score *s, char *out, size_t size)
{
    for (int tries = 0; tries < 100; tries++) {
        uint32_t a = atomic_load_explicit(&s->activity_seq, memory_order_acquire);
        if (a & 1)
            continue;
        memcpy(out, s->activity, size);
        atomic_thread_fence(memory_order_acquire);
        if (PF__GET(s->activity_seq) == a) {
            out[size - 1] = '\0';
            return;
        }
    }
    out[0] = '\0';
}

/* ---- the read side ---- */

struct pf_scoreboard {
    const struct pf__board *b;
    size_t size;
};

/* Find the master's memfd among its descriptors. */
static int open_board_fd(pid_t pid)
{
    char dir[64], path[320], target[128];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? -ESRCH : -errno;
    int fd = -ENOENT;
    struct dirent *e;
    while (fd == -ENOENT && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, "/memfd:" BOARD_NAME, strlen("/memfd:" BOARD_NAME)) == 0) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                fd = -errno;
        }
    }
    closedir(d);
    return fd;
}

int pf_scoreboard_open(pid_t pid, pf_scoreboard **out)
{
    int fd = open_board_fd(pid);
    if (fd < 0)
        return fd;
    struct stat st;
    int err = -ENOENT;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct pf__board))
        goto out;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        err = -errno;
        goto out;
    }
    const struct pf__board *b = p;
    if (b->magic != PF__BOARD_MAGIC || b->version != PF__BOARD_VERSION ||
        b->master_pid != pid || board_size(b->nslots) > (size_t)st.st_size) {
        munmap(p, (size_t)st.st_size);
        goto out;
    }
    pf_scoreboard *sb = malloc(sizeof *sb);
    if (!sb) {
        munmap(p, (size_t)st.st_size);
        err = -ENOMEM;
        goto out;
    }
    sb->b = b;
    sb->size = (size_t)st.st_size;
    *out = sb;
    err = 0;
out:
    close(fd);
    return err;
}

void pf_scoreboard_close(pf_scoreboard *sb)
{
    if (!sb)
        return;
    munmap((void *)sb->b, sb->size);
    free(sb);
}

static void copy_slot(const struct pf__score *s, struct pf_slot_info *o,
                      uint64_t now)
{
    uint64_t hb = PF__GET(s->heartbeat_ms);
    o->pid = PF__GET(s->pid);
    o->index = (int)PF__GET(s->index);
    o->generation = PF__GET(s->generation);
    o->state = (enum pf_state)PF__GET(s->state);
    o->started_ms = PF__GET(s->started_ms);
    o->heartbeat_ms = hb && now > hb ? now - hb : 0;
    o->accepted = PF__GET(s->accepted);
    o->wakeups = PF__GET(s->wakeups);
    o->requests = PF__GET(s->requests);
    o->bytes = PF__GET(s->bytes);
    o->active = PF__GET(s->active);
    for (int i = 0; i < 5; i++)
        o->status[i] = PF__GET(s->status[i]);
    o->duration_us = PF__GET(s->duration_us);
    for (int i = 0; i < PF_DURATION_BUCKETS; i++)
        o->hist[i] = PF__GET(s->hist[i]);
    o->tls_full = PF__GET(s->tls_full);
    o->tls_resumed = PF__GET(s->tls_resumed);
    uint64_t since = PF__GET(s->activity_ms);
    o->activity_ms = since && now > since ? now - since : 0;
    read_activity(s, o->activity, sizeof o->activity);
}

int pf_scoreboard_read(pf_scoreboard *sb, struct pf_slot_info *out, int max)
{
    uint64_t now = pf__mono_ms();
    int n = 0;
    for (uint32_t i = 0; i < sb->b->nslots && n < max; i++) {
        const struct pf__score *s = &sb->b->slot[i];
        if (PF__GET(s->state) != PF_STATE_EMPTY)
            copy_slot(s, &out[n++], now);
    }
    return n;
}

/* ---- the pool's figures ---- */

void pf__board_pool(const struct pf__board *b, struct pf_pool_info *out)
{
    memset(out, 0, sizeof *out);
    out->master = b->master_pid;
    out->mode = (enum pf_mode)PF__GET(b->mode);
    out->generation = PF__GET(b->generation);
    out->index_hi = (int)PF__GET(b->index_hi);
    out->started_ms = PF__GET(b->started_ms);
    out->stopping = PF__GET(b->stopping) != 0;
    for (int i = 0; i < PF_RESTART_CAUSES; i++)
        out->restarts[i] = PF__GET(b->restarts[i]);
    out->reloads = PF__GET(b->reloads);
    out->reloads_failed = PF__GET(b->reloads_failed);
    out->upgrades = PF__GET(b->upgrades);
}

/* Add what one set of counters holds (a slot, or an index's retired). */
#define ADD_COUNTERS(o, c)                                                                         \
    do {                                                                                           \
        (o)->accepted += PF__GET((c)->accepted);                                                   \
        (o)->requests += PF__GET((c)->requests);                                                   \
        (o)->bytes += PF__GET((c)->bytes);                                                         \
        for (int k_ = 0; k_ < 5; k_++)                                                             \
            (o)->status[k_] += PF__GET((c)->status[k_]);                                           \
        (o)->duration_us += PF__GET((c)->duration_us);                                             \
        for (int k_ = 0; k_ < PF_DURATION_BUCKETS; k_++)                                           \
            (o)->hist[k_] += PF__GET((c)->hist[k_]);                                               \
        (o)->tls_full += PF__GET((c)->tls_full);                                                   \
        (o)->tls_resumed += PF__GET((c)->tls_resumed);                                             \
    } while (0)

static void totals_once(const struct pf__board *b, int index, struct pf_worker_totals *out)
{
    memset(out, 0, sizeof *out);
    ADD_COUNTERS(out, &b->retired[index]);
    uint32_t used = PF__GET(b->used);
    for (uint32_t i = 0; i < used && i < b->nslots; i++) {
        const struct pf__score *s = &b->slot[i];
        if (PF__GET(s->state) == PF_STATE_EMPTY || PF__GET(s->index) != (uint32_t)index)
            continue;
        ADD_COUNTERS(out, s);
        out->active += PF__GET(s->active);
        out->live++;
    }
}

/* Retried while the master moves a slot into retired (retire_seq odd or
 * changed), so that a reader never counts a reaped worker twice, nor not
 * at all: the counters never seem to go back. */
bool pf__board_totals(const struct pf__board *b, int index, struct pf_worker_totals *out)
{
    memset(out, 0, sizeof *out);
    if (index < 0 || index >= (int)PF__GET(b->index_hi) || index >= PF_MAX_WORKERS)
        return false;
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t seq = atomic_load_explicit(&b->retire_seq, memory_order_acquire);
        if (seq & 1)
            continue;
        totals_once(b, index, out);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&b->retire_seq, memory_order_relaxed) == seq)
            break;
    }
    return true;
}

#define RETIRE(to, from) PF__PUT(to, PF__GET(to) + PF__GET(from))

void pf__board_retire(struct pf__board *b, struct pf__score *s)
{
    uint32_t index = PF__GET(s->index);
    if (index >= PF_MAX_WORKERS)
        return;
    struct pf__totals *t = &b->retired[index];
    atomic_fetch_add_explicit(&b->retire_seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    RETIRE(t->accepted, s->accepted);
    RETIRE(t->requests, s->requests);
    RETIRE(t->bytes, s->bytes);
    for (int k = 0; k < 5; k++)
        RETIRE(t->status[k], s->status[k]);
    RETIRE(t->duration_us, s->duration_us);
    for (int k = 0; k < PF_DURATION_BUCKETS; k++)
        RETIRE(t->hist[k], s->hist[k]);
    RETIRE(t->tls_full, s->tls_full);
    RETIRE(t->tls_resumed, s->tls_resumed);
    PF__PUT(s->state, PF_STATE_EMPTY); /* counted in retired from now on */
    atomic_fetch_add_explicit(&b->retire_seq, 1, memory_order_release);
}

void pf_scoreboard_pool(pf_scoreboard *sb, struct pf_pool_info *out)
{
    pf__board_pool(sb->b, out);
}

bool pf_scoreboard_totals(pf_scoreboard *sb, int index, struct pf_worker_totals *out)
{
    return pf__board_totals(sb->b, index, out);
}
