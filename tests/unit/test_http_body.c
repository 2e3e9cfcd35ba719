/* test_http_body.c — request bodies through the HTTP core: every framing and size byte-exact, splits, bad chunking, limits (413), stalls (408), 100-continue, bodies read away for keep-alive. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_support.h"

TestSuite(body, .init = th_config, .fini = th_fini, .timeout = 60);

/* ---- handlers ---- */

/* What a body handler saw: bytes, their hash, pieces, and the verdict. */
struct seen {
    uint64_t len, hash;
    unsigned pieces;
    int status; /* the last status given to the callback */
    bool ended, failed, aborted;
};
static struct seen seen;

static void answer_seen(struct http_exchange *x)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%llu %016llx", (unsigned long long)seen.len,
                     (unsigned long long)seen.hash);
    http_res_status(x, 200, NULL);
    http_res_body(x, body, (size_t)n);
}

static void on_piece(struct http_exchange *x, const char *p, size_t n, int status, void *ud)
{
    (void)ud;
    seen.status = status;
    if (status < 0) {
        seen.failed = true;
        return;
    }
    seen.len += n;
    seen.hash = th_hash(seen.hash, p, n);
    seen.pieces++;
    if (status == HTTP_BODY_END) {
        seen.ended = true;
        answer_seen(x);
    }
}

static void read_stream(struct http_exchange *x, void *ud)
{
    (void)ud;
    seen.hash = TH_HASH0;
    cr_assert_eq(http_body_read(x, on_piece, NULL), 0);
}

static void read_whole(struct http_exchange *x, void *ud)
{
    (void)ud;
    seen.hash = TH_HASH0;
    cr_assert_eq(http_body_read_whole(x, on_piece, NULL), 0);
}

/* ---- helpers ---- */

static char *pattern(size_t n)
{
    char *p = malloc(n + 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 251) % 26);
    p[n] = '\0';
    return p;
}

static void expect_seen_body(const char *body, size_t n, struct th_resp *r)
{
    char want[96];
    snprintf(want, sizeof want, "%llu %016llx", (unsigned long long)n,
             (unsigned long long)th_hash(TH_HASH0, body, n));
    cr_assert_str_eq(r->body, want);
}

/* A chunked encoding of body in pieces of `piece` bytes, with trailers. */
static char *chunked(const char *body, size_t n, size_t piece, const char *trailers, size_t *len)
{
    size_t cap = n + (n / piece + 2) * 32 + strlen(trailers) + 16, o = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    for (size_t i = 0; i < n; i += piece) {
        size_t k = n - i < piece ? n - i : piece;
        o += (size_t)sprintf(out + o, "%zx\r\n", k);
        memcpy(out + o, body + i, k);
        o += k;
        memcpy(out + o, "\r\n", 2);
        o += 2;
    }
    o += (size_t)sprintf(out + o, "0\r\n%s\r\n", trailers);
    *len = o;
    return out;
}

static struct http_exchange *held;

/* ---- request bodies ---- */

static void body_by_length(void (*fn)(struct http_exchange *, void *), size_t n)
{
    char *body = pattern(n), head[128];
    struct th_resp r;
    th_start(fn, NULL, NULL);
    th_connect();
    snprintf(head, sizeof head, "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n", n);
    cr_assert(th_sends(head));
    cr_assert(th_send(body, n));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 200);
    expect_seen_body(body, n, &r);
    cr_assert(seen.ended);
    th_resp_free(&r);
    free(body);
}

Test(body, length_1_streamed)
{
    body_by_length(read_stream, 1);
}
Test(body, length_0_streamed)
{
    body_by_length(read_stream, 0);
}
Test(body, length_5mib_streamed)
{
    th.cfg.max_body = 8u << 20;
    body_by_length(read_stream, 5u << 20);
    cr_assert_gt(seen.pieces, 1, "a big body arrives in pieces");
}
Test(body, length_5mib_whole)
{
    th.cfg.max_body = 8u << 20;
    body_by_length(read_whole, 5u << 20);
    cr_assert_eq(seen.pieces, 1, "a whole body comes in one call");
}

static void body_chunked(void (*fn)(struct http_exchange *, void *), size_t n, size_t piece,
                         const char *trailers)
{
    char *body = pattern(n);
    size_t len;
    char *enc = chunked(body, n, piece, trailers, &len);
    struct th_resp r;
    th_start(fn, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
    cr_assert(th_send(enc, len));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 200);
    expect_seen_body(body, n, &r);
    th_resp_free(&r);
    /* The connection goes on after a chunked body. */
    cr_assert(th_sends("GET /next HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 200);
    th_resp_free(&r);
    free(enc);
    free(body);
}

Test(body, chunked_0_bytes)
{
    body_chunked(read_stream, 0, 10, "");
}
Test(body, chunked_1_byte_with_trailers)
{
    body_chunked(read_whole, 1, 1, "X-Sum: 1\r\nX-More: two\r\n");
}
Test(body, chunked_5mib)
{
    th.cfg.max_body = 8u << 20;
    body_chunked(read_stream, 5u << 20, 100000, "");
}
Test(body, chunked_5mib_whole_small_chunks)
{
    th.cfg.max_body = 8u << 20;
    body_chunked(read_whole, 5u << 20, 4093, "Done: yes\r\n");
}

Test(body, chunked_split_at_every_byte)
{
    static const char req[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3;ext=\"v\"\r\nabc\r\n1\r\nd\r\n0\r\nT: 1\r\n\r\n";
    th_start(read_stream, NULL, NULL);
    for (size_t cut = 1; cut < sizeof req - 1; cut++) {
        struct th_resp r;
        memset(&seen, 0, sizeof seen);
        th_connect();
        cr_assert(th_send(req, cut));
        cr_assert(th_send(req + cut, sizeof req - 1 - cut));
        cr_assert(th_read(&r, false), "cut at %zu", cut);
        expect_seen_body("abcd", 4, &r);
        th_resp_free(&r);
    }
}

static void bad_chunked(const char *enc)
{
    struct th_resp r;
    th_start(read_stream, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
    cr_assert(th_sends(enc));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 400, "%s", enc);
    cr_assert(r.closed);
    cr_assert(seen.failed, "the handler is told");
    cr_assert_eq(seen.status, -EPROTO);
    cr_assert(th_closed());
    th_resp_free(&r);
}

Test(body, bad_chunk_size_is_400)
{
    bad_chunked("zz\r\nabc\r\n0\r\n\r\n");
}
Test(body, chunk_size_overflow_is_400)
{
    bad_chunked("fffffffffffffffff\r\nabc\r\n");
}
Test(body, chunk_without_crlf_is_400)
{
    bad_chunked("3\r\nabcX\r\n0\r\n\r\n");
}
Test(body, chunk_size_with_bare_lf_is_400)
{
    bad_chunked("3\nabc\r\n0\r\n\r\n");
}

static void read_or_413(struct http_exchange *x, void *ud)
{
    (void)ud;
    seen.hash = TH_HASH0;
    int err = http_body_read(x, on_piece, NULL);
    if (err == -EMSGSIZE)
        http_res_error(x, 413);
    else
        cr_assert_eq(err, 0);
}

Test(body, length_past_the_limit_is_refused_before_reading)
{
    struct th_resp r;
    th.cfg.max_body = 1000;
    th_start(read_or_413, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 413);
    cr_assert(r.closed);
    cr_assert_eq(seen.pieces, 0);
    th_resp_free(&r);
}

Test(body, chunked_past_the_limit_is_413)
{
    char *body = pattern(3000);
    size_t len;
    char *enc = chunked(body, 3000, 500, "", &len);
    struct th_resp r;
    th.cfg.max_body = 1000;
    th_start(read_stream, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
    th_send(enc, len); /* the server may close before all is sent */
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 413);
    cr_assert(r.closed);
    cr_assert(seen.failed);
    cr_assert_eq(seen.status, -EMSGSIZE);
    cr_assert_leq(seen.len, 1000);
    th_resp_free(&r);
    free(enc);
    free(body);
}

Test(body, stalled_body_times_out_with_408)
{
    struct th_resp r;
    th.cfg.body_timeout_ms = 200;
    th_start(read_stream, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 408);
    cr_assert(r.closed);
    cr_assert(seen.failed);
    cr_assert_eq(seen.status, -ETIMEDOUT);
    th_resp_free(&r);
}

Test(body, client_gone_mid_body_tells_the_handler)
{
    th_start(read_stream, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
    th_pump(20);
    shutdown(th.fd, SHUT_WR);
    cr_assert(th_pump_until(&seen.failed));
    cr_assert_eq(seen.status, -ECONNRESET);
}

/* 100-continue: the handler asks for the body only after a while. */
static bool asked;

static void ask_later(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t, (void)ud;
    asked = true;
    seen.hash = TH_HASH0;
    cr_assert_eq(http_body_read(held, on_piece, NULL), 0);
}

static pf_timer later_timer;

static void hold_then_read(struct http_exchange *x, void *ud)
{
    (void)ud;
    held = x;
    pf_timer_init(&later_timer, ask_later, NULL);
    pf_timer_start(http_server_loop(http_ex_server(x)), &later_timer, 100);
}

Test(body, continue_comes_only_when_the_handler_asks)
{
    char buf[64];
    struct th_resp r;
    th_start(hold_then_read, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                       "Expect: 100-continue\r\n\r\n"));
    cr_assert_eq(th_peek(buf, sizeof buf, 30), 0, "no 100 before the handler asks");
    cr_assert(th_pump_until(&asked));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 100);
    th_resp_free(&r);
    cr_assert(th_sends("abcd"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 200);
    expect_seen_body("abcd", 4, &r);
    th_resp_free(&r);
}

Test(body, unread_expect_continue_body_closes)
{
    struct th_resp r;
    th_start(th_hello, NULL, NULL);
    th_connect();
    cr_assert(th_sends("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                       "Expect: 100-continue\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 200);
    cr_assert(r.closed, "the client may never send the body: the connection cannot go on");
    th_resp_free(&r);
}

Test(body, small_unwanted_body_is_read_away_and_keepalive_goes_on)
{
    struct th_resp r;
    th_start(th_echo_target, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                       "GET /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "2\r\nhi\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n"));
    const char *want[] = {"/a", "/b", "/c"};
    for (int i = 0; i < 3; i++) {
        cr_assert(th_read(&r, false));
        cr_assert_str_eq(r.body, want[i]);
        cr_assert_not(r.closed);
        th_resp_free(&r);
    }
}

Test(body, unwanted_body_past_the_limit_closes)
{
    struct th_resp r;
    th.cfg.max_body = 100;
    th_start(th_echo_target, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_str_eq(r.body, "/a");
    cr_assert(r.closed);
    th_resp_free(&r);
}

