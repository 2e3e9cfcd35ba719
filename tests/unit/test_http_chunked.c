/* test_http_chunked.c — unit tests of the chunked decoder: good, bad, any split, limits, 5 MiB. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/chunked.h"

/* Bytes with an explicit length, so that tests can hold NULs. */
struct bytes {
    const char *p;
    size_t n;
};
#define B(s) {(s), sizeof(s) - 1}

/* Every test has the same .timeout: with two different ones in a program,
 * Criterion 2.4.1's runner leaks a few bytes, which LeakSanitizer
 * turns into a failed run under make test-san. */

/* ------------------------------------------------------------------------ */
/* Feeding a body in pieces                                                 */
/* ------------------------------------------------------------------------ */

/* What feeding one input found. On an error, consumed is not compared: the
 * bytes a failing call had looked at are not reported, so it depends on the
 * pieces; the data delivered before the error does not. */
struct run {
    ssize_t err;     /* the error returned, or 0 */
    bool done;       /* the body ended */
    size_t consumed; /* bytes of the input consumed in all */
    char *data;      /* every data span, in order, concatenated */
    size_t dlen, dcap;
    size_t calls;
};

static void run_free(struct run *r)
{
    free(r->data);
    memset(r, 0, sizeof(*r));
}

static void keep(struct run *r, const char *p, size_t n)
{
    if (r->dlen + n > r->dcap) {
        r->dcap = (r->dlen + n) * 2;
        r->data = realloc(r->data, r->dcap);
        cr_assert(r->data);
    }
    memcpy(r->data + r->dlen, p, n);
    r->dlen += n;
}

/* Decode one piece, in a heap block of exactly its size so that ASan sees
 * any read outside it, until it is used up, the body ends or it fails. */
static void feed_piece(struct http_chunked *d, const char *in, size_t n, struct run *r)
{
    char *piece = malloc(n ? n : 1);
    size_t off = 0;

    cr_assert(piece);
    memcpy(piece, in, n);
    while (!r->done && !r->err) {
        struct http_chunk_out out;
        ssize_t rc = http_chunked_decode(d, piece + off, n - off, &out);
        r->calls++;
        if (rc < 0) {
            cr_assert(out.len == 0 && !out.done, "data or done with error %zd", rc);
            r->err = rc;
            break;
        }
        cr_assert((size_t)rc <= n - off, "consumed %zd of %zu", rc, n - off);
        cr_assert(out.len <= (size_t)rc, "a span of %zu in %zd bytes consumed", out.len, rc);
        if (out.len) {
            cr_assert(out.data >= piece + off && out.data + out.len <= piece + off + rc,
                      "the span is not in the consumed bytes");
            keep(r, out.data, out.len);
        }
        off += (size_t)rc;
        r->consumed += (size_t)rc;
        r->done = out.done;
        if (off == n || (rc == 0 && !out.done))
            break;
    }
    /* Only an end or an error leaves bytes unconsumed. */
    cr_assert(off == n || r->done || r->err, "stopped at %zu of %zu", off, n);
    free(piece);
}

/* Feed in[0..n) cut at cuts[0..ncuts), increasing, to a fresh decoder. */
static struct run feed_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts)
{
    struct http_chunked d;
    struct run r = {0};
    size_t at = 0;

    http_chunked_init(&d);
    for (size_t i = 0; i <= ncuts && !r.done && !r.err; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        feed_piece(&d, in + at, end - at, &r);
        at = end;
    }
    if (!r.err)
        cr_assert_eq(d.total, r.dlen, "total %llu, delivered %zu", (unsigned long long)d.total,
                     r.dlen);
    return r;
}

static struct run feed_whole(const char *in, size_t n)
{
    return feed_cuts(in, n, NULL, 0);
}

/* Fed one byte at a time. */
static struct run feed_bytes(const char *in, size_t n)
{
    size_t *cuts = malloc((n ? n : 1) * sizeof(*cuts));
    cr_assert(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    struct run r = feed_cuts(in, n, cuts, n);
    free(cuts);
    return r;
}

/* a and b are the same verdict with the same data (what: how b was fed). */
static void expect_same(const char *name, const char *what, const struct run *a,
                        const struct run *b)
{
    cr_assert(a->err == b->err && a->done == b->done, "%s, %s: err %zd done %d, whole %zd %d",
              name, what, b->err, b->done, a->err, a->done);
    if (!a->err)
        cr_assert(a->consumed == b->consumed, "%s, %s: consumed %zu, whole %zu", name, what,
                  b->consumed, a->consumed);
    cr_assert(a->dlen == b->dlen && (a->dlen == 0 || memcmp(a->data, b->data, a->dlen) == 0),
              "%s, %s: %zu data bytes differ from the whole's %zu", name, what, b->dlen, a->dlen);
}

/* Whole, one byte at a time, cut at every point, and (for short inputs) cut
 * at every two points: all the same. Returns the whole's run. */
static struct run expect_any_split(const char *name, const char *in, size_t n)
{
    struct run whole = feed_whole(in, n), r;

    r = feed_bytes(in, n);
    expect_same(name, "byte by byte", &whole, &r);
    run_free(&r);
    for (size_t k = 0; k <= n; k++) {
        r = feed_cuts(in, n, &k, 1);
        expect_same(name, "one cut", &whole, &r);
        run_free(&r);
    }
    for (size_t j = 0; n <= 160 && j <= n; j++)
        for (size_t k = j; k <= n; k++) {
            size_t cuts[2] = {j, k};
            r = feed_cuts(in, n, cuts, 2);
            expect_same(name, "two cuts", &whole, &r);
            run_free(&r);
        }
    return whole;
}

/* ------------------------------------------------------------------------ */
/* Good bodies                                                              */
/* ------------------------------------------------------------------------ */

/* A body that must decode to data, leaving tail bytes (the next request)
 * unconsumed, after skipping fields trailer field lines. */
struct good {
    const char *name;
    struct bytes raw;
    struct bytes data;
    size_t tail;
    unsigned fields;
};

static const struct good goods[] = {
    {"empty body", B("0\r\n\r\n"), B(""), 0, 0},
    {"one byte", B("1\r\na\r\n0\r\n\r\n"), B("a"), 0, 0},
    {"two chunks", B("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), B("hello world"), 0, 0},
    {"hex, both cases", B("a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n"),
     B("0123456789abcdefghijk"), 0, 0},
    {"leading zeros", B("0003\r\nabc\r\n000\r\n\r\n"), B("abc"), 0, 0},
    {"data holds CR, LF, NUL", B("5\r\n\r\n\0\n\r\r\n0\r\n\r\n"), B("\r\n\0\n\r"), 0, 0},
    {"token extension", B("3;name=value\r\nabc\r\n0;last\r\n\r\n"), B("abc"), 0, 0},
    {"extension without value", B("3;x\r\nabc\r\n0\r\n\r\n"), B("abc"), 0, 0},
    {"quoted extension", B("3;q=\"a b;c=d\"\r\nabc\r\n0\r\n\r\n"), B("abc"), 0, 0},
    {"quoted-pair, obs-text", B("3;q=\"\\\"\\\\\t\xe9\\\xff\"\r\nabc\r\n0\r\n\r\n"), B("abc"), 0,
     0},
    {"empty quoted", B("3;q=\"\"\r\nabc\r\n0\r\n\r\n"), B("abc"), 0, 0},
    {"extensions with BWS", B("3 \t; a = b\t;\tc\t=\t\"d\" ;e ; f\r\nabc\r\n0 ; g = h\r\n\r\n"),
     B("abc"), 0, 0},
    {"every tchar in an extension",
     B("1;!#$%&'*+-.^_`|~09azAZ=!#$%&'*+-.^_`|~09azAZ\r\nx\r\n0\r\n\r\n"), B("x"), 0, 0},
    {"one trailer", B("3\r\nabc\r\n0\r\nX-Sum: 123\r\n\r\n"), B("abc"), 0, 1},
    {"trailers with OWS, empty, obs-text",
     B("0\r\nA:\r\nB: \t \r\nC:\tv w \t\r\nD:caf\xc3\xa9\xff\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"),
     B(""), 0, 5},
    {"pipelined request after", B("2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), B("hi"), 18, 0},
    {"pipelined after trailers", B("0\r\nT: 1\r\n\r\n0\r\n\r\n"), B(""), 5, 1},
};

#define NGOOD (sizeof(goods) / sizeof(goods[0]))

static void expect_good(const struct good *g, const struct run *r)
{
    cr_assert(r->done && r->err == 0, "%s: done %d err %zd", g->name, r->done, r->err);
    cr_assert_eq(r->consumed, g->raw.n - g->tail, "%s: consumed %zu, want %zu", g->name,
                 r->consumed, g->raw.n - g->tail);
    cr_assert(r->dlen == g->data.n && (!r->dlen || memcmp(r->data, g->data.p, r->dlen) == 0),
              "%s: data \"%.*s\", want \"%.*s\"", g->name, (int)r->dlen, r->dlen ? r->data : "",
              (int)g->data.n, g->data.p);
}

Test(http_chunked, init_zeroes, .timeout = 30)
{
    struct http_chunked d, zero;

    memset(&d, 0xa5, sizeof(d));
    memset(&zero, 0, sizeof(zero));
    http_chunked_init(&d);
    cr_assert(memcmp(&d, &zero, sizeof(d)) == 0);
}

Test(http_chunked, good_bodies, .timeout = 30)
{
    for (size_t i = 0; i < NGOOD; i++) {
        struct run r = expect_any_split(goods[i].name, goods[i].raw.p, goods[i].raw.n);
        expect_good(&goods[i], &r);
        run_free(&r);
    }
}

/* The counts kept in the struct: data bytes, trailer fields, trailer bytes. */
Test(http_chunked, counts, .timeout = 30)
{
    for (size_t i = 0; i < NGOOD; i++) {
        const struct good *g = &goods[i];
        struct http_chunked d;
        struct http_chunk_out out = {0};
        size_t off = 0, end = g->raw.n - g->tail;
        http_chunked_init(&d);
        while (!out.done) {
            ssize_t rc = http_chunked_decode(&d, g->raw.p + off, g->raw.n - off, &out);
            cr_assert(rc > 0, "%s: %zd at %zu", g->name, rc, off);
            off += (size_t)rc;
        }
        cr_assert_eq(off, end, "%s", g->name);
        cr_assert_eq(d.total, g->data.n, "%s: total %llu", g->name,
                     (unsigned long long)d.total);
        cr_assert_eq(d.fields, g->fields, "%s: %u fields", g->name, d.fields);
        /* The trailer section runs from after the last chunk's line to the end. */
        const char *last = g->raw.p + end - 2;
        while (last > g->raw.p && !(last[-1] == '\n' && last[0] == '0'))
            last--;
        size_t after_line = (size_t)(strstr(last, "\r\n") + 2 - g->raw.p);
        cr_assert_eq(d.trailers, end - after_line, "%s: %zu trailer bytes", g->name, d.trailers);
    }
}

/* Each call stops right after a span, even with more chunks in the buffer. */
Test(http_chunked, one_span_per_call, .timeout = 30)
{
    static const char in[] = "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
    struct http_chunked d;
    struct http_chunk_out out;
    size_t n = sizeof(in) - 1;

    http_chunked_init(&d);
    cr_assert_eq(http_chunked_decode(&d, in, n, &out), 5);
    cr_assert(out.data == in + 3 && out.len == 2 && !out.done);
    cr_assert_eq(http_chunked_decode(&d, in + 5, n - 5, &out), 8);
    cr_assert(out.data == in + 10 && out.len == 3 && !out.done);
    cr_assert_eq(http_chunked_decode(&d, in + 13, n - 13, &out), 7);
    cr_assert(out.data == NULL && out.len == 0 && out.done);
}

/* The bytes after the final CRLF are left alone; the next body decodes
 * after http_chunked_init, and until then the decoder stays done. */
Test(http_chunked, pipelined, .timeout = 30)
{
    static const char in[] = "1\r\nx\r\n0\r\n\r\n2\r\nyz\r\n0\r\n\r\nPOST";
    struct http_chunked d;
    struct http_chunk_out out = {0};
    size_t n = sizeof(in) - 1, off = 0;

    http_chunked_init(&d);
    while (off < n && !out.done)
        off += (size_t)http_chunked_decode(&d, in + off, n - off, &out);
    cr_assert(out.done);
    cr_assert_eq(off, 11);
    cr_assert_eq(http_chunked_decode(&d, in + off, n - off, &out), 0);
    cr_assert(out.done && out.len == 0);
    http_chunked_init(&d);
    cr_assert_eq(http_chunked_decode(&d, in + off, n - off, &out), 5);
    cr_assert(out.len == 2 && memcmp(out.data, "yz", 2) == 0 && !out.done);
    off += 5;
    cr_assert_eq(http_chunked_decode(&d, in + off, n - off, &out), 7);
    cr_assert(out.done);
    cr_assert_eq(n - off - 7, 4, "POST is left for the next request");
}

/* A size of 2^63 - 1 is accepted (then data is awaited), and leading zeros
 * do not count towards 63 bits, only towards the line limit. */
Test(http_chunked, largest_size, .timeout = 30)
{
    static const char *sizes[] = {"7fffffffffffffff\r\n", "00000000007FFFFFFFFFFFFFFF;a=b\r\n"};

    for (size_t i = 0; i < 2; i++) {
        struct http_chunked d;
        struct http_chunk_out out;
        size_t n = strlen(sizes[i]);
        http_chunked_init(&d);
        cr_assert_eq(http_chunked_decode(&d, sizes[i], n, &out), (ssize_t)n, "%s", sizes[i]);
        cr_assert(!out.done && out.len == 0);
        cr_assert_eq(d.left, (uint64_t)INT64_MAX);
        cr_assert_eq(http_chunked_decode(&d, "abc", 3, &out), 3);
        cr_assert(out.len == 3 && d.left == (uint64_t)INT64_MAX - 3);
    }
}

/* ------------------------------------------------------------------------ */
/* Bad bodies                                                               */
/* ------------------------------------------------------------------------ */

struct bad {
    const char *name;
    struct bytes raw;
    ssize_t err;
};

#define INVAL (-EINVAL)

static const struct bad bads[] = {
    /* The size. */
    {"non-hex size", B("g\r\nabc\r\n0\r\n\r\n"), INVAL},
    {"non-hex after a digit", B("1g\r\na\r\n0\r\n\r\n"), INVAL},
    {"empty size", B("\r\n\r\n"), INVAL},
    {"empty body", B(""), 0},
    {"0x prefix", B("0x10\r\n0123456789abcdef\r\n0\r\n\r\n"), INVAL},
    {"leading space", B(" 10\r\n0123456789abcdef\r\n0\r\n\r\n"), INVAL},
    {"leading tab", B("\t1\r\na\r\n0\r\n\r\n"), INVAL},
    {"sign", B("+1\r\na\r\n0\r\n\r\n"), INVAL},
    {"negative", B("-1\r\na\r\n0\r\n\r\n"), INVAL},
    {"trailing space", B("1 \r\na\r\n0\r\n\r\n"), INVAL},
    {"space inside", B("1 0\r\n0123456789abcdef\r\n0\r\n\r\n"), INVAL},
    {"17 hex digits", B("fffffffffffffffff\r\n"), -EOVERFLOW},
    {"16 f", B("ffffffffffffffff\r\n"), -EOVERFLOW},
    {"2^63", B("8000000000000000\r\n"), -EOVERFLOW},
    {"2^63 with leading zeros", B("00008000000000000000\r\n"), -EOVERFLOW},
    {"huge", B("123456789abcdef0123456789\r\n"), -EOVERFLOW},
    /* Line ends. */
    {"bare LF in size line", B("1\na\r\n0\r\n\r\n"), INVAL},
    {"CR without LF", B("1\ra\r\n0\r\n\r\n"), INVAL},
    {"CR CR LF", B("1\r\r\na\r\n0\r\n\r\n"), INVAL},
    {"bare LF after an extension", B("1;a=b\na\r\n0\r\n\r\n"), INVAL},
    {"missing CRLF after data", B("3\r\nabcX\r\n0\r\n\r\n"), INVAL},
    {"data longer than declared", B("3\r\nabcd\r\n0\r\n\r\n"), INVAL},
    {"data shorter than declared", B("4\r\nabc\r\n0\r\n\r\n"), INVAL},
    {"bare LF after data", B("1\r\na\n0\r\n\r\n"), INVAL},
    {"CR without LF after data", B("1\r\na\r0\r\n\r\n"), INVAL},
    {"CR CR after data", B("1\r\na\r\r0\r\n\r\n"), INVAL},
    {"CR then junk ending a size line", B("1\rxa\r\n0\r\n\r\n"), INVAL},
    {"bare LF ending the last chunk", B("0\n\r\n"), INVAL},
    {"bare LF as the final line", B("0\r\n\n"), INVAL},
    {"CR CR as the final line", B("0\r\n\r\r"), INVAL},
    {"junk after the last chunk", B("0\r\n\r\rX"), INVAL},
    /* Extensions. */
    {"CTL in an extension name", B("1;a\x01=b\r\na\r\n0\r\n\r\n"), INVAL},
    {"CTL in an extension value", B("1;a=b\x7f\r\na\r\n0\r\n\r\n"), INVAL},
    {"NUL in an extension", B("1;a\0\r\na\r\n0\r\n\r\n"), INVAL},
    {"CTL in a quoted value", B("1;a=\"b\x1f\"\r\na\r\n0\r\n\r\n"), INVAL},
    {"CTL quoted-pair", B("1;a=\"\\\x01\"\r\na\r\n0\r\n\r\n"), INVAL},
    {"CR in a quoted value", B("1;a=\"b\r\n\"\r\na\r\n0\r\n\r\n"), INVAL},
    {"empty extension", B("1;\r\na\r\n0\r\n\r\n"), INVAL},
    {"two semicolons", B("1;;a\r\na\r\n0\r\n\r\n"), INVAL},
    {"extension without name", B("1;=b\r\na\r\n0\r\n\r\n"), INVAL},
    {"extension with empty value", B("1;a=\r\na\r\n0\r\n\r\n"), INVAL},
    {"extension with two =", B("1;a=b=c\r\na\r\n0\r\n\r\n"), INVAL},
    {"extension without ;", B("1a=b\r\na\r\n0\r\n\r\n"), INVAL},
    {"space inside a name", B("1;a b\r\na\r\n0\r\n\r\n"), INVAL},
    {"space after a name", B("1;a \r\na\r\n0\r\n\r\n"), INVAL},
    {"space after a value", B("1;a=b \r\na\r\n0\r\n\r\n"), INVAL},
    {"space after a quoted value", B("1;a=\"b\" \r\na\r\n0\r\n\r\n"), INVAL},
    {"junk after a quoted value", B("1;a=\"b\"c\r\na\r\n0\r\n\r\n"), INVAL},
    {"unclosed quote", B("1;a=\"b\r\na\r\n0\r\n\r\n"), INVAL},
    {"separator in a token value", B("1;a=b/c\r\na\r\n0\r\n\r\n"), INVAL},
    {"obs-text in a token", B("1;caf\xc3\xa9\r\na\r\n0\r\n\r\n"), INVAL},
    /* Trailers. */
    {"obs-fold in trailers", B("0\r\nA: b\r\n c\r\n\r\n"), INVAL},
    {"obs-fold with a tab", B("0\r\nA: b\r\n\tc\r\n\r\n"), INVAL},
    {"trailer starting with a space", B("0\r\n A: b\r\n\r\n"), INVAL},
    {"bad trailer name", B("0\r\nA(B): c\r\n\r\n"), INVAL},
    {"space in a trailer name", B("0\r\nA B: c\r\n\r\n"), INVAL},
    {"space before the colon", B("0\r\nA : c\r\n\r\n"), INVAL},
    {"empty trailer name", B("0\r\n: c\r\n\r\n"), INVAL},
    {"trailer without colon", B("0\r\nAB\r\n\r\n"), INVAL},
    {"CTL in a trailer value", B("0\r\nA: b\x01\r\n\r\n"), INVAL},
    {"DEL in a trailer value", B("0\r\nA: b\x7f\r\n\r\n"), INVAL},
    {"bare LF in a trailer", B("0\r\nA: b\nC: d\r\n\r\n"), INVAL},
    {"bare CR in a trailer", B("0\r\nA: b\rC: d\r\n\r\n"), INVAL},
    {"CR then junk ending a trailer", B("0\r\nA: b\rXC: d\r\n\r\n"), INVAL},
    {"bare LF ending the trailers", B("0\r\nA: b\r\n\n"), INVAL},
};

#define NBAD (sizeof(bads) / sizeof(bads[0]))

/* Each refused alike however it is cut, the data before the error included;
 * never done. An err of 0 in the table: never done, never failing. */
Test(http_chunked, bad_bodies, .timeout = 30)
{
    for (size_t i = 0; i < NBAD; i++) {
        const struct bad *b = &bads[i];
        struct run r = expect_any_split(b->name, b->raw.p, b->raw.n);
        cr_assert(r.err == b->err && !r.done, "%s: err %zd done %d, want %zd", b->name, r.err,
                  r.done, b->err);
        run_free(&r);
    }
}

/* An error sticks: later calls, with any bytes, return it and nothing else. */
Test(http_chunked, error_sticks, .timeout = 30)
{
    static const char good[] = "1\r\na\r\n0\r\n\r\n";
    struct http_chunked d;
    struct http_chunk_out out;

    http_chunked_init(&d);
    cr_assert_eq(http_chunked_decode(&d, "1\r\na\r\n", 6, &out), 4);
    cr_assert_eq(http_chunked_decode(&d, "X", 1, &out), -EINVAL);
    for (int i = 0; i < 3; i++) {
        out = (struct http_chunk_out){good, 1, true};
        cr_assert_eq(http_chunked_decode(&d, good, sizeof(good) - 1, &out), -EINVAL);
        cr_assert(out.data == NULL && out.len == 0 && !out.done);
        cr_assert_eq(http_chunked_decode(&d, good, 0, &out), -EINVAL);
    }
    http_chunked_init(&d);
    cr_assert_eq(http_chunked_decode(&d, "8000000000000000", 16, &out), -EOVERFLOW);
    cr_assert_eq(http_chunked_decode(&d, good, sizeof(good) - 1, &out), -EOVERFLOW);
}

/* A state that cannot be ours fails instead of being acted on. */
Test(http_chunked, foreign_state, .timeout = 30)
{
    struct http_chunked d;
    struct http_chunk_out out;

    http_chunked_init(&d);
    d.state = 1000;
    cr_assert_eq(http_chunked_decode(&d, "0\r\n\r\n", 5, &out), -EINVAL);
    cr_assert_eq(http_chunked_decode(&d, "0\r\n\r\n", 5, &out), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Every byte value where a class of bytes is allowed                       */
/* ------------------------------------------------------------------------ */

static bool tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool vchar_obs(int c)
{
    return (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}

/* pre c post decodes, or fails with -EINVAL. */
static bool accepted(const char *pre, int c, const char *post)
{
    char in[64];
    size_t n = (size_t)snprintf(in, sizeof(in), "%s", pre);
    in[n++] = (char)c;
    n += (size_t)snprintf(in + n, sizeof(in) - n, "%s", post);
    struct run r = feed_whole(in, n);
    bool done = r.done;
    cr_assert(done || r.err == -EINVAL, "byte 0x%02x after \"%s\": err %zd", c, pre, r.err);
    run_free(&r);
    return done;
}

Test(http_chunked, byte_classes, .timeout = 30)
{
    for (int c = 0; c < 256; c++) {
        bool t = tchar(c), f = vchar_obs(c) || c == ' ' || c == '\t';
        bool qd = f && c != '"' && c != '\\';
        cr_assert_eq(accepted("1;", c, "\r\nx\r\n0\r\n\r\n"), t, "ext-name, 0x%02x", c);
        cr_assert_eq(accepted("1;a", c, "\r\nx\r\n0\r\n\r\n"), t, "ext-name, 0x%02x", c);
        cr_assert_eq(accepted("1;a=", c, "\r\nx\r\n0\r\n\r\n"), t, "ext-val, 0x%02x", c);
        cr_assert_eq(accepted("1;a=\"", c, "\"\r\nx\r\n0\r\n\r\n"), qd, "quoted, 0x%02x", c);
        cr_assert_eq(accepted("1;a=\"\\", c, "\"\r\nx\r\n0\r\n\r\n"), f,
                     "quoted-pair, 0x%02x", c);
        cr_assert_eq(accepted("0\r\n", c, "A: v\r\n\r\n"), t, "trailer name, 0x%02x", c);
        cr_assert_eq(accepted("0\r\nA", c, ": v\r\n\r\n"), t || c == ':',
                     "trailer name, 0x%02x", c);
        cr_assert_eq(accepted("0\r\nA: v", c, "w\r\n\r\n"), f, "trailer value, 0x%02x", c);
    }
}

/* A size line starts with a hex digit, any other byte is -EINVAL. */
Test(http_chunked, size_digits, .timeout = 30)
{
    for (int c = 0; c < 256; c++) {
        char in[3] = {(char)c, '\r', '\n'};
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        struct run r = feed_whole(in, 3);
        cr_assert(!r.done, "0x%02x", c);
        cr_assert_eq(r.err, hex ? 0 : -EINVAL, "0x%02x: %zd", c, r.err);
        run_free(&r);
    }
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

/* Bytes built up in a malloc'd buffer. */
struct text {
    char *p;
    size_t n, cap;
};

static void put(struct text *t, const void *s, size_t n)
{
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2 + 64;
        t->p = realloc(t->p, t->cap);
        cr_assert(t->p);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

static void puts_(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_repeat(struct text *t, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(t, &c, 1);
}

/* "1;a=bbb...\r\nx\r\n" whose size line is line bytes long, CRLF included. */
static void put_long_line(struct text *t, size_t line)
{
    puts_(t, "1;a=");
    put_repeat(t, 'b', line - 6);
    puts_(t, "\r\nx\r\n");
}

/* Whole, byte by byte and cut at every point: one verdict; returns it. */
static ssize_t verdict_any_split(const char *name, const struct text *t)
{
    struct run r = expect_any_split(name, t->p, t->n);
    ssize_t v = r.done ? 1 : r.err;
    run_free(&r);
    return v;
}

Test(http_chunked, size_line_limit, .timeout = 30)
{
    for (size_t line = HTTP_CHUNKED_MAX_LINE - 1; line <= HTTP_CHUNKED_MAX_LINE + 1; line++) {
        struct text t = {0};
        /* Twice: the count starts again at each size line. */
        put_long_line(&t, line);
        put_long_line(&t, line);
        puts_(&t, "0\r\n\r\n");
        ssize_t want = line <= HTTP_CHUNKED_MAX_LINE ? 1 : -EMSGSIZE;
        cr_assert_eq(verdict_any_split("long line", &t), want, "line of %zu", line);
        free(t.p);
    }
}

/* Leading zeros are allowed, as many as the line limit leaves room for. */
Test(http_chunked, leading_zeros_limit, .timeout = 30)
{
    for (size_t line = HTTP_CHUNKED_MAX_LINE; line <= HTTP_CHUNKED_MAX_LINE + 1; line++) {
        struct text t = {0};
        put_repeat(&t, '0', line - 3);
        puts_(&t, "1\r\nx\r\n0\r\n\r\n");
        ssize_t want = line <= HTTP_CHUNKED_MAX_LINE ? 1 : -EMSGSIZE;
        cr_assert_eq(verdict_any_split("leading zeros", &t), want, "line of %zu", line);
        free(t.p);
    }
}

/* The trailer section as a whole, final CRLF included, is limited: by one
 * long field, or by many short ones. Too long to cut at every point. */
Test(http_chunked, trailer_limit, .timeout = 30)
{
    for (size_t sect = HTTP_CHUNKED_MAX_TRAILERS - 1; sect <= HTTP_CHUNKED_MAX_TRAILERS + 1;
         sect++) {
        struct text one = {0}, many = {0};
        puts_(&one, "0\r\nX: ");
        put_repeat(&one, 'v', sect - 7);
        puts_(&one, "\r\n\r\n");
        /* Lines of 6 bytes, the last one 6 to 11, then the final CRLF. */
        size_t lines = (sect - 2) / 6 - 1;
        puts_(&many, "0\r\n");
        for (size_t i = 0; i < lines; i++)
            puts_(&many, "A: v\r\n");
        puts_(&many, "B:");
        put_repeat(&many, 'v', sect - 2 - 6 * lines - 4);
        puts_(&many, "\r\n\r\n");
        cr_assert_eq(many.n, sect + 3, "built %zu", many.n);
        ssize_t want = sect <= HTTP_CHUNKED_MAX_TRAILERS ? 0 : -EMSGSIZE;
        struct text *both[] = {&one, &many};
        for (size_t k = 0; k < 2; k++) {
            struct run w = feed_whole(both[k]->p, both[k]->n);
            struct run b = feed_bytes(both[k]->p, both[k]->n);
            cr_assert(w.err == want && w.done == !want, "%zu bytes, %zu: %zd", sect, k, w.err);
            expect_same("trailers", "byte by byte", &w, &b);
            run_free(&w);
            run_free(&b);
            free(both[k]->p);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* 5 MiB                                                                    */
/* ------------------------------------------------------------------------ */

#define BIG (5u << 20)

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
}

/* data[0..BIG) in chunks of the sizes in sizes[] (cycled), with extensions
 * and hex case varying, then trailers, then "GET" (not part of the body). */
static struct text make_body(const char *data, const size_t *sizes, size_t nsizes)
{
    struct text t = {0};
    size_t at = 0;

    for (size_t i = 0; at < BIG; i++) {
        size_t n = sizes[i % nsizes] < BIG - at ? sizes[i % nsizes] : BIG - at;
        char line[64];
        snprintf(line, sizeof(line), i % 2 ? "%zx" : "%zX", n);
        puts_(&t, line);
        puts_(&t, i % 3 == 0 ? ";i=\"\\\"x\" ; j\r\n" : "\r\n");
        put(&t, data + at, n);
        puts_(&t, "\r\n");
        at += n;
    }
    puts_(&t, "0\r\nX-Digest: abc\r\nY:\r\n\r\nGET");
    return t;
}

/* Cut at random points, pieces of 1 to max bytes. */
static struct run feed_random(const struct text *t, uint64_t seed, size_t max)
{
    size_t *cuts = malloc(t->n * sizeof(*cuts)), ncuts = 0, at = 0;

    cr_assert(cuts);
    while ((at += 1 + rnd(&seed) % max) < t->n)
        cuts[ncuts++] = at;
    struct run r = feed_cuts(t->p, t->n, cuts, ncuts);
    free(cuts);
    return r;
}

Test(http_chunked, five_mib, .timeout = 30)
{
    static const size_t one[] = {BIG}, page[] = {4096},
                        mixed[] = {1, 2, 3, 15, 16, 17, 255, 4096, 8191, 65535, 65536, 1 << 20};
    static const struct {
        const char *name;
        const size_t *sizes;
        size_t n;
    } shapes[] = {{"one chunk", one, 1}, {"4 KiB chunks", page, 1}, {"mixed", mixed, 12}};
    uint64_t seed = 42;
    char *data = malloc(BIG);

    cr_assert(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (char)rnd(&seed);
    for (size_t s = 0; s < 3; s++) {
        struct text t = make_body(data, shapes[s].sizes, shapes[s].n);
        struct run w = feed_whole(t.p, t.n);
        cr_assert(w.done && w.consumed == t.n - 3, "%s: done %d, consumed %zu of %zu",
                  shapes[s].name, w.done, w.consumed, t.n);
        cr_assert(w.dlen == BIG && memcmp(w.data, data, BIG) == 0, "%s: data differs",
                  shapes[s].name);
        for (uint64_t k = 0; k < 4; k++) {
            struct run r = feed_random(&t, k, k == 0 ? 64 : (size_t)1 << (12 + 2 * k));
            expect_same(shapes[s].name, "random cuts", &w, &r);
            run_free(&r);
        }
        run_free(&w);
        free(t.p);
    }
    free(data);
}

/* One byte per call over 5 MiB of small chunks: linear, no rescanning. */
Test(http_chunked, five_mib_byte_by_byte, .timeout = 30)
{
    static const size_t sizes[] = {1, 2, 3, 100, 4096};
    uint64_t seed = 7;
    char *data = malloc(BIG), *got = malloc(BIG);
    struct http_chunked d;
    struct http_chunk_out out = {0};
    size_t off = 0, have = 0;

    cr_assert(data && got);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (char)rnd(&seed);
    struct text t = make_body(data, sizes, 5);
    http_chunked_init(&d);
    while (!out.done && off < t.n) {
        ssize_t rc = http_chunked_decode(&d, t.p + off, 1, &out);
        cr_assert_eq(rc, 1, "at %zu: %zd", off, rc);
        if (out.len)
            got[have++] = out.data[0];
        off++;
    }
    cr_assert(out.done && off == t.n - 3 && have == BIG && memcmp(got, data, BIG) == 0);
    free(t.p);
    free(data);
    free(got);
}
