/* ktls.c — whether the kernel can take over TLS records (the "tls" upper layer protocol), so that files go out with SSL_sendfile. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tls/internal.h"

/* The list of upper layer protocols TCP sockets can take, as the kernel
 * has them now ("mptcp tls"). A tls module not loaded yet is not there:
 * loading one is the administrator's call (modprobe tls), not ours. */
bool tls__ktls_available(void)
{
    char buf[256];
    int fd = open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    for (char *save, *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
        if (strcmp(w, "tls") == 0)
            return true;
    return false;
}
