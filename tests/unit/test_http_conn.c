/* test_http_conn.c — the HTTP core's connections over a socketpair: heads split at every byte, pipelining, streaming, back-pressure, checked header fields, the lingering close; the plain transport's file slices. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "conn_support.h"
#include "http/transport.h"

TestSuite(conn, .init = th_config, .fini = th_fini, .timeout = 30);
TestSuite(res, .init = th_config, .fini = th_fini, .timeout = 30);

/* ---- handlers ---- */

static bool aborted; /* an exchange was aborted (its on_abort ran) */
static struct http_exchange *held;

/* ---- heads ---- */

Test(conn, head_split_at_every_byte)
{
    static const char req[] = "GET /split HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n";
    th_start(th_echo_target, NULL, NULL);
    for (size_t cut = 1; cut < sizeof req - 1; cut++) {
        struct th_resp r;
        th_connect();
        cr_assert(th_send(req, cut));
        cr_assert(th_send(req + cut, sizeof req - 1 - cut));
        cr_assert(th_read(&r, false), "cut at %zu", cut);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "/split");
        th_resp_free(&r);
    }
}

Test(conn, head_one_byte_at_a_time)
{
    static const char req[] = "GET /bytes HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n";
    struct th_resp r;
    th_start(th_echo_target, NULL, NULL);
    th_connect();
    for (size_t i = 0; i < sizeof req - 1; i++)
        cr_assert(th_send(req + i, 1));
    cr_assert(th_read(&r, false));
    cr_assert_str_eq(r.body, "/bytes");
    th_resp_free(&r);
}

Test(conn, pipelined_requests_answered_in_order)
{
    th_start(th_echo_target, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
                       "HEAD /3 HTTP/1.1\r\nHost: h\r\n\r\nGET /4 HTTP/1.1\r\nHost: h\r\n\r\n"));
    const char *want[] = {"/1", "/2", "", "/4"};
    for (int i = 0; i < 4; i++) {
        struct th_resp r;
        cr_assert(th_read(&r, i == 2));
        cr_assert_str_eq(r.body, want[i]);
        th_resp_free(&r);
    }
}

Test(conn, invalid_head_is_400_then_close)
{
    struct th_resp r;
    th_start(th_hello, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\nHost: h\n\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 400);
    cr_assert(r.closed);
    cr_assert(th_closed());
    th_resp_free(&r);
}

Test(conn, partial_head_times_out_with_408)
{
    struct th_resp r;
    th.cfg.header_timeout_ms = 200;
    th_start(th_hello, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost:"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 408);
    cr_assert(th_closed());
    th_resp_free(&r);
}

/* A transport whose shutdown fails, as a TCP socket's does after a reset
 * (ENOTCONN): the connection must be freed once, and never read after.
 * Run under ASan (make test-san), the old code's use-after-free aborts. */
static int failing_shutdown(struct http_tp *tp)
{
    (void)tp;
    return -ENOTCONN;
}

Test(conn, failed_shutdown_on_close_frees_the_connection_once)
{
    static struct http_tp_ops ops;
    ops = http_tp_plain;
    ops.shutdown = failing_shutdown;
    struct th_resp r;
    th_start(th_hello, NULL, &ops);
    th_connect();
    /* A bad head leaves bytes unread: the close lingers, which shuts down. */
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\nBad Field: x\r\n\r\nmore"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 400);
    cr_assert(th_closed(), "the connection was closed at once");
    th_resp_free(&r);
}

/* ---- responses ---- */

/* Streams "piece N\n" ten times, one a timer tick apart, with no length. */
static struct http_exchange *streaming;
static int pieces_left;
static pf_timer stream_timer;

static void stream_tick(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)ud;
    char line[32];
    int n = snprintf(line, sizeof line, "piece %d\n", 10 - pieces_left);
    cr_assert_geq(http_res_write(streaming, line, (size_t)n), 0);
    if (--pieces_left == 0)
        http_res_end(streaming);
    else
        pf_timer_start(loop, t, 5);
}

static void stream_slowly(struct http_exchange *x, void *ud)
{
    (void)ud;
    streaming = x;
    pieces_left = 10;
    http_res_status(x, 200, NULL);
    http_res_start(x, HTTP_LENGTH_UNKNOWN);
    pf_timer_init(&stream_timer, stream_tick, NULL);
    pf_timer_start(http_server_loop(http_ex_server(x)), &stream_timer, 5);
}

Test(res, slow_stream_is_chunked_in_http11)
{
    struct th_resp r;
    th_start(stream_slowly, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert(r.chunked);
    cr_assert_str_eq(r.body, "piece 0\npiece 1\npiece 2\npiece 3\npiece 4\npiece 5\npiece 6\n"
                             "piece 7\npiece 8\npiece 9\n");
    cr_assert_not(r.closed);
    th_resp_free(&r);
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false), "keep-alive goes on after a stream");
    th_resp_free(&r);
}

Test(res, slow_stream_ends_with_the_connection_in_http10)
{
    struct th_resp r;
    th_start(stream_slowly, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_not(r.chunked);
    cr_assert(r.closed);
    cr_assert_eq(r.body_len, 80);
    th_resp_free(&r);
}

/* Writes 64 KiB pieces until told to wait, goes on when told it may, up to
 * `flood_total`; notes when it was stopped. */
static struct http_exchange *flooding;
static uint64_t flood_sent, flood_total;
static unsigned flood_laters;
static bool flood_done;

static void flood_more(struct http_exchange *x, void *ud)
{
    (void)ud;
    static char piece[65536];
    while (flood_sent < flood_total) {
        int r = http_res_write(x, piece, sizeof piece);
        cr_assert_geq(r, 0);
        flood_sent += sizeof piece;
        if (r == HTTP_RES_LATER) {
            flood_laters++;
            return;
        }
    }
    flood_done = true;
    http_res_end(x);
}

static void on_flood_abort(struct http_exchange *x, void *ud)
{
    (void)x, (void)ud;
    aborted = true;
}

static void flood(struct http_exchange *x, void *ud)
{
    flooding = x;
    http_ex_on_abort(x, on_flood_abort, NULL);
    http_res_on_writable(x, flood_more, NULL);
    http_res_status(x, 200, NULL);
    http_res_start(x, HTTP_LENGTH_UNKNOWN);
    flood_more(x, ud);
}

Test(res, writes_wait_for_room_and_the_whole_stream_arrives)
{
    struct th_resp r;
    flood_total = 8u << 20;
    th_start(flood, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.body_len, 8u << 20);
    cr_assert_gt(flood_laters, 0, "a client reading slower than the handler writes holds it back");
    cr_assert(flood_done);
    th_resp_free(&r);
}

Test(res, client_that_stops_reading_is_dropped_and_the_handler_told)
{
    char buf[1024];
    th.cfg.send_timeout_ms = 200;
    flood_total = 64u << 20;
    th_start(flood, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert_gt(th_peek(buf, sizeof buf, 20), 0);
    cr_assert(th_pump_until(&aborted), "the send timeout ended the exchange");
    cr_assert_not(flood_done);
    cr_assert_lt(flood_sent, 64u << 20, "the handler was held back, not buffered without end");
}

static int hdr_results[8];

static void bad_headers(struct http_exchange *x, void *ud)
{
    (void)ud;
    hdr_results[0] = http_res_status(x, 200, "OK\r\nX-Evil: 1");
    hdr_results[1] = http_res_status(x, 200, NULL);
    hdr_results[2] = http_res_header(x, "X-A", 3, "v\r\nX-Evil: 1", 13);
    hdr_results[3] = http_res_header(x, "X A", 3, "v", 1);
    hdr_results[4] = http_res_header(x, "X-N", 3, "a\0b", 3);
    hdr_results[5] = http_res_header(x, "Content-Length", 14, "5", 1);
    hdr_results[6] = http_res_header(x, "transfer-encoding", 17, "chunked", 7);
    hdr_results[7] = http_res_header(x, "X-Ok", 4, "fine", 4);
    http_res_body(x, "body", 4);
}

Test(res, header_injection_is_refused_never_sent)
{
    struct th_resp r;
    char v[64];
    th_start(bad_headers, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(hdr_results[0], -EINVAL);
    cr_assert_eq(hdr_results[1], 0);
    cr_assert_eq(hdr_results[2], -EINVAL);
    cr_assert_eq(hdr_results[3], -EINVAL);
    cr_assert_eq(hdr_results[4], -EINVAL);
    cr_assert_eq(hdr_results[5], -EPERM);
    cr_assert_eq(hdr_results[6], -EPERM);
    cr_assert_eq(hdr_results[7], 0);
    cr_assert_null(strstr(r.head, "Evil"));
    cr_assert_str_eq(th_field(&r, "X-Ok", v, sizeof v), "fine");
    cr_assert_str_eq(th_field(&r, "Content-Length", v, sizeof v), "4");
    cr_assert_str_eq(r.body, "body");
    th_resp_free(&r);
}

/* Every control byte at every place of a value longer than a word: the
 * check goes eight bytes at a time, so each offset within a word and the
 * tail after the last whole word are tried. Tab and obs-text pass. */
static int ctl_refused, ctl_wrong;
static void every_control_byte(struct http_exchange *x, void *ud)
{
    (void)ud;
    char v[24];
    http_res_status(x, 200, NULL);
    for (int c = 0; c < 256; c++) {
        bool bad = (c < 0x20 && c != '\t') || c == 0x7f;
        if (!bad && c != '\t' && c != 0x80 && c != 0xff)
            continue;
        for (size_t at = 0; at < sizeof v; at++) {
            memset(v, 'a', sizeof v);
            v[at] = (char)c;
            int rc = http_res_header(x, "X-V", 3, v, sizeof v);
            ctl_refused += rc == -EINVAL;
            ctl_wrong += bad ? rc != -EINVAL : rc != 0;
        }
    }
    http_res_body(x, "ok", 2);
}

Test(res, every_control_byte_anywhere_in_a_value_is_refused)
{
    struct th_resp r;
    th_start(every_control_byte, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(ctl_wrong, 0);
    cr_assert_eq(ctl_refused, 32 * 24); /* 0x00..0x1f but tab, and DEL */
    cr_assert_str_eq(r.body, "ok");
    th_resp_free(&r);
}

/* A set of fields checked once: the same refusals as http_res_header,
 * then sent as given, with its Date in place of the core's. */
static int set_results[5];
static void with_a_set(struct http_exchange *x, void *ud)
{
    (void)ud;
    struct http_fields f = {0};
    set_results[0] = http_fields_add(&f, "X-A", 3, "v\r\nX-Evil: 1", 13);
    set_results[1] = http_fields_add(&f, "X A", 3, "v", 1);
    set_results[2] = http_fields_add(&f, "Content-Length", 14, "9", 1);
    set_results[3] = http_fields_add(&f, "X-Set", 5, "yes", 3);
    set_results[4] = http_fields_add(&f, "Date", 4, "Thu, 01 Jan 1970 00:00:00 GMT", 29);
    http_res_status(x, 200, NULL);
    http_res_fields(x, &f);
    http_fields_free(&f);
    http_res_body(x, "set", 3);
}

Test(res, a_field_set_is_checked_once_and_sent_whole)
{
    struct th_resp r;
    char v[64];
    th_start(with_a_set, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(set_results[0], -EINVAL);
    cr_assert_eq(set_results[1], -EINVAL);
    cr_assert_eq(set_results[2], -EPERM);
    cr_assert_eq(set_results[3], 0);
    cr_assert_eq(set_results[4], 0);
    cr_assert_null(strstr(r.head, "Evil"));
    cr_assert_str_eq(th_field(&r, "X-Set", v, sizeof v), "yes");
    cr_assert_str_eq(th_field(&r, "Date", v, sizeof v), "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_assert_null(strstr(strstr(r.head, "Date:") + 1, "Date:"), "two Date fields");
    cr_assert_str_eq(th_field(&r, "Content-Length", v, sizeof v), "3");
    cr_assert_str_eq(r.body, "set");
    th_resp_free(&r);
}

static void status_from_target(struct http_exchange *x, void *ud)
{
    (void)ud;
    int status = atoi(http_ex_request(x)->target + 1);
    http_res_status(x, status, NULL);
    http_res_start(x, HTTP_LENGTH_UNKNOWN);
    http_res_write(x, "dropped", 7);
    http_res_end(x);
}

Test(res, head_204_304_carry_no_body)
{
    struct th_resp r;
    char v[32];
    th_start(status_from_target, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\n"
                       "HEAD /200 HTTP/1.1\r\nHost: h\r\n\r\nGET /200 HTTP/1.1\r\nHost: h\r\n\r\n"));
    int want[] = {204, 304, 200};
    for (int i = 0; i < 3; i++) {
        cr_assert(th_read(&r, true));
        cr_assert_eq(r.status, want[i]);
        cr_assert_str_eq(th_field(&r, "Transfer-Encoding", v, sizeof v), "");
        th_resp_free(&r);
    }
    cr_assert(th_read(&r, false), "the stream is still in step: no body bytes were sent");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "dropped");
    th_resp_free(&r);
}

static int over_result;

static void over_length(struct http_exchange *x, void *ud)
{
    (void)ud;
    http_res_status(x, 200, NULL);
    http_res_start(x, 3);
    over_result = http_res_write(x, "abcd", 4);
    http_res_write(x, "abc", 3);
    http_res_end(x);
}

Test(res, writing_past_the_length_is_refused)
{
    struct th_resp r;
    th_start(over_length, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(over_result, -EMSGSIZE);
    cr_assert_str_eq(r.body, "abc");
    cr_assert(th_closed(), "a response that overran ends the connection");
    th_resp_free(&r);
}

static void short_body(struct http_exchange *x, void *ud)
{
    (void)ud;
    http_res_status(x, 200, NULL);
    http_res_start(x, 10);
    http_res_write(x, "abc", 3);
    http_res_end(x);
}

Test(res, body_shorter_than_its_length_ends_the_connection)
{
    struct th_resp r;
    th_start(short_body, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert_not(th_read(&r, false), "the body is cut short");
    cr_assert_eq(r.status, 200);
    cr_assert(th_eof(), "and only the close tells the client so");
    th_resp_free(&r);
}

static void error_after_header(struct http_exchange *x, void *ud)
{
    (void)ud;
    http_res_status(x, 200, NULL);
    http_res_header(x, "X-Half", 6, "1", 1);
    cr_assert_eq(http_res_error(x, 500), 0, "a head not sent yet can be taken back");
}

Test(res, unsent_head_is_taken_back_by_an_error)
{
    struct th_resp r;
    char v[8];
    th_start(error_after_header, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_assert(th_read(&r, false));
    cr_assert_eq(r.status, 500);
    cr_assert_str_eq(th_field(&r, "X-Half", v, sizeof v), "");
    th_resp_free(&r);
}

static void hold(struct http_exchange *x, void *ud)
{
    (void)ud;
    held = x;
    http_ex_on_abort(x, on_flood_abort, NULL);
}

Test(res, open_exchanges_are_aborted_when_the_server_stops)
{
    th_start(hold, NULL, NULL);
    th_connect();
    cr_assert(th_sends("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    th_pump(10);
    cr_assert_not(aborted);
    http_server_free(th.s); /* a worker that stops aborts what is open */
    th.s = NULL;
    cr_assert(aborted);
}

/* ---- the plain transport ---- */

/* A file's slice follows the TCP connection's MSS, read while it moves;
 * once two reads agree, the figure serves 16 slices before the next read. */
Test(conn, slices_read_the_mss_only_while_it_moves)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(l >= 0 && c >= 0);
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int s = accept(l, NULL, NULL);
    cr_assert_geq(s, 0);
    struct http_tp tp = {.ops = &http_tp_plain, .fd = s};
    size_t first = tp.ops->slice(&tp);
    cr_assert_gt(first, 0);
    cr_assert_eq(tp.slice_uses, 0, "one read is not yet a settled figure");
    cr_assert_eq(tp.ops->slice(&tp), first);
    cr_assert_eq(tp.slice_uses, 16, "two reads agree: kept");
    for (int i = 0; i < 16; i++)
        cr_assert_eq(tp.ops->slice(&tp), first);
    cr_assert_eq(tp.slice_uses, 0);
    cr_assert_eq(tp.ops->slice(&tp), first); /* read again */
    cr_assert_eq(tp.slice_uses, 16);
    /* A figure that moved is read again at the next slice. */
    tp.slice = 1;
    tp.slice_uses = 0;
    cr_assert_eq(tp.ops->slice(&tp), first);
    cr_assert_eq(tp.slice_uses, 0, "it moved: read again next time");
    close(s);
    close(c);
    close(l);
}
