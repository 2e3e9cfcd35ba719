/* server.c — the core as a libprefork service: its options, a worker's server, the access log's timer and reopen, draining. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/alog.h"
#include "http/core.h"

#define ALOG_FLUSH_MS 1000

void http_config_init(struct http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    http_limits_default(&cfg->limits);
    cfg->header_timeout_ms = 10000;
    cfg->keepalive_timeout_ms = 15000;
    cfg->send_timeout_ms = 30000;
    cfg->body_timeout_ms = 60000;
    cfg->max_keepalive_requests = 1000;
    cfg->max_body = 1u << 20;
    cfg->high_water = 64 * 1024;
    cfg->access_log_fd = -1;
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

int http_option_set(const struct http_option *table, size_t n, void *base, const char *name,
                    const char *value, const char **why)
{
    for (size_t i = 0; i < n; i++) {
        const struct http_option *o = &table[i];
        unsigned long v;
        if (strcmp(name, o->name) != 0)
            continue;
        if (parse_num(value, o->lo, o->hi, &v) < 0) {
            *why = o->why;
            return -EINVAL;
        }
        char *field = (char *)base + o->offset;
        if (o->size == sizeof(unsigned)) {
            unsigned u = (unsigned)(v * o->scale);
            memcpy(field, &u, sizeof u);
        } else {
            uint64_t u = (uint64_t)v * o->scale;
            memcpy(field, &u, sizeof u);
        }
        return 0;
    }
    return -ENOENT;
}

#define FIELD(f) offsetof(struct http_config, f), sizeof(((struct http_config *)0)->f)

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "size_t options are stored as 64 bits");

static const struct http_option options[] = {
    {"header-timeout", FIELD(header_timeout_ms), 1, 3600, 1000,
     "must be whole seconds from 1 to 3600"},
    {"keepalive-timeout", FIELD(keepalive_timeout_ms), 0, 3600, 1000,
     "must be whole seconds from 0 to 3600"},
    {"send-timeout", FIELD(send_timeout_ms), 1, 3600, 1000, "must be whole seconds from 1 to 3600"},
    {"body-timeout", FIELD(body_timeout_ms), 1, 3600, 1000, "must be whole seconds from 1 to 3600"},
    {"max-header-bytes", FIELD(limits.max_head), 1024, 1 << 20, 1,
     "must be bytes from 1024 to 1048576"},
    {"max-uri-bytes", FIELD(limits.max_target), 64, 1 << 20, 1, "must be bytes from 64 to 1048576"},
    {"max-headers", FIELD(limits.max_headers), 1, HTTP_MAX_HEADERS, 1,
     "must be a whole number from 1 to 256"},
    {"max-body-bytes", FIELD(max_body), 0, 1ul << 40, 1,
     "must be bytes from 0 to 1099511627776"},
    {"keepalive-requests", FIELD(max_keepalive_requests), 0, 1000000000, 1,
     "must be a whole number (0: no limit)"},
    {"hsts", FIELD(hsts_max_age_s), 0, 63072000, 1,
     "must be whole seconds from 0 to 63072000 (two years; 0: off)"},
};

/* A path of visible ASCII from '/', without a query or a fragment. */
static int set_health_path(struct http_config *cfg, const char *value, const char **why)
{
    size_t n = strlen(value);
    bool ok = n > 0 && n < sizeof cfg->health_path && value[0] == '/';
    for (size_t i = 0; ok && i < n; i++)
        ok = value[i] > ' ' && value[i] < 0x7f && value[i] != '?' && value[i] != '#';
    if (!ok) {
        *why = "must be a path such as /healthz (visible ASCII, no '?' or '#', under 128 bytes)";
        return -EINVAL;
    }
    memcpy(cfg->health_path, value, n + 1);
    return 0;
}

int http_config_set(struct http_config *cfg, const char *name, const char *value,
                    const char **why)
{
    if (strcmp(name, "health-path") == 0)
        return set_health_path(cfg, value, why);
    return http_option_set(options, sizeof options / sizeof options[0], cfg, name, value, why);
}

pf_loop *http_server_loop(const struct http_server *s)
{
    return s->loop;
}

pf_worker *http_server_worker(const struct http_server *s)
{
    return s->w;
}

bool http_stopping(const struct http_server *hs)
{
    return hs->w && pf_worker_stopping(hs->w);
}

/* ---- the service ---- */

/* One service per worker process, and a worker is single-threaded. */
static struct http_server server;
static pf_timer alog_timer;
static const struct http_config *service_cfg;
static const struct http_handler *service_handler;

static void on_alog_timer(pf_loop *loop, pf_timer *t, void *ud)
{
    http_alog_flush(ud);
    int err = pf_timer_start(loop, t, ALOG_FLUSH_MS);
    if (err < 0)
        pf_log(PF_LOG_WARN, "access log: restarting its flush timer: %s; lines now go out "
               "when its buffer fills", strerror(-err));
}

/* What a worker's server needs, in the pool or outside it. */
static int server_setup(struct http_server *hs, const struct http_config *cfg,
                        const struct http_handler *h, pf_loop *loop, pf_worker *w)
{
    memset(hs, 0, sizeof *hs);
    hs->cfg = cfg;
    hs->h = h;
    hs->w = w;
    hs->loop = loop;
    hs->tp = &http_tp_plain;
    hs->in_cap = cfg->limits.max_head;
    hs->in = malloc(hs->in_cap);
    if (!hs->in)
        return -ENOMEM;
    if (cfg->access_log_fd >= 0) {
        hs->alog = http_alog_new(cfg->access_log_fd, w ? pf_worker_index(w) : 0);
        if (!hs->alog)
            return -ENOMEM;
    }
    return 0;
}

static void server_teardown(struct http_server *hs)
{
    while (hs->conns)
        http_conn_close(hs->conns);
    while (hs->spare) {
        struct http_exchange *x = hs->spare;
        hs->spare = x->next_spare;
        free(x);
    }
    hs->nspare = 0;
    http_alog_free(hs->alog);
    hs->alog = NULL;
    free(hs->in);
    hs->in = NULL;
    http_buf_free(&hs->out);
    http_buf_free(&hs->page);
}

int http_server_new(const struct http_config *cfg, const struct http_handler *h, pf_loop *loop,
                    struct http_server **out)
{
    struct http_server *hs = malloc(sizeof *hs);
    if (!hs)
        return -ENOMEM;
    int err = server_setup(hs, cfg, h, loop, NULL);
    if (!err && h->init)
        err = h->init(hs, h->ud);
    if (err < 0) {
        server_teardown(hs);
        free(hs);
        return err;
    }
    *out = hs;
    return 0;
}

void http_server_add_conn(struct http_server *s, int fd, const struct sockaddr *peer,
                          socklen_t peerlen)
{
    http_conn_open(s, fd, peer, peerlen);
}

void http_server_set_transport(struct http_server *s, const struct http_tp_ops *ops)
{
    s->tp = ops;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    if (s->h->fini)
        s->h->fini(s->h->ud);
    server_teardown(s);
    free(s);
}

static int service_init(pf_worker *w, void *ud)
{
    (void)ud;
    struct http_server *hs = &server;
    int err = server_setup(hs, service_cfg, service_handler, pf_worker_loop(w), w);
    if (err < 0)
        return err;
    if (hs->alog) {
        pf_timer_init(&alog_timer, on_alog_timer, hs->alog);
        err = pf_timer_start(hs->loop, &alog_timer, ALOG_FLUSH_MS);
        if (err < 0)
            return err; /* the worker fails to start, and is respawned */
    }
    return hs->h->init ? hs->h->init(hs, hs->h->ud) : 0;
}

static void service_conn(pf_worker *w, int fd, const struct sockaddr *peer,
                         socklen_t peerlen, void *ud)
{
    (void)w, (void)ud;
    http_conn_open(&server, fd, peer, peerlen);
}

static void service_drain(pf_worker *w, void *ud)
{
    (void)w, (void)ud;
    server.draining = true;
    http_conn_drain_all(&server);
}

/* USR1 (logrotate): what is buffered goes to the old file, the rest to a
 * new file at the same path, on the same descriptor number. */
static void service_reopen(pf_worker *w, void *ud)
{
    (void)w, (void)ud;
    const struct http_config *cfg = service_cfg;
    if (!server.alog || !cfg->access_log_path)
        return;
    http_alog_flush(server.alog);
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
    if (server.h && server.h->fini)
        server.h->fini(server.h->ud);
    http_alog_free(server.alog);
    server.alog = NULL;
}

void http_service(const struct http_config *cfg, const struct http_handler *h,
                  struct pf_service *svc)
{
    service_cfg = cfg;
    service_handler = h;
    memset(svc, 0, sizeof *svc);
    svc->init = service_init;
    svc->on_conn = service_conn;
    svc->on_drain = service_drain;
    svc->fini = service_fini;
    svc->on_reopen = service_reopen;
}
