/* server.c — the static HTTP server as a libprefork service: options, per-worker set-up, draining. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/alog.h"
#include "http/cache.h"
#include "http/conn.h"
#include "http/sandbox.h"
#include "http/server.h"

#define ALOG_FLUSH_MS 1000

void http_config_init(struct http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->root = ".";
    cfg->rootfd = -1;
    cfg->index = "index.html";
    cfg->listing = true;
    http_limits_default(&cfg->limits);
    cfg->header_timeout_ms = 10000;
    cfg->keepalive_timeout_ms = 15000;
    cfg->send_timeout_ms = 30000;
    cfg->max_keepalive_requests = 1000;
    cfg->access_log_fd = -1;
    cfg->cache_ttl_ms = 1000;
    cfg->cache_bytes = 8u << 20;
}

static int parse_num(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

struct option_spec {
    const char *name;
    unsigned long lo, hi, scale; /* seconds options: scale 1000 into ms */
    const char *why;
};

static const struct option_spec specs[] = {
    {"header-timeout", 1, 3600, 1000, "must be whole seconds from 1 to 3600"},
    {"keepalive-timeout", 0, 3600, 1000, "must be whole seconds from 0 to 3600"},
    {"send-timeout", 1, 3600, 1000, "must be whole seconds from 1 to 3600"},
    {"max-header-bytes", 1024, 1 << 20, 1, "must be bytes from 1024 to 1048576"},
    {"max-uri-bytes", 64, 1 << 20, 1, "must be bytes from 64 to 1048576"},
    {"max-headers", 1, HTTP_MAX_HEADERS, 1, "must be a whole number from 1 to 256"},
    {"keepalive-requests", 0, 1000000000, 1, "must be a whole number (0: no limit)"},
    {"cache-ttl", 0, 60000, 1, "must be milliseconds from 0 (off) to 60000"},
    {"cache-size", 0, 4096, 1u << 20, "must be MiB from 0 (off) to 4096"},
};

static void store(struct http_config *cfg, size_t i, unsigned long v)
{
    switch (i) {
    case 0: cfg->header_timeout_ms = (unsigned)v; break;
    case 1: cfg->keepalive_timeout_ms = (unsigned)v; break;
    case 2: cfg->send_timeout_ms = (unsigned)v; break;
    case 3: cfg->limits.max_head = v; break;
    case 4: cfg->limits.max_target = v; break;
    case 5: cfg->limits.max_headers = v; break;
    case 6: cfg->max_keepalive_requests = (unsigned)v; break;
    case 7: cfg->cache_ttl_ms = (unsigned)v; break;
    default: cfg->cache_bytes = v; break;
    }
}

int http_config_set(struct http_config *cfg, const char *name, const char *value,
                    const char **why)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        unsigned long v;
        if (strcmp(name, specs[i].name) != 0)
            continue;
        if (parse_num(value, specs[i].lo, specs[i].hi, &v) < 0) {
            *why = specs[i].why;
            return -EINVAL;
        }
        store(cfg, i, v * specs[i].scale);
        return 0;
    }
    return -ENOENT;
}

/* ---- the service ---- */

/* One service per worker process, and a worker is single-threaded. */
static struct http_worker worker;
static pf_timer alog_timer;

static void on_alog_timer(pf_loop *loop, pf_timer *t, void *ud)
{
    http_alog_flush(ud);
    pf_timer_start(loop, t, ALOG_FLUSH_MS);
}

/* Last in a worker's set-up: give up the rest of the file system. */
static int sandbox(const struct http_config *cfg)
{
    int abi = http_sandbox_apply(cfg);
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

static int service_init(pf_worker *w, void *ud)
{
    const struct http_config *cfg = ud;
    struct http_worker *hw = &worker;
    memset(hw, 0, sizeof *hw);
    hw->cfg = cfg;
    hw->w = w;
    hw->loop = pf_worker_loop(w);
    hw->in_cap = cfg->limits.max_head;
    hw->in = malloc(hw->in_cap);
    if (!hw->in)
        return -ENOMEM;
    if (cfg->access_log_fd >= 0) {
        hw->alog = http_alog_new(cfg->access_log_fd, pf_worker_index(w));
        if (!hw->alog)
            return -ENOMEM;
        pf_timer_init(&alog_timer, on_alog_timer, hw->alog);
        pf_timer_start(hw->loop, &alog_timer, ALOG_FLUSH_MS);
    }
    hw->cache = http_cache_new(cfg->cache_bytes, cfg->cache_ttl_ms);
    if (!hw->cache)
        return -ENOMEM;
    return sandbox(cfg);
}

static void service_conn(pf_worker *w, int fd, const struct sockaddr *peer,
                         socklen_t peerlen, void *ud)
{
    (void)w, (void)ud;
    http_conn_open(&worker, fd, peer, peerlen);
}

static void service_drain(pf_worker *w, void *ud)
{
    (void)w, (void)ud;
    worker.draining = true;
    http_conn_drain_all(&worker);
}

/* USR1 (logrotate): what is buffered goes to the old file, the rest to a
 * new file at the same path, on the same descriptor number. */
static void service_reopen(pf_worker *w, void *ud)
{
    (void)w;
    const struct http_config *cfg = ud;
    if (!worker.alog || !cfg->access_log_path)
        return;
    http_alog_flush(worker.alog);
    int fd = open(cfg->access_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        pf_log(PF_LOG_ERROR, "reopening %s: %s", cfg->access_log_path, strerror(errno));
        return;
    }
    dup2(fd, cfg->access_log_fd);
    close(fd);
}

static void service_fini(pf_worker *w, void *ud)
{
    (void)w, (void)ud;
    http_alog_free(worker.alog);
    worker.alog = NULL;
    http_cache_free(worker.cache);
    worker.cache = NULL;
}

void http_service(struct http_config *cfg, struct pf_service *svc)
{
    memset(svc, 0, sizeof *svc);
    svc->init = service_init;
    svc->on_conn = service_conn;
    svc->on_drain = service_drain;
    svc->fini = service_fini;
    svc->on_reopen = service_reopen;
    svc->ud = cfg;
}
