/* test_cidr.c — unit tests for pf_cidr_parse and pf_cidr_match: ranges, bare addresses, IPv4-mapped peers, Unix peers, bad text. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "prefork.h"

static socklen_t peer(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (void *)ss;
    struct sockaddr_in6 *in6 = (void *)ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return sizeof *in;
    }
    cr_assert_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1, "%s", ip);
    in6->sin6_family = AF_INET6;
    return sizeof *in6;
}

static bool match(const char *range, const char *ip)
{
    struct pf_cidr c;
    const char *why;
    cr_assert_eq(pf_cidr_parse(range, &c, &why), 0, "%s", range);
    struct sockaddr_storage ss;
    socklen_t len = peer(ip, &ss);
    return pf_cidr_match(&c, (struct sockaddr *)&ss, len);
}

Test(cidr, ranges, .timeout = 10)
{
    cr_assert(match("198.18.0.0/15", "198.19.255.255"));
    cr_assert(match("198.18.0.0/15", "198.18.0.1"));
    cr_assert_not(match("198.18.0.0/15", "198.20.0.1"));
    cr_assert_not(match("198.18.0.0/15", "198.17.255.255"));
    cr_assert(match("127.0.0.1", "127.0.0.1"));
    cr_assert_not(match("127.0.0.1", "127.0.0.2"));
    cr_assert(match("0.0.0.0/0", "8.8.8.8"));
    cr_assert(match("10.0.0.0/8", "::ffff:10.9.8.7")); /* a dual-stack socket's IPv4 peer */
    cr_assert_not(match("10.0.0.0/8", "::ffff:11.9.8.7"));
    cr_assert_not(match("10.0.0.0/8", "2001:db8::1"));
    cr_assert(match("::1", "::1"));
    cr_assert_not(match("::1", "127.0.0.1"));
    cr_assert(match("2001:db8::/32", "2001:db8:ffff::1"));
    cr_assert_not(match("2001:db8::/33", "2001:db8:ffff::1"));
    cr_assert(match("fe80::/10", "febf::1"));
    cr_assert_not(match("fe80::/10", "fec0::1"));
}

Test(cidr, unix_peers, .timeout = 10)
{
    struct pf_cidr u, lo;
    cr_assert_eq(pf_cidr_parse("unix", &u, NULL), 0);
    cr_assert_eq(pf_cidr_parse("127.0.0.1", &lo, NULL), 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    cr_assert(pf_cidr_match(&u, (struct sockaddr *)&sun, sizeof(sa_family_t)));
    cr_assert(pf_cidr_match(&u, (struct sockaddr *)&sun, 0)); /* no address at all */
    cr_assert_not(pf_cidr_match(&lo, (struct sockaddr *)&sun, sizeof(sa_family_t)));
    struct pf_cidr list[2] = {lo, u};
    cr_assert(pf_cidr_match_any(list, 2, (struct sockaddr *)&sun, 0));
    cr_assert_not(pf_cidr_match_any(list, 1, (struct sockaddr *)&sun, 0));
}

Test(cidr, bad, .timeout = 10)
{
    static const char *bad[] = {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.1/8",
                                "10.0.0.0/8x", "10.0.0.0/-1", "host.example", "10.0.0.0/0008",
                                "/8", "1.2.3", "::1/12/3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pf_cidr c;
        const char *why = NULL;
        cr_assert_eq(pf_cidr_parse(bad[i], &c, &why), -EINVAL, "%s", bad[i]);
        cr_assert_not_null(why);
    }
}

Test(cidr, lists, .timeout = 10)
{
    struct pf_cidr l[4];
    const char *why = NULL;
    cr_assert_eq(pf_cidr_parse_list("10.0.0.0/8,::1,unix", l, 4, &why), 3);
    cr_assert_eq(l[0].family, AF_INET);
    cr_assert_eq(l[1].family, AF_INET6);
    cr_assert_eq(l[2].family, AF_UNIX);
    cr_assert_eq(pf_cidr_parse_list("*", l, 4, &why), 3); /* every family */
    cr_assert_eq(l[0].bits, 0);
    cr_assert_eq(pf_cidr_parse_list("127.0.0.1", l, 1, &why), 1);
    static const char *bad[] = {"", ",", "10.0.0.0/8,", ",::1", "10.0.0.0/8,,::1", "x",
                                "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        cr_assert_eq(pf_cidr_parse_list(bad[i], l, 4, &why), -EINVAL, "%s", bad[i]);
        cr_assert_not_null(why);
    }
}
