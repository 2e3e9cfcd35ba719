/* test_http_encoding.c — content codings of `prefork serve`: precompressed FILE.br, .zst and .gz chosen by Accept-Encoding, and the server's own gzip and br. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_support.h"

#define TIMEOUT 60     /* every Test: one value per program (Criterion 2.4 under ASan) */
#define TOOL_MS 20000  /* one run of gzip -d or brotli -d */
#define TTL 100        /* --cache-ttl of the tests that change files, ms */
#define TTL_ARG "100"
#define SLACK_MS 5000  /* on top of the TTL: a slow machine under ASan */
#define POLL_MS 30     /* between two requests while waiting for a change */
#define HOLD_MS 600    /* how long a new state must then last */
#define GZIP "/usr/bin/gzip"
#define BROTLI "/usr/bin/brotli"

/* 2020-01-02 03:04:05 UTC: the mtime files start with, so that a variant
 * can be made older or newer than its original by whole seconds. */
#define T0 1577934245

/*
 * Each test builds a fresh tree (hs_tree): hs_root is the document root,
 * hs_tmp holds what must stay out of it (the targets of symlinks that
 * leave the root, bodies handed to the decoders). Servers run with one
 * worker (-w 1), so one cache sees every request, and without access log.
 *
 * The codings are named here in the server's order of preference on a tie
 * (br, zstd, gzip, then identity); ID is identity, no Content-Encoding.
 */
enum { ID, BR, ZSTD, GZ, NCODINGS };

static const char *const coding_name[NCODINGS] = {"identity", "br", "zstd", "gzip"};
static const char *const suffix[NCODINGS] = {"", ".br", ".zst", ".gz"};

static int port;

TestSuite(encoding, .fini = hs_cleanup);

/* ---- the server ---- */

/* `prefork serve ROOT -w 1 --access-log off ARGS...`, the ARGS ended by NULL. */
static void serve(const char *arg, ...)
{
    const char *args[32] = {hs_root, "-w", "1", "--access-log", "off"};
    int n = 5;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a; a = va_arg(ap, const char *)) {
        cr_assert_lt(n, 30, "too many arguments");
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    port = hs_serve(NULL, args);
}

/* ---- files ---- */

static void set_mtime_ns(const char *rel, time_t sec, long nsec)
{
    char path[1024];
    hs_path(rel, path, sizeof path);
    struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0, "utimensat %s: %s",
                 path, strerror(errno));
}

/* rel with n bytes of data, its mtime T0 + dt seconds. */
static void put_at(const char *rel, const void *data, size_t n, int dt)
{
    hs_put_file(rel, data, n);
    hs_set_mtime(rel, T0 + dt);
}

/* The bytes a test file holds in coding c: they tell which file of which
 * coding was sent, and their lengths differ. They are not really coded:
 * the server sends a variant's bytes as they are. */
static size_t bytes_of(const char *name, int c, char *out, size_t size)
{
    static const int lines[NCODINGS] = {40, 3, 4, 5};
    size_t n = 0;
    for (int i = 0; i < lines[c]; i++)
        n += (size_t)snprintf(out + n, size - n, "%s bytes of %s, line %d\n", coding_name[c],
                              name, i);
    cr_assert_lt(n, size, "buffer too small");
    return n;
}

/* name, and name.br (.zst, .gz) for each coding in have, all with mtime T0
 * (the same second: each variant is current). */
static void put_set(const char *name, unsigned have)
{
    char rel[256], data[4096];
    for (int c = ID; c < NCODINGS; c++) {
        if (c != ID && !(have & 1u << c))
            continue;
        snprintf(rel, sizeof rel, "%s%s", name, suffix[c]);
        put_at(rel, data, bytes_of(name, c, data, sizeof data), 0);
    }
}

/* n bytes of text that compresses (words of a small dictionary, picked
 * by xorshift from seed) into out[n + 1], NUL-terminated. */
static void make_text(char *out, size_t n, uint64_t seed)
{
    static const char *const words[] = {"alpha", "beta", "gamma", "static", "prefork",
                                        "worker", "coding", "brotli", "gzip", "request",
                                        "field", "range", "cache", "vary", "{", "};"};
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t i = 0;
    while (i < n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (const char *w = words[x % 16]; *w && i < n; w++)
            out[i++] = *w;
        if (i < n)
            out[i++] = (x >> 20) % 9 ? ' ' : '\n';
    }
    out[n] = '\0';
}

/* A new text file rel of n bytes (mtime T0 + dt); the text in a buffer the
 * caller frees. */
static char *put_text_file(const char *rel, size_t n, uint64_t seed, int dt)
{
    char *text = malloc(n + 1);
    cr_assert_not_null(text);
    make_text(text, n, seed);
    put_at(rel, text, n, dt);
    return text;
}

/* ---- one exchange ---- */

struct resp {
    int status;
    char head[4096];
    const char *body; /* into raw */
    size_t len;
    char *raw;        /* the whole response (freed by the next fetch, or resp_free) */
};

static void resp_free(struct resp *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* method path on a new connection, with the request fields fields (each
 * ended by CRLF, or NULL); the answer must be one whole response, framed
 * right, and nothing after it. */
static void fetch(const char *method, const char *path, const char *fields, struct resp *r)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", method,
                     path, fields ? fields : "");
    cr_assert(n > 0 && (size_t)n < sizeof req);
    resp_free(r);
    size_t len;
    r->raw = hs_exchange(port, req, (size_t)n, &len);
    struct hs_resp h;
    long used = hs_parse_resp(r->raw, len, strcmp(method, "HEAD") == 0, &h);
    ts_assert(used > 0, "%s %s [%s]: not a whole response: %s", method, path,
              fields ? hs_shown(fields, strlen(fields)) : "", hs_shown(r->raw, len));
    ts_assert((size_t)used == len, "%s %s: %zu bytes after the response (Content-Length "
              "wrong, or a body to HEAD or 304):\n%s", method, path, len - (size_t)used, h.head);
    r->status = h.status;
    memcpy(r->head, h.head, sizeof r->head);
    r->body = h.body;
    r->len = h.body_len;
}

/* GET path with Accept-Encoding: ae (none when ae is NULL) and the fields
 * more (or NULL). */
static void get_ae(const char *path, const char *ae, const char *more, struct resp *r)
{
    char fields[1024];
    snprintf(fields, sizeof fields, "%s%s%s%s", ae ? "Accept-Encoding: " : "", ae ? ae : "",
             ae ? "\r\n" : "", more ? more : "");
    fetch("GET", path, fields, r);
}

/* The value of a field of r's head, or NULL (one of 8 static buffers). */
static const char *field(const struct resp *r, const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    return hs_field(r->head, name, b, sizeof bufs[0]);
}

/* The coding r was sent in: its Content-Encoding, ID without one; -1 for
 * one this test does not know. */
static int coding_of(const struct resp *r)
{
    const char *ce = field(r, "Content-Encoding");
    if (!ce)
        return ID;
    for (int c = BR; c < NCODINGS; c++)
        if (strcmp(ce, coding_name[c]) == 0)
            return c;
    return -1;
}

static const char *or_else(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static const char *shown_ae(const char *ae)
{
    return ae ? ae : "(none)";
}

/* r is a 200 in coding c whose body is want[0..n), with Vary. */
static void expect_200(const struct resp *r, const char *what, int c, const void *want, size_t n)
{
    const char *ce = field(r, "Content-Encoding");
    ts_assert(r->status == 200, "%s: status %d:\n%s", what, r->status, r->head);
    ts_assert(coding_of(r) == c, "%s: Content-Encoding %s, expected %s:\n%s", what,
              ce ? ce : "(none)", c == ID ? "(none)" : coding_name[c], r->head);
    ts_assert(r->len == n && memcmp(r->body, want, n) == 0,
              "%s: %zu bytes [%s], expected the %zu bytes of the %s file", what, r->len,
              hs_shown(r->body, r->len), n, coding_name[c]);
    const char *vary = field(r, "Vary");
    ts_assert(vary && strcmp(vary, "Accept-Encoding") == 0, "%s: Vary %s", what,
              vary ? vary : "absent");
}

/* ---- decoding what the server compressed ---- */

/* Decode a body with gzip -dc or brotli -dc (tool): the text (the caller
 * frees it). The tests' texts hold no NUL, so its length is strlen's. */
static char *decode(const char *tool, const struct resp *r)
{
    static int count;
    char rel[64], path[1024];
    snprintf(rel, sizeof rel, "../tmp/coded-%d", count++);
    hs_path(rel, path, sizeof path);
    hs_put_file(rel, r->body, r->len);
    ts_assert(access(tool, X_OK) == 0, "%s is not installed (tests/deps.sh)", tool);
    char *out, *err;
    int st = hs_run((const char *const[]){tool, "-dc", path, NULL}, TOOL_MS, &out, &err);
    ts_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "%s -dc of the %zu-byte body failed (status 0x%x): %s", tool, r->len, st, err);
    free(err);
    unlink(path);
    return out;
}

static const char *tool_of(int c)
{
    return c == GZ ? GZIP : BROTLI;
}

/* r is a 200 in coding c (gzip or br, made by the server): smaller than
 * text, and decoding to it. */
static void expect_made(const struct resp *r, const char *what, int c, const char *text)
{
    size_t n = strlen(text);
    ts_assert(r->status == 200 && coding_of(r) == c, "%s: %d, Content-Encoding %s, expected "
              "%s:\n%s", what, r->status, or_else(field(r, "Content-Encoding"), "(none)"),
              coding_name[c], r->head);
    ts_assert(r->len > 0 && r->len < n, "%s: %zu bytes for a text of %zu", what, r->len, n);
    char *plain = decode(tool_of(c), r);
    ts_assert(strlen(plain) == n && memcmp(plain, text, n) == 0,
              "%s: decodes to %zu bytes that are not the file's %zu", what, strlen(plain), n);
    free(plain);
    const char *vary = field(r, "Vary");
    ts_assert(vary && strcmp(vary, "Accept-Encoding") == 0, "%s: Vary %s", what,
              vary ? vary : "absent");
}

/* ---- waiting ---- */

static void nap(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------------ */
/* Which coding: every set of variants against many Accept-Encoding values  */
/* ------------------------------------------------------------------------ */

/* The sets of variants beside a file. */
static const struct {
    const char *name;
    unsigned have;
} sets[] = {
    {"none", 0},
    {"gz", 1u << GZ},
    {"br", 1u << BR},
    {"zst", 1u << ZSTD},
    {"gzbr", 1u << GZ | 1u << BR},
    {"all", 1u << GZ | 1u << BR | 1u << ZSTD},
};
#define NSETS (sizeof sets / sizeof sets[0])

/* An Accept-Encoding value (NULL: no field) and the weight it gives each
 * coding, in thousandths, worked out by hand from RFC 9110 12.5.3:
 * identity is acceptable unless excluded, "*" is every coding not named,
 * q=0 is "not acceptable", names are case-insensitive, x-gzip is gzip;
 * identity left unnamed (without "*") weighs the least, one thousandth. */
static const struct {
    const char *ae;
    int q[NCODINGS]; /* ID, BR, ZSTD, GZ */
} accepts[] = {
    {NULL, {1000, 0, 0, 0}},
    {"", {1, 0, 0, 0}},
    {"gzip", {1, 0, 0, 1000}},
    {"br", {1, 1000, 0, 0}},
    {"zstd", {1, 0, 1000, 0}},
    {"gzip, br", {1, 1000, 0, 1000}},
    {"br;q=0.5, gzip", {1, 500, 0, 1000}},
    {"gzip;q=0", {1, 0, 0, 0}},
    {"gzip;q=0.5", {1, 0, 0, 500}},
    {"*", {1000, 1000, 1000, 1000}},
    {"*;q=0", {0, 0, 0, 0}},
    {"identity;q=0", {0, 0, 0, 0}},
    {"*;q=0, identity", {1000, 0, 0, 0}},
    {"br;q=0, *;q=0.1", {100, 0, 100, 100}},
    {"gzip;q=0.8, zstd;q=0.9, br;q=0.7, identity;q=0.1", {100, 700, 900, 800}},
    {"identity;q=0.5, gzip;q=0.4", {500, 0, 0, 400}},
    {"br;q=0.2, gzip;q=0.2, identity;q=0.1", {100, 200, 0, 200}},
    {"zstd;q=1.000, br;q=0.999", {1, 999, 1000, 0}},
    {"GZIP", {1, 0, 0, 1000}},
    {"x-gzip", {1, 0, 0, 1000}},
    {"deflate, compress", {1, 0, 0, 0}},
    {" br ; q=1 ,gzip;q=0.3", {1, 1000, 0, 300}},
    {"gzip, deflate, br, zstd", {1, 1000, 1000, 1000}},
};
#define NACCEPTS (sizeof accepts / sizeof accepts[0])

/* The promised pick: the highest weight among identity and the codings
 * present, ties to br, zstd, gzip, then identity; identity when nothing
 * is acceptable (no 406). */
static int expected_coding(const int q[NCODINGS], unsigned have)
{
    static const int order[] = {BR, ZSTD, GZ, ID};
    int best = -1;
    for (int k = 0; k < 4; k++) {
        int c = order[k];
        if (q[c] > 0 && (c == ID || (have & 1u << c)) && (best < 0 || q[c] > q[best]))
            best = c;
    }
    return best < 0 ? ID : best;
}

/* Every set (as ext files: "none.png", "gz.png" and "gz.png.gz"...)
 * against every value, twice: the first pass finds what the second reads
 * from the cache. */
static void matrix(const char *ext, const char *type)
{
    char name[64], path[80], data[4096], what[256];
    struct resp r = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t s = 0; s < NSETS; s++) {
            snprintf(name, sizeof name, "%s%s", sets[s].name, ext);
            snprintf(path, sizeof path, "/%s", name);
            for (size_t a = 0; a < NACCEPTS; a++) {
                int want = expected_coding(accepts[a].q, sets[s].have);
                size_t n = bytes_of(name, want, data, sizeof data);
                get_ae(path, accepts[a].ae, NULL, &r);
                snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: %s", pass, path,
                         shown_ae(accepts[a].ae));
                expect_200(&r, what, want, data, n);
                const char *ct = field(&r, "Content-Type");
                ts_assert(ct && strcmp(ct, type) == 0, "%s: Content-Type %s, expected the "
                          "original's %s", what, ct ? ct : "absent", type);
            }
        }
    }
    resp_free(&r);
}

static void put_sets(const char *ext)
{
    char name[64];
    for (size_t s = 0; s < NSETS; s++) {
        snprintf(name, sizeof name, "%s%s", sets[s].name, ext);
        put_set(name, sets[s].have);
    }
}

/* An image: the server never compresses it, so only the files count. */
Test(encoding, pick_among_variants, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_sets(".png");
    serve(NULL);
    matrix(".png", "image/png");
}

/* The same with no cache at all: each variant is opened and sent from its
 * file every time. */
Test(encoding, pick_among_variants_without_cache, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_sets(".png");
    serve("--cache-size", "0", NULL);
    matrix(".png", "image/png");
}

/* Text with --no-compress: only the variants there are, as for an image. */
Test(encoding, pick_among_variants_of_text, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_sets(".js");
    serve("--no-compress", NULL);
    matrix(".js", "text/javascript; charset=utf-8");
}

/* A few of the picks spelled out, so that a slip in the model above and
 * the server's would not hide each other. */
Test(encoding, picks_spelled_out, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_sets(".png");
    serve(NULL);
    static const struct {
        const char *path, *ae;
        int want;
    } cases[] = {
        {"/all.png", "*", BR},
        {"/all.png", "gzip, zstd", ZSTD},
        {"/all.png", "br;q=0.5, gzip", GZ},
        {"/all.png", "br;q=0, *;q=0.1", ZSTD},
        {"/gzbr.png", "br;q=0, *;q=0.1", GZ},
        {"/gzbr.png", "zstd", ID},
        {"/zst.png", "gzip, br", ID},
        {"/br.png", "identity;q=0", ID},
        {"/none.png", "*;q=0", ID},
        {"/all.png", "identity;q=0.5, gzip;q=0.4", ID},
        {"/all.png", NULL, ID},
    };
    struct resp r = {0};
    char data[4096], what[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        get_ae(cases[i].path, cases[i].ae, NULL, &r);
        snprintf(what, sizeof what, "GET %s, Accept-Encoding: %s", cases[i].path,
                 shown_ae(cases[i].ae));
        expect_200(&r, what, cases[i].want, data,
                   bytes_of(cases[i].path + 1, cases[i].want, data, sizeof data));
    }
    resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* HEAD, ranges and conditionals on a variant                               */
/* ------------------------------------------------------------------------ */

/* HEAD answers with the fields GET does, and no body. */
Test(encoding, head_is_get_without_body, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("all.png", 1u << GZ | 1u << BR | 1u << ZSTD);
    char big[100000];
    ts_fill(big, sizeof big, 7);
    put_at("big.png", big, sizeof big, 0);
    put_at("big.png.br", big, sizeof big - 1000, 0); /* sent from its file, never cached */
    serve(NULL);
    static const char *const fields[] = {"Content-Type", "Content-Length", "Content-Encoding",
                                         "ETag", "Last-Modified", "Vary", "Accept-Ranges"};
    static const char *const aes[] = {NULL, "br", "zstd", "gzip"};
    static const char *const paths[] = {"/all.png", "/big.png"};
    struct resp g = {0}, h = {0};
    for (size_t p = 0; p < 2; p++) {
        for (int c = ID; c < NCODINGS; c++) {
            char fields_ae[128];
            snprintf(fields_ae, sizeof fields_ae, "%s%s%s", aes[c] ? "Accept-Encoding: " : "",
                     aes[c] ? aes[c] : "", aes[c] ? "\r\n" : "");
            fetch("GET", paths[p], fields_ae, &g);
            fetch("HEAD", paths[p], fields_ae, &h);
            ts_assert(g.status == 200 && h.status == 200, "%s %s: GET %d, HEAD %d", paths[p],
                      shown_ae(aes[c]), g.status, h.status);
            if (p == 0 || c == ID || c == BR)
                ts_assert(coding_of(&g) == c, "GET %s, Accept-Encoding %s: Content-Encoding "
                          "%s", paths[p], shown_ae(aes[c]), field(&g, "Content-Encoding"));
            for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
                const char *gv = field(&g, fields[f]), *hv = field(&h, fields[f]);
                bool needed = strcmp(fields[f], "Content-Encoding") != 0 || coding_of(&g) != ID;
                ts_assert(!needed || gv, "GET %s (%s): no %s", paths[p], shown_ae(aes[c]),
                          fields[f]);
                ts_assert((!gv && !hv) || (gv && hv && strcmp(gv, hv) == 0),
                          "%s %s: GET has %s: %s, HEAD has %s", paths[p], shown_ae(aes[c]),
                          fields[f], gv ? gv : "(none)", hv ? hv : "(none)");
            }
            ts_assert(h.len == 0, "HEAD with a body");
            ts_assert(strtoul(field(&h, "Content-Length"), NULL, 10) == g.len,
                      "HEAD %s: Content-Length %s, GET sent %zu bytes", paths[p],
                      field(&h, "Content-Length"), g.len);
        }
    }
    resp_free(&g);
    resp_free(&h);
}

/* What a range of the variant must be: 206, the slice of the variant's
 * bytes, Content-Range over its size, Content-Encoding. */
static void expect_range(const char *path, const char *ae, int c, const char *range,
                         const char *data, size_t size, size_t first, size_t last)
{
    char more[256], want_cr[96], what[256];
    struct resp r = {0};
    snprintf(more, sizeof more, "Range: %s\r\n", range);
    snprintf(want_cr, sizeof want_cr, "bytes %zu-%zu/%zu", first, last, size);
    snprintf(what, sizeof what, "GET %s, Accept-Encoding: %s, Range: %s", path, ae, range);
    get_ae(path, ae, more, &r);
    const char *cr = field(&r, "Content-Range");
    ts_assert(r.status == 206, "%s: %d, expected 206:\n%s", what, r.status, r.head);
    ts_assert(cr && strcmp(cr, want_cr) == 0, "%s: Content-Range %s, expected %s (over the "
              "variant)", what, cr ? cr : "absent", want_cr);
    ts_assert(coding_of(&r) == c, "%s: Content-Encoding %s", what,
              or_else(field(&r, "Content-Encoding"), "(none)"));
    ts_assert(r.len == last - first + 1 && memcmp(r.body, data + first, r.len) == 0,
              "%s: %zu bytes, not the variant's bytes %zu-%zu", what, r.len, first, last);
    ts_assert(field(&r, "Vary") != NULL, "%s: no Vary", what);
    resp_free(&r);
}

static void ranges_of(const char *path, const char *ae, int c, const char *data, size_t size,
                      size_t orig_size)
{
    char range[64], more[256], what[512];
    struct resp r = {0};
    expect_range(path, ae, c, "bytes=2-9", data, size, 2, 9);
    expect_range(path, ae, c, "bytes=-5", data, size, size - 5, size - 1);
    snprintf(range, sizeof range, "bytes=%zu-", size - 3);
    expect_range(path, ae, c, range, data, size, size - 3, size - 1);
    /* Past the end of the variant, within the original: not satisfiable. */
    snprintf(range, sizeof range, "bytes=%zu-%zu", size + 1, orig_size - 1);
    snprintf(more, sizeof more, "Range: %s\r\n", range);
    snprintf(what, sizeof what, "GET %s, Accept-Encoding: %s, Range: %s (the variant has %zu "
             "bytes, the original %zu)", path, ae, range, size, orig_size);
    get_ae(path, ae, more, &r);
    char want_cr[64];
    snprintf(want_cr, sizeof want_cr, "bytes */%zu", size);
    ts_assert(r.status == 416, "%s: %d, expected 416", what, r.status);
    ts_assert(field(&r, "Content-Range") && strcmp(field(&r, "Content-Range"), want_cr) == 0,
              "%s: Content-Range %s, expected %s", what, field(&r, "Content-Range"), want_cr);

    /* If-Range with the variant's validator: the range; with the
     * original's (another representation): the whole variant. */
    get_ae(path, ae, NULL, &r);
    char vtag[128], otag[128];
    snprintf(vtag, sizeof vtag, "%s", field(&r, "ETag"));
    get_ae(path, NULL, NULL, &r);
    snprintf(otag, sizeof otag, "%s", field(&r, "ETag"));
    snprintf(more, sizeof more, "Range: bytes=0-3\r\nIf-Range: %s\r\n", vtag);
    get_ae(path, ae, more, &r);
    ts_assert(r.status == 206 && r.len == 4 && memcmp(r.body, data, 4) == 0 &&
                  coding_of(&r) == c,
              "GET %s, %s, Range with If-Range: its ETag %s: %d, %zu bytes", path, ae, vtag,
              r.status, r.len);
    snprintf(more, sizeof more, "Range: bytes=0-3\r\nIf-Range: %s\r\n", otag);
    get_ae(path, ae, more, &r);
    snprintf(what, sizeof what, "GET %s, Accept-Encoding: %s, Range with If-Range: %s (the "
             "identity ETag; the variant's is %s)", path, ae, otag, vtag);
    expect_200(&r, what, c, data, size);
    resp_free(&r);
}

Test(encoding, range_of_a_variant, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char data[4096], orig[4096];
    put_set("all.png", 1u << GZ | 1u << BR | 1u << ZSTD);
    size_t on = bytes_of("all.png", ID, orig, sizeof orig);
    /* And a variant too big for the cache, sent from its file. */
    static char big[200000], bigbr[150000];
    ts_fill(big, sizeof big, 1);
    ts_fill(bigbr, sizeof bigbr, 2);
    put_at("big.png", big, sizeof big, 0);
    put_at("big.png.br", bigbr, sizeof bigbr, 0);
    serve(NULL);
    /* A small variant (cached) in each coding. */
    for (int c = BR; c < NCODINGS; c++) {
        size_t n = bytes_of("all.png", c, data, sizeof data);
        ranges_of("/all.png", coding_name[c], c, data, n, on);
    }
    ranges_of("/big.png", "br", BR, bigbr, sizeof bigbr, sizeof big);
}

/* The ETag of r, copied. */
static void etag_of(const struct resp *r, char *out, size_t size, const char *what)
{
    const char *e = field(r, "ETag");
    ts_assert(e && e[0] == '"', "%s: ETag %s", what, e ? e : "absent");
    snprintf(out, size, "%s", e);
}

Test(encoding, conditionals_on_a_variant, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("all.png", 1u << GZ | 1u << BR | 1u << ZSTD);
    serve(NULL);
    static const char *const aes[NCODINGS] = {NULL, "br", "zstd", "gzip"};
    char tags[NCODINGS][128], more[256], what[256];
    struct resp r = {0};
    for (int c = ID; c < NCODINGS; c++) {
        get_ae("/all.png", aes[c], NULL, &r);
        ts_assert(r.status == 200 && coding_of(&r) == c, "GET %s: %d, coding %d", aes[c],
                  r.status, coding_of(&r));
        etag_of(&r, tags[c], sizeof tags[c], "GET /all.png");
        for (int d = ID; d < c; d++)
            ts_assert(strcmp(tags[c], tags[d]) != 0, "%s and %s have the same ETag %s",
                      coding_name[c], coding_name[d], tags[c]);
    }
    for (int c = ID; c < NCODINGS; c++) {
        /* Its own ETag: 304, with the ETag and Vary, no body. */
        snprintf(more, sizeof more, "If-None-Match: %s\r\n", tags[c]);
        get_ae("/all.png", aes[c], more, &r);
        snprintf(what, sizeof what, "Accept-Encoding %s, If-None-Match: %s", shown_ae(aes[c]),
                 tags[c]);
        ts_assert(r.status == 304, "%s: %d, expected 304", what, r.status);
        ts_assert(field(&r, "ETag") && strcmp(field(&r, "ETag"), tags[c]) == 0,
                  "%s: 304 with ETag %s", what, field(&r, "ETag"));
        ts_assert(field(&r, "Vary") && strcmp(field(&r, "Vary"), "Accept-Encoding") == 0,
                  "%s: 304 with Vary %s", what, field(&r, "Vary"));
        ts_assert(r.len == 0, "%s: a body", what);
        /* Another coding's ETag: the whole of this one. */
        int other = (c + 1) % NCODINGS;
        char data[4096];
        snprintf(more, sizeof more, "If-None-Match: %s\r\n", tags[other]);
        get_ae("/all.png", aes[c], more, &r);
        snprintf(what, sizeof what, "Accept-Encoding %s, If-None-Match: %s (the %s ETag)",
                 shown_ae(aes[c]), tags[other], coding_name[other]);
        expect_200(&r, what, c, data, bytes_of("all.png", c, data, sizeof data));
        /* If-Match with its ETag: 200; with another's: 412. */
        snprintf(more, sizeof more, "If-Match: %s\r\n", tags[c]);
        get_ae("/all.png", aes[c], more, &r);
        ts_assert(r.status == 200 && coding_of(&r) == c, "%s, If-Match its own ETag: %d",
                  shown_ae(aes[c]), r.status);
        snprintf(more, sizeof more, "If-Match: %s\r\n", tags[other]);
        get_ae("/all.png", aes[c], more, &r);
        ts_assert(r.status == 412, "%s, If-Match: the %s ETag: %d", shown_ae(aes[c]),
                  coding_name[other], r.status);
    }
    resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Which variant files count                                                */
/* ------------------------------------------------------------------------ */

/* GET path with ae must send coding c, the bytes of file name's coding c. */
static void expect_file(const char *path, const char *ae, int c, const char *why)
{
    char data[4096], what[256];
    struct resp r = {0};
    get_ae(path, ae, NULL, &r);
    snprintf(what, sizeof what, "GET %s, Accept-Encoding: %s (%s)", path, shown_ae(ae), why);
    expect_200(&r, what, c, data, bytes_of(path + 1, c, data, sizeof data));
    resp_free(&r);
}

/* A variant older than its original by a second or more is left from an
 * earlier build: never sent. Within the same second it is current. */
Test(encoding, stale_variants_are_not_sent, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("old.png", 1u << BR);
    hs_set_mtime("old.png.br", T0 - 3);
    put_set("older.png", 1u << BR);
    hs_set_mtime("older.png.br", T0 - 1);
    put_set("new.png", 1u << BR);
    hs_set_mtime("new.png.br", T0 + 3);
    /* Same second, fewer nanoseconds: not older in whole seconds. */
    put_set("same.png", 1u << BR);
    set_mtime_ns("same.png", T0, 900000000);
    set_mtime_ns("same.png.br", T0, 100000000);
    /* 0.2 s older but in the second before: older. */
    put_set("prev.png", 1u << BR);
    set_mtime_ns("prev.png", T0, 100000000);
    set_mtime_ns("prev.png.br", T0 - 1, 900000000);
    /* A stale br beside a current gzip: the gzip. */
    put_set("mixed.png", 1u << BR | 1u << GZ);
    hs_set_mtime("mixed.png.br", T0 - 5);
    serve(NULL);
    for (int pass = 0; pass < 2; pass++) {
        expect_file("/old.png", "br", ID, "the .br is 3 s older");
        expect_file("/older.png", "br", ID, "the .br is 1 s older");
        expect_file("/new.png", "br", BR, "the .br is newer");
        expect_file("/same.png", "br", BR, "the .br is older within the same second");
        expect_file("/prev.png", "br", ID, "the .br is 0.2 s older, in the second before");
        expect_file("/mixed.png", "br, gzip", GZ, "the .br is stale, the .gz current");
        expect_file("/mixed.png", "*", GZ, "the .br is stale, the .gz current");
    }
}

/* The original rewritten after its variant was sent: the variant, now
 * older, is no longer sent once the cache's bound passed; the new
 * original is. */
Test(encoding, variant_left_behind_by_a_new_original, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("r.png", 1u << BR);
    serve("--cache-ttl", TTL_ARG, NULL);
    expect_file("/r.png", "br", BR, "current");
    char text[64] = "the new original of r.png\n";
    put_at("r.png", text, strlen(text), 10);
    int64_t changed = ts_now_ms(), first_new = -1;
    struct resp r = {0};
    char data[4096];
    size_t n = bytes_of("r.png", BR, data, sizeof data);
    for (;;) {
        get_ae("/r.png", "br", NULL, &r);
        int64_t now = ts_now_ms();
        bool is_old = r.status == 200 && coding_of(&r) == BR && r.len == n &&
                      memcmp(r.body, data, n) == 0;
        bool is_new = r.status == 200 && coding_of(&r) == ID && r.len == strlen(text) &&
                      memcmp(r.body, text, r.len) == 0;
        ts_assert(is_old || is_new, "+%lld ms: neither the old .br nor the new original: %d "
                  "%s [%s]", (long long)(now - changed), r.status,
                  or_else(field(&r, "Content-Encoding"), ""), hs_shown(r.body, r.len));
        ts_assert(first_new < 0 || is_new, "the stale .br came back %lld ms after the new "
                  "original was sent", (long long)(now - first_new));
        ts_assert(is_new || now - changed < TTL + SLACK_MS, "the .br, now older than its "
                  "original, is still sent %lld ms after the change (--cache-ttl %d)",
                  (long long)(now - changed), TTL);
        if (is_new && first_new < 0)
            first_new = now;
        if (first_new >= 0 && now - first_new >= HOLD_MS)
            break;
        nap(POLL_MS);
    }
    resp_free(&r);
}

/* A variant that is a symlink leaving the root is refused like any such
 * file, unless --follow-symlinks; one staying inside is sent. */
static void put_links(void)
{
    char data[4096], target[1024], link[1024];
    put_set("out.png", 0);
    put_set("rel.png", 0);
    put_set("in.png", 0);
    /* The targets: bytes of the link's name, so the body tells it came. */
    put_at("../tmp/out.png.br", data, bytes_of("out.png", BR, data, sizeof data), 0);
    put_at("../tmp/rel.png.gz", data, bytes_of("rel.png", GZ, data, sizeof data), 0);
    hs_make_dir("sub");
    put_at("sub/in.br", data, bytes_of("in.png", BR, data, sizeof data), 0);
    hs_path("../tmp/out.png.br", target, sizeof target);
    hs_path("out.png.br", link, sizeof link);
    cr_assert_eq(symlink(target, link), 0, "symlink: %s", strerror(errno)); /* absolute */
    hs_path("rel.png.gz", link, sizeof link);
    cr_assert_eq(symlink("../tmp/rel.png.gz", link), 0, "symlink: %s", strerror(errno));
    hs_path("in.png.br", link, sizeof link);
    cr_assert_eq(symlink("sub/in.br", link), 0, "symlink: %s", strerror(errno));
}

Test(encoding, variant_symlinked_out_of_the_root, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_links();
    serve(NULL);
    for (int pass = 0; pass < 2; pass++) {
        expect_file("/out.png", "br", ID, "out.png.br is an absolute symlink out of the root");
        expect_file("/rel.png", "gzip", ID, "rel.png.gz is a relative symlink out of the root");
        expect_file("/rel.png", "gzip, br", ID, "rel.png.gz leaves the root");
        expect_file("/in.png", "br", BR, "in.png.br is a symlink inside the root");
    }
}

Test(encoding, variant_symlinked_out_with_follow_symlinks, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_links();
    serve("--follow-symlinks", NULL);
    for (int pass = 0; pass < 2; pass++) {
        expect_file("/out.png", "br", BR, "--follow-symlinks");
        expect_file("/rel.png", "gzip", GZ, "--follow-symlinks");
        expect_file("/in.png", "br", BR, "inside the root");
    }
}

/* Only a variant of a file that is there is ever sent; asked for by its
 * own name, a variant file is a file like any other. */
Test(encoding, variant_without_its_original, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char data[4096];
    size_t gz = bytes_of("x.js", GZ, data, sizeof data);
    put_at("x.js.gz", data, gz, 0);
    put_set("y.png.br", 0); /* only the variant */
    char *text = put_text_file("z.js", 3000, 5, 0); /* an original without variant */
    serve(NULL);
    struct resp r = {0};
    static const char *const aes[] = {NULL, "gzip", "br, gzip", "*"};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t a = 0; a < sizeof aes / sizeof aes[0]; a++) {
            get_ae("/x.js", aes[a], NULL, &r);
            ts_assert(r.status == 404, "GET /x.js (only x.js.gz), Accept-Encoding %s: %d, "
                      "expected 404:\n%s", shown_ae(aes[a]), r.status, r.head);
            get_ae("/y.png", aes[a], NULL, &r);
            ts_assert(r.status == 404, "GET /y.png (only y.png.br), Accept-Encoding %s: %d, "
                      "expected 404:\n%s", shown_ae(aes[a]), r.status, r.head);
            get_ae("/z.js.gz", aes[a], NULL, &r);
            ts_assert(r.status == 404, "GET /z.js.gz (z.js only), Accept-Encoding %s: %d",
                      shown_ae(aes[a]), r.status);

            /* x.js.gz itself: gzip data as it is, not a coding of x.js. */
            char what[128];
            snprintf(what, sizeof what, "GET /x.js.gz, Accept-Encoding %s", shown_ae(aes[a]));
            get_ae("/x.js.gz", aes[a], NULL, &r);
            ts_assert(r.status == 200 && coding_of(&r) == ID && r.len == gz &&
                          memcmp(r.body, data, gz) == 0,
                      "%s: %d, Content-Encoding %s, %zu bytes:\n%s", what, r.status,
                      or_else(field(&r, "Content-Encoding"), "(none)"), r.len, r.head);
            ts_assert(field(&r, "Content-Type") &&
                          strcmp(field(&r, "Content-Type"), "application/gzip") == 0,
                      "%s: Content-Type %s", what, field(&r, "Content-Type"));
            get_ae("/y.png.br", aes[a], NULL, &r);
            ts_assert(r.status == 200 && coding_of(&r) == ID, "GET /y.png.br, %s: %d, "
                      "Content-Encoding %s", shown_ae(aes[a]), r.status,
                      or_else(field(&r, "Content-Encoding"), "(none)"));
        }
    }
    resp_free(&r);
    free(text);
}

/* A directory, a FIFO or a dangling symlink named like a variant is not a
 * variant (and opening the FIFO must not hang the worker). */
Test(encoding, variant_that_is_not_a_regular_file, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char path[1024];
    put_set("d.png", 0);
    hs_make_dir("d.png.br");
    hs_path("d.png.gz", path, sizeof path);
    cr_assert_eq(mkfifo(path, 0644), 0, "mkfifo: %s", strerror(errno));
    hs_path("d.png.zst", path, sizeof path);
    cr_assert_eq(symlink("nowhere.zst", path), 0, "symlink: %s", strerror(errno));
    /* Text: with the FIFO ignored, the server compresses it itself. */
    char *text = put_text_file("t.js", 3000, 9, 0);
    hs_path("t.js.gz", path, sizeof path);
    cr_assert_eq(mkfifo(path, 0644), 0, "mkfifo: %s", strerror(errno));
    hs_make_dir("t.js.br");
    serve(NULL);
    struct resp r = {0};
    for (int pass = 0; pass < 2; pass++) {
        expect_file("/d.png", "br", ID, "d.png.br is a directory");
        expect_file("/d.png", "gzip", ID, "d.png.gz is a FIFO");
        expect_file("/d.png", "zstd", ID, "d.png.zst is a dangling symlink");
        expect_file("/d.png", "*", ID, "none of the three is a file");
        get_ae("/t.js", "gzip", NULL, &r);
        expect_made(&r, "GET /t.js, gzip (t.js.gz is a FIFO)", GZ, text);
        get_ae("/t.js", "br", NULL, &r);
        expect_made(&r, "GET /t.js, br (t.js.br is a directory)", BR, text);
    }
    resp_free(&r);
    free(text);
}

/* Poll GET path (Accept-Encoding ae) until `is_new` holds, every answer
 * before being `is_old`; the new state must come within the TTL plus
 * slack and then last HOLD_MS. */
typedef bool state_fn(const struct resp *r, const void *ctx);

static void watch(const char *path, const char *ae, state_fn *is_old, state_fn *is_new,
                  const void *ctx, const char *what)
{
    int64_t changed = ts_now_ms(), first_new = -1;
    struct resp r = {0};
    for (;;) {
        get_ae(path, ae, NULL, &r);
        int64_t now = ts_now_ms();
        bool n = is_new(&r, ctx), o = !n && is_old(&r, ctx);
        ts_assert(n || o, "%s: +%lld ms: neither the old state nor the new: %d, "
                  "Content-Encoding %s, %zu bytes [%s]", what, (long long)(now - changed),
                  r.status, or_else(field(&r, "Content-Encoding"), "(none)"), r.len,
                  hs_shown(r.body, r.len));
        ts_assert(first_new < 0 || n, "%s: the old state came back %lld ms after the new one",
                  what, (long long)(now - first_new));
        ts_assert(n || now - changed < TTL + SLACK_MS, "%s: still the old state %lld ms "
                  "after the change (--cache-ttl %d)", what, (long long)(now - changed), TTL);
        if (n && first_new < 0) {
            first_new = now;
            cr_log_info("%s: new state after %lld ms", what, (long long)(now - changed));
        }
        if (first_new >= 0 && now - first_new >= HOLD_MS)
            break;
        nap(POLL_MS);
    }
    resp_free(&r);
}

/* The context of the states below: the file and the coding of a variant. */
struct file_state {
    const char *name;
    int c;
    const char *alt; /* other bytes the variant may hold now, or NULL */
};

static bool sends_identity(const struct resp *r, const void *ctx)
{
    const struct file_state *s = ctx;
    char data[4096];
    size_t n = bytes_of(s->name, ID, data, sizeof data);
    return r->status == 200 && coding_of(r) == ID && r->len == n && memcmp(r->body, data, n) == 0;
}

static bool sends_variant(const struct resp *r, const void *ctx)
{
    const struct file_state *s = ctx;
    char data[4096];
    size_t n = bytes_of(s->name, s->c, data, sizeof data);
    return r->status == 200 && coding_of(r) == s->c && r->len == n &&
           memcmp(r->body, data, n) == 0;
}

static bool sends_alt(const struct resp *r, const void *ctx)
{
    const struct file_state *s = ctx;
    size_t n = strlen(s->alt);
    return r->status == 200 && coding_of(r) == s->c && r->len == n &&
           memcmp(r->body, s->alt, n) == 0;
}

/* A variant added, rewritten or removed shows within the cache's bound. */
Test(encoding, variant_added_changed_removed, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("a.png", 0);
    serve("--cache-ttl", TTL_ARG, NULL);
    struct file_state s = {"a.png", BR, "the second a.png.br\n"};
    expect_file("/a.png", "br", ID, "no a.png.br yet");
    expect_file("/a.png", "br", ID, "no a.png.br yet, from the cache");

    char data[4096], path[1024];
    put_at("a.png.br", data, bytes_of("a.png", BR, data, sizeof data), 0);
    watch("/a.png", "br", sends_identity, sends_variant, &s, "a.png.br added");

    put_at("a.png.br", s.alt, strlen(s.alt), 1);
    watch("/a.png", "br", sends_variant, sends_alt, &s, "a.png.br rewritten");

    hs_path("a.png.br", path, sizeof path);
    cr_assert_eq(unlink(path), 0, "unlink: %s", strerror(errno));
    watch("/a.png", "br", sends_alt, sends_identity, &s, "a.png.br removed");
}

static bool is_404(const struct resp *r, const void *ctx)
{
    (void)ctx;
    return r->status == 404;
}

/* The original removed while its variant is in the cache: the variant
 * goes with it, within the cache's bound. */
Test(encoding, variant_goes_with_its_original, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("o.png", 1u << BR | 1u << GZ);
    serve("--cache-ttl", TTL_ARG, NULL);
    struct file_state br = {"o.png", BR, NULL}, gz = {"o.png", GZ, NULL};
    expect_file("/o.png", "br", BR, "both there");
    expect_file("/o.png", "gzip", GZ, "both there");
    char path[1024];
    hs_path("o.png", path, sizeof path);
    cr_assert_eq(unlink(path), 0, "unlink: %s", strerror(errno));
    watch("/o.png", "br", sends_variant, is_404, &br, "o.png removed, o.png.br left");
    watch("/o.png", "gzip", sends_variant, is_404, &gz, "o.png removed, o.png.gz left");
}

/* A directory's index has its variants too, under either name. */
Test(encoding, variant_of_an_index, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    hs_make_dir("d");
    put_set("d/index.html", 1u << BR | 1u << GZ);
    serve(NULL);
    char data[4096], what[128];
    struct resp r = {0};
    static const char *const paths[] = {"/d/", "/d/index.html"};
    for (int pass = 0; pass < 2; pass++) {
        for (int p = 0; p < 2; p++) {
            for (int c = ID; c < NCODINGS; c++) {
                if (c == ZSTD)
                    continue;
                snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: %s", pass,
                         paths[p], c == ID ? "(none)" : coding_name[c]);
                get_ae(paths[p], c == ID ? NULL : coding_name[c], NULL, &r);
                expect_200(&r, what, c, data, bytes_of("d/index.html", c, data, sizeof data));
            }
        }
    }
    resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Compressed by the server                                                 */
/* ------------------------------------------------------------------------ */

/* The codings the server makes itself. */
static const int made_codings[2] = {BR, GZ};

/* The identity ETag with the coding's name inside the quotes. */
static void made_etag(const char *etag, int c, char *out, size_t size)
{
    size_t n = strlen(etag);
    cr_assert(n >= 2 && etag[n - 1] == '"');
    snprintf(out, size, "%.*s-%s\"", (int)(n - 1), etag, coding_name[c]);
}

/* path holds text: check what is sent for it in every coding. */
static void check_made(const char *path, const char *text, const char *type)
{
    struct resp r = {0}, h = {0};
    char what[256], id_tag[128], tag[128], want[160], more[256];
    get_ae(path, NULL, NULL, &r);
    snprintf(what, sizeof what, "GET %s without Accept-Encoding", path);
    expect_200(&r, what, ID, text, strlen(text));
    ts_assert(strcmp(field(&r, "Content-Type"), type) == 0, "%s: Content-Type %s", what,
              field(&r, "Content-Type"));
    etag_of(&r, id_tag, sizeof id_tag, what);
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < 2; k++) {
            int c = made_codings[k];
            snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: %s", pass, path,
                     coding_name[c]);
            get_ae(path, coding_name[c], NULL, &r);
            expect_made(&r, what, c, text);
            etag_of(&r, tag, sizeof tag, what);
            made_etag(id_tag, c, want, sizeof want);
            ts_assert(strcmp(tag, want) == 0, "%s: ETag %s, expected %s", what, tag, want);
            ts_assert(strcmp(field(&r, "Content-Type"), type) == 0, "%s: Content-Type %s",
                      what, field(&r, "Content-Type"));
            /* HEAD: the same fields, no body. */
            fetch("HEAD", path, c == BR ? "Accept-Encoding: br\r\n" : "Accept-Encoding: gzip\r\n",
                  &h);
            ts_assert(h.status == 200 && coding_of(&h) == c && h.len == 0 &&
                          strtoul(or_else(field(&h, "Content-Length"), "0"), NULL, 10) == r.len &&
                          strcmp(or_else(field(&h, "ETag"), ""), tag) == 0,
                      "HEAD %s, %s: %d, Content-Length %s (GET: %zu), ETag %s", path,
                      coding_name[c], h.status, field(&h, "Content-Length"), r.len,
                      field(&h, "ETag"));
            /* Its ETag validates it: 304 with ETag and Vary. */
            snprintf(more, sizeof more, "If-None-Match: %s\r\n", tag);
            get_ae(path, coding_name[c], more, &r);
            ts_assert(r.status == 304 && strcmp(or_else(field(&r, "ETag"), ""), tag) == 0 &&
                          field(&r, "Vary"),
                      "%s, If-None-Match: %s: %d, ETag %s, Vary %s", what, tag, r.status,
                      field(&r, "ETag"), field(&r, "Vary"));
            /* ... and not the identity (nor the other way round). */
            snprintf(more, sizeof more, "If-None-Match: %s\r\n", id_tag);
            get_ae(path, coding_name[c], more, &r);
            ts_assert(r.status == 200 && coding_of(&r) == c, "%s, If-None-Match: %s (the "
                      "identity ETag): %d", what, id_tag, r.status);
            snprintf(more, sizeof more, "If-None-Match: %s\r\n", tag);
            get_ae(path, NULL, more, &r);
            ts_assert(r.status == 200 && coding_of(&r) == ID, "GET %s without Accept-Encoding, "
                      "If-None-Match: %s: %d", path, tag, r.status);
        }
        snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: gzip, br", pass, path);
        get_ae(path, "gzip, br", NULL, &r);
        expect_made(&r, what, BR, text);
        snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: *", pass, path);
        get_ae(path, "*", NULL, &r);
        expect_made(&r, what, BR, text);
        snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: br;q=0.5, gzip", pass,
                 path);
        get_ae(path, "br;q=0.5, gzip", NULL, &r);
        expect_made(&r, what, GZ, text);
        /* zstd is never made here; nor anything the client refuses. */
        static const char *const plain[] = {"zstd", "gzip;q=0, br;q=0", "identity;q=0, zstd",
                                            "*;q=0", "deflate"};
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
            snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: %s", pass, path,
                     plain[i]);
            get_ae(path, plain[i], NULL, &r);
            expect_200(&r, what, ID, text, strlen(text));
        }
    }
    resp_free(&r);
    resp_free(&h);
}

Test(encoding, compressed_here_decodes_to_the_file, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char *js = put_text_file("app.js", 5000, 1, 0);
    char *json = put_text_file("data.json", 1000, 2, 0);
    char *css = put_text_file("s.css", 256, 3, 0); /* the smallest compressed */
    char *svg = put_text_file("i.svg", 4000, 4, 0);
    /* Bigger than the cache takes a file (64 KiB): compressed from its fd. */
    char *big = put_text_file("big.txt", 300000, 5, 0);
    serve(NULL);
    check_made("/app.js", js, "text/javascript; charset=utf-8");
    check_made("/data.json", json, "application/json; charset=utf-8");
    check_made("/s.css", css, "text/css; charset=utf-8");
    check_made("/i.svg", svg, "image/svg+xml; charset=utf-8");
    check_made("/big.txt", big, "text/plain; charset=utf-8");
    free(js);
    free(json);
    free(css);
    free(svg);
    free(big);
}

/* A range is taken from the file as it is, whether the compressed whole
 * was made before or not. */
Test(encoding, range_gets_the_identity, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char *text = put_text_file("app.js", 5000, 11, 0);
    serve(NULL);
    struct resp r = {0};
    static const char *const aes[] = {"gzip", "br", "gzip, br", "*"};
    for (int pass = 0; pass < 3; pass++) {
        for (size_t a = 0; a < sizeof aes / sizeof aes[0]; a++) {
            char what[128];
            snprintf(what, sizeof what, "pass %d: GET /app.js, Accept-Encoding: %s, Range: "
                     "bytes=100-199", pass, aes[a]);
            get_ae("/app.js", aes[a], "Range: bytes=100-199\r\n", &r);
            ts_assert(r.status == 206 && coding_of(&r) == ID, "%s: %d, Content-Encoding %s",
                      what, r.status, or_else(field(&r, "Content-Encoding"), "(none)"));
            ts_assert(strcmp(or_else(field(&r, "Content-Range"), ""), "bytes 100-199/5000") == 0,
                      "%s: Content-Range %s", what, field(&r, "Content-Range"));
            ts_assert(r.len == 100 && memcmp(r.body, text + 100, 100) == 0,
                      "%s: not the file's bytes 100-199", what);
            ts_assert(field(&r, "Vary"), "%s: no Vary", what);
        }
        /* After the first pass, the whole is made and cached: the ranges
         * that follow must still not come from it. */
        if (pass == 0) {
            get_ae("/app.js", "gzip", NULL, &r);
            expect_made(&r, "GET /app.js, gzip", GZ, text);
            get_ae("/app.js", "br", NULL, &r);
            expect_made(&r, "GET /app.js, br", BR, text);
        }
    }
    resp_free(&r);
    free(text);
}

/* Only what pays is compressed: text of 256 bytes and more, of a type
 * that shrinks, that does shrink, up to a quarter of the cache. */
Test(encoding, only_what_pays_is_compressed, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char *png = put_text_file("pic.png", 5000, 1, 0); /* compressible bytes, image type */
    char *jpg = put_text_file("pic.jpg", 5000, 2, 0);
    char *woff = put_text_file("f.woff2", 5000, 3, 0);
    char *small = put_text_file("small.js", 255, 4, 0);
    char *edge = put_text_file("edge.js", 256, 5, 0);
    char noise[3000];
    ts_fill(noise, sizeof noise, 6); /* does not shrink */
    put_at("noise.txt", noise, sizeof noise, 0);
    /* --cache-size 1: a quarter is 262144 bytes. */
    char *fits = put_text_file("fits.txt", 262144, 7, 0);
    char *over = put_text_file("over.txt", 262145, 8, 0);
    serve("--cache-size", "1", NULL);
    struct resp r = {0};
    static const char *const aes[] = {"gzip", "br", "gzip, br"};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t a = 0; a < sizeof aes / sizeof aes[0]; a++) {
            char what[160];
#define PLAIN(path, data, n, why)                                                          \
    do {                                                                                   \
        snprintf(what, sizeof what, "pass %d: GET %s, Accept-Encoding: %s (%s)", pass,    \
                 path, aes[a], why);                                                       \
        get_ae(path, aes[a], NULL, &r);                                                    \
        expect_200(&r, what, ID, data, n);                                                 \
    } while (0)
            PLAIN("/pic.png", png, 5000, "an image");
            PLAIN("/pic.jpg", jpg, 5000, "an image");
            PLAIN("/f.woff2", woff, 5000, "a compressed font");
            PLAIN("/small.js", small, 255, "255 bytes");
            PLAIN("/noise.txt", noise, sizeof noise, "random bytes do not shrink");
            PLAIN("/over.txt", over, 262145, "more than a quarter of --cache-size 1");
#undef PLAIN
            int c = strchr(aes[a], ',') || aes[a][0] == 'b' ? BR : GZ;
            snprintf(what, sizeof what, "pass %d: GET /edge.js (256 bytes), %s", pass, aes[a]);
            get_ae("/edge.js", aes[a], NULL, &r);
            expect_made(&r, what, c, edge);
            snprintf(what, sizeof what, "pass %d: GET /fits.txt (262144 bytes), %s", pass,
                     aes[a]);
            get_ae("/fits.txt", aes[a], NULL, &r);
            expect_made(&r, what, c, fits);
        }
    }
    resp_free(&r);
    free(png);
    free(jpg);
    free(woff);
    free(small);
    free(edge);
    free(fits);
    free(over);
}

/* A text file and an image, each with a .gz and a .br of their own: what
 * the switches leave. */
static char *put_switch_tree(char *gzdata, size_t *gzlen)
{
    char *text = put_text_file("app.js", 4000, 21, 0);
    *gzlen = bytes_of("app.js", GZ, gzdata, 4096);
    put_at("app.js.gz", gzdata, *gzlen, 0);
    put_set("pic.png", 1u << BR);
    char *plain = put_text_file("plain.js", 4000, 22, 0); /* no variant */
    free(plain);
    return text;
}

/* With both on, the choice is per coding: a text file with only a .gz
 * gets its gzip from the .gz, and br made here for a client that takes
 * br (br first on a tie). */
Test(encoding, variant_and_made_coding_side_by_side, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char gz[4096];
    size_t gzlen;
    char *text = put_switch_tree(gz, &gzlen);
    serve(NULL);
    struct resp r = {0};
    for (int pass = 0; pass < 2; pass++) {
        get_ae("/app.js", "gzip", NULL, &r);
        expect_200(&r, "GET /app.js (app.js.gz there), gzip", GZ, gz, gzlen);
        get_ae("/app.js", "gzip, br", NULL, &r);
        expect_made(&r, "GET /app.js (app.js.gz there), gzip, br", BR, text);
        get_ae("/app.js", "gzip, br;q=0.9", NULL, &r);
        expect_200(&r, "GET /app.js (app.js.gz there), gzip, br;q=0.9", GZ, gz, gzlen);
    }
    resp_free(&r);
    free(text);
}

Test(encoding, no_compress_keeps_the_variants, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char gz[4096];
    size_t gzlen;
    char *text = put_switch_tree(gz, &gzlen);
    char plain[4001];
    make_text(plain, 4000, 22);
    serve("--no-compress", NULL);
    struct resp r = {0};
    for (int pass = 0; pass < 2; pass++) {
        static const char *const aes[] = {"gzip", "br", "gzip, br", "*"};
        for (size_t a = 0; a < 4; a++) {
            char what[128];
            snprintf(what, sizeof what, "--no-compress: GET /plain.js, %s", aes[a]);
            get_ae("/plain.js", aes[a], NULL, &r);
            expect_200(&r, what, ID, plain, 4000);
        }
        get_ae("/app.js", "gzip, br", NULL, &r);
        expect_200(&r, "--no-compress: GET /app.js (app.js.gz there), gzip, br", GZ, gz, gzlen);
        get_ae("/app.js", "br", NULL, &r);
        expect_200(&r, "--no-compress: GET /app.js (no .br), br", ID, text, 4000);
        expect_file("/pic.png", "br", BR, "--no-compress");
        /* One of the two on is enough for Vary, even without Accept-Encoding. */
        get_ae("/plain.js", NULL, NULL, &r);
        expect_200(&r, "--no-compress: GET /plain.js without Accept-Encoding", ID, plain, 4000);
    }
    resp_free(&r);
    free(text);
}

Test(encoding, no_precompressed_keeps_compressing, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char gz[4096];
    size_t gzlen;
    char *text = put_switch_tree(gz, &gzlen);
    serve("--no-precompressed", NULL);
    struct resp r = {0};
    for (int pass = 0; pass < 2; pass++) {
        /* Made here from app.js, not app.js.gz's bytes. */
        get_ae("/app.js", "gzip", NULL, &r);
        expect_made(&r, "--no-precompressed: GET /app.js (app.js.gz there), gzip", GZ, text);
        ts_assert(strstr(or_else(field(&r, "ETag"), ""), "-gzip\"") != NULL,
                  "--no-precompressed: the gzip of app.js has ETag %s", field(&r, "ETag"));
        get_ae("/app.js", "br", NULL, &r);
        expect_made(&r, "--no-precompressed: GET /app.js, br", BR, text);
        expect_file("/pic.png", "br", ID, "--no-precompressed");
        expect_file("/pic.png", "*", ID, "--no-precompressed");
        get_ae("/app.js", NULL, NULL, &r);
        expect_200(&r, "--no-precompressed: GET /app.js without Accept-Encoding", ID, text,
                   4000);
    }
    resp_free(&r);
    free(text);
}

Test(encoding, neither_sends_the_files_as_they_are, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char gz[4096];
    size_t gzlen;
    char *text = put_switch_tree(gz, &gzlen);
    serve("--no-precompressed", "--no-compress", NULL);
    struct resp r = {0};
    char data[4096];
    size_t n = bytes_of("pic.png", ID, data, sizeof data);
    static const char *const aes[] = {NULL, "gzip", "br", "gzip, br", "*"};
    for (size_t a = 0; a < sizeof aes / sizeof aes[0]; a++) {
        static const char *const paths[] = {"/app.js", "/pic.png"};
        for (int p = 0; p < 2; p++) {
            get_ae(paths[p], aes[a], NULL, &r);
            const char *want = p ? data : text;
            size_t len = p ? n : 4000;
            ts_assert(r.status == 200 && coding_of(&r) == ID && r.len == len &&
                          memcmp(r.body, want, len) == 0,
                      "both off: GET %s, %s: %d, Content-Encoding %s, %zu bytes", paths[p],
                      shown_ae(aes[a]), r.status, or_else(field(&r, "Content-Encoding"), "(none)"),
                      r.len);
            ts_assert(!field(&r, "Vary"), "both off: GET %s, %s: Vary %s", paths[p],
                      shown_ae(aes[a]), field(&r, "Vary"));
        }
    }
    resp_free(&r);
    free(text);
}

/* The compressed response follows the file within the cache's bound. */
struct text_state {
    const char *old_text, *new_text;
    int c;
};

static bool decodes_to(const struct resp *r, int c, const char *text)
{
    if (r->status != 200 || coding_of(r) != c)
        return false;
    char *plain = decode(tool_of(c), r);
    bool same = strcmp(plain, text) == 0;
    free(plain);
    return same;
}

static bool made_old(const struct resp *r, const void *ctx)
{
    const struct text_state *s = ctx;
    return decodes_to(r, s->c, s->old_text);
}

static bool made_new(const struct resp *r, const void *ctx)
{
    const struct text_state *s = ctx;
    return decodes_to(r, s->c, s->new_text);
}

Test(encoding, compressed_follows_the_file, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char *v1 = put_text_file("app.js", 6000, 31, 0);
    char *big1 = put_text_file("big.txt", 100000, 32, 0);
    serve("--cache-ttl", TTL_ARG, NULL);
    struct resp r = {0};
    get_ae("/app.js", "gzip", NULL, &r);
    expect_made(&r, "GET /app.js, gzip", GZ, v1);
    get_ae("/app.js", "br", NULL, &r);
    expect_made(&r, "GET /app.js, br", BR, v1);
    get_ae("/big.txt", "gzip", NULL, &r);
    expect_made(&r, "GET /big.txt, gzip", GZ, big1);
    char old_tag[128];
    get_ae("/app.js", "gzip", NULL, &r);
    etag_of(&r, old_tag, sizeof old_tag, "GET /app.js, gzip");

    /* A new text, of another length, with a new mtime. */
    char *v2 = put_text_file("app.js", 5000, 33, 5);
    struct text_state gz = {v1, v2, GZ}, br = {v1, v2, BR};
    watch("/app.js", "gzip", made_old, made_new, &gz, "gzip of app.js rewritten");
    watch("/app.js", "br", made_old, made_new, &br, "br of app.js rewritten");
    get_ae("/app.js", "gzip", NULL, &r);
    ts_assert(strcmp(or_else(field(&r, "ETag"), ""), old_tag) != 0, "the new gzip has the old ETag %s",
              old_tag);

    /* The same length and the same second: only the nanoseconds differ. */
    char *v3 = malloc(5001);
    cr_assert_not_null(v3);
    make_text(v3, 5000, 34);
    put_at("app.js", v3, 5000, 5);
    set_mtime_ns("app.js", T0 + 5, 500000000);
    struct text_state gz3 = {v2, v3, GZ};
    watch("/app.js", "gzip", made_old, made_new, &gz3, "gzip of app.js rewritten, same size");

    char *big2 = put_text_file("big.txt", 100000, 35, 6);
    struct text_state bg = {big1, big2, GZ};
    watch("/big.txt", "gzip", made_old, made_new, &bg, "gzip of big.txt rewritten");
    resp_free(&r);
    free(v1);
    free(v2);
    free(v3);
    free(big1);
    free(big2);
}

/* --compress-level: both ends decode, and 9 packs tighter than 1. */
Test(encoding, compress_level, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    char *text = put_text_file("app.js", 60000, 41, 0);
    size_t len[2][NCODINGS];
    static const char *const levels[] = {"1", "9"};
    struct resp r = {0};
    for (int l = 0; l < 2; l++) {
        serve("--compress-level", levels[l], NULL);
        for (int k = 0; k < 2; k++) {
            int c = made_codings[k];
            char what[128];
            snprintf(what, sizeof what, "--compress-level %s: GET /app.js, %s", levels[l],
                     coding_name[c]);
            get_ae("/app.js", coding_name[c], NULL, &r);
            expect_made(&r, what, c, text);
            len[l][c] = r.len;
        }
        ts_cleanup(); /* the next server on a new port */
    }
    for (int k = 0; k < 2; k++) {
        int c = made_codings[k];
        ts_assert(len[1][c] < len[0][c], "%s: %zu bytes at level 9, %zu at level 1",
                  coding_name[c], len[1][c], len[0][c]);
    }
    resp_free(&r);
    free(text);
}

/* ------------------------------------------------------------------------ */
/* Field lines and error answers                                            */
/* ------------------------------------------------------------------------ */

/* Two Accept-Encoding field lines are one list, as if joined by commas
 * (RFC 9110 5.3): with the lines "gzip" and "br", p.png.gz there and no
 * .br, the gzip variant (the last line alone would give the identity). */
Test(encoding, accept_encoding_on_two_lines, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("p.png", 1u << GZ);
    serve(NULL);
    char data[4096];
    struct resp r = {0};
    fetch("GET", "/p.png", "Accept-Encoding: gzip\r\nAccept-Encoding: br\r\n", &r);
    expect_200(&r, "GET /p.png, Accept-Encoding: gzip and Accept-Encoding: br (two lines)", GZ,
               data, bytes_of("p.png", GZ, data, sizeof data));
    resp_free(&r);
}

/* The 416 (and the 412) of a file whose variant was picked carries Vary:
 * Accept-Encoding, as the answer depended on it (the variant's size, the
 * variant's ETag): a Range past the .br's end but within the original. */
Test(encoding, vary_on_416_and_412, .timeout = TIMEOUT)
{
    hs_tree("pf-enc");
    put_set("all.png", 1u << GZ | 1u << BR | 1u << ZSTD);
    serve(NULL);
    char data[4096], more[128];
    struct resp r = {0};
    size_t n = bytes_of("all.png", BR, data, sizeof data);
    snprintf(more, sizeof more, "Range: bytes=%zu-\r\n", n + 10);
    get_ae("/all.png", "br", more, &r);
    ts_assert(r.status == 416, "GET /all.png, br, Range past the .br: %d", r.status);
    ts_assert(field(&r, "Vary") != NULL, "the 416 of a variant has no Vary:\n%s", r.head);
    get_ae("/all.png", "br", "If-Match: \"not-it\"\r\n", &r);
    ts_assert(r.status == 412, "GET /all.png, br, If-Match another ETag: %d", r.status);
    ts_assert(field(&r, "Vary") != NULL, "the 412 of a variant has no Vary:\n%s", r.head);
    resp_free(&r);
}
