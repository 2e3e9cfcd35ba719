/* test_static_compress.c — unit tests for the server's own compression: gzip and br decode to the input, what is not worth it, which types compress. */
#include <criterion/criterion.h>

#include <brotli/decode.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../src/static/compress.h"
#include "../../src/static/encoding.h"

/* Text that compresses: lines of a small program, repeated with numbers. */
static size_t some_text(char *out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; n + 64 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "function f%d(a) { return a * %d + 1; }\n", i, i);
    return n;
}

static size_t gunzip(const char *in, size_t n, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK); /* a gzip header is required */
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = (unsigned char *)out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    size_t len = z.total_out;
    inflateEnd(&z);
    cr_assert_eq(rc, Z_STREAM_END, "inflate: %d", rc);
    return len;
}

static size_t unbrotli(const char *in, size_t n, char *out, size_t cap)
{
    size_t len = cap;
    cr_assert_eq(BrotliDecoderDecompress(n, (const uint8_t *)in, &len, (uint8_t *)out),
                 BROTLI_DECODER_RESULT_SUCCESS);
    return len;
}

static void round_trip(int enc, int level)
{
    static char text[100000], back[100000];
    size_t n = some_text(text, sizeof text);
    struct http_buf out = {0};
    cr_assert_eq(http_buf_append(&out, "x", 1), 0); /* appends after what is there */
    cr_assert_eq(static_compress(enc, level, text, n, &out), 0);
    cr_assert(out.len > 1 && out.len < n / 3, "%s level %d: %zu bytes from %zu",
              static_encoding_name(enc), level, out.len, n);
    cr_assert_eq(out.p[0], 'x');
    size_t m = enc == STATIC_ENC_GZIP ? gunzip(out.p + 1, out.len - 1, back, sizeof back)
                                      : unbrotli(out.p + 1, out.len - 1, back, sizeof back);
    cr_assert(m == n && memcmp(back, text, n) == 0, "%s level %d does not decode to the input",
              static_encoding_name(enc), level);
    http_buf_free(&out);
}

Test(compress, gzip_and_br_decode_to_the_input, .timeout = 20)
{
    for (int level = 1; level <= 9; level += 4) {
        round_trip(STATIC_ENC_GZIP, level);
        round_trip(STATIC_ENC_BR, level);
    }
}

Test(compress, refusals_leave_the_buffer_as_it_was, .timeout = 20)
{
    char noise[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245 + 12345;
        noise[i] = (char)(x >> 16);
    }
    struct http_buf out = {0};
    cr_assert_eq(static_compress(STATIC_ENC_GZIP, 6, noise, sizeof noise, &out), -EFBIG);
    cr_assert_eq(static_compress(STATIC_ENC_BR, 6, noise, sizeof noise, &out), -EFBIG);
    cr_assert_eq(out.len, 0);
    cr_assert_eq(static_compress(STATIC_ENC_ZSTD, 6, "aaaa", 4, &out), -ENOTSUP);
    cr_assert_eq(static_compress(STATIC_ENC_IDENTITY, 6, "aaaa", 4, &out), -ENOTSUP);
    cr_assert_eq(static_compress(STATIC_ENC_GZIP, 0, "aaaa", 4, &out), -EINVAL);
    cr_assert_eq(static_compress(STATIC_ENC_GZIP, 10, "aaaa", 4, &out), -EINVAL);
    cr_assert_eq(static_compress(STATIC_ENC_GZIP, 6, "", 0, &out), -EFBIG);
    /* A buffer limited below what the result needs. */
    static char text[50000];
    size_t n = some_text(text, sizeof text);
    struct http_buf small = HTTP_BUF_INIT(100);
    cr_assert_eq(static_compress(STATIC_ENC_GZIP, 6, text, n, &small), -ENOMEM);
    cr_assert_eq(small.len, 0);
    http_buf_free(&out);
    http_buf_free(&small);
}

Test(compress, compressible_types, .timeout = 20)
{
    const char *yes[] = {"text/html; charset=utf-8", "text/css", "text/javascript; charset=utf-8",
                         "application/json", "application/json; charset=utf-8",
                         "image/svg+xml", "application/wasm", "font/ttf", "APPLICATION/XML"};
    const char *no[] = {"image/png", "image/jpeg", "font/woff2", "application/gzip",
                        "application/zip", "video/mp4", "application/octet-stream",
                        "application/jsonx", "text", "text/", NULL};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        cr_assert(static_compressible(yes[i]), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_assert(!static_compressible(no[i]), "%s", no[i] ? no[i] : "(null)");
}
