/* test_http_cache.c — the per-worker cache of small files and listings serves a change within --cache-ttl, never older, never mixed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_support.h"

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
 * The cache's promise (src/static/cache.h): an entry is used as it is for at
 * most the TTL after it was last checked; then a file is checked again
 * (device, inode, size, ns mtime) and a listing made again. So after a
 * change, the old content may be served for at most the TTL, then only the
 * new one. One worker (-w 1) means one cache, so every request sees it.
 *
 * Every wait below is bounded: the change must show within TTL + SLACK_MS.
 *
 * The tree is hs_tree's: hs_root, and hs_tmp as the stage of files to
 * rename into the root (the same file system).
 */
static int port;

TestSuite(static_cache, .fini = hs_cleanup);

/* ---- files ---- */

/* Write rel (relative to the root) with the old mtime. */
static void put(const char *rel, const char *text)
{
    hs_put_text(rel, text);
    hs_set_mtime(rel, OLD_MTIME);
}

/* Overwrite the start of a file in place with text of the same length: no
 * truncation, so a reader sees the old bytes or the new ones. */
static void overwrite(const char *name, const char *text)
{
    char path[512];
    hs_path(name, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text), "pwrite %s", path);
    close(fd);
}

static void serve(const char *ttl)
{
    port = HS_SERVE(NULL, "-w", "1", "--cache-ttl", ttl, hs_root);
}

/* ---- one request ---- */

struct resp {
    int code;
    char etag[128]; /* "" when absent */
    char body[65536];
    size_t len;
};

/* GET path on a new connection (If-None-Match: inm unless NULL), and split
 * the answer; its framing must be right. */
static void get(const char *path, const char *inm, struct resp *r)
{
    char req[1024], cl[32];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s\r\n",
                     path, inm ? "If-None-Match: " : "", inm ? inm : "", inm ? "\r\n" : "");
    size_t len;
    char *raw = hs_exchange(port, req, (size_t)n, &len);
    char *end = strstr(raw, "\r\n\r\n");
    ts_assert(end && strncmp(raw, "HTTP/1.1 ", 9) == 0, "GET %s: not a response:\n%s", path, raw);
    end[2] = '\0'; /* the head, with its last CRLF */
    r->code = atoi(raw + 9);
    if (!hs_field(raw, "ETag", r->etag, sizeof r->etag))
        r->etag[0] = '\0';
    r->len = len - (size_t)(end + 4 - raw);
    ts_assert(r->len < sizeof r->body, "GET %s: a body of more than %zu bytes", path,
              sizeof r->body - 1);
    memcpy(r->body, end + 4, r->len);
    r->body[r->len] = '\0';
    bool has_cl = hs_field(raw, "Content-Length", cl, sizeof cl);
    ts_assert(r->code == 304 ? r->len == 0 : has_cl && strtoul(cl, NULL, 10) == r->len,
              "GET %s: %d with a body of %zu bytes, Content-Length %s", path, r->code, r->len,
              has_cl ? cl : "absent");
    free(raw);
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

Test(static_cache, changed_in_place, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
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
Test(static_cache, replaced_by_rename, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    put("b.txt", "AAAA");
    put("../tmp/b.txt", "CCCC");
    serve(TTL_ARG);
    int64_t cached = cache_it("/b.txt", "AAAA");
    char from[512], to[512];
    hs_path("../tmp/b.txt", from, sizeof from);
    hs_path("b.txt", to, sizeof to);
    cr_assert_eq(rename(from, to), 0, "rename: %s", strerror(errno));
    int64_t changed = ts_now_ms();
    struct bodies b = {"AAAA", "CCCC"};
    watch("/b.txt", NULL, cached, changed, by_body, &b, "replaced by rename(2)");
}

Test(static_cache, deleted, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
    put("c.txt", "AAAA");
    serve(TTL_ARG);
    int64_t cached = cache_it("/c.txt", "AAAA");
    char path[512];
    hs_path("c.txt", path, sizeof path);
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

Test(static_cache, listing_gains_and_loses_an_entry, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
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
    hs_path("new.txt", path, sizeof path);
    cr_assert_eq(unlink(path), 0, "unlink: %s", strerror(errno));
    struct entry_change loss = {"new.txt", true};
    watch("/", NULL, -1, ts_now_ms(), by_entry, &loss, "listing after a delete");
}

/* ------------------------------------------------------------------------ */
/* No cache, and validators                                                 */
/* ------------------------------------------------------------------------ */

/* With --cache-ttl 0 nothing is reused: each change shows at the very next
 * request, files and listings alike. */
Test(static_cache, ttl_0_shows_changes_at_once, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
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

Test(static_cache, etag_follows_the_content, .timeout = TIMEOUT)
{
    hs_tree("pf-http");
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
