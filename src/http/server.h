/* server.h — the static HTTP/1.1 server as a libprefork service: its options and per-worker state. */
#ifndef PF_HTTP_SERVER_H
#define PF_HTTP_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "prefork.h"
#include "http/buf.h"
#include "http/parse.h"

/* What `prefork serve` was asked for. Filled by http_config_init and the CLI;
 * read-only once the pool runs (each worker has its copy after fork). */
/* Header fields one request may have, at most (the option's upper bound). */
#define HTTP_MAX_HEADERS 256

struct http_config {
    const char *root;             /* the document root, as given */
    int rootfd;                   /* opened by the master: O_PATH | O_DIRECTORY */
    const char *index;            /* file served for a directory: "index.html" */
    bool listing;                 /* directory listings where there is no index */
    bool dotfiles;                /* serve names that start with '.' */
    bool follow_symlinks;         /* follow symlinks that leave the root */
    struct http_limits limits;    /* head bytes (431), target (414), fields (431) */
    unsigned header_timeout_ms;   /* a request head must arrive within this */
    unsigned keepalive_timeout_ms;/* an idle connection is closed after this */
    unsigned send_timeout_ms;     /* a response making no progress is dropped */
    unsigned max_keepalive_requests; /* then Connection: close (0 = unlimited) */
    int access_log_fd;            /* opened by the master; -1 = off */
    const char *access_log_path;  /* reopened on USR1; NULL: not a file */
    const char *error_log_path;   /* --error-log, reopened on USR1; NULL: stderr */
    unsigned cache_ttl_ms;        /* small responses reused for this long (0: off) */
    size_t cache_bytes;           /* per worker */
};

void http_config_init(struct http_config *cfg);

/* Set one option from text by its command-line long name (header-timeout,
 * keepalive-timeout, send-timeout, max-header-bytes, max-uri-bytes,
 * max-headers, keepalive-requests, cache-ttl (ms), cache-size (MiB)).
 * Returns 0, -ENOENT (unknown name), or -EINVAL with *why set. */
int http_config_set(struct http_config *cfg, const char *name, const char *value,
                    const char **why);

/* The libprefork service that serves cfg (which must outlive the pool). */
void http_service(struct http_config *cfg, struct pf_service *svc);

/* ---- shared by the server's files ---- */

struct http_conn;
struct http_alog;
struct http_cache;

/* One per worker process: scratch space shared by all its connections
 * (a worker serves one connection at a time, so they never overlap), and
 * the list of open connections for draining. */
struct http_worker {
    const struct http_config *cfg;
    pf_worker *w;
    pf_loop *loop;
    char *in;                 /* scratch for reads: cfg->limits.max_head bytes */
    size_t in_cap;
    struct http_buf out;      /* scratch for a response head and small body */
    struct http_buf body;     /* scratch for a generated body (listing, error) */
    struct http_buf loc;      /* scratch for a Location value */
    struct http_alog *alog;   /* NULL when the access log is off */
    struct http_cache *cache; /* small files and listings, see cache.h */
    struct http_conn *conns;  /* every open connection, for draining */
    bool draining;
};

#endif
