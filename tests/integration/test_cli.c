/* test_cli.c — integration tests of the echo example's command line: usage errors, --help, a port in use. */
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

/* Run echo with argv; expect exit code, nothing on stdout and exactly one
 * line on stderr that starts with "echo: " and contains want. */
static void expect_one_line(const char *const *argv, int code, const char *want)
{
    struct ts_proc *p;
    int status = ts_run(argv, RUN_MS, &p);
    char *out = text_of(p->out), *err = text_of(p->err);
    char args[256] = "";
    for (int i = 1; argv[i]; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), " %s", argv[i]);
    ts_assert(status >= 0, "echo%s: still running after %d ms", args, RUN_MS);
    ts_assert(WIFEXITED(status) && WEXITSTATUS(status) == code,
              "echo%s: wait status 0x%x, expected exit %d", args, status, code);
    ts_assert(out[0] == '\0', "echo%s: wrote on stdout: %s", args, out);
    ts_assert(one_line(err), "echo%s: stderr is not one line: [%s]", args, err);
    ts_assert(strncmp(err, "echo: ", 6) == 0, "echo%s: line not tagged: %s", args, err);
    ts_assert(strstr(err, want) != NULL, "echo%s: [%s] lacks \"%s\"", args, err, want);
    free(out);
    free(err);
}

#define EXPECT_USAGE(want, ...) \
    expect_one_line((const char *const[]){ECHO, __VA_ARGS__, NULL}, 2, want)

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
