/* cache.h — a per-worker cache of small responses (file contents, listings), fresh for a bounded time. */
#ifndef PF_STATIC_CACHE_H
#define PF_STATIC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "http/http.h"
#include "static/cond.h"

/*
 * Why: a cache hit is answered with one read and one send, where a miss
 * costs an open, a stat, a read and a close as well.
 *
 * The bound: an entry is used as it is for at most `ttl_ms` after it was
 * last checked. After that, a file entry is checked again (the file is
 * opened through the same confined path and its device, inode, size and
 * nanosecond mtime compared; for a precompressed variant, its original
 * too) and a listing or an absent variant is looked for again. So a
 * changed, replaced or deleted file is served stale for at most ttl_ms.
 *
 * Memory: entries are evicted least recently used first to stay within
 * max_bytes (bodies and keys). One cache per worker: no locking.
 */

/* FILE: a file's bytes (or a coding of them: see encoding); LISTING: a
 * directory's page; ABSENT: a coding probed for and not found (no body). */
enum static_cache_kind { STATIC_CACHE_FILE, STATIC_CACHE_LISTING, STATIC_CACHE_ABSENT };

struct static_cache_entry {
    enum static_cache_kind kind;
    char *body;            /* the content (owned by the entry) */
    size_t len;
    const char *type;      /* Content-Type (static string) */
    char etag[STATIC_ETAG_MAX]; /* FILE: the validators */
    time_t mtime;
    struct stat st;        /* FILE: what a later check compares */
    char *src;             /* FILE: the path opened, relative to the root */
    int encoding;          /* FILE: the content coding of body (STATIC_ENC_*) */
    bool made;             /* FILE: compressed by the server (never for a range) */
    char *orig;            /* a precompressed FILE (src is FILE.br) or an ABSENT
                              entry: the original file, also checked again */
    struct stat orig_st;
    uint64_t checked_ms;   /* monotonic time of the last check */
    /* FILE: a whole-file 200's fields, checked once (the owner fills them
     * in; freed with the entry; their bytes are not in the cache's count) */
    struct http_fields fields;
    /* private */
    char *key;
    size_t key_len;
    uint64_t hash;
    struct static_cache_entry *chain, *newer, *older;
};

struct static_cache;

/* max_bytes 0 or ttl_ms 0 makes a cache that stores nothing. NULL if out of
 * memory. */
struct static_cache *static_cache_new(size_t max_bytes, unsigned ttl_ms);
void static_cache_free(struct static_cache *c);

/* The entry for key, or NULL. *fresh tells whether it was checked less than
 * ttl_ms before now_ms; a stale one must be checked (static_cache_touch) or
 * dropped before use. A hit makes the entry the most recently used. */
struct static_cache_entry *static_cache_get(struct static_cache *c, const char *key,
                                        size_t key_len, uint64_t now_ms, bool *fresh);

/* Store a copy of body (and of src, the file's path, or NULL) under key,
 * replacing an entry with the same key, and return the entry for the
 * caller to fill type and validators. A body may take up to a quarter of
 * the budget (files read from disk are held to static_cache_wants; a
 * compressed body has no file to be sent from). NULL when it does not fit
 * or memory is short (then nothing is cached). */
struct static_cache_entry *static_cache_put(struct static_cache *c, const char *key,
                                        size_t key_len, enum static_cache_kind kind,
                                        const void *body, size_t len, const char *src,
                                        uint64_t now_ms);

/* Mark an entry checked now, or drop it. */
void static_cache_touch(struct static_cache_entry *e, uint64_t now_ms);
void static_cache_drop(struct static_cache *c, struct static_cache_entry *e);

/* Whether a file of this size is worth caching at all (bigger ones go out
 * with sendfile), and whether a body this big can be cached. */
bool static_cache_wants(const struct static_cache *c, uint64_t size);
bool static_cache_fits(const struct static_cache *c, uint64_t size);

/* Set e->orig (a copy of path). 0 or -ENOMEM. */
int static_cache_set_orig(struct static_cache *c, struct static_cache_entry *e, const char *path);

#endif
