/* support.h — helpers shared by the integration tests: start programs, read their logs, talk to them over loopback. */
#ifndef TS_SUPPORT_H
#define TS_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <criterion/criterion.h>

#include "prefork.h"

/*
 * Every helper that waits takes a timeout in milliseconds and returns at the
 * deadline with a failure: nothing here can hang a test. Calls return 0 (or
 * a count, a port, an fd) on success and a negative errno on failure, like
 * the library; -ETIMEDOUT means the deadline passed.
 *
 * Processes started here are recorded in a table private to the test
 * process. ts_cleanup (the .fini of every test, also run at exit) kills them
 * by pid, reaps them and removes their logs. The children also get
 * PR_SET_PDEATHSIG, so a test killed by Criterion's timeout takes its server
 * with it, and the test process is a child subreaper, so workers orphaned by
 * a dead master become its children and can be checked for.
 */

/* A started program. Owned by the table in support.c: never free it. */
struct ts_proc {
    pid_t pid;       /* 0 once reaped */
    int status;      /* wait status, valid once reaped */
    bool reaped;
    char name[64];   /* argv[0], for messages */
    char out[256];   /* log file: stdout (and stderr unless split) */
    char err[256];   /* stderr file when split, else "" */
};

/* The build directory: $PF_BUILD, or "build". */
const char *ts_build_dir(void);

/* The monotonic clock in milliseconds. */
int64_t ts_now_ms(void);

/* Start argv[0] (a path relative to the build directory, such as
 * "examples/echo", or an absolute path such as "/bin/sh") with stdout and stderr in one temporary log file. Asserts
 * on failure, so it always returns a running process. */
struct ts_proc *ts_start(const char *const *argv);
#define TS_START(...) ts_start((const char *const[]){__VA_ARGS__, NULL})

/* The processes started from now on may open descriptors below n only
 * (RLIMIT_NOFILE's soft limit: prlimit(2) can raise it again); 0: as the
 * test may. ts_cleanup resets it. */
void ts_limit_fds(int n);

/* Run argv to completion with stdout and stderr in separate files; returns
 * the wait status, or -ETIMEDOUT (the program is then killed). */
int ts_run(const char *const *argv, int timeout_ms, struct ts_proc **out);
#define TS_RUN(p, ms, ...) ts_run((const char *const[]){__VA_ARGS__, NULL}, ms, p)

/* Read a whole file into a new NUL-terminated buffer (the caller frees it),
 * or NULL. ts_log reads a process's combined log. */
char *ts_read_file(const char *path);
char *ts_log(const struct ts_proc *p);

/* Wait until the log has a line matching the extended regex re; copy that
 * line (without its newline) into line if not NULL. Gives up early, with
 * -ESRCH, if the program exited without printing it. */
int ts_wait_log(struct ts_proc *p, const char *re, int timeout_ms, char *line,
                size_t size);

/* Count the lines of the log that match re (0 when unreadable). */
int ts_log_count(const struct ts_proc *p, const char *re);

/* Wait for `started N workers (MODE) on 127.0.0.1:PORT` and return PORT. */
int ts_wait_port(struct ts_proc *p, int timeout_ms);

/* Wait for the process to exit and reap it; returns 0 with p->status set.
 * Returns at once if it was reaped already. */
int ts_wait_exit(struct ts_proc *p, int timeout_ms);

/* Send sig to a process by its pid (never 0 or negative: no groups). */
int ts_kill(pid_t pid, int sig);

/* Alive means it exists and is not a zombie. */
bool ts_pid_alive(pid_t pid);

/* Wait until none of the n pids is alive; returns 0 or -ETIMEDOUT. */
int ts_wait_pids_dead(const pid_t *pids, int n, int timeout_ms);

/* The live (non-zombie) children of ppid, found by scanning /proc; returns
 * the count (at most max stored). */
int ts_children(pid_t ppid, pid_t *out, int max);

/* The inodes of the sockets listening on 127.0.0.1:port (/proc/net/tcp):
 * up to max stored, the count returned; the one such inode, or 0 when
 * there are none or several; whether process pid has a descriptor for
 * socket inode. */
int ts_listener_inodes(int port, unsigned long *out, int max);
unsigned long ts_listener_inode(int port);
bool ts_holds_socket(pid_t pid, unsigned long inode);

/* Connect to 127.0.0.1:port or to a Unix socket path; the returned fd is
 * non-blocking and close-on-exec. Returns the fd or -errno
 * (-ECONNREFUSED, -ETIMEDOUT, ...). */
int ts_connect_tcp(int port, int timeout_ms);
int ts_connect_unix(const char *path, int timeout_ms);

/* Send all n bytes / receive exactly n bytes on a non-blocking fd. Returns 0,
 * -ETIMEDOUT, -ENODATA when the peer closed early, or another -errno. */
int ts_send_all(int fd, const void *buf, size_t n, int timeout_ms);
int ts_recv_exact(int fd, void *buf, size_t n, int timeout_ms);

/* The scoreboard of a running master: copies up to max used slots into out
 * and returns the count, or -errno. */
int ts_board(pid_t master, struct pf_slot_info *out, int max);

/* Wait until the scoreboard shows n ready workers (idle or busy); stores
 * their pids in pids (n entries) ordered by worker index. */
int ts_wait_ready(pid_t master, int n, pid_t *pids, int timeout_ms);

/* Make a temporary directory (name in buf), removed with its files by
 * ts_cleanup. Asserts on failure. */
void ts_temp_dir(char *buf, size_t size);

/* Fill buf with pseudo-random bytes derived from seed (xorshift). */
void ts_fill(void *buf, size_t n, uint64_t seed);

/* Print the tail of every log started in this test with cr_log_error, so a
 * failing test explains itself in CI output. Only before a failure: a
 * cr_log_error or cr_log_warn makes Criterion exit 1 even when every test
 * passes, so what a test tolerates is logged with cr_log_info. */
void ts_dump_logs(void);

/* Kill (by pid) and reap everything this test started, remove the logs. */
void ts_cleanup(void);

/* An assertion that dumps the logs before failing the test. */
#define ts_assert(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            ts_dump_logs();                                                    \
            cr_assert_fail(__VA_ARGS__);                                       \
        }                                                                      \
    } while (0)

#endif
