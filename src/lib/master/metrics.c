/* metrics.c — the pool's figures for monitoring: GET /metrics on a listener of the master's own, in Prometheus text format, from the scoreboard. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/master/pool.h"

/*
 * The master answers, not a worker: a scrape works while every worker is
 * busy, hung or being replaced. Everything comes from the scoreboard, which
 * the workers write as they serve, and from the master's own counters kept
 * there. A scrape is one short request on a connection of its own: the
 * head is read (at most 4 KiB, within 5 s), the whole exposition is built
 * in memory and written as the socket takes it, then the connection
 * closes. A few scrapes at once are served; more are turned away.
 *
 * The exposition follows the text format 0.0.4: a HELP and a TYPE line per
 * metric, counters named _total, seconds and bytes as base units, label
 * values escaped. Per-worker series are labelled by worker index, never by
 * pid: an index lives on through its replacements, and its counters carry
 * over (the scoreboard's retired totals), so they never go back.
 */

#define CONN_MAX 8
#define HEAD_MAX 4096
#define IO_MS 5000

struct mconn {
    int fd;
    pf_pool *p;
    char in[HEAD_MAX];
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    pf_timer timer;
};

static struct mconn conns[CONN_MAX];
static int metrics_fd = -1;
static bool started; /* conns[] is set up (their fds -1 or open) */

/* ---- the exposition ---- */

struct text {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (int round = 0; round < 2 && !t->failed; round++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n + 1;
        char *q = realloc(t->p, cap);
        if (!q) {
            t->failed = true;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
}

static void head(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void escaped(const char *s, char *out, size_t size)
{
    size_t o = 0;
    for (; *s && o + 3 < size; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : *s;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static void pool_metrics(struct text *t, const struct pf_pool_info *pi)
{
    static const char *const cause[PF_RESTART_CAUSES] = {"crash", "timeout", "recycle",
                                                         "reload"};
    head(t, "prefork_info", "gauge", "The version of prefork and the pool's mode.");
    put(t, "prefork_info{version=\"%s\",mode=\"%s\"} 1\n", PF_VERSION, pf_mode_name(pi->mode));
    head(t, "prefork_start_time_seconds", "gauge",
         "When this master started, in seconds since the epoch.");
    put(t, "prefork_start_time_seconds %llu.%03llu\n", (unsigned long long)(pi->started_ms / 1000),
        (unsigned long long)(pi->started_ms % 1000));
    head(t, "prefork_generation", "gauge", "The generation of workers serving (1, then +1 a reload).");
    put(t, "prefork_generation %u\n", pi->generation);
    head(t, "prefork_stopping", "gauge", "1 once a graceful stop has begun (the health path's 503).");
    put(t, "prefork_stopping %d\n", pi->stopping ? 1 : 0);
    head(t, "prefork_worker_restarts_total", "counter", "Workers replaced, by cause.");
    for (int i = 0; i < PF_RESTART_CAUSES; i++)
        put(t, "prefork_worker_restarts_total{cause=\"%s\"} %llu\n", cause[i],
            (unsigned long long)pi->restarts[i]);
    head(t, "prefork_reloads_total", "counter", "Reloads (HUP), by result.");
    put(t, "prefork_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)pi->reloads);
    put(t, "prefork_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)pi->reloads_failed);
    head(t, "prefork_upgrades_total", "counter",
         "Upgrades (USR2) this master handed its sockets over in.");
    put(t, "prefork_upgrades_total %llu\n", (unsigned long long)pi->upgrades);
}

static void worker_states(struct text *t, const struct pf__board *b)
{
    static const char *const name[] = {"starting", "idle", "busy", "draining"};
    static const enum pf_state state[] = {PF_STATE_STARTING, PF_STATE_IDLE, PF_STATE_BUSY,
                                          PF_STATE_DRAINING};
    int count[4] = {0};
    uint32_t used = PF__GET(b->used);
    for (uint32_t i = 0; i < used && i < b->nslots; i++) {
        uint32_t st = PF__GET(b->slot[i].state);
        for (int k = 0; k < 4; k++)
            count[k] += st == (uint32_t)state[k];
    }
    head(t, "prefork_workers", "gauge", "Worker processes, by state.");
    for (int k = 0; k < 4; k++)
        put(t, "prefork_workers{state=\"%s\"} %d\n", name[k], count[k]);
}

/* The accept queue of a TCP listener, as TCP_INFO tells a listening socket:
 * tcpi_unacked is the queue, tcpi_sacked its limit. */
static void listen_queues(struct text *t, pf_pool *p)
{
    head(t, "prefork_listen_queue", "gauge",
         "Connections waiting in a listener's accept queue (TCP listeners).");
    for (int i = 0; p->phase == PF__RUNNING && i < p->nls; i++) {
        struct tcp_info ti;
        socklen_t len = sizeof ti;
        if (getsockopt(p->ls[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
            continue; /* a Unix socket */
        uint64_t queued = ti.tcpi_unacked;
        for (int w = 1; p->rows && w < PF_MAX_WORKERS; w++) { /* reuseport: each row's too */
            const int *row = p->rows[w];
            len = sizeof ti;
            if (row && row[i] >= 0 && row[i] != p->ls[i].fd &&
                getsockopt(row[i], IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
                queued += ti.tcpi_unacked;
        }
        char name[2 * sizeof p->ls[i].name];
        escaped(p->ls[i].name, name, sizeof name);
        put(t, "prefork_listen_queue{listener=\"%s\"} %llu\n", name, (unsigned long long)queued);
    }
}

/* Microseconds as seconds, without trailing zeros: "0.0025", "1". */
static void seconds(uint64_t us, char *out, size_t size)
{
    int n = snprintf(out, size, "%llu.%06llu", (unsigned long long)(us / 1000000),
                     (unsigned long long)(us % 1000000));
    while (n > 0 && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.')
        out[--n] = '\0';
}

/* A metric with one uint64_t field of each index's totals. */
struct per_worker {
    const char *name, *type, *help;
    size_t field; /* offsetof(struct pf_worker_totals, ...) */
};

static void series(struct text *t, const struct per_worker *m,
                   const struct pf_worker_totals *w, const bool *seen, int hi)
{
    head(t, m->name, m->type, m->help);
    for (int i = 0; i < hi; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&w[i] + m->field, sizeof v);
        if (seen[i])
            put(t, "%s{worker=\"%d\"} %llu\n", m->name, i, (unsigned long long)v);
    }
}

static void worker_metrics(struct text *t, const struct pf__board *b, int hi)
{
    struct pf_worker_totals *w = calloc((size_t)(hi ? hi : 1), sizeof *w);
    bool *seen = calloc((size_t)(hi ? hi : 1), sizeof *seen);
    if (!w || !seen) {
        t->failed = true;
        free(w);
        free(seen);
        return;
    }
    for (int i = 0; i < hi; i++)
        seen[i] = pf__board_totals(b, i, &w[i]);
    static const struct per_worker one[] = {
        {"prefork_connections_accepted_total", "counter", "Connections accepted, by worker.",
         offsetof(struct pf_worker_totals, accepted)},
        {"prefork_connections_active", "gauge", "Open connections, by worker.",
         offsetof(struct pf_worker_totals, active)},
        {"prefork_requests_total", "counter", "Requests served, by worker.",
         offsetof(struct pf_worker_totals, requests)},
        {"prefork_sent_bytes_total", "counter", "Response bytes sent, by worker.",
         offsetof(struct pf_worker_totals, bytes)},
    };
    for (size_t m = 0; m < sizeof one / sizeof one[0]; m++)
        series(t, &one[m], w, seen, hi);
    head(t, "prefork_responses_total", "counter",
         "HTTP responses, by worker and status class.");
    for (int i = 0; i < hi; i++)
        for (int c = 0; seen[i] && c < 5; c++)
            put(t, "prefork_responses_total{worker=\"%d\",code=\"%dxx\"} %llu\n", i, c + 1,
                (unsigned long long)w[i].status[c]);
    head(t, "prefork_request_duration_seconds", "histogram",
         "From a request's complete head to the end of its response, by worker.");
    for (int i = 0; i < hi; i++) {
        uint64_t cum = 0;
        for (int k = 0; seen[i] && k < PF_DURATION_BUCKETS; k++) {
            cum += w[i].hist[k];
            if (k < PF_DURATION_BUCKETS - 1) {
                char le[32];
                seconds(pf_duration_bound_us(k), le, sizeof le);
                put(t, "prefork_request_duration_seconds_bucket{worker=\"%d\",le=\"%s\"} %llu\n",
                    i, le, (unsigned long long)cum);
            } else {
                put(t, "prefork_request_duration_seconds_bucket{worker=\"%d\",le=\"+Inf\"} "
                    "%llu\n", i, (unsigned long long)cum);
                put(t, "prefork_request_duration_seconds_sum{worker=\"%d\"} %llu.%06llu\n", i,
                    (unsigned long long)(w[i].duration_us / 1000000),
                    (unsigned long long)(w[i].duration_us % 1000000));
                put(t, "prefork_request_duration_seconds_count{worker=\"%d\"} %llu\n", i,
                    (unsigned long long)cum);
            }
        }
    }
    head(t, "prefork_tls_handshakes_total", "counter", "TLS handshakes, full or resumed, by worker.");
    for (int i = 0; i < hi; i++)
        if (seen[i]) {
            put(t, "prefork_tls_handshakes_total{worker=\"%d\",kind=\"full\"} %llu\n", i,
                (unsigned long long)w[i].tls_full);
            put(t, "prefork_tls_handshakes_total{worker=\"%d\",kind=\"resumed\"} %llu\n", i,
                (unsigned long long)w[i].tls_resumed);
        }
    free(w);
    free(seen);
}

static int render(pf_pool *p, struct text *t)
{
    struct pf_pool_info pi;
    pf__board_pool(p->board, &pi);
    pool_metrics(t, &pi);
    worker_states(t, p->board);
    listen_queues(t, p);
    worker_metrics(t, p->board, pi.index_hi < PF_MAX_WORKERS ? pi.index_hi : PF_MAX_WORKERS);
    return t->failed ? -ENOMEM : 0;
}

/* ---- the connections ---- */

static void conn_close(struct mconn *c)
{
    pf_timer_stop(c->p->loop, &c->timer);
    pf_loop_del(c->p->loop, c->fd);
    close(c->fd);
    free(c->out);
    c->out = NULL;
    c->fd = -1;
}

static void on_timeout(pf_loop *loop, pf_timer *t, void *ud)
{
    (void)loop, (void)t;
    conn_close(ud);
}

static void respond(struct mconn *c, const char *status, const char *type, const char *body,
                    size_t n)
{
    size_t cap = n + 256;
    c->out = malloc(cap);
    if (!c->out) {
        conn_close(c);
        return;
    }
    int h = snprintf(c->out, cap, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n", status, type, n);
    memcpy(c->out + h, body, n);
    c->out_len = (size_t)h + n;
    c->out_off = 0;
    pf_loop_mod(c->p->loop, c->fd, EPOLLOUT);
}

/* A request head is in: GET or HEAD of /metrics gets the exposition. */
static void answer(struct mconn *c)
{
    static const char type[] = "text/plain; version=0.0.4; charset=utf-8";
    bool get = strncmp(c->in, "GET ", 4) == 0, head_only = strncmp(c->in, "HEAD ", 5) == 0;
    const char *target = c->in + (get ? 4 : 5);
    size_t path = strcspn(target, " ?\r\n");
    if (!get && !head_only) {
        respond(c, "405 Method Not Allowed", "text/plain", "GET /metrics\n", 13);
        return;
    }
    if (path != 8 || strncmp(target, "/metrics", 8) != 0) {
        respond(c, "404 Not Found", "text/plain", "GET /metrics\n", 13);
        return;
    }
    struct text t = {0};
    if (render(c->p, &t) < 0) {
        free(t.p);
        respond(c, "500 Internal Server Error", "text/plain", "out of memory\n", 14);
        return;
    }
    respond(c, "200 OK", type, t.p, t.len);
    if (head_only && c->out) /* the same head, no body */
        c->out_len -= t.len;
    free(t.p);
}

static void on_conn_io(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events;
    struct mconn *c = ud;
    if (c->out) {
        ssize_t n = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0 || (c->out_off += (size_t)n) == c->out_len)
            conn_close(c);
        return;
    }
    ssize_t n = recv(fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    c->in[c->in_len] = '\0';
    if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n"))
        answer(c);
    else if (c->in_len == sizeof c->in - 1)
        respond(c, "431 Request Header Fields Too Large", "text/plain", "too large\n", 10);
}

static void on_accept(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)events;
    pf_pool *p = ud;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return; /* EAGAIN, or a connection that failed: the next one is taken later */
        struct mconn *c = NULL;
        for (int i = 0; i < CONN_MAX && !c; i++)
            if (conns[i].fd < 0)
                c = &conns[i];
        if (!c) {
            close(cfd); /* more scrapes at once than a monitoring system makes */
            continue;
        }
        *c = (struct mconn){.fd = cfd, .p = p};
        pf_timer_init(&c->timer, on_timeout, c);
        if (pf_loop_add(loop, cfd, EPOLLIN, on_conn_io, c) < 0 ||
            pf_timer_start(loop, &c->timer, IO_MS) < 0) {
            pf_loop_del(loop, cfd);
            close(cfd);
            c->fd = -1;
        }
    }
}

/* ---- start and stop ---- */

int pf__metrics_start(pf_pool *p)
{
    for (int i = 0; i < CONN_MAX; i++)
        conns[i].fd = -1;
    started = true;
    if (!p->cfg.metrics_listen[0])
        return 0;
    struct pf_addr a;
    const char *why = "bad address";
    int fd = pf_addr_parse(p->cfg.metrics_listen, &a, &why);
    /* SO_REUSEPORT: a new master (USR2) binds it beside this one. */
    fd = fd < 0 ? fd : pf_listen_open(&a, 64, PF_LISTEN_REUSEPORT);
    if (fd < 0) {
        pf_log(PF_LOG_ERROR, "--metrics-listen %s: %s", p->cfg.metrics_listen,
               fd == -EINVAL ? why : strerror(-fd));
        return fd;
    }
    int err = pf_loop_add(p->loop, fd, EPOLLIN, on_accept, p);
    if (err < 0) {
        close(fd);
        return err;
    }
    metrics_fd = fd;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char name[160] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        pf_addr_format((struct sockaddr *)&ss, len, name, sizeof name);
    pf_log(PF_LOG_INFO, "metrics on %s (GET /metrics)", name);
    return 0;
}

void pf__metrics_stop(pf_pool *p)
{
    for (int i = 0; started && i < CONN_MAX; i++)
        if (conns[i].fd >= 0)
            conn_close(&conns[i]);
    if (metrics_fd >= 0) {
        pf_loop_del(p->loop, metrics_fd);
        close(metrics_fd);
        metrics_fd = -1;
    }
    started = false;
}

void pf__metrics_close_in_child(pf_pool *p)
{
    (void)p;
    for (int i = 0; started && i < CONN_MAX; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    if (metrics_fd >= 0)
        close(metrics_fd);
}
