/* health.c — the health path a balancer checks, answered by the core: 200 while the pool serves, 503 once it is stopping. */
#include <string.h>

#include "http/core.h"

/*
 * A balancer checking the path takes a host out once it answers 503 (while
 * http_stopping says so). The
 * answer turns at the start of a graceful stop, before the pre-stop delay
 * (--pre-stop-delay) during which everything else is still served, so the
 * host leaves the balancer's rotation before its listeners close. Meanwhile
 * every response says "Connection: close" (keeps_alive in response.c), so
 * the balancer's pooled connections move to the other hosts as they end.
 */

/* The request's path up to its query is the health path. */
static bool asks_health(const struct http_request *q, const char *path)
{
    size_t n = q->path_len;
    const char *query = memchr(q->path, '?', n);
    if (query)
        n = (size_t)(query - q->path);
    return n == strlen(path) && memcmp(q->path, path, n) == 0;
}

bool http_health(struct http_exchange *x)
{
    const struct http_request *q = &x->req;
    if (q->target_form != HTTP_TARGET_ORIGIN && q->target_form != HTTP_TARGET_ABSOLUTE)
        return false;
    if (!asks_health(q, x->c->hs->cfg->health_path))
        return false;
    if (q->method != HTTP_METHOD_GET && q->method != HTTP_METHOD_HEAD) {
        http_res_status(x, 405, NULL);
        http_res_header(x, "Allow", 5, "GET, HEAD", 9);
        http_res_page(x);
        return true;
    }
    bool stopping = http_stopping(x->c->hs);
    static const char ok[] = "ok\n", stop[] = "stopping\n";
    http_res_status(x, stopping ? 503 : 200, NULL);
    http_res_header(x, "Content-Type", 12, "text/plain", 10);
    http_res_header(x, "Cache-Control", 13, "no-store", 8);
    if (stopping)
        http_res_close(x);
    http_res_body(x, stopping ? stop : ok, stopping ? sizeof stop - 1 : sizeof ok - 1);
    return true;
}
