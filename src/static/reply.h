/* reply.h — the static site's response as decided, and writing it through the HTTP core. */
#ifndef PF_STATIC_REPLY_H
#define PF_STATIC_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/http.h"

/* The response, as decided, then written through the core
 * (static_reply_emit). The body is one of: none, `body` (bytes in memory:
 * the cache, a listing), or `fd` from `offset` (a file the reply owns
 * until emitted). A page reply is the core's HTML page for its status. */
struct static_reply {
    int status;
    bool page;
    const char *type;      /* Content-Type, or NULL */
    uint64_t length;       /* Content-Length */
    const char *body;
    int fd;                /* -1 when the body is not a file */
    uint64_t offset;
    char etag[64];         /* "" when none */
    time_t mtime;          /* Last-Modified; 0 when none */
    char range[96];        /* Content-Range value, "" when none */
    const char *allow;     /* Allow, for 405 */
    const char *location;  /* Location, for 301 (already encoded) */
    size_t location_len;
    const struct http_fields *fields; /* a cached file's 200: its fields, checked once */
    const struct http_fields *extra;  /* --header rules' fields, or NULL */
    int encoding;          /* Content-Encoding (STATIC_ENC_*; identity: none) */
    bool vary;             /* Vary: Accept-Encoding (a file, on a site with codings) */
};

/* A 200 with nothing yet. */
void static_reply_init(struct static_reply *r);

/* The core's page for status; the caller has closed any file it had opened. */
void static_reply_error(struct static_reply *r, int status);

/* Write r through the core: status, fields, body, end (a failure on the
 * way is a 500, or the connection's end once the head is out). r's file
 * is the core's or closed afterwards. */
void static_reply_emit(struct http_exchange *x, struct static_reply *r);

#endif
