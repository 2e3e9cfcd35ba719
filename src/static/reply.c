/* reply.c — the static site's response: made empty or an error page, then written through the HTTP core with the site's fields. */
#include <string.h>
#include <unistd.h>

#include "http/date.h"
#include "static/encoding.h"
#include "static/reply.h"

void static_reply_init(struct static_reply *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->fd = -1;
}

void static_reply_error(struct static_reply *r, int status)
{
    static_reply_init(r);
    r->status = status;
    r->page = true;
}

#define HEADER(x, lit, v, n) http_res_header(x, lit, sizeof lit - 1, v, n)

/* The fields this site's responses carry, besides the core's. A 304
 * carries the validators but no Content-Type (RFC 9110 15.4.5). */
static int fields(struct http_exchange *x, const struct static_reply *r)
{
    static struct http_date_memo last_modified; /* a hot file's, formatted once */
    if (r->fields)
        return http_res_fields(x, r->fields);
    const char *date = r->mtime ? http_date_cached(&last_modified, r->mtime) : "";
    int err = 0;
    if (r->type && r->status != 304)
        err |= HEADER(x, "Content-Type", r->type, strlen(r->type));
    if (date[0]) /* empty: no mtime, or a year beyond 9999 */
        err |= HEADER(x, "Last-Modified", date, HTTP_DATE_LEN);
    if (r->etag[0])
        err |= HEADER(x, "ETag", r->etag, strlen(r->etag));
    if (r->etag[0] || r->status == 416)
        err |= HEADER(x, "Accept-Ranges", "bytes", 5);
    if (r->range[0])
        err |= HEADER(x, "Content-Range", r->range, strlen(r->range));
    if (r->allow)
        err |= HEADER(x, "Allow", r->allow, strlen(r->allow));
    if (r->location)
        err |= HEADER(x, "Location", r->location, r->location_len);
    if (r->encoding != STATIC_ENC_IDENTITY && r->status != 304) {
        const char *name = static_encoding_name(r->encoding);
        err |= HEADER(x, "Content-Encoding", name, strlen(name));
    }
    if (r->vary)
        err |= HEADER(x, "Vary", "Accept-Encoding", 15);
    if (r->extra)
        err |= http_res_fields(x, r->extra);
    return err;
}

/* Write the decided response through the core. */
void static_reply_emit(struct http_exchange *x, struct static_reply *r)
{
    int err = http_res_status(x, r->status, NULL);
    if (!err)
        err = fields(x, r);
    if (!err && r->page) {
        http_res_page(x);
        return;
    }
    if (!err)
        err = http_res_start(x, (int64_t)r->length);
    if (!err && r->fd >= 0) {
        err = http_res_file(x, r->fd, r->offset, r->length);
        r->fd = -1;
    } else if (!err && r->body) {
        err = http_res_write(x, r->body, (size_t)r->length);
    }
    if (r->fd >= 0)
        close(r->fd);
    if (err >= 0)
        http_res_end(x);
    else if (http_res_error(x, 500) < 0)
        http_res_abort(x);
}

