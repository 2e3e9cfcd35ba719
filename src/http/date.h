/* date.h — HTTP-date (RFC 9110 5.6.7): format as IMF-fixdate, parse all three forms, cache the current one. */
#ifndef PF_HTTP_DATE_H
#define PF_HTTP_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Length of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", without the NUL. */
#define HTTP_DATE_LEN 29

/*
 * Write t as an IMF-fixdate plus a NUL into out. Returns HTTP_DATE_LEN, or 0
 * (and an empty string) when t falls outside the years 0000-9999 that the
 * four-digit year can say: the caller then omits the field (a file with such
 * an mtime gets no Last-Modified). No locale, no strftime, no allocation.
 */
size_t http_date_format(time_t t, char out[HTTP_DATE_LEN + 1]);

/*
 * Parse an HTTP-date of s[0..n) (no NUL needed) in any of the three forms a
 * recipient must accept: IMF-fixdate, the obsolete RFC 850 form with a
 * two-digit year, and asctime's form. Strict: exact shape, case-sensitive
 * names, valid ranges (second 60 is allowed for a leap second), no leading or
 * trailing bytes. The day name is not checked against the date, as the
 * grammar does not tie them. Returns 0 with *out set, or -EINVAL.
 */
int http_date_parse(const char *s, size_t n, time_t *out);

/* The same, with "now" given: it only matters for the RFC 850 two-digit year,
 * read as the most recent year with those digits that is not more than 50
 * years after now. http_date_parse() passes time(NULL); tests pass a fixed now. */
int http_date_parse_at(const char *s, size_t n, time_t now, time_t *out);

/* One formatted date kept for reuse: the same time formats once. */
struct http_date_memo {
    time_t t;
    bool valid;
    char text[HTTP_DATE_LEN + 1];
};

/* t's IMF-fixdate (empty when out of range, as http_date_format), formatted
 * only when t differs from the last one asked of m. Valid until the next
 * call with m. */
const char *http_date_cached(struct http_date_memo *m, time_t t);

/*
 * The IMF-fixdate of now, reformatted only when the second changes. The
 * string lives in one static buffer per process and stays valid until the
 * next call with another second: meant for the Date field of a worker, which
 * is single-threaded. Not thread-safe.
 */
const char *http_date_now(time_t now);

#endif
