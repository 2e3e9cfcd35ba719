/* cli.h — the prefork command's subcommands and their shared conventions. */
#ifndef PF_CLI_H
#define PF_CLI_H

/* Exit statuses of the prefork command. */
#define CLI_OK 0
#define CLI_FAIL 1  /* a runtime failure */
#define CLI_USAGE 2 /* a usage error: one line on stderr */

/* Each subcommand gets argv from its own name on, and returns an exit status. */
int cli_status(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_run(int argc, char **argv);

/* The argv the subcommand's getopt_long is walking, and the option it has
 * just read (for messages). */
extern char **cli_argv;
const char *cli_argv_current(void);

/* Print "prefork: " and the message on stderr, then return status. */
int cli_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
