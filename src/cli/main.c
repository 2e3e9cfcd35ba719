/* main.c — the prefork command: global options and dispatch to a subcommand. */
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "prefork.h"

static const char usage_text[] =
    "usage: prefork COMMAND [options]\n"
    "       prefork --help | --version\n"
    "\n"
    "Scale a network service across every core with a pool of worker processes.\n"
    "\n"
    "Commands:\n"
    "  serve [DIR]           serve the files under DIR over HTTP/1.1 (see serve --help)\n"
    "  run -- COMMAND [ARG]  run COMMAND as the workers, listening sockets inherited\n"
    "                        (systemd's LISTEN_FDS; see run --help)\n"
    "  status PID | --pidfile FILE [--json] [--watch]\n"
    "                        the workers of a running pool: pid, generation, state,\n"
    "                        uptime, heartbeat age, connections, requests, bytes,\n"
    "                        what each is doing and for how long\n"
    "\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage error.\n"
    "See prefork(1) and README.md.\n";

int cli_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("prefork: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"serve", cli_serve},
    {"run", cli_run},
    {"status", cli_status},
};

char **cli_argv;

const char *cli_argv_current(void)
{
    return optind > 0 ? cli_argv[optind - 1] : "";
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fputs(usage_text, stderr), CLI_USAGE;
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return fputs(usage_text, stdout), CLI_OK;
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
        return printf("prefork %s\n", PF_VERSION), CLI_OK;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return cli_main_argv = argv, cli_argv = argv + 1,
                   commands[i].run(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cli_error(CLI_USAGE, "unknown option '%s' (see prefork --help)", cmd);
    return cli_error(CLI_USAGE, "unknown command '%s' (see prefork --help)", cmd);
}
