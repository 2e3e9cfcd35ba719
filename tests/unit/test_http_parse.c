/* test_http_parse.c — unit tests of the HTTP request-head parser: good, bad, byte by byte, limits, guard page. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/http/parse.h"

/* Bytes with an explicit length, so that tests can hold NULs. */
struct bytes {
    const char *p;
    size_t n;
};
#define B(s) {(s), sizeof(s) - 1}

#define MAXF 8

/* A request that must parse, and everything it must parse to. tail is how
 * many bytes after the head the input holds (a body, another request);
 * fields lists every header line, in order. */
struct good {
    const char *name;
    struct bytes raw;
    size_t tail;
    enum http_method method;
    const char *method_name;
    const char *target;
    enum http_target_form form;
    const char *path;
    int minor;
    int64_t cl;
    bool chunked, keep_alive, expect;
    const char *host;
    const char *fields[MAXF][2];
};

#define GET HTTP_METHOD_GET, "GET"
#define ORIGIN HTTP_TARGET_ORIGIN

static const struct good goods[] = {
    {"minimal 1.1", B("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0, GET, "/", ORIGIN, "/", 1,
     -1, false, true, false, "example.com", {{"Host", "example.com"}}},
    {"1.0 without Host", B("GET /index.html HTTP/1.0\r\n\r\n"), 0, GET, "/index.html", ORIGIN,
     "/index.html", 0, -1, false, false, false, "", {{0}}},
    {"1.0 keep-alive", B("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0, GET, "/", ORIGIN,
     "/", 0, -1, false, true, false, "", {{"Connection", "Keep-Alive"}}},
    {"1.0 keep-alive, close", B("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0, GET,
     "/", ORIGIN, "/", 0, -1, false, false, false, "", {{"Connection", "keep-alive, close"}}},
    {"1.1 close in a list", B("GET / HTTP/1.1\r\nhost: a\r\nconnection: Upgrade ,CLOSE\r\n\r\n"), 0,
     GET, "/", ORIGIN, "/", 1, -1, false, false, false, "a",
     {{"host", "a"}, {"connection", "Upgrade ,CLOSE"}}},
    {"1.1 other tokens", B("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, closed\r\n\r\n"),
     0, GET, "/", ORIGIN, "/", 1, -1, false, true, false, "a",
     {{"Host", "a"}, {"Connection", "keep-alive, closed"}}},
    {"POST with body", B("POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), 5,
     HTTP_METHOD_POST, "POST", "/form", ORIGIN, "/form", 1, 5, false, true, false, "a",
     {{"Host", "a"}, {"Content-Length", "5"}}},
    {"Content-Length list folded",
     B("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\ncontent-length:5\r\n\r\n"), 0,
     HTTP_METHOD_PUT, "PUT", "/x", ORIGIN, "/x", 1, 5, false, true, false, "a",
     {{"Host", "a"}, {"Content-Length", "5, 5"}, {"content-length", "5"}}},
    {"Content-Length max",
     B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), 0,
     HTTP_METHOD_POST, "POST", "/", ORIGIN, "/", 1, INT64_MAX, false, true, false, "a",
     {{"Host", "a"}, {"Content-Length", "9223372036854775807"}}},
    {"Content-Length zero, leading zeros",
     B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n"), 0, HTTP_METHOD_POST, "POST",
     "/", ORIGIN, "/", 1, 0, false, true, false, "a", {{"Host", "a"}, {"Content-Length", "000"}}},
    {"chunked", B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: a\r\n\r\n"), 0,
     HTTP_METHOD_POST, "POST", "/", ORIGIN, "/", 1, -1, true, true, false, "a",
     {{"Transfer-Encoding", "chunked"}, {"Host", "a"}}},
    {"chunked, odd case, empty elements",
     B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , CHUNKED ,\r\n\r\n"), 0,
     HTTP_METHOD_POST, "POST", "/", ORIGIN, "/", 1, -1, true, true, false, "a",
     {{"Host", "a"}, {"Transfer-Encoding", ", CHUNKED ,"}}},
    {"expect 100-continue",
     B("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n"), 0,
     HTTP_METHOD_PUT, "PUT", "/f", ORIGIN, "/f", 1, 10, false, true, true, "a",
     {{"Host", "a"}, {"Expect", "100-Continue"}, {"Content-Length", "10"}}},
    {"expect ignored in 1.0", B("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), 0,
     HTTP_METHOD_PUT, "PUT", "/f", ORIGIN, "/f", 0, -1, false, false, false, "",
     {{"Expect", "100-continue"}}},
    {"two empty lines first", B("\r\n\r\nHEAD /h HTTP/1.1\r\nHost: a\r\n\r\n"), 0,
     HTTP_METHOD_HEAD, "HEAD", "/h", ORIGIN, "/h", 1, -1, false, true, false, "a", {{"Host", "a"}}},
    {"one empty line first", B("\r\nDELETE /d HTTP/1.1\r\nHost: a\r\n\r\n"), 0,
     HTTP_METHOD_DELETE, "DELETE", "/d", ORIGIN, "/d", 1, -1, false, true, false, "a",
     {{"Host", "a"}}},
    {"whitespace trimmed, empty value",
     B("GET / HTTP/1.1\r\nHost: \t example.com \t\r\nX-Empty:\r\nX-Sp:   \r\nX-In: a \t b\r\n\r\n"),
     0, GET, "/", ORIGIN, "/", 1, -1, false, true, false, "example.com",
     {{"Host", "example.com"}, {"X-Empty", ""}, {"X-Sp", ""}, {"X-In", "a \t b"}}},
    {"obs-text in a value", B("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\xff\x80\r\n\r\n"),
     0, GET, "/", ORIGIN, "/", 1, -1, false, true, false, "a",
     {{"Host", "a"}, {"X-Name", "caf\xc3\xa9\xff\x80"}}},
    {"every tchar in a name", B("GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"),
     0, GET, "/", ORIGIN, "/", 1, -1, false, true, false, "a",
     {{"Host", "a"}, {"!#$%&'*+-.^_`|~09azAZ", "v"}}},
    {"HTTP/1.9 counts as 1.1", B("GET / HTTP/1.9\r\nHost: a\r\n\r\n"), 0, GET, "/", ORIGIN, "/", 1,
     -1, false, true, false, "a", {{"Host", "a"}}},
    {"OPTIONS *", B("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0, HTTP_METHOD_OPTIONS, "OPTIONS",
     "*", HTTP_TARGET_ASTERISK, "", 1, -1, false, true, false, "a", {{"Host", "a"}}},
    {"CONNECT", B("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 0,
     HTTP_METHOD_CONNECT, "CONNECT", "example.com:443", HTTP_TARGET_AUTHORITY, "", 1, -1, false,
     true, false, "example.com:443", {{"Host", "example.com:443"}}},
    {"CONNECT IPv6", B("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n"), 0,
     HTTP_METHOD_CONNECT, "CONNECT", "[2001:db8::1]:8443", HTTP_TARGET_AUTHORITY, "", 1, -1, false,
     true, false, "[2001:db8::1]:8443", {{"Host", "[2001:db8::1]:8443"}}},
    {"absolute-form wins over Host",
     B("GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n"), 0, GET,
     "http://example.com:8080/a/b?c=d", HTTP_TARGET_ABSOLUTE, "/a/b?c=d", 1, -1, false, true,
     false, "example.com:8080", {{"Host", "other"}}},
    {"absolute-form, no path", B("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n"), 0, GET, "HTTPS://h",
     HTTP_TARGET_ABSOLUTE, "", 1, -1, false, true, false, "h", {{"Host", "h"}}},
    {"absolute-form, query only", B("GET http://h?q HTTP/1.0\r\n\r\n"), 0, GET, "http://h?q",
     HTTP_TARGET_ABSOLUTE, "?q", 0, -1, false, false, false, "h", {{0}}},
    {"unknown method", B("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n"), 0, HTTP_METHOD_OTHER, "BREW",
     "/pot", ORIGIN, "/pot", 1, -1, false, true, false, "a", {{"Host", "a"}}},
    {"methods are case-sensitive", B("get / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, HTTP_METHOD_OTHER,
     "get", "/", ORIGIN, "/", 1, -1, false, true, false, "a", {{"Host", "a"}}},
    {"TRACE", B("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, HTTP_METHOD_TRACE, "TRACE", "/", ORIGIN,
     "/", 1, -1, false, true, false, "a", {{"Host", "a"}}},
    {"PATCH", B("PATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0, HTTP_METHOD_PATCH,
     "PATCH", "/p", ORIGIN, "/p", 1, 0, false, true, false, "a",
     {{"Host", "a"}, {"Content-Length", "0"}}},
    {"target with every kind of byte", B("GET /a%20b/~x;p?q=[1]&r={2}|\"<> HTTP/1.1\r\nHost: a\r\n\r\n"),
     0, GET, "/a%20b/~x;p?q=[1]&r={2}|\"<>", ORIGIN, "/a%20b/~x;p?q=[1]&r={2}|\"<>", 1, -1, false,
     true, false, "a", {{"Host", "a"}}},
    {"empty Host", B("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0, GET, "/", ORIGIN, "/", 1, -1, false,
     true, false, "", {{"Host", ""}}},
    {"Host with port, IPv6", B("GET / HTTP/1.1\r\nHoSt: [::1]:8000\r\n\r\n"), 0, GET, "/", ORIGIN,
     "/", 1, -1, false, true, false, "[::1]:8000", {{"HoSt", "[::1]:8000"}}},
    {"Host with sub-delims", B("GET / HTTP/1.1\r\nHost: a-b.c_d~e!$&'()*+,;=%41:\r\n\r\n"), 0, GET,
     "/", ORIGIN, "/", 1, -1, false, true, false, "a-b.c_d~e!$&'()*+,;=%41:",
     {{"Host", "a-b.c_d~e!$&'()*+,;=%41:"}}},
    {"pipelined: first of two",
     B("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"), 28, GET, "/1",
     ORIGIN, "/1", 1, -1, false, true, false, "a", {{"Host", "a"}}},
};

/* A request that must be refused with status. */
struct bad {
    const char *name;
    struct bytes raw;
    int status;
};

#define H11 "GET / HTTP/1.1\r\nHost: a\r\n"
#define P11 "POST / HTTP/1.1\r\nHost: a\r\n"

static const struct bad bads[] = {
    /* Framing: the heart of request smuggling. */
    {"CL and TE", B(P11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"TE and CL", B(P11 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"), 400},
    {"CL differ", B(P11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400},
    {"CL differ in a list", B(P11 "Content-Length: 5, 6\r\n\r\n"), 400},
    {"CL empty", B(P11 "Content-Length:\r\n\r\n"), 400},
    {"CL blank", B(P11 "Content-Length:   \r\n\r\n"), 400},
    {"CL empty element", B(P11 "Content-Length: 5,\r\n\r\n"), 400},
    {"CL empty element first", B(P11 "Content-Length: ,5\r\n\r\n"), 400},
    {"CL plus", B(P11 "Content-Length: +5\r\n\r\n"), 400},
    {"CL minus", B(P11 "Content-Length: -1\r\n\r\n"), 400},
    {"CL space inside", B(P11 "Content-Length: 1 2\r\n\r\n"), 400},
    {"CL letter", B(P11 "Content-Length: 5a\r\n\r\n"), 400},
    {"CL hex", B(P11 "Content-Length: 0x5\r\n\r\n"), 400},
    {"CL 2^63", B(P11 "Content-Length: 9223372036854775808\r\n\r\n"), 400},
    {"CL huge", B(P11 "Content-Length: 123456789012345678901234567890\r\n\r\n"), 400},
    {"TE not chunked", B(P11 "Transfer-Encoding: gzip\r\n\r\n"), 400},
    {"TE identity", B(P11 "Transfer-Encoding: identity\r\n\r\n"), 400},
    {"TE chunked not last", B(P11 "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400},
    {"TE chunked not last, two fields",
     B(P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), 400},
    {"TE other coding", B(P11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501},
    {"TE other coding, two fields",
     B(P11 "Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n"), 501},
    {"TE chunked twice", B(P11 "Transfer-Encoding: chunked, chunked\r\n\r\n"), 400},
    {"TE chunked twice, two fields",
     B(P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"TE in HTTP/1.0", B("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"TE empty", B(P11 "Transfer-Encoding:\r\n\r\n"), 400},
    {"TE chunked with parameter", B(P11 "Transfer-Encoding: chunked;q=1\r\n\r\n"), 400},
    {"TE malformed", B(P11 "Transfer-Encoding: chunked x\r\n\r\n"), 400},
    {"TE malformed element", B(P11 "Transfer-Encoding: \"chunked\"\r\n\r\n"), 400},
    {"obs-fold", B(H11 "X-A: a\r\n b\r\n\r\n"), 400},
    {"obs-fold with tab", B(H11 "X-A: a\r\n\tb\r\n\r\n"), 400},
    {"whitespace before the first field", B("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400},
    {"space before colon", B("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400},
    {"tab before colon", B(H11 "Content-Length\t: 5\r\n\r\n"), 400},
    {"empty field name", B(H11 ": a\r\n\r\n"), 400},
    {"field line without colon", B(H11 "X-A\r\n\r\n"), 400},
    {"bad char in field name", B(H11 "X(A): a\r\n\r\n"), 400},
    {"space in field name", B(H11 "X A: a\r\n\r\n"), 400},
    {"obs-text in field name", B(H11 "X\xc3\xa9: a\r\n\r\n"), 400},
    {"NUL in field name", B(H11 "X\0A: a\r\n\r\n"), 400},
    {"CR in a value", B(H11 "X-A: a\rb\r\n\r\n"), 400},
    {"CR at the end of a value", B(H11 "X-A: a\r\r\n\r\n"), 400},
    {"NUL in a value", B(H11 "X-A: a\0b\r\n\r\n"), 400},
    {"CTL 0x01 in a value", B(H11 "X-A: a\x01\r\n\r\n"), 400},
    {"CTL 0x1f in a value", B(H11 "X-A: \x1f\r\n\r\n"), 400},
    {"DEL in a value", B(H11 "X-A: a\x7f\r\n\r\n"), 400},
    {"VT in a value", B(H11 "X-A: a\vb\r\n\r\n"), 400},
    {"bare LF everywhere", B("GET / HTTP/1.1\nHost: a\n\n"), 400},
    {"bare LF ending a field", B("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400},
    {"bare LF ending the head", B("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400},
    {"bare LF as the empty line", B("GET / HTTP/1.1\r\n\n"), 400},
    {"bare LF in a value", B(H11 "X-A: a\nb\r\n\r\n"), 400},
    {"bare CR ending the request line", B("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400},
    {"bare CR ending a field", B(H11 "X-A: a\rX-B: b\r\n\r\n"), 400},
    {"bare CR as the empty line", B(H11 "\rX"), 400},
    {"bare CR before the request line", B("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"bare LF before the request line", B("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"three empty lines first", B("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    /* Host. */
    {"1.1 without Host", B("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400},
    {"1.1 without anything", B("GET / HTTP/1.1\r\n\r\n"), 400},
    {"two Hosts", B(H11 "host: a\r\n\r\n"), 400},
    {"two Hosts in 1.0", B("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400},
    {"Host with a space", B("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400},
    {"Host with userinfo", B("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400},
    {"Host with a path", B("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400},
    {"Host with a bad port", B("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400},
    {"Host with only a port", B("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), 400},
    {"Host with an open bracket", B("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400},
    {"Host with obs-text", B("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n"), 400},
    /* Request line. */
    {"two spaces after method", B("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"two spaces after target", B("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"space at the end", B("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400},
    {"space at the start", B(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"tab as separator", B("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"no version", B("GET /\r\nHost: a\r\n\r\n"), 400},
    {"empty line", B("\r\n\r\n\r\n"), 400},
    {"bad char in method", B("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"obs-text in method", B("G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"TLS handshake", B("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400},
    {"CTL in target", B("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"DEL in target", B("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"obs-text in target", B("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"NUL in target", B("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"relative target", B("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"asterisk with GET", B("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"authority-form with GET", B("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"CONNECT with a path", B("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"CONNECT without port", B("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"CONNECT with empty port", B("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"absolute-form without host", B("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"absolute-form, scheme only", B("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"absolute-form with userinfo", B("GET http://u@h/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"other scheme", B("GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"lowercase version", B("GET / http/1.1\r\nHost: a\r\n\r\n"), 400},
    {"version without minor", B("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400},
    {"version with two digits", B("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400},
    {"version 11", B("GET / HTTP/11\r\nHost: a\r\n\r\n"), 400},
    {"version letters", B("GET / HTTP/x.y\r\nHost: a\r\n\r\n"), 400},
    {"HTTP/2.0", B("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505},
    {"HTTP/0.9", B("GET / HTTP/0.9\r\n\r\n"), 505},
    {"HTTP/3.0", B("GET / HTTP/3.0\r\n"), 505},
    {"HTTP/2 preface", B("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505},
};

#define NGOOD (sizeof(goods) / sizeof(goods[0]))
#define NBAD (sizeof(bads) / sizeof(bads[0]))
#define CAP 120

static size_t consumed_of(const struct good *g)
{
    return g->raw.n - g->tail;
}

/* s[0..n) is exactly want, as a NUL-terminated string. */
static void expect_span(const char *what, const char *name, const char *s, size_t n,
                        const char *want)
{
    cr_assert(s != NULL || n == 0, "%s: %s is NULL", name, what);
    cr_assert(n == strlen(want) && memcmp(s, want, n) == 0, "%s: %s is \"%.*s\", want \"%s\"",
              name, what, (int)n, s ? s : "", want);
}

/* Every field of a complete parse of buf against the table entry. */
static void expect_good(const struct good *g, const char *buf, int rc,
                        const struct http_request *r)
{
    cr_assert(rc == (int)consumed_of(g), "%s: returned %d (status %d, %s), want %zu", g->name, rc,
              r->status, r->error ? r->error : "", consumed_of(g));
    cr_assert(r->status == 0 && r->error == NULL, "%s: status %d", g->name, r->status);
    cr_assert(r->method == g->method, "%s: method %d", g->name, r->method);
    cr_assert(r->method_name >= buf && r->target >= buf, "%s: not zero-copy", g->name);
    expect_span("method", g->name, r->method_name, r->method_len, g->method_name);
    expect_span("target", g->name, r->target, r->target_len, g->target);
    cr_assert(r->target_form == g->form, "%s: form %d", g->name, r->target_form);
    expect_span("path", g->name, r->path, r->path_len, g->path);
    cr_assert(r->version_minor == g->minor, "%s: minor %d", g->name, r->version_minor);
    cr_assert(r->content_length == g->cl, "%s: content_length %lld", g->name,
              (long long)r->content_length);
    cr_assert(r->chunked == g->chunked, "%s: chunked", g->name);
    cr_assert(r->keep_alive == g->keep_alive, "%s: keep_alive", g->name);
    cr_assert(r->expect_continue == g->expect, "%s: expect_continue", g->name);
    expect_span("host", g->name, r->host, r->host_len, g->host);
    size_t nf = 0;
    while (nf < MAXF && g->fields[nf][0])
        nf++;
    cr_assert(r->nheaders == nf, "%s: %zu headers, want %zu", g->name, r->nheaders, nf);
    for (size_t i = 0; i < nf; i++) {
        expect_span("field name", g->name, r->headers[i].name, r->headers[i].name_len,
                    g->fields[i][0]);
        expect_span("field value", g->name, r->headers[i].value, r->headers[i].value_len,
                    g->fields[i][1]);
    }
}

static int parse(const char *buf, size_t len, const struct http_limits *lim, struct http_request *r,
                 struct http_header *h, size_t cap, struct http_scan *scan)
{
    return http_parse_request(buf, len, lim, r, h, cap, scan);
}

Test(http_parse, limits_default, .timeout = 10)
{
    struct http_limits lim;
    http_limits_default(&lim);
    cr_assert(lim.max_head == 16384 && lim.max_target == 8192 && lim.max_headers == 100);
}

Test(http_parse, good_requests, .timeout = 10)
{
    struct http_header h[CAP];
    struct http_request r;

    for (size_t i = 0; i < NGOOD; i++) {
        const struct good *g = &goods[i];
        int rc = parse(g->raw.p, g->raw.n, NULL, &r, h, CAP, NULL);
        expect_good(g, g->raw.p, rc, &r);
        cr_assert(r.headers == h, "%s: headers array", g->name);
    }
}

Test(http_parse, bad_requests, .timeout = 10)
{
    struct http_header h[CAP];
    struct http_request r;

    for (size_t i = 0; i < NBAD; i++) {
        const struct bad *b = &bads[i];
        int rc = parse(b->raw.p, b->raw.n, NULL, &r, h, CAP, NULL);
        cr_assert(rc == HTTP_PARSE_INVALID, "%s: returned %d, want INVALID", b->name, rc);
        cr_assert(r.status == b->status, "%s: status %d (%s), want %d", b->name, r.status,
                  r.error ? r.error : "", b->status);
        cr_assert(r.error != NULL && r.error[0] != '\0', "%s: no reason", b->name);
        cr_assert(!r.keep_alive, "%s: keep_alive after an error", b->name);
    }
}

/* Fed one byte at a time, with and without the scan state: INCOMPLETE until
 * the last byte of the head, then the same as when parsed whole. */
Test(http_parse, good_byte_by_byte, .timeout = 10)
{
    struct http_header h[CAP];
    struct http_request r;

    for (size_t i = 0; i < NGOOD; i++) {
        const struct good *g = &goods[i];
        size_t end = consumed_of(g);
        struct http_scan scan = HTTP_SCAN_INIT;
        for (size_t k = 0; k < end; k++) {
            int rc = parse(g->raw.p, k, NULL, &r, h, CAP, &scan);
            cr_assert(rc == HTTP_PARSE_INCOMPLETE, "%s: %d at %zu bytes (scan)", g->name, rc, k);
            rc = parse(g->raw.p, k, NULL, &r, h, CAP, NULL);
            cr_assert(rc == HTTP_PARSE_INCOMPLETE, "%s: %d at %zu bytes", g->name, rc, k);
        }
        expect_good(g, g->raw.p, parse(g->raw.p, end, NULL, &r, h, CAP, &scan), &r);
        cr_assert(scan.pos == 0 && scan.phase == 0, "%s: scan not reset", g->name);
        /* Everything after the head is not looked at: same with all of it. */
        expect_good(g, g->raw.p, parse(g->raw.p, g->raw.n, NULL, &r, h, CAP, NULL), &r);
    }
}

/* The first verdict reached byte by byte is the verdict on the whole. */
Test(http_parse, bad_byte_by_byte, .timeout = 10)
{
    struct http_header h[CAP];
    struct http_request r;

    for (size_t i = 0; i < NBAD; i++) {
        const struct bad *b = &bads[i];
        struct http_scan scan = HTTP_SCAN_INIT;
        int rc = HTTP_PARSE_INCOMPLETE;
        size_t k;
        for (k = 0; k <= b->raw.n && rc == HTTP_PARSE_INCOMPLETE; k++)
            rc = parse(b->raw.p, k, NULL, &r, h, CAP, &scan);
        cr_assert(rc == HTTP_PARSE_INVALID && r.status == b->status,
                  "%s: %d status %d at %zu bytes, want %d", b->name, rc, r.status, k - 1,
                  b->status);
        rc = parse(b->raw.p, k - 1, NULL, &r, h, CAP, NULL);
        cr_assert(rc == HTTP_PARSE_INVALID && r.status == b->status, "%s: without scan", b->name);
    }
}

Test(http_parse, pipelined, .timeout = 10)
{
    static const char two[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /2 HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"
                              "\r\nGET /3 HTTP/1.1\r\nHost: b\r\n\r\nGET";
    struct http_header h[CAP];
    struct http_request r;
    struct http_scan scan = HTTP_SCAN_INIT;
    size_t off = 0, len = sizeof(two) - 1;

    int rc = parse(two, len, NULL, &r, h, CAP, &scan);
    cr_assert_eq(rc, 28);
    expect_span("target", "first", r.target, r.target_len, "/1");
    off += (size_t)rc;
    rc = parse(two + off, len - off, NULL, &r, h, CAP, &scan);
    cr_assert_eq(rc, 39);
    cr_assert_eq(r.content_length, 3);
    expect_span("target", "second", r.target, r.target_len, "/2");
    off += (size_t)rc + 3; /* the body */
    rc = parse(two + off, len - off, NULL, &r, h, CAP, &scan);
    cr_assert_eq(rc, 30, "an empty line before the third request is skipped");
    expect_span("target", "third", r.target, r.target_len, "/3");
    expect_span("host", "third", r.host, r.host_len, "b");
    off += (size_t)rc;
    cr_assert_eq(parse(two + off, len - off, NULL, &r, h, CAP, &scan), HTTP_PARSE_INCOMPLETE);
    cr_assert_eq(len - off, 3);
}

/* A scan state that cannot belong to the buffer is dropped, not trusted. */
Test(http_parse, foreign_scan_state, .timeout = 10)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct http_header h[CAP];
    struct http_request r;
    struct http_scan bad[] = {
        {1000, 0, 0, 0}, {3, 0, 0, 3}, {20, 1, 2, 1}, {20, 5, 6, 2}, {5, 0, 0, 99}, {30, 4, 6, 3},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(req, sizeof(req) - 1, NULL, &r, h, CAP, &bad[i]);
        cr_assert(rc == (int)sizeof(req) - 1 || rc == HTTP_PARSE_INCOMPLETE ||
                      rc == HTTP_PARSE_INVALID,
                  "state %zu: %d", i, rc);
    }
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

/* "GET /xxx...x HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n" in a malloc'd
 * buffer, the target being tlen bytes and the head padded to head bytes
 * with one X-Pad field (head 0: no padding). */
static char *make_request(size_t tlen, size_t nfields, size_t head, size_t *len)
{
    size_t cap = tlen + nfields * 16 + head + 256, n = 0;
    char *b = malloc(cap);
    cr_assert(b);
    n += (size_t)sprintf(b + n, "GET /");
    memset(b + n, 'x', tlen - 1);
    n += tlen - 1;
    n += (size_t)sprintf(b + n, " HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 1; i < nfields; i++)
        n += (size_t)sprintf(b + n, "X-F%zu: %zu\r\n", i, i);
    if (head) {
        size_t base = n + strlen("X-Pad: \r\n\r\n");
        cr_assert(head >= base, "head %zu too small for %zu", head, base);
        n += (size_t)sprintf(b + n, "X-Pad: ");
        memset(b + n, 'p', head - base);
        n += head - base;
        n += (size_t)sprintf(b + n, "\r\n");
    }
    n += (size_t)sprintf(b + n, "\r\n");
    *len = n;
    return b;
}

static int parse_made(size_t tlen, size_t nfields, size_t head, const struct http_limits *lim,
                      size_t cap, struct http_request *r, size_t *len)
{
    static struct http_header h[256];
    char *b = make_request(tlen, nfields, head, len);
    int rc = parse(b, *len, lim, r, h, cap, NULL);
    free(b);
    return rc;
}

Test(http_parse, target_limit, .timeout = 10)
{
    struct http_limits lim;
    struct http_request r;
    size_t len;

    http_limits_default(&lim);
    cr_assert_eq(parse_made(8192, 1, 0, &lim, 100, &r, &len), (int)len);
    cr_assert_eq(r.target_len, 8192);
    cr_assert_eq(parse_made(8193, 1, 0, &lim, 100, &r, &len), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 414);
    lim.max_target = 16;
    cr_assert_eq(parse_made(16, 1, 0, &lim, 100, &r, &len), (int)len);
    cr_assert_eq(parse_made(17, 1, 0, &lim, 100, &r, &len), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 414);
}

/* 414 shows as soon as the target passes the limit, head complete or not. */
Test(http_parse, target_limit_early, .timeout = 10)
{
    static const char t[] = "GET /0123456789abcdef";
    struct http_limits lim = {16384, 16, 100};
    struct http_header h[4];
    struct http_request r;

    cr_assert_eq(parse(t, 4 + 16, &lim, &r, h, 4, NULL), HTTP_PARSE_INCOMPLETE);
    cr_assert_eq(parse(t, 4 + 17, &lim, &r, h, 4, NULL), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 414);
}

Test(http_parse, head_limit, .timeout = 10)
{
    struct http_limits lim;
    struct http_request r;
    size_t len;

    http_limits_default(&lim);
    cr_assert_eq(parse_made(10, 1, 16384, &lim, 100, &r, &len), 16384);
    cr_assert_eq(len, 16384);
    cr_assert_eq(parse_made(10, 1, 16385, &lim, 100, &r, &len), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 431);
    lim.max_head = 100;
    cr_assert_eq(parse_made(10, 1, 100, &lim, 100, &r, &len), 100);
    cr_assert_eq(parse_made(10, 1, 101, &lim, 100, &r, &len), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 431);
}

/* Without a complete head, max_head bytes are enough to say 431, one less
 * is not; bytes after a head of max_head bytes do not count. */
Test(http_parse, head_limit_incomplete, .timeout = 10)
{
    struct http_limits lim = {100, 8192, 100};
    struct http_header h[4];
    struct http_request r;
    size_t len;
    char *b = make_request(10, 1, 150, &len);

    cr_assert_eq(parse(b, 99, &lim, &r, h, 4, NULL), HTTP_PARSE_INCOMPLETE);
    cr_assert_eq(parse(b, 100, &lim, &r, h, 4, NULL), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 431);
    cr_assert_eq(parse(b, len, &lim, &r, h, 4, NULL), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 431);
    free(b);
    b = make_request(10, 1, 100, &len);
    char *more = malloc(len + 50);
    memcpy(more, b, len);
    memset(more + len, 'G', 50);
    cr_assert_eq(parse(more, len + 50, &lim, &r, h, 4, NULL), 100);
    free(more);
    free(b);
}

Test(http_parse, field_count_limit, .timeout = 10)
{
    struct http_limits lim;
    struct http_request r;
    size_t len;

    http_limits_default(&lim);
    cr_assert_eq(parse_made(1, 100, 0, &lim, 256, &r, &len), (int)len);
    cr_assert_eq(r.nheaders, 100);
    cr_assert_eq(parse_made(1, 101, 0, &lim, 256, &r, &len), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 431);
    /* The caller's array is a limit too. */
    cr_assert_eq(parse_made(1, 5, 0, &lim, 5, &r, &len), (int)len);
    cr_assert_eq(r.nheaders, 5);
    cr_assert_eq(parse_made(1, 6, 0, &lim, 5, &r, &len), HTTP_PARSE_INVALID);
    cr_assert_eq(r.status, 431);
}

/* ------------------------------------------------------------------------ */
/* Guard page: the parser never reads past len                              */
/* ------------------------------------------------------------------------ */

/* Memory whose end touches a PROT_NONE page: a read past it faults. */
struct guarded {
    char *base;
    size_t size; /* readable bytes before the guard */
};

static struct guarded guard_map(size_t need)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct guarded g = {NULL, (need + page - 1) / page * page + page};
    void *m = mmap(NULL, g.size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    cr_assert(mprotect((char *)m + g.size, page, PROT_NONE) == 0);
    g.base = m;
    return g;
}

static void guard_unmap(struct guarded *g)
{
    munmap(g->base, g->size + (size_t)sysconf(_SC_PAGESIZE));
}

/* Every prefix of in[0..n), each placed to end at the guard: once with a
 * scan state carried along (the bytes move each time, which it allows),
 * and, for short inputs, once from scratch. Returns the last verdict. */
static int guard_prefixes(struct guarded *g, const char *in, size_t n,
                          const struct http_limits *lim, size_t cap)
{
    static struct http_header h[256];
    struct http_request r;
    struct http_scan scan = HTTP_SCAN_INIT;
    int rc = HTTP_PARSE_INCOMPLETE, fresh;

    cr_assert(n <= g->size);
    for (size_t k = 0; k <= n; k++) {
        char *at = g->base + g->size - k;
        memcpy(at, in, k);
        rc = parse(at, k, lim, &r, h, cap, &scan);
        if (n <= 4096 || k == n) {
            fresh = parse(at, k, lim, &r, h, cap, NULL);
            cr_assert_eq(rc, fresh, "prefix %zu of %zu: %d with scan, %d without", k, n, rc, fresh);
        }
    }
    return rc;
}

Test(http_parse, guard_page_tables, .timeout = 10)
{
    struct guarded g = guard_map(4096);

    for (size_t i = 0; i < NGOOD; i++)
        cr_assert_eq(guard_prefixes(&g, goods[i].raw.p, goods[i].raw.n, NULL, CAP),
                     (int)consumed_of(&goods[i]), "%s", goods[i].name);
    for (size_t i = 0; i < NBAD; i++)
        guard_prefixes(&g, bads[i].raw.p, bads[i].raw.n, NULL, CAP);
    guard_unmap(&g);
}

Test(http_parse, guard_page_limits, .timeout = 10)
{
    struct {
        size_t tlen, nfields, head, max_head, max_target, cap;
    } cases[] = {
        {8192, 1, 0, 16384, 8192, 100},  {8193, 1, 0, 16384, 8192, 100},
        {10, 1, 16384, 16384, 8192, 100}, {10, 1, 16385, 16384, 8192, 100},
        {16, 1, 0, 100, 16, 100},         {17, 1, 0, 100, 16, 100},
        {10, 1, 100, 100, 16, 100},       {10, 1, 101, 100, 16, 100},
        {1, 100, 0, 16384, 8192, 256},    {1, 101, 0, 16384, 8192, 256},
        {1, 5, 0, 16384, 8192, 5},        {1, 6, 0, 16384, 8192, 5},
    };
    struct guarded g = guard_map(16384 + 1024);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_limits lim = {cases[i].max_head, cases[i].max_target, 100};
        size_t len;
        char *b = make_request(cases[i].tlen, cases[i].nfields, cases[i].head, &len);
        guard_prefixes(&g, b, len, &lim, cases[i].cap);
        free(b);
    }
    guard_unmap(&g);
}

/* A copy made by http_request_dup holds the same head after the buffer it
 * came from is overwritten and freed. */
Test(http_parse, dup_outlives_its_buffer, .timeout = 10)
{
    static const char raw[] = "POST http://ex.org:81/a/b?c=d HTTP/1.1\r\nHost: ignored\r\n"
                              "X-One: 1\r\nContent-Length: 3\r\n\r\nabc";
    char *buf = strdup(raw);
    struct http_header hdrs[MAXF];
    struct http_request q;
    cr_assert_gt(http_parse_request(buf, strlen(buf), NULL, &q, hdrs, MAXF, NULL), 0);
    struct http_request *c = http_request_dup(&q);
    cr_assert_not_null(c);
    memset(buf, 'Z', strlen(buf));
    free(buf);
    cr_assert_eq(c->method, HTTP_METHOD_POST);
    cr_assert_eq(c->method_len, 4);
    cr_assert(memcmp(c->method_name, "POST", 4) == 0);
    cr_assert_eq(c->target_len, strlen("http://ex.org:81/a/b?c=d"));
    cr_assert(memcmp(c->target, "http://ex.org:81/a/b?c=d", c->target_len) == 0);
    cr_assert(c->path_len == 8 && memcmp(c->path, "/a/b?c=d", 8) == 0);
    cr_assert(c->host_len == 9 && memcmp(c->host, "ex.org:81", 9) == 0);
    cr_assert_eq(c->nheaders, 3);
    cr_assert(c->headers[1].name_len == 5 && memcmp(c->headers[1].name, "X-One", 5) == 0);
    cr_assert(c->headers[1].value_len == 1 && c->headers[1].value[0] == '1');
    cr_assert_eq(c->content_length, 3);
    free(c);
}
