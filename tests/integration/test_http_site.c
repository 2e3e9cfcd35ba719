/* test_http_site.c — what a deployed site asks of `prefork serve`: --header rules, a single-page app's --fallback, --error-page, checked over raw requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_support.h"

#define TIMEOUT 60 /* every Test: one value per program (Criterion 2.4 under ASan) */
#define RUN_MS 20000

static struct ts_proc *srv;
static int port;

TestSuite(site, .fini = hs_cleanup);

#define SERVE(...) (port = HS_SERVE(&srv, "-w", "1", "--access-log", "off", __VA_ARGS__))

/* ---- one request, one response ---- */

struct got {
    struct hs_resp r;
    char *raw;
};

/* METHOD path with extra header lines (each ending in CRLF, or ""), on a
 * connection of its own. */
static void req(struct got *g, const char *method, const char *path, const char *extra)
{
    char text[4096];
    size_t len;
    snprintf(text, sizeof text, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n",
             method, path, extra);
    g->raw = hs_exchange(port, text, strlen(text), &len);
    long n = hs_parse_resp(g->raw, len, strcmp(method, "HEAD") == 0, &g->r);
    ts_assert(n > 0, "%s %s: no whole response: %s", method, path, hs_shown(g->raw, len));
}

static void get(struct got *g, const char *path, const char *extra)
{
    req(g, "GET", path, extra);
}

static void got_free(struct got *g)
{
    free(g->raw);
    g->raw = NULL;
}

/* The field's value, or "" when absent (one static buffer per call site is
 * enough: each is compared at once). */
static const char *field(const struct got *g, const char *name)
{
    static char v[1024];
    return hs_field(g->r.head, name, v, sizeof v) ? v : "";
}

static void expect(const struct got *g, int status, const char *body)
{
    ts_assert(g->r.status == status, "status %d, expected %d:\n%s", g->r.status, status,
              g->r.head);
    if (body)
        ts_assert(g->r.body_len == strlen(body) && memcmp(g->r.body, body, g->r.body_len) == 0,
                  "body [%s], expected [%s]", hs_shown(g->r.body, g->r.body_len), body);
}

static void expect_field(const struct got *g, const char *name, const char *want)
{
    const char *v = field(g, name);
    ts_assert(strcmp(v, want) == 0, "%s: [%s], expected [%s] in:\n%s", name, v, want,
              g->r.head);
}

/* How many lines of a field the head has. */
static int count_field(const struct got *g, const char *name)
{
    int n = 0;
    size_t len = strlen(name);
    for (const char *p = g->r.head; (p = strstr(p, "\r\n")) != NULL; p += 2)
        if (strncasecmp(p + 2, name, len) == 0 && p[2 + len] == ':')
            n++;
    return n;
}

/* `prefork serve ARGS...` must refuse to start: exit 2, one line on stderr
 * that holds want. */
static void expect_usage_error(const char *want, const char *const *args)
{
    char bin[512];
    const char *argv[32] = {bin, "serve", "-l", "127.0.0.1:0"};
    int n = 4;
    snprintf(bin, sizeof bin, "%s/prefork", ts_build_dir());
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *out, *err;
    int status = hs_run(argv, RUN_MS, &out, &err);
    ts_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 2,
              "status 0x%x, expected exit 2; stderr: %s", status, err);
    ts_assert(strstr(err, want) && strchr(err, '\n') == err + strlen(err) - 1,
              "stderr is not one line holding [%s]: [%s]", want, err);
    free(out);
    free(err);
}
#define USAGE_ERROR(want, ...) expect_usage_error(want, (const char *const[]){__VA_ARGS__, NULL})

/* ------------------------------------------------------------------------ */
/* --header, --header-add                                                   */
/* ------------------------------------------------------------------------ */

static void site_tree(void)
{
    hs_tree("pf-site");
    hs_make_dir("assets");
    hs_make_dir("docs");
    hs_put_text("index.html", "<p>shell</p>\n");
    hs_put_text("assets/app.js", "console.log('app');\n");
    hs_put_text("docs/index.html", "<p>docs</p>\n");
    hs_put_text("notes.txt", "notes\n");
}

Test(site, header_rules_precedence_and_scope, .timeout = TIMEOUT)
{
    site_tree();
    char big[200000];
    memset(big, 'x', sizeof big); /* not cached in memory: sent with sendfile */
    hs_put_file("assets/big.bin", big, sizeof big);
    SERVE(hs_root, "--header", "* Cache-Control: no-cache", "--header",
          "/assets/* Cache-Control: public, max-age=31536000, immutable", "--header-add",
          "* Link: </a.css>; rel=preload", "--header-add", "*.html Link: </b.js>; rel=preload",
          "--header", "/notes.txt Cache-Control:", "--header",
          "*.txt Content-Type: text/markdown; charset=utf-8", "--header",
          "/index.html X-Frame-Options: DENY");
    struct got g;
    for (int round = 0; round < 2; round++) { /* the second from the cache */
        get(&g, "/assets/app.js", "");
        expect(&g, 200, "console.log('app');\n");
        expect_field(&g, "Cache-Control", "public, max-age=31536000, immutable");
        ts_assert(count_field(&g, "Cache-Control") == 1, "one Cache-Control:\n%s", g.r.head);
        ts_assert(count_field(&g, "Link") == 1, "one Link for a .js:\n%s", g.r.head);
        got_free(&g);

        /* "/" sends /index.html: the rules for that file apply. */
        get(&g, "/", "");
        expect(&g, 200, "<p>shell</p>\n");
        expect_field(&g, "Cache-Control", "no-cache");
        expect_field(&g, "X-Frame-Options", "DENY");
        ts_assert(count_field(&g, "Link") == 2, "two Link lines:\n%s", g.r.head);
        got_free(&g);

        /* An empty value removes; a Content-Type rule replaces the type. */
        get(&g, "/notes.txt", "");
        expect(&g, 200, "notes\n");
        ts_assert(count_field(&g, "Cache-Control") == 0, "no Cache-Control:\n%s", g.r.head);
        expect_field(&g, "Content-Type", "text/markdown; charset=utf-8");
        got_free(&g);
    }
    get(&g, "/assets/big.bin", "");
    expect(&g, 200, NULL);
    ts_assert(g.r.body_len == sizeof big, "body of %zu bytes", g.r.body_len);
    expect_field(&g, "Cache-Control", "public, max-age=31536000, immutable");
    got_free(&g);

    /* 304 and 206 carry them too; errors do not. */
    get(&g, "/assets/app.js", "");
    char etag[1200];
    snprintf(etag, sizeof etag, "If-None-Match: %s\r\n", field(&g, "ETag"));
    got_free(&g);
    get(&g, "/assets/app.js", etag);
    expect(&g, 304, NULL);
    expect_field(&g, "Cache-Control", "public, max-age=31536000, immutable");
    got_free(&g);
    get(&g, "/assets/app.js", "Range: bytes=0-6\r\n");
    expect(&g, 206, "console");
    expect_field(&g, "Cache-Control", "public, max-age=31536000, immutable");
    got_free(&g);
    get(&g, "/assets/missing.js", "");
    expect(&g, 404, NULL);
    ts_assert(count_field(&g, "Cache-Control") == 0 && count_field(&g, "Link") == 0,
              "a 404 with rule fields:\n%s", g.r.head);
    got_free(&g);

    /* A directory without its slash: the redirect (3xx) has them. */
    get(&g, "/docs", "");
    expect(&g, 301, NULL);
    expect_field(&g, "Cache-Control", "no-cache");
    got_free(&g);
}

Test(site, header_rules_on_compressed_responses, .timeout = TIMEOUT)
{
    site_tree();
    char text[8192];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "function f(a) { return a + 1; }\n"[i % 32];
    hs_put_file("assets/lib.js", text, sizeof text);
    SERVE(hs_root, "--header", "/assets/* Cache-Control: immutable");
    for (int round = 0; round < 2; round++) {
        struct got g;
        get(&g, "/assets/lib.js", "Accept-Encoding: gzip\r\n");
        expect(&g, 200, NULL);
        expect_field(&g, "Content-Encoding", "gzip");
        expect_field(&g, "Cache-Control", "immutable");
        ts_assert(g.r.body_len < sizeof text / 4, "gzip body of %zu bytes", g.r.body_len);
        got_free(&g);
    }
}

Test(site, bad_rules_and_paths_are_usage_errors, .timeout = TIMEOUT)
{
    site_tree();
    USAGE_ERROR("--header", hs_root, "--header", "Cache-Control: x");
    USAGE_ERROR("--header", hs_root, "--header", "/a Content-Length: 3");
    USAGE_ERROR("--fallback", hs_root, "--fallback", "index.html");
    USAGE_ERROR("--fallback", hs_root, "--fallback", "/missing.html");
    USAGE_ERROR("--fallback", hs_root, "--fallback", "/docs/");
    USAGE_ERROR("--fallback", hs_root, "--fallback", "/../x.html");
    USAGE_ERROR("--fallback-except", hs_root, "--fallback-except", "api");
    USAGE_ERROR("--error-page", hs_root, "--error-page", "404");
    USAGE_ERROR("--error-page", hs_root, "--error-page", "302=/index.html");
    USAGE_ERROR("--error-page", hs_root, "--error-page", "404=/nope.html");
    /* A page that is a symlink out of the root is refused like a request. */
    char out[512], target[512];
    hs_path("../outside.html", target, sizeof target);
    hs_put_text("../outside.html", "outside\n");
    hs_path("escape.html", out, sizeof out);
    cr_assert_eq(symlink(target, out), 0);
    USAGE_ERROR("--error-page", hs_root, "--error-page", "404=/escape.html");
    USAGE_ERROR("--fallback", hs_root, "--fallback", "/escape.html");
}

/* ------------------------------------------------------------------------ */
/* --fallback                                                               */
/* ------------------------------------------------------------------------ */

Test(site, fallback_serves_client_routes_only, .timeout = TIMEOUT)
{
    site_tree();
    hs_make_dir("empty");
    hs_make_dir("api");
    SERVE(hs_root, "--fallback", "/index.html", "--fallback-except", "/api/", "--header",
          "/index.html Cache-Control: no-cache", "--no-listing");
    struct got g;
    const char *routes[] = {"/users/42", "/settings", "/a/b/c/", "/notes.txt/deeper"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        get(&g, routes[i], "");
        expect(&g, 200, "<p>shell</p>\n");
        expect_field(&g, "Content-Type", "text/html; charset=utf-8");
        expect_field(&g, "Cache-Control", "no-cache");
        got_free(&g);
    }
    req(&g, "HEAD", "/users/7", "");
    expect(&g, 200, NULL);
    expect_field(&g, "Content-Length", "13");
    got_free(&g);
    /* Looks like a file, is under an excepted prefix, or is a directory
     * that exists (without an index here): never the fallback. */
    const char *missing[] = {"/assets/gone.js", "/style.css", "/api/users", "/api/v1/items"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        get(&g, missing[i], "");
        expect(&g, 404, NULL);
        got_free(&g);
    }
    get(&g, "/empty/", "");
    expect(&g, 403, NULL);
    got_free(&g);
    /* Other methods are still refused. */
    req(&g, "POST", "/users/42", "Content-Length: 0\r\n");
    expect(&g, 405, NULL);
    got_free(&g);
}

Test(site, fallback_with_a_listing_and_codings, .timeout = TIMEOUT)
{
    site_tree();
    char shell[4096];
    for (size_t i = 0; i < sizeof shell; i++)
        shell[i] = "<div class=\"app\">loading</div>\n"[i % 32];
    hs_put_file("index.html", shell, sizeof shell);
    hs_make_dir("empty");
    SERVE(hs_root, "--fallback", "/index.html");
    struct got g;
    get(&g, "/empty/", "");
    expect(&g, 200, NULL);
    ts_assert(strstr(g.r.body, "Index of /empty/"), "not a listing: %.200s", g.r.body);
    got_free(&g);
    get(&g, "/dashboard", "Accept-Encoding: gzip\r\n");
    expect(&g, 200, NULL);
    expect_field(&g, "Content-Encoding", "gzip");
    expect_field(&g, "Vary", "Accept-Encoding");
    ts_assert(g.r.body_len < sizeof shell / 4, "gzip body of %zu bytes", g.r.body_len);
    got_free(&g);
}

/* ------------------------------------------------------------------------ */
/* --error-page                                                             */
/* ------------------------------------------------------------------------ */

Test(site, error_pages_keep_their_status, .timeout = TIMEOUT)
{
    site_tree();
    hs_make_dir("errors");
    hs_make_dir("private");
    hs_put_text("errors/404.html", "<h1>Not here</h1>\n");
    hs_put_text("errors/403.txt", "forbidden, sorry\n");
    hs_put_text("errors/405.html", "<h1>Method</h1>\n");
    SERVE(hs_root, "--error-page", "404=/errors/404.html", "--error-page",
          "403=/errors/403.txt", "--error-page", "405=/errors/405.html", "--no-listing");
    struct got g;
    for (int round = 0; round < 2; round++) { /* the second from the cache */
        get(&g, "/nothing/here", "");
        expect(&g, 404, "<h1>Not here</h1>\n");
        expect_field(&g, "Content-Type", "text/html; charset=utf-8");
        got_free(&g);
    }
    get(&g, "/.hidden", ""); /* refused before any file is looked at */
    expect(&g, 404, "<h1>Not here</h1>\n");
    got_free(&g);
    get(&g, "/private/", "");
    expect(&g, 403, "forbidden, sorry\n");
    expect_field(&g, "Content-Type", "text/plain; charset=utf-8");
    got_free(&g);
    req(&g, "DELETE", "/index.html", "");
    expect(&g, 405, "<h1>Method</h1>\n");
    expect_field(&g, "Allow", "GET, HEAD");
    got_free(&g);
    req(&g, "HEAD", "/nothing", "");
    expect(&g, 404, NULL);
    expect_field(&g, "Content-Length", "18");
    ts_assert(g.r.body_len == 0, "a HEAD with a body");
    got_free(&g);
    /* A status without a page keeps the built-in one. */
    get(&g, "/index.html", "Range: bytes=900-999\r\n");
    expect(&g, 416, NULL);
    ts_assert(strstr(g.r.body, "416"), "the built-in 416 page: %.200s", g.r.body);
    got_free(&g);
    /* The page gone after the start: the built-in page, not a failure. */
    char path[512];
    hs_path("errors/404.html", path, sizeof path);
    cr_assert_eq(unlink(path), 0);
    int64_t deadline = ts_now_ms() + 10000;
    for (;;) {
        get(&g, "/nothing/there", "");
        expect(&g, 404, NULL);
        bool builtin = !strstr(g.r.body, "Not here");
        got_free(&g);
        if (builtin)
            break;
        ts_assert(ts_now_ms() < deadline, "the removed page is still served");
        usleep(50 * 1000);
    }
}
