/* compress.h — content codings the server makes itself (gzip with zlib, br with Brotli), and which media types are worth it. */
#ifndef PF_STATIC_COMPRESS_H
#define PF_STATIC_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "http/buf.h"

/* Bodies smaller than this are sent as they are: the coding's own framing
 * (about 20 bytes for gzip) eats most of what it would save. */
#define STATIC_COMPRESS_MIN 256

/* Whether a body of this Content-Type shrinks when compressed: text, and
 * the structured or scriptable types that are text underneath (JSON, XML,
 * JavaScript, SVG, WebAssembly, uncompressed fonts). Images, audio, video,
 * archives and WOFF fonts are compressed already. */
bool static_compressible(const char *type);

/* Append in[0..n) encoded with coding enc (STATIC_ENC_GZIP or
 * STATIC_ENC_BR) at level (1..9: zlib's level, and Brotli's quality) to
 * out. Returns 0; -ENOTSUP for another coding; -EFBIG when the result would
 * not be smaller than the input (not worth sending); -ENOMEM (out's limit,
 * or memory); -EIO when the library fails. out is unchanged on failure. */
int static_compress(int enc, int level, const void *in, size_t n, struct http_buf *out);

#endif
