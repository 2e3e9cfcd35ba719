/* parse.c — the HTTP/1.x request-head parser: resumable scan for the head's end, then one pass over it. */
#include "parse.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/*
 * How a call spends its time. The request line is scanned byte by byte by a
 * small resumable state machine (struct http_scan), which validates it as it
 * goes: garbage, an overlong target or an HTTP/2 preface is refused before
 * the rest of the head arrives. After the request line, memchr() looks for
 * the empty line that ends the head, resuming where the last call stopped.
 * Only when the head is complete are the field lines parsed, once, in one
 * pass, which keeps this part free of state that would have to survive
 * between calls. Every byte is classified through one 256-entry table.
 */

enum { PH_METHOD, PH_TARGET, PH_VERSION, PH_FIELDS };

/* Character classes, one bit each. */
enum {
    C_TCHAR = 1, /* token character, RFC 9110 5.6.2: methods, field names */
    C_VCHAR = 2, /* visible ASCII 0x21-0x7E: the request target */
    C_FIELD = 4, /* field value: HTAB, SP, VCHAR, obs-text 0x80-0xFF */
    C_HOST = 8,  /* reg-name: unreserved, sub-delims, '%' (RFC 3986 3.2.2) */
    C_DIGIT = 16,
};

static const unsigned char cls[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    4,  15, 6,  7,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 6,  14, 6,  14, 6,  6,  /* 0x30 */
    6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  6,  6,  7,  15, /* 0x50 */
    7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x80 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x90 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xA0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xB0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xC0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xD0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xE0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xF0 */
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))
#define OWS(c) ((c) == ' ' || (c) == '\t')

/* Facts gathered across field lines, checked together once all are seen. */
struct facts {
    unsigned hosts;
    bool te;           /* a Transfer-Encoding field was present */
    bool te_chunked;   /* chunked appeared in it */
    bool te_last_chk;  /* the last coding seen was chunked */
    bool te_other;     /* some coding other than chunked appeared */
    bool conn_close;   /* Connection: close */
    bool conn_keep;    /* Connection: keep-alive */
};

void http_limits_default(struct http_limits *lim)
{
    lim->max_head = 16384;
    lim->max_target = 8192;
    lim->max_headers = 100;
}

static int fail(struct http_request *req, int status, const char *why)
{
    req->status = status;
    req->error = why;
    req->keep_alive = false;
    return HTTP_PARSE_INVALID;
}

/* Case-insensitive comparison with a lowercase literal of length n. */
static bool ieq(const char *s, size_t n, const char *lit, size_t litlen)
{
    if (n != litlen)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)lit[i])
            return false;
    }
    return true;
}
#define IEQ(s, n, lit) ieq((s), (n), lit, sizeof(lit) - 1)

/* ------------------------------------------------------------------------ */
/* The request line, resumable                                              */
/* ------------------------------------------------------------------------ */

/* Skip up to two empty lines before the request line (RFC 9112 2.2 asks a
 * server to ignore at least one). They are rescanned on each call: four
 * bytes at most. */
static int skip_empty_lines(const char *buf, size_t n, size_t *lead, struct http_request *req)
{
    size_t i = 0;

    while (i < 4 && i < n && buf[i] == '\r') {
        if (i + 1 == n)
            return HTTP_PARSE_INCOMPLETE;
        if (buf[i + 1] != '\n')
            return fail(req, 400, "bare CR before the request line");
        i += 2;
    }
    if (i < n && buf[i] == '\n')
        return fail(req, 400, "bare LF before the request line");
    *lead = i;
    return 0;
}

static int scan_method(const char *buf, size_t n, size_t lead, struct http_scan *s,
                       struct http_request *req)
{
    size_t i = s->pos > lead ? s->pos : lead;

    while (i < n && IS(buf[i], C_TCHAR))
        i++;
    s->pos = i;
    if (i == n)
        return HTTP_PARSE_INCOMPLETE;
    if (buf[i] != ' ') {
        if (i == lead && (buf[i] == '\r' || buf[i] == '\n'))
            return fail(req, 400, "too many empty lines before the request line");
        return fail(req, 400, "invalid character in method");
    }
    if (i == lead)
        return fail(req, 400, "empty method");
    s->target = s->pos = i + 1;
    s->phase = PH_TARGET;
    return 0;
}

/* The target ends at the next SP. 414 as soon as it has more than
 * max_target bytes, without waiting for the rest of the line. */
static int scan_target(const char *buf, size_t n, size_t max_target, struct http_scan *s,
                       struct http_request *req)
{
    size_t stop = max_target < n - s->target ? s->target + max_target + 1 : n;
    size_t i = s->pos;

    while (i < stop && IS(buf[i], C_VCHAR))
        i++;
    s->pos = i;
    if (i - s->target > max_target)
        return fail(req, 414, "request target too long");
    if (i == n)
        return HTTP_PARSE_INCOMPLETE;
    if (buf[i] != ' ')
        return fail(req, 400, "invalid character in request target");
    if (i == s->target)
        return fail(req, 400, "empty request target");
    s->version = s->pos = i + 1;
    s->phase = PH_VERSION;
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT CRLF, exactly: ten bytes, rechecked from their
 * start on each call since that is cheaper than remembering how far. */
static int scan_version(const char *buf, size_t n, struct http_scan *s, struct http_request *req)
{
    static const char pattern[] = "HTTP/#.#\r\n";
    size_t have = n - s->version < 10 ? n - s->version : 10;

    for (size_t j = 0; j < have; j++) {
        char c = buf[s->version + j];
        if (pattern[j] == '#' ? IS(c, C_DIGIT) : c == pattern[j])
            continue;
        if (j < 8)
            return fail(req, 400, "malformed HTTP version");
        if (j == 8)
            return fail(req, 400, "request line does not end with CRLF");
        return fail(req, 400, "bare CR at the end of the request line");
    }
    if (have < 10)
        return HTTP_PARSE_INCOMPLETE;
    s->pos = s->version + 10;
    s->phase = PH_FIELDS;
    return 0;
}

/* Run the request-line phases that remain; 0 once in the field lines. */
static int scan_request_line(const char *buf, size_t n, size_t lead, size_t max_target,
                             struct http_scan *s, struct http_request *req)
{
    int rc = 0;

    if (s->phase == PH_METHOD)
        rc = scan_method(buf, n, lead, s, req);
    if (rc == 0 && s->phase == PH_TARGET)
        rc = scan_target(buf, n, max_target, s, req);
    if (rc == 0 && s->phase == PH_VERSION)
        rc = scan_version(buf, n, s, req);
    return rc;
}

/* A CR in buf[from..stop) that is followed by something other than LF.
 * A CR in the last byte of buf[0..n) is judged once its next byte comes. */
static bool has_bare_cr(const char *buf, size_t from, size_t stop, size_t n)
{
    const char *cr;

    while (from < stop && (cr = memchr(buf + from, '\r', stop - from))) {
        size_t j = (size_t)(cr - buf);
        if (j + 1 < n && buf[j + 1] != '\n')
            return true;
        from = j + 1;
    }
    return false;
}

/* Look for the empty line that ends the head, from where the last call
 * stopped. Each LF must follow a CR and each CR precede an LF: line ends
 * other than CRLF are refused here, at once, so that a client using them
 * gets its 400 without a wait. Two memchr() passes over the new bytes cost
 * less than one loop that looks at each byte. Returns the size of the
 * head. The checks run in the same order however the bytes were cut into
 * calls, so the verdict does not depend on how they arrived. */
static int find_head_end(const char *buf, size_t n, struct http_scan *s, struct http_request *req)
{
    size_t i = s->pos, stop = n;
    int end = HTTP_PARSE_INCOMPLETE;
    const char *lf;

    while (i < n && (lf = memchr(buf + i, '\n', n - i))) {
        i = (size_t)(lf - buf);
        /* i >= 14 here: the request line and its CRLF come first. */
        if (buf[i - 1] != '\r')
            return fail(req, 400, "bare LF in the header section");
        if (buf[i - 2] == '\n') {
            stop = i + 1;
            end = (int)stop;
            break;
        }
        i++;
    }
    if (has_bare_cr(buf, s->pos, stop, n))
        return fail(req, 400, "bare CR in the header section");
    if (end == HTTP_PARSE_INCOMPLETE)
        s->pos = n > s->pos && buf[n - 1] == '\r' ? n - 1 : n;
    return end;
}

/* ------------------------------------------------------------------------ */
/* The request line's meaning                                               */
/* ------------------------------------------------------------------------ */

static enum http_method method_of(const char *m, size_t n)
{
    static const struct {
        const char *name;
        size_t len;
        enum http_method method;
    } known[] = {
        {"GET", 3, HTTP_METHOD_GET},         {"HEAD", 4, HTTP_METHOD_HEAD},
        {"POST", 4, HTTP_METHOD_POST},       {"PUT", 3, HTTP_METHOD_PUT},
        {"DELETE", 6, HTTP_METHOD_DELETE},   {"CONNECT", 7, HTTP_METHOD_CONNECT},
        {"OPTIONS", 7, HTTP_METHOD_OPTIONS}, {"TRACE", 5, HTTP_METHOD_TRACE},
        {"PATCH", 5, HTTP_METHOD_PATCH},
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (n == known[i].len && memcmp(m, known[i].name, n) == 0)
            return known[i].method;
    return HTTP_METHOD_OTHER;
}

/* host [ ":" port ], host being a non-empty reg-name, IPv4 address or
 * bracketed IP literal. Userinfo ("user@") is refused (RFC 9110 4.2.4). */
static bool valid_authority(const char *s, size_t n, bool need_port)
{
    size_t i = 0;

    if (n > 0 && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!IS(s[i], C_HOST) && s[i] != ':')
                return false;
        if (i == n || i == 1)
            return false;
        i++;
    } else {
        while (i < n && IS(s[i], C_HOST))
            i++;
        if (i == 0)
            return false;
    }
    if (i == n)
        return !need_port;
    if (s[i] != ':' || (need_port && i + 1 == n))
        return false;
    for (i++; i < n; i++)
        if (!IS(s[i], C_DIGIT))
            return false;
    return true;
}

/* "http://" or "https://" authority [ path-abempty ] [ "?" query ]. */
static int absolute_form(struct http_request *req)
{
    const char *t = req->target;
    size_t n = req->target_len, skip, end;

    if (n > 7 && IEQ(t, 7, "http://"))
        skip = 7;
    else if (n > 8 && IEQ(t, 8, "https://"))
        skip = 8;
    else
        return fail(req, 400, "request target is in no known form");
    for (end = skip; end < n && t[end] != '/' && t[end] != '?'; end++)
        ;
    if (!valid_authority(t + skip, end - skip, false))
        return fail(req, 400, "invalid authority in absolute-form target");
    req->target_form = HTTP_TARGET_ABSOLUTE;
    req->host = t + skip;
    req->host_len = end - skip;
    req->path = t + end;
    req->path_len = n - end;
    return 0;
}

/* Which of the four forms the target has, and whether the method allows it. */
static int target_form(struct http_request *req)
{
    const char *t = req->target;
    size_t n = req->target_len;

    if (req->method == HTTP_METHOD_CONNECT) {
        if (!valid_authority(t, n, true))
            return fail(req, 400, "CONNECT needs an authority-form target");
        req->target_form = HTTP_TARGET_AUTHORITY;
        return 0;
    }
    if (t[0] == '/') {
        req->target_form = HTTP_TARGET_ORIGIN;
        req->path = t;
        req->path_len = n;
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (req->method != HTTP_METHOD_OPTIONS)
            return fail(req, 400, "asterisk-form target without OPTIONS");
        req->target_form = HTTP_TARGET_ASTERISK;
        return 0;
    }
    return absolute_form(req);
}

/* Fill in and judge the request line, once it is complete. The major
 * version comes first: "PRI * HTTP/2.0" deserves 505 more than 400. */
static int request_line(const char *buf, size_t lead, const struct http_scan *s,
                        struct http_request *req)
{
    const char *v = buf + s->version;

    req->method_name = buf + lead;
    req->method_len = s->target - 1 - lead;
    req->target = buf + s->target;
    req->target_len = s->version - 1 - s->target;
    if (v[5] != '1')
        return fail(req, 505, "unsupported HTTP major version");
    req->version_minor = v[7] == '0' ? 0 : 1;
    req->method = method_of(req->method_name, req->method_len);
    /* Empty, not NULL, until set: keeps "points into buf" true. */
    req->path = req->host = req->target;
    return target_form(req);
}

/* ------------------------------------------------------------------------ */
/* Field values with a meaning for framing or the connection               */
/* ------------------------------------------------------------------------ */

/* Next element of a comma-separated list (RFC 9110 5.6.1), trimmed of OWS;
 * it may be empty. *i moves past the comma. False when the list is done. */
static bool next_element(const char *s, size_t n, size_t *i, const char **e, size_t *elen)
{
    size_t a = *i, b;

    if (a > n)
        return false;
    for (b = a; b < n && s[b] != ','; b++)
        ;
    *i = b + 1;
    while (a < b && OWS(s[a]))
        a++;
    while (b > a && OWS(s[b - 1]))
        b--;
    *e = s + a;
    *elen = b - a;
    return true;
}

/* Content-Length = 1*DIGIT; repeats of one value, as more fields or as a
 * list ("5, 5"), are folded into one (RFC 9110 8.6). Anything else is 400. */
static int content_length(const char *s, size_t n, struct http_request *req)
{
    size_t i = 0, elen;
    const char *e;

    while (next_element(s, n, &i, &e, &elen)) {
        int64_t v = 0;
        if (elen == 0)
            return fail(req, 400, "empty Content-Length");
        for (size_t k = 0; k < elen; k++) {
            if (!IS(e[k], C_DIGIT))
                return fail(req, 400, "malformed Content-Length");
            if (v > (INT64_MAX - (e[k] - '0')) / 10)
                return fail(req, 400, "Content-Length too large");
            v = v * 10 + (e[k] - '0');
        }
        if (req->content_length >= 0 && req->content_length != v)
            return fail(req, 400, "conflicting Content-Length values");
        req->content_length = v;
    }
    return 0;
}

/* Transfer-Encoding = #( token *( OWS ";" OWS parameter ) ). Fields add up
 * as one list. Only "chunked" is understood, and only once, last. */
static int transfer_encoding(const char *s, size_t n, struct facts *f, struct http_request *req)
{
    size_t i = 0, elen;
    const char *e;

    f->te = true;
    while (next_element(s, n, &i, &e, &elen)) {
        size_t k = 0;
        if (elen == 0)
            continue; /* empty elements are ignored, RFC 9110 5.6.1.2 */
        while (k < elen && IS(e[k], C_TCHAR))
            k++;
        size_t name_len = k;
        while (k < elen && OWS(e[k]))
            k++;
        bool params = k < elen;
        if (name_len == 0 || (params && e[k] != ';'))
            return fail(req, 400, "malformed Transfer-Encoding");
        bool chunked = IEQ(e, name_len, "chunked");
        if (chunked && params)
            return fail(req, 400, "parameters on chunked");
        if (chunked && f->te_chunked)
            return fail(req, 400, "chunked applied twice");
        f->te_chunked |= chunked;
        f->te_other |= !chunked;
        f->te_last_chk = chunked;
    }
    return 0;
}

static void connection(const char *s, size_t n, struct facts *f)
{
    size_t i = 0, elen;
    const char *e;

    while (next_element(s, n, &i, &e, &elen)) {
        if (IEQ(e, elen, "close"))
            f->conn_close = true;
        else if (IEQ(e, elen, "keep-alive"))
            f->conn_keep = true;
    }
}

/* RFC 9112 3.2: more than one Host, or an invalid one, is 400. An empty
 * Host is allowed: it is what a client sends when there is no authority. */
static int host(const struct http_header *h, struct facts *f, struct http_request *req)
{
    if (++f->hosts > 1)
        return fail(req, 400, "more than one Host field");
    if (h->value_len > 0 && !valid_authority(h->value, h->value_len, false))
        return fail(req, 400, "invalid Host field");
    if (req->target_form != HTTP_TARGET_ABSOLUTE) {
        req->host = h->value;
        req->host_len = h->value_len;
    }
    return 0;
}

/* Act on the fields that matter to framing or to the connection. */
static int field_fact(const struct http_header *h, struct facts *f, struct http_request *req)
{
    const char *nm = h->name, *v = h->value;
    size_t nl = h->name_len, vl = h->value_len;

    switch (nl) {
    case 4:
        return IEQ(nm, nl, "host") ? host(h, f, req) : 0;
    case 6:
        if (IEQ(nm, nl, "expect") && IEQ(v, vl, "100-continue"))
            req->expect_continue = req->version_minor == 1; /* RFC 9110 10.1.1 */
        return 0;
    case 10:
        if (IEQ(nm, nl, "connection"))
            connection(v, vl, f);
        return 0;
    case 14:
        return IEQ(nm, nl, "content-length") ? content_length(v, vl, req) : 0;
    case 17:
        return IEQ(nm, nl, "transfer-encoding") ? transfer_encoding(v, vl, f, req) : 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Field lines                                                              */
/* ------------------------------------------------------------------------ */

/* Why a field name stopped at buf[q] instead of at a colon. */
static const char *name_error(const char *buf, size_t q)
{
    if (buf[q] == '\r')
        return "field line without a colon";
    if (OWS(buf[q])) {
        while (OWS(buf[q]))
            q++;
        if (buf[q] == ':')
            return "whitespace between field name and colon";
    }
    return "invalid character in field name";
}

/* One field line at *p: name ":" OWS value OWS CRLF. The head is known to
 * end in CRLF CRLF and every LF in it to follow a CR, so these loops stop
 * inside the head without checking a length. */
static int field_line(const char *buf, size_t *p, struct http_header *h, struct http_request *req)
{
    size_t start = *p, q = start, v, e;

    if (OWS(buf[q]))
        return fail(req, 400, "line folding or whitespace before a field line");
    while (IS(buf[q], C_TCHAR))
        q++;
    if (buf[q] != ':')
        return fail(req, 400, name_error(buf, q));
    if (q == start)
        return fail(req, 400, "empty field name");
    for (v = q + 1; OWS(buf[v]); v++)
        ;
    for (e = v; IS(buf[e], C_FIELD); e++)
        ;
    if (buf[e] != '\r')
        return fail(req, 400, "invalid character in field value");
    if (buf[e + 1] != '\n')
        return fail(req, 400, "bare CR in a field line");
    *p = e + 2;
    while (e > v && OWS(buf[e - 1]))
        e--;
    *h = (struct http_header){buf + start, q - start, buf + v, e - v};
    return 0;
}

/* All field lines, from the end of the request line to the empty line. */
static int field_lines(const char *buf, size_t p, size_t end, size_t cap, struct facts *f,
                       struct http_request *req)
{
    int rc;

    while (p < end - 2) {
        if (req->nheaders == cap)
            return fail(req, 431, "too many header fields");
        struct http_header *h = &req->headers[req->nheaders];
        if ((rc = field_line(buf, &p, h, req)) || (rc = field_fact(h, f, req)))
            return rc;
        req->nheaders++;
    }
    return 0;
}

/* Checks that need every field: Host present, one framing, known codings. */
static int judge_facts(const struct facts *f, struct http_request *req)
{
    if (f->hosts == 0 && req->version_minor == 1)
        return fail(req, 400, "HTTP/1.1 request without Host");
    if (f->te) {
        if (req->version_minor == 0)
            return fail(req, 400, "Transfer-Encoding in HTTP/1.0");
        if (req->content_length >= 0)
            return fail(req, 400, "both Content-Length and Transfer-Encoding");
        if (!f->te_last_chk)
            return fail(req, 400, "chunked is not the final transfer coding");
        if (f->te_other)
            return fail(req, 501, "unsupported transfer coding");
        req->chunked = true;
    }
    if (req->version_minor == 1)
        req->keep_alive = !f->conn_close;
    else
        req->keep_alive = f->conn_keep && !f->conn_close;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The entry point                                                          */
/* ------------------------------------------------------------------------ */

/* Whether a kept state can belong to buf[0..n) (lead being the empty lines
 * skipped): if not, it is dropped, so that a stale or foreign state can
 * never make the parser read outside the buffer. */
static bool scan_fits(const struct http_scan *s, size_t lead, size_t n)
{
    if (s->phase == PH_METHOD)
        return s->pos <= n;
    if (s->target < lead + 2 || s->pos > n || s->phase > PH_FIELDS)
        return false;
    if (s->phase == PH_TARGET)
        return s->pos >= s->target;
    return s->version >= s->target + 2 && s->version <= n &&
           (s->phase == PH_VERSION || s->pos >= s->version + 10);
}

static void request_reset(struct http_request *req, struct http_header *hdrs)
{
    memset(req, 0, sizeof(*req));
    req->headers = hdrs;
    req->content_length = -1;
}

/* Everything after the scan has found a complete head of `end` bytes. */
static int parse_head(const char *buf, size_t lead, size_t end, const struct http_scan *s,
                      size_t cap, struct http_request *req)
{
    struct facts f = {0};
    int rc;

    if (!req->target && (rc = request_line(buf, lead, s, req)))
        return rc;
    if ((rc = field_lines(buf, s->version + 10, end, cap, &f, req)) || (rc = judge_facts(&f, req)))
        return rc;
    return (int)end;
}

/* Scan as far as the bytes go; judge the request line when it completes. */
static int scan_head(const char *buf, size_t n, size_t lead, const struct http_limits *lim,
                     struct http_scan *s, struct http_request *req)
{
    bool had_line = s->phase == PH_FIELDS;
    int rc = scan_request_line(buf, n, lead, lim->max_target, s, req);

    if (rc == 0 && !had_line)
        rc = request_line(buf, lead, s, req);
    return rc ? rc : find_head_end(buf, n, s, req);
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, struct http_header *hdrs, size_t max_hdrs,
                       struct http_scan *scan)
{
    struct http_limits defaults;
    struct http_scan local = HTTP_SCAN_INIT;
    size_t max_head, n, lead = 0, cap;
    int rc;

    if (!lim) {
        http_limits_default(&defaults);
        lim = &defaults;
    }
    /* The size of a head is returned as an int. */
    max_head = lim->max_head < INT_MAX ? lim->max_head : INT_MAX;
    n = len < max_head ? len : max_head;
    cap = max_hdrs < lim->max_headers ? max_hdrs : lim->max_headers;
    request_reset(req, hdrs);
    if (!scan)
        scan = &local;

    rc = skip_empty_lines(buf, n, &lead, req);
    if (rc == 0) {
        if (!scan_fits(scan, lead, n))
            *scan = (struct http_scan)HTTP_SCAN_INIT;
        rc = scan_head(buf, n, lead, lim, scan, req);
    }
    if (rc > 0)
        rc = parse_head(buf, lead, (size_t)rc, scan, cap, req);
    if (rc == HTTP_PARSE_INCOMPLETE && len >= max_head)
        rc = fail(req, 431, "request head too large");
    if (rc != HTTP_PARSE_INCOMPLETE)
        *scan = (struct http_scan)HTTP_SCAN_INIT;
    return rc;
}

/* ---- a head of its own ---- */

static const char *dup_str(char **to, const char *p, size_t n)
{
    if (!p)
        return NULL;
    char *s = *to;
    memcpy(s, p, n);
    *to += n;
    return s;
}

struct http_request *http_request_dup(const struct http_request *q)
{
    size_t size = sizeof *q + q->nheaders * sizeof *q->headers + q->method_len + q->target_len +
                  q->path_len + q->host_len;
    for (size_t i = 0; i < q->nheaders; i++)
        size += q->headers[i].name_len + q->headers[i].value_len;
    struct http_request *c = malloc(size);
    if (!c)
        return NULL;
    *c = *q;
    c->headers = (struct http_header *)(c + 1);
    char *to = (char *)(c->headers + q->nheaders);
    c->method_name = dup_str(&to, q->method_name, q->method_len);
    c->target = dup_str(&to, q->target, q->target_len);
    c->path = dup_str(&to, q->path, q->path_len);
    c->host = dup_str(&to, q->host, q->host_len);
    for (size_t i = 0; i < q->nheaders; i++) {
        const struct http_header *h = &q->headers[i];
        c->headers[i].name = dup_str(&to, h->name, h->name_len);
        c->headers[i].name_len = h->name_len;
        c->headers[i].value = dup_str(&to, h->value, h->value_len);
        c->headers[i].value_len = h->value_len;
    }
    return c;
}
