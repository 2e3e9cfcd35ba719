/* fuzz_http_parse.c — libFuzzer target: http_parse_request keeps its invariants, and byte by byte equals whole. */
/* fuzz-sources: src/http/parse.c */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_http_parse: check failed at line %d: %s\n", __LINE__, #c);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Prefixes of inputs up to this size are each copied to the end of a heap
 * block of their own size, so that ASan sees any read past len. Above it
 * the copying (quadratic) would cost more than it finds. */
#define PLACE_MAX 4096

/* Two sets of limits: the defaults, and tight ones that the fuzzer can
 * reach with short inputs (414, 431 on size and on count). */
struct config {
    struct http_limits lim;
    size_t cap;
};

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p != NULL && p >= buf && n <= len && p - buf <= (ptrdiff_t)(len - n);
}

/* What every result must satisfy, whatever the input. */
static void check_result(const char *buf, size_t len, int rc, const struct http_request *r,
                         size_t cap)
{
    CHECK(rc == HTTP_PARSE_INVALID || rc == HTTP_PARSE_INCOMPLETE || (rc > 0 && (size_t)rc <= len));
    if (rc == HTTP_PARSE_INVALID) {
        CHECK(r->status == 400 || r->status == 414 || r->status == 431 || r->status == 501 ||
              r->status == 505);
        CHECK(r->error != NULL && r->error[0] != '\0');
        CHECK(!r->keep_alive);
    }
    if (rc <= 0)
        return;
    size_t n = (size_t)rc;
    CHECK(r->status == 0 && r->error == NULL);
    CHECK(r->method_len > 0 && inside(r->method_name, r->method_len, buf, n));
    CHECK(r->target_len > 0 && inside(r->target, r->target_len, buf, n));
    CHECK(inside(r->path, r->path_len, buf, n));
    CHECK(inside(r->host, r->host_len, buf, n));
    CHECK(r->version_minor == 0 || r->version_minor == 1);
    CHECK(r->nheaders <= cap);
    CHECK(r->content_length >= -1);
    CHECK(!(r->chunked && r->content_length >= 0));
    CHECK(!r->expect_continue || r->version_minor == 1);
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct http_header *h = &r->headers[i];
        CHECK(h->name_len > 0 && inside(h->name, h->name_len, buf, n));
        CHECK(inside(h->value, h->value_len, buf, n));
        CHECK(memchr(h->value, '\r', h->value_len) == NULL);
        CHECK(memchr(h->value, '\n', h->value_len) == NULL);
    }
}

#define SAME_SPAN(f)                                                                               \
    CHECK(x->f##_len == y->f##_len && (x->f##_len == 0 || x->f - a == y->f - b))

/* Two parses of the same bytes, at addresses a and b, found the same. */
static void check_same(const char *a, int ra, const struct http_request *x, const char *b, int rb,
                       const struct http_request *y)
{
    CHECK(ra == rb);
    if (ra == HTTP_PARSE_INVALID)
        CHECK(x->status == y->status);
    if (ra <= 0)
        return;
    CHECK(x->method == y->method && x->target_form == y->target_form);
    CHECK(x->method_name - a == y->method_name - b && x->method_len == y->method_len);
    CHECK(x->target - a == y->target - b && x->target_len == y->target_len);
    SAME_SPAN(path);
    SAME_SPAN(host);
    CHECK(x->version_minor == y->version_minor && x->content_length == y->content_length);
    CHECK(x->chunked == y->chunked && x->keep_alive == y->keep_alive);
    CHECK(x->expect_continue == y->expect_continue);
    CHECK(x->nheaders == y->nheaders);
    for (size_t i = 0; i < x->nheaders; i++) {
        const struct http_header *p = &x->headers[i], *q = &y->headers[i];
        CHECK(p->name - a == q->name - b && p->name_len == q->name_len);
        CHECK(p->value - a == q->value - b && p->value_len == q->value_len);
    }
}

/* Feed data one more byte per call, with a scan state carried along, until
 * a verdict; it must be the verdict on the whole, reached at the same byte
 * as without the state. Each prefix ends at the end of a heap block. */
static void check_stream(const char *data, size_t size, const struct config *c, int whole,
                         const struct http_request *wr)
{
    static struct http_header hs[128], hf[128];
    struct http_request rs, rf;
    struct http_scan scan = HTTP_SCAN_INIT;
    char *block = malloc(size ? size : 1);
    int rc = HTTP_PARSE_INCOMPLETE;
    size_t k;

    CHECK(block != NULL);
    for (k = 0; k <= size && rc == HTTP_PARSE_INCOMPLETE; k++) {
        const char *at = data;
        if (size <= PLACE_MAX) {
            at = block + size - k;
            memcpy(block + size - k, data, k);
        }
        rc = http_parse_request(at, k, &c->lim, &rs, hs, c->cap, &scan);
        check_result(at, k, rc, &rs, c->cap);
        if (rc != HTTP_PARSE_INCOMPLETE) {
            int fresh = http_parse_request(at, k, &c->lim, &rf, hf, c->cap, NULL);
            check_same(at, rc, &rs, at, fresh, &rf);
            check_same(at, rc, &rs, data, whole, wr);
            CHECK(rc == HTTP_PARSE_INVALID || (size_t)rc == k);
        }
    }
    if (rc == HTTP_PARSE_INCOMPLETE)
        CHECK(whole == HTTP_PARSE_INCOMPLETE);
    free(block);
}

static void run(const char *data, size_t size, const struct config *c)
{
    static struct http_header hw[128];
    struct http_request wr;
    int whole = http_parse_request(data, size, &c->lim, &wr, hw, c->cap, NULL);

    check_result(data, size, whole, &wr, c->cap);
    check_stream(data, size, c, whole, &wr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct config configs[] = {
        {{16384, 8192, 100}, 100},
        {{128, 24, 4}, 3},
    };

    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
        run((const char *)data, size, &configs[i]);
    return 0;
}
