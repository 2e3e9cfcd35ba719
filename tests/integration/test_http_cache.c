/* test_http_cache.c — the per-worker cache of small files and listings serves a change within --cache-ttl, never older, never mixed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define START_MS 20000 /* the server, on a slow machine under ASan */
#define IO_MS 10000    /* one request */
#define TTL 300        /* --cache-ttl of most tests, ms */
#define TTL_ARG "300"
#define SLACK_MS 2000  /* on top of the TTL: a slow, noisy CI machine */
#define POLL_MS 50     /* between two requests while waiting for a change */
#define HOLD_MS (2 * TTL + 200) /* how long the new state must then last */
#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */

/* 2020-01-02 03:04:05 UTC: files start with this mtime, so that writing to
 * them surely changes it (a same-size write within one timestamp tick would
 * be invisible to any check of size and mtime: not what is tested here). */
#define OLD_MTIME 1577934245

/*
 * The cache's promise (src/http/cache.h): an entry is used as it is for at
 * most the TTL after it was last checked; then a file is checked again
 * (device, inode, size, ns mtime) and a listing made again. So after a
 * change, the old content may be served for at most the TTL, then only the
 * new one. One worker (-w 1) means one cache, so every request sees it.
 *
 * Every wait below is bounded: the change must show within TTL + SLACK_MS.
 */
static char root[256], stage[256]; /* stage: files to rename into root (same fs) */
static int port;

TestSuite(http_cache, .fini = ts_cleanup);

/* ---- files ---- */

static void path_of(const char *dir, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void put_at(const char *dir, const char *name, const char *text)
{
    char path[512];
    path_of(dir, name, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text), "write %s", path);
    close(fd);
    struct timespec ts[2] = {{OLD_MTIME, 0}, {OLD_MTIME, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "utimensat: %s", strerror(errno));
}

static void put(const char *name, const char *text)
{
    put_at(root, name, text);
}

/* Overwrite the start of a file in place with text of the same length: no
 * truncation, so a reader sees the old bytes or the new ones. */
static void overwrite(const char *name, const char *text)
{
    char path[512];
    path_of(root, name, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text), "pwrite %s", path);
    close(fd);
}

static void make_dirs(void)
{
    ts_temp_dir(root, sizeof root);
    ts_temp_dir(stage, sizeof stage);
}

static void serve(const char *ttl)
{
    struct ts_proc *srv = TS_START("prefork", "serve", root, "-l", "127.0.0.1:0", "-w", "1",
                                   "--cache-ttl", ttl);
    port = ts_wait_port(srv, START_MS);
    ts_assert(port > 0, "no start-up line with a port: %s", strerror(-port));
}

/* ---- one request ---- */

struct resp {
    int code;
    char etag[128]; /* "" when absent */
    char body[65536];
    size_t len;
};

/* Read until the server closes, at most cap bytes; returns the count. */
static size_t read_to_eof(int fd, char *buf, size_t cap)
{
    int64_t deadline = ts_now_ms() + IO_MS;
    size_t n = 0;
    for (;;) {
        ts_assert(n < cap, "a response of more than %zu bytes", cap);
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0)
            return n;
        ts_assert(errno == EAGAIN || errno == EINTR, "recv: %s", strerror(errno));
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - ts_now_ms();
        ts_assert(left > 0 && poll(&pfd, 1, (int)left) >= 0,
                  "no complete response within %d ms", IO_MS);
    }
}

/* The value of header field name in head (which ends at "\r\n\r\n"). */
static bool field(const char *head, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *s = strstr(head, "\r\n"); s && s[2] != '\r'; s = strstr(s + 2, "\r\n")) {
        if (strncasecmp(s + 2, name, n) != 0 || s[2 + n] != ':')
            continue;
        const char *v = s + 3 + n;
        v += strspn(v, " \t");
        snprintf(out, size, "%.*s", (int)strcspn(v, "\r\n"), v);
        return true;
    }
    return false;
}

/* GET path on a new connection (If-None-Match: inm unless NULL), and split
 * the answer; its framing must be right. */
static void get(const char *path, const char *inm, struct resp *r)
{
    static char raw[sizeof r->body + 4096];
    char req[1024], cl[32];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s\r\n",
                     path, inm ? "If-None-Match: " : "", inm ? inm : "", inm ? "\r\n" : "");
    int fd = ts_connect_tcp(port, IO_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    ts_assert(ts_send_all(fd, req, (size_t)n, IO_MS) == 0, "send failed");
    size_t len = read_to_eof(fd, raw, sizeof raw - 1);
    close(fd);
    raw[len] = '\0';
    char *end = strstr(raw, "\r\n\r\n");
    ts_assert(end && strncmp(raw, "HTTP/1.1 ", 9) == 0, "GET %s: not a response:\n%s", path, raw);
    end[2] = '\0'; /* the head, with its last CRLF */
    r->code = atoi(raw + 9);
    if (!field(raw, "ETag", r->etag, sizeof r->etag))
        r->etag[0] = '\0';
    r->len = len - (size_t)(end + 4 - raw);
    memcpy(r->body, end + 4, r->len);
    r->body[r->len] = '\0';
    bool has_cl = field(raw, "Content-Length", cl, sizeof cl);
    ts_assert(r->code == 304 ? r->len == 0 : has_cl && strtoul(cl, NULL, 10) == r->len,
              "GET %s: %d with a body of %zu bytes, Content-Length %s", path, r->code, r->len,
              has_cl ? cl : "absent");
}

static void nap(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- waiting for a change ---- */

enum state { OLD, NEW, NEITHER };

/* Which state a response shows; ctx is the test's. */
typedef enum state classify_fn(const struct resp *r, const void *ctx);

/*
 * Poll path after a change made at `changed` (monotonic ms). Every answer
 * must be the old state or the new one; the new one must come within
 * TTL + SLACK_MS, and once it came the old must never come back (it is
 * watched for HOLD_MS, past the TTL of any entry still around). cached_at
 * is when the request that put the path in the cache was sent: an answer
 * received less than the TTL after it comes from the cache, so it must be
 * the old state (the cache is on); -1 to skip that check. Returns the
 * staleness seen: ms from the change to the first new answer.
 */
static int64_t watch(const char *path, const char *inm, int64_t cached_at, int64_t changed,
                     classify_fn *classify, const void *ctx, const char *what)
{
    int64_t first_new = -1, hold_end = 0;
    int polls = 0, olds = 0;
    for (;;) {
        struct resp r;
        get(path, inm, &r);
        int64_t now = ts_now_ms();
        enum state s = classify(&r, ctx);
        polls++;
        olds += s == OLD;
        ts_assert(s != NEITHER, "%s: +%lld ms: neither the old nor the new state: %d, ETag %s, "
                  "body:\n%s", what, (long long)(now - changed), r.code, r.etag, r.body);
        ts_assert(cached_at < 0 || polls > 1 || now - cached_at >= TTL - 5 || s == OLD,
                  "%s: the first answer, %lld ms after the path was cached, is not the old "
                  "state: is the cache (--cache-ttl %d) on?", what,
                  (long long)(now - cached_at), TTL);
        ts_assert(first_new < 0 || s == NEW, "%s: the old state came back %lld ms after the "
                  "new one was served", what, (long long)(now - first_new));
        if (first_new < 0 && s == NEW) {
            first_new = now;
            hold_end = now + HOLD_MS;
        }
        ts_assert(first_new >= 0 || now - changed < TTL + SLACK_MS,
                  "%s: still the old state %lld ms after the change (--cache-ttl %d)", what,
                  (long long)(now - changed), TTL);
        if (first_new >= 0 && now >= hold_end)
            break;
        nap(POLL_MS);
    }
    int64_t stale = first_new - changed;
    cr_log_info("%s: new state after %lld ms (%d old answers of %d)", what, (long long)stale,
                olds, polls);
    ts_assert(stale < TTL + SLACK_MS, "%s: served stale for %lld ms, more than the TTL %d ms "
              "(+%d ms of slack)", what, (long long)stale, TTL, SLACK_MS);
    return stale;
}

/* A file's state: 200 with one of two bodies, or 404 for a new state
 * "deleted" (new_body NULL). */
struct bodies {
    const char *old_body, *new_body;
};

static enum state by_body(const struct resp *r, const void *ctx)
{
    const struct bodies *b = ctx;
    if (r->code == 200 && strcmp(r->body, b->old_body) == 0)
        return OLD;
    if (b->new_body ? r->code == 200 && strcmp(r->body, b->new_body) == 0 : r->code == 404)
        return NEW;
    return NEITHER;
}

/* GET path first of all (so the request puts it in the cache), expecting
 * body; returns when that request was sent. */
static int64_t cache_it(const char *path, const char *body)
{
    struct resp r;
    int64_t t = ts_now_ms();
    get(path, NULL, &r);
    ts_assert(r.code == 200 && strcmp(r.body, body) == 0, "GET %s: %d:\n%s", path, r.code,
              r.body);
    return t;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

Test(http_cache, changed_in_place, .timeout = TIMEOUT)
{
    make_dirs();
    put("a.txt", "AAAA");
    serve(TTL_ARG);
    int64_t cached = cache_it("/a.txt", "AAAA");
    overwrite("a.txt", "BBBB");
    int64_t changed = ts_now_ms();
    struct bodies b = {"AAAA", "BBBB"};
    watch("/a.txt", NULL, cached, changed, by_body, &b, "same-size change in place");
}

/* The new file has the same size and the same mtime: only its inode tells
 * it apart. */
Test(http_cache, replaced_by_rename, .timeout = TIMEOUT)
{
    make_dirs();
    put("b.txt", "AAAA");
    put_at(stage, "b.txt", "CCCC");
    serve(TTL_ARG);
    int64_t cached = cache_it("/b.txt", "AAAA");
    char from[512], to[512];
    path_of(stage, "b.txt", from, sizeof from);
    path_of(root, "b.txt", to, sizeof to);
    cr_assert_eq(rename(from, to), 0, "rename: %s", strerror(errno));
    int64_t changed = ts_now_ms();
    struct bodies b = {"AAAA", "CCCC"};
    watch("/b.txt", NULL, cached, changed, by_body, &b, "replaced by rename(2)");
}

Test(http_cache, deleted, .timeout = TIMEOUT)
{
    make_dirs();
    put("c.txt", "AAAA");
    serve(TTL_ARG);
    int64_t cached = cache_it("/c.txt", "AAAA");
    char path[512];
    path_of(root, "c.txt", path, sizeof path);
    cr_assert_eq(unlink(path), 0, "unlink: %s", strerror(errno));
    int64_t changed = ts_now_ms();
    struct bodies b = {"AAAA", NULL};
    watch("/c.txt", NULL, cached, changed, by_body, &b, "deleted");
}

/* ------------------------------------------------------------------------ */
/* Listings                                                                 */
/* ------------------------------------------------------------------------ */

/* A listing of root: always has a.txt; NEW when it has (or, when gone, no
 * longer has) the link to name. */
struct entry_change {
    const char *name;
    bool gone;
};

static bool has_link(const char *body, const char *name)
{
    char a[256];
    snprintf(a, sizeof a, "<a href=\"%s\">%s</a>", name, name);
    return strstr(body, a) != NULL;
}

static enum state by_entry(const struct resp *r, const void *ctx)
{
    const struct entry_change *c = ctx;
    if (r->code != 200 || !has_link(r->body, "a.txt") || !strstr(r->body, "</html>"))
        return NEITHER;
    return has_link(r->body, c->name) != c->gone ? NEW : OLD;
}

Test(http_cache, listing_gains_and_loses_an_entry, .timeout = TIMEOUT)
{
    make_dirs();
    put("a.txt", "a");
    serve(TTL_ARG);
    struct resp r;
    int64_t cached = ts_now_ms();
    get("/", NULL, &r);
    ts_assert(r.code == 200 && has_link(r.body, "a.txt") && !has_link(r.body, "new.txt"),
              "GET /: %d:\n%s", r.code, r.body);

    put("new.txt", "n");
    struct entry_change gain = {"new.txt", false};
    watch("/", NULL, cached, ts_now_ms(), by_entry, &gain, "listing after a create");

    /* The listing was made again at most HOLD_MS ago: no cache check here. */
    char path[512];
    path_of(root, "new.txt", path, sizeof path);
    cr_assert_eq(unlink(path), 0, "unlink: %s", strerror(errno));
    struct entry_change loss = {"new.txt", true};
    watch("/", NULL, -1, ts_now_ms(), by_entry, &loss, "listing after a delete");
}

/* ------------------------------------------------------------------------ */
/* No cache, and validators                                                 */
/* ------------------------------------------------------------------------ */

/* With --cache-ttl 0 nothing is reused: each change shows at the very next
 * request, files and listings alike. */
Test(http_cache, ttl_0_shows_changes_at_once, .timeout = TIMEOUT)
{
    make_dirs();
    put("a.txt", "A0");
    serve("0");
    struct resp r;
    char body[16], name[32];
    for (int i = 1; i <= 5; i++) {
        get("/a.txt", NULL, &r);
        snprintf(body, sizeof body, "A%d", i - 1);
        ts_assert(r.code == 200 && strcmp(r.body, body) == 0, "round %d: %d \"%s\", expected "
                  "\"%s\"", i, r.code, r.body, body);
        snprintf(body, sizeof body, "A%d", i);
        overwrite("a.txt", body);
        get("/a.txt", NULL, &r);
        ts_assert(r.code == 200 && strcmp(r.body, body) == 0, "round %d: %d \"%s\" right "
                  "after the change, expected \"%s\"", i, r.code, r.body, body);

        get("/", NULL, &r);
        snprintf(name, sizeof name, "n%d.txt", i);
        ts_assert(r.code == 200 && !has_link(r.body, name), "round %d: listing: %d", i, r.code);
        put(name, "n");
        get("/", NULL, &r);
        ts_assert(r.code == 200 && has_link(r.body, name), "round %d: %s is not listed at the "
                  "next request:\n%s", i, name, r.body);
    }
}

/* While the old ETag may still be current, the answer to If-None-Match with
 * it is 304 (OLD); then 200 with the new body and a new ETag (NEW). */
struct etags {
    const char *old_etag, *new_body;
};

static enum state by_etag(const struct resp *r, const void *ctx)
{
    const struct etags *e = ctx;
    if (r->code == 304 && strcmp(r->etag, e->old_etag) == 0)
        return OLD;
    if (r->code == 200 && strcmp(r->body, e->new_body) == 0 && r->etag[0] &&
        strcmp(r->etag, e->old_etag) != 0)
        return NEW;
    return NEITHER;
}

Test(http_cache, etag_follows_the_content, .timeout = TIMEOUT)
{
    make_dirs();
    put("e.txt", "AAAA");
    serve(TTL_ARG);
    struct resp r;
    int64_t cached = ts_now_ms();
    get("/e.txt", NULL, &r);
    ts_assert(r.code == 200 && strcmp(r.body, "AAAA") == 0 && r.etag[0], "GET: %d, ETag %s",
              r.code, r.etag);
    char old[128];
    snprintf(old, sizeof old, "%s", r.etag);
    get("/e.txt", old, &r);
    ts_assert(r.code == 304 && strcmp(r.etag, old) == 0, "If-None-Match with the current ETag: "
              "%d, ETag %s (sent %s)", r.code, r.etag, old);

    overwrite("e.txt", "BBBB");
    struct etags e = {old, "BBBB"};
    watch("/e.txt", old, cached, ts_now_ms(), by_etag, &e, "If-None-Match with the old ETag");

    /* The new ETag is current now: plain GETs show it, and it validates. */
    get("/e.txt", NULL, &r);
    ts_assert(r.code == 200 && strcmp(r.body, "BBBB") == 0 && strcmp(r.etag, old) != 0,
              "GET: %d \"%s\", ETag %s (old %s)", r.code, r.body, r.etag, old);
    char cur[128];
    snprintf(cur, sizeof cur, "%s", r.etag);
    get("/e.txt", cur, &r);
    ts_assert(r.code == 304 && strcmp(r.etag, cur) == 0, "If-None-Match with the new ETag: %d, "
              "ETag %s (sent %s)", r.code, r.etag, cur);
}
