/* site.h — the static site: `prefork serve`'s options, its per-worker state, and the handler it gives the HTTP core. */
#ifndef PF_STATIC_SITE_H
#define PF_STATIC_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "prefork.h"
#include "http/buf.h"
#include "http/http.h"
#include "static/rules.h"

#define STATIC_FALLBACK_EXCEPT_MAX 32
#define STATIC_ERROR_PAGES 200 /* statuses 400 to 599 */

/* What `prefork serve` was asked for. Filled by static_config_init and the
 * CLI; read-only once the pool runs (each worker has its copy after fork). */
struct static_config {
    struct http_config http;      /* the core's: limits, timeouts, access log */
    const char *root;             /* the document root, as given */
    int rootfd;                   /* opened by the master: O_PATH | O_DIRECTORY */
    const char *index;            /* file served for a directory: "index.html" */
    bool listing;                 /* directory listings where there is no index */
    bool dotfiles;                /* serve names that start with '.' */
    bool follow_symlinks;         /* follow symlinks that leave the root */
    const char *error_log_path;   /* --error-log, reopened on USR1; NULL: stderr */
    unsigned cache_ttl_ms;        /* small responses reused for this long (0: off) */
    size_t cache_bytes;           /* per worker */
    bool precompressed;           /* send FILE.br, .zst, .gz when accepted (variant.h) */
    unsigned compress_level;      /* compress text here, gzip and br at this
                                     level (1-9); 0: never */
    struct static_rules rules;    /* --header, --header-add: fields by path */
    char *fallback;               /* --fallback: what a missing client-side route
                                     gets, a path from the root; NULL: none */
    char *fallback_except[STATIC_FALLBACK_EXCEPT_MAX]; /* path prefixes ("/api/") */
    unsigned nfallback_except;
    char *error_page[STATIC_ERROR_PAGES]; /* --error-page, by status - 400 */
};


void static_config_init(struct static_config *cfg);

/* Release what the options allocated (rules, paths). */
void static_config_free(struct static_config *cfg);

/* After the root is open: every file an option names (--fallback,
 * --error-page) must be a regular file beneath it. 0, or -errno with why
 * filled. */
int static_config_check(const struct static_config *cfg, char *why, size_t why_len);

/* Set one option from text by its command-line long name: cache-ttl (ms),
 * cache-size (MiB), compress-level (1-9), fallback (a URL path such as
 * /index.html), fallback-except (a path prefix, repeatable), error-page
 * (STATUS=PATH, 400-599, repeatable), or any of the core's
 * (http_config_set). Returns 0,
 * -ENOENT (unknown name), or -EINVAL with *why set. */
int static_config_set(struct static_config *cfg, const char *name, const char *value,
                      const char **why);

/* The libprefork service that serves cfg (which must outlive the pool). */
void static_service(struct static_config *cfg, struct pf_service *svc);

/* ---- shared by the site's files ---- */

struct static_cache;

/* One per worker process: scratch for generated bodies, and the cache. */
struct static_site {
    const struct static_config *cfg;
    pf_loop *loop;
    struct http_buf body;       /* a generated body (listing) */
    struct http_buf loc;        /* a Location value */
    struct http_buf raw;        /* a file read whole to be compressed */
    struct http_buf packed;     /* a compressed body, or a variant read whole */
    struct http_fields ruled;   /* the fields --header rules give a request */
    struct static_cache *cache; /* small files and listings, see cache.h */
};

/* Open rel (a path from the root) confined as the site's options say
 * (static_open_beneath). 0 with *fd set, or -errno. */
int static_site_open(const struct static_site *site, const char *rel, int *fd);

/* Read all of fd, which st describes, into b (emptied first): 0, -ENOMEM,
 * -EIO, or -EAGAIN when the file changed meanwhile (a write between the
 * stat and the read would pair these bytes with the old validators). */
int static_site_read(int fd, const struct stat *st, struct http_buf *b);

/* Whether rel still opens to the regular file st describes: the same
 * device and inode, size, and nanosecond mtime. */
bool static_site_unchanged(const struct static_site *site, const char *rel,
                           const struct stat *st);

/* The handler (handler.c). */
void static_handle(struct http_exchange *x, void *site);

#endif
