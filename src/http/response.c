/* response.c — writing a response: status line and checked header fields, framing (length, chunked, close), body pieces, error pages. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/core.h"
#include "http/date.h"

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- checks: nothing a handler gives can split the head ---- */

/* tchar (RFC 9110 5.6.2) as a bitmap of the 128 ASCII codes: bit c of
 * word c / 64. Digits, letters and !#$%&'*+-.^_`|~. */
static bool is_tchar(unsigned char c)
{
    static const uint64_t tchar[2] = {0x03ff6cfa00000000, 0x57ffffffc7fffffe};
    return c < 128 && (tchar[c >> 6] >> (c & 63)) & 1;
}

/* Field values and reason phrases: HTAB, SP, VCHAR, obs-text; no CTL.
 * Eight bytes at a time while none is below 0x20 or DEL (the classic
 * "has a byte less than n" and "has a zero byte" tests, exact as to
 * whether any byte is one); a word with one (a tab, or a fault) and the
 * tail go byte by byte. Values are checked on every response: this loop
 * showed in profiles of small files. */
static bool text_ok(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, del;
        memcpy(&x, s + i, 8);
        del = x ^ (0x7f * ones);
        if (((x - 0x20 * ones) & ~x & highs) | ((del - ones) & ~del & highs))
            break;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

struct lit {
    const char *s;
    size_t n;
};
#define LIT(s) {s, sizeof s - 1}

/* Lengths first: most names a handler sends match none of these. */
static bool name_in(const char *name, size_t n, const struct lit *set, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (http_name_is(name, n, set[i].s, set[i].n))
            return true;
    return false;
}

/* Framing and connection fields are the core's to send. */
static bool reserved(const char *name, size_t n)
{
    static const struct lit names[] = {
        LIT("content-length"), LIT("transfer-encoding"), LIT("connection"), LIT("keep-alive"),
        LIT("te"), LIT("trailer"), LIT("upgrade"), LIT("proxy-connection"),
    };
    return name_in(name, n, names, sizeof names / sizeof names[0]);
}

static bool name_is(const char *name, size_t n, struct lit l)
{
    return name_in(name, n, &l, 1);
}

static bool usable(const struct http_exchange *x)
{
    return !x->aborted && x->c->state != C_DEAD;
}

/* ---- the head ---- */

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

/* The head is built with plain appends, not printf: formatting showed in
 * profiles of keep-alive requests for cached files (bench/README.md). */
static int put(struct http_exchange *x, const char *p, size_t n)
{
    return http_out_append(x->c, p, n);
}

#define PUT(x, lit) put(x, lit, sizeof lit - 1)

int http_res_status(struct http_exchange *x, int status, const char *reason)
{
    if (x->stage != RES_NONE || status < 200 || status > 999)
        return -EINVAL;
    if (!reason)
        reason = http_reason(status);
    size_t rlen = strlen(reason);
    if (!text_ok(reason, rlen))
        return -EINVAL;
    if (!usable(x))
        return -EPIPE;
    char line[13] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    x->status = status;
    x->stage = RES_HEAD;
    x->head_at = x->c->hs->running == x->c && !x->c->q ? x->c->hs->out.len : SIZE_MAX;
    x->no_body = x->req.method == HTTP_METHOD_HEAD || status == 204 || status == 304;
    int err = put(x, line, sizeof line);
    err |= put(x, reason, rlen);
    err |= PUT(x, "\r\n");
    return err ? -ENOMEM : 0;
}

/* What every field passes, from a handler or into a set: a token for a
 * name, no CTL in the value, none of the core's names. *who notes Date and
 * Server, which the core then does not add. */
static int field_check(const char *name, size_t name_len, const char *value, size_t value_len,
                       unsigned *who)
{
    if (name_len == 0 || !text_ok(value, value_len))
        return -EINVAL;
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar((unsigned char)name[i]))
            return -EINVAL;
    if (reserved(name, name_len))
        return -EPERM;
    if (name_is(name, name_len, (struct lit)LIT("date")))
        *who |= HTTP_FIELDS_DATE;
    else if (name_is(name, name_len, (struct lit)LIT("server")))
        *who |= HTTP_FIELDS_SERVER;
    return 0;
}

int http_res_header(struct http_exchange *x, const char *name, size_t name_len,
                    const char *value, size_t value_len)
{
    unsigned who = 0;
    if (x->stage != RES_HEAD)
        return -EINVAL;
    int err = field_check(name, name_len, value, value_len, &who);
    if (err)
        return err;
    x->own_date |= (who & HTTP_FIELDS_DATE) != 0;
    x->own_server |= (who & HTTP_FIELDS_SERVER) != 0;
    const struct iovec line[] = {
        {(void *)name, name_len}, {": ", 2}, {(void *)value, value_len}, {"\r\n", 2}};
    return http_out_appendv(x->c, line, 4);
}

/* Room for need bytes in f. 0 or -ENOMEM. */
static int fields_room(struct http_fields *f, size_t need)
{
    if (need <= f->cap)
        return 0;
    size_t cap = f->cap ? f->cap : 128;
    while (cap < need)
        cap *= 2;
    char *p = realloc(f->p, cap);
    if (!p)
        return -ENOMEM;
    f->p = p;
    f->cap = cap;
    return 0;
}

int http_fields_append(struct http_fields *f, const struct http_fields *more)
{
    if (!more->len)
        return 0;
    if (fields_room(f, f->len + more->len) < 0)
        return -ENOMEM;
    memcpy(f->p + f->len, more->p, more->len);
    f->len += more->len;
    f->who |= more->who;
    return 0;
}

int http_fields_add(struct http_fields *f, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    unsigned who = 0;
    int err = field_check(name, name_len, value, value_len, &who);
    if (err)
        return err;
    size_t need = f->len + name_len + value_len + 4;
    if (fields_room(f, need) < 0)
        return -ENOMEM;
    char *at = f->p + f->len;
    memcpy(at, name, name_len);
    memcpy(at + name_len, ": ", 2);
    if (value_len)
        memcpy(at + name_len + 2, value, value_len);
    memcpy(at + name_len + 2 + value_len, "\r\n", 2);
    f->len = need;
    f->who |= who;
    return 0;
}

void http_fields_free(struct http_fields *f)
{
    free(f->p);
    *f = (struct http_fields){0};
}

int http_res_fields(struct http_exchange *x, const struct http_fields *f)
{
    if (x->stage != RES_HEAD)
        return -EINVAL;
    x->own_date |= (f->who & HTTP_FIELDS_DATE) != 0;
    x->own_server |= (f->who & HTTP_FIELDS_SERVER) != 0;
    return f->len ? put(x, f->p, f->len) : 0;
}

void http_res_close(struct http_exchange *x)
{
    x->c->close = true;
}

/* Whether the connection can carry another request after this one. */
static bool keeps_alive(struct http_exchange *x, int64_t length)
{
    struct http_conn *c = x->c;
    const struct http_config *cfg = c->hs->cfg;
    if (c->close || c->hs->draining || !x->req.keep_alive || http_stopping(c->hs) ||
        (cfg->max_keepalive_requests && c->requests + 1 >= cfg->max_keepalive_requests))
        return false;
    if (length == HTTP_LENGTH_UNKNOWN && !x->no_body && x->req.version_minor == 0)
        return false; /* the body ends with the connection */
    return !http_body_must_close(x);
}

/* 304 carries the validators but no length of its own (RFC 9110 15.4.5),
 * nor does 204; a HEAD's is the one a GET would have. */
static int framing(struct http_exchange *x, int64_t length)
{
    char num[21];
    int err = 0;
    if (x->status == 204 || x->status == 304)
        return 0;
    if (length >= 0) {
        err |= PUT(x, "Content-Length: ");
        err |= put(x, num, u64_text((uint64_t)length, num));
        err |= PUT(x, "\r\n");
    } else if (!x->no_body && x->req.version_minor >= 1) {
        x->chunked = true;
        err |= PUT(x, "Transfer-Encoding: chunked\r\n");
    }
    return err;
}

int http_res_start(struct http_exchange *x, int64_t length)
{
    struct http_conn *c = x->c;
    if (x->stage != RES_HEAD || length < HTTP_LENGTH_UNKNOWN)
        return -EINVAL;
    if (!usable(x))
        return -EPIPE;
    c->close = !keeps_alive(x, length);
    x->length = length;
    int err = x->own_server ? 0 : PUT(x, "Server: prefork\r\n");
    if (!x->own_date) {
        err |= PUT(x, "Date: ");
        err |= put(x, http_date_now(time(NULL)), HTTP_DATE_LEN);
        err |= PUT(x, "\r\n");
    }
    if (c->hs->cfg->hsts_max_age_s && c->tp.ops->secure) {
        char line[64];
        int n = snprintf(line, sizeof line, "Strict-Transport-Security: max-age=%u\r\n",
                         c->hs->cfg->hsts_max_age_s);
        err |= put(x, line, (size_t)n);
    }
    err |= framing(x, length);
    if (c->close)
        err |= PUT(x, "Connection: close\r\n");
    else if (x->req.version_minor == 0)
        err |= PUT(x, "Connection: keep-alive\r\n");
    err |= PUT(x, "\r\n");
    x->stage = RES_STARTED;
    return err ? -ENOMEM : 0;
}

/* ---- the body ---- */

static uint64_t unsent(const struct http_conn *c)
{
    return c->q_bytes + (c->hs->running == c ? c->hs->out.len : 0);
}

/* After body bytes were taken: past high_water, the running connection
 * sends what it can now; the handler is told to wait if too much is left. */
static int after_write(struct http_exchange *x)
{
    struct http_conn *c = x->c;
    size_t hw = c->hs->cfg->high_water;
    if (c->hs->running == c && c->hs->out.len > hw && http_out_flush(c, false) == F_FAILED) {
        c->state = C_DEAD;
        return -EPIPE;
    }
    if (unsent(c) <= hw)
        return 0;
    x->later = true;
    return HTTP_RES_LATER;
}

/* What may be written now: 0 when the bytes are to be dropped (no body),
 * 1 when they go out, or -errno. */
static int writable(struct http_exchange *x, uint64_t n)
{
    if (x->stage != RES_STARTED)
        return -EINVAL;
    if (!usable(x))
        return -EPIPE;
    if (x->no_body)
        return 0;
    if (x->length >= 0 && n > (uint64_t)x->length - x->written) {
        x->c->close = true;
        return -EMSGSIZE;
    }
    return n > 0;
}

static int chunk_head(struct http_exchange *x, uint64_t n)
{
    char line[20];
    int len = snprintf(line, sizeof line, "%llx\r\n", (unsigned long long)n);
    return put(x, line, (size_t)len);
}

int http_res_write(struct http_exchange *x, const void *p, size_t n)
{
    int ok = writable(x, n);
    if (ok <= 0)
        return ok;
    int err = x->chunked ? chunk_head(x, n) : 0;
    err |= put(x, p, n);
    if (x->chunked)
        err |= PUT(x, "\r\n");
    if (err) {
        x->c->state = C_DEAD;
        return -ENOMEM;
    }
    x->written += n;
    return after_write(x);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Send, and poll the socket while it is full, until at most high_water
 * bytes are left; the send timeout bounds each wait for room. */
int http_res_flush_wait(struct http_exchange *x)
{
    struct http_conn *c = x->c;
    if (x->stage != RES_STARTED || c->hs->running != c)
        return -EINVAL;
    size_t hw = c->hs->cfg->high_water;
    unsigned limit = c->hs->cfg->send_timeout_ms;
    while (usable(x) && unsent(c) > hw) {
        enum flush_result r = http_out_flush(c, false);
        if (r == F_FAILED)
            break;
        if (r != F_FULL)
            continue;
        uint64_t t0 = mono_ms();
        struct pollfd p = {.fd = c->tp.fd, .events = POLLOUT};
        int n;
        while ((n = poll(&p, 1, limit ? (int)limit : -1)) < 0 && errno == EINTR)
            if (limit && mono_ms() - t0 >= limit)
                break;
        if (n <= 0 || (p.revents & (POLLERR | POLLHUP))) {
            c->state = C_DEAD;
            return n == 0 ? -ETIMEDOUT : -EPIPE;
        }
    }
    if (!usable(x)) {
        c->state = C_DEAD;
        return -EPIPE;
    }
    x->later = false;
    return 0;
}

int http_res_file(struct http_exchange *x, int fd, uint64_t off, uint64_t len)
{
    int ok = writable(x, len);
    if (ok <= 0) {
        close(fd);
        return ok;
    }
    int err = x->chunked ? chunk_head(x, len) : 0;
    if (err) {
        close(fd);
    } else {
        err = http_out_file(x->c, fd, off, len);
        if (!err && x->chunked)
            err = PUT(x, "\r\n");
    }
    if (err) {
        x->c->state = C_DEAD;
        return err < 0 ? err : -ENOMEM;
    }
    x->written += len;
    return after_write(x);
}

int http_res_end(struct http_exchange *x)
{
    struct http_conn *c = x->c;
    if (x->stage != RES_STARTED)
        return -EINVAL;
    if (x->chunked && usable(x) && PUT(x, "0\r\n\r\n") < 0)
        c->state = C_DEAD;
    if (!x->no_body && x->length >= 0 && x->written < (uint64_t)x->length)
        c->close = true; /* cut short: only the end of the connection says so */
    x->stage = RES_ENDED;
    if (c->hs->running != c)
        http_conn_kick(c);
    return 0;
}

void http_res_abort(struct http_exchange *x)
{
    struct http_conn *c = x->c;
    x->aborted = true; /* the handler is not told what it did itself */
    x->stage = RES_ENDED;
    if (c->hs->running == c)
        c->state = C_DEAD;
    else
        http_conn_close(c);
}

void http_res_on_writable(struct http_exchange *x, http_ex_fn *fn, void *ud)
{
    x->on_writable = fn;
    x->writable_ud = ud;
}

int http_res_body(struct http_exchange *x, const void *p, size_t n)
{
    int err = http_res_start(x, (int64_t)n);
    if (!err && n)
        err = http_res_write(x, p, n);
    return err < 0 ? err : http_res_end(x);
}

/* ---- error pages ---- */

int http_res_page(struct http_exchange *x)
{
    struct http_buf *page = &x->c->hs->page;
    const char *reason = http_reason(x->status);
    static const char type[] = "text/html; charset=utf-8";
    http_buf_reset(page);
    if (http_buf_printf(page,
                        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                        "<title>%d %s</title></head>\n<body><h1>%d %s</h1>"
                        "<hr><p>prefork</p></body></html>\n",
                        x->status, reason, x->status, reason) < 0)
        return -ENOMEM;
    int err = http_res_header(x, "Content-Type", 12, type, sizeof type - 1);
    return err ? err : http_res_body(x, page->p, page->len);
}

/* A head still in the scratch can be taken back; one that went out cannot. */
int http_res_error(struct http_exchange *x, int status)
{
    struct http_conn *c = x->c;
    if (x->stage == RES_HEAD && c->hs->running == c && !c->q && x->head_at <= c->hs->out.len) {
        c->hs->out.len = x->head_at;
        x->stage = RES_NONE;
        x->own_date = x->own_server = false;
    }
    if (x->stage != RES_NONE)
        return -EINVAL;
    int err = http_res_status(x, status, NULL);
    return err ? err : http_res_page(x);
}
