/* addr.c — parse listen addresses and format socket addresses, never touching the network. */
#include "prefork.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

/* Longest host text we copy out of a spec: an IPv6 literal is at most 45
 * characters (INET6_ADDRSTRLEN - 1); anything longer is not an address. */
#define HOST_MAX 64

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return -EINVAL;
}

/* Parse n bytes of strictly decimal digits (no sign, no spaces, at least one
 * digit) into *out, refusing values above max. strtoul is not used because
 * it accepts leading spaces, a sign and "0x". */
static int parse_decimal(const char *s, size_t n, unsigned long max,
                         unsigned long *out)
{
    unsigned long v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

static int parse_port(const char *s, in_port_t *port, const char **why)
{
    unsigned long v;

    if (parse_decimal(s, strlen(s), 65535, &v) < 0)
        return fail(why, "port must be a number from 0 to 65535");
    *port = htons((in_port_t)v);
    return 0;
}

static int parse_unix(const char *path, struct pf_addr *out, const char **why)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);

    if (n == 0)
        return fail(why, "unix socket path is empty");
    if (n >= sizeof un->sun_path)
        return fail(why, "unix socket path is longer than 107 bytes");
    if (strcmp(path, "@") == 0)
        return fail(why, "abstract unix socket name is empty");
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    out->kind = PF_ADDR_UNIX;
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    /* "@name" is Linux's abstract namespace, as systemd and ss spell it: the
     * name starts with a NUL byte and its length is exact, with no NUL
     * terminator counted. */
    if (path[0] == '@') {
        un->sun_path[0] = '\0';
        out->len--;
    }
    return 0;
}

static int parse_fd(const char *s, struct pf_addr *out, const char **why)
{
    unsigned long v;

    if (parse_decimal(s, strlen(s), INT_MAX, &v) < 0)
        return fail(why, "fd must be a number from 0 to 2147483647");
    out->kind = PF_ADDR_FD;
    out->fd = (int)v;
    return 0;
}

static void set_v6(struct pf_addr *out, const struct in6_addr *ip,
                   in_port_t port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = port;
    sin6->sin6_addr = *ip;
    out->kind = PF_ADDR_TCP;
    out->len = sizeof *sin6;
}

/* "[V6]:PORT". Scoped addresses (fe80::1%eth0) are refused: resolving the
 * interface name would touch the system, which this parser never does. */
static int parse_bracketed(const char *spec, struct pf_addr *out,
                           const char **why)
{
    const char *close = strchr(spec, ']');
    char host[HOST_MAX];
    struct in6_addr ip;
    in_port_t port;
    size_t n;

    if (!close)
        return fail(why, "missing ']' after ipv6 address");
    if (close[1] != ':')
        return fail(why, "missing ':PORT' after ']'");
    n = (size_t)(close - spec - 1);
    if (n >= sizeof host)
        return fail(why, "ipv6 address is too long");
    memcpy(host, spec + 1, n);
    host[n] = '\0';
    if (inet_pton(AF_INET6, host, &ip) != 1)
        return fail(why, "not a valid ipv6 address");
    if (parse_port(close + 2, &port, why) < 0)
        return -EINVAL;
    set_v6(out, &ip, port);
    return 0;
}

static int parse_v4_host(const char *host, struct in_addr *ip,
                         const char **why)
{
    if (strcmp(host, "localhost") == 0) {
        ip->s_addr = htonl(INADDR_LOOPBACK);
        return 0;
    }
    if (strchr(host, ':'))
        return fail(why, "ipv6 addresses need brackets, as in [::1]:8000");
    if (host[strspn(host, "0123456789.")] != '\0')
        return fail(why, "host must be an IP address or localhost");
    /* inet_pton, unlike inet_aton, wants exactly four decimal parts each at
     * most 255, so "1.2.3" and "999.1.1.1" are refused here. */
    if (inet_pton(AF_INET, host, ip) != 1)
        return fail(why, "not a valid ipv4 address");
    return 0;
}

/* "HOST:PORT" and ":PORT". The last colon separates the port so that an
 * unbracketed IPv6 address gets a helpful reason rather than a bad port. */
static int parse_host_port(const char *spec, struct pf_addr *out,
                           const char **why)
{
    const char *colon = strrchr(spec, ':');
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    char host[HOST_MAX];
    in_port_t port;
    size_t n;

    if (!colon)
        return fail(why, "missing port, expected HOST:PORT");
    if (parse_port(colon + 1, &port, why) < 0)
        return -EINVAL;
    n = (size_t)(colon - spec);
    if (n == 0) {
        /* Stored as [::]; pf_listen_open falls back to 0.0.0.0 itself
         * when the system has no IPv6. */
        set_v6(out, &in6addr_any, port);
        out->any = true;
        return 0;
    }
    if (n >= sizeof host)
        return fail(why, "host must be an IP address or localhost");
    memcpy(host, spec, n);
    host[n] = '\0';
    if (parse_v4_host(host, &sin->sin_addr, why) < 0)
        return -EINVAL;
    sin->sin_family = AF_INET;
    sin->sin_port = port;
    out->kind = PF_ADDR_TCP;
    out->len = sizeof *sin;
    return 0;
}

/* The flags a listener may carry after a comma ("127.0.0.1:8443,tls"). */
static const struct {
    const char *word;
    unsigned flag;
} flag_words[] = {{"tls", PF_ADDR_TLS}, {"proxy", PF_ADDR_PROXY}};

static unsigned flag_of(const char *word, size_t n)
{
    for (size_t i = 0; i < sizeof flag_words / sizeof flag_words[0]; i++)
        if (strlen(flag_words[i].word) == n && memcmp(flag_words[i].word, word, n) == 0)
            return flag_words[i].flag;
    return 0;
}

/* Strip the known flags off the end of spec into *flags; returns the
 * length of what is left. A Unix path may itself hold a comma, so only
 * known words are taken off: "unix:/a,b" is the path "/a,b". */
static size_t strip_flags(const char *spec, unsigned *flags)
{
    size_t n = strlen(spec);
    for (;;) {
        const char *comma = memrchr(spec, ',', n);
        if (!comma)
            return n;
        unsigned f = flag_of(comma + 1, (size_t)(spec + n - comma - 1));
        if (!f)
            return n;
        *flags |= f;
        n = (size_t)(comma - spec);
    }
}

static int parse_bare(const char *spec, struct pf_addr *out, const char **why)
{
    if (spec[0] == '\0')
        return fail(why, "empty address");
    if (strncmp(spec, "unix:", 5) == 0)
        return parse_unix(spec + 5, out, why);
    if (strchr(spec, ','))
        return fail(why, "unknown listener flag after ',' (known: tls, proxy)");
    if (strncmp(spec, "fd:", 3) == 0)
        return parse_fd(spec + 3, out, why);
    if (spec[0] == '[')
        return parse_bracketed(spec, out, why);
    return parse_host_port(spec, out, why);
}

int pf_addr_parse(const char *spec, struct pf_addr *out, const char **why)
{
    char bare[PATH_MAX];
    unsigned flags = 0;
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!spec || spec[0] == '\0')
        return fail(why, "empty address");
    size_t n = strip_flags(spec, &flags);
    if (n >= sizeof bare)
        return fail(why, "address is too long");
    memcpy(bare, spec, n);
    bare[n] = '\0';
    int err = parse_bare(bare, out, why);
    out->flags = flags;
    return err;
}

/* snprintf truncates and terminates; turn its "would have written" count
 * into our result. */
static int fit(int written, size_t size)
{
    if (written < 0)
        return -EINVAL;
    return (size_t)written >= size ? -ENOSPC : 0;
}

static int format_inet(const struct sockaddr *sa, socklen_t len, char *buf,
                       size_t size)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        if (len < sizeof *sin)
            return -EINVAL;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
        return fit(snprintf(buf, size, "%s:%u", ip, ntohs(sin->sin_port)),
                   size);
    }
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    if (len < sizeof *sin6)
        return -EINVAL;
    inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
    return fit(snprintf(buf, size, "[%s]:%u", ip, ntohs(sin6->sin6_port)),
               size);
}

/* The path is bounded by len, not by a NUL: the kernel may return a
 * sun_path that fills the whole field. An unnamed socket (len with no path)
 * prints as "unix:". */
static int format_unix(const struct sockaddr *sa, socklen_t len, char *buf,
                       size_t size)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = len > off ? len - off : 0;

    if (n > sizeof un->sun_path)
        n = sizeof un->sun_path;
    if (n > 0 && un->sun_path[0] == '\0')
        return fit(snprintf(buf, size, "unix:@%.*s", (int)(n - 1),
                            un->sun_path + 1), size);
    return fit(snprintf(buf, size, "unix:%.*s", (int)n, un->sun_path), size);
}

int pf_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                   size_t size)
{
    if (!buf || size == 0)
        return -ENOSPC;
    buf[0] = '\0';
    if (!sa || len < sizeof sa->sa_family)
        return -EINVAL;
    switch (sa->sa_family) {
    case AF_INET:
    case AF_INET6:
        return format_inet(sa, len, buf, size);
    case AF_UNIX:
        return format_unix(sa, len, buf, size);
    default:
        return -EAFNOSUPPORT;
    }
}
