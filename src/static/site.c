/* site.c — the static site as a service on the HTTP core: its options, a worker's set-up (cache, sandbox), its end. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "static/cache.h"
#include "static/path.h"
#include "static/sandbox.h"
#include "static/site.h"

void static_config_init(struct static_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    http_config_init(&cfg->http);
    cfg->root = ".";
    cfg->rootfd = -1;
    cfg->index = "index.html";
    cfg->listing = true;
    cfg->cache_ttl_ms = 1000;
    cfg->cache_bytes = 8u << 20;
    cfg->precompressed = true;
    cfg->compress_level = 6;
}

#define FIELD(f) offsetof(struct static_config, f), sizeof(((struct static_config *)0)->f)

static const struct http_option options[] = {
    {"cache-ttl", FIELD(cache_ttl_ms), 0, 60000, 1, "must be milliseconds from 0 (off) to 60000"},
    {"cache-size", FIELD(cache_bytes), 0, 4096, 1u << 20, "must be MiB from 0 (off) to 4096"},
    {"compress-level", FIELD(compress_level), 1, 9, 1, "must be a level from 1 to 9"},
};

void static_config_free(struct static_config *cfg)
{
    static_rules_free(&cfg->rules);
    free(cfg->fallback);
    cfg->fallback = NULL;
    for (unsigned i = 0; i < cfg->nfallback_except; i++)
        free(cfg->fallback_except[i]);
    cfg->nfallback_except = 0;
    for (int i = 0; i < STATIC_ERROR_PAGES; i++) {
        free(cfg->error_page[i]);
        cfg->error_page[i] = NULL;
    }
}

/* A URL path naming a file ("/index.html") into a path from the root
 * ("index.html"), allocated; -EINVAL with *why for anything else. */
static int file_path(const char *value, char **out, const char **why)
{
    char rel[PATH_MAX];
    struct static_path p;
    if (value[0] != '/' || static_path_decode(value, strlen(value), rel, sizeof rel, &p) < 0 ||
        strchr(value, '?') || p.trailing_slash || !rel[0]) {
        *why = "must be the URL path of a file, such as /index.html";
        return -EINVAL;
    }
    char *copy = strdup(rel);
    if (!copy) {
        *why = "out of memory";
        return -ENOMEM;
    }
    free(*out);
    *out = copy;
    return 0;
}

static int set_fallback_except(struct static_config *cfg, const char *value, const char **why)
{
    if (value[0] != '/') {
        *why = "must be a URL path prefix, such as /api/";
        return -EINVAL;
    }
    if (cfg->nfallback_except == STATIC_FALLBACK_EXCEPT_MAX) {
        *why = "too many (at most 32)";
        return -E2BIG;
    }
    char *copy = strdup(value);
    if (!copy) {
        *why = "out of memory";
        return -ENOMEM;
    }
    cfg->fallback_except[cfg->nfallback_except++] = copy;
    return 0;
}

/* "404=/404.html" */
static int set_error_page(struct static_config *cfg, const char *value, const char **why)
{
    char *end;
    errno = 0;
    long status = strtol(value, &end, 10);
    if (end == value || *end != '=' || status < 400 || status > 599 || errno) {
        *why = "must be STATUS=PATH, a status from 400 to 599 and the URL path of a file";
        return -EINVAL;
    }
    return file_path(end + 1, &cfg->error_page[status - 400], why);
}

int static_config_set(struct static_config *cfg, const char *name, const char *value,
                      const char **why)
{
    if (strcmp(name, "fallback") == 0)
        return file_path(value, &cfg->fallback, why);
    if (strcmp(name, "fallback-except") == 0)
        return set_fallback_except(cfg, value, why);
    if (strcmp(name, "error-page") == 0)
        return set_error_page(cfg, value, why);
    int err = http_option_set(options, sizeof options / sizeof options[0], cfg, name, value, why);
    return err == -ENOENT ? http_config_set(&cfg->http, name, value, why) : err;
}

/* rel must open beneath the root as a regular file. */
static int check_file(const struct static_config *cfg, const char *option, const char *rel,
                      char *why, size_t why_len)
{
    struct static_site site = {.cfg = cfg};
    struct stat st;
    int fd, err = static_site_open(&site, rel, &fd);
    if (err == 0) {
        err = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EISDIR;
        close(fd);
    }
    if (err < 0)
        snprintf(why, why_len, "%s '/%s': %s", option, rel,
                 err == -EISDIR ? "not a regular file" : strerror(-err));
    return err;
}

int static_config_check(const struct static_config *cfg, char *why, size_t why_len)
{
    int err = cfg->fallback ? check_file(cfg, "--fallback", cfg->fallback, why, why_len) : 0;
    for (int i = 0; i < STATIC_ERROR_PAGES && err == 0; i++)
        if (cfg->error_page[i])
            err = check_file(cfg, "--error-page", cfg->error_page[i], why, why_len);
    return err;
}

int static_site_open(const struct static_site *site, const char *rel, int *fd)
{
    unsigned mode = site->cfg->follow_symlinks ? STATIC_OPEN_FOLLOW_OUTSIDE : 0;
    return static_open_beneath(site->cfg->rootfd, rel, O_RDONLY, mode, fd);
}

bool static_site_unchanged(const struct static_site *site, const char *rel,
                           const struct stat *st)
{
    struct stat now;
    int fd;
    if (static_site_open(site, rel, &fd) < 0)
        return false;
    bool same = fstat(fd, &now) == 0 && S_ISREG(now.st_mode) && now.st_dev == st->st_dev &&
                now.st_ino == st->st_ino && now.st_size == st->st_size &&
                now.st_mtim.tv_sec == st->st_mtim.tv_sec &&
                now.st_mtim.tv_nsec == st->st_mtim.tv_nsec;
    close(fd);
    return same;
}

int static_site_read(int fd, const struct stat *st, struct http_buf *b)
{
    size_t size = (size_t)st->st_size;
    struct stat after;
    http_buf_reset(b);
    if (http_buf_reserve(b, size) < 0)
        return -ENOMEM;
    if (pread(fd, b->p, size, 0) != (ssize_t)size)
        return -EIO;
    if (fstat(fd, &after) < 0 || after.st_size != st->st_size ||
        after.st_mtim.tv_sec != st->st_mtim.tv_sec || after.st_mtim.tv_nsec != st->st_mtim.tv_nsec)
        return -EAGAIN;
    b->len = size;
    return 0;
}

/* One site per worker process. */
static struct static_site site;
static struct http_handler handler;

/* Last in a worker's set-up: give up the rest of the file system. */
static int sandbox(const struct static_config *cfg)
{
    int abi = static_sandbox_apply(cfg);
    if (abi < 0)
        pf_log(PF_LOG_ERROR, "landlock (sandboxing the worker): %s", strerror(-abi));
    else if (abi == 0)
        pf_log(PF_LOG_DEBUG, "no Landlock in this kernel: the worker is not sandboxed");
    else
        pf_log(PF_LOG_DEBUG, "sandboxed (Landlock ABI %d): reads beneath %s, writes to the logs%s",
               abi, cfg->follow_symlinks ? "/" : cfg->root,
               abi >= 6 ? ", signals no other process" : "");
    return abi < 0 ? abi : 0;
}

static int site_init(struct http_server *s, void *ud)
{
    struct static_site *st = ud;
    const struct static_config *cfg = st->cfg;
    st->loop = http_server_loop(s);
    st->cache = static_cache_new(cfg->cache_bytes, cfg->cache_ttl_ms);
    if (!st->cache)
        return -ENOMEM;
    return sandbox(cfg);
}

static void site_fini(void *ud)
{
    struct static_site *st = ud;
    static_cache_free(st->cache);
    st->cache = NULL;
    http_buf_free(&st->body);
    http_buf_free(&st->loc);
    http_buf_free(&st->raw);
    http_buf_free(&st->packed);
    http_fields_free(&st->ruled);
}

void static_service(struct static_config *cfg, struct pf_service *svc)
{
    memset(&site, 0, sizeof site);
    site.cfg = cfg;
    handler = (struct http_handler){.init = site_init, .request = static_handle,
                                    .fini = site_fini, .ud = &site};
    http_service(&cfg->http, &handler, svc);
}
