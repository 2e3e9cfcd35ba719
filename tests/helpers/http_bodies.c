/* http_bodies.c — a test service on the HTTP core: takes request bodies (streamed or whole) and streams responses, so real clients can drive both over TCP. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "prefork.h"

/*
 * usage: http_bodies [-l ADDR] [-w N] [--max-body-bytes N] [--body-timeout SEC]
 *   POST /sum      the body, streamed: answers "BYTES HASH" (FNV-1a, 16 hex)
 *   POST /whole    the same, the body collected whole first
 *   GET /stream?N  N KiB of a known pattern, chunked, written as fast as the
 *                  client takes it (waiting whenever a write says later)
 *   anything else  "ok"
 * Exits 2 on a usage error, 1 when the pool fails.
 */

struct sum {
    uint64_t len, hash;
};

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void text(struct http_exchange *x, int status, const char *s)
{
    if (http_res_status(x, status, NULL) == 0 &&
        http_res_header(x, "Content-Type", 12, "text/plain", 10) == 0)
        http_res_body(x, s, strlen(s));
}

static void on_piece(struct http_exchange *x, const char *p, size_t n, int status, void *ud)
{
    struct sum *s = ud;
    if (status < 0) { /* the core answered (413, 400, 408) or the client went */
        free(s);
        return;
    }
    s->len += n;
    s->hash = fnv(s->hash, p, n);
    if (status == HTTP_BODY_END) {
        char out[64];
        snprintf(out, sizeof out, "%llu %016llx\n", (unsigned long long)s->len,
                 (unsigned long long)s->hash);
        free(s);
        text(x, 200, out);
    }
}

static void take_body(struct http_exchange *x, bool whole)
{
    struct sum *s = malloc(sizeof *s);
    if (!s) {
        http_res_error(x, 503);
        return;
    }
    *s = (struct sum){0, 0xcbf29ce484222325ull};
    int err = whole ? http_body_read_whole(x, on_piece, s) : http_body_read(x, on_piece, s);
    if (err < 0) {
        free(s);
        http_res_error(x, err == -EMSGSIZE ? 413 : 500);
    }
}

/* ---- a stream the client paces ---- */

struct stream {
    uint64_t left; /* KiB */
    char piece[1024];
};

static void stream_more(struct http_exchange *x, void *ud)
{
    struct stream *st = ud;
    while (st->left) {
        st->left--;
        int r = http_res_write(x, st->piece, sizeof st->piece);
        if (r < 0)
            return; /* the abort callback frees */
        if (r == HTTP_RES_LATER)
            return; /* stream_more runs again when there is room */
    }
    http_res_end(x);
    free(st);
}

static void stream_abort(struct http_exchange *x, void *ud)
{
    (void)x;
    free(ud);
}

static void stream(struct http_exchange *x, const struct http_request *req)
{
    const char *q = memchr(req->target, '?', req->target_len);
    struct stream *st = malloc(sizeof *st);
    if (!st) {
        http_res_error(x, 503);
        return;
    }
    st->left = q ? strtoull(q + 1, NULL, 10) : 1;
    for (size_t i = 0; i < sizeof st->piece; i++)
        st->piece[i] = (char)('a' + i % 26);
    http_ex_on_abort(x, stream_abort, st);
    http_res_on_writable(x, stream_more, st);
    http_res_status(x, 200, NULL);
    http_res_header(x, "Content-Type", 12, "text/plain", 10);
    http_res_start(x, HTTP_LENGTH_UNKNOWN);
    stream_more(x, st);
}

static bool path_is(const struct http_request *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len >= n && memcmp(req->path, path, n) == 0 &&
           (req->path_len == n || req->path[n] == '?');
}

static void request(struct http_exchange *x, void *ud)
{
    (void)ud;
    const struct http_request *req = http_ex_request(x);
    if (req->method == HTTP_METHOD_POST && path_is(req, "/sum"))
        take_body(x, false);
    else if (req->method == HTTP_METHOD_POST && path_is(req, "/whole"))
        take_body(x, true);
    else if (path_is(req, "/stream"))
        stream(x, req);
    else
        text(x, 200, "ok\n");
}

static int usage_error(const char *what)
{
    fprintf(stderr, "http_bodies: %s\n", what);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"max-body-bytes", required_argument, NULL, 'b'},
        {"body-timeout", required_argument, NULL, 't'},
        {0, 0, 0, 0},
    };
    static struct http_config http;
    static struct http_handler h = {.request = request};
    struct pf_config cfg;
    const char *listen = "127.0.0.1:0", *why;
    int opt;
    pf_config_init(&cfg);
    http_config_init(&http);
    while ((opt = getopt_long(argc, argv, "l:w:", opts, NULL)) != -1) {
        if (opt == '?')
            return 2;
        if (opt == 'l')
            listen = optarg;
        else if (opt == 'w' && pf_config_set(&cfg, "workers", optarg, &why) < 0)
            return usage_error(why);
        else if (opt == 'b' && http_config_set(&http, "max-body-bytes", optarg, &why) < 0)
            return usage_error(why);
        else if (opt == 't' && http_config_set(&http, "body-timeout", optarg, &why) < 0)
            return usage_error(why);
    }
    struct pf_service svc;
    http_service(&http, &h, &svc);
    pf_pool *pool;
    int err = pf_pool_new(&pool, &cfg, &svc);
    if (err == 0) {
        err = pf_pool_listen(pool, listen);
        if (err == 0)
            err = pf_pool_run(pool);
        pf_pool_free(pool);
    }
    if (err < 0)
        fprintf(stderr, "http_bodies: %s\n", strerror(-err));
    return err < 0 ? 1 : 0;
}
