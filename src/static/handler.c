/* handler.c — the static site's handler: GET and HEAD answered from the document root (files, directories, codings, validators, ranges, cache). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static/cache.h"
#include "static/cond.h"
#include "static/listing.h"
#include "static/mime.h"
#include "static/path.h"
#include "static/reply.h"
#include "static/rules.h"
#include "static/site.h"
#include "static/variant.h"

/* The request fields the handler reads, found in one pass. */
struct fields {
    struct static_cond cond;
    const struct http_header *range, *if_range, *accept_encoding;
    unsigned accept_encodings; /* lines of it: a list split over several */
};

/* What the request names: the decoded path, and the cache key (the path,
 * plus a '/' when a directory was asked for); the fields it has, and the
 * codings it takes. probe: the cache did not know which coding to send,
 * so a file found is looked at for variants. */
struct target {
    char rel[PATH_MAX];
    struct static_path p;
    char key[PATH_MAX + 1];
    size_t key_len;
    struct fields f;
    struct static_want w;
    bool probe;
    const char *src;                 /* the file sent, from the root, once known */
    bool ruled;                      /* the two below are known */
    const struct http_fields *extra; /* what --header rules give the path, or NULL */
    const char *rule_type;           /* a rule's Content-Type, or NULL */
};

/* A body to answer with: an open file, or bytes in memory (the cache). */
struct content {
    int fd;
    const char *mem;
    uint64_t size;
    const char *etag, *type;
    time_t mtime;
    const struct http_fields *fields; /* for a 200 of the whole, or NULL */
};

static bool name_is(const struct http_header *h, const char *name, size_t n)
{
    return http_name_is(h->name, h->name_len, name, n);
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
        else if (c == 'a' && IS(h, "accept-encoding"))
            f->accept_encoding = h, f->accept_encodings++;
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
 * 501. A body that comes with a request is read away by the core. */
static bool method_ok(const struct http_request *req, struct static_reply *r)
{
    if (req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD)
        return true;
    static_reply_error(r, req->method == HTTP_METHOD_OTHER ? 501 : 405);
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

static void fail(struct static_reply *r, int fd, int status)
{
    if (fd >= 0)
        close(fd);
    static_reply_error(r, status);
}

/* ---- answering with content: validators, ranges, then the body ---- */

/* Range and If-Range (RFC 9110 13.1.5, 14.2): a satisfiable single range is
 * a 206, an unsatisfiable one a 416, anything else the whole body. */
static void apply_range(const struct fields *f, const struct content *c, struct static_reply *r)
{
    uint64_t first, last;
    if (!f->range || (f->if_range && !static_if_range_ok(f->if_range->value,
                                                       f->if_range->value_len, c->etag,
                                                       strlen(c->etag), c->mtime)))
        return;
    int rc = static_range_parse(f->range->value, f->range->value_len, c->size, &first, &last);
    if (rc == STATIC_RANGE_OK) {
        r->status = 206;
        r->offset = first;
        r->length = last - first + 1;
        static_content_range(r->range, sizeof r->range, first, last, c->size);
    } else if (rc == STATIC_RANGE_UNSATISFIABLE) {
        bool vary = r->vary; /* the 416 depends on the coding picked too */
        fail(r, r->fd, 416);
        r->vary = vary;
        static_content_range_unsatisfied(r->range, sizeof r->range, c->size);
    }
}

/* The reply for content: 304 or 412 by the validators, else 200 or 206.
 * The reply owns c->fd afterwards (it closes it when it needs no body). */
static void answer_content(const struct target *t, struct static_reply *r, const struct content *c)
{
    const struct fields *f = &t->f;
    size_t etag_len = strnlen(c->etag, sizeof r->etag - 1); /* per request: no snprintf */
    memcpy(r->etag, c->etag, etag_len);
    r->etag[etag_len] = '\0';
    r->mtime = c->mtime;
    enum static_cond_result cond =
        static_cond_evaluate(&f->cond, c->etag, etag_len, c->mtime, true);
    if (cond == STATIC_COND_NOT_MODIFIED) {
        if (c->fd >= 0)
            close(c->fd);
        r->status = 304;
        return;
    }
    if (cond == STATIC_COND_PRECONDITION_FAILED) {
        bool vary = r->vary;
        fail(r, c->fd, 412);
        r->vary = vary;
        return;
    }
    r->fd = c->fd;
    r->length = c->size;
    r->type = c->type;
    apply_range(f, c, r);
    if (r->status == 200 && c->fields && c->fields->len)
        r->fields = c->fields;
    if (c->mem && (r->status == 200 || r->status == 206)) {
        r->body = c->mem + r->offset; /* memory bodies start where they are */
        r->offset = 0;
    }
}

/* ---- --header rules ---- */

/* What the rules give the path of the file sent (t->src: "/index.html"
 * for "/", or for a fallback), else the request's path (a listing, a
 * redirect); worked out once per request, and once per cache entry, which
 * keeps them in its fields. */
static void rules_for(struct static_site *site, struct target *t)
{
    char path[PATH_MAX + 2];
    size_t type_len;
    if (t->ruled)
        return;
    t->ruled = true;
    t->extra = NULL;
    t->rule_type = NULL;
    if (!site->cfg->rules.n)
        return;
    if (t->src)
        snprintf(path, sizeof path, "/%s", t->src);
    else
        snprintf(path, sizeof path, "/%s%s", t->rel, t->rel[0] && t->p.trailing_slash ? "/" : "");
    site->ruled.len = 0;
    site->ruled.who = 0;
    if (static_rules_fields(&site->cfg->rules, path, &site->ruled, &t->rule_type, &type_len) == 0 &&
        site->ruled.len)
        t->extra = &site->ruled;
}

/* The type a file is sent as: a rule's, else by its name. */
static const char *type_of(struct static_site *site, struct target *t, const char *src)
{
    t->src = src;
    rules_for(site, t);
    return t->rule_type ? t->rule_type : static_mime_type(src, strlen(src));
}

/* ---- codings ---- */

/* Send v, a variant of the requested file, in place of the original. */
static void answer_variant(struct target *t, struct static_reply *r, struct static_variant *v)
{
    char etag[STATIC_ETAG_MAX];
    r->encoding = v->enc;
    if (v->e) {
        struct static_cache_entry *e = v->e;
        t->src = e->orig ? e->orig : e->src; /* the original's path, for the rules */
        struct content c = {.fd = -1, .mem = e->body, .size = e->len, .etag = e->etag,
                            .type = e->type, .mtime = e->mtime, .fields = &e->fields};
        answer_content(t, r, &c);
        return;
    }
    static_etag_make(&v->st, etag, sizeof etag);
    struct content c = {.fd = v->fd, .size = (uint64_t)v->st.st_size, .etag = etag,
                        .type = v->type, .mtime = v->st.st_mtime};
    answer_content(t, r, &c);
}

/* A file was found (o): send a variant of it if one is wanted and there.
 * True when it was answered. */
static bool try_variant(struct static_site *site, struct target *t, struct static_reply *r,
                        const struct static_original *o)
{
    struct static_variant v;
    if (!t->probe || static_variant_find(site, t->key, t->key_len, o, &t->w, &v) <= 0)
        return false;
    answer_variant(t, r, &v);
    return true;
}

/* Accept-Encoding's weights. A list split over several field lines is
 * one list (RFC 9110 5.3): joined with commas first. */
static void accept_encoding(struct static_site *site, const struct http_request *req,
                            struct target *t)
{
    const struct http_header *ae = t->f.accept_encoding;
    const char *v = ae ? ae->value : NULL;
    size_t n = ae ? ae->value_len : 0;
    if (t->f.accept_encodings > 1) {
        struct http_buf *b = &site->loc; /* free until a Location is made */
        http_buf_reset(b);
        for (size_t i = 0; i < req->nheaders; i++) {
            const struct http_header *h = &req->headers[i];
            if (IS(h, "accept-encoding") && (http_buf_append(b, ",", b->len ? 1 : 0) < 0 ||
                                            http_buf_append(b, h->value, h->value_len) < 0))
                break;
        }
        v = b->p;
        n = b->len;
    }
    static_accept_encoding(v, n, ae != NULL, t->w.q);
}

/* Read what the request accepts; answer from a cached variant if the
 * cache already knows the pick. */
static bool codings(struct static_site *site, const struct http_request *req,
                    struct static_reply *r, struct target *t)
{
    struct static_variant v;
    t->probe = false;
    t->w.any = false;
    r->vary = static_variant_enabled(site->cfg);
    if (!r->vary || !t->f.accept_encoding) /* nothing to parse: the identity */
        return false;
    t->w.range = t->f.range != NULL;
    accept_encoding(site, req, t);
    t->w.any = static_encoding_pick(t->w.q, ~0u) > STATIC_ENC_IDENTITY;
    if (!t->w.any)
        return false;
    int rc = static_variant_cached(site, t->key, t->key_len, &t->w, &v);
    t->probe = rc == -ENOENT;
    if (rc <= 0)
        return false;
    answer_variant(t, r, &v);
    return true;
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

static struct static_cache_entry *cached(struct static_site *site, const struct target *t)
{
    bool fresh;
    uint64_t now = pf_loop_now(site->loop);
    struct static_cache_entry *e = static_cache_get(site->cache, t->key, t->key_len, now, &fresh);
    if (!e || fresh)
        return e;
    /* A stale file entry is still good if the file it came from is the
     * same file, unchanged: checked through the same confined open. */
    if (e->kind != STATIC_CACHE_FILE || !static_site_unchanged(site, e->src, &e->st)) {
        static_cache_drop(site->cache, e);
        return NULL;
    }
    static_cache_touch(e, now);
    return e;
}

static bool serve_cached(struct static_site *site, struct static_reply *r, struct target *t)
{
    struct static_cache_entry *e = cached(site, t);
    if (!e)
        return false;
    if (e->kind == STATIC_CACHE_LISTING) {
        r->vary = false;
        r->type = e->type;
        r->body = e->body;
        r->length = e->len;
        return true;
    }
    struct static_original o = {.src = e->src, .st = &e->st, .type = e->type, .mem = e->body,
                                .fd = -1};
    t->src = e->src;
    if (t->probe) {
        rules_for(site, t);
        o.extra = t->extra;
    }
    if (try_variant(site, t, r, &o))
        return true;
    if (t->probe && !(e = cached(site, t))) /* evicted by what the probe cached */
        return false;
    struct content c = {.fd = -1, .mem = e->body, .size = e->len, .etag = e->etag,
                        .type = e->type, .mtime = e->mtime, .fields = &e->fields};
    answer_content(t, r, &c);
    return true;
}

/* Read a small file whole into the cache; NULL if it cannot be cached. */
static struct static_cache_entry *cache_file(struct static_site *site, struct target *t,
                                           int fd, const struct stat *st, const char *src)
{
    /* Only what was read from an unchanged file is cached. */
    if (!static_cache_wants(site->cache, (uint64_t)st->st_size) ||
        static_site_read(fd, st, &site->body) < 0)
        return NULL;
    struct static_cache_entry *e =
        static_cache_put(site->cache, t->key, t->key_len, STATIC_CACHE_FILE, site->body.p,
                         site->body.len, src, pf_loop_now(site->loop));
    if (!e)
        return NULL;
    e->st = *st;
    e->mtime = st->st_mtime;
    e->type = type_of(site, t, src);
    static_etag_make(st, e->etag, sizeof e->etag);
    static_variant_fields(e, static_variant_enabled(site->cfg), t->extra);
    return e;
}

/* ---- files and directories ---- */

static void serve_file(struct static_site *site, struct static_reply *r, struct target *t, int fd,
                       const struct stat *st, const char *src)
{
    char etag[STATIC_ETAG_MAX];
    const char *type = type_of(site, t, src);
    struct static_original o = {.src = src, .st = st, .type = type, .fd = fd, .extra = t->extra};
    struct static_cache_entry *e = cache_file(site, t, fd, st, src);
    if (e)
        o.mem = e->body;
    if (try_variant(site, t, r, &o)) {
        close(fd);
        return;
    }
    if (e && (!t->probe || (e = cached(site, t)) != NULL)) { /* still there after a probe */
        close(fd);
        struct content c = {.fd = -1, .mem = e->body, .size = e->len, .etag = e->etag,
                            .type = e->type, .mtime = e->mtime, .fields = &e->fields};
        answer_content(t, r, &c);
        return;
    }
    static_etag_make(st, etag, sizeof etag);
    struct content c = {.fd = fd, .size = (uint64_t)st->st_size, .etag = etag, .type = type,
                        .mtime = st->st_mtime};
    answer_content(t, r, &c);
}

/* "/a b/" -> "/a%20b/" plus the query, for the Location of a 301. */
static void redirect_to_slash(struct static_site *site, const struct http_request *req,
                              struct static_reply *r, const char *rel)
{
    const char *q = memchr(req->path, '?', req->path_len);
    size_t qlen = q ? req->path_len - (size_t)(q - req->path) : 0;
    char enc[PATH_MAX * 3 + 2];
    enc[0] = '/';
    size_t n = 1 + static_url_encode_path(rel, strlen(rel), enc + 1, sizeof enc - 2);
    enc[n++] = '/';
    static_reply_error(r, 301);
    http_buf_reset(&site->loc);
    if (http_buf_append(&site->loc, enc, n) < 0 ||
        (qlen && http_buf_append(&site->loc, q, qlen) < 0)) {
        static_reply_error(r, 500);
        return;
    }
    r->location = site->loc.p;
    r->location_len = site->loc.len;
}

static void serve_listing(struct static_site *site, struct static_reply *r,
                          const struct target *t, int dirfd)
{
    char url[PATH_MAX + 2];
    snprintf(url, sizeof url, "/%s%s", t->rel, t->rel[0] ? "/" : "");
    http_buf_reset(&site->body);
    int err = static_listing_render(dirfd, url, site->cfg->dotfiles, &site->body);
    close(dirfd);
    if (err < 0) {
        static_reply_error(r, open_error_status(err));
        return;
    }
    r->vary = false;
    r->type = "text/html; charset=utf-8";
    r->body = site->body.p;
    r->length = site->body.len;
    struct static_cache_entry *e =
        static_cache_put(site->cache, t->key, t->key_len, STATIC_CACHE_LISTING, site->body.p,
                       site->body.len, NULL, pf_loop_now(site->loop));
    if (e)
        e->type = r->type;
}

static void serve_directory(struct static_site *site, const struct http_request *req,
                            struct static_reply *r, struct target *t, int dirfd)
{
    if (!t->p.trailing_slash && t->rel[0]) {
        close(dirfd);
        redirect_to_slash(site, req, r, t->rel);
        return;
    }
    char index[PATH_MAX];
    struct stat st;
    int fd;
    int n = snprintf(index, sizeof index, "%s%s%s", t->rel, t->rel[0] ? "/" : "",
                     site->cfg->index);
    if (n > 0 && (size_t)n < sizeof index && static_site_open(site, index, &fd) == 0) {
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            close(dirfd);
            serve_file(site, r, t, fd, &st, index);
            return;
        }
        close(fd);
    }
    if (!site->cfg->listing) {
        fail(r, dirfd, 403);
        return;
    }
    serve_listing(site, r, t, dirfd);
}

/* Decode and check the path: false (with the error reply made) if refused. */
static bool resolve(struct static_site *site, const struct http_request *req,
                    struct static_reply *r, struct target *t)
{
    /* An absolute-form target may have an empty path: that is "/". */
    const char *path = req->path_len && req->path[0] == '/' ? req->path : "/";
    size_t plen = path == req->path ? req->path_len : 1;
    int err = static_path_decode(path, plen, t->rel, sizeof t->rel, &t->p);
    if (err < 0) {
        static_reply_error(r, err == -ENAMETOOLONG ? 414 : 400);
        return false;
    }
    if (t->p.has_dot_segment && !site->cfg->dotfiles) {
        static_reply_error(r, 404);
        return false;
    }
    make_key(t);
    return true;
}

/* ---- a single-page app's fallback, and error pages ---- */

/* --fallback: a path that is missing (err), whose last segment has no
 * extension and which is under no --fallback-except prefix, is a client
 * side route: t becomes the fallback file. */
static bool fall_back(struct static_site *site, struct target *t, int err)
{
    const struct static_config *cfg = site->cfg;
    const char *last = strrchr(t->rel, '/');
    if (!cfg->fallback || (err != -ENOENT && err != -ENOTDIR) ||
        strchr(last ? last + 1 : t->rel, '.'))
        return false;
    char path[PATH_MAX + 2];
    snprintf(path, sizeof path, "/%s%s", t->rel, t->p.trailing_slash ? "/" : "");
    for (unsigned i = 0; i < cfg->nfallback_except; i++)
        if (strncmp(path, cfg->fallback_except[i], strlen(cfg->fallback_except[i])) == 0)
            return false;
    snprintf(t->rel, sizeof t->rel, "%s", cfg->fallback);
    t->p.trailing_slash = false;
    t->ruled = false;
    make_key(t);
    return true;
}

/* --error-page: the file for r's status becomes its body, the status
 * staying; without one (or if it cannot be read now), the core's page. */
static void error_page(struct static_site *site, struct static_reply *r)
{
    const char *rel = r->page && r->status >= 400 && r->status < 400 + STATIC_ERROR_PAGES
                          ? site->cfg->error_page[r->status - 400]
                          : NULL;
    struct target t = {.ruled = true};
    struct stat st;
    int fd;
    if (!rel)
        return;
    snprintf(t.rel, sizeof t.rel, "%s", rel);
    make_key(&t);
    struct static_cache_entry *e = cached(site, &t);
    if (!e || e->kind != STATIC_CACHE_FILE) {
        if (static_site_open(site, rel, &fd) < 0)
            return;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return;
        }
        if (!(e = cache_file(site, &t, fd, &st, rel))) {
            r->fd = fd;
            r->length = (uint64_t)st.st_size;
            r->type = static_mime_type(rel, strlen(rel));
            r->page = false;
            return;
        }
        close(fd);
    }
    r->body = e->body;
    r->length = e->len;
    r->type = e->type;
    r->page = false;
}

/* Decide the response to t into r: from the cache, or the files. */
static void serve_target(struct static_site *site, const struct http_request *req,
                         struct static_reply *r, struct target *t)
{
    struct stat st;
    int fd;
    if (codings(site, req, r, t) || serve_cached(site, r, t))
        return;
    int err = static_site_open(site, t->rel, &fd);
    if (err < 0 && fall_back(site, t, err)) {
        serve_target(site, req, r, t); /* once: the fallback has an extension */
        return;
    }
    if (err < 0) {
        static_reply_error(r, open_error_status(err));
        return;
    }
    if (fstat(fd, &st) < 0)
        fail(r, fd, 500);
    else if (S_ISDIR(st.st_mode))
        serve_directory(site, req, r, t, fd);
    else if (!S_ISREG(st.st_mode) || t->p.trailing_slash)
        fail(r, fd, S_ISREG(st.st_mode) ? 404 : 403); /* "file/", FIFOs, devices */
    else
        serve_file(site, r, t, fd, &st, t->rel);
}

/* Decide the response to req into r. */
static void decide(struct static_site *site, const struct http_request *req, struct static_reply *r)
{
    struct target t;
    if (!method_ok(req, r) || !resolve(site, req, r, &t)) {
        error_page(site, r);
        return;
    }
    t.ruled = false;
    t.src = NULL;
    find_fields(req, &t.f);
    serve_target(site, req, r, &t);
    if (r->status >= 400) {
        error_page(site, r);
    } else if (!r->fields && site->cfg->rules.n) {
        rules_for(site, &t); /* a whole cached file's fields have them already */
        r->extra = t.extra;
        if (t.rule_type && r->type && !r->fields)
            r->type = t.rule_type;
    }
}

void static_handle(struct http_exchange *x, void *ud)
{
    struct static_reply r;
    static_reply_init(&r);
    decide(ud, http_ex_request(x), &r);
    static_reply_emit(x, &r);
}
