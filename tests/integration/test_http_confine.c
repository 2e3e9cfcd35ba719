/* test_http_confine.c — `prefork serve` never serves a file from outside its root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_support.h"

#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */

/*
 * The layout, made fresh for each test (hs_tree, so root is base/root):
 *
 *   base/sentinel.txt        SECRET (outside the root, next to it)
 *   base/outdir/secret.txt   SECRET
 *   base/root2/secret.txt    SECRET (a sibling whose name starts like the root's)
 *   base/root/inside.txt     a normal file
 *   base/root/sub/           a directory, with sub/up -> ../inside.txt
 *   base/root/link_in        -> inside.txt
 *   base/root/link_out       -> ../sentinel.txt
 *   base/root/link_abs       -> BASE/sentinel.txt (absolute)
 *   base/root/link_dir       -> ../outdir
 *   base/root/link_root      -> / (absolute)
 *
 * The secret is random per test, so no body can contain it by accident.
 */
static char secret[64];
static int port;

TestSuite(http_confine, .fini = hs_cleanup);

/* A symbolic link rel (relative to the root) to target. */
static void make_link(const char *target, const char *rel)
{
    char path[1024];
    hs_path(rel, path, sizeof path);
    cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
}

/* The files out of the root are reached from it with "../". */
static void make_tree(void)
{
    hs_tree("pf-http");
    unsigned char r[8];
    ts_fill(r, sizeof r, (uint64_t)ts_now_ms() ^ (uint64_t)getpid());
    snprintf(secret, sizeof secret, "SENTINEL-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7]);
    hs_put_text("../sentinel.txt", secret);
    hs_make_dir("../outdir");
    hs_put_text("../outdir/secret.txt", secret);
    hs_make_dir("../root2");
    hs_put_text("../root2/secret.txt", secret);
    hs_put_text("inside.txt", "inside\n");
    hs_make_dir("sub");
    make_link("../inside.txt", "sub/up");
    make_link("inside.txt", "link_in");
    make_link("../sentinel.txt", "link_out");
    char abs[512];
    snprintf(abs, sizeof abs, "%s/sentinel.txt", hs_base);
    make_link(abs, "link_abs");
    make_link("../outdir", "link_dir");
    make_link("/", "link_root");
}

/* Start `prefork serve -l 127.0.0.1:0 -w 2 --access-log off ARGS...`. */
#define SERVE(...) (port = HS_SERVE(NULL, "-w", "2", "--access-log", "off", __VA_ARGS__))

/* ---- one request ---- */

struct got {
    int status;
    char *all; /* the whole response, NUL-terminated (a NUL inside stops nothing: len) */
    size_t len;
    const char *body;
};

/* Whether the secret occurs anywhere in n bytes (NULs included). */
static bool leaks(const char *p, size_t n)
{
    return memmem(p, n, secret, strlen(secret)) != NULL;
}

/* "GET TARGET HTTP/1.1" with Connection: close; target_len counts NULs. */
static void get(const char *target, size_t target_len, struct got *g)
{
    char req[4096];
    memcpy(req, "GET ", 4);
    memcpy(req + 4, target, target_len);
    static const char rest[] = " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    memcpy(req + 4 + target_len, rest, sizeof rest - 1);
    size_t n = 4 + target_len + sizeof rest - 1;
    g->all = hs_exchange(port, req, n, &g->len);
    g->status = strncmp(g->all, "HTTP/1.1 ", 9) == 0 ? atoi(g->all + 9) : -1;
    const char *end = strstr(g->all, "\r\n\r\n");
    g->body = end ? end + 4 : g->all + g->len;
}

/* Expect a refusal (one of the two statuses, or only a when b is 0) and no
 * trace of the secret. */
static void refused_n(const char *target, size_t n, int a, int b)
{
    struct got g;
    get(target, n, &g);
    ts_assert(!leaks(g.all, g.len), "GET %s LEAKED the sentinel: [%s]", target, g.all);
    ts_assert(g.status == a || (b && g.status == b), "GET %s: status %d, expected %d%s%.0d",
              target, g.status, a, b ? " or " : "", b);
    free(g.all);
}
#define REFUSED(t, a, b) refused_n(t, strlen(t), a, b)

static void served(const char *target, const char *want)
{
    struct got g;
    get(target, strlen(target), &g);
    ts_assert(g.status == 200 && strcmp(g.body, want) == 0, "GET %s: expected 200 [%s], got [%s]",
              target, want, g.all);
    free(g.all);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

/* Targets that try to climb out; each must be refused (400 for a climb the
 * server sees, 404 for a name that is not there). */
static const char *const climbs[] = {
    "/../sentinel.txt",
    "/%2e%2e/sentinel.txt",
    "/%2E%2E%2Fsentinel.txt",
    "/..%2fsentinel.txt",
    "/..%2Fsentinel.txt",
    "/%2e./sentinel.txt",
    "/.%2e/sentinel.txt",
    "/./../sentinel.txt",
    "//..//sentinel.txt",
    "/sub/../../sentinel.txt",
    "/sub/%2e%2e/%2e%2e/sentinel.txt",
    "/sub/..%2f..%2fsentinel.txt",
    "/inside.txt/../../sentinel.txt",
    "/%c0%ae%c0%ae/sentinel.txt",
    "/%c0%ae%c0%ae%c0%afsentinel.txt",
    "/%252e%252e/sentinel.txt",
    "/..\\sentinel.txt",
    "/%5c..%5csentinel.txt",
    "/..%5csentinel.txt",
    "/../root2/secret.txt",
    "/../outdir/secret.txt",
    "/..",
    "/../",
    "/../../../../../../../../../../../../../../../../sentinel.txt",
    "/sub/../../../../../../../../../../../../../etc/passwd",
    "http://x/../sentinel.txt",
    "http://x/%2e%2e/sentinel.txt",
    "http://x/..%2f..%2fsentinel.txt",
    "http://x/sub/../../sentinel.txt",
    "/link_out",
    "/link_abs",
    "/link_dir/secret.txt",
    "/link_dir/",
    "/link_dir",
    "/link_root/",
    "/link_root/etc/passwd",
    "/sub/up/../../sentinel.txt",
};

Test(http_confine, climbing_out_is_refused, .timeout = TIMEOUT)
{
    make_tree();
    SERVE(hs_root);
    served("/inside.txt", "inside\n");
    for (size_t i = 0; i < sizeof climbs / sizeof climbs[0]; i++) {
        const char *t = climbs[i];
        bool link = strstr(t, "link_") != NULL;
        /* Symlinks out are "not here" (404); a climb may be 400 or 404. */
        REFUSED(t, 404, link ? 0 : 400);
    }
    served("/inside.txt", "inside\n");
}

Test(http_confine, symlinks_inside_are_followed, .timeout = TIMEOUT)
{
    make_tree();
    SERVE(hs_root);
    served("/link_in", "inside\n");
    served("/sub/up", "inside\n");
    /* A listing of the root shows the links but never follows them. */
    struct got g;
    get("/", 1, &g);
    ts_assert(g.status == 200 && strstr(g.body, "link_out"), "root listing: [%s]", g.all);
    ts_assert(!leaks(g.all, g.len) && !strstr(g.body, "secret.txt"), "the listing leaks");
    free(g.all);
}

Test(http_confine, nul_is_refused, .timeout = TIMEOUT)
{
    make_tree();
    SERVE(hs_root);
    REFUSED("/inside.txt%00", 400, 0);
    REFUSED("/link_out%00", 400, 0);
    REFUSED("/../sentinel.txt%00.html", 400, 0);
    REFUSED("/%00/../sentinel.txt", 400, 0);
    static const char raw_nul[] = "/inside.txt\0/../../sentinel.txt";
    refused_n(raw_nul, sizeof raw_nul - 1, 400, 0);
    static const char raw_nul2[] = "/\0";
    refused_n(raw_nul2, sizeof raw_nul2 - 1, 400, 0);
    served("/inside.txt", "inside\n");
}

Test(http_confine, follow_symlinks_opens_links_only, .timeout = TIMEOUT)
{
    make_tree();
    SERVE(hs_root, "--follow-symlinks");
    served("/link_out", secret);
    served("/link_abs", secret);
    served("/link_dir/secret.txt", secret);
    served("/link_in", "inside\n");
    /* Following links is no licence to climb with "..". */
    for (size_t i = 0; i < sizeof climbs / sizeof climbs[0]; i++) {
        const char *t = climbs[i];
        if (!strstr(t, "link_"))
            REFUSED(t, 404, 400);
    }
}

/* Under the openat2 confinement each worker gives up the rest of the file
 * system (Landlock; tests/unit/test_static_sandbox.c checks what it denies):
 * both say so, and serve files and listings as before. */
Test(http_confine, workers_are_sandboxed, .timeout = TIMEOUT)
{
    make_tree();
    struct ts_proc *srv;
    port = HS_SERVE(&srv, "-w", "2", "--access-log", "off", "-v", hs_root);
    pid_t pids[2];
    ts_assert(ts_wait_ready(srv->pid, 2, pids, HS_START_MS) == 0, "2 workers ready");
    if (ts_log_count(srv, "no Landlock in this kernel") > 0)
        cr_skip_test("this kernel has no Landlock");
    int n = ts_log_count(srv, "worker [01] .*sandboxed \\(Landlock ABI [0-9]+\\): reads beneath ");
    ts_assert(n == 2, "%d of 2 workers said they are sandboxed", n);
    served("/inside.txt", "inside\n");
    struct got g;
    get("/sub/", 5, &g);
    ts_assert(g.status == 200 && strstr(g.body, "href=\"up\""), "listing of /sub/: [%s]", g.all);
    free(g.all);
    REFUSED("/link_out", 404, 0);
}
