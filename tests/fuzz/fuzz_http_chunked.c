/* fuzz_http_chunked.c — libFuzzer target: the chunked decoder agrees with itself, whole or cut. */
/* fuzz-sources: src/http/chunked.c */

/*
 * Input: two control bytes, then the body. The first control byte picks the
 * largest piece (1 to 128 bytes), the second seeds the cuts. The body is
 * decoded whole, one byte at a time, and in those pieces; each piece sits
 * in a heap block of exactly its size, so ASan sees any read outside it.
 * The three runs must agree on the verdict, on the bytes consumed (unless
 * it is an error: a failing call does not say how far it got) and on the
 * data, byte for byte.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_http_chunked: check failed at line %d: %s\n", __LINE__, #c);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* What one way of feeding the body found. data has room for the body. */
struct run {
    ssize_t err;
    bool done;
    size_t consumed;
    char *data;
    size_t dlen;
    struct http_chunked d;
};

/* What every call must satisfy, whatever the input. */
static void check_call(const char *piece, size_t n, ssize_t rc, const struct http_chunk_out *out)
{
    if (rc < 0) {
        CHECK(rc == -EINVAL || rc == -EOVERFLOW || rc == -EMSGSIZE);
        CHECK(out->len == 0 && !out->done);
        return;
    }
    CHECK((size_t)rc <= n);
    CHECK(out->len <= (size_t)rc);
    CHECK(out->len == 0 || (out->data >= piece && out->data + out->len <= piece + rc));
    CHECK(out->len == 0 || !out->done);
    /* Only a span or the end stops a call before the bytes run out. */
    CHECK((size_t)rc == n || out->len > 0 || out->done);
}

/* Decode one piece copied to a block of its own size, until it is used up,
 * the body ends or it fails. */
static void feed_piece(struct run *r, const char *in, size_t n)
{
    char *piece = malloc(n ? n : 1);
    size_t off = 0;

    CHECK(piece != NULL);
    memcpy(piece, in, n);
    while (!r->done && !r->err) {
        struct http_chunk_out out;
        ssize_t rc = http_chunked_decode(&r->d, piece + off, n - off, &out);
        check_call(piece + off, n - off, rc, &out);
        if (rc < 0) {
            r->err = rc;
            break;
        }
        memcpy(r->data + r->dlen, out.data ? out.data : "", out.len);
        r->dlen += out.len;
        off += (size_t)rc;
        r->consumed += (size_t)rc;
        r->done = out.done;
        if (off == n)
            break;
    }
    free(piece);
}

/* After an end or an error, the decoder says the same again. */
static void check_sticky(struct run *r, const char *in, size_t n)
{
    struct http_chunk_out out;

    if (!r->err && !r->done)
        return;
    ssize_t rc = http_chunked_decode(&r->d, in, n, &out);
    if (r->err)
        CHECK(rc == r->err && out.len == 0 && !out.done);
    else
        CHECK(rc == 0 && out.len == 0 && out.done);
}

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Feed body[0..n) in pieces of 1 to max bytes, their lengths drawn from seed
 * (max 0: whole). */
static void feed(struct run *r, const char *body, size_t n, size_t max, uint32_t seed)
{
    size_t at = 0;

    http_chunked_init(&r->d);
    r->data = malloc(n ? n : 1);
    CHECK(r->data != NULL);
    do {
        size_t len = max ? 1 + next(&seed) % max : n;
        if (len > n - at)
            len = n - at;
        feed_piece(r, body + at, len);
        at += len;
    } while (at < n && !r->done && !r->err);
    check_sticky(r, body, n);
}

/* What a verdict implies about the bytes, independently of how they came. */
static void check_verdict(const struct run *r, const char *body, size_t n)
{
    CHECK(r->d.total == r->dlen);
    CHECK(r->dlen <= r->consumed || r->err);
    if (r->done)
        CHECK(r->consumed >= 5 && memcmp(body + r->consumed - 4, "\r\n\r\n", 4) == 0);
    if (!r->done && !r->err)
        CHECK(r->consumed == n);
}

static void check_same(const struct run *a, const struct run *b)
{
    CHECK(a->err == b->err && a->done == b->done);
    CHECK(a->err || a->consumed == b->consumed);
    CHECK(a->dlen == b->dlen && memcmp(a->data, b->data, a->dlen) == 0);
    CHECK(a->err || a->d.fields == b->d.fields);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *body = (const char *)data + 2;
    size_t n = size - 2, max = (size_t)1 << (data[0] % 8);
    struct run whole = {0}, cut = {0}, bytes = {0};

    feed(&whole, body, n, 0, 0);
    feed(&cut, body, n, max, 0x9e3779b9u ^ data[1]);
    feed(&bytes, body, n, 1, 1);
    check_verdict(&whole, body, n);
    check_same(&whole, &cut);
    check_same(&whole, &bytes);
    free(whole.data);
    free(cut.data);
    free(bytes.data);
    return 0;
}
