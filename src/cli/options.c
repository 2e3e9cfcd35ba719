/* options.c — the pool options every prefork command shares (-l, -w, --mode, ...), parsed alike. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"

enum { OPT_POOL = 0x100, OPT_ERROR_LOG, OPT_PIDFILE, OPT_USER, OPT_GROUP };

/* Long options whose value pf_config_set parses, by the same name. */
const struct option cli_pool_options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"workers", required_argument, NULL, 'w'},
    {"mode", required_argument, NULL, OPT_POOL},
    {"backlog", required_argument, NULL, OPT_POOL},
    {"max-conns", required_argument, NULL, OPT_POOL},
    {"accept-batch", required_argument, NULL, OPT_POOL},
    {"graceful-timeout", required_argument, NULL, OPT_POOL},
    {"max-start-failures", required_argument, NULL, OPT_POOL},
    {"max-requests", required_argument, NULL, OPT_POOL},
    {"max-requests-jitter", required_argument, NULL, OPT_POOL},
    {"timeout", required_argument, NULL, OPT_POOL},
    {"ready-timeout", required_argument, NULL, OPT_POOL},
    {"pre-stop-delay", required_argument, NULL, OPT_POOL},
    {"max-generations", required_argument, NULL, OPT_POOL},
    {"cpu-affinity", required_argument, NULL, OPT_POOL},
    {"metrics-listen", required_argument, NULL, OPT_POOL},
    {"proxy-allow-from", required_argument, NULL, OPT_POOL},
    {"error-log", required_argument, NULL, OPT_ERROR_LOG},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"user", required_argument, NULL, OPT_USER},
    {"group", required_argument, NULL, OPT_GROUP},
    {"log-level", required_argument, NULL, OPT_POOL},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
};

_Static_assert(sizeof cli_pool_options / sizeof cli_pool_options[0] == CLI_POOL_OPTIONS,
               "CLI_POOL_OPTIONS must count cli_pool_options");

const char cli_pool_help[] =
    "Pool options:\n"
    "  -l, --listen ADDR[,tls][,proxy]  HOST:PORT, [V6]:PORT, :PORT, unix:PATH,\n"
    "                               fd:N (repeatable; default 127.0.0.1:8000);\n"
    "                               ,tls: HTTPS there (see the TLS options);\n"
    "                               ,proxy: each connection starts with a load\n"
    "                               balancer's PROXY protocol header (v1 or v2)\n"
    "  -w, --workers N              worker processes (default: online CPUs)\n"
    "      --mode MODE              how connections reach workers: shared (one\n"
    "                               accept queue, the default), reuseport (a socket\n"
    "                               per worker), dispatch (the master passes each)\n"
    "      --backlog N              listen backlog (default: net.core.somaxconn)\n"
    "      --max-conns N            connections per worker (default 10000)\n"
    "      --accept-batch N         connections a worker accepts per wake-up (16)\n"
    "      --graceful-timeout SEC   drain deadline on TERM and reloads (default 60)\n"
    "      --max-start-failures N   give up after N failed starts (default 5)\n"
    "      --max-requests N         recycle a worker after N requests (0: never)\n"
    "      --max-requests-jitter N  ... plus a random 0..N per worker\n"
    "      --timeout SEC            replace a worker whose heartbeat is older (0: off)\n"
    "      --ready-timeout SEC      a reload's or upgrade's workers must be ready (60)\n"
    "      --pre-stop-delay SEC     on TERM keep serving SEC before stopping (0)\n"
    "      --max-generations N      generations alive at once, draining ones too (3)\n"
    "      --cpu-affinity CPUS      pin worker i to one CPU: off (the default), auto\n"
    "                               (one per CPU this process may use) or a list\n"
    "                               such as 0-3,6 (worker i on its (i mod n)-th CPU);\n"
    "                               with --mode reuseport, connections also go to\n"
    "                               the worker on their CPU\n"
    "      --proxy-allow-from CIDR[,CIDR...]  the sources a ,proxy listener takes\n"
    "                               the header from; others are closed (default\n"
    "                               127.0.0.1,::1; unix for Unix-socket peers)\n"
    "      --metrics-listen ADDR    the master answers GET /metrics there, in\n"
    "                               Prometheus text format (default: off)\n"
    "      --user USER, --group GROUP  workers run as USER/GROUP (bind as root first)\n"
    "      --pidfile FILE           written once ready, replaced on upgrade\n"
    "      --error-log FILE|-       where log lines go (default: stderr; USR1 reopens)\n"
    "  -q, --quiet / -v, --verbose  fewer / more log lines (--log-level warning /\n"
    "                               debug)\n"
    "      --log-level LEVEL        error, warning, info (the default) or debug\n";

char **cli_main_argv;

void cli_pool_init(struct cli_pool *pool)
{
    memset(pool, 0, sizeof *pool);
    pf_config_init(&pool->cfg);
}

/* OPT_POOL options carry the name pf_config_set knows them by. */
static int set_pool(struct cli_pool *pool, const char *name, const char *arg)
{
    const char *why = "bad value";
    if (pf_config_set(&pool->cfg, name, arg, &why) < 0)
        return cli_error(CLI_USAGE, "--%s '%s': %s", name, arg, why);
    return 1;
}

int cli_pool_option(struct cli_pool *pool, int opt, const char *name, const char *arg)
{
    const char *why;
    switch (opt) {
    case 'l': {
        struct pf_addr a;
        if (pool->nlisten == PF_MAX_LISTENERS)
            return cli_error(CLI_USAGE, "--listen '%s': at most %d listeners", arg,
                             PF_MAX_LISTENERS);
        if (pf_addr_parse(arg, &a, &why) < 0)
            return cli_error(CLI_USAGE, "--listen '%s': %s", arg, why);
        pool->listen[pool->nlisten++] = arg;
        return 1;
    }
    case 'w':
        if (pf_config_set(&pool->cfg, "workers", arg, &why) < 0)
            return cli_error(CLI_USAGE, "--workers '%s': %s", arg, why);
        return 1;
    case OPT_POOL:
        return set_pool(pool, name, arg);
    case OPT_ERROR_LOG:
        pool->error_log = arg;
        return 1;
    case OPT_PIDFILE:
        pool->cfg.pidfile = arg;
        return 1;
    case OPT_USER:
        pool->user = arg;
        return 1;
    case OPT_GROUP:
        pool->group = arg;
        return 1;
    case 'q':
        pool->cfg.log_level = PF_LOG_WARN;
        return 1;
    case 'v':
        pool->cfg.log_level = PF_LOG_DEBUG;
        return 1;
    default:
        return 0;
    }
}

static int bind_all(struct cli_pool *pool, pf_pool *p, const char *fallback)
{
    if (pool->nlisten == 0 && pf_pool_listen_systemd(p) > 0)
        return 0;
    if (pool->nlisten == 0)
        pool->listen[pool->nlisten++] = fallback;
    for (int i = 0; i < pool->nlisten; i++) {
        int err = pf_pool_listen(p, pool->listen[i]);
        if (err < 0)
            return cli_error(CLI_FAIL, "cannot listen on %s: %s", pool->listen[i],
                             strerror(-err));
    }
    return 0;
}

/* --user NAME (its primary group unless --group) or a numeric id. Workers
 * switch after fork; the master keeps root to bind and supervise. */
static int resolve_user(struct cli_pool *pool)
{
    struct pf_config *cfg = &pool->cfg;
    if (pool->user) {
        struct passwd *pw = getpwnam(pool->user);
        if (!pw)
            return cli_error(CLI_USAGE, "--user '%s': no such user", pool->user);
        cfg->uid = pw->pw_uid;
        cfg->gid = pw->pw_gid;
        cfg->drop_privileges = true;
    }
    if (pool->group) {
        struct group *gr = getgrnam(pool->group);
        if (!gr)
            return cli_error(CLI_USAGE, "--group '%s': no such group", pool->group);
        cfg->gid = gr->gr_gid;
        if (!pool->user)
            cfg->uid = geteuid();
        cfg->drop_privileges = true;
    }
    if (cfg->drop_privileges && geteuid() != 0)
        return cli_error(CLI_USAGE, "--user/--group need the master to run as root");
    if (!cfg->drop_privileges && geteuid() == 0)
        fprintf(stderr, "prefork: warning: workers run as root; use --user to drop privileges\n");
    return 0;
}

/* An upgrade execs the program found at this path now, which is where a
 * new version is installed; /proc/self/exe would name the old, deleted one. */
static void set_upgrade(pf_pool *p)
{
    static char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || !cli_main_argv)
        return;
    self[n] = '\0';
    pf_pool_set_upgrade(p, self, cli_main_argv);
}

int cli_pool_start(struct cli_pool *pool, const struct pf_service *svc,
                   const char *fallback, pf_pool **out)
{
    int status = resolve_user(pool);
    if (status)
        return status;
    pool->cfg.error_log = pool->error_log;
    pf_log_set_level(pool->cfg.log_level);
    int err = pf_log_open(pool->error_log);
    if (err < 0)
        return cli_error(CLI_FAIL, "cannot open error log %s: %s", pool->error_log,
                         strerror(-err));
    err = pf_pool_new(out, &pool->cfg, svc);
    if (err < 0)
        return cli_error(CLI_FAIL, "cannot create the pool: %s", strerror(-err));
    status = bind_all(pool, *out, fallback);
    if (status) {
        pf_pool_free(*out);
        *out = NULL;
        return status;
    }
    set_upgrade(*out);
    return 0;
}

bool cli_pool_has_flag(const struct cli_pool *pool, unsigned flag)
{
    for (int i = 0; i < pool->nlisten; i++) {
        struct pf_addr a;
        if (pf_addr_parse(pool->listen[i], &a, NULL) == 0 && (a.flags & flag))
            return true;
    }
    return false;
}

void cli_pool_where(const pf_pool *p, const char *scheme, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < pf_pool_listener_count(p) && n < size; i++) {
        char name[128];
        pf_pool_listener_name(p, i, name, sizeof name);
        bool unix_ = strncmp(name, "unix:", 5) == 0 || strncmp(name, "fd:", 3) == 0;
        bool tls = pf_pool_listener_flags(p, i) & PF_ADDR_TLS;
        if (unix_)
            n += (size_t)snprintf(buf + n, size - n, "%s%s%s", i ? ", " : "", name,
                                  tls ? " (TLS)" : "");
        else
            n += (size_t)snprintf(buf + n, size - n, "%s%s%s://%s/", i ? ", " : "", scheme,
                                  tls ? "s" : "", name);
    }
}
