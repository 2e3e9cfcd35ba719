/* alog.c — the access log: Combined Log Format plus worker index and microseconds, buffered per worker. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http/alog.h"

#define ALOG_BUF (64 * 1024)

struct http_alog {
    int fd;
    int worker;
    size_t len;
    char buf[ALOG_BUF];
};

struct http_alog *http_alog_new(int fd, int worker)
{
    struct http_alog *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    a->fd = fd;
    a->worker = worker;
    a->len = 0;
    return a;
}

void http_alog_free(struct http_alog *a)
{
    if (a)
        http_alog_flush(a);
    free(a);
}

void http_alog_flush(struct http_alog *a)
{
    size_t off = 0;
    while (off < a->len) {
        ssize_t n = write(a->fd, a->buf + off, a->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk loses log lines, never requests */
        off += (size_t)n;
    }
    a->len = 0;
}

void http_alog_peer(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
    const void *addr = NULL;
    if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET)
        addr = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (len >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6)
        addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!addr || !inet_ntop(sa->sa_family, addr, out, (socklen_t)size))
        snprintf(out, size, "%s", len && sa->sa_family == AF_UNIX ? "unix" : "-");
}

/* Client bytes in a quoted field: '"', '\' and anything that is not
 * printable ASCII become \xHH, so a line cannot be forged or broken. */
static size_t escape(char *out, size_t room, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (o + 1 > room)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 4 > room)
                break;
            out[o++] = '\\', out[o++] = 'x';
            out[o++] = hex[c >> 4], out[o++] = hex[c & 15];
        }
    }
    return o;
}

static const struct http_header *field(const struct http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (http_name_is(req->headers[i].name, req->headers[i].name_len, name, n))
            return &req->headers[i];
    return NULL;
}

/* Appends `"VALUE"` (or "-") at e->text + e->len. Cuts at a third of the
 * entry so that one field cannot push out the others. */
static void put_quoted(struct http_alog_entry *e, const char *s, size_t n)
{
    size_t room = sizeof e->text - e->len;
    size_t cap = sizeof e->text / 3;
    if (room < 4)
        return;
    e->text[e->len++] = '"';
    if (s && n)
        e->len += (uint16_t)escape(e->text + e->len, (room - 3) < cap ? room - 3 : cap, s, n);
    else
        e->text[e->len++] = '-';
    e->text[e->len++] = '"';
}

static void put(struct http_alog_entry *e, const char *s)
{
    size_t n = strlen(s), room = sizeof e->text - e->len;
    n = n < room ? n : room;
    memcpy(e->text + e->len, s, n);
    e->len += (uint16_t)n;
}

/* "25/Nov/2026:16:30:00 +0000", made again only when the second changes
 * (one cache per process: a worker is single-threaded). */
static const char *clf_date(void)
{
    static time_t cached = -1;
    static char text[40];
    time_t now = time(NULL);
    if (now != cached) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%d/%b/%Y:%H:%M:%S +0000", &tm);
        cached = now;
    }
    return text;
}

void http_alog_format(struct http_alog_entry *e, const char *peer,
                      const struct http_request *req, int status)
{
    char line[600], num[16];
    e->len = 0;
    put(e, peer);
    put(e, " - - [");
    put(e, clf_date());
    put(e, "] ");
    if (req && req->method_len) {
        int n = snprintf(line, sizeof line, "%.*s %.*s HTTP/1.%d", (int)req->method_len,
                         req->method_name, (int)(req->target_len < 400 ? req->target_len : 400),
                         req->target, req->version_minor);
        put_quoted(e, line, n > 0 ? (size_t)n : 0);
    } else {
        put_quoted(e, NULL, 0);
    }
    snprintf(num, sizeof num, " %d ", status);
    put(e, num);
    e->split = e->len;
    const struct http_header *ref = req ? field(req, "referer") : NULL;
    const struct http_header *ua = req ? field(req, "user-agent") : NULL;
    put(e, " ");
    put_quoted(e, ref ? ref->value : NULL, ref ? ref->value_len : 0);
    put(e, " ");
    put_quoted(e, ua ? ua->value : NULL, ua ? ua->value_len : 0);
}

void http_alog_add(struct http_alog *a, const struct http_alog_entry *e,
                   uint64_t bytes, uint64_t usec)
{
    char bytes_text[24], tail[48];
    if (bytes)
        snprintf(bytes_text, sizeof bytes_text, "%llu", (unsigned long long)bytes);
    else
        strcpy(bytes_text, "-");
    snprintf(tail, sizeof tail, " %d %llu\n", a->worker, (unsigned long long)usec);
    size_t need = e->len + strlen(bytes_text) + strlen(tail);
    if (a->len + need > sizeof a->buf)
        http_alog_flush(a);
    memcpy(a->buf + a->len, e->text, e->split);
    a->len += e->split;
    a->len += (size_t)sprintf(a->buf + a->len, "%s", bytes_text);
    memcpy(a->buf + a->len, e->text + e->split, (size_t)(e->len - e->split));
    a->len += (size_t)(e->len - e->split);
    a->len += (size_t)sprintf(a->buf + a->len, "%s", tail);
}
