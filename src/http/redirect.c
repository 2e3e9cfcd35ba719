/* redirect.c — a plain listener's answer when HTTPS is required: the same URL over https, 301 (308 for methods with a body). */
#include <stdio.h>
#include <string.h>

#include "http/core.h"

/* The host of a Host field without its port: "example.com:80" gives
 * "example.com", "[::1]:80" gives "[::1]". */
static size_t host_only(const char *h, size_t n)
{
    if (n && h[0] == '[') {
        const char *end = memchr(h, ']', n);
        return end ? (size_t)(end - h) + 1 : n;
    }
    const char *colon = memchr(h, ':', n);
    return colon ? (size_t)(colon - h) : n;
}

/* GET and HEAD move for good with 301; other methods get 308, which keeps
 * the method and body (RFC 9110 15.4.9). Without a Host there is no URL
 * to give: 400. */
void http_redirect_https(struct http_exchange *x)
{
    const struct http_request *r = &x->req;
    unsigned port = x->c->hs->cfg->https_port;
    char loc[8192];
    size_t h = host_only(r->host, r->host_len);
    if (h == 0 || h + r->path_len + 16 > sizeof loc) {
        http_res_error(x, 400);
        return;
    }
    size_t n = 8;
    memcpy(loc, "https://", 8);
    memcpy(loc + n, r->host, h);
    n += h;
    if (port != 443)
        n += (size_t)snprintf(loc + n, sizeof loc - n, ":%u", port);
    if (r->path_len == 0 || r->path[0] != '/')
        loc[n++] = '/'; /* "*", or an absolute-form target without a path */
    memcpy(loc + n, r->path, r->path_len);
    n += r->path_len;
    bool safe = r->method == HTTP_METHOD_GET || r->method == HTTP_METHOD_HEAD;
    if (http_res_status(x, safe ? 301 : 308, NULL) < 0 ||
        http_res_header(x, "Location", 8, loc, n) < 0) {
        http_res_error(x, 400);
        return;
    }
    http_res_page(x);
}
