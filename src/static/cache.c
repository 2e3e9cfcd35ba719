/* cache.c — a per-worker cache of small responses: a chained hash table with an LRU list and a byte budget. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "static/cache.h"

#define CACHE_MAX_ITEM (64 * 1024) /* bigger files go out with sendfile */
#define CACHE_BUCKETS_MIN 64

struct static_cache {
    struct static_cache_entry **bucket;
    size_t nbuckets, count;
    size_t bytes, max_bytes;
    unsigned ttl_ms;
    struct static_cache_entry *newest, *oldest;
};

struct static_cache *static_cache_new(size_t max_bytes, unsigned ttl_ms)
{
    struct static_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max_bytes = ttl_ms ? max_bytes : 0;
    c->ttl_ms = ttl_ms;
    return c;
}

/* FNV-1a: short keys, no adversary gains from collisions beyond a longer
 * chain, since the table grows with the entry count and the budget caps it. */
static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void lru_unlink(struct static_cache *c, struct static_cache_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(struct static_cache *c, struct static_cache_entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (!c->oldest)
        c->oldest = e;
}

static size_t cost(const struct static_cache_entry *e)
{
    return sizeof *e + e->len + e->key_len + (e->src ? strlen(e->src) + 1 : 0) +
           (e->orig ? strlen(e->orig) + 1 : 0);
}

void static_cache_drop(struct static_cache *c, struct static_cache_entry *e)
{
    struct static_cache_entry **p = &c->bucket[e->hash & (c->nbuckets - 1)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    lru_unlink(c, e);
    c->bytes -= cost(e);
    c->count--;
    http_fields_free(&e->fields);
    free(e->body);
    free(e->key);
    free(e->src);
    free(e->orig);
    free(e);
}

void static_cache_free(struct static_cache *c)
{
    if (!c)
        return;
    while (c->oldest)
        static_cache_drop(c, c->oldest);
    free(c->bucket);
    free(c);
}

bool static_cache_fits(const struct static_cache *c, uint64_t size)
{
    return c && c->max_bytes && size <= c->max_bytes / 4;
}

bool static_cache_wants(const struct static_cache *c, uint64_t size)
{
    return size <= CACHE_MAX_ITEM && static_cache_fits(c, size);
}

int static_cache_set_orig(struct static_cache *c, struct static_cache_entry *e, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    c->bytes -= cost(e);
    free(e->orig);
    e->orig = copy;
    c->bytes += cost(e);
    return 0;
}

struct static_cache_entry *static_cache_get(struct static_cache *c, const char *key,
                                        size_t key_len, uint64_t now_ms, bool *fresh)
{
    if (!c || !c->count)
        return NULL;
    uint64_t h = hash(key, key_len);
    struct static_cache_entry *e = c->bucket[h & (c->nbuckets - 1)];
    for (; e; e = e->chain)
        if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            break;
    if (!e)
        return NULL;
    *fresh = now_ms - e->checked_ms < c->ttl_ms;
    lru_unlink(c, e);
    lru_push(c, e);
    return e;
}

void static_cache_touch(struct static_cache_entry *e, uint64_t now_ms) { e->checked_ms = now_ms; }

/* Double the table when it holds more entries than buckets. */
static int grow(struct static_cache *c)
{
    if (c->count < c->nbuckets)
        return 0;
    size_t n = c->nbuckets ? c->nbuckets * 2 : CACHE_BUCKETS_MIN;
    struct static_cache_entry **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (struct static_cache_entry *e = c->oldest; e; e = e->newer) {
        e->chain = b[e->hash & (n - 1)];
        b[e->hash & (n - 1)] = e;
    }
    free(c->bucket);
    c->bucket = b;
    c->nbuckets = n;
    return 0;
}

static struct static_cache_entry *entry_new(const char *key, size_t key_len,
                                          enum static_cache_kind kind, const void *body,
                                          size_t len, const char *src)
{
    struct static_cache_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->kind = kind;
    e->key = malloc(key_len ? key_len : 1);
    e->body = malloc(len ? len : 1);
    e->src = src ? strdup(src) : NULL;
    if (!e->key || !e->body || (src && !e->src)) {
        free(e->key);
        free(e->body);
        free(e->src);
        free(e);
        return NULL;
    }
    memcpy(e->key, key, key_len);
    memcpy(e->body, body, len);
    e->key_len = key_len;
    e->len = len;
    e->hash = hash(key, key_len);
    return e;
}

struct static_cache_entry *static_cache_put(struct static_cache *c, const char *key,
                                        size_t key_len, enum static_cache_kind kind,
                                        const void *body, size_t len, const char *src,
                                        uint64_t now_ms)
{
    bool fresh;
    if (!static_cache_fits(c, len) || grow(c) < 0)
        return NULL;
    struct static_cache_entry *old = static_cache_get(c, key, key_len, now_ms, &fresh);
    if (old)
        static_cache_drop(c, old);
    struct static_cache_entry *e = entry_new(key, key_len, kind, body, len, src);
    if (!e)
        return NULL;
    while (c->oldest && c->bytes + cost(e) > c->max_bytes)
        static_cache_drop(c, c->oldest);
    e->checked_ms = now_ms;
    e->chain = c->bucket[e->hash & (c->nbuckets - 1)];
    c->bucket[e->hash & (c->nbuckets - 1)] = e;
    lru_push(c, e);
    c->bytes += cost(e);
    c->count++;
    return e;
}
