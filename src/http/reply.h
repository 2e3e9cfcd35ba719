/* reply.h — an HTTP response as decided by the handler: status, headers, and where the body comes from. */
#ifndef PF_HTTP_REPLY_H
#define PF_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/buf.h"

/* Filled by the handler, sent by the connection. The body is one of: none,
 * `body` (bytes in the worker's scratch), or `fd` from `offset` (a file the
 * reply owns: the connection closes it when sent). */
struct http_reply {
    int status;
    bool head_only;   /* HEAD, 304: headers only (Content-Length still given) */
    bool close;       /* Connection: close, then close */
    bool keep_alive;  /* HTTP/1.0 client asked: Connection: keep-alive */
    const char *type; /* Content-Type, or NULL */
    uint64_t length;  /* Content-Length */
    const char *body;
    int fd;           /* -1 when the body is not a file */
    uint64_t offset;
    char etag[64];    /* "" when none */
    time_t mtime;     /* Last-Modified; 0 when none */
    char range[96];   /* Content-Range value, "" when none */
    const char *allow;     /* Allow, for 405 */
    const char *location;  /* Location, for 301 (already encoded) */
    size_t location_len;
};

void http_reply_init(struct http_reply *r);

/* The reason phrase of a status ("Not Found"), "Unknown" if we never send it. */
const char *http_reason(int status);

/* Append the status line and header fields, through the empty line, to out.
 * minor is the request's HTTP minor version (0 or 1). Returns 0 or -ENOMEM. */
int http_reply_head(const struct http_reply *r, int minor, struct http_buf *out);

/* Make r an error response with a small HTML page written into body. */
void http_reply_error(struct http_reply *r, int status, struct http_buf *body);

#endif
