/* serve.c — `prefork serve [DIR]`: the static HTTP/1.1 server on a worker pool. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "static/site.h"
#include "tls/tls.h"
#include "options.h"
#include "tls_module.h"

static const char serve_usage[] =
    "usage: prefork serve [DIR] [options]\n"
    "Serve the files under DIR (default: the current folder) over HTTP/1.1.\n"
    "\n"
    "HTTP options:\n"
    "      --access-log FILE|-|off  Combined Log Format + worker + microseconds\n"
    "                               (default: - for stdout)\n"
    "      --index NAME             file served for a directory (default index.html)\n"
    "      --no-listing             403 for directories without an index\n"
    "      --dotfiles               serve names that start with '.'\n"
    "      --follow-symlinks        follow symlinks that leave DIR\n"
    "      --header 'PATTERN Name: value'\n"
    "                               set a field on the responses (2xx, 3xx) for\n"
    "                               files that match PATTERN ('/assets/*',\n"
    "                               '*.html'); the last matching --header for a\n"
    "                               name wins, an empty value removes the field\n"
    "      --header-add 'PATTERN Name: value'\n"
    "                               add one more line of a field (repeatable)\n"
    "      --header-timeout SEC     a request head must arrive within (default 10)\n"
    "      --keepalive-timeout SEC  idle keep-alive connections close after (15)\n"
    "      --send-timeout SEC       a stalled response is dropped after (30)\n"
    "      --body-timeout SEC       a stalled request body is a 408 after (60)\n"
    "      --keepalive-requests N   requests per connection, 0 = no limit (1000)\n"
    "      --hsts SEC               over TLS, Strict-Transport-Security: max-age=SEC\n"
    "                               (default 0: not sent)\n"
    "      --https-redirect         plain listeners answer every request with a\n"
    "                               redirect to the same URL on the first ,tls one\n"
    "      --max-header-bytes N     request head limit, else 431 (16384)\n"
    "      --max-uri-bytes N        request target limit, else 414 (8192)\n"
    "      --max-headers N          header fields limit, else 431 (100)\n"
    "      --max-body-bytes N       a request body the site does not read is\n"
    "                               read away up to N, else the connection\n"
    "                               closes after the answer (1048576)\n"
    "      --cache-ttl MS           small files and listings are reused for up to\n"
    "                               MS before being checked again (1000; 0: off)\n"
    "      --cache-size MIB         cache budget per worker (8)\n"
    "      --no-precompressed       never send FILE.br, FILE.zst or FILE.gz in place\n"
    "                               of FILE (sent when the client accepts them)\n"
    "      --compress-level N       text files are compressed (gzip, br) once per\n"
    "                               worker at level N, 1-9, and cached (6)\n"
    "      --no-compress            never compress here\n"
    "      --fallback PATH          a GET for a missing path without an extension\n"
    "                               is answered with the file PATH, status 200\n"
    "                               (a single-page app's /index.html)\n"
    "      --fallback-except PREFIX paths under PREFIX never fall back (repeatable)\n"
    "      --error-page STATUS=PATH the file PATH is the body of STATUS responses\n"
    "                               (404=/404.html; repeatable)\n"
    "      --health-path PATH       answered by the server: 200 while serving, 503\n"
    "                               once a graceful stop begins (with\n"
    "                               --pre-stop-delay, before the listeners close)\n"
    "  -h, --help\n"
    "\n";

enum { OPT_HTTP = 0x200, OPT_ACCESS_LOG, OPT_INDEX, OPT_NO_LISTING, OPT_DOTFILES,
       OPT_SYMLINKS, OPT_TLS, OPT_REDIRECT, OPT_HEADER, OPT_HEADER_ADD, OPT_NO_PRECOMPRESSED,
       OPT_NO_COMPRESS };

static const struct option serve_options[] = {
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"index", required_argument, NULL, OPT_INDEX},
    {"no-listing", no_argument, NULL, OPT_NO_LISTING},
    {"dotfiles", no_argument, NULL, OPT_DOTFILES},
    {"follow-symlinks", no_argument, NULL, OPT_SYMLINKS},
    {"header", required_argument, NULL, OPT_HEADER},
    {"header-add", required_argument, NULL, OPT_HEADER_ADD},
    {"header-timeout", required_argument, NULL, OPT_HTTP},
    {"keepalive-timeout", required_argument, NULL, OPT_HTTP},
    {"send-timeout", required_argument, NULL, OPT_HTTP},
    {"body-timeout", required_argument, NULL, OPT_HTTP},
    {"max-body-bytes", required_argument, NULL, OPT_HTTP},
    {"keepalive-requests", required_argument, NULL, OPT_HTTP},
    {"hsts", required_argument, NULL, OPT_HTTP},
    {"max-header-bytes", required_argument, NULL, OPT_HTTP},
    {"max-uri-bytes", required_argument, NULL, OPT_HTTP},
    {"max-headers", required_argument, NULL, OPT_HTTP},
    {"cache-ttl", required_argument, NULL, OPT_HTTP},
    {"cache-size", required_argument, NULL, OPT_HTTP},
    {"fallback", required_argument, NULL, OPT_HTTP},
    {"fallback-except", required_argument, NULL, OPT_HTTP},
    {"error-page", required_argument, NULL, OPT_HTTP},
    {"compress-level", required_argument, NULL, OPT_HTTP},
    {"no-compress", no_argument, NULL, OPT_NO_COMPRESS},
    {"no-precompressed", no_argument, NULL, OPT_NO_PRECOMPRESSED},
    {"health-path", required_argument, NULL, OPT_HTTP},
    {"tls-cert", required_argument, NULL, OPT_TLS},
    {"tls-key", required_argument, NULL, OPT_TLS},
    {"tls-ticket-rotate", required_argument, NULL, OPT_TLS},
    {"tls-ocsp", required_argument, NULL, OPT_TLS},
    {"tls-session-cache", required_argument, NULL, OPT_TLS},
    {"tls-min-version", required_argument, NULL, OPT_TLS},
    {"tls-ciphers", required_argument, NULL, OPT_TLS},
    {"tls-client-ca", required_argument, NULL, OPT_TLS},
    {"tls-verify-client", required_argument, NULL, OPT_TLS},
    {"https-redirect", no_argument, NULL, OPT_REDIRECT},
    {"help", no_argument, NULL, 'h'},
};

struct serve {
    struct cli_pool pool;
    struct static_config site;
    struct tls_config tls;
    const struct tls_api *tls_api; /* the TLS module, loaded when a listener has ,tls */
    const char *access_log;
    bool redirect; /* --https-redirect */
    bool no_compress; /* --no-compress, whatever --compress-level says */
};

static int set_http(struct serve *s, const char *name, const char *arg)
{
    const char *why = "bad value";
    if (static_config_set(&s->site, name, arg, &why) < 0)
        return cli_error(CLI_USAGE, "--%s '%s': %s", name, arg, why);
    return 0;
}

/* arg as the one line of an error message: control characters as \xHH,
 * cut short (with "...") past cap. */
static const char *printable(const char *arg, char *out, size_t cap)
{
    size_t n = 0;
    for (; *arg && n + 8 < cap; arg++) {
        unsigned char c = (unsigned char)*arg;
        if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    snprintf(out + n, cap - n, "%s", *arg ? "..." : "");
    return out;
}

/* --header, --header-add: one rule, checked now (rules.h). */
static int set_rule(struct serve *s, const char *name, const char *arg, bool add)
{
    char why[256], shown[2048];
    if (static_rules_parse(&s->site.rules, arg, add, why, sizeof why) < 0)
        return cli_error(CLI_USAGE, "--%s '%s': %s", name, printable(arg, shown, sizeof shown),
                         why);
    return 0;
}

static int serve_option(struct serve *s, int opt, const char *name, const char *arg)
{
    switch (opt) {
    case OPT_HTTP:
        return set_http(s, name, arg);
    case OPT_TLS: {
        const char *why = "bad value";
        if (tls_config_set(&s->tls, name, arg, &why) < 0)
            return cli_error(CLI_USAGE, "--%s '%s': %s", name, arg, why);
        return 0;
    }
    case OPT_ACCESS_LOG:
        s->access_log = arg;
        return 0;
    case OPT_INDEX:
        if (!*arg || strchr(arg, '/'))
            return cli_error(CLI_USAGE, "--index '%s': must be a file name", arg);
        s->site.index = arg;
        return 0;
    case OPT_HEADER:
    case OPT_HEADER_ADD:
        return set_rule(s, name, arg, opt == OPT_HEADER_ADD);
    case OPT_REDIRECT:
        s->redirect = true;
        return 0;
    case OPT_NO_LISTING:
        s->site.listing = false;
        return 0;
    case OPT_DOTFILES:
        s->site.dotfiles = true;
        return 0;
    case OPT_SYMLINKS:
        s->site.follow_symlinks = true;
        return 0;
    case OPT_NO_PRECOMPRESSED:
        s->site.precompressed = false;
        return 0;
    case OPT_NO_COMPRESS:
        s->no_compress = true;
        return 0;
    default:
        return cli_error(CLI_USAGE, "serve: unknown option '%s' (see prefork serve --help)",
                         cli_argv_current());
    }
}

static int parse(struct serve *s, int argc, char **argv)
{
    struct option all[CLI_POOL_OPTIONS + sizeof serve_options / sizeof serve_options[0] + 1];
    memcpy(all, cli_pool_options, sizeof cli_pool_options);
    memcpy(all + CLI_POOL_OPTIONS, serve_options, sizeof serve_options);
    memset(&all[sizeof all / sizeof all[0] - 1], 0, sizeof all[0]);
    int opt, idx = -1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":" CLI_POOL_SHORT "h", all, &idx)) != -1) {
        const char *name = idx >= 0 ? all[idx].name : NULL;
        idx = -1;
        if (opt == 'h') {
            fputs(serve_usage, stdout);
            fputs(tls_help, stdout);
            fputs("\n", stdout);
            fputs(cli_pool_help, stdout);
            return -1;
        }
        if (opt == ':')
            return cli_error(CLI_USAGE, "serve: option '%s' needs a value", cli_argv_current());
        int r = cli_pool_option(&s->pool, opt, name, optarg);
        if (r == 0)
            r = serve_option(s, opt, name, optarg);
        else if (r == 1)
            r = 0;
        if (r)
            return r;
    }
    if (s->no_compress)
        s->site.compress_level = 0;
    if (optind < argc)
        s->site.root = argv[optind++];
    if (optind < argc)
        return cli_error(CLI_USAGE, "serve: unexpected argument '%s'", argv[optind]);
    return 0;
}

/* The root and the access log are opened once, in the master, before the
 * workers fork; each worker inherits the descriptors. */
static int open_files(struct serve *s)
{
    s->site.rootfd = open(s->site.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->site.rootfd < 0)
        return cli_error(errno == ENOENT || errno == ENOTDIR ? CLI_USAGE : CLI_FAIL,
                         "serve: '%s': %s", s->site.root, strerror(errno));
    if (!s->access_log || strcmp(s->access_log, "-") == 0) {
        s->site.http.access_log_fd = STDOUT_FILENO;
    } else if (strcmp(s->access_log, "off") != 0) {
        s->site.http.access_log_path = s->access_log;
        s->site.http.access_log_fd =
            open(s->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (s->site.http.access_log_fd < 0)
            return cli_error(CLI_FAIL, "cannot open access log %s: %s", s->access_log,
                             strerror(errno));
    }
    return 0;
}

/* Whether one -l address has no ,tls (the default address has none). */
static bool plain_listener(const struct cli_pool *pool)
{
    for (int i = 0; i < pool->nlisten; i++) {
        struct pf_addr a;
        if (pf_addr_parse(pool->listen[i], &a, NULL) == 0 && !(a.flags & PF_ADDR_TLS))
            return true;
    }
    return pool->nlisten == 0;
}

/* The certificates are read now, in the master, before anything forks:
 * a bad one is a usage error, like a bad option. */
static int load_tls(struct serve *s)
{
    char why[512];
    bool wanted = cli_pool_has_flag(&s->pool, PF_ADDR_TLS);
    if (s->redirect && (!wanted || !plain_listener(&s->pool)))
        return cli_error(CLI_USAGE, "serve: --https-redirect needs a plain listener and a "
                                    "TCP listener with ,tls");
    if (!wanted && !tls_config_used(&s->tls))
        return 0;
    if (!wanted)
        return cli_error(CLI_USAGE, "serve: --%s is for listeners with ,tls "
                                    "(as in -l 127.0.0.1:8443,tls)",
                         s->tls.first[0] ? s->tls.first : "tls-cert");
    if (!(s->tls_api = cli_tls_module(why, sizeof why)))
        return cli_error(CLI_FAIL, "serve: %s", why);
    if (s->tls_api->load(&s->tls, why, sizeof why) < 0)
        return cli_error(CLI_USAGE, "serve: %s", why);
    s->site.http.transport = s->tls_api->source();
    return 0;
}

/* --https-redirect: plain listeners send clients to the first TLS one. */
static int redirect_port(struct serve *s, const pf_pool *pool, char *why, size_t size)
{
    int tls = -1, plain = 0;
    if (!s->redirect)
        return 0;
    for (int i = 0; i < pf_pool_listener_count(pool); i++) {
        if (!(pf_pool_listener_flags(pool, i) & PF_ADDR_TLS))
            plain++;
        else if (tls < 0)
            tls = i;
    }
    char name[128];
    const char *colon;
    if (tls < 0 || plain == 0 || pf_pool_listener_name(pool, tls, name, sizeof name) < 0 ||
        !(colon = strrchr(name, ':')) || strncmp(name, "unix:", 5) == 0) {
        snprintf(why, size, "--https-redirect needs a plain listener and a TCP listener with ,tls");
        return -1;
    }
    s->site.http.https_port = (unsigned)atoi(colon + 1);
    return 0;
}

static int serve_main(struct serve *s, int argc, char **argv)
{
    cli_pool_init(&s->pool);
    static_config_init(&s->site);
    tls_config_init(&s->tls);
    int status = parse(s, argc, argv);
    if (status)
        return status < 0 ? CLI_OK : status;
    if ((status = load_tls(s)) != 0 || (status = open_files(s)) != 0)
        return status;
    char why[256];
    if (static_config_check(&s->site, why, sizeof why) < 0)
        return cli_error(CLI_USAGE, "serve: %s", why);
    if (s->pool.error_log && strcmp(s->pool.error_log, "-") != 0)
        s->site.error_log_path = s->pool.error_log; /* workers may create it anew */
    struct pf_service svc;
    static_service(&s->site, &svc);
    if (s->tls_api)
        s->tls_api->service(&svc);
    /* Set on the listeners, inherited by every connection:
     * - TCP_NODELAY: small responses go out in one send per request; without
     *   it a pipelined second response could wait for a delayed ACK;
     * - TCP_DEFER_ACCEPT: a connection is handed over once its request has
     *   begun to arrive, so the first read finds it and a short connection
     *   is served and closed without an epoll round. A client that connects
     *   and stays silent is handed over after about a second anyway, and
     *   then meets --header-timeout. */
    s->pool.cfg.tcp_nodelay = true;
    s->pool.cfg.defer_accept = true;
    /* A PROXY header is part of what must come within the header timeout. */
    s->pool.cfg.proxy_timeout_ms = s->site.http.header_timeout_ms;
    pf_pool *pool;
    if ((status = cli_pool_start(&s->pool, &svc, "127.0.0.1:8000", &pool)) != 0)
        return status;
    if ((s->tls_api && s->tls_api->listeners(pool, why, sizeof why) < 0) ||
        redirect_port(s, pool, why, sizeof why) < 0) {
        pf_pool_free(pool);
        return cli_error(CLI_USAGE, "serve: %s", why);
    }
    char where[1024];
    cli_pool_where(pool, "http", where, sizeof where);
    printf("prefork: serving %s on %s (%d worker%s, %s)\n", s->site.root, where,
           s->pool.cfg.workers, s->pool.cfg.workers == 1 ? "" : "s",
           pf_mode_name(s->pool.cfg.mode));
    fflush(stdout);
    int err = pf_pool_run(pool);
    pf_pool_free(pool);
    if (s->tls_api)
        s->tls_api->unload();
    return err < 0 ? CLI_FAIL : CLI_OK;
}

int cli_serve(int argc, char **argv)
{
    struct serve s = {0};
    int status = serve_main(&s, argc, argv);
    static_config_free(&s.site);
    return status;
}
