/* options.h — the pool options every prefork command shares (-l, -w, --mode, ...), parsed alike. */
#ifndef PF_CLI_OPTIONS_H
#define PF_CLI_OPTIONS_H

#include <getopt.h>

#include "prefork.h"

/* What the common options set. */
struct cli_pool {
    struct pf_config cfg;
    const char *listen[PF_MAX_LISTENERS];
    int nlisten;
    const char *error_log; /* NULL: stderr */
    const char *user, *group; /* --user / --group, resolved at start */
};

/* getopt_long entries of the common options, ending with a zero entry;
 * a command copies them in front of its own. Their `val`s are >= 0x100. */
#define CLI_POOL_OPTIONS 24
extern const struct option cli_pool_options[CLI_POOL_OPTIONS];
#define CLI_POOL_SHORT "l:w:qv"

void cli_pool_init(struct cli_pool *pool);

/* Handle one getopt_long result (opt, the long option's name or NULL for a
 * short one, its value). Returns 1 if it was a common option and was fine,
 * 0 if it is not one, or CLI_USAGE after printing the one-line error. */
int cli_pool_option(struct cli_pool *pool, int opt, const char *name, const char *arg);

/* Open the error log, create the pool, bind its listeners (systemd's when no
 * -l was given, else the default address). Prints the error and returns an
 * exit status (0 on success). */
int cli_pool_start(struct cli_pool *pool, const struct pf_service *svc,
                   const char *fallback, pf_pool **out);

/* The text of the pool options for a command's --help. */
extern const char cli_pool_help[];

/* The whole command line, for an upgrade to exec again (set by main). */
extern char **cli_main_argv;

/* "http://127.0.0.1:8000/, https://[::1]:8443/" into buf: scheme is
 * "http" or the like, "s" is added for the listeners with ,tls. */
void cli_pool_where(const pf_pool *p, const char *scheme, char *buf, size_t size);

/* Whether one of the -l addresses carries flag (PF_ADDR_TLS). */
bool cli_pool_has_flag(const struct cli_pool *pool, unsigned flag);

#endif
