/* test_scoreboard.c — tests of the shared-memory scoreboard: the board, its slots, and the read side. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/internal.h"

#include "child_support.h"

/* A check inside a forked child: Criterion's asserts belong to the test
 * process, so a child reports a failure through its exit status. */
#define CHILD_CHECK(cond)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "child: line %d: %s failed\n", __LINE__, #cond);  \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

/* The test's board and reader, released by the suite's fini even when a
 * failed assertion ends the test early. */
static struct pf__board *board;
static int board_fd = -1;
static pf_scoreboard *reader;
static pid_t child = -1;

static void cleanup(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
    pf_scoreboard_close(reader);
    reader = NULL;
    if (board) {
        pf__board_destroy(board, board_fd);
        board = NULL;
        board_fd = -1;
    }
}

TestSuite(scoreboard, .fini = cleanup);

static struct pf__board *make_board(void)
{
    cr_assert_eq(pf__board_create(&board, &board_fd), 0);
    cr_assert_not_null(board);
    cr_assert_geq(board_fd, 0);
    return board;
}

static pf_scoreboard *open_self(void)
{
    int r = pf_scoreboard_open(getpid(), &reader);
    cr_assert_eq(r, 0, "pf_scoreboard_open(self): %s", strerror(-r));
    cr_assert_not_null(reader);
    return reader;
}

static struct pf_slot_info out[PF__BOARD_SLOTS + 1];

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Slot k of the board filled with values derived from k. */
static void fill(struct pf__score *s, int k)
{
    char what[64];
    PF__PUT(s->pid, 10000 + k);
    PF__PUT(s->state, (uint32_t)(k % 2 ? PF_STATE_BUSY : PF_STATE_IDLE));
    PF__PUT(s->index, (uint32_t)k);
    PF__PUT(s->generation, (uint32_t)k + 1);
    PF__PUT(s->started_ms, 1764000000000ull + (uint64_t)k);
    PF__PUT(s->heartbeat_ms, 0);
    PF__PUT(s->accepted, 10ull * (uint64_t)k + 1);
    PF__PUT(s->wakeups, 20ull * (uint64_t)k + 2);
    PF__PUT(s->requests, 30ull * (uint64_t)k + 3);
    PF__PUT(s->bytes, (1ull << 40) + (uint64_t)k);
    PF__PUT(s->active, (uint64_t)k % 5);
    snprintf(what, sizeof what, "GET /slot/%d", k);
    pf__score_set_activity(s, what);
}

static void check_filled(const struct pf_slot_info *o, int k)
{
    char what[64];
    snprintf(what, sizeof what, "GET /slot/%d", k);
    cr_assert_eq(o->pid, 10000 + k);
    cr_assert_eq(o->state, k % 2 ? PF_STATE_BUSY : PF_STATE_IDLE);
    cr_assert_eq(o->index, k);
    cr_assert_eq(o->generation, (unsigned)k + 1);
    cr_assert_eq(o->started_ms, 1764000000000ull + (uint64_t)k);
    cr_assert_eq(o->heartbeat_ms, 0, "no heartbeat yet: age 0");
    cr_assert_eq(o->accepted, 10ull * (uint64_t)k + 1);
    cr_assert_eq(o->wakeups, 20ull * (uint64_t)k + 2);
    cr_assert_eq(o->requests, 30ull * (uint64_t)k + 3);
    cr_assert_eq(o->bytes, (1ull << 40) + (uint64_t)k);
    cr_assert_eq(o->active, (uint64_t)k % 5);
    cr_assert_str_eq(o->activity, what);
}

/* Wait (bounded) for one byte on fd. */
static void await_byte(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the child did not answer");
    char c;
    cr_assert_eq(read(fd, &c, 1), 1);
}

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* ---- the board ---- */

Test(scoreboard, create_gives_an_empty_sealed_cloexec_board, .timeout = 10)
{
    struct pf__board *b = make_board();
    cr_assert_eq(b->magic, PF__BOARD_MAGIC);
    cr_assert_eq(b->version, PF__BOARD_VERSION);
    cr_assert_eq(b->nslots, PF__BOARD_SLOTS);
    cr_assert_eq(b->master_pid, getpid());
    for (uint32_t i = 0; i < b->nslots; i++)
        cr_assert_eq(PF__GET(b->slot[i].state), PF_STATE_EMPTY);
    cr_assert(fcntl(board_fd, F_GETFD) & FD_CLOEXEC, "the memfd is not close-on-exec");
    int seals = fcntl(board_fd, F_GET_SEALS);
    cr_assert_geq(seals, 0);
    cr_assert_eq(seals & (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
                 F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL, "seals 0x%x", seals);
    cr_assert_lt(ftruncate(board_fd, 1), 0, "a sealed board shrank");
    int fd = board_fd;
    pf__board_destroy(board, board_fd);
    board = NULL;
    board_fd = -1;
    cr_assert_lt(fcntl(fd, F_GETFD), 0, "destroy did not close the memfd");
}

Test(scoreboard, empty_board_reads_no_slots, .timeout = 10)
{
    make_board();
    pf_scoreboard *sb = open_self();
    cr_assert_eq(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS), 0);
}

Test(scoreboard, reads_back_only_used_slots_in_order, .timeout = 10)
{
    struct pf__board *b = make_board();
    static const int used[] = {0, 7, 1023, PF__BOARD_SLOTS - 1};
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
        fill(&b->slot[used[i]], used[i]);
    pf_scoreboard *sb = open_self();
    int n = pf_scoreboard_read(sb, out, PF__BOARD_SLOTS + 1);
    cr_assert_eq(n, 4);
    for (int i = 0; i < n; i++)
        check_filled(&out[i], used[i]);
}

Test(scoreboard, read_stops_at_max, .timeout = 10)
{
    struct pf__board *b = make_board();
    for (int k = 0; k < 10; k++)
        fill(&b->slot[k], k);
    pf_scoreboard *sb = open_self();
    memset(out, 0x5a, sizeof out);
    cr_assert_eq(pf_scoreboard_read(sb, out, 3), 3);
    for (int i = 0; i < 3; i++)
        check_filled(&out[i], i);
    const unsigned char *past = (const unsigned char *)&out[3];
    for (size_t i = 0; i < sizeof out[3]; i++)
        cr_assert_eq(past[i], 0x5a, "read wrote past max");
    cr_assert_eq(pf_scoreboard_read(sb, out, 0), 0);
    cr_assert_eq(pf_scoreboard_read(sb, out, 10), 10);
}

Test(scoreboard, every_used_state_is_listed, .timeout = 10)
{
    struct pf__board *b = make_board();
    static const enum pf_state states[] = {PF_STATE_STARTING, PF_STATE_IDLE, PF_STATE_BUSY,
                                           PF_STATE_DRAINING};
    for (int k = 0; k < 4; k++) {
        fill(&b->slot[k], k);
        PF__PUT(b->slot[k].state, states[k]);
    }
    pf_scoreboard *sb = open_self();
    cr_assert_eq(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS), 4);
    for (int k = 0; k < 4; k++)
        cr_assert_eq(out[k].state, states[k]);
}

Test(scoreboard, reset_empties_a_slot, .timeout = 10)
{
    struct pf__board *b = make_board();
    fill(&b->slot[4], 4);
    PF__PUT(b->slot[4].heartbeat_ms, mono_ms());
    pf_scoreboard *sb = open_self();
    cr_assert_eq(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS), 1);
    pf__score_reset(&b->slot[4], 3, 7);
    cr_assert_eq(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS), 0);

    /* The master then marks it STARTING before it forks into it. */
    PF__PUT(b->slot[4].state, PF_STATE_STARTING);
    cr_assert_eq(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS), 1);
    cr_assert_eq(out[0].index, 3);
    cr_assert_eq(out[0].generation, 7u);
    cr_assert_eq(out[0].pid, 0);
    cr_assert_eq(out[0].started_ms, 0);
    cr_assert_eq(out[0].heartbeat_ms, 0);
    cr_assert_eq(out[0].accepted + out[0].wakeups + out[0].requests + out[0].bytes +
                     out[0].active,
                 0);
    cr_assert_str_eq(out[0].activity, "");
}

/* ---- activity ---- */

static const char *activity_after(struct pf__score *s, const char *what)
{
    pf__score_set_activity(s, what);
    cr_assert_eq(PF__GET(s->activity_seq) % 2, 0, "the sequence is left odd");
    cr_assert_eq(pf_scoreboard_read(reader, out, PF__BOARD_SLOTS), 1);
    return out[0].activity;
}

Test(scoreboard, activity_strings_and_truncation, .timeout = 10)
{
    struct pf__board *b = make_board();
    struct pf__score *s = &b->slot[2];
    fill(s, 2);
    open_self();
    char s127[128], s128[129], s300[301];
    memset(s127, 'a', 127);
    s127[127] = '\0';
    memset(s128, 'b', 128);
    s128[128] = '\0';
    for (int i = 0; i < 300; i++)
        s300[i] = (char)('0' + i % 10);
    s300[300] = '\0';

    cr_assert_str_eq(activity_after(s, "GET /index.html HTTP/1.1"), "GET /index.html HTTP/1.1");
    cr_assert_str_eq(activity_after(s, NULL), "", "NULL clears it");
    cr_assert_str_eq(activity_after(s, ""), "");
    cr_assert_str_eq(activity_after(s, s127), s127, "127 bytes fit");
    const char *a = activity_after(s, s128);
    cr_assert_eq(strlen(a), 127);
    cr_assert_eq(strncmp(a, s128, 127), 0);
    a = activity_after(s, s300);
    cr_assert_eq(strlen(a), 127);
    cr_assert_eq(strncmp(a, s300, 127), 0);
    cr_assert_str_eq(activity_after(s, "x"), "x", "a short string after a long one");
    cr_assert_eq(s->activity[127], '\0');
}

/* A worker killed in the middle of pf__score_set_activity leaves the
 * sequence odd until the master resets its slot. A reader must then still
 * return a string that came from the slot (or an empty one), never the bytes
 * its caller's buffer happened to hold. */
Test(scoreboard, activity_of_a_writer_that_died_mid_update, .timeout = 10)
{
    struct pf__board *b = make_board();
    struct pf__score *s = &b->slot[0];
    fill(s, 0);
    PF__PUT(s->activity_seq, PF__GET(s->activity_seq) + 1);
    open_self();
    memset(out, 0xaa, sizeof out);
    cr_assert_eq(pf_scoreboard_read(reader, out, PF__BOARD_SLOTS), 1);
    cr_assert_lt(strnlen(out[0].activity, sizeof out[0].activity), sizeof out[0].activity,
                 "the activity is not terminated");
    cr_assert_null(memchr(out[0].activity, 0xaa, strlen(out[0].activity)),
                   "the activity holds the caller's stale bytes, not the slot's");
    cr_assert(strcmp(out[0].activity, "") == 0 || strcmp(out[0].activity, "GET /slot/0") == 0,
              "[%.20s...]", out[0].activity);
}

/* ---- heartbeat ---- */

Test(scoreboard, heartbeat_age, .timeout = 10)
{
    struct pf__board *b = make_board();
    fill(&b->slot[0], 0);
    fill(&b->slot[1], 1);
    fill(&b->slot[2], 2);
    uint64_t now = mono_ms();
    PF__PUT(b->slot[0].heartbeat_ms, now - 1500);
    PF__PUT(b->slot[1].heartbeat_ms, 0);          /* never beat */
    PF__PUT(b->slot[2].heartbeat_ms, now + 60000); /* not before now */
    pf_scoreboard *sb = open_self();
    cr_assert_eq(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS), 3);
    uint64_t elapsed = mono_ms() - now;
    cr_assert_geq(out[0].heartbeat_ms, 1500);
    cr_assert_leq(out[0].heartbeat_ms, 1500 + elapsed + 1);
    cr_assert_eq(out[1].heartbeat_ms, 0);
    cr_assert_eq(out[2].heartbeat_ms, 0);
}

/* ---- opening ---- */

Test(scoreboard, open_of_a_process_without_a_board_is_enoent, .timeout = 10)
{
    child = tu_fork_child();
    if (child == 0) {
        for (;;)
            pause();
    }
    pf_scoreboard *sb = NULL;
    cr_assert_eq(pf_scoreboard_open(child, &sb), -ENOENT);
    cr_assert_null(sb);
}

/* A child inherits the master's memfd, but the board names its master: the
 * child is not a prefork master. */
Test(scoreboard, open_of_a_child_holding_the_board_is_enoent, .timeout = 10)
{
    make_board();
    child = tu_fork_child();
    if (child == 0) {
        for (;;)
            pause();
    }
    pf_scoreboard *sb = NULL;
    cr_assert_eq(pf_scoreboard_open(child, &sb), -ENOENT);
    cr_assert_null(sb);
}

Test(scoreboard, open_of_a_missing_pid_is_esrch, .timeout = 10)
{
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    cr_assert_not_null(f);
    long pid_max = 0;
    cr_assert_eq(fscanf(f, "%ld", &pid_max), 1);
    fclose(f);
    pf_scoreboard *sb = NULL;
    cr_assert_eq(pf_scoreboard_open((pid_t)pid_max, &sb), -ESRCH); /* pids are below it */
    cr_assert_lt(pf_scoreboard_open(0, &sb), 0);
    cr_assert_lt(pf_scoreboard_open(-1, &sb), 0);
    cr_assert_null(sb);
}

Test(scoreboard, open_and_close_leak_no_fds, .timeout = 10)
{
    make_board();
    int before = fd_count();
    for (int i = 0; i < 50; i++) {
        pf_scoreboard *sb = NULL;
        cr_assert_eq(pf_scoreboard_open(getpid(), &sb), 0);
        pf_scoreboard_close(sb);
    }
    cr_assert_eq(fd_count(), before, "pf_scoreboard_open leaks descriptors");
    pf_scoreboard_close(NULL);

    child = tu_fork_child();
    if (child == 0) {
        for (;;)
            pause();
    }
    before = fd_count();
    for (int i = 0; i < 50; i++) {
        pf_scoreboard *sb = NULL;
        cr_assert_eq(pf_scoreboard_open(child, &sb), -ENOENT);
    }
    cr_assert_eq(fd_count(), before, "a failed open leaks descriptors");
}

/* ---- across processes ---- */

Test(scoreboard, a_child_writing_its_slot_is_seen_by_the_parent, .timeout = 10)
{
    struct pf__board *b = make_board();
    pf__score_reset(&b->slot[5], 5, 1);
    PF__PUT(b->slot[5].state, PF_STATE_STARTING);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    child = tu_fork_child();
    if (child == 0) {
        struct pf__score *s = &b->slot[5];
        PF__PUT(s->pid, getpid());
        PF__PUT(s->started_ms, 1764000000123ull);
        PF__PUT(s->heartbeat_ms, mono_ms());
        PF__ADD(s->accepted, 3);
        PF__ADD(s->requests, 7);
        PF__ADD(s->bytes, 4096);
        PF__PUT(s->active, 1);
        pf__score_set_activity(s, "GET /from-the-child");
        PF__PUT(s->state, PF_STATE_BUSY);
        CHILD_CHECK(write(p[1], "w", 1) == 1);
        for (;;)
            pause();
    }
    close(p[1]);
    await_byte(p[0]);
    close(p[0]);
    pf_scoreboard *sb = open_self();
    cr_assert_eq(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS), 1);
    cr_assert_eq(out[0].pid, child);
    cr_assert_eq(out[0].index, 5);
    cr_assert_eq(out[0].generation, 1u);
    cr_assert_eq(out[0].state, PF_STATE_BUSY);
    cr_assert_eq(out[0].started_ms, 1764000000123ull);
    cr_assert_lt(out[0].heartbeat_ms, 5000);
    cr_assert_eq(out[0].accepted, 3);
    cr_assert_eq(out[0].requests, 7);
    cr_assert_eq(out[0].bytes, 4096);
    cr_assert_eq(out[0].active, 1);
    cr_assert_str_eq(out[0].activity, "GET /from-the-child");
}

/* The status tool's view: another process opens the master's board. */
Test(scoreboard, another_process_reads_the_masters_board, .timeout = 10)
{
    struct pf__board *b = make_board();
    fill(&b->slot[0], 0);
    fill(&b->slot[9], 9);
    pid_t master = getpid();
    pid_t pid = tu_fork_child();
    if (pid == 0) {
        pf_scoreboard *sb = NULL;
        CHILD_CHECK(pf_scoreboard_open(master, &sb) == 0);
        CHILD_CHECK(pf_scoreboard_read(sb, out, PF__BOARD_SLOTS) == 2);
        CHILD_CHECK(out[0].pid == 10000 && out[1].pid == 10009);
        CHILD_CHECK(strcmp(out[1].activity, "GET /slot/9") == 0);
        pf_scoreboard_close(sb);
        _exit(0);
    }
    tu_wait_ok(pid);
}

/* A writer updating its activity as fast as it can while the parent reads
 * for a second: every read is one of the strings written (or empty, a reader
 * may give up), never a mix of two. The two processes race only while the
 * scheduler runs them on different cores at once, hence the long run. */
Test(scoreboard, concurrent_activity_reads_are_not_torn, .timeout = 10)
{
    struct pf__board *b = make_board();
    struct pf__score *s = &b->slot[0];
    fill(s, 0);
    static char one[128], two[128];
    memset(one, 'A', 120);
    memset(two, 'B', 60);
    pf__score_set_activity(s, one);
    child = tu_fork_child();
    if (child == 0) {
        for (unsigned i = 0;; i++)
            pf__score_set_activity(s, i % 2 ? one : two);
    }
    pf_scoreboard *sb = open_self();
    long reads = 0, torn = 0, empty = 0;
    char example[128] = "";
    for (uint64_t end = mono_ms() + 1000; mono_ms() < end;) {
        for (int i = 0; i < 1000; i++, reads++) {
            memset(out, 0, sizeof out[0]); /* no earlier read's string to fall back on */
            cr_assert_eq(pf_scoreboard_read(sb, out, 1), 1);
            const char *a = out[0].activity;
            if (a[0] == '\0')
                empty++;
            else if (strcmp(a, one) != 0 && strcmp(a, two) != 0 && torn++ == 0)
                snprintf(example, sizeof example, "%s", a);
        }
    }
    cr_assert_eq(torn, 0, "%ld of %ld reads torn (%ld empty), e.g. [%s]", torn, reads, empty,
                 example);
}
