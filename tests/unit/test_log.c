/* test_log.c — tests of the error log: sinks, level filtering, the default line format and pf_log_open. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/internal.h"

/* ---- helpers ---- */

/* A private directory per test, removed (best effort) by the suite's fini. */
static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/pf-test-log-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    if (!dir[0])
        return;
    DIR *d = opendir(dir);
    if (d) {
        char path[320];
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    dir[0] = '\0';
}

TestSuite(log, .init = make_dir, .fini = remove_dir);

static char *path_in_dir(const char *name)
{
    static char path[2][160];
    static int k;
    char *p = path[k++ & 1];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

/* The whole file, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path, size_t *len)
{
    static char buf[4 << 20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        cr_assert_geq(r, 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static bool matches(const char *pattern, const char *s)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0, "bad pattern %s", pattern);
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

#define STAMP "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

/* A default-sink log file: pf_log_open on a fresh path in the test's dir. */
static const char *log_to_file(const char *name)
{
    const char *p = path_in_dir(name);
    pf_log_set_sink(NULL, NULL);
    cr_assert_eq(pf_log_open(p), 0);
    return p;
}

/* The single line of a file, without its newline. */
static const char *only_line(const char *path)
{
    size_t n;
    const char *buf = slurp(path, &n);
    cr_assert_gt(n, 0, "nothing was logged");
    cr_assert_eq(buf[n - 1], '\n', "the line does not end with a newline");
    cr_assert_eq(count_char(buf, '\n'), 1, "more than one line: [%s]", buf);
    static char line[1 << 16];
    cr_assert_lt(n, sizeof line);
    memcpy(line, buf, n - 1);
    line[n - 1] = '\0';
    return line;
}

/* A sink that keeps what it is given. */
#define MAXREC 16

struct rec {
    int n;
    enum pf_log_level level[MAXREC];
    char source[MAXREC][80];
    char msg[MAXREC][4096];
    void *ud;
    int clobber_errno;
};

static void keep(void *ud, enum pf_log_level level, const char *source, const char *msg)
{
    struct rec *r = ud;
    r->ud = ud;
    cr_assert_lt(r->n, MAXREC);
    r->level[r->n] = level;
    snprintf(r->source[r->n], sizeof r->source[0], "%s", source);
    snprintf(r->msg[r->n], sizeof r->msg[0], "%s", msg);
    r->n++;
    if (r->clobber_errno)
        errno = r->clobber_errno;
}

static void log_all_levels(void)
{
    pf_log(PF_LOG_ERROR, "e%d", 1);
    pf_log(PF_LOG_WARN, "w%d", 2);
    pf_log(PF_LOG_INFO, "i%d", 3);
    pf_log(PF_LOG_DEBUG, "d%d", 4);
}

/* ---- with a sink ---- */

Test(log, sink_gets_level_source_and_message, .timeout = 10)
{
    static struct rec r;
    pf_log_set_sink(keep, &r);
    pf_log(PF_LOG_INFO, "hello %s %d", "world", 42);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.ud, &r);
    cr_assert_eq(r.level[0], PF_LOG_INFO);
    cr_assert_str_eq(r.source[0], "master");
    cr_assert_str_eq(r.msg[0], "hello world 42", "a sink gets the message without a newline");
}

Test(log, default_level_is_info, .timeout = 10)
{
    static struct rec r;
    pf_log_set_sink(keep, &r);
    log_all_levels();
    cr_assert_eq(r.n, 3);
    cr_assert_eq(r.level[0], PF_LOG_ERROR);
    cr_assert_str_eq(r.msg[0], "e1");
    cr_assert_eq(r.level[1], PF_LOG_WARN);
    cr_assert_str_eq(r.msg[1], "w2");
    cr_assert_eq(r.level[2], PF_LOG_INFO);
    cr_assert_str_eq(r.msg[2], "i3");
}

Test(log, level_filtering, .timeout = 10)
{
    static struct rec r;
    pf_log_set_sink(keep, &r);
    static const struct {
        enum pf_log_level max;
        int want;
    } cases[] = {{PF_LOG_ERROR, 1}, {PF_LOG_WARN, 2}, {PF_LOG_INFO, 3}, {PF_LOG_DEBUG, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r.n = 0;
        pf_log_set_level(cases[i].max);
        log_all_levels();
        cr_assert_eq(r.n, cases[i].want, "max %d: %d messages", cases[i].max, r.n);
        for (int k = 0; k < r.n; k++)
            cr_assert_eq(r.level[k], (enum pf_log_level)k);
    }
}

static void via_vlog(enum pf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void via_vlog(enum pf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pf_vlog(level, fmt, ap);
    va_end(ap);
}

Test(log, vlog_formats_like_log, .timeout = 10)
{
    static struct rec r;
    pf_log_set_sink(keep, &r);
    via_vlog(PF_LOG_WARN, "%s=%05d", "x", 7);
    via_vlog(PF_LOG_DEBUG, "dropped");
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.level[0], PF_LOG_WARN);
    cr_assert_str_eq(r.msg[0], "x=00007");
}

Test(log, source_tag_follows_set_source, .timeout = 10)
{
    static struct rec r;
    pf_log_set_sink(keep, &r);
    pf__log_set_source("worker %d (pid %d)", 2, 4711);
    pf_log(PF_LOG_INFO, "hi");
    cr_assert_str_eq(r.source[0], "worker 2 (pid 4711)");

    /* A source longer than the tag's room is cut, not overflowed. */
    char longsrc[200];
    memset(longsrc, 's', sizeof longsrc - 1);
    longsrc[sizeof longsrc - 1] = '\0';
    pf__log_set_source("%s", longsrc);
    pf_log(PF_LOG_INFO, "hi");
    cr_assert_gt(strlen(r.source[1]), 0);
    cr_assert_lt(strlen(r.source[1]), 80);

    const char *p = log_to_file("source.log");
    pf__log_set_source("worker %d (pid %d)", 2, 4711);
    pf_log(PF_LOG_INFO, "hello");
    const char *line = only_line(p);
    cr_assert(matches(STAMP "worker 2 \\(pid 4711\\)  info  hello$", line), "[%s]", line);
}

Test(log, null_sink_restores_the_default, .timeout = 10)
{
    static struct rec r;
    const char *p = log_to_file("restore.log");
    pf_log_set_sink(keep, &r);
    pf_log(PF_LOG_INFO, "to the sink");
    pf_log_set_sink(NULL, NULL);
    pf_log(PF_LOG_INFO, "to the file");
    cr_assert_eq(r.n, 1);
    const char *line = only_line(p);
    cr_assert(matches(STAMP "master  info  to the file$", line), "[%s]", line);
}

/* ---- the default sink ---- */

Test(log, default_line_format, .timeout = 10)
{
    const char *p = log_to_file("format.log");
    pf_log(PF_LOG_INFO, "hello");
    const char *line = only_line(p);
    cr_assert(matches(STAMP "master  info  hello$", line), "[%s]", line);
}

Test(log, default_line_format_for_every_level, .timeout = 10)
{
    const char *p = log_to_file("levels.log");
    pf_log_set_level(PF_LOG_DEBUG);
    pf_log(PF_LOG_ERROR, "m");
    pf_log(PF_LOG_WARN, "m");
    pf_log(PF_LOG_INFO, "m");
    pf_log(PF_LOG_DEBUG, "m");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", slurp(p, NULL));
    static const char *const want[] = {"master  error m$", "master  warn  m$",
                                       "master  info  m$", "master  debug m$"};
    char *save = NULL, *line = strtok_r(buf, "\n", &save);
    for (int i = 0; i < 4; i++, line = strtok_r(NULL, "\n", &save)) {
        cr_assert_not_null(line, "line %d missing", i);
        char pattern[128];
        snprintf(pattern, sizeof pattern, STAMP "%s", want[i]);
        cr_assert(matches(pattern, line), "line %d: [%s]", i, line);
    }
    cr_assert_null(line);
}

/* The stamp is the current time in UTC, to the millisecond. */
Test(log, timestamp_is_now_in_utc, .timeout = 10)
{
    const char *p = log_to_file("time.log");
    /* time(2) may read a coarser clock than the log's: use the same one. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t before = ts.tv_sec;
    pf_log(PF_LOG_INFO, "now");
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t after = ts.tv_sec;
    const char *line = only_line(p);
    struct tm tm = {0};
    const char *rest = strptime(line, "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert_not_null(rest, "[%s]", line);
    time_t stamped = timegm(&tm);
    cr_assert(stamped >= before && stamped <= after, "stamp %lld, now %lld..%lld",
              (long long)stamped, (long long)before, (long long)after);
}

Test(log, control_characters_are_scrubbed, .timeout = 10)
{
    const char *p = log_to_file("scrub.log");
    pf_log(PF_LOG_INFO, "a\tb\rc\nd\x1b[31me\x7f|\x01\x1f|caf\xc3\xa9");
    const char *line = only_line(p);
    cr_assert(matches(STAMP "master  info  ", line), "[%s]", line);
    const char *msg = strstr(line, "info  ") + strlen("info  ");
    cr_assert_str_eq(msg, "a?b?c?d?[31me?|??|caf\xc3\xa9", "[%s]", msg);
}

Test(log, a_forged_line_stays_one_line, .timeout = 10)
{
    const char *p = log_to_file("forge.log");
    pf_log(PF_LOG_INFO, "GET /%s", "x\n2026-11-25T16:30:00.123Z master  error forged");
    const char *line = only_line(p);
    cr_assert_not_null(strstr(line, "x?2026"), "[%s]", line);
}

Test(log, a_very_long_message_is_cut_but_ends_the_line, .timeout = 10)
{
    const char *p = log_to_file("long.log");
    static char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pf_log(PF_LOG_INFO, "%s", big);
    pf_log(PF_LOG_INFO, "after");
    size_t n;
    const char *buf = slurp(p, &n);
    cr_assert_eq(count_char(buf, '\n'), 2, "two messages, two lines");
    const char *nl = strchr(buf, '\n');
    size_t first = (size_t)(nl - buf);
    cr_assert_lt(first, sizeof big, "the line was not cut");
    cr_assert_gt(first, 1000, "the line was cut too short (%zu bytes)", first);
    char *line = strndup(buf, first);
    cr_assert(matches(STAMP "master  info  x+$", line), "the cut line is malformed");
    free(line);
    cr_assert(matches(STAMP "master  info  after\n$", nl + 1), "[%s]", nl + 1);
}

/* ---- pf_log_open ---- */

Test(log, open_failure_keeps_the_previous_destination, .timeout = 10)
{
    const char *p = log_to_file("keep.log");
    pf_log(PF_LOG_INFO, "one");
    cr_assert_eq(pf_log_open("/nonexistent-pf-dir/x.log"), -ENOENT);
    cr_assert_eq(pf_log_open(dir), -EISDIR);
    char notdir[200];
    snprintf(notdir, sizeof notdir, "%s/x.log", p); /* under a regular file */
    cr_assert_eq(pf_log_open(notdir), -ENOTDIR);
    pf_log(PF_LOG_INFO, "two");
    size_t n;
    const char *buf = slurp(p, &n);
    cr_assert_eq(count_char(buf, '\n'), 2, "[%s]", buf);
    cr_assert_not_null(strstr(buf, "master  info  one\n"));
    cr_assert_not_null(strstr(buf, "master  info  two\n"));
}

Test(log, open_appends_and_creates_0644, .timeout = 10)
{
    umask(0);
    const char *old = path_in_dir("old.log");
    int fd = open(old, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "old line\n", 9), 9);
    close(fd);
    pf_log_set_sink(NULL, NULL);
    cr_assert_eq(pf_log_open(old), 0);
    pf_log(PF_LOG_INFO, "new line");
    const char *buf = slurp(old, NULL);
    cr_assert_eq(strncmp(buf, "old line\n", 9), 0, "the file was truncated: [%s]", buf);
    cr_assert(matches(STAMP "master  info  new line\n$", buf + 9), "[%s]", buf + 9);

    const char *fresh = log_to_file("fresh.log");
    struct stat st;
    cr_assert_eq(stat(fresh, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0644, "mode %o", st.st_mode & 07777);
}

/* The open log descriptors of this process: those linked to dir. */
static int log_fds(int *last)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    char target[256];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        ssize_t k = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
        if (k <= 0)
            continue;
        target[k] = '\0';
        if (strncmp(target, dir, strlen(dir)) == 0) {
            n++;
            *last = atoi(e->d_name);
        }
    }
    closedir(d);
    return n;
}

Test(log, open_is_cloexec_and_replacing_closes_the_old_fd, .timeout = 10)
{
    int fd = -1;
    cr_assert_eq(log_fds(&fd), 0);
    log_to_file("a.log");
    cr_assert_eq(log_fds(&fd), 1);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "the log fd is not close-on-exec");
    log_to_file("b.log");
    cr_assert_eq(log_fds(&fd), 1, "the previous log file was not closed");
    cr_assert_eq(pf_log_open(NULL), 0);
    cr_assert_eq(log_fds(&fd), 0, "going back to stderr did not close the file");
    log_to_file("c.log");
    cr_assert_eq(pf_log_open("-"), 0);
    cr_assert_eq(log_fds(&fd), 0);
    cr_assert(fcntl(STDERR_FILENO, F_GETFD) >= 0, "stderr was closed");
}

/* NULL and "-" send the lines back to stderr: catch it in a file. */
Test(log, open_dash_and_null_go_back_to_stderr, .timeout = 10)
{
    const char *file = log_to_file("file.log");
    const char *err = path_in_dir("stderr.log");
    int efd = open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert_geq(efd, 0);
    int saved = dup(STDERR_FILENO);
    cr_assert_geq(saved, 0);
    cr_assert_eq(dup2(efd, STDERR_FILENO), STDERR_FILENO);
    cr_assert_eq(pf_log_open("-"), 0);
    pf_log(PF_LOG_INFO, "dash");
    cr_assert_eq(pf_log_open(file), 0);
    pf_log(PF_LOG_INFO, "in the file");
    cr_assert_eq(pf_log_open(NULL), 0);
    pf_log(PF_LOG_INFO, "null");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(efd);
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", slurp(err, NULL));
    cr_assert_eq(count_char(buf, '\n'), 2, "[%s]", buf);
    cr_assert_not_null(strstr(buf, "master  info  dash\n"));
    cr_assert_not_null(strstr(buf, "master  info  null\n"));
    const char *line = only_line(file);
    cr_assert(matches(STAMP "master  info  in the file$", line), "[%s]", line);
}

/* ---- errno ---- */

Test(log, errno_is_preserved_across_a_sink, .timeout = 10)
{
    static struct rec r = {.clobber_errno = EBADF};
    pf_log_set_sink(keep, &r);
    errno = EAGAIN;
    pf_log(PF_LOG_INFO, "x");
    cr_assert_eq(r.n, 1);
    cr_assert_eq(errno, EAGAIN);
    errno = EINTR;
    pf_log(PF_LOG_DEBUG, "dropped");
    cr_assert_eq(errno, EINTR);
}

Test(log, errno_is_preserved_when_the_write_fails, .timeout = 10)
{
    pf_log_set_sink(NULL, NULL);
    cr_assert_eq(pf_log_open("/dev/full"), 0); /* every write: ENOSPC */
    errno = EAGAIN;
    pf_log(PF_LOG_ERROR, "lost");
    cr_assert_eq(errno, EAGAIN, "errno became %d", errno);
}

Test(log, percent_m_sees_the_callers_errno, .timeout = 10)
{
    const char *p = log_to_file("m.log");
    errno = ENOENT;
    pf_log(PF_LOG_ERROR, "open x: %m");
    cr_assert_eq(errno, ENOENT);
    const char *line = only_line(p);
    char want[256];
    snprintf(want, sizeof want, "master  error open x: %s", strerror(ENOENT));
    cr_assert_not_null(strstr(line, want), "[%s]", line);
}

/* ---- several processes on one file ---- */

#define WRITERS 4
#define LINES 300

Test(log, lines_from_several_processes_do_not_interleave, .timeout = 10)
{
    const char *p = log_to_file("many.log");
    static char pad[1500];
    memset(pad, 'p', sizeof pad - 1);
    pid_t pids[WRITERS];
    pid_t parent = getpid();
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        cr_assert_geq(pids[w], 0);
        if (pids[w] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            for (int i = 0; i < LINES; i++)
                pf_log(PF_LOG_INFO, "w%d l%d %s end", w, i, pad);
            _exit(0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int status;
        cr_assert_eq(waitpid(pids[w], &status, 0), pids[w]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    size_t n;
    const char *buf = slurp(p, &n);
    static int seen[WRITERS][LINES];
    int lines = 0;
    regex_t re;
    cr_assert_eq(regcomp(&re, STAMP "master  info  w([0-9]+) l([0-9]+) p+ end$", REG_EXTENDED),
                 0);
    for (const char *s = buf; *s; lines++) {
        const char *nl = strchr(s, '\n');
        cr_assert_not_null(nl, "the last line has no newline");
        char *line = strndup(s, (size_t)(nl - s));
        regmatch_t m[3];
        cr_assert_eq(regexec(&re, line, 3, m, 0), 0, "line %d is mangled", lines);
        int w = atoi(line + m[1].rm_so), i = atoi(line + m[2].rm_so);
        cr_assert(w < WRITERS && i < LINES);
        seen[w][i]++;
        free(line);
        s = nl + 1;
    }
    regfree(&re);
    cr_assert_eq(lines, WRITERS * LINES);
    for (int w = 0; w < WRITERS; w++)
        for (int i = 0; i < LINES; i++)
            cr_assert_eq(seen[w][i], 1);
}
