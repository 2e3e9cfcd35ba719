/* log.c — the error log: one line per message, tagged with time, source and level (the format is in prefork(1), LOGS). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/internal.h"

/* Per process state: each worker inherits it at fork and then retags itself
 * with pf__log_set_source. Written by the process's single thread only. */
static enum pf_log_level log_max = PF_LOG_INFO;
static pf_log_fn *log_sink;
static void *log_ud;
static int log_fd = STDERR_FILENO;
static char log_source[64] = "master";
static char log_path[4096]; /* "" for stderr */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void pf__log_set_source(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log_source, sizeof log_source, fmt, ap);
    va_end(ap);
}

void pf_log_set_sink(pf_log_fn *fn, void *ud)
{
    log_sink = fn;
    log_ud = ud;
}

void pf_log_set_level(enum pf_log_level max) { log_max = max; }

int pf_log_open(const char *path)
{
    int fd = STDERR_FILENO;
    if (path && strcmp(path, "-") != 0) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
    }
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    snprintf(log_path, sizeof log_path, "%s", fd == STDERR_FILENO ? "" : path);
    return 0;
}

/* A worker whose stdout and stderr become a pipe to the master (captured
 * output) keeps its own lines on the stderr it had: they are lines already,
 * and the master would tag them twice. */
int pf__log_keep_stderr(void)
{
    if (log_fd != STDERR_FILENO)
        return 0;
    int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return -errno;
    log_fd = fd;
    return 0;
}

/* logrotate moved the file away: open the path again, keep the old
 * descriptor if that fails (lines still go somewhere). */
int pf__log_reopen(void)
{
    if (!log_path[0])
        return 0;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    dup2(fd, log_fd); /* same descriptor number: nothing else to update */
    close(fd);
    return 0;
}

/* "2026-11-25T16:30:00.123Z" */
static size_t format_time(char *buf, size_t size)
{
    uint64_t ms = pf__wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, size - n, ".%03uZ", (unsigned)(ms % 1000));
    return n + (m > 0 ? (size_t)m : 0);
}

/* Control characters from clients (a request line, a path) must not forge
 * log lines, so the default sink replaces them. */
static void scrub(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* One write(2) per line: lines from several workers sharing the file do not
 * interleave (O_APPEND, and under PIPE_BUF bytes for a pipe). */
static void default_sink(enum pf_log_level level, const char *source, const char *msg)
{
    char line[2048];
    size_t n = format_time(line, sizeof line);
    int m = snprintf(line + n, sizeof line - n - 1, " %s  %-5s %s", source,
                     level_names[level], msg);
    if (m < 0)
        return;
    n += (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
    line[n++] = '\n';
    ssize_t r;
    do
        r = write(log_fd, line, n);
    while (r < 0 && errno == EINTR);
}

static void emit(enum pf_log_level level, const char *source, char *msg)
{
    if (log_sink) {
        log_sink(log_ud, level, source, msg);
    } else {
        scrub(msg);
        default_sink(level, source, msg);
    }
}

void pf_vlog(enum pf_log_level level, const char *fmt, va_list ap)
{
    if (level > log_max)
        return;
    char msg[1800];
    int saved = errno;
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(level, log_source, msg);
    errno = saved;
}

void pf__log_as(const char *source, enum pf_log_level level, const char *text, size_t n)
{
    char msg[1800];
    if (level > log_max)
        return;
    n = n < sizeof msg - 1 ? n : sizeof msg - 1;
    memcpy(msg, text, n);
    msg[n] = '\0';
    emit(level, source, msg);
}

void pf_log(enum pf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pf_vlog(level, fmt, ap);
    va_end(ap);
}
