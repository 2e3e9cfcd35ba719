/* compress.c — a body compressed in one call: gzip (zlib) or br (Brotli), and the media types worth compressing. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <brotli/encode.h>
#include <zlib.h>

#include "static/compress.h"
#include "static/encoding.h"

/* Type prefixes (before any parameter) that compress well. */
static const char *const compressible[] = {
    "text/",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/javascript",
    "application/xml",
    "application/xhtml+xml",
    "application/atom+xml",
    "application/rss+xml",
    "application/wasm",
    "application/vnd.ms-fontobject",
    "application/x-sh",
    "image/svg+xml",
    "image/x-icon",
    "image/bmp",
    "font/ttf",
    "font/otf",
    "model/gltf+json",
};

bool static_compressible(const char *type)
{
    if (!type)
        return false;
    size_t n = strcspn(type, "; ");
    for (size_t i = 0; i < sizeof compressible / sizeof compressible[0]; i++) {
        size_t k = strlen(compressible[i]);
        bool prefix = compressible[i][k - 1] == '/';
        if ((prefix ? n > k : n == k) && strncasecmp(type, compressible[i], k) == 0)
            return true;
    }
    return false;
}

/* gzip (RFC 1952): zlib's deflate with a gzip wrapper (window bits 15 + 16). */
static int gzip(int level, const unsigned char *in, size_t n, unsigned char *out, size_t *len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    z.next_in = (unsigned char *)in; /* zlib's API is not const, it only reads */
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)*len;
    int rc = deflate(&z, Z_FINISH);
    *len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : rc == Z_OK || rc == Z_BUF_ERROR ? -EFBIG : -EIO;
}

static int brotli(int level, const unsigned char *in, size_t n, unsigned char *out, size_t *len)
{
    /* BROTLI_MODE_GENERIC: the text mode's gain is small and type-dependent. */
    if (!BrotliEncoderCompress(level, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, n, in, len, out))
        return -EFBIG; /* it only fails when the output does not fit */
    return 0;
}

int static_compress(int enc, int level, const void *in, size_t n, struct http_buf *out)
{
    if (enc != STATIC_ENC_GZIP && enc != STATIC_ENC_BR)
        return -ENOTSUP;
    if (level < 1 || level > 9 || n > (size_t)1 << 30)
        return -EINVAL;
    /* Room for a result one byte smaller than the input: anything longer is
     * not worth sending, and the libraries stop when they run out. */
    size_t room = n ? n - 1 : 0;
    if (room == 0)
        return -EFBIG;
    if (http_buf_reserve(out, room) < 0)
        return -ENOMEM;
    unsigned char *dst = (unsigned char *)out->p + out->len;
    size_t len = room;
    int err = enc == STATIC_ENC_GZIP ? gzip(level, in, n, dst, &len)
                                     : brotli(level, in, n, dst, &len);
    if (err < 0)
        return err;
    out->len += len;
    out->p[out->len] = '\0';
    return 0;
}
