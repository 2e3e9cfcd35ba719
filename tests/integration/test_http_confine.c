/* test_http_confine.c — `prefork serve` never serves a file from outside its root. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define PREFORK "prefork"
#define START_MS 20000 /* generous: a slow machine under ASan */
#define IO_MS 10000
#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */

/*
 * The layout, made fresh for each test:
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
static char base[256], root[300], secret[64];
static struct ts_proc *srv;
static int port;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0; /* best effort: carry on with the rest of the tree */
}

static void fini(void)
{
    ts_cleanup();
    if (base[0])
        nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    base[0] = '\0';
}

TestSuite(http_confine, .fini = fini);

static void put_text(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n, "write %s", path);
    close(fd);
}

static void make_dir(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %s", path, strerror(errno));
}

static void make_link(const char *target, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
}

static void make_tree(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/pf-http-XXXXXX", t && *t ? t : "/tmp");
    cr_assert_not_null(mkdtemp(base), "mkdtemp: %s", strerror(errno));
    snprintf(root, sizeof root, "%s/root", base);
    unsigned char r[8];
    ts_fill(r, sizeof r, (uint64_t)ts_now_ms() ^ (uint64_t)getpid());
    snprintf(secret, sizeof secret, "SENTINEL-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7]);
    put_text("sentinel.txt", secret);
    make_dir("outdir");
    put_text("outdir/secret.txt", secret);
    make_dir("root2");
    put_text("root2/secret.txt", secret);
    make_dir("root");
    put_text("root/inside.txt", "inside\n");
    make_dir("root/sub");
    make_link("../inside.txt", "root/sub/up");
    make_link("inside.txt", "root/link_in");
    make_link("../sentinel.txt", "root/link_out");
    char abs[512];
    snprintf(abs, sizeof abs, "%s/sentinel.txt", base);
    make_link(abs, "root/link_abs");
    make_link("../outdir", "root/link_dir");
    make_link("/", "root/link_root");
}

/* Start `prefork serve -l 127.0.0.1:0 -w 2 --access-log off ARGS...`. */
static void serve(const char *const *extra)
{
    const char *argv[32] = {PREFORK, "serve", "-l", "127.0.0.1:0", "-w", "2",
                            "--access-log", "off"};
    int n = 8;
    for (int i = 0; extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    srv = ts_start(argv);
    port = ts_wait_port(srv, START_MS);
    ts_assert(port > 0, "no start-up line with a port: %s", strerror(-port));
}
#define SERVE(...) serve((const char *const[]){__VA_ARGS__, NULL})

/* ---- one request ---- */

struct got {
    int status;
    char *all; /* the whole response, NUL-terminated (a NUL inside stops nothing: len) */
    size_t len;
    const char *body;
};

static void grow(struct got *g, const char *s, size_t n, size_t *cap)
{
    if (g->len + n + 1 > *cap) {
        while (*cap < g->len + n + 1)
            *cap *= 2;
        g->all = realloc(g->all, *cap);
        cr_assert_not_null(g->all);
    }
    memcpy(g->all + g->len, s, n);
    g->len += n;
    g->all[g->len] = '\0';
}

/* Read until the server closes: the request asks it to. */
static void read_all(int fd, struct got *g)
{
    size_t cap = 4096;
    g->all = malloc(cap);
    cr_assert_not_null(g->all);
    g->all[0] = '\0';
    g->len = 0;
    int64_t deadline = ts_now_ms() + IO_MS;
    char chunk[8192];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            grow(g, chunk, (size_t)n, &cap);
            continue;
        }
        if (n == 0)
            return;
        ts_assert(errno == EAGAIN || errno == EINTR, "recv: %s", strerror(errno));
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - ts_now_ms();
        ts_assert(left > 0 && poll(&pfd, 1, (int)left) >= 0, "no close; got [%s]", g->all);
    }
}

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
    int fd = ts_connect_tcp(port, IO_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    int err = ts_send_all(fd, req, n, IO_MS);
    ts_assert(err == 0, "send: %s", strerror(-err));
    read_all(fd, g);
    close(fd);
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
    SERVE(root);
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
    SERVE(root);
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
    SERVE(root);
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
    SERVE(root, "--follow-symlinks");
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
