/* variant.c — content negotiation for a file: the client's Accept-Encoding against precompressed variants and the server's own compression, with what was found cached. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http/date.h"
#include "static/compress.h"
#include "static/variant.h"

bool static_variant_enabled(const struct static_config *cfg)
{
    return cfg->precompressed || cfg->compress_level;
}

/* A variant's cache key: the file's key, a NUL (which no path holds), and
 * the coding's digit. */
#define VKEY_MAX (PATH_MAX + 3)

static size_t variant_key(const char *key, size_t key_len, int enc, char *out)
{
    memcpy(out, key, key_len);
    out[key_len] = '\0';
    out[key_len + 1] = (char)('0' + enc);
    return key_len + 2;
}

enum found { FOUND, ABSENT, UNKNOWN };

/* A cached entry is checked again once stale: a variant (and for a
 * precompressed one, its original) must be the same unchanged file; an
 * absent one is looked for afresh. */
static bool revalidate(struct static_site *site, struct static_cache_entry *e, uint64_t now)
{
    if (e->kind == STATIC_CACHE_FILE && static_site_unchanged(site, e->src, &e->st) &&
        (!e->orig || static_site_unchanged(site, e->orig, &e->orig_st))) {
        static_cache_touch(e, now);
        return true;
    }
    static_cache_drop(site->cache, e);
    return false;
}

/* What the cache knows of coding enc for key. */
static enum found lookup(struct static_site *site, const char *key, size_t key_len, int enc,
                         const struct static_want *w, struct static_cache_entry **out)
{
    char vkey[VKEY_MAX];
    bool fresh;
    uint64_t now = pf_loop_now(site->loop);
    size_t n = variant_key(key, key_len, enc, vkey);
    struct static_cache_entry *e = static_cache_get(site->cache, vkey, n, now, &fresh);
    if (!e || (!fresh && !revalidate(site, e, now)))
        return UNKNOWN;
    if (e->kind != STATIC_CACHE_FILE || (e->made && w->range))
        return ABSENT;
    *out = e;
    return FOUND;
}

static unsigned candidates(const struct static_want *w)
{
    unsigned have = 0;
    for (int e = STATIC_ENC_IDENTITY + 1; e < STATIC_ENC_N; e++)
        if (w->q[e] > 0)
            have |= 1u << e;
    return have;
}

static void found_entry(struct static_variant *v, struct static_cache_entry *e)
{
    memset(v, 0, sizeof *v);
    v->enc = e->encoding;
    v->e = e;
    v->fd = -1;
    v->type = e->type;
}

/* ---- finding and making variants ---- */

/* What static_variant_find works from: the original, copied out of the
 * cache (whose entries the puts below may evict). */
struct probe {
    struct static_site *site;
    const char *key;
    size_t key_len;
    char src[PATH_MAX];
    struct stat st;
    const char *type;
    const char *mem; /* the original's bytes (site->raw), or NULL: read fd */
    int fd;
    const struct http_fields *extra;
};

static struct static_cache_entry *put(struct probe *p, int enc, enum static_cache_kind kind,
                                      const char *src, const void *body, size_t len)
{
    char vkey[VKEY_MAX];
    size_t n = variant_key(p->key, p->key_len, enc, vkey);
    struct static_cache_entry *e = static_cache_put(p->site->cache, vkey, n, kind, body, len, src,
                                                    pf_loop_now(p->site->loop));
    if (e) {
        e->encoding = enc;
        e->type = p->type;
        e->mtime = p->st.st_mtime;
    }
    return e;
}

/* Remember that enc has no variant, so the next requests do not look. */
static void put_absent(struct probe *p, int enc)
{
    put(p, enc, STATIC_CACHE_ABSENT, NULL, "", 0);
}

/* FILE.br (.zst, .gz) beside the original: 1 (v filled), 0 none (cache
 * that), -EAGAIN none for now (an error that may pass: cache nothing). */
static int precompressed(struct probe *p, int enc, struct static_variant *v)
{
    char path[PATH_MAX];
    struct stat st;
    int fd;
    int n = snprintf(path, sizeof path, "%s%s", p->src, static_encoding_suffix(enc));
    if (n < 0 || (size_t)n >= sizeof path)
        return 0;
    int err = static_site_open(p->site, path, &fd);
    if (err < 0)
        return err == -EMFILE || err == -ENFILE || err == -ENOMEM ? -EAGAIN : 0;
    /* Older by a whole second: left by an earlier build. Within the same
     * second is not older: tools that copy the original's time to what
     * they write (brotli, gzip -k) may keep whole seconds only. */
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime >= p->st.st_mtime;
    if (!ok) {
        close(fd);
        return 0;
    }
    memset(v, 0, sizeof *v);
    v->enc = enc;
    v->fd = fd;
    v->st = st;
    v->type = p->type;
    struct http_buf *b = &p->site->packed;
    if (!static_cache_wants(p->site->cache, (uint64_t)st.st_size) ||
        static_site_read(fd, &st, b) < 0)
        return 1; /* sent from the file */
    struct static_cache_entry *e = put(p, enc, STATIC_CACHE_FILE, path, b->p, b->len);
    http_buf_reset(b);
    if (!e || static_cache_set_orig(p->site->cache, e, p->src) < 0) {
        if (e)
            static_cache_drop(p->site->cache, e);
        return 1;
    }
    e->st = st;
    e->orig_st = p->st;
    e->mtime = st.st_mtime;
    static_etag_make(&st, e->etag, sizeof e->etag);
    static_variant_fields(e, true, p->extra);
    close(fd);
    found_entry(v, e);
    return 1;
}

/* The original's ETag with the coding's name inside the quotes:
 * "ino-size-mtime-gzip", so that each coding has its own. */
static void made_etag(const struct stat *st, int enc, char *out, size_t cap)
{
    size_t n = static_etag_make(st, out, cap);
    const char *name = static_encoding_name(enc);
    if (n >= 2 && n + 1 + strlen(name) < cap)
        snprintf(out + n - 1, cap - (n - 1), "-%s\"", name);
}

/* Compress the original here (gzip or br): 1 (v filled) or 0. */
static int make(struct probe *p, int enc, const struct static_want *w, struct static_variant *v)
{
    const struct static_config *cfg = p->site->cfg;
    struct static_site *site = p->site;
    uint64_t size = (uint64_t)p->st.st_size;
    if (!cfg->compress_level || w->range || !static_compressible(p->type) ||
        size < STATIC_COMPRESS_MIN || !static_cache_fits(site->cache, size))
        return 0;
    if (!p->mem) {
        if (static_site_read(p->fd, &p->st, &site->raw) < 0)
            return 0;
        p->mem = site->raw.p;
    }
    http_buf_reset(&site->packed);
    if (static_compress(enc, (int)cfg->compress_level, p->mem, (size_t)size, &site->packed) < 0)
        return 0;
    struct static_cache_entry *e =
        put(p, enc, STATIC_CACHE_FILE, p->src, site->packed.p, site->packed.len);
    http_buf_reset(&site->packed);
    if (!e)
        return 0;
    e->made = true;
    e->st = p->st;
    made_etag(&p->st, enc, e->etag, sizeof e->etag);
    static_variant_fields(e, true, p->extra);
    found_entry(v, e);
    return 1;
}

static int probe_one(struct probe *p, int enc, const struct static_want *w,
                     struct static_variant *v)
{
    bool makes = (enc == STATIC_ENC_GZIP || enc == STATIC_ENC_BR) && p->site->cfg->compress_level;
    int rc = p->site->cfg->precompressed ? precompressed(p, enc, v) : 0;
    if (rc == 0 && makes)
        rc = make(p, enc, w, v);
    /* Not found: remembered, unless it may pass, or a range request kept
     * it from being made (a whole request will make it). */
    if (rc == 0 && !(makes && w->range))
        put_absent(p, enc);
    return rc > 0;
}

/* The codings in the client's order of preference, each from the cache or
 * (with p) looked for and made: 1 with v filled, 0 for the original,
 * -ENOENT when, without p, the cache does not know one. */
static int choose(struct static_site *site, const char *key, size_t key_len,
                  const struct static_want *w, struct probe *p, struct static_variant *v)
{
    unsigned have = candidates(w);
    for (;;) {
        int enc = static_encoding_pick(w->q, have);
        if (enc <= STATIC_ENC_IDENTITY)
            return 0;
        struct static_cache_entry *e;
        enum found f = lookup(site, key, key_len, enc, w, &e);
        if (f == FOUND) {
            found_entry(v, e);
            return 1;
        }
        if (f == UNKNOWN && !p)
            return -ENOENT;
        if (f == UNKNOWN && probe_one(p, enc, w, v))
            return 1;
        have &= ~(1u << enc);
    }
}

int static_variant_cached(struct static_site *site, const char *key, size_t key_len,
                          const struct static_want *w, struct static_variant *v)
{
    return choose(site, key, key_len, w, NULL, v);
}

int static_variant_find(struct static_site *site, const char *key, size_t key_len,
                        const struct static_original *o, const struct static_want *w,
                        struct static_variant *v)
{
    struct probe p = {.site = site, .key = key, .key_len = key_len, .st = *o->st,
                      .type = o->type, .fd = o->fd, .extra = o->extra};
    size_t n = strlen(o->src);
    if (n >= sizeof p.src)
        return 0;
    memcpy(p.src, o->src, n + 1);
    if (o->mem) {
        http_buf_reset(&site->raw);
        if (http_buf_append(&site->raw, o->mem, (size_t)o->st->st_size) < 0)
            return 0;
        p.mem = site->raw.p;
    }
    int rc = choose(site, key, key_len, w, &p, v);
    http_buf_reset(&site->raw);
    return rc;
}

/* ---- the fields of a cached whole-file 200 ---- */

#define FIELD(f, lit, v, n) http_fields_add(f, lit, sizeof lit - 1, v, n)

void static_variant_fields(struct static_cache_entry *e, bool vary,
                           const struct http_fields *extra)
{
    char date[HTTP_DATE_LEN + 1];
    struct http_fields *f = &e->fields;
    const char *coding = static_encoding_name(e->encoding);
    int err = 0;
    http_fields_free(f);
    if (e->type)
        err |= FIELD(f, "Content-Type", e->type, strlen(e->type));
    if (e->mtime && http_date_format(e->mtime, date))
        err |= FIELD(f, "Last-Modified", date, HTTP_DATE_LEN);
    err |= FIELD(f, "ETag", e->etag, strlen(e->etag));
    err |= FIELD(f, "Accept-Ranges", "bytes", 5);
    if (e->encoding != STATIC_ENC_IDENTITY)
        err |= FIELD(f, "Content-Encoding", coding, strlen(coding));
    if (vary)
        err |= FIELD(f, "Vary", "Accept-Encoding", 15);
    if (extra)
        err |= http_fields_append(f, extra);
    if (err)
        http_fields_free(f);
}
