/* test_cli.c — integration tests of prefork's and the echo example's command lines: usage errors, --help, the man page. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#define ECHO "examples/echo"
#define PREFORK "prefork"
#define RUN_MS 20000 /* a usage error is instant; this only bounds a bug */

TestSuite(cli, .fini = ts_cleanup);

/* A file's text, asserted readable; the caller frees it. */
static char *text_of(const char *path)
{
    char *t = ts_read_file(path);
    cr_assert_not_null(t, "cannot read %s", path);
    return t;
}

static bool one_line(const char *s)
{
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '\n' && strchr(s, '\n') == s + n - 1;
}

/* Run argv; expect exit code, nothing on stdout and exactly one line on
 * stderr that starts with the program's name and a colon ("echo: ",
 * "prefork: ") and contains want. */
static void expect_one_line(const char *const *argv, int code, const char *want)
{
    struct ts_proc *p;
    int status = ts_run(argv, RUN_MS, &p);
    char *out = text_of(p->out), *err = text_of(p->err);
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    char args[256] = "";
    for (int i = 1; argv[i]; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), " %s", argv[i]);
    ts_assert(status >= 0, "%s%s: still running after %d ms", name, args, RUN_MS);
    ts_assert(WIFEXITED(status) && WEXITSTATUS(status) == code,
              "%s%s: wait status 0x%x, expected exit %d", name, args, status, code);
    ts_assert(out[0] == '\0', "%s%s: wrote on stdout: %s", name, args, out);
    ts_assert(one_line(err), "%s%s: stderr is not one line: [%s]", name, args, err);
    ts_assert(strncmp(err, name, strlen(name)) == 0 && strncmp(err + strlen(name), ": ", 2) == 0,
              "%s%s: line not tagged: %s", name, args, err);
    ts_assert(strstr(err, want) != NULL, "%s%s: [%s] lacks \"%s\"", name, args, err, want);
    free(out);
    free(err);
}

#define EXPECT_USAGE(want, ...) \
    expect_one_line((const char *const[]){ECHO, __VA_ARGS__, NULL}, 2, want)
#define EXPECT_PREFORK(code, want, ...) \
    expect_one_line((const char *const[]){PREFORK, __VA_ARGS__, NULL}, code, want)

Test(cli, unknown_option, .timeout = 60)
{
    EXPECT_USAGE("--bogus", "-l", "127.0.0.1:0", "--bogus");
    EXPECT_USAGE("-x", "-l", "127.0.0.1:0", "-x");
    EXPECT_USAGE("stray", "-l", "127.0.0.1:0", "stray");
}

Test(cli, bad_address, .timeout = 60)
{
    EXPECT_USAGE("'1.2.3:80'", "-l", "1.2.3:80");
    EXPECT_USAGE("'nohost:80'", "-l", "nohost:80");
    EXPECT_USAGE("'127.0.0.1:65536'", "-l", "127.0.0.1:65536");
    EXPECT_USAGE("'127.0.0.1'", "--listen", "127.0.0.1");
}

Test(cli, bad_worker_count, .timeout = 60)
{
    static const char *const bad[] = {"0", "-1", "100000", "abc", "", "4x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "--workers '%s': must be a whole number from 1 to 1024",
                 bad[i]);
        EXPECT_USAGE(want, "-l", "127.0.0.1:0", "-w", bad[i]);
    }
    EXPECT_USAGE("--workers '0'", "-l", "127.0.0.1:0", "--workers", "0");
    EXPECT_USAGE("--workers '0'", "-l", "127.0.0.1:0", "--workers=0");
}

Test(cli, bad_pool_options, .timeout = 60)
{
    EXPECT_USAGE("--backlog 'x'", "-l", "127.0.0.1:0", "--backlog", "x");
    EXPECT_USAGE("--max-conns '0'", "-l", "127.0.0.1:0", "--max-conns", "0");
    EXPECT_USAGE("--graceful-timeout '-1'", "-l", "127.0.0.1:0", "--graceful-timeout", "-1");
    EXPECT_USAGE("--max-start-failures '0'", "-l", "127.0.0.1:0", "--max-start-failures",
                 "0");
    EXPECT_USAGE("--cpu-affinity 'x'", "-l", "127.0.0.1:0", "--cpu-affinity", "x");
    EXPECT_USAGE("--cpu-affinity '3-1'", "-l", "127.0.0.1:0", "--cpu-affinity", "3-1");
    EXPECT_USAGE("--cpu-affinity '1023'", "-l", "127.0.0.1:0", "--cpu-affinity", "1023");
}

Test(cli, missing_value, .timeout = 60)
{
    EXPECT_USAGE("needs a value", "-l", "127.0.0.1:0", "-w");
    EXPECT_USAGE("needs a value", "-l", "127.0.0.1:0", "--workers");
    EXPECT_USAGE("needs a value", "-l");
    EXPECT_USAGE("needs a value", "-l", "127.0.0.1:0", "--graceful-timeout");
}

Test(cli, help, .timeout = 60)
{
    struct ts_proc *p;
    int status = TS_RUN(&p, RUN_MS, ECHO, "--help");
    char *out = text_of(p->out), *err = text_of(p->err);
    ts_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "--help: wait status 0x%x", status);
    ts_assert(strncmp(out, "usage: echo", 11) == 0, "--help: stdout is [%s]", out);
    ts_assert(strstr(out, "--workers") && strstr(out, "--listen"), "usage lacks options");
    ts_assert(err[0] == '\0', "--help: wrote on stderr: %s", err);
    free(out);
    free(err);
}

/* A loopback port that is bound and listening until the fd is closed. */
static int busy_port(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(fd, 1), 0, "listen: %s", strerror(errno));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

Test(cli, port_in_use, .timeout = 60)
{
    int port, fd = busy_port(&port);
    char addr[64], want[128];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(want, sizeof want, "%s: Address already in use", addr);
    expect_one_line((const char *const[]){ECHO, "-l", addr, "-w", "1", NULL}, 1, want);
    close(fd);
}

/* ---- prefork's own command line ---- */

/* Run prefork with argv; expect exit 0, stdout starting with head (the
 * caller frees it), nothing on stderr. */
static char *expect_stdout(const char *const *argv, const char *head)
{
    struct ts_proc *p;
    int status = ts_run(argv, RUN_MS, &p);
    char *out = text_of(p->out), *err = text_of(p->err);
    ts_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "prefork %s: wait status 0x%x", argv[1], status);
    ts_assert(strncmp(out, head, strlen(head)) == 0, "prefork %s: stdout is [%s]", argv[1], out);
    ts_assert(err[0] == '\0', "prefork %s: wrote on stderr: %s", argv[1], err);
    free(err);
    return out;
}

Test(cli, prefork_help_and_version, .timeout = 60)
{
    static const char *const cases[][3] = {
        {"--help", NULL, "usage: prefork COMMAND"},
        {"--version", NULL, "prefork "},
        {"serve", "--help", "usage: prefork serve"},
        {"run", "--help", "usage: prefork run"},
        {"status", "--help", "usage: prefork status"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        free(expect_stdout((const char *const[]){PREFORK, cases[i][0], cases[i][1], NULL},
                           cases[i][2]));
}

Test(cli, prefork_usage_errors, .timeout = 60)
{
    EXPECT_PREFORK(2, "unknown command 'bogus'", "bogus");
    EXPECT_PREFORK(2, "unknown option '--bogus'", "serve", "--bogus");
    EXPECT_PREFORK(2, "unexpected argument 'b'", "serve", "a", "b");
    EXPECT_PREFORK(2, "--workers '0'", "serve", "-w", "0");
    EXPECT_PREFORK(2, "'/nonexistent-prefork-root': No such file or directory", "serve",
                   "/nonexistent-prefork-root");
    EXPECT_PREFORK(2, "--cache-ttl '-1'", "serve", "--cache-ttl", "-1");
    EXPECT_PREFORK(2, "--max-header-bytes '10'", "serve", "--max-header-bytes", "10");
    EXPECT_PREFORK(2, "--header-timeout 'x'", "serve", "--header-timeout", "x");
    EXPECT_PREFORK(2, "--log-level 'loud': must be error, warning, info or debug", "serve",
                   "--log-level", "loud");
    EXPECT_PREFORK(2, "--log-level 'DEBUG'", "run", "--log-level", "DEBUG", "--", "true");
    EXPECT_PREFORK(2, "--access-log", "serve", "--access-log");
    EXPECT_PREFORK(2, "--header 'Cache-Control: no-cache': the pattern must start with",
                   "serve", "--header", "Cache-Control: no-cache");
    EXPECT_PREFORK(2, "--header-add '/x Date: 1': Date is written by the server", "serve",
                   "--header-add", "/x Date: 1");
    /* A line break in the value is refused, and shown escaped: still one line. */
    EXPECT_PREFORK(2, "--header '/x A: b\\x0aC: d': the value has a control character",
                   "serve", "--header", "/x A: b\nC: d");
    /* More of status's in test_lifecycle.c, beside a running pool. */
    EXPECT_PREFORK(2, "option '--pidfile' needs a value", "status", "--pidfile");
}

Test(cli, prefork_status_of_no_pool_is_a_runtime_failure, .timeout = 60)
{
    /* A pid that is free: a child that has been reaped. */
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    char arg[32];
    snprintf(arg, sizeof arg, "%d", (int)pid);
    EXPECT_PREFORK(1, "No such process", "status", arg);
}

/* Every long option that a --help lists is in the man page (as groff
 * writes it: "\-\-name"). */
Test(cli, man_page_has_every_option, .timeout = 60)
{
    static const char *const cmds[] = {"serve", "run", "status"};
    char *man = text_of("docs/prefork.1");
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        char *out = expect_stdout((const char *const[]){PREFORK, cmds[c], "--help", NULL},
                                  "usage: prefork");
        int seen = 0;
        for (const char *o = strstr(out, "--"); o; o = strstr(o + 2, "--")) {
            size_t n = 2;
            while ((o[n] >= 'a' && o[n] <= 'z') || (o[n] == '-' && o[n + 1] != '-' && n > 2))
                n++;
            if (n == 2)
                continue;
            char want[80] = "";
            for (size_t i = 0; i < n && strlen(want) + 3 < sizeof want; i++)
                strcat(want, o[i] == '-' ? "\\-" : (char[]){o[i], 0});
            ts_assert(strstr(man, want), "prefork %s --help lists %.*s; the man page lacks it",
                      cmds[c], (int)n, o);
            seen++;
        }
        ts_assert(seen > 3, "prefork %s --help: only %d options found", cmds[c], seen);
        free(out);
    }
    free(man);
}
