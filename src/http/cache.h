/* cache.h — a per-worker cache of small responses (file contents, listings), fresh for a bounded time. */
#ifndef PF_HTTP_CACHE_H
#define PF_HTTP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "http/cond.h"

/*
 * Why: a cache hit is answered with one read and one send, where a miss
 * costs an open, a stat, a read and a close as well.
 *
 * The bound: an entry is used as it is for at most `ttl_ms` after it was
 * last checked. After that, a file entry is checked again (the file is
 * opened through the same confined path and its device, inode, size and
 * nanosecond mtime compared) and a listing is made again. So a changed,
 * replaced or deleted file is served stale for at most ttl_ms.
 *
 * Memory: entries are evicted least recently used first to stay within
 * max_bytes (bodies and keys). One cache per worker: no locking.
 */

enum http_cache_kind { HTTP_CACHE_FILE, HTTP_CACHE_LISTING };

struct http_cache_entry {
    enum http_cache_kind kind;
    char *body;            /* the content (owned by the entry) */
    size_t len;
    const char *type;      /* Content-Type (static string) */
    char etag[HTTP_ETAG_MAX]; /* FILE: the validators */
    time_t mtime;
    struct stat st;        /* FILE: what a later check compares */
    char *src;             /* FILE: the path opened, relative to the root */
    uint64_t checked_ms;   /* monotonic time of the last check */
    /* private */
    char *key;
    size_t key_len;
    uint64_t hash;
    struct http_cache_entry *chain, *newer, *older;
};

struct http_cache;

/* max_bytes 0 or ttl_ms 0 makes a cache that stores nothing. NULL if out of
 * memory. */
struct http_cache *http_cache_new(size_t max_bytes, unsigned ttl_ms);
void http_cache_free(struct http_cache *c);

/* The entry for key, or NULL. *fresh tells whether it was checked less than
 * ttl_ms before now_ms; a stale one must be checked (http_cache_touch) or
 * dropped before use. A hit makes the entry the most recently used. */
struct http_cache_entry *http_cache_get(struct http_cache *c, const char *key,
                                        size_t key_len, uint64_t now_ms, bool *fresh);

/* Store a copy of body (and of src, the file's path, or NULL) under key,
 * replacing an entry with the same key, and return the entry for the
 * caller to fill type and validators. NULL when it does not fit or memory
 * is short (then nothing is cached). */
struct http_cache_entry *http_cache_put(struct http_cache *c, const char *key,
                                        size_t key_len, enum http_cache_kind kind,
                                        const void *body, size_t len, const char *src,
                                        uint64_t now_ms);

/* Mark an entry checked now, or drop it. */
void http_cache_touch(struct http_cache_entry *e, uint64_t now_ms);
void http_cache_drop(struct http_cache *c, struct http_cache_entry *e);

/* Whether a file of this size is worth caching at all. */
bool http_cache_wants(const struct http_cache *c, uint64_t size);

#endif
