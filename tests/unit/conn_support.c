/* conn_support.c — a harness for the HTTP core's connections: a server on a loop of the test's own, a client over a socketpair, and a small response reader. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn_support.h"

struct th th = {.fd = -1};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void th_config(void)
{
    http_config_init(&th.cfg);
    th.cfg.header_timeout_ms = 2000;
    th.cfg.body_timeout_ms = 2000;
    th.cfg.send_timeout_ms = 2000;
}

void th_start(void (*fn)(struct http_exchange *x, void *ud), void *ud,
              const struct http_tp_ops *tp)
{
    cr_assert_eq(pf_loop_new(&th.loop), 0);
    th.h = (struct http_handler){.request = fn, .ud = ud};
    cr_assert_eq(http_server_new(&th.cfg, &th.h, th.loop, &th.s), 0);
    if (tp)
        http_server_set_transport(th.s, tp);
}

int th_connect(void)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    if (th.fd >= 0)
        close(th.fd);
    th.fd = sv[0];
    http_server_add_conn(th.s, sv[1], NULL, 0);
    return th.fd;
}

void th_fini(void)
{
    http_server_free(th.s);
    th.s = NULL;
    if (th.fd >= 0)
        close(th.fd);
    th.fd = -1;
    if (th.loop)
        pf_loop_free(th.loop);
    th.loop = NULL;
}

static void on_stop(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)t, (void)ud;
    pf_loop_stop(loop);
}

void th_pump(unsigned ms)
{
    pf_timer t;
    pf_timer_init(&t, on_stop, NULL);
    pf_timer_start(th.loop, &t, ms);
    pf_loop_run(th.loop);
    pf_timer_stop(th.loop, &t);
}

bool th_pump_until(const bool *flag)
{
    uint64_t end = mono_ms() + TH_DEADLINE_MS;
    while (!*flag && mono_ms() < end)
        th_pump(2);
    return *flag;
}

bool th_send(const void *p, size_t n)
{
    const char *c = p;
    uint64_t end = mono_ms() + TH_DEADLINE_MS;
    while (n && mono_ms() < end) {
        ssize_t w = send(th.fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
            return false;
        if (w > 0) {
            c += w;
            n -= (size_t)w;
        }
        th_pump(w > 0 ? 0 : 1);
    }
    th_pump(0);
    return n == 0;
}

bool th_sends(const char *s)
{
    return th_send(s, strlen(s));
}

/* ---- reading ---- */

struct inbuf {
    char *p;
    size_t len, cap, off;
    bool eof;
};

static struct inbuf in; /* what the client read and has not used yet */

/* Read more from the client's end: false at EOF or on the deadline. */
static bool more(uint64_t end)
{
    while (mono_ms() < end) {
        if (in.cap - in.len < 65536) {
            in.cap = in.cap ? in.cap * 2 : 131072;
            in.p = realloc(in.p, in.cap);
            cr_assert_not_null(in.p);
        }
        ssize_t n = read(th.fd, in.p + in.len, in.cap - in.len);
        if (n > 0) {
            in.len += (size_t)n;
            return true;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            in.eof = true;
            return false;
        }
        th_pump(1);
    }
    return false;
}

static void reset_in(void)
{
    if (in.off == in.len) {
        in.off = in.len = 0;
    }
}

/* A line (without CRLF) from in, waiting for it. */
static char *line(uint64_t end, size_t *len)
{
    for (;;) {
        char *p = in.p ? memmem(in.p + in.off, in.len - in.off, "\r\n", 2) : NULL;
        if (p) {
            char *s = in.p + in.off;
            *len = (size_t)(p - s);
            in.off += *len + 2;
            return s;
        }
        if (!more(end))
            return NULL;
    }
}

static bool bytes(uint64_t end, size_t n, char **out)
{
    while (in.len - in.off < n)
        if (!more(end))
            return false;
    *out = in.p + in.off;
    in.off += n;
    return true;
}

const char *th_field(const struct th_resp *r, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    buf[0] = '\0';
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 2 + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= size)
                len = size - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return buf;
        }
    }
    return buf;
}

static void append(struct th_resp *r, const char *p, size_t n)
{
    r->body = realloc(r->body, r->body_len + n + 1);
    cr_assert_not_null(r->body);
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

static bool read_chunked(struct th_resp *r, uint64_t end)
{
    for (;;) {
        size_t len;
        char *l = line(end, &len), *data;
        if (!l)
            return false;
        unsigned long n = strtoul(l, NULL, 16);
        if (n == 0)
            break;
        if (!bytes(end, n + 2, &data))
            return false;
        append(r, data, n);
    }
    for (;;) { /* trailers, then the empty line */
        size_t len;
        if (!line(end, &len))
            return false;
        if (len == 0)
            return true;
    }
}

bool th_read(struct th_resp *r, bool no_body)
{
    uint64_t end = mono_ms() + TH_DEADLINE_MS;
    char cl[32], te[32], conn[32], *data;
    size_t len, hlen = 0;
    memset(r, 0, sizeof *r);
    append(r, "", 0);
    reset_in();
    for (;;) {
        char *l = line(end, &len);
        if (!l)
            return false;
        if (hlen == 0 && len == 0)
            continue;
        if (hlen + len + 3 < sizeof r->head) {
            memcpy(r->head + hlen, l, len);
            memcpy(r->head + hlen + len, "\r\n", 3);
            hlen += len + 2;
        }
        if (len == 0)
            break;
        if (strncmp(r->head, "HTTP/1.1 1", 10) == 0 && hlen > 0 && len == 0)
            break;
    }
    r->status = atoi(r->head + 9);
    th_field(r, "Content-Length", cl, sizeof cl);
    th_field(r, "Transfer-Encoding", te, sizeof te);
    th_field(r, "Connection", conn, sizeof conn);
    r->closed = strcasecmp(conn, "close") == 0;
    if (no_body || r->status == 204 || r->status == 304 || r->status < 200)
        return true;
    if (strcasecmp(te, "chunked") == 0) {
        r->chunked = true;
        return read_chunked(r, end);
    }
    if (cl[0]) {
        size_t n = strtoul(cl, NULL, 10);
        if (!bytes(end, n, &data))
            return false;
        append(r, data, n);
        return true;
    }
    while (more(end)) /* until the server closes */
        ;
    append(r, in.p + in.off, in.len - in.off);
    in.off = in.len;
    return in.eof;
}

void th_resp_free(struct th_resp *r)
{
    free(r->body);
    r->body = NULL;
}

bool th_closed(void)
{
    uint64_t end = mono_ms() + TH_DEADLINE_MS;
    while (!in.eof && more(end))
        ;
    bool nothing = in.off == in.len;
    free(in.p);
    memset(&in, 0, sizeof in);
    return nothing && mono_ms() < end;
}

bool th_eof(void)
{
    uint64_t end = mono_ms() + TH_DEADLINE_MS;
    while (!in.eof && more(end))
        ;
    return in.eof;
}

size_t th_peek(char *buf, size_t size, unsigned ms)
{
    th_pump(ms);
    ssize_t n = recv(th.fd, buf, size, MSG_PEEK);
    return n > 0 ? (size_t)n : 0;
}

uint64_t th_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void th_hello(struct http_exchange *x, void *ud)
{
    (void)ud;
    http_res_status(x, 200, NULL);
    http_res_header(x, "Content-Type", 12, "text/plain", 10);
    http_res_body(x, "hello", 5);
}

void th_echo_target(struct http_exchange *x, void *ud)
{
    (void)ud;
    const struct http_request *req = http_ex_request(x);
    http_res_status(x, 200, NULL);
    http_res_body(x, req->target, req->target_len);
}
