/* chunked.c — the chunked-body decoder: a byte state machine for lines, spans for data. */
#include "chunked.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/*
 * How a call spends its time. Chunk data, the bulk of a body, is never
 * looked at: it is handed back as one span of the caller's buffer. The
 * lines around it (chunk-size lines with their extensions, the CRLF after
 * the data, trailer fields) go through a small state machine one byte at a
 * time, each byte classified through one 256-entry table. That is the
 * simplest way to be resumable at every byte, and those lines are short
 * and bounded (HTTP_CHUNKED_MAX_LINE, HTTP_CHUNKED_MAX_TRAILERS), so their
 * per-byte cost does not matter next to the data's.
 */

/* The states, in the order a body goes through them. ST_SIZE0 is 0, so a
 * zeroed struct is ready for a body. */
enum {
    ST_SIZE0,       /* first byte of a chunk-size line: a hex digit */
    ST_SIZE,        /* after a hex digit: more, or what may follow a size */
    ST_EXT_WS,      /* BWS after the size or a value: ";" must follow */
    ST_EXT_NAME0,   /* after ";": BWS, then an ext-name */
    ST_EXT_NAME,    /* in an ext-name */
    ST_EXT_NAME_WS, /* BWS after an ext-name: "=" or ";" must follow */
    ST_EXT_VAL0,    /* after "=": BWS, then a token or a quoted-string */
    ST_EXT_TOKEN,   /* in a token ext-val */
    ST_EXT_QUOTED,  /* in a quoted-string ext-val */
    ST_EXT_QPAIR,   /* after a backslash in it */
    ST_EXT_END,     /* after its closing quote */
    ST_SIZE_LF,     /* after the CR ending a size line */
    ST_DATA,        /* in chunk data: d->left bytes to go */
    ST_DATA_CR,     /* after the data: CR */
    ST_DATA_LF,     /* then LF */
    ST_FIELD0,      /* start of a trailer field line, or the CR of the final CRLF */
    ST_FIELD_NAME,  /* in a trailer field name */
    ST_FIELD_VALUE, /* after its colon: OWS, value, OWS */
    ST_FIELD_LF,    /* after the CR ending a trailer field line */
    ST_LAST_LF,     /* after the CR of the final CRLF */
    ST_DONE,
    ST_ERROR,
};

/* Character classes, one bit each. */
enum {
    C_TCHAR = 1, /* token character, RFC 9110 5.6.2 */
    C_HEX = 2,   /* HEXDIG, either case */
    C_FIELD = 4, /* HTAB, SP, VCHAR, obs-text: field values and quoted-pairs */
    C_QDTEXT = 8, /* HTAB, SP, VCHAR but '"' and '\', obs-text (RFC 9110 5.6.4) */
};

static const unsigned char cls[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  12, 0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    12, 13, 4,  13, 13, 13, 13, 13, 12, 12, 13, 13, 12, 13, 13, 12, /* 0x20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 12, 12, 12, 12, 12, 12, /* 0x30 */
    12, 15, 15, 15, 15, 15, 15, 13, 13, 13, 13, 13, 13, 13, 13, 13, /* 0x40 */
    13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 12, 4,  12, 13, 13, /* 0x50 */
    13, 15, 15, 15, 15, 15, 15, 13, 13, 13, 13, 13, 13, 13, 13, 13, /* 0x60 */
    13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 12, 13, 12, 13, 0,  /* 0x70 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0x80 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0x90 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0xA0 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0xB0 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0xC0 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0xD0 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0xE0 */
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, /* 0xF0 */
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))
#define OWS(c) ((c) == ' ' || (c) == '\t')
#define BAD (-1) /* a next state meaning "this byte is not allowed here" */

void http_chunked_init(struct http_chunked *d)
{
    memset(d, 0, sizeof(*d));
}

static unsigned hex_value(unsigned char c)
{
    if (c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

/* One more hex digit of the size. Refused from 2^63 up: the size must fit
 * in an off_t, and 16 significant digits is where it stops anyway; leading
 * zeros cost nothing but line length. */
static int size_digit(struct http_chunked *d, unsigned char c)
{
    if (d->left > (uint64_t)INT64_MAX >> 4)
        return -EOVERFLOW;
    d->left = d->left << 4 | hex_value(c);
    d->state = ST_SIZE;
    return 0;
}

/* What may follow a size, an ext-name or an ext-val: ";", the CR ending
 * the line, or BWS (then the state ws, which wants a ";" after it). A bare
 * LF or any other byte is BAD. */
static int after_item(unsigned char c, int ws)
{
    if (c == ';')
        return ST_EXT_NAME0;
    if (c == '\r')
        return ST_SIZE_LF;
    return OWS(c) ? ws : BAD;
}

/* The state after byte c of a chunk-ext (RFC 9112 7.1.1), or BAD. */
static int ext_next(unsigned state, unsigned char c)
{
    switch (state) {
    case ST_EXT_WS:
        return c == ';' ? ST_EXT_NAME0 : OWS(c) ? ST_EXT_WS : BAD;
    case ST_EXT_NAME0:
        return IS(c, C_TCHAR) ? ST_EXT_NAME : OWS(c) ? ST_EXT_NAME0 : BAD;
    case ST_EXT_NAME:
        if (IS(c, C_TCHAR))
            return ST_EXT_NAME;
        return c == '=' ? ST_EXT_VAL0 : after_item(c, ST_EXT_NAME_WS);
    case ST_EXT_NAME_WS:
        if (c == '=')
            return ST_EXT_VAL0;
        return c == ';' ? ST_EXT_NAME0 : OWS(c) ? ST_EXT_NAME_WS : BAD;
    case ST_EXT_VAL0:
        if (IS(c, C_TCHAR))
            return ST_EXT_TOKEN;
        return c == '"' ? ST_EXT_QUOTED : OWS(c) ? ST_EXT_VAL0 : BAD;
    case ST_EXT_TOKEN:
        return IS(c, C_TCHAR) ? ST_EXT_TOKEN : after_item(c, ST_EXT_WS);
    case ST_EXT_QUOTED:
        if (IS(c, C_QDTEXT))
            return ST_EXT_QUOTED;
        return c == '"' ? ST_EXT_END : c == '\\' ? ST_EXT_QPAIR : BAD;
    case ST_EXT_QPAIR:
        return IS(c, C_FIELD) ? ST_EXT_QUOTED : BAD;
    case ST_EXT_END:
        return after_item(c, ST_EXT_WS);
    default:
        return BAD;
    }
}

/* A byte of a chunk-size line: size, extensions, CRLF. The line's end
 * decides what comes next: data, or the trailers after the last chunk. */
static int size_line_byte(struct http_chunked *d, unsigned char c)
{
    int next;

    if (++d->line > HTTP_CHUNKED_MAX_LINE)
        return -EMSGSIZE;
    if (d->state == ST_SIZE0 || d->state == ST_SIZE) {
        if (IS(c, C_HEX))
            return size_digit(d, c);
        if (d->state == ST_SIZE0)
            return -EINVAL;
        next = after_item(c, ST_EXT_WS);
    } else if (d->state == ST_SIZE_LF) {
        if (c != '\n')
            return -EINVAL;
        next = d->left ? ST_DATA : ST_FIELD0;
    } else {
        next = ext_next(d->state, c);
    }
    if (next == BAD)
        return -EINVAL;
    d->state = (unsigned)next;
    return 0;
}

/* A byte of the trailer section: field lines, then the final CRLF. Each
 * field line is token ":" OWS value OWS, which C_FIELD covers after the
 * colon; a line starting with SP or HTAB (obs-fold) is BAD like any other
 * byte that cannot start a name. */
static int trailer_byte(struct http_chunked *d, unsigned char c)
{
    int next = BAD;

    if (++d->trailers > HTTP_CHUNKED_MAX_TRAILERS)
        return -EMSGSIZE;
    switch (d->state) {
    case ST_FIELD0:
        next = c == '\r' ? ST_LAST_LF : IS(c, C_TCHAR) ? ST_FIELD_NAME : BAD;
        break;
    case ST_FIELD_NAME:
        next = IS(c, C_TCHAR) ? ST_FIELD_NAME : c == ':' ? ST_FIELD_VALUE : BAD;
        break;
    case ST_FIELD_VALUE:
        next = IS(c, C_FIELD) ? ST_FIELD_VALUE : c == '\r' ? ST_FIELD_LF : BAD;
        break;
    case ST_FIELD_LF:
        next = c == '\n' ? ST_FIELD0 : BAD;
        d->fields += next != BAD;
        break;
    case ST_LAST_LF:
        next = c == '\n' ? ST_DONE : BAD;
        break;
    }
    if (next == BAD)
        return -EINVAL;
    d->state = (unsigned)next;
    return 0;
}

/* The CRLF after chunk data; then a new size line. */
static int data_end_byte(struct http_chunked *d, unsigned char c)
{
    if (c != (d->state == ST_DATA_CR ? '\r' : '\n'))
        return -EINVAL;
    if (d->state == ST_DATA_CR) {
        d->state = ST_DATA_LF;
        return 0;
    }
    d->state = ST_SIZE0;
    d->left = 0;
    d->line = 0;
    return 0;
}

/* Any byte but chunk data. An unknown state (a corrupted struct) fails. */
static int step(struct http_chunked *d, unsigned char c)
{
    if (d->state <= ST_SIZE_LF)
        return size_line_byte(d, c);
    if (d->state == ST_DATA_CR || d->state == ST_DATA_LF)
        return data_end_byte(d, c);
    if (d->state >= ST_FIELD0 && d->state <= ST_LAST_LF)
        return trailer_byte(d, c);
    return -EINVAL;
}

/* Hand back as much of the current chunk's data as buf holds. total cannot
 * wrap: 2^64 bytes take 46 years at 100 Gbit/s. */
static size_t take_data(struct http_chunked *d, const char *buf, size_t len,
                        struct http_chunk_out *out)
{
    size_t n = d->left < len ? (size_t)d->left : len;

    out->data = buf;
    out->len = n;
    d->left -= n;
    d->total += n;
    if (d->left == 0)
        d->state = ST_DATA_CR;
    return n;
}

ssize_t http_chunked_decode(struct http_chunked *d, const char *buf, size_t len,
                            struct http_chunk_out *out)
{
    size_t i = 0;

    *out = (struct http_chunk_out){NULL, 0, false};
    if (d->state == ST_ERROR)
        return d->error < 0 ? d->error : -EINVAL;
    /* The count is returned as an ssize_t; the rest waits for the next call. */
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    while (i < len && d->state != ST_DONE) {
        if (d->state == ST_DATA)
            return (ssize_t)(i + take_data(d, buf + i, len - i, out));
        int rc = step(d, (unsigned char)buf[i]);
        if (rc < 0) {
            d->state = ST_ERROR;
            d->error = rc;
            return rc;
        }
        i++;
    }
    out->done = d->state == ST_DONE;
    return (ssize_t)i;
}
