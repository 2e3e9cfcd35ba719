/* date.c — HTTP-date: IMF-fixdate formatting, parsing of the three RFC 9110 forms, a per-second cache. */
#include "date.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * Calendar arithmetic is done here rather than with gmtime_r/timegm: timegm
 * is not standard C, both consult the TZ machinery on some libcs, and the
 * proleptic Gregorian calendar in UTC is a few lines of integer arithmetic.
 * Days are counted from 1970-01-01; a 400-year "era" has 146097 days, and
 * shifting the year to start in March puts the leap day at the end of it.
 */

static const char wday_short[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wday_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char month_name[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The years a four-digit field can hold, as days since the epoch:
 * 0000-01-01 and 10000-01-01. */
#define DAYS_MIN (-719528LL)
#define DAYS_END 2932897LL

struct civil {
    int64_t year;
    int mon; /* 1-12 */
    int day; /* 1-31 */
    int hour, min, sec;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                               /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;      /* 0..146096 */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, struct civil *c)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->year = yoe + era * 400 + (c->mon <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const unsigned char len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

static time_t civil_to_time(const struct civil *c)
{
    int64_t days = days_from_civil(c->year, c->mon, c->day);
    return (time_t)(days * 86400 + c->hour * 3600 + c->min * 60 + c->sec);
}

/* ---- formatting ---- */

static char *put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

size_t http_date_format(time_t t, char out[HTTP_DATE_LEN + 1])
{
    int64_t days = floor_div((int64_t)t, 86400);
    if (days < DAYS_MIN || days >= DAYS_END) {
        out[0] = '\0';
        return 0;
    }
    int secs = (int)((int64_t)t - days * 86400);
    struct civil c;
    civil_from_days(days, &c);
    int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */

    char *p = out;
    memcpy(p, wday_short[wd], 3);
    memcpy(p + 3, ", ", 2);
    p = put2(p + 5, c.day);
    *p++ = ' ';
    memcpy(p, month_name[c.mon - 1], 3);
    p[3] = ' ';
    p = put2(p + 4, (int)(c.year / 100));
    p = put2(p, (int)(c.year % 100));
    *p++ = ' ';
    p = put2(p, secs / 3600);
    *p++ = ':';
    p = put2(p, secs / 60 % 60);
    *p++ = ':';
    p = put2(p, secs % 60);
    memcpy(p, " GMT", 5);
    return HTTP_DATE_LEN;
}

const char *http_date_cached(struct http_date_memo *m, time_t t)
{
    if (!m->valid || t != m->t) {
        http_date_format(t, m->text);
        m->t = t;
        m->valid = true;
    }
    return m->text;
}

const char *http_date_now(time_t now)
{
    static struct http_date_memo memo;
    return http_date_cached(&memo, now);
}

/* ---- parsing ---- */

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int find_month(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_name[i], 3) == 0)
            return i + 1;
    return 0;
}

static bool is_wday_short(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, wday_short[i], 3) == 0)
            return true;
    return false;
}

/* "HH:MM:SS" at s (8 bytes). */
static bool parse_time(const char *s, struct civil *c)
{
    if (s[2] != ':' || s[5] != ':')
        return false;
    c->hour = digits(s, 2);
    c->min = digits(s + 3, 2);
    c->sec = digits(s + 6, 2);
    return c->hour >= 0 && c->hour <= 23 && c->min >= 0 && c->min <= 59 && c->sec >= 0 &&
           c->sec <= 60;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (the caller checked the length). */
static bool parse_imf(const char *s, struct civil *c)
{
    if (!is_wday_short(s) || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || memcmp(s + 25, " GMT", 4) != 0)
        return false;
    c->day = digits(s + 5, 2);
    c->mon = find_month(s + 8);
    c->year = digits(s + 12, 4);
    return c->day >= 0 && c->mon && c->year >= 0 && parse_time(s + 17, c);
}

/* "Sun Nov  6 08:49:37 1994" (the caller checked the length). The day is
 * 2DIGIT or SP DIGIT. */
static bool parse_asctime(const char *s, struct civil *c)
{
    if (!is_wday_short(s) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
        return false;
    c->mon = find_month(s + 4);
    c->day = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
    c->year = digits(s + 20, 4);
    return c->mon && c->day >= 0 && c->year >= 0 && parse_time(s + 11, c);
}

/*
 * Give a two-digit year its century: the candidate nearest to now that is
 * not more than 50 years after now (RFC 9110 5.6.7). "More than 50 years"
 * is measured to the second, so the whole timestamp is compared.
 */
static void fix_century(struct civil *c, int yy, time_t now)
{
    int64_t today = floor_div((int64_t)now, 86400);
    struct civil n;
    civil_from_days(today, &n);
    int64_t limit = days_from_civil(n.year + 50, n.mon, n.day) * 86400 +
                    ((int64_t)now - today * 86400);

    c->year = n.year - ((n.year % 100) + 100) % 100 + yy;
    if ((int64_t)civil_to_time(c) > limit)
        c->year -= 100;
    else {
        c->year += 100;
        if ((int64_t)civil_to_time(c) > limit)
            c->year -= 100;
    }
}

/* "Sunday, 06-Nov-94 08:49:37 GMT". */
static bool parse_rfc850(const char *s, size_t n, time_t now, struct civil *c)
{
    size_t wl = 0;
    for (int i = 0; i < 7 && !wl; i++) {
        size_t l = strlen(wday_long[i]);
        if (n == l + 24 && memcmp(s, wday_long[i], l) == 0)
            wl = l;
    }
    if (!wl)
        return false;
    s += wl;
    if (memcmp(s, ", ", 2) != 0 || s[4] != '-' || s[8] != '-' || s[11] != ' ' ||
        memcmp(s + 20, " GMT", 4) != 0)
        return false;
    c->day = digits(s + 2, 2);
    c->mon = find_month(s + 5);
    int yy = digits(s + 9, 2);
    if (c->day < 0 || !c->mon || yy < 0 || !parse_time(s + 12, c))
        return false;
    /* The century depends on the day's validity only through Feb 29, which
     * fix_century's arithmetic tolerates; the day is checked afterwards. */
    fix_century(c, yy, now);
    return true;
}

int http_date_parse_at(const char *s, size_t n, time_t now, time_t *out)
{
    struct civil c;
    bool ok;

    if (n == HTTP_DATE_LEN && s[3] == ',')
        ok = parse_imf(s, &c);
    else if (n == 24 && s[3] == ' ')
        ok = parse_asctime(s, &c);
    else
        ok = n >= 30 && parse_rfc850(s, n, now, &c);
    if (!ok || c.day < 1 || c.day > month_days(c.year, c.mon))
        return -EINVAL;
    *out = civil_to_time(&c);
    return 0;
}

int http_date_parse(const char *s, size_t n, time_t *out)
{
    return http_date_parse_at(s, n, time(NULL), out);
}
