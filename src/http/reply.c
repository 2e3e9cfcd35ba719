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

/* 304 carries the validators but no Content-Type or Content-Length of its
 * own (RFC 9110 15.4.5); 1xx/204 are never sent by this server. */
static int fields(const struct http_reply *r, struct http_buf *out)
{
    int err = 0;
    if (r->status != 304) {
        if (r->type)
            err |= http_buf_printf(out, "Content-Type: %s\r\n", r->type);
        err |= http_buf_printf(out, "Content-Length: %llu\r\n",
                               (unsigned long long)r->length);
    }
    char date[HTTP_DATE_LEN + 1];
    if (r->mtime && http_date_format(r->mtime, date)) /* 0: a year beyond 9999 */
        err |= http_buf_printf(out, "Last-Modified: %s\r\n", date);
    if (r->etag[0])
        err |= http_buf_printf(out, "ETag: %s\r\n", r->etag);
    if (r->etag[0] || r->status == 416)
        err |= http_buf_append(out, "Accept-Ranges: bytes\r\n", 22);
    if (r->range[0])
        err |= http_buf_printf(out, "Content-Range: %s\r\n", r->range);
    if (r->allow)
        err |= http_buf_printf(out, "Allow: %s\r\n", r->allow);
    if (r->location)
        err |= http_buf_printf(out, "Location: %.*s\r\n", (int)r->location_len,
                               r->location);
    return err;
}

int http_reply_head(const struct http_reply *r, int minor, struct http_buf *out)
{
    int err = http_buf_printf(out, "HTTP/1.1 %d %s\r\nServer: prefork\r\nDate: %s\r\n",
                              r->status, http_reason(r->status),
                              http_date_now(time(NULL)));
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
