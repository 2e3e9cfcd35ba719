/* reply.c — serialising a response head, and the small HTML pages of error responses. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/date.h"
#include "http/reply.h"

void http_reply_init(struct http_reply *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->fd = -1;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* The head is built with plain appends, not printf: on a keep-alive
 * connection serving a cached file, formatting was a third of the worker's
 * user time. */
static int field(struct http_buf *out, const char *name, size_t nlen, const char *value,
                 size_t vlen)
{
    if (http_buf_reserve(out, nlen + vlen + 2) < 0)
        return -1;
    memcpy(out->p + out->len, name, nlen);
    memcpy(out->p + out->len + nlen, value, vlen);
    memcpy(out->p + out->len + nlen + vlen, "\r\n", 2);
    out->len += nlen + vlen + 2;
    out->p[out->len] = '\0';
    return 0;
}

#define FIELD(out, lit, v, n) field(out, lit, sizeof lit - 1, v, n)
#define FIELDS(out, lit, v) FIELD(out, lit, v, strlen(v))

static size_t u64_text(uint64_t v, char buf[21])
{
    char tmp[21];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* 304 carries the validators but no Content-Type or Content-Length of its
 * own (RFC 9110 15.4.5); 1xx/204 are never sent by this server. */
static int fields(const struct http_reply *r, struct http_buf *out)
{
    int err = 0;
    static struct http_date_memo last_modified; /* a hot file's, formatted once */
    char num[21];
    const char *date = r->mtime ? http_date_cached(&last_modified, r->mtime) : "";
    if (r->status != 304) {
        if (r->type)
            err |= FIELDS(out, "Content-Type: ", r->type);
        err |= FIELD(out, "Content-Length: ", num, u64_text(r->length, num));
    }
    if (date[0]) /* empty: no mtime, or a year beyond 9999 */
        err |= FIELD(out, "Last-Modified: ", date, HTTP_DATE_LEN);
    if (r->etag[0])
        err |= FIELDS(out, "ETag: ", r->etag);
    if (r->etag[0] || r->status == 416)
        err |= http_buf_append(out, "Accept-Ranges: bytes\r\n", 22);
    if (r->range[0])
        err |= FIELDS(out, "Content-Range: ", r->range);
    if (r->allow)
        err |= FIELDS(out, "Allow: ", r->allow);
    if (r->location)
        err |= FIELD(out, "Location: ", r->location, r->location_len);
    return err;
}

int http_reply_head(const struct http_reply *r, int minor, struct http_buf *out)
{
    char code[4] = {(char)('0' + r->status / 100 % 10), (char)('0' + r->status / 10 % 10),
                    (char)('0' + r->status % 10), ' '};
    const char *reason = http_reason(r->status);
    int err = http_buf_append(out, "HTTP/1.1 ", 9);
    err |= http_buf_append(out, code, 4);
    err |= FIELDS(out, "", reason);
    err |= http_buf_append(out, "Server: prefork\r\n", 17);
    err |= FIELD(out, "Date: ", http_date_now(time(NULL)), HTTP_DATE_LEN);
    err |= fields(r, out);
    if (r->close)
        err |= http_buf_append(out, "Connection: close\r\n", 19);
    else if (minor == 0 && r->keep_alive)
        err |= http_buf_append(out, "Connection: keep-alive\r\n", 24);
    err |= http_buf_append(out, "\r\n", 2);
    return err ? -ENOMEM : 0;
}

void http_reply_error(struct http_reply *r, int status, struct http_buf *body)
{
    const char *reason = http_reason(status);
    bool head_only = r->head_only, close_ = r->close, keep_alive = r->keep_alive;
    http_reply_init(r); /* the caller has closed any file it had opened */
    r->status = status;
    r->head_only = head_only;
    r->close = close_;
    r->keep_alive = keep_alive;
    r->type = "text/html; charset=utf-8";
    http_buf_reset(body);
    if (http_buf_printf(body,
                        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                        "<title>%d %s</title></head>\n<body><h1>%d %s</h1>"
                        "<hr><p>prefork</p></body></html>\n",
                        status, reason, status, reason) == 0) {
        r->body = body->p;
        r->length = body->len;
    }
}
