/* test_tls_sessions.c — the session table the workers share: kept, found, replaced, expired, removed, and never torn by writers in several processes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tls/internal.h"

static void fini(void)
{
    tls__sessions_free();
}

TestSuite(tls_sessions, .fini = fini, .timeout = 30);

/* A session ID and a body made from a number: IDs of 32 bytes, bodies of
 * 100 to 451 bytes that carry the number in every byte pair. */
static void make(unsigned n, unsigned char id[32], unsigned char *der, size_t *len)
{
    for (int i = 0; i < 32; i++)
        id[i] = (unsigned char)((n * 2654435761u) >> (i % 4 * 8)) ^ (unsigned char)i;
    *len = 100 + n % (TLS_SESSION_MAX - 100);
    for (size_t i = 0; i < *len; i++)
        der[i] = (unsigned char)(i % 2 ? n : n >> 8);
}

static bool found(unsigned n)
{
    unsigned char id[32], want[TLS_SESSION_MAX], got[TLS_SESSION_MAX];
    size_t len;
    make(n, id, want, &len);
    size_t g = tls__sessions_get(id, sizeof id, got);
    cr_assert(g == 0 || (g == len && memcmp(got, want, len) == 0), "session %u torn or wrong", n);
    return g == len;
}

static int put(unsigned n, int64_t expires)
{
    unsigned char id[32], der[TLS_SESSION_MAX];
    size_t len;
    make(n, id, der, &len);
    return tls__sessions_put(id, sizeof id, der, len, expires);
}

Test(tls_sessions, kept_found_replaced_removed)
{
    int64_t later = time(NULL) + 3600;
    cr_assert_eq(tls__sessions_init(1000), 0);
    cr_assert_not(found(1), "an empty table finds nothing");
    for (unsigned n = 1; n <= 100; n++)
        cr_assert_eq(put(n, later), 0);
    for (unsigned n = 1; n <= 100; n++)
        cr_assert(found(n), "session %u not kept", n);
    cr_assert_not(found(101));
    /* The same ID again replaces its session, and does not take a second slot. */
    unsigned char id[32], der[TLS_SESSION_MAX], got[TLS_SESSION_MAX];
    size_t len;
    make(7, id, der, &len);
    der[0] ^= 0xff;
    cr_assert_eq(tls__sessions_put(id, sizeof id, der, len, later), 0);
    cr_assert_eq(tls__sessions_get(id, sizeof id, got), len);
    cr_assert_eq(got[0], der[0]);
    tls__sessions_remove(id, sizeof id);
    cr_assert_eq(tls__sessions_get(id, sizeof id, got), 0, "removed, still found");
    cr_assert(found(8), "removing one removed another");
}

Test(tls_sessions, expired_sessions_are_not_found_and_make_room)
{
    int64_t now = time(NULL);
    cr_assert_eq(tls__sessions_init(4), 0); /* one set of four */
    cr_assert_eq(put(1, now - 1), 0);
    cr_assert_not(found(1), "an expired session was found");
    for (unsigned n = 2; n <= 5; n++)
        cr_assert_eq(put(n, now + 100 * n), 0);
    for (unsigned n = 2; n <= 5; n++)
        cr_assert(found(n), "session %u not kept (the expired one's slot is free)", n);
    /* A full set gives up the session that expires first. */
    cr_assert_eq(put(6, now + 1000), 0);
    cr_assert_not(found(2), "the session expiring first is still there");
    for (unsigned n = 3; n <= 6; n++)
        cr_assert(found(n), "session %u lost", n);
}

Test(tls_sessions, refuses_what_does_not_fit)
{
    unsigned char id[33] = {1}, der[TLS_SESSION_MAX + 1] = {0};
    int64_t later = time(NULL) + 60;
    cr_assert_eq(tls__sessions_put(id, 1, der, 10, later), -EINVAL, "no table yet");
    cr_assert_eq(tls__sessions_init(100), 0);
    cr_assert_eq(tls__sessions_put(id, 33, der, 10, later), -EINVAL);
    cr_assert_eq(tls__sessions_put(id, 0, der, 10, later), -EINVAL);
    cr_assert_eq(tls__sessions_put(id, 32, der, TLS_SESSION_MAX + 1, later), -EINVAL);
    cr_assert_eq(tls__sessions_put(id, 32, der, TLS_SESSION_MAX, later), 0);
    cr_assert_eq(tls__sessions_get(id, 33, der), 0);
}

/* Three processes write and read the same small table at once (each
 * session written by one of them, read by all): a read finds the whole
 * session it asked for or nothing, never a mix of two writes. */
Test(tls_sessions, writers_in_several_processes_never_tear_a_read)
{
    int64_t later = time(NULL) + 3600;
    cr_assert_eq(tls__sessions_init(64), 0);
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        cr_assert_geq(kids[k], 0);
        if (kids[k] == 0) {
            for (unsigned i = 0; i < 60000; i++) {
                unsigned n = (i * 7 + (unsigned)k) % 300;
                if (n % 3 == (unsigned)k)
                    put(n, later);
                unsigned char id[32], want[TLS_SESSION_MAX], got[TLS_SESSION_MAX];
                size_t len;
                make((n * 13) % 300, id, want, &len);
                size_t g = tls__sessions_get(id, sizeof id, got);
                if (g != 0 && (g != len || memcmp(got, want, len) != 0))
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int k = 0; k < 3; k++) {
        int st;
        cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d read a torn session", k);
    }
    unsigned kept = 0;
    for (unsigned n = 0; n < 300; n++)
        kept += found(n);
    cr_assert(kept > 0 && kept <= 64, "%u sessions in a table of 64", kept);
}
