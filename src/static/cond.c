/* cond.c — ETags, precondition evaluation (RFC 9110 13.2.2), Range and If-Range, Content-Range. */
#include "static/cond.h"

#include <string.h>

#include "http/date.h"

/* ---- writing numbers ---- */

/* Write v in base 16 or 10 at p; returns the end. At most 20 digits. */
static char *put_uint(char *p, uint64_t v, unsigned base)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Each value is written into a local buffer sized for the worst case,
 * then copied if it fits, so no path can write past cap. */
static size_t copy_out(char *out, size_t cap, const char *s, size_t len)
{
    if (len + 1 > cap)
        return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return len;
}

size_t static_etag_make(const struct stat *st, char *out, size_t cap)
{
    char buf[STATIC_ETAG_MAX];
    /* Wraps for mtimes before 1970 or after 2554, which only costs
     * uniqueness between files that far apart. */
    uint64_t ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    char *p = buf;
    *p++ = '"';
    p = put_uint(p, (uint64_t)st->st_ino, 16);
    *p++ = '-';
    p = put_uint(p, (uint64_t)st->st_size, 16);
    *p++ = '-';
    p = put_uint(p, ns, 16);
    *p++ = '"';
    return copy_out(out, cap, buf, (size_t)(p - buf));
}

size_t static_content_range(char *out, size_t cap, uint64_t first, uint64_t last, uint64_t size)
{
    char buf[STATIC_CONTENT_RANGE_MAX];
    char *p = buf;
    memcpy(p, "bytes ", 6);
    p = put_uint(p + 6, first, 10);
    *p++ = '-';
    p = put_uint(p, last, 10);
    *p++ = '/';
    p = put_uint(p, size, 10);
    return copy_out(out, cap, buf, (size_t)(p - buf));
}

size_t static_content_range_unsatisfied(char *out, size_t cap, uint64_t size)
{
    char buf[STATIC_CONTENT_RANGE_MAX];
    memcpy(buf, "bytes */", 8);
    char *p = put_uint(buf + 8, size, 10);
    return copy_out(out, cap, buf, (size_t)(p - buf));
}

/* ---- reading field values ---- */

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

static size_t skip_ows(const char *v, size_t n, size_t i)
{
    while (i < n && is_ows(v[i]))
        i++;
    return i;
}

/* Narrow v[0..*n) to its content without leading and trailing OWS. */
static const char *trim(const char *v, size_t *n)
{
    if (*n == 0) /* v may be NULL, and NULL + 0 is undefined */
        return v;
    size_t i = skip_ows(v, *n, 0), end = *n;
    while (end > i && is_ows(v[end - 1]))
        end--;
    *n = end - i;
    return v + i;
}

/* An entity-tag: weak marks W/, and opaque points at the quoted part,
 * quotes included. */
struct etag {
    const char *opaque;
    size_t len;
    bool weak;
};

/* etagc = %x21 / %x23-7E / obs-text: visible ASCII but DQUOTE, or any
 * byte from 0x80. */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/* Scan one entity-tag at v[*i..n), [ "W/" ] DQUOTE *etagc DQUOTE, and move
 * *i past it. The W is case-sensitive. */
static bool etag_scan(const char *v, size_t n, size_t *i, struct etag *t)
{
    size_t j = *i;
    t->weak = n - j >= 2 && v[j] == 'W' && v[j + 1] == '/';
    if (t->weak)
        j += 2;
    if (j >= n || v[j] != '"')
        return false;
    size_t start = j++;
    while (j < n && is_etagc((unsigned char)v[j]))
        j++;
    if (j >= n || v[j] != '"')
        return false;
    t->opaque = v + start;
    t->len = ++j - start;
    *i = j;
    return true;
}

/* Our own tag, as given by the caller; false if there is none. */
static bool etag_ours(const char *etag, size_t len, struct etag *t)
{
    size_t i = 0;
    return etag && etag_scan(etag, len, &i, t) && i == len;
}

static bool etag_match(const struct etag *a, const struct etag *b, bool strong)
{
    if (strong && (a->weak || b->weak))
        return false;
    return a->len == b->len && memcmp(a->opaque, b->opaque, a->len) == 0;
}

/*
 * Whether some entity-tag of the list v[0..n) matches ours (NULL: nothing
 * does). The list is #entity-tag: commas with OWS, empty elements allowed.
 * The whole list is checked, so a list malformed anywhere matches nothing:
 * returns 1 (match), 0 (none), -1 (malformed).
 */
static int etag_list_match(const char *v, size_t n, const struct etag *ours, bool strong)
{
    int found = 0;
    size_t i = 0;
    for (;;) {
        i = skip_ows(v, n, i);
        if (i == n)
            return found;
        if (v[i] == ',') { /* an empty element */
            i++;
            continue;
        }
        struct etag t;
        if (!etag_scan(v, n, &i, &t))
            return -1;
        if (ours && etag_match(&t, ours, strong))
            found = 1;
        i = skip_ows(v, n, i);
        if (i == n)
            return found;
        if (v[i] != ',')
            return -1;
        i++;
    }
}

/* If-Match and If-None-Match share this reading: "*" matches any current
 * representation (the caller has one: it is serving a file), otherwise a
 * list member must match. */
static bool tags_match(const char *v, size_t n, const char *etag, size_t etag_len, bool strong)
{
    v = trim(v, &n);
    if (n == 1 && v[0] == '*')
        return true;
    struct etag ours;
    bool have = etag_ours(etag, etag_len, &ours);
    return etag_list_match(v, n, have ? &ours : NULL, strong) == 1;
}

/* Read a precondition date. False (ignore the field) when it is not one
 * valid HTTP-date or lies in the future: a client cannot have seen a
 * Last-Modified from the future, and honouring one would answer 304 for
 * changes made between now and then. */
static bool cond_date(const char *v, size_t n, time_t *d)
{
    v = trim(v, &n);
    return http_date_parse(v, n, d) == 0 && *d <= time(NULL);
}

/* ---- preconditions ---- */

enum static_cond_result static_cond_evaluate(const struct static_cond *c, const char *etag,
                                         size_t etag_len, time_t mtime, bool get_or_head)
{
    time_t d;

    /* Steps 1 and 2: the client's copy must still be current. */
    if (c->if_match) {
        if (!tags_match(c->if_match, c->if_match_len, etag, etag_len, true))
            return STATIC_COND_PRECONDITION_FAILED;
    } else if (c->if_unmodified_since &&
               cond_date(c->if_unmodified_since, c->if_unmodified_since_len, &d) && mtime > d) {
        return STATIC_COND_PRECONDITION_FAILED;
    }

    /* Steps 3 and 4: the client's copy may make the response redundant. */
    if (c->if_none_match) {
        if (tags_match(c->if_none_match, c->if_none_match_len, etag, etag_len, false))
            return get_or_head ? STATIC_COND_NOT_MODIFIED : STATIC_COND_PRECONDITION_FAILED;
    } else if (get_or_head && c->if_modified_since &&
               cond_date(c->if_modified_since, c->if_modified_since_len, &d) && mtime <= d) {
        return STATIC_COND_NOT_MODIFIED;
    }
    return STATIC_COND_OK;
}

bool static_if_range_ok(const char *v, size_t n, const char *etag, size_t etag_len, time_t mtime)
{
    v = trim(v, &n);
    /* An entity-tag starts with DQUOTE or W/; a date never does ("Wed, ..."). */
    if ((n > 0 && v[0] == '"') || (n > 1 && v[0] == 'W' && v[1] == '/')) {
        struct etag theirs, ours;
        size_t i = 0;
        return etag_scan(v, n, &i, &theirs) && i == n &&
               etag_ours(etag, etag_len, &ours) && etag_match(&theirs, &ours, true);
    }
    time_t d;
    return http_date_parse(v, n, &d) == 0 && d == mtime && mtime < time(NULL);
}

/* ---- Range ---- */

/* One range-spec: a-b, a- (open), or -a (suffix). */
struct range_spec {
    uint64_t a, b;
    bool suffix, open;
};

/* 1*DIGIT at v[*i..n), saturating at UINT64_MAX: any number that large is
 * past the end of every file, which is all that matters about it. */
static bool num_scan(const char *v, size_t n, size_t *i, uint64_t *out)
{
    size_t j = *i;
    uint64_t x = 0;
    while (j < n && v[j] >= '0' && v[j] <= '9') {
        unsigned dgt = (unsigned)(v[j++] - '0');
        x = x > (UINT64_MAX - dgt) / 10 ? UINT64_MAX : x * 10 + dgt;
    }
    if (j == *i)
        return false;
    *i = j;
    *out = x;
    return true;
}

static bool spec_scan(const char *v, size_t n, size_t *i, struct range_spec *s)
{
    s->suffix = v[*i] == '-';
    if (s->suffix) {
        ++*i;
        return num_scan(v, n, i, &s->a);
    }
    if (!num_scan(v, n, i, &s->a) || *i >= n || v[*i] != '-')
        return false;
    ++*i;
    s->open = !num_scan(v, n, i, &s->b);
    return true;
}

/* "bytes" in any case, then OWS "=" OWS; returns the offset after, or 0. */
static size_t unit_scan(const char *v, size_t n)
{
    static const char unit[] = "bytes";
    if (n < 5)
        return 0;
    for (size_t k = 0; k < 5; k++)
        if ((v[k] | 0x20) != unit[k])
            return 0;
    size_t i = skip_ows(v, n, 5);
    if (i >= n || v[i] != '=')
        return 0;
    return i + 1;
}

/* The range-set after "bytes=": exactly one non-empty element wanted. */
static bool one_spec(const char *v, size_t n, size_t i, struct range_spec *s)
{
    int count = 0;
    for (;;) {
        i = skip_ows(v, n, i);
        if (i == n)
            return count == 1;
        if (v[i] == ',') {
            i++;
            continue;
        }
        if (++count > 1 || !spec_scan(v, n, &i, s))
            return false;
        i = skip_ows(v, n, i);
        if (i < n && v[i] != ',')
            return false;
    }
}

int static_range_parse(const char *v, size_t n, uint64_t size, uint64_t *first, uint64_t *last)
{
    struct range_spec s = {0};
    v = trim(v, &n);
    size_t i = unit_scan(v, n);
    if (i == 0 || !one_spec(v, n, i, &s))
        return STATIC_RANGE_IGNORE;

    if (s.suffix) {
        if (s.a == 0 || size == 0)
            return STATIC_RANGE_UNSATISFIABLE;
        *first = s.a >= size ? 0 : size - s.a;
        *last = size - 1;
        return STATIC_RANGE_OK;
    }
    if (!s.open && s.b < s.a) /* invalid, so the field is ignored (14.1.1) */
        return STATIC_RANGE_IGNORE;
    if (s.a >= size)
        return STATIC_RANGE_UNSATISFIABLE;
    *first = s.a;
    *last = s.open || s.b >= size ? size - 1 : s.b;
    return STATIC_RANGE_OK;
}
