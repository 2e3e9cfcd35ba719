/* variant.h — which content coding of a file to send: FILE.br, FILE.zst or FILE.gz beside it, or one the server compresses, cached per worker. */
#ifndef PF_STATIC_VARIANT_H
#define PF_STATIC_VARIANT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "static/cache.h"
#include "static/encoding.h"
#include "static/site.h"

/*
 * A file "app.js" may be sent as it is (identity) or in a coding the client
 * accepts: from "app.js.br", "app.js.zst" or "app.js.gz" when the site has
 * them (precompressed by its build), else compressed here, with gzip or
 * Brotli, when its type compresses. Among those found, the client's weights
 * decide, ties going to br, zstd, gzip, identity (static_encoding_pick).
 *
 * A precompressed variant is served only if it is a regular file opened
 * as confined as the original, and not older than the original by a
 * second or more (its mtime's second is not before the original's): a
 * variant left behind by an earlier build is never served in place of a
 * newer original. A variant whose original is missing is never looked at (the
 * original is found first). Ranges and conditionals apply to the variant
 * (its own ETag: another file); a coding made here is never used for a
 * range request, which gets the original.
 *
 * What was found, and what was not, is cached under the file's key with
 * the coding appended, with the cache's bound: a variant added, changed or
 * removed is seen within the cache's ttl.
 */

/* What the request accepts, read once per request. */
struct static_want {
    int q[STATIC_ENC_N]; /* static_accept_encoding's weights */
    bool range;          /* the request has a Range field */
    bool any;            /* some coding other than identity is wanted and the
                            site has codings on: worth looking */
};

/* The original, once found: its path (from the root), its stat, type, and
 * its bytes when they are in memory (mem, else read from fd). */
struct static_original {
    const char *src;
    const struct stat *st;
    const char *type;
    const char *mem;
    int fd;
    const struct http_fields *extra; /* fields --header rules give it, or NULL */
};

/* What to send instead of the original. */
struct static_variant {
    int enc;                       /* the coding (STATIC_ENC_*, not identity) */
    struct static_cache_entry *e;  /* its bytes in the cache, or NULL: */
    int fd;                        /* an open variant file the caller owns */
    struct stat st;                /* fd's */
    const char *type;              /* the original's Content-Type */
};

/* Whether the site makes or looks for codings at all. */
bool static_variant_enabled(const struct static_config *cfg);

/* From the cache alone: 1 with v filled (send it), 0 when the cache tells
 * that the original is the pick, -ENOENT when it cannot tell (find the
 * original, then static_variant_find). */
int static_variant_cached(struct static_site *site, const char *key, size_t key_len,
                          const struct static_want *w, struct static_variant *v);

/* With the original found: look for variants, compress when it pays, and
 * cache what was learnt. 1 with v filled, 0 to send the original. The
 * original's cache entry (when o->mem is its body) may be evicted by what
 * this caches: look it up again after a 0. */
int static_variant_find(struct static_site *site, const char *key, size_t key_len,
                        const struct static_original *o, const struct static_want *w,
                        struct static_variant *v);

/* The fields of a 200 for the whole of a cached file or variant, made once
 * per entry: Content-Type, Last-Modified, ETag, Accept-Ranges,
 * Content-Encoding (when coded), with vary Vary: Accept-Encoding, then
 * extra (a rule's, or NULL). Left empty if out of memory: the caller then
 * makes them per response. */
void static_variant_fields(struct static_cache_entry *e, bool vary,
                           const struct http_fields *extra);

#endif
