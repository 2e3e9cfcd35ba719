/* alog.h — the access log: Combined Log Format plus worker index and microseconds, buffered per worker. */
#ifndef PF_HTTP_ALOG_H
#define PF_HTTP_ALOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/parse.h"

/* One per worker. Lines collect in a 64 KiB buffer that is written when it
 * fills, once a second, and when the worker exits: a slow disk blocks the
 * event loop at most once per buffer, never once per request. */
struct http_alog;

/* Returns NULL when out of memory (the log is then off). */
struct http_alog *http_alog_new(int fd, int worker);
void http_alog_free(struct http_alog *a);

/* The parts of a line known when the response is decided, escaped:
 * text[0, split) is `PEER - - [DATE] "REQUEST LINE" STATUS` and
 * text[split, len) is ` "REFERER" "USER-AGENT"`; the body bytes go between
 * them once the response has been sent. Long fields are cut to fit. */
struct http_alog_entry {
    uint16_t split, len;
    char text[1020];
};
void http_alog_format(struct http_alog_entry *e, const char *peer,
                      const struct http_request *req, int status);

/* Complete and buffer a line: adds the body bytes sent, the worker index and
 * the request time in microseconds. */
void http_alog_add(struct http_alog *a, const struct http_alog_entry *e,
                   uint64_t bytes, uint64_t usec);

/* Write what is buffered (called by a timer and at exit). */
void http_alog_flush(struct http_alog *a);

/* Format a peer address for the log ("127.0.0.1", "::1", "unix"). */
void http_alog_peer(const struct sockaddr *sa, socklen_t len, char *out, size_t size);

#endif
