/* test_addr.c — unit tests for pf_addr_parse and pf_addr_format (pure, no sockets). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "prefork.h"

/* One accepted form and what it must parse to. For TCP, ip is the address in
 * text (as inet_ntop prints it); for UNIX, path is sun_path after the
 * leading byte decision (abstract names are checked separately). */
struct good {
    const char *spec;
    enum pf_addr_kind kind;
    int family;
    const char *ip;
    unsigned port;
    bool any;
    const char *path;
    int fd;
};

static const struct good goods[] = {
    {"127.0.0.1:8000", PF_ADDR_TCP, AF_INET, "127.0.0.1", 8000, false, NULL, -1},
    {"0.0.0.0:0", PF_ADDR_TCP, AF_INET, "0.0.0.0", 0, false, NULL, -1},
    {"10.1.2.3:65535", PF_ADDR_TCP, AF_INET, "10.1.2.3", 65535, false, NULL, -1},
    {"localhost:80", PF_ADDR_TCP, AF_INET, "127.0.0.1", 80, false, NULL, -1},
    {"[::1]:8000", PF_ADDR_TCP, AF_INET6, "::1", 8000, false, NULL, -1},
    {"[::]:1", PF_ADDR_TCP, AF_INET6, "::", 1, false, NULL, -1},
    {"[2001:db8::5]:443", PF_ADDR_TCP, AF_INET6, "2001:db8::5", 443, false, NULL, -1},
    {"[::ffff:1.2.3.4]:9", PF_ADDR_TCP, AF_INET6, "::ffff:1.2.3.4", 9, false, NULL, -1},
    {":8080", PF_ADDR_TCP, AF_INET6, "::", 8080, true, NULL, -1},
    {":0", PF_ADDR_TCP, AF_INET6, "::", 0, true, NULL, -1},
    {"unix:/tmp/x.sock", PF_ADDR_UNIX, AF_UNIX, NULL, 0, false, "/tmp/x.sock", -1},
    {"unix:rel/a", PF_ADDR_UNIX, AF_UNIX, NULL, 0, false, "rel/a", -1},
    {"fd:0", PF_ADDR_FD, 0, NULL, 0, false, NULL, 0},
    {"fd:3", PF_ADDR_FD, 0, NULL, 0, false, NULL, 3},
    {"fd:2147483647", PF_ADDR_FD, 0, NULL, 0, false, NULL, 2147483647},
};

static const char *const bads[] = {
    "", "127.0.0.1", "127.0.0.1:", "1.2.3:80", "999.1.1.1:80", "1.2.3.4.5:80",
    "[::1]80", "[::1", "[::1]", "[::1]:", "[nope]:80", "[1.2.3.4]:80",
    "::1:80", "host name with spaces", "host name:80", "example.com:80",
    "LOCALHOST:80", "localhost", "unix:", "unix:@", "fd:-1", "fd:", "fd:3x",
    "fd: 3", "fd:+3", "fd:2147483648", "127.0.0.1:80x", "127.0.0.1:-1",
    "127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:80 ",
    " 127.0.0.1:80", "127.0.0.1:0x50", ":", ":99999999999999999999",
    "[::1]:80x", "[::1]:65536", "[fe80::1%lo]:80",
};

static unsigned port_of(const struct pf_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static void check_tcp(const struct good *g, const struct pf_addr *a)
{
    char ip[INET6_ADDRSTRLEN];
    const void *raw = g->family == AF_INET
        ? (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr
        : (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    socklen_t want = g->family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6);

    cr_expect_eq(a->ss.ss_family, g->family, "%s: family", g->spec);
    cr_expect_eq(a->len, want, "%s: len", g->spec);
    cr_assert_not_null(inet_ntop(g->family, raw, ip, sizeof ip));
    cr_expect_str_eq(ip, g->ip, "%s: address", g->spec);
    cr_expect_eq(port_of(a), g->port, "%s: port", g->spec);
}

static void check_unix(const struct good *g, const struct pf_addr *a)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;

    cr_expect_eq(a->ss.ss_family, AF_UNIX, "%s: family", g->spec);
    cr_expect_str_eq(un->sun_path, g->path, "%s: path", g->spec);
    cr_expect_eq(a->len, offsetof(struct sockaddr_un, sun_path) +
                             strlen(g->path) + 1, "%s: len", g->spec);
}

Test(addr, good_forms, .timeout = 10)
{
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const struct good *g = &goods[i];
        struct pf_addr a;
        const char *why = NULL;

        cr_assert_eq(pf_addr_parse(g->spec, &a, &why), 0, "%s: %s", g->spec,
                     why ? why : "?");
        cr_expect_eq(a.kind, g->kind, "%s: kind", g->spec);
        cr_expect_eq(a.any, g->any, "%s: any", g->spec);
        if (g->kind == PF_ADDR_TCP)
            check_tcp(g, &a);
        else if (g->kind == PF_ADDR_UNIX)
            check_unix(g, &a);
        else
            cr_expect_eq(a.fd, g->fd, "%s: fd", g->spec);
    }
}

Test(addr, bad_forms, .timeout = 10)
{
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        struct pf_addr a;
        const char *why = NULL;

        cr_expect_eq(pf_addr_parse(bads[i], &a, &why), -EINVAL, "\"%s\"",
                     bads[i]);
        cr_expect_not_null(why, "\"%s\": no reason", bads[i]);
        /* Reasons are one short line, so the CLI can print them as is. */
        if (why)
            cr_expect(strlen(why) > 0 && strlen(why) < 80 && !strchr(why, '\n'),
                      "\"%s\": reason \"%s\"", bads[i], why);
    }
}

Test(addr, reasons, .timeout = 10)
{
    struct pf_addr a;
    const char *why = NULL;

    pf_addr_parse("example.com:80", &a, &why);
    cr_expect_str_eq(why, "host must be an IP address or localhost");
    pf_addr_parse("127.0.0.1:65536", &a, &why);
    cr_expect_str_eq(why, "port must be a number from 0 to 65535");
    /* why may be NULL. */
    cr_expect_eq(pf_addr_parse("nope", &a, NULL), -EINVAL);
    cr_expect_eq(pf_addr_parse(NULL, &a, NULL), -EINVAL);
}

Test(addr, unix_path_limit, .timeout = 10)
{
    char spec[5 + sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    struct pf_addr a;
    const char *why = NULL;

    /* 107 bytes fit with their terminator, 108 do not. */
    memcpy(spec, "unix:", 5);
    memset(spec + 5, 'p', 107);
    spec[5 + 107] = '\0';
    cr_expect_eq(pf_addr_parse(spec, &a, &why), 0);
    cr_expect_eq(a.len, offsetof(struct sockaddr_un, sun_path) + 108);
    memset(spec + 5, 'p', 108);
    spec[5 + 108] = '\0';
    cr_expect_eq(pf_addr_parse(spec, &a, &why), -EINVAL);
    cr_expect_not_null(why);
}

Test(addr, unix_abstract, .timeout = 10)
{
    struct pf_addr a;
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a.ss;
    char buf[128];

    cr_assert_eq(pf_addr_parse("unix:@pf-test", &a, NULL), 0);
    cr_expect_eq(a.kind, PF_ADDR_UNIX);
    cr_expect_eq(un->sun_path[0], '\0');
    cr_expect_eq(memcmp(un->sun_path + 1, "pf-test", 7), 0);
    cr_expect_eq(a.len, offsetof(struct sockaddr_un, sun_path) + 8);
    cr_assert_eq(pf_addr_format((const struct sockaddr *)&a.ss, a.len, buf,
                                sizeof buf), 0);
    cr_expect_str_eq(buf, "unix:@pf-test");
}

static void round_trip(const char *spec)
{
    struct pf_addr a;
    char buf[160];

    cr_assert_eq(pf_addr_parse(spec, &a, NULL), 0, "%s", spec);
    cr_assert_eq(pf_addr_format((const struct sockaddr *)&a.ss, a.len, buf,
                                sizeof buf), 0, "%s", spec);
    cr_expect_str_eq(buf, spec);
}

Test(addr, format_round_trips, .timeout = 10)
{
    round_trip("127.0.0.1:8000");
    round_trip("0.0.0.0:0");
    round_trip("[::1]:8000");
    round_trip("[2001:db8::5]:65535");
    round_trip("unix:/run/prefork.sock");
    round_trip("unix:rel");
}

Test(addr, format_too_small, .timeout = 10)
{
    struct pf_addr a;
    char buf[8];

    cr_assert_eq(pf_addr_parse("127.0.0.1:8000", &a, NULL), 0);
    memset(buf, 'x', sizeof buf);
    cr_expect_eq(pf_addr_format((const struct sockaddr *)&a.ss, a.len, buf,
                                sizeof buf), -ENOSPC);
    cr_expect_eq(buf[sizeof buf - 1], '\0', "always terminated");
    cr_expect_str_eq(buf, "127.0.0");
    /* Exactly enough room: 14 characters and the terminator. */
    char exact[15];
    cr_expect_eq(pf_addr_format((const struct sockaddr *)&a.ss, a.len, exact,
                                sizeof exact), 0);
    cr_expect_eq(pf_addr_format((const struct sockaddr *)&a.ss, a.len, exact,
                                sizeof exact - 1), -ENOSPC);
}

Test(addr, format_other_family, .timeout = 10)
{
    struct sockaddr_storage ss = {.ss_family = AF_PACKET};
    struct sockaddr_in short_sin = {.sin_family = AF_INET};
    char buf[64];

    cr_expect_eq(pf_addr_format((const struct sockaddr *)&ss, sizeof ss, buf,
                                sizeof buf), -EAFNOSUPPORT);
    cr_expect_str_eq(buf, "");
    cr_expect_eq(pf_addr_format((const struct sockaddr *)&short_sin, 4, buf,
                                sizeof buf), -EINVAL);
}

/* A sun_path that fills the whole field without a terminator, as the kernel
 * may return it, is bounded by len. */
Test(addr, format_unix_full_path, .timeout = 10)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char buf[160];

    memset(un.sun_path, 'q', sizeof un.sun_path);
    cr_assert_eq(pf_addr_format((const struct sockaddr *)&un, sizeof un, buf,
                                sizeof buf), 0);
    cr_expect_eq(strlen(buf), 5 + sizeof un.sun_path);
}

/* Flags after commas: known words are taken off the end; a Unix path keeps
 * a comma that is not followed by one. */
Test(addr, listener_flags)
{
    struct pf_addr a;
    const char *why = NULL;
    cr_assert_eq(pf_addr_parse("127.0.0.1:8443,tls", &a, &why), 0);
    cr_assert_eq(a.flags, PF_ADDR_TLS);
    cr_assert_eq(port_of(&a), 8443);
    cr_assert_eq(pf_addr_parse("[::1]:1,tls,tls", &a, NULL), 0);
    cr_assert_eq(a.flags, PF_ADDR_TLS);
    cr_assert_eq(pf_addr_parse(":443,tls", &a, NULL), 0);
    cr_assert(a.any && a.flags == PF_ADDR_TLS);
    cr_assert_eq(pf_addr_parse("fd:3,tls", &a, NULL), 0);
    cr_assert(a.kind == PF_ADDR_FD && a.fd == 3 && a.flags == PF_ADDR_TLS);
    cr_assert_eq(pf_addr_parse("127.0.0.1:80", &a, NULL), 0);
    cr_assert_eq(a.flags, 0u);
    cr_assert_eq(pf_addr_parse("unix:/tmp/a,b", &a, NULL), 0);
    cr_assert_str_eq(((struct sockaddr_un *)&a.ss)->sun_path, "/tmp/a,b");
    cr_assert_eq(a.flags, 0u);
    cr_assert_eq(pf_addr_parse("unix:/tmp/a,b,tls", &a, NULL), 0);
    cr_assert_str_eq(((struct sockaddr_un *)&a.ss)->sun_path, "/tmp/a,b");
    cr_assert_eq(a.flags, PF_ADDR_TLS);
    const char *const bad[] = {"127.0.0.1:8443,tsl", "127.0.0.1:8443,", ",tls", "[::1]:1,TLS",
                               "127.0.0.1:1,tls,x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        cr_assert_eq(pf_addr_parse(bad[i], &a, &why), -EINVAL, "%s accepted", bad[i]);
        cr_assert_not_null(why, "%s: no reason", bad[i]);
    }
}
