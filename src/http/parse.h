/* parse.h — zero-copy, allocation-free parser for HTTP/1.x request heads (RFC 9112, RFC 9110). */
#ifndef PF_HTTP_PARSE_H
#define PF_HTTP_PARSE_H

/*
 * The parser reads the head of one request (request line and header fields,
 * up to and including the empty line) from a buffer the caller owns. Every
 * string it returns is a pointer + length into that buffer: nothing is copied,
 * nothing is allocated, nothing is NUL-terminated. Results stay valid as long
 * as the caller keeps those bytes where they are.
 *
 * It is strict on purpose. Whatever a lenient parser would have to guess at
 * (two framings, odd line endings, folded lines, spaces in odd places) can be
 * guessed differently by a proxy in front of us, which is how requests get
 * smuggled, so it is refused with a 4xx/5xx status instead.
 *
 * Use, per connection:
 *
 *   struct http_scan scan = HTTP_SCAN_INIT;
 *   after each read:
 *     rc = http_parse_request(buf, have, &lim, &req, hdrs, NHDRS, &scan);
 *     rc > 0                 serve req; the body or next request starts at buf + rc
 *     HTTP_PARSE_INCOMPLETE  read more, then call again (scan remembers how far)
 *     HTTP_PARSE_INVALID     answer req.status, then close the connection
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* http_parse_request() returns one of these, or the size of a complete head. */
#define HTTP_PARSE_INVALID (-1)    /* bad request: see req->status, req->error */
#define HTTP_PARSE_INCOMPLETE (-2) /* no verdict yet: call again with more bytes */

/* Methods the server knows by name; any other well-formed token is OTHER,
 * which parses fine and which the server answers with 501 itself. Methods are
 * case-sensitive: "get" is OTHER. */
enum http_method {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_CONNECT,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_TRACE,
    HTTP_METHOD_PATCH,
    HTTP_METHOD_OTHER,
};

/* The four shapes of a request target (RFC 9112 3.2). */
enum http_target_form {
    HTTP_TARGET_ORIGIN,    /* "/path?query", the usual one */
    HTTP_TARGET_ABSOLUTE,  /* "http://host/path" or "https://...", via proxies */
    HTTP_TARGET_AUTHORITY, /* "host:port", CONNECT only */
    HTTP_TARGET_ASTERISK,  /* "*", OPTIONS only */
};

/* One header field line. The value has its surrounding whitespace trimmed
 * and may be empty; name and value point into the caller's buffer. */
struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Whether a field name equals a lowercase literal, ASCII case ignored.
 * For tokens (the parser and the response writer accept nothing else):
 * setting bit 0x20 folds a token's letters and changes none of its other
 * characters into a letter or '-'. */
static inline bool http_name_is(const char *name, size_t n, const char *lower, size_t lower_len)
{
    if (n != lower_len)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((char)(name[i] | 0x20) != lower[i])
            return false;
    return true;
}
#define HTTP_NAME_IS(name, n, lit) http_name_is(name, n, lit, sizeof lit - 1)

/* Limits on what one request head may take. Counted in bytes and fields. */
struct http_limits {
    size_t max_head;    /* whole head, empty lines and final CRLF included;
                           above it: 431. Capped at INT_MAX. Default 16384. */
    size_t max_target;  /* request target; above it: 414. Default 8192. */
    size_t max_headers; /* header field lines; above it: 431. Default 100. */
};

/* Fill *lim with the defaults above. */
void http_limits_default(struct http_limits *lim);

/*
 * What a parse found. Filled by http_parse_request(); the caller owns the
 * struct and the header array it points to.
 *
 * After a complete parse every field is set. After HTTP_PARSE_INVALID only
 * status, error and keep_alive (false: answer, then close) mean anything.
 * After HTTP_PARSE_INCOMPLETE nothing does.
 */
struct http_request {
    enum http_method method;
    const char *method_name; /* the method as sent, e.g. "GET" */
    size_t method_len;
    const char *target; /* the request target as sent */
    size_t target_len;
    enum http_target_form target_form;
    /* The origin-form part of the target: the whole target in origin-form;
     * in absolute-form what follows the authority (it may be empty, which
     * means "/", or start with '?'); empty in the other two forms. */
    const char *path;
    size_t path_len;
    int version_minor; /* 0 or 1; HTTP/1.2..1.9 count as 1 (RFC 9110 2.5) */

    struct http_header *headers; /* the caller's array, in order received */
    size_t nheaders;

    /* Facts derived from the fields, so the server never reads them twice. */
    int64_t content_length; /* -1 when there is none */
    bool chunked;           /* Transfer-Encoding: chunked (nothing else) */
    bool keep_alive;        /* the connection may carry another request */
    bool expect_continue;   /* HTTP/1.1 "Expect: 100-continue" */
    /* The Host field, or the authority of an absolute-form target, which
     * takes precedence over it (RFC 9112 3.2.2). May be empty (HTTP/1.0
     * without Host, or an empty Host field). */
    const char *host;
    size_t host_len;

    int status;        /* when INVALID: 400, 414, 431, 501 or 505; else 0 */
    const char *error; /* when INVALID: a short static reason for the log */
};

/*
 * Progress through a head that is not complete yet, kept by the caller
 * between calls so that each call looks only at the bytes that arrived since
 * the last one: a head fed one byte at a time then costs linear time, not
 * quadratic. One per connection, owned by the caller.
 *
 * Zero it (HTTP_SCAN_INIT) before the first call for each request. Then pass
 * it with the same bytes again, grown at the end; the bytes may move to
 * another address in between, since only offsets are kept. The parser zeroes
 * it itself when it returns anything but HTTP_PARSE_INCOMPLETE, ready for
 * the next request (whose bytes then start at buf + the returned size). A
 * state that does not fit the buffer is ignored; it never causes a read
 * outside buf, only a wrong answer if it came from other bytes.
 */
struct http_scan {
    size_t pos;     /* next byte to look at */
    size_t target;  /* offset of the request target, once seen */
    size_t version; /* offset of "HTTP/", once seen */
    unsigned phase; /* where in the head pos is */
};
#define HTTP_SCAN_INIT {0, 0, 0, 0}

/*
 * Parse the request head at the start of buf[0..len), which may hold less
 * than a head (wait for more) or more (a body, pipelined requests).
 *
 * lim: NULL for the defaults. hdrs/max_hdrs: the caller's array for the
 * header fields; more fields than max_hdrs (or lim->max_headers) is 431.
 * scan: progress kept between calls (see struct http_scan), or NULL to
 * start from the first byte each time.
 *
 * Returns the size of the head (> 0, through the final CRLF CRLF, including
 * up to two empty lines skipped before the request line, RFC 9112 2.2): the
 * body or the next request starts there. Returns HTTP_PARSE_INCOMPLETE when
 * more bytes are needed, and HTTP_PARSE_INVALID when the request must be
 * refused with req->status. Some errors show before the head is complete:
 * a target over max_target (414) as soon as it passes the limit, max_head
 * bytes without a complete head (431), a bad byte in the request line (400),
 * an unsupported major version (505) once the request line is complete.
 *
 * Never reads buf[len] or beyond; never reads past the first max_head bytes.
 */
int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, struct http_header *hdrs, size_t max_hdrs,
                       struct http_scan *scan);

/* A parsed head that outlives the buffer it points into (a request handed
 * to another thread): one allocation holding the struct, its header array
 * and every string it points at. Release it with free(). NULL when out of
 * memory. */
struct http_request *http_request_dup(const struct http_request *q);

#endif
