/* run.c — `prefork run -- COMMAND`: scale a program written in any language by running it as the workers. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"

/*
 * Each worker is COMMAND itself: the library forks the worker, which
 * becomes the program with pf_worker_exec (the listening sockets at
 * descriptors 3, 4, ..., systemd's socket activation variables LISTEN_FDS,
 * LISTEN_PID = its own pid, LISTEN_FDNAMES, and PREFORK_WORKER /
 * PREFORK_GENERATION). The master keeps supervising it: readiness and heartbeat come
 * through NOTIFY_SOCKET (sd_notify), its output is logged line by line
 * under its worker's name, and the stop signal asks it to finish.
 */

static const char run_usage[] =
    "usage: prefork run [options] -- COMMAND [ARG...]\n"
    "Run COMMAND as each worker, with the listening sockets as descriptors 3, 4, ...\n"
    "and LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, PREFORK_WORKER, PREFORK_GENERATION\n"
    "and NOTIFY_SOCKET in its environment (systemd's socket activation and sd_notify).\n"
    "\n"
    "Program options:\n"
    "      --stop-signal SIG        what asks a worker to finish (default TERM; then\n"
    "                               KILL after --graceful-timeout)\n"
    "      --ready-delay SEC        a worker that never says READY=1 counts as ready\n"
    "                               after SEC (default 0: it must say it)\n"
    "      --max-lifetime SEC       recycle a worker after SEC (0: never)\n"
    "      --max-lifetime-jitter SEC  ... plus a random 0..SEC per worker\n"
    "      --no-capture             leave the program's stdout and stderr as they\n"
    "                               are (default: logged line by line, tagged)\n"
    "No TLS, no PROXY protocol: the program reads its sockets itself, so ,tls\n"
    "and ,proxy listeners and the --tls-* options are refused; a program that\n"
    "wants TLS or the PROXY header handles it on its own.\n"
    "  -h, --help\n"
    "\n";

enum { OPT_PROGRAM = 0x300, OPT_NO_CAPTURE, OPT_TLS };

static const struct option run_options[] = {
    {"stop-signal", required_argument, NULL, OPT_PROGRAM},
    {"ready-delay", required_argument, NULL, OPT_PROGRAM},
    {"max-lifetime", required_argument, NULL, OPT_PROGRAM},
    {"max-lifetime-jitter", required_argument, NULL, OPT_PROGRAM},
    {"no-capture", no_argument, NULL, OPT_NO_CAPTURE},
    {"tls-cert", required_argument, NULL, OPT_TLS},
    {"tls-key", required_argument, NULL, OPT_TLS},
    {"tls-ticket-rotate", required_argument, NULL, OPT_TLS},
    {"tls-ocsp", required_argument, NULL, OPT_TLS},
    {"tls-session-cache", required_argument, NULL, OPT_TLS},
    {"tls-min-version", required_argument, NULL, OPT_TLS},
    {"tls-ciphers", required_argument, NULL, OPT_TLS},
    {"tls-client-ca", required_argument, NULL, OPT_TLS},
    {"tls-verify-client", required_argument, NULL, OPT_TLS},
    {"help", no_argument, NULL, 'h'},
};

/* The program gets the listening sockets themselves, and reads and writes
 * its connections on its own: nothing can sit between them to decrypt. */
static const char no_tls[] =
    "the program gets the raw sockets, so prefork cannot terminate TLS for it; "
    "let the program speak TLS on a plain listener, or use prefork serve";

/* The program to run: argv as given, for execvp in every worker. */
struct program {
    char **argv;
};

static int parse(struct cli_pool *pool, int argc, char **argv, char ***command)
{
    struct option all[CLI_POOL_OPTIONS + sizeof run_options / sizeof run_options[0] + 1];
    memcpy(all, cli_pool_options, sizeof cli_pool_options);
    memcpy(all + CLI_POOL_OPTIONS, run_options, sizeof run_options);
    memset(&all[sizeof all / sizeof all[0] - 1], 0, sizeof all[0]);
    int opt, idx = -1;
    const char *why;
    opterr = 0;
    /* "+": stop at the command, so that its own options stay its own. */
    while ((opt = getopt_long(argc, argv, "+:" CLI_POOL_SHORT "h", all, &idx)) != -1) {
        const char *name = idx >= 0 ? all[idx].name : NULL;
        idx = -1;
        if (opt == 'h')
            return fputs(run_usage, stdout), fputs(cli_pool_help, stdout), -1;
        if (opt == ':')
            return cli_error(CLI_USAGE, "run: option '%s' needs a value", cli_argv_current());
        int r = cli_pool_option(pool, opt, name, optarg);
        if (r == 1)
            continue;
        if (r)
            return r;
        if (opt == OPT_TLS)
            return cli_error(CLI_USAGE, "run: --%s: %s", name, no_tls);
        if (opt == OPT_NO_CAPTURE) {
            pool->cfg.capture_output = false;
            continue;
        }
        if (opt != OPT_PROGRAM)
            return cli_error(CLI_USAGE, "run: unknown option '%s' (see prefork run --help)",
                             cli_argv_current());
        if (pf_config_set(&pool->cfg, name, optarg, &why) < 0)
            return cli_error(CLI_USAGE, "--%s '%s': %s", name, optarg, why);
    }
    if (optind >= argc)
        return cli_error(CLI_USAGE, "run: which program? prefork run [options] -- COMMAND");
    *command = argv + optind;
    return 0;
}

/* Whether name is an executable regular file, or found as one on $PATH:
 * 0, -ENOENT or -EACCES. */
static int findable(const char *name)
{
    struct stat st;
    if (strchr(name, '/'))
        return stat(name, &st) < 0 ? -errno
               : !S_ISREG(st.st_mode) || access(name, X_OK) < 0 ? -EACCES : 0;
    const char *path = getenv("PATH");
    int err = -ENOENT;
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%.*s/%s", (int)n, n ? p : ".", name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
            err = access(full, X_OK) == 0 ? 0 : -EACCES;
        if (err == 0)
            return 0;
        p += n + (p[n] == ':');
    }
    return err;
}

/* The worker becomes the program (pf_worker_exec), or says why not. */
static int run_main(pf_worker *w, void *ud)
{
    const struct program *prog = ud;
    pf_worker_exec(w, prog->argv); /* returns only on failure, logged */
    return 127;                    /* the shell's "cannot run" */
}

int cli_run(int argc, char **argv)
{
    struct cli_pool pool;
    char **command = NULL;
    cli_pool_init(&pool);
    pool.cfg.capture_output = true;
    int status = parse(&pool, argc, argv, &command);
    if (status)
        return status < 0 ? CLI_OK : status;
    int err = findable(command[0]);
    if (err < 0)
        return cli_error(CLI_USAGE, "run: '%s': %s", command[0],
                         err == -ENOENT ? "command not found" : "not an executable file");
    if (cli_pool_has_flag(&pool, PF_ADDR_TLS))
        return cli_error(CLI_USAGE, "run: --listen ADDR,tls: %s", no_tls);
    if (cli_pool_has_flag(&pool, PF_ADDR_PROXY))
        return cli_error(CLI_USAGE, "run: --listen ADDR,proxy: the program gets the raw "
                         "connections, so the PROXY header is its to read");
    if (pool.cfg.mode == PF_MODE_DISPATCH)
        return cli_error(CLI_USAGE, "--mode dispatch: a program needs listening sockets; "
                                    "use shared or reuseport");
    pool.cfg.notify = true;
    struct program prog = {command};
    struct pf_service svc = {.main = run_main, .ud = &prog};
    pf_pool *p;
    if ((status = cli_pool_start(&pool, &svc, "127.0.0.1:8000", &p)) != 0)
        return status;
    char where[1024];
    cli_pool_where(p, "http", where, sizeof where);
    printf("prefork: running %s on %s (%d worker%s, %s)\n", command[0], where, pool.cfg.workers,
           pool.cfg.workers == 1 ? "" : "s", pf_mode_name(pool.cfg.mode));
    fflush(stdout);
    err = pf_pool_run(p);
    pf_pool_free(p);
    /* A program that went away while running: exec's own status. */
    if (err == -ECHILD && findable(command[0]) < 0)
        return cli_error(127, "run: '%s' is gone", command[0]);
    return err < 0 ? CLI_FAIL : CLI_OK;
}
