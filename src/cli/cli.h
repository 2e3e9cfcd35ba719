/* cli.h — the prefork command's subcommands and their shared conventions. */
#ifndef PF_CLI_H
#define PF_CLI_H

/* Exit statuses of the prefork command. */
#define CLI_OK 0
#define CLI_FAIL 1  /* a runtime failure */
#define CLI_USAGE 2 /* a usage error: one line on stderr */

/* Each subcommand gets argv from its own name on, and returns an exit status. */
int cli_status(int argc, char **argv);

/* Print "prefork: " and the message on stderr, then return status. */
int cli_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
