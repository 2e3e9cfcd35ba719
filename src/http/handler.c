/* handler.c — answering GET and HEAD from the document root: files, directories, validators, ranges, cache. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/cache.h"
#include "http/cond.h"
#include "http/handler.h"
#include "http/listing.h"
#include "http/mime.h"
#include "http/path.h"

/* The request fields the handler reads, found in one pass. */
struct fields {
    struct http_cond cond;
    const struct http_header *range, *if_range;
};

/* What the request names: the decoded path, and the cache key (the path,
 * plus a '/' when a directory was asked for). */
struct target {
    char rel[PATH_MAX];
    struct http_path p;
    char key[PATH_MAX + 1];
    size_t key_len;
};

/* A body to answer with: an open file, or bytes in memory (the cache). */
struct content {
    int fd;
    const char *mem;
    uint64_t size;
    const char *etag, *type;
    time_t mtime;
};

static bool name_is(const struct http_header *h, const char *name, size_t n)
{
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

#define IS(h, lit) name_is(h, lit, sizeof lit - 1)
#define TAKE(field, h) (field = (h)->value, field##_len = (h)->value_len)

static void find_fields(const struct http_request *req, struct fields *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        char c = (char)(h->name[0] | 0x20);
        if (c == 'r' && IS(h, "range"))
            f->range = h;
        else if (c != 'i')
            continue;
        else if (IS(h, "if-range"))
            f->if_range = h;
        else if (IS(h, "if-match"))
            TAKE(f->cond.if_match, h);
        else if (IS(h, "if-none-match"))
            TAKE(f->cond.if_none_match, h);
        else if (IS(h, "if-modified-since"))
            TAKE(f->cond.if_modified_since, h);
        else if (IS(h, "if-unmodified-since"))
            TAKE(f->cond.if_unmodified_since, h);
    }
}

/* Only GET and HEAD are served; other methods we know get 405, the rest
 * 501. A request with a body we do not read ends its connection. */
static bool method_ok(const struct http_request *req, struct http_reply *r,
                      struct http_buf *body)
{
    if (req->content_length > 0 || req->chunked)
        r->close = true;
    if (req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD)
        return true;
    http_reply_error(r, req->method == HTTP_METHOD_OTHER ? 501 : 405, body);
    if (r->status == 405)
        r->allow = "GET, HEAD";
    return false;
}

static int open_error_status(int err)
{
    switch (err) {
    case -EACCES:
    case -EPERM:
        return 403;
    case -EMFILE:
    case -ENFILE:
    case -ENOMEM:
        return 503;
    case -ENOENT:
    case -ENOTDIR:
    case -EXDEV:
    case -ELOOP:
    case -ENAMETOOLONG:
    case -ENXIO:
        return 404;
    default:
        return 500;
    }
}

static void fail(struct http_worker *hw, struct http_reply *r, int fd, int status)
{
    if (fd >= 0)
        close(fd);
    http_reply_error(r, status, &hw->body);
}

static int open_in_root(struct http_worker *hw, const char *rel, int *fd)
{
    unsigned mode = hw->cfg->follow_symlinks ? HTTP_OPEN_FOLLOW_OUTSIDE : 0;
    return http_open_beneath(hw->cfg->rootfd, rel, O_RDONLY, mode, fd);
}

/* ---- answering with content: validators, ranges, then the body ---- */

/* Range and If-Range (RFC 9110 13.1.5, 14.2): a satisfiable single range is
 * a 206, an unsatisfiable one a 416, anything else the whole body. */
static void apply_range(struct http_worker *hw, const struct fields *f,
                        const struct content *c, struct http_reply *r)
{
    uint64_t first, last;
    if (!f->range || (f->if_range && !http_if_range_ok(f->if_range->value,
                                                       f->if_range->value_len, c->etag,
                                                       strlen(c->etag), c->mtime)))
        return;
    int rc = http_range_parse(f->range->value, f->range->value_len, c->size, &first, &last);
    if (rc == HTTP_RANGE_OK) {
        r->status = 206;
        r->offset = first;
        r->length = last - first + 1;
        http_content_range(r->range, sizeof r->range, first, last, c->size);
    } else if (rc == HTTP_RANGE_UNSATISFIABLE) {
        fail(hw, r, r->fd, 416);
        http_content_range_unsatisfied(r->range, sizeof r->range, c->size);
    }
}

/* The reply for content: 304 or 412 by the validators, else 200 or 206.
 * The reply owns c->fd afterwards (it closes it when it needs no body). */
static void answer_content(struct http_worker *hw, const struct http_request *req,
                           struct http_reply *r, const struct content *c)
{
    struct fields f;
    find_fields(req, &f);
    size_t etag_len = strnlen(c->etag, sizeof r->etag - 1); /* per request: no snprintf */
    memcpy(r->etag, c->etag, etag_len);
    r->etag[etag_len] = '\0';
    r->mtime = c->mtime;
    enum http_cond_result cond =
        http_cond_evaluate(&f.cond, c->etag, etag_len, c->mtime, true);
    if (cond == HTTP_COND_NOT_MODIFIED) {
        if (c->fd >= 0)
            close(c->fd);
        r->status = 304;
        r->head_only = true;
        return;
    }
    if (cond == HTTP_COND_PRECONDITION_FAILED) {
        fail(hw, r, c->fd, 412);
        return;
    }
    r->fd = c->fd;
    r->length = c->size;
    r->type = c->type;
    apply_range(hw, &f, c, r);
    if (c->mem && (r->status == 200 || r->status == 206)) {
        r->body = c->mem + r->offset; /* memory bodies start where they are */
        r->offset = 0;
    }
}

/* ---- the cache ---- */

static void make_key(struct target *t)
{
    size_t n = strlen(t->rel);
    bool dir = t->p.trailing_slash || n == 0;
    memcpy(t->key, t->rel, n);
    if (dir)
        t->key[n++] = '/';
    t->key[n] = '\0';
    t->key_len = n;
}

/* A stale file entry is still good if the file it came from is the same
 * file, unchanged: checked through the same confined open. */
static bool still_valid(struct http_worker *hw, const struct http_cache_entry *e)
{
    struct stat st;
    int fd;
    if (e->kind != HTTP_CACHE_FILE || open_in_root(hw, e->src, &fd) < 0)
        return false;
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                st.st_dev == e->st.st_dev && st.st_ino == e->st.st_ino &&
                st.st_size == e->st.st_size &&
                st.st_mtim.tv_sec == e->st.st_mtim.tv_sec &&
                st.st_mtim.tv_nsec == e->st.st_mtim.tv_nsec;
    close(fd);
    return same;
}

static bool serve_cached(struct http_worker *hw, const struct http_request *req,
                         struct http_reply *r, const struct target *t)
{
    bool fresh;
    uint64_t now = pf_loop_now(hw->loop);
    struct http_cache_entry *e = http_cache_get(hw->cache, t->key, t->key_len, now, &fresh);
    if (!e)
        return false;
    if (!fresh) {
        if (!still_valid(hw, e)) {
            http_cache_drop(hw->cache, e);
            return false;
        }
        http_cache_touch(e, now);
    }
    if (e->kind == HTTP_CACHE_LISTING) {
        r->type = e->type;
        r->body = e->body;
        r->length = e->len;
        return true;
    }
    struct content c = {.fd = -1, .mem = e->body, .size = e->len, .etag = e->etag,
                        .type = e->type, .mtime = e->mtime};
    answer_content(hw, req, r, &c);
    return true;
}

/* Read a small file whole into the cache; NULL if it cannot be cached. */
static struct http_cache_entry *cache_file(struct http_worker *hw, const struct target *t,
                                           int fd, const struct stat *st, const char *src)
{
    size_t size = (size_t)st->st_size;
    struct stat after;
    http_buf_reset(&hw->body);
    if (!http_cache_wants(hw->cache, size) || http_buf_reserve(&hw->body, size) < 0 ||
        pread(fd, hw->body.p, size, 0) != (ssize_t)size)
        return NULL;
    /* A write between the stat and the read would pair these bytes with
     * the old validators: cache only what was read from an unchanged file. */
    if (fstat(fd, &after) < 0 || after.st_size != st->st_size ||
        after.st_mtim.tv_sec != st->st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != st->st_mtim.tv_nsec)
        return NULL;
    struct http_cache_entry *e =
        http_cache_put(hw->cache, t->key, t->key_len, HTTP_CACHE_FILE, hw->body.p, size,
                       src, pf_loop_now(hw->loop));
    if (!e)
        return NULL;
    e->st = *st;
    e->mtime = st->st_mtime;
    e->type = http_mime_type(src, strlen(src));
    http_etag_make(st, e->etag, sizeof e->etag);
    return e;
}

/* ---- files and directories ---- */

static void serve_file(struct http_worker *hw, const struct http_request *req,
                       struct http_reply *r, const struct target *t, int fd,
                       const struct stat *st, const char *src)
{
    char etag[HTTP_ETAG_MAX];
    struct http_cache_entry *e = cache_file(hw, t, fd, st, src);
    if (e) {
        close(fd);
        struct content c = {.fd = -1, .mem = e->body, .size = e->len, .etag = e->etag,
                            .type = e->type, .mtime = e->mtime};
        answer_content(hw, req, r, &c);
        return;
    }
    http_etag_make(st, etag, sizeof etag);
    struct content c = {.fd = fd, .size = (uint64_t)st->st_size, .etag = etag,
                        .type = http_mime_type(src, strlen(src)), .mtime = st->st_mtime};
    answer_content(hw, req, r, &c);
}

/* "/a b/" -> "/a%20b/" plus the query, for the Location of a 301. */
static void redirect_to_slash(struct http_worker *hw, const struct http_request *req,
                              struct http_reply *r, const char *rel)
{
    const char *q = memchr(req->path, '?', req->path_len);
    size_t qlen = q ? req->path_len - (size_t)(q - req->path) : 0;
    char enc[PATH_MAX * 3 + 2];
    enc[0] = '/';
    size_t n = 1 + http_url_encode_path(rel, strlen(rel), enc + 1, sizeof enc - 2);
    enc[n++] = '/';
    http_reply_error(r, 301, &hw->body);
    http_buf_reset(&hw->loc);
    if (http_buf_append(&hw->loc, enc, n) < 0 ||
        (qlen && http_buf_append(&hw->loc, q, qlen) < 0)) {
        http_reply_error(r, 500, &hw->body);
        return;
    }
    r->location = hw->loc.p;
    r->location_len = hw->loc.len;
}

static void serve_listing(struct http_worker *hw, struct http_reply *r,
                          const struct target *t, int dirfd)
{
    char url[PATH_MAX + 2];
    snprintf(url, sizeof url, "/%s%s", t->rel, t->rel[0] ? "/" : "");
    http_buf_reset(&hw->body);
    int err = http_listing_render(dirfd, url, hw->cfg->dotfiles, &hw->body);
    close(dirfd);
    if (err < 0) {
        http_reply_error(r, open_error_status(err), &hw->body);
        return;
    }
    r->type = "text/html; charset=utf-8";
    r->body = hw->body.p;
    r->length = hw->body.len;
    struct http_cache_entry *e =
        http_cache_put(hw->cache, t->key, t->key_len, HTTP_CACHE_LISTING, hw->body.p,
                       hw->body.len, NULL, pf_loop_now(hw->loop));
    if (e)
        e->type = r->type;
}

static void serve_directory(struct http_worker *hw, const struct http_request *req,
                            struct http_reply *r, const struct target *t, int dirfd)
{
    if (!t->p.trailing_slash && t->rel[0]) {
        close(dirfd);
        redirect_to_slash(hw, req, r, t->rel);
        return;
    }
    char index[PATH_MAX];
    struct stat st;
    int fd;
    int n = snprintf(index, sizeof index, "%s%s%s", t->rel, t->rel[0] ? "/" : "",
                     hw->cfg->index);
    if (n > 0 && (size_t)n < sizeof index && open_in_root(hw, index, &fd) == 0) {
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            close(dirfd);
            serve_file(hw, req, r, t, fd, &st, index);
            return;
        }
        close(fd);
    }
    if (!hw->cfg->listing) {
        fail(hw, r, dirfd, 403);
        return;
    }
    serve_listing(hw, r, t, dirfd);
}

/* Decode and check the path: false (with the error reply made) if refused. */
static bool resolve(struct http_worker *hw, const struct http_request *req,
                    struct http_reply *r, struct target *t)
{
    /* An absolute-form target may have an empty path: that is "/". */
    const char *path = req->path_len && req->path[0] == '/' ? req->path : "/";
    size_t plen = path == req->path ? req->path_len : 1;
    int err = http_path_decode(path, plen, t->rel, sizeof t->rel, &t->p);
    if (err < 0) {
        http_reply_error(r, err == -ENAMETOOLONG ? 414 : 400, &hw->body);
        return false;
    }
    if (t->p.has_dot_segment && !hw->cfg->dotfiles) {
        http_reply_error(r, 404, &hw->body);
        return false;
    }
    make_key(t);
    return true;
}

void http_handle(struct http_worker *hw, const struct http_request *req,
                 struct http_reply *r)
{
    struct target t;
    struct stat st;
    int fd;
    r->head_only = req->method == HTTP_METHOD_HEAD;
    r->keep_alive = req->keep_alive;
    r->close = !req->keep_alive;
    if (!method_ok(req, r, &hw->body) || !resolve(hw, req, r, &t))
        return;
    if (serve_cached(hw, req, r, &t))
        return;
    int err = open_in_root(hw, t.rel, &fd);
    if (err < 0) {
        http_reply_error(r, open_error_status(err), &hw->body);
        return;
    }
    if (fstat(fd, &st) < 0)
        fail(hw, r, fd, 500);
    else if (S_ISDIR(st.st_mode))
        serve_directory(hw, req, r, &t, fd);
    else if (!S_ISREG(st.st_mode) || t.p.trailing_slash)
        fail(hw, r, fd, S_ISREG(st.st_mode) ? 404 : 403); /* "file/", FIFOs, devices */
    else
        serve_file(hw, req, r, &t, fd, &st, t.rel);
}
