/* test_http_date.c — unit tests for HTTP-date formatting, parsing (three forms) and the per-second cache. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../src/http/date.h"

/* A fixed "now" for the RFC 850 century rule: 2025-06-01 12:00:00 UTC. */
#define NOW_2025 ((time_t)1748779200)

static int parse_at(const char *s, time_t now, time_t *out)
{
    return http_date_parse_at(s, strlen(s), now, out);
}

/* ---- formatting ---- */

struct fmt_case {
    time_t t;
    const char *text; /* "" when out of range */
};

static const struct fmt_case fmts[] = {
    {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"}, /* RFC 9110 5.6.7 */
    {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
    {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
    {-2203891200, "Thu, 01 Mar 1900 00:00:00 GMT"},
    {2147483648, "Tue, 19 Jan 2038 03:14:08 GMT"},
    {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {-62135596800, "Mon, 01 Jan 0001 00:00:00 GMT"},
    {-62167219200, "Sat, 01 Jan 0000 00:00:00 GMT"},
    {253402300800, ""},
    {-62167219201, ""},
    {INT64_MAX, ""},
    {INT64_MIN, ""},
};

Test(http_date, format_table, .timeout = 10)
{
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        char out[HTTP_DATE_LEN + 1];
        memset(out, 'x', sizeof out);
        size_t n = http_date_format(fmts[i].t, out);
        cr_expect_eq(n, strlen(fmts[i].text), "t=%lld", (long long)fmts[i].t);
        cr_expect_str_eq(out, fmts[i].text, "t=%lld", (long long)fmts[i].t);
    }
}

/* Compare with gmtime_r over many instants spread across 0000-9999, and check
 * that every formatted date parses back to itself. */
Test(http_date, format_matches_gmtime_and_roundtrips, .timeout = 10)
{
    static const char *wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const int64_t lo = -62167219200LL, span = 253402300800LL - lo;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        time_t t = (time_t)(lo + (int64_t)(x % (uint64_t)span));
        struct tm tm;
        cr_assert(gmtime_r(&t, &tm));
        char want[64], got[HTTP_DATE_LEN + 1];
        snprintf(want, sizeof want, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
                 tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cr_assert_eq(http_date_format(t, got), HTTP_DATE_LEN);
        cr_assert_str_eq(got, want);
        time_t back;
        cr_assert_eq(http_date_parse(got, HTTP_DATE_LEN, &back), 0, "%s", got);
        cr_assert_eq(back, t, "%s", got);
    }
}

/* ---- parsing ---- */

struct parse_case {
    const char *text;
    time_t t; /* ignored when !ok */
    bool ok;
};

static const struct parse_case parses[] = {
    /* The three forms of RFC 9110 5.6.7, all the same instant. */
    {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777, true},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777, true},
    {"Sun Nov  6 08:49:37 1994", 784111777, true},
    /* Each day name in each form (the day name is not checked against the date). */
    {"Mon, 06 Nov 1994 08:49:37 GMT", 784111777, true},
    {"Monday, 06-Nov-94 08:49:37 GMT", 784111777, true},
    {"Tuesday, 06-Nov-94 08:49:37 GMT", 784111777, true},
    {"Wednesday, 06-Nov-94 08:49:37 GMT", 784111777, true},
    {"Thursday, 06-Nov-94 08:49:37 GMT", 784111777, true},
    {"Friday, 06-Nov-94 08:49:37 GMT", 784111777, true},
    {"Saturday, 06-Nov-94 08:49:37 GMT", 784111777, true},
    {"Sat Nov 06 08:49:37 1994", 784111777, true}, /* asctime: 2DIGIT day */
    {"Thu Nov 16 08:49:37 1994", 784111777 + 10 * 86400, true},
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0, true},
    {"Wed, 31 Dec 1969 23:59:59 GMT", -1, true},
    {"Sat, 01 Jan 0000 00:00:00 GMT", -62167219200, true},
    {"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799, true},
    /* Leap years, and the leap second (23:59:60 is the next day's 00:00:00). */
    {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400, true},
    {"Thu, 29 Feb 2024 00:00:00 GMT", 1709164800, true},
    {"Thu, 29 Feb 1900 00:00:00 GMT", 0, false},
    {"Wed, 29 Feb 2023 00:00:00 GMT", 0, false},
    {"Tuesday, 29-Feb-00 00:00:00 GMT", 951782400, true},
    {"Tue Feb 29 00:00:00 2000", 951782400, true},
    {"Tue Feb 29 00:00:00 2100", 0, false},
    {"Sat, 31 Dec 2016 23:59:60 GMT", 1483228800, true},
    /* Ranges. */
    {"Sun, 00 Nov 1994 08:49:37 GMT", 0, false},
    {"Sun, 32 Jan 1994 08:49:37 GMT", 0, false},
    {"Sun, 31 Apr 1994 08:49:37 GMT", 0, false},
    {"Sun, 30 Apr 1994 08:49:37 GMT", 767695777, true},
    {"Sun, 06 Nov 1994 24:00:00 GMT", 0, false},
    {"Sun, 06 Nov 1994 23:60:00 GMT", 0, false},
    {"Sun, 06 Nov 1994 23:59:61 GMT", 0, false},
    {"Sun Nov  0 08:49:37 1994", 0, false},
    {"Sun Nov 31 08:49:37 1994", 0, false},
    {"Sunday, 31-Nov-94 08:49:37 GMT", 0, false},
    /* Case-sensitive names. */
    {"sun, 06 Nov 1994 08:49:37 GMT", 0, false},
    {"Sun, 06 nov 1994 08:49:37 GMT", 0, false},
    {"Sun, 06 Nov 1994 08:49:37 gmt", 0, false},
    {"SUNDAY, 06-Nov-94 08:49:37 GMT", 0, false},
    {"Sun NOV  6 08:49:37 1994", 0, false},
    /* Wrong shapes. */
    {"Sun, 06 Nov 1994 08:49:37 UTC", 0, false},
    {"Sun, 06 Nov 1994 08:49:37 +0000", 0, false},
    {"Sun, 6 Nov 1994 08:49:37 GMT", 0, false},
    {"Sun, 06 Nov 94 08:49:37 GMT", 0, false},
    {"Sun, 06-Nov-1994 08:49:37 GMT", 0, false},
    {"Sun, 06 Nov 1994 8:49:37 GMT", 0, false},
    {"Sun,  06 Nov 1994 08:49:37 GMT", 0, false},
    {"Sun 06 Nov 1994 08:49:37 GMT", 0, false},
    {"Sun, 06 Nov 1994 08-49-37 GMT", 0, false},
    {"Sun, 06 Nov 1994 08:49:3x GMT", 0, false},
    {"Sun, 06 Nov +994 08:49:37 GMT", 0, false},
    {"Xyz, 06 Nov 1994 08:49:37 GMT", 0, false},
    {"Sunday, 06 Nov 1994 08:49:37 GMT", 0, false},
    {"Sunday, 06-Nov-1994 08:49:37 GMT", 0, false},
    {"Sunday, 6-Nov-94 08:49:37 GMT", 0, false},
    {"Sunday,06-Nov-94 08:49:37 GMT  ", 0, false},
    {"Sun, 06-Nov-94 08:49:37 GMT", 0, false},
    {"Sund, 06-Nov-94 08:49:37 GMT", 0, false},
    {"Sundayy, 06-Nov-94 08:49:37 GMT", 0, false},
    {"Sunday, 06-Nov-94 08:49:37 GMT ", 0, false},
    {"Sunday, 06 Nov 94 08:49:37 GMT", 0, false},
    {"Sun Nov 6 08:49:37 1994", 0, false},
    {"Sun Nov  6 08:49:37 94", 0, false},
    {"Sun Nov  6 08:49:37 1994 GMT", 0, false},
    {"Sun  Nov 6 08:49:37 1994", 0, false},
    {"Sun Nov   6 08:49:37 1994", 0, false},
    {"Sun Nov _6 08:49:37 1994", 0, false},
    {" Sun, 06 Nov 1994 08:49:37 GMT", 0, false},
    {"Sun, 06 Nov 1994 08:49:37 GMT ", 0, false},
    {"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", 0, false},
    {"784111777", 0, false},
    {"", 0, false},
};

Test(http_date, parse_table, .timeout = 10)
{
    for (size_t i = 0; i < sizeof parses / sizeof parses[0]; i++) {
        const struct parse_case *c = &parses[i];
        time_t t = 12345;
        int rc = parse_at(c->text, NOW_2025, &t);
        if (c->ok) {
            cr_expect_eq(rc, 0, "\"%s\"", c->text);
            cr_expect_eq(t, c->t, "\"%s\": %lld", c->text, (long long)t);
        } else {
            cr_expect_eq(rc, -EINVAL, "\"%s\" should fail", c->text);
            cr_expect_eq(t, 12345, "\"%s\" wrote *out", c->text);
        }
    }
}

/* Every valid form stops being valid when cut short or extended. */
Test(http_date, parse_rejects_prefixes_and_suffixes, .timeout = 10)
{
    static const char *const good[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Wednesday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t n = strlen(good[i]);
        time_t t;
        cr_assert_eq(http_date_parse_at(good[i], n, NOW_2025, &t), 0);
        for (size_t k = 0; k < n; k++)
            cr_expect_eq(http_date_parse_at(good[i], k, NOW_2025, &t), -EINVAL, "%zu of %s", k,
                         good[i]);
        char longer[64];
        snprintf(longer, sizeof longer, "%sX", good[i]);
        cr_expect_eq(http_date_parse_at(longer, n + 1, NOW_2025, &t), -EINVAL);
        /* Only n bytes are read: what follows them does not matter. */
        cr_expect_eq(http_date_parse_at(longer, n, NOW_2025, &t), 0);
    }
}

Test(http_date, parse_rejects_nul_inside, .timeout = 10)
{
    char s[] = "Sun, 06 Nov 1994 08:49:37 GMT";
    time_t t;
    for (size_t k = 0; k < HTTP_DATE_LEN; k++) {
        char c = s[k];
        s[k] = '\0';
        cr_expect_eq(http_date_parse(s, HTTP_DATE_LEN, &t), -EINVAL, "NUL at %zu", k);
        s[k] = c;
    }
}

/* RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the
 * most recent past year with those digits. */
struct century_case {
    const char *text;
    time_t now;
    int year;
};

static const struct century_case centuries[] = {
    {"Thursday, 01-Jan-70 00:00:00 GMT", NOW_2025, 2070},
    {"Thursday, 01-Jan-75 00:00:00 GMT", NOW_2025, 2075}, /* 49.4 years ahead */
    {"Thursday, 01-Jun-75 12:00:00 GMT", NOW_2025, 2075}, /* exactly 50 years */
    {"Thursday, 01-Jun-75 12:00:01 GMT", NOW_2025, 1975}, /* one second more */
    {"Thursday, 06-Nov-75 00:00:00 GMT", NOW_2025, 1975},
    {"Thursday, 01-Jan-99 00:00:00 GMT", NOW_2025, 1999},
    {"Thursday, 01-Jan-00 00:00:00 GMT", NOW_2025, 2000},
    {"Thursday, 01-Jan-25 00:00:00 GMT", NOW_2025, 2025},
    {"Thursday, 01-Jan-26 00:00:00 GMT", NOW_2025, 2026},
    /* Around a century's end, 2099-01-01: "05" is 2105, "60" is 2060. */
    {"Thursday, 01-Jan-05 00:00:00 GMT", 4070908800, 2105},
    {"Thursday, 01-Jan-60 00:00:00 GMT", 4070908800, 2060},
    {"Thursday, 01-Jan-48 00:00:00 GMT", 4070908800, 2148},
    {"Thursday, 01-Jan-50 00:00:00 GMT", 4070908800, 2050},
    /* In 1994, the example's own year. */
    {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777, 1994},
    {"Sunday, 06-Nov-44 08:49:37 GMT", 784111777, 2044},
    {"Sunday, 06-Nov-45 08:49:37 GMT", 784111777, 1945},
};

Test(http_date, rfc850_century_rule, .timeout = 10)
{
    for (size_t i = 0; i < sizeof centuries / sizeof centuries[0]; i++) {
        const struct century_case *c = &centuries[i];
        time_t t;
        cr_assert_eq(parse_at(c->text, c->now, &t), 0, "%s", c->text);
        struct tm tm;
        cr_assert(gmtime_r(&t, &tm));
        cr_expect_eq(tm.tm_year + 1900, c->year, "%s at %lld: %d", c->text, (long long)c->now,
                     tm.tm_year + 1900);
    }
}

Test(http_date, parse_uses_current_time_for_rfc850, .timeout = 10)
{
    time_t t;
    cr_assert_eq(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), 0);
    cr_expect_eq(t, 784111777); /* true until 2044 */
}

/* ---- the cache ---- */

Test(http_date, now_cache, .timeout = 10)
{
    const char *a = http_date_now(784111777);
    cr_expect_str_eq(a, "Sun, 06 Nov 1994 08:49:37 GMT");
    const char *b = http_date_now(784111777);
    cr_expect_eq(a, b, "one static buffer");
    cr_expect_str_eq(b, "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_expect_str_eq(http_date_now(784111778), "Sun, 06 Nov 1994 08:49:38 GMT");
    cr_expect_str_eq(http_date_now(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_expect_str_eq(http_date_now(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

/* The very first call must format even for a time equal to the cache's zeroed state. */
Test(http_date, now_cache_first_call_at_epoch, .timeout = 10)
{
    cr_expect_str_eq(http_date_now(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* A memo of its own per use: two memos do not disturb each other, and a
 * time out of range memoizes as the empty string. */
Test(http_date, memo, .timeout = 10)
{
    struct http_date_memo a = {0}, b = {0};
    cr_expect_str_eq(http_date_cached(&a, 0), "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_expect_str_eq(http_date_cached(&b, 784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_expect_str_eq(http_date_cached(&a, 0), "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_expect_str_eq(http_date_cached(&a, (time_t)400000000000LL), "");
    cr_expect_str_eq(http_date_cached(&a, 784111778), "Sun, 06 Nov 1994 08:49:38 GMT");
    cr_expect_str_eq(http_date_cached(&b, 784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}
