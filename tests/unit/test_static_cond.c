/* test_static_cond.c — unit tests for ETags, precondition evaluation, Range, If-Range and Content-Range. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../src/static/cond.h"
#include "../../src/http/date.h"

/* ---- ETag ---- */

Test(http_etag, make, .timeout = 10)
{
    struct stat st = {0};
    st.st_ino = 0x5f2a1c;
    st.st_size = 1000;
    st.st_mtim.tv_sec = 1700000000;
    st.st_mtim.tv_nsec = 123456789;
    char out[STATIC_ETAG_MAX];
    size_t n = static_etag_make(&st, out, sizeof out);
    cr_expect_str_eq(out, "\"5f2a1c-3e8-17979cfe3d85cd15\"");
    cr_expect_eq(n, strlen(out));

    /* Exactly enough room, then one byte short. */
    char small[64];
    cr_expect_eq(static_etag_make(&st, small, n + 1), n);
    cr_expect_eq(static_etag_make(&st, small, n), 0);
    cr_expect_eq(static_etag_make(&st, small, 0), 0);

    /* Only the nanoseconds changed: the tag changes. */
    st.st_mtim.tv_nsec++;
    char other[STATIC_ETAG_MAX];
    static_etag_make(&st, other, sizeof other);
    cr_expect_str_neq(out, other);

    /* Zeros and the widest values. */
    memset(&st, 0, sizeof st);
    cr_expect_eq(static_etag_make(&st, out, sizeof out), 7);
    cr_expect_str_eq(out, "\"0-0-0\"");
    st.st_ino = (ino_t)UINT64_MAX;
    st.st_size = INT64_MAX;
    st.st_mtim.tv_sec = 18446744073; /* the largest second that still fits in ns */
    st.st_mtim.tv_nsec = 709551615;
    n = static_etag_make(&st, out, sizeof out);
    cr_expect_str_eq(out, "\"ffffffffffffffff-7fffffffffffffff-ffffffffffffffff\"");
    cr_expect_lt(n, (size_t)STATIC_ETAG_MAX);
}

/* ---- preconditions ---- */

#define OURS "\"abc\""
#define MTIME ((time_t)784111777) /* Sun, 06 Nov 1994 08:49:37 GMT */

enum { OK = STATIC_COND_OK, NM = STATIC_COND_NOT_MODIFIED, PF = STATIC_COND_PRECONDITION_FAILED };

/* A tag list, and whether it matches OURS with strong comparison (If-Match)
 * and with weak comparison (If-None-Match). */
struct list_case {
    const char *list;
    bool strong, weak;
};

static const struct list_case lists[] = {
    {"\"abc\"", true, true},
    {"W/\"abc\"", false, true},
    {"\"xyz\", \"abc\"", true, true},
    {"\"xyz\" , W/\"abc\"", false, true},
    {"\"xyz\",W/\"abc\",\"abc\"", true, true},
    {"\"xyz\"", false, false},
    {"\"ABC\"", false, false}, /* opaque-tags compare octet by octet */
    {"\"abc \"", false, false},
    {"\"\"", false, false},
    {"\"\x80\xff\"", false, false}, /* obs-text is allowed, and matches nothing here */
    {"*", true, true},
    {" * ", true, true},
    {"\t\"abc\"\t,\t\"x\"\t", true, true},
    /* Empty list elements are skipped. */
    {"\"abc\",,, ", true, true},
    {",\"abc\"", true, true},
    {" , , \"abc\" , ", true, true},
    {"", false, false},
    {",", false, false},
    /* Malformed anywhere: matches nothing. */
    {"*, \"abc\"", false, false},
    {"\"abc\", *", false, false},
    {"**", false, false},
    {"\"abc", false, false},
    {"abc\"", false, false},
    {"abc", false, false},
    {"\"abc\" \"abc\"", false, false},
    {"\"abc\"; \"abc\"", false, false},
    {"w/\"abc\"", false, false},
    {"W/ \"abc\"", false, false},
    {"W\"abc\"", false, false},
    {"W/", false, false},
    {"W", false, false},
    {"\"ab c\"", false, false},
    {"\"ab\"c\"", false, false},
    {"\"a\x7f\"", false, false},
    {"\"a\x01\"", false, false},
    {"\"abc\", bogus", false, false},
    {"bogus, \"abc\"", false, false},
    {"\"abc\",\"", false, false},
};

Test(static_cond, etag_lists, .timeout = 10)
{
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        const struct list_case *l = &lists[i];
        struct static_cond c = {.if_match = l->list, .if_match_len = strlen(l->list)};
        cr_expect_eq((int)static_cond_evaluate(&c, OURS, strlen(OURS), MTIME, true), l->strong ? OK : PF,
                     "If-Match: %s", l->list);
        struct static_cond d = {.if_none_match = l->list, .if_none_match_len = strlen(l->list)};
        cr_expect_eq((int)static_cond_evaluate(&d, OURS, strlen(OURS), MTIME, true), l->weak ? NM : OK,
                     "If-None-Match: %s", l->list);
    }
}

/* RFC 9110 8.8.3.2, the table of weak and strong comparison. */
Test(static_cond, rfc_comparison_table, .timeout = 10)
{
    static const struct {
        const char *a, *b;
        bool strong, weak;
    } rows[] = {
        {"W/\"1\"", "W/\"1\"", false, true},
        {"W/\"1\"", "W/\"2\"", false, false},
        {"W/\"1\"", "\"1\"", false, true},
        {"\"1\"", "\"1\"", true, true},
    };
    for (size_t i = 0; i < 4; i++) {
        const char *a = rows[i].a, *b = rows[i].b;
        for (int swap = 0; swap < 2; swap++) {
            const char *ours = swap ? b : a, *theirs = swap ? a : b;
            struct static_cond c = {.if_match = theirs, .if_match_len = strlen(theirs)};
            cr_expect_eq((int)static_cond_evaluate(&c, ours, strlen(ours), MTIME, true),
                         rows[i].strong ? OK : PF, "%s vs %s", ours, theirs);
            struct static_cond d = {.if_none_match = theirs, .if_none_match_len = strlen(theirs)};
            cr_expect_eq((int)static_cond_evaluate(&d, ours, strlen(ours), MTIME, true),
                         rows[i].weak ? NM : OK, "%s vs %s", ours, theirs);
        }
    }
}

/* Dates relative to MTIME, made once per test by fmt(). */
static char d_eq[40], d_before[40], d_after[40];
static const char *d_future = "Tue, 01 Jan 2999 00:00:00 GMT";
static const char *d_bad = "yesterday";

static void fmt(void)
{
    http_date_format(MTIME, d_eq);
    http_date_format(MTIME - 86400, d_before);
    http_date_format(MTIME + 86400, d_after);
}

/* One row of the evaluation-order table: each field NULL when absent. */
struct order_case {
    const char *name;
    const char *im, *ius, *inm, *ims;
    bool get;
    int want;
};

#define EQ d_eq
#define BEFORE d_before
#define AFTER d_after
#define FUTURE d_future
#define BAD d_bad
#define MATCH OURS
#define MISS "\"nope\""

static void run_order(const struct order_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct static_cond c = {0};
        c.if_match = t[i].im, c.if_match_len = t[i].im ? strlen(t[i].im) : 0;
        c.if_unmodified_since = t[i].ius;
        c.if_unmodified_since_len = t[i].ius ? strlen(t[i].ius) : 0;
        c.if_none_match = t[i].inm, c.if_none_match_len = t[i].inm ? strlen(t[i].inm) : 0;
        c.if_modified_since = t[i].ims;
        c.if_modified_since_len = t[i].ims ? strlen(t[i].ims) : 0;
        cr_expect_eq((int)static_cond_evaluate(&c, OURS, strlen(OURS), MTIME, t[i].get), t[i].want,
                     "%s", t[i].name);
    }
}

Test(static_cond, evaluation_order, .timeout = 10, .init = fmt)
{
    const struct order_case t[] = {
        {"nothing", NULL, NULL, NULL, NULL, true, OK},
        {"nothing, PUT", NULL, NULL, NULL, NULL, false, OK},
        /* Step 1: If-Match. */
        {"IM match", MATCH, NULL, NULL, NULL, true, OK},
        {"IM miss", MISS, NULL, NULL, NULL, true, PF},
        {"IM miss, PUT", MISS, NULL, NULL, NULL, false, PF},
        {"IM star", "*", NULL, NULL, NULL, false, OK},
        {"IM match hides IUS", MATCH, BEFORE, NULL, NULL, true, OK},
        {"IM miss with IUS ok", MISS, AFTER, NULL, NULL, true, PF},
        /* Step 2: If-Unmodified-Since, only without If-Match. */
        {"IUS before", NULL, BEFORE, NULL, NULL, true, PF},
        {"IUS before, PUT", NULL, BEFORE, NULL, NULL, false, PF},
        {"IUS equal", NULL, EQ, NULL, NULL, true, OK},
        {"IUS after", NULL, AFTER, NULL, NULL, true, OK},
        {"IUS unparsable", NULL, BAD, NULL, NULL, true, OK},
        {"IUS future", NULL, FUTURE, NULL, NULL, true, OK},
        /* Step 3: If-None-Match. */
        {"INM match GET", NULL, NULL, MATCH, NULL, true, NM},
        {"INM match PUT", NULL, NULL, MATCH, NULL, false, PF},
        {"INM weak match GET", NULL, NULL, "W/\"abc\"", NULL, true, NM},
        {"INM star GET", NULL, NULL, "*", NULL, true, NM},
        {"INM star PUT", NULL, NULL, "*", NULL, false, PF},
        {"INM miss", NULL, NULL, MISS, NULL, true, OK},
        {"INM miss hides IMS", NULL, NULL, MISS, EQ, true, OK},
        {"INM malformed hides IMS", NULL, NULL, "garbage", EQ, true, OK},
        /* Step 4: If-Modified-Since, only without If-None-Match, GET/HEAD only. */
        {"IMS equal", NULL, NULL, NULL, EQ, true, NM},
        {"IMS after", NULL, NULL, NULL, AFTER, true, NM},
        {"IMS before", NULL, NULL, NULL, BEFORE, true, OK},
        {"IMS unparsable", NULL, NULL, NULL, BAD, true, OK},
        {"IMS future", NULL, NULL, NULL, FUTURE, true, OK},
        {"IMS equal, PUT", NULL, NULL, NULL, EQ, false, OK},
        {"IMS RFC 850", NULL, NULL, NULL, "Sunday, 06-Nov-94 08:49:37 GMT", true, NM},
        {"IMS asctime", NULL, NULL, NULL, "Sun Nov  6 08:49:37 1994", true, NM},
        {"IMS with OWS", NULL, NULL, NULL, " Sun, 06 Nov 1994 08:49:37 GMT\t", true, NM},
        {"IMS two dates", NULL, NULL, NULL,
         "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", true, OK},
        {"IMS one second early", NULL, NULL, NULL, "Sun, 06 Nov 1994 08:49:36 GMT", true, OK},
        /* Order between the steps. */
        {"IM miss beats INM match", MISS, NULL, MATCH, NULL, true, PF},
        {"IM miss beats IMS", MISS, NULL, NULL, EQ, true, PF},
        {"IUS fail beats INM match", NULL, BEFORE, MATCH, NULL, true, PF},
        {"IUS fail beats IMS", NULL, BEFORE, NULL, EQ, true, PF},
        {"IM match then INM match", MATCH, NULL, MATCH, NULL, true, NM},
        {"IM match then INM match PUT", MATCH, NULL, MATCH, NULL, false, PF},
        {"IUS ok then IMS", NULL, AFTER, NULL, EQ, true, NM},
        {"all four, all pass", MATCH, BEFORE, MISS, BEFORE, true, OK},
        /* Present but empty. */
        {"IM empty", "", NULL, NULL, NULL, true, PF},
        {"INM empty", NULL, NULL, "", NULL, true, OK},
        {"IMS empty", NULL, NULL, NULL, "", true, OK},
        {"IUS empty", NULL, "", NULL, NULL, true, OK},
    };
    run_order(t, sizeof t / sizeof t[0]);
}

/* A representation without an ETag: "*" still matches, a list never does. */
Test(static_cond, no_etag, .timeout = 10)
{
    struct static_cond c = {.if_match = "*", .if_match_len = 1};
    cr_expect_eq((int)static_cond_evaluate(&c, NULL, 0, MTIME, true), OK);
    c.if_match = "\"abc\"", c.if_match_len = 5;
    cr_expect_eq((int)static_cond_evaluate(&c, NULL, 0, MTIME, true), PF);
    struct static_cond d = {.if_none_match = "*", .if_none_match_len = 1};
    cr_expect_eq((int)static_cond_evaluate(&d, NULL, 0, MTIME, true), NM);
    d.if_none_match = "\"abc\"", d.if_none_match_len = 5;
    cr_expect_eq((int)static_cond_evaluate(&d, NULL, 0, MTIME, true), OK);
    /* A malformed tag of ours behaves as no tag. */
    cr_expect_eq((int)static_cond_evaluate(&d, "abc", 3, MTIME, true), OK);
}

/* Field values are read by length, not up to a NUL. */
Test(static_cond, lengths_are_respected, .timeout = 10)
{
    const char *v = "\"abc\"garbage";
    struct static_cond c = {.if_none_match = v, .if_none_match_len = 5};
    cr_expect_eq((int)static_cond_evaluate(&c, OURS, 5, MTIME, true), NM);
    c.if_none_match_len = 6;
    cr_expect_eq((int)static_cond_evaluate(&c, OURS, 5, MTIME, true), OK);
    /* Our own tag too. */
    c.if_none_match_len = 5;
    cr_expect_eq((int)static_cond_evaluate(&c, "\"abc\"xyz", 5, MTIME, true), NM);
}

/* ---- Range ---- */

struct range_case {
    const char *v;
    uint64_t size;
    int want;
    uint64_t first, last;
};

#define R_OK STATIC_RANGE_OK
#define R_IGN STATIC_RANGE_IGNORE
#define R_416 STATIC_RANGE_UNSATISFIABLE

static const struct range_case ranges[] = {
    /* RFC 9110 14.1.2, a representation of 10000 bytes. */
    {"bytes=0-499", 10000, R_OK, 0, 499},
    {"bytes=500-999", 10000, R_OK, 500, 999},
    {"bytes=-500", 10000, R_OK, 9500, 9999},
    {"bytes=9500-", 10000, R_OK, 9500, 9999},
    {"bytes=0-0", 10000, R_OK, 0, 0},
    {"bytes=-1", 10000, R_OK, 9999, 9999},
    {"bytes=0-999,4500-5499,-1000", 10000, R_IGN, 0, 0},
    {"bytes=500-600,601-999", 10000, R_IGN, 0, 0},
    {"bytes=500-700,601-999", 10000, R_IGN, 0, 0},
    /* Ends and clamping. */
    {"bytes=9999-", 10000, R_OK, 9999, 9999},
    {"bytes=9999-9999", 10000, R_OK, 9999, 9999},
    {"bytes=0-9999", 10000, R_OK, 0, 9999},
    {"bytes=0-10000", 10000, R_OK, 0, 9999},
    {"bytes=0-99999999", 10000, R_OK, 0, 9999},
    {"bytes=-10000", 10000, R_OK, 0, 9999},
    {"bytes=-20000", 10000, R_OK, 0, 9999},
    {"bytes=0-", 1, R_OK, 0, 0},
    {"bytes=-1", 1, R_OK, 0, 0},
    {"bytes=000-001", 10000, R_OK, 0, 1},
    /* Unsatisfiable. */
    {"bytes=10000-", 10000, R_416, 0, 0},
    {"bytes=10000-20000", 10000, R_416, 0, 0},
    {"bytes=-0", 10000, R_416, 0, 0},
    {"bytes=-000", 10000, R_416, 0, 0},
    {"bytes=0-", 0, R_416, 0, 0},
    {"bytes=0-0", 0, R_416, 0, 0},
    {"bytes=-5", 0, R_416, 0, 0},
    {"bytes=1-", 1, R_416, 0, 0},
    /* Case, whitespace and empty elements. */
    {"BYTES=0-1", 10000, R_OK, 0, 1},
    {"Bytes=0-1", 10000, R_OK, 0, 1},
    {"bytes = 0-1", 10000, R_OK, 0, 1},
    {" bytes=0-1 ", 10000, R_OK, 0, 1},
    {"bytes=\t0-1\t", 10000, R_OK, 0, 1},
    {"bytes=0-1,", 10000, R_OK, 0, 1},
    {"bytes=,0-1", 10000, R_OK, 0, 1},
    {"bytes=, ,0-1 , ,", 10000, R_OK, 0, 1},
    /* Ignored: syntax, other units, last < first. */
    {"bytes=5-4", 10000, R_IGN, 0, 0},
    {"bytes=", 10000, R_IGN, 0, 0},
    {"bytes=,", 10000, R_IGN, 0, 0},
    {"bytes=-", 10000, R_IGN, 0, 0},
    {"bytes=a-b", 10000, R_IGN, 0, 0},
    {"bytes=1-2-3", 10000, R_IGN, 0, 0},
    {"bytes=--1", 10000, R_IGN, 0, 0},
    {"bytes=-1-", 10000, R_IGN, 0, 0},
    {"bytes=1", 10000, R_IGN, 0, 0},
    {"bytes=+1-2", 10000, R_IGN, 0, 0},
    {"bytes=1-+2", 10000, R_IGN, 0, 0},
    {"bytes=0x1-2", 10000, R_IGN, 0, 0},
    {"bytes=0 -1", 10000, R_IGN, 0, 0},
    {"bytes=0- 1", 10000, R_IGN, 0, 0},
    {"bytes=0-1;", 10000, R_IGN, 0, 0},
    {"bytes=0-1 2", 10000, R_IGN, 0, 0},
    {"bytes=0-1,x", 10000, R_IGN, 0, 0},
    {"bytes=0-1,5-4", 10000, R_IGN, 0, 0},
    {"bytes==0-1", 10000, R_IGN, 0, 0},
    {"bytes0-1", 10000, R_IGN, 0, 0},
    {"bytesx=0-1", 10000, R_IGN, 0, 0},
    {"byte=0-1", 10000, R_IGN, 0, 0},
    {"items=0-1", 10000, R_IGN, 0, 0},
    {"=0-1", 10000, R_IGN, 0, 0},
    {"0-1", 10000, R_IGN, 0, 0},
    {"", 10000, R_IGN, 0, 0},
    {"bytes", 10000, R_IGN, 0, 0},
    {"bytes=5-4", 0, R_IGN, 0, 0},
    /* Numbers too large for 64 bits saturate instead of wrapping. */
    {"bytes=18446744073709551615-", 10000, R_416, 0, 0},
    {"bytes=18446744073709551616-", 10000, R_416, 0, 0},
    {"bytes=99999999999999999999999999999999-", 10000, R_416, 0, 0},
    {"bytes=0-18446744073709551616", 10000, R_OK, 0, 9999},
    {"bytes=0-99999999999999999999999999999999", 10000, R_OK, 0, 9999},
    {"bytes=-99999999999999999999999999999999", 10000, R_OK, 0, 9999},
    {"bytes=18446744073709551614-", UINT64_MAX, R_OK, UINT64_MAX - 1, UINT64_MAX - 1},
    {"bytes=0-", UINT64_MAX, R_OK, 0, UINT64_MAX - 1},
    {"bytes=-18446744073709551615", UINT64_MAX, R_OK, 0, UINT64_MAX - 1},
    {"bytes=-1", UINT64_MAX, R_OK, UINT64_MAX - 1, UINT64_MAX - 1},
    /* 1844674407370955161 * 10 + 6 would wrap to 0 without saturation. */
    {"bytes=-184467440737095516160", 10000, R_OK, 0, 9999},
};

Test(http_range, table, .timeout = 10)
{
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const struct range_case *r = &ranges[i];
        uint64_t first = 777, last = 777;
        int rc = static_range_parse(r->v, strlen(r->v), r->size, &first, &last);
        cr_expect_eq(rc, r->want, "\"%s\" size %llu: %d", r->v, (unsigned long long)r->size, rc);
        if (rc == R_OK && r->want == R_OK) {
            cr_expect_eq(first, r->first, "\"%s\" first %llu", r->v, (unsigned long long)first);
            cr_expect_eq(last, r->last, "\"%s\" last %llu", r->v, (unsigned long long)last);
        }
    }
}

Test(http_range, length_is_respected, .timeout = 10)
{
    uint64_t first, last;
    const char *v = "bytes=0-12345,garbage";
    cr_expect_eq(static_range_parse(v, 11, 10000, &first, &last), R_OK);
    cr_expect_eq(first, 0);
    cr_expect_eq(last, 123);
    cr_expect_eq(static_range_parse(v, 15, 10000, &first, &last), R_IGN);
    cr_expect_eq(static_range_parse(NULL, 0, 10000, &first, &last), R_IGN);
}

/* ---- If-Range ---- */

Test(http_if_range, table, .timeout = 10, .init = fmt)
{
    const struct {
        const char *v;
        const char *ours;
        time_t mtime;
        bool want;
    } t[] = {
        {"\"abc\"", OURS, MTIME, true},
        {" \"abc\" ", OURS, MTIME, true},
        {"W/\"abc\"", OURS, MTIME, false},
        {"\"abc\"", "W/\"abc\"", MTIME, false},
        {"W/\"abc\"", "W/\"abc\"", MTIME, false},
        {"\"abd\"", OURS, MTIME, false},
        {"\"ABC\"", OURS, MTIME, false},
        {"\"abc\", \"abc\"", OURS, MTIME, false},
        {"\"abc", OURS, MTIME, false},
        {"*", OURS, MTIME, false},
        {"\"abc\"", NULL, MTIME, false},
        {d_eq, OURS, MTIME, true},
        {"Sunday, 06-Nov-94 08:49:37 GMT", OURS, MTIME, true},
        {"Sun Nov  6 08:49:37 1994", OURS, MTIME, true},
        {d_before, OURS, MTIME, false},
        {d_after, OURS, MTIME, false},
        {"Sun, 06 Nov 1994 08:49:38 GMT", OURS, MTIME, false},
        {"Sun, 06 Nov 1994 08:49:36 GMT", OURS, MTIME, false},
        {"Wed, 01 Jan 2999 00:00:00 GMT", OURS, (time_t)32472144000, false}, /* mtime not over */
        {"yesterday", OURS, MTIME, false},
        {"W", OURS, MTIME, false},
        {"W/", OURS, MTIME, false},
        {"", OURS, MTIME, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t ol = t[i].ours ? strlen(t[i].ours) : 0;
        cr_expect_eq(static_if_range_ok(t[i].v, strlen(t[i].v), t[i].ours, ol, t[i].mtime),
                     t[i].want, "If-Range: %s (ours %s)", t[i].v, t[i].ours ? t[i].ours : "none");
    }
}

/* A Last-Modified from this very second is not a strong validator yet. */
Test(http_if_range, date_of_current_second, .timeout = 10)
{
    time_t now = time(NULL) + 2; /* a second or two ahead covers a clock tick during the test */
    char d[HTTP_DATE_LEN + 1];
    http_date_format(now, d);
    cr_expect_not(static_if_range_ok(d, HTTP_DATE_LEN, OURS, 5, now));
}

/* ---- Content-Range ---- */

Test(static_content_range, forms, .timeout = 10)
{
    char out[STATIC_CONTENT_RANGE_MAX];
    cr_expect_eq(static_content_range(out, sizeof out, 42, 1233, 1234), 18);
    cr_expect_str_eq(out, "bytes 42-1233/1234"); /* RFC 9110 14.4 */
    cr_expect_eq(static_content_range(out, sizeof out, 0, 0, 1), 11);
    cr_expect_str_eq(out, "bytes 0-0/1");
    cr_expect_eq(static_content_range_unsatisfied(out, sizeof out, 1234), 12);
    cr_expect_str_eq(out, "bytes */1234"); /* RFC 9110 14.4 */
    cr_expect_eq(static_content_range_unsatisfied(out, sizeof out, 0), 9);
    cr_expect_str_eq(out, "bytes */0");

    size_t n = static_content_range(out, sizeof out, UINT64_MAX, UINT64_MAX, UINT64_MAX);
    cr_expect_eq(n, 68);
    cr_expect_str_eq(out, "bytes 18446744073709551615-18446744073709551615/18446744073709551615");
    char small[80];
    cr_expect_eq(static_content_range(small, 69, UINT64_MAX, UINT64_MAX, UINT64_MAX), 68);
    cr_expect_eq(static_content_range(small, 68, UINT64_MAX, UINT64_MAX, UINT64_MAX), 0);
    cr_expect_eq(static_content_range_unsatisfied(small, 12, 1234), 0);
    cr_expect_eq(static_content_range_unsatisfied(small, 13, 1234), 12);
    cr_expect_eq(static_content_range(small, 0, 1, 2, 3), 0);
}
