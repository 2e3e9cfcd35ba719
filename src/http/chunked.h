/* chunked.h — a resumable, zero-copy decoder for chunked request bodies (RFC 9112 7.1). */
#ifndef PF_HTTP_CHUNKED_H
#define PF_HTTP_CHUNKED_H

/*
 * The decoder takes a chunked body in whatever pieces the reads deliver and
 * hands back the data as spans of the caller's buffer: nothing is copied,
 * nothing is allocated. It keeps a few words of state between calls and
 * looks at each byte once, so a body fed one byte at a time costs linear
 * time, and any split (inside a size, a CRLF, an extension, a trailer) is
 * as good as any other.
 *
 * It is strict on purpose, like parse.h: a size line a proxy in front of us
 * could read differently (a bare LF, a "0x" prefix, whitespace with no ";"
 * after it, a size that overflows) is how requests get smuggled, so it is
 * refused rather than guessed at. Extensions are checked, then ignored;
 * trailer fields are checked, counted and skipped.
 *
 * Use, per request body:
 *
 *   struct http_chunked d;
 *   struct http_chunk_out out = {0};
 *   http_chunked_init(&d);
 *   after each read of buf[0..have):
 *     off = 0;
 *     while (off < have && !out.done) {
 *         n = http_chunked_decode(&d, buf + off, have - off, &out);
 *         n < 0          answer 400, then close the connection
 *         out.len > 0    deliver out.data[0..out.len)
 *         off += n;
 *     }
 *   out.done: the body is complete; the next request starts at buf + off.
 *   Otherwise every byte was consumed: read more and go on.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_CHUNKED_MAX_LINE 4096      /* a chunk-size line, extensions and CRLF included */
#define HTTP_CHUNKED_MAX_TRAILERS 16384 /* the trailer section, its final CRLF included */

/*
 * Progress through one body. Caller-owned (embed it in the connection);
 * zero it or call http_chunked_init() before each body. Only offsets and
 * counts are kept, never pointers, so the bytes may move between calls,
 * and no state, even a corrupted one, can make the decoder read outside
 * the buffer it is given.
 */
struct http_chunked {
    unsigned state;   /* where in the body the next byte falls (private) */
    int error;        /* after a failure, the negative errno returned ever after */
    uint64_t left;    /* data bytes left in the current chunk; in a size line, the size so far */
    uint64_t total;   /* data bytes decoded so far */
    size_t line;      /* bytes of the current chunk-size line so far */
    size_t trailers;  /* bytes of the trailer section so far */
    unsigned fields;  /* trailer field lines seen (they are validated, then skipped) */
};

void http_chunked_init(struct http_chunked *d);

/* What one call found besides the bytes it consumed. data points into the
 * buffer given to that call (NULL when len is 0). */
struct http_chunk_out {
    const char *data; /* body data, decoded: at most one span per call */
    size_t len;
    bool done; /* last chunk, trailers and final CRLF consumed */
};

/*
 * Decode buf[0..len). Returns the bytes consumed (0..len), or a negative errno:
 *   -EINVAL    bad framing: a size that is not 1*HEXDIG, a line not ended by
 *              CRLF (bare LF, lone CR), no CRLF right after the data, an
 *              extension not of the shape *( BWS ";" BWS token [ BWS "=" BWS
 *              ( token / quoted-string ) ] ) or with a CTL other than HTAB,
 *              a trailer line that is not token ":" field-value (obs-fold
 *              included);
 *   -EOVERFLOW a chunk size of 2^63 or more (leading zeros do not count);
 *   -EMSGSIZE  a size line over HTTP_CHUNKED_MAX_LINE or a trailer section
 *              over HTTP_CHUNKED_MAX_TRAILERS bytes.
 *
 * out->data/len: at most one span of body data, inside buf[0..returned).
 * The call stops right after such a span so that the caller can deliver
 * it, then calls again with buf + returned. A call that returns len without
 * out->done needs more bytes. out->done: the last chunk, the trailer section
 * and the final CRLF have been consumed; the bytes after them belong to the
 * next request and are not looked at.
 *
 * Never reads outside buf[0..len). Once it has failed, every further call
 * returns the same error; once done, every further call returns 0 with done.
 */
ssize_t http_chunked_decode(struct http_chunked *d, const char *buf, size_t len,
                            struct http_chunk_out *out);

#endif
