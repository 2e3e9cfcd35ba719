/* options.c — the pool options every prefork command shares (-l, -w, --mode, ...), parsed alike. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"

enum { OPT_POOL = 0x100, OPT_ERROR_LOG };

/* Long options whose value pf_config_set parses, by the same name. */
const struct option cli_pool_options[CLI_POOL_OPTIONS] = {
    {"listen", required_argument, NULL, 'l'},
    {"workers", required_argument, NULL, 'w'},
    {"mode", required_argument, NULL, OPT_POOL},
    {"backlog", required_argument, NULL, OPT_POOL},
    {"max-conns", required_argument, NULL, OPT_POOL},
    {"graceful-timeout", required_argument, NULL, OPT_POOL},
    {"max-start-failures", required_argument, NULL, OPT_POOL},
    {"error-log", required_argument, NULL, OPT_ERROR_LOG},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
};

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

int cli_pool_start(struct cli_pool *pool, const struct pf_service *svc,
                   const char *fallback, pf_pool **out)
{
    pf_log_set_level(pool->cfg.log_level);
    int err = pf_log_open(pool->error_log);
    if (err < 0)
        return cli_error(CLI_FAIL, "cannot open error log %s: %s", pool->error_log,
                         strerror(-err));
    err = pf_pool_new(out, &pool->cfg, svc);
    if (err == -ENOTSUP)
        return cli_error(CLI_USAGE, "--mode %s: not available yet (only shared)",
                         pf_mode_name(pool->cfg.mode));
    if (err < 0)
        return cli_error(CLI_FAIL, "cannot create the pool: %s", strerror(-err));
    int status = bind_all(pool, *out, fallback);
    if (status) {
        pf_pool_free(*out);
        *out = NULL;
    }
    return status;
}

void cli_pool_where(const pf_pool *p, const char *scheme, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < pf_pool_listener_count(p) && n < size; i++) {
        char name[128];
        pf_pool_listener_name(p, i, name, sizeof name);
        bool unix_ = strncmp(name, "unix:", 5) == 0 || strncmp(name, "fd:", 3) == 0;
        n += (size_t)snprintf(buf + n, size - n, "%s%s%s%s", i ? ", " : "",
                              unix_ ? "" : scheme, name, unix_ ? "" : "/");
    }
}
