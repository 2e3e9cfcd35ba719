/* buf.c — a growable byte buffer with a hard size limit, and HTML escaping into it. */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation: big enough for a response head in one go. */
#define BUF_MIN 256

void http_buf_init(struct http_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Clamped to half the address space so that limit + 1 and cap * 2 cannot
 * overflow below. */
size_t http_buf_limit(const struct http_buf *b)
{
    if (!b->max)
        return HTTP_BUF_DEFAULT_MAX;
    return b->max < SIZE_MAX / 2 ? b->max : SIZE_MAX / 2;
}

/* Capacities double, which keeps appends amortised O(1), but stop at the
 * limit (plus the NUL's byte) so a buffer never holds memory it may not use. */
int http_buf_reserve(struct http_buf *b, size_t extra)
{
    size_t limit = http_buf_limit(b);
    if (b->len > limit || extra > limit - b->len)
        return -ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap < BUF_MIN ? BUF_MIN : b->cap;
    while (cap < need)
        cap = cap > limit / 2 ? limit + 1 : cap * 2;
    if (cap > limit + 1)
        cap = limit + 1;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    b->p[b->len] = '\0';
    return 0;
}

int http_buf_append(struct http_buf *b, const void *data, size_t n)
{
    int rc = http_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int http_buf_puts(struct http_buf *b, const char *s)
{
    return http_buf_append(b, s, strlen(s));
}

/* Format into the spare room; if that was too small, grow to the exact size
 * vsnprintf asked for and format again. */
int http_buf_printf(struct http_buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = b->cap ? b->cap - b->len : 0;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        goto bad;
    if ((size_t)n >= room) {
        int rc = http_buf_reserve(b, (size_t)n);
        if (rc < 0) {
            if (b->p)
                b->p[b->len] = '\0';
            return rc;
        }
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            goto bad;
    }
    b->len += (size_t)n;
    return 0;
bad:
    if (b->p)
        b->p[b->len] = '\0';
    return -EINVAL;
}

/* The replacement for one byte, or NULL when it stands for itself. */
static const char *html_entity(unsigned char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    case '\t': case '\n': case '\r': return NULL;
    default: break;
    }
    if (c < 0x20 || c == 0x7f)
        return "\xEF\xBF\xBD"; /* U+FFFD REPLACEMENT CHARACTER in UTF-8 */
    return NULL;
}

/* Plain runs are copied whole; on failure the length is rolled back so the
 * caller never sees half an escaped string. */
int http_html_escape(struct http_buf *b, const char *s, size_t n)
{
    size_t start = b->len, run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = html_entity((unsigned char)s[i]);
        if (!e)
            continue;
        if (http_buf_append(b, s + run, i - run) < 0 || http_buf_puts(b, e) < 0)
            goto fail;
        run = i + 1;
    }
    if (http_buf_append(b, s + run, n - run) < 0)
        goto fail;
    return 0;
fail:
    b->len = start;
    if (b->p)
        b->p[b->len] = '\0';
    return -ENOMEM;
}

void http_buf_reset(struct http_buf *b)
{
    if (b->cap > HTTP_BUF_KEEP) {
        http_buf_free(b);
        return;
    }
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void http_buf_free(struct http_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}
