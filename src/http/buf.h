/* buf.h — a growable byte buffer with a hard size limit, for responses and generated pages. */
#ifndef PF_HTTP_BUF_H
#define PF_HTTP_BUF_H

#include <stddef.h>

/*
 * A buffer of bytes that grows on demand but never past max bytes of
 * content, so no request can make a worker allocate without bound: an
 * append that would pass max fails with -ENOMEM and leaves the buffer as it
 * was. p[len] is always a NUL once anything was allocated, so text can be
 * read as a C string (the NUL is not counted in len).
 *
 * The caller owns the struct and frees p with http_buf_free(). Zero-filled
 * (or HTTP_BUF_INIT(0)), a buffer is empty and limited to
 * HTTP_BUF_DEFAULT_MAX; nothing is allocated before the first append.
 */
struct http_buf {
    char *p;    /* the bytes, NULL until the first append */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated, the NUL's byte included */
    size_t max; /* most bytes len may reach; 0 means HTTP_BUF_DEFAULT_MAX */
};

#define HTTP_BUF_DEFAULT_MAX ((size_t)16 << 20)
#define HTTP_BUF_INIT(max) {NULL, 0, 0, (max)}

/* http_buf_reset() keeps an allocation up to this size for reuse and frees
 * a bigger one, so one huge listing does not pin memory for the life of a
 * worker. */
#define HTTP_BUF_KEEP ((size_t)64 << 10)

/* An empty buffer limited to max bytes of content (0: the default). */
void http_buf_init(struct http_buf *b, size_t max);

/* The limit in effect: b->max, or HTTP_BUF_DEFAULT_MAX when that is 0. */
size_t http_buf_limit(const struct http_buf *b);

/* Make room for extra more bytes of content. 0 or -ENOMEM (over the limit,
 * or out of memory). */
int http_buf_reserve(struct http_buf *b, size_t extra);

/* Append n bytes. 0 or -ENOMEM; the buffer is unchanged on failure. */
int http_buf_append(struct http_buf *b, const void *data, size_t n);

/* Append a NUL-terminated string. 0 or -ENOMEM. */
int http_buf_puts(struct http_buf *b, const char *s);

/* Append printf-style text. 0, -ENOMEM, or -EINVAL for a format vsnprintf
 * refuses; the buffer is unchanged on failure. */
int http_buf_printf(struct http_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Append s[0..n) escaped for HTML text and attribute values: & < > " ' become
 * entities. Control bytes other than tab, LF and CR (0x00-0x1F, 0x7F), which
 * HTML forbids even as references, become U+FFFD so that a file name holding
 * them still shows as something. Other bytes, UTF-8 included, pass as they
 * are. 0 or -ENOMEM; the buffer is unchanged on failure.
 */
int http_html_escape(struct http_buf *b, const char *s, size_t n);

/* Empty the buffer; keep the allocation if it is at most HTTP_BUF_KEEP. */
void http_buf_reset(struct http_buf *b);

/* Free the bytes; the buffer is empty again, its limit kept. */
void http_buf_free(struct http_buf *b);

#endif
