/* notify.c — telling others about the master: systemd's sd_notify protocol, and the pidfile. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/master/pool.h"

/* One datagram to $NOTIFY_SOCKET ("/path" or "@abstract"); without it,
 * nothing. Errors are not fatal: the service works without systemd. */
void pf__notify(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || len <= 0)
        goto out;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (sendto(fd, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
        pf_log(PF_LOG_DEBUG, "sd_notify(%s): %s", path, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
}

/* Written to a temporary file and renamed over the old one: a reader sees
 * the old pid or the new one, never a half-written file. */
int pf__pidfile_write(const char *path, pid_t pid)
{
    char tmp[4096], text[24];
    int n = snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)pid);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;
    int len = snprintf(text, sizeof text, "%d\n", (int)pid);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (write(fd, text, (size_t)len) != len || fsync(fd) < 0)
        err = errno ? -errno : -EIO;
    close(fd);
    if (err == 0 && rename(tmp, path) < 0)
        err = -errno;
    if (err < 0)
        unlink(tmp);
    return err;
}

/* Removed only if it still names this pid: after an upgrade it names the
 * new master, and must stay. */
void pf__pidfile_remove(const char *path, pid_t pid)
{
    char text[24] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n > 0 && atoi(text) == (int)pid)
        unlink(path);
}
