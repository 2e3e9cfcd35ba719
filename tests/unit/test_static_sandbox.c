/* test_static_sandbox.c — unit tests of a serve worker's Landlock sandbox: what it may still open, and what it may not. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/static/sandbox.h"
#include "child_support.h"

/* base/root/{a.txt, sub/, out.txt -> ../outside.txt}, base/outside.txt,
 * base/logs/access.log */
static char base[64];

static void put(const char *rel, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    char path[128];
    snprintf(base, sizeof base, "/tmp/pf_sandbox_XXXXXX");
    cr_assert_not_null(mkdtemp(base));
    snprintf(path, sizeof path, "%s/root", base);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/root/sub", base);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/logs", base);
    cr_assert_eq(mkdir(path, 0755), 0);
    put("root/a.txt", "in the root\n");
    put("outside.txt", "secret\n");
    put("logs/access.log", "");
    snprintf(path, sizeof path, "%s/root/out.txt", base);
    cr_assert_eq(symlink("../outside.txt", path), 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (base[0])
        nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(sandbox, .init = setup, .fini = teardown, .timeout = 20);

/* ---- in the sandboxed child: each check prints what failed; the exit
 * status says whether any did ---- */

static int failures;

/* open(base/rel, flags): expect success (want 0) or that errno. */
static void expect_open(const char *rel, int flags, int want)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    int fd = open(path, flags | O_CLOEXEC, 0644);
    int got = fd < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    if (got != want) {
        fprintf(stderr, "open %s (flags 0x%x): %s, expected %s\n", rel, flags, strerror(got),
                strerror(want));
        failures++;
    }
}

static void expect_errno(const char *what, int rc, int want)
{
    int got = rc < 0 ? errno : 0;
    if (got != want) {
        fprintf(stderr, "%s: %s, expected %s\n", what, strerror(got), strerror(want));
        failures++;
    }
}

/* Sandbox this process as a worker of `serve base/root` would be, with the
 * access log in base/logs. Returns the ABI, after skipping the test (in the
 * parent, by exit status 77) on a kernel without Landlock. */
static int become_worker(bool follow_symlinks)
{
    char root[128], log[128];
    snprintf(root, sizeof root, "%s/root", base);
    snprintf(log, sizeof log, "%s/logs/access.log", base);
    struct static_config cfg;
    static_config_init(&cfg);
    cfg.root = root;
    cfg.rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cfg.http.access_log_path = log;
    cfg.follow_symlinks = follow_symlinks;
    int abi = static_sandbox_apply(&cfg);
    if (abi == 0)
        _exit(77);
    if (abi < 0) {
        fprintf(stderr, "static_sandbox_apply: %s\n", strerror(-abi));
        _exit(1);
    }
    return abi;
}

static void run_sandboxed(void (*checks)(int listener), int listener)
{
    pid_t pid = tu_fork_child();
    if (pid == 0) {
        checks(listener);
        _exit(failures ? 1 : 0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        cr_skip_test("this kernel has no Landlock");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "a check failed in the sandboxed child (status 0x%x; its stderr says which)",
              status);
}

/* A TCP listener on 127.0.0.1 for the child to try to connect to. */
static int tcp_listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(fd, 4) == 0);
    return fd;
}

/* The abstract Unix address "@pf-sandbox-PID" of the test process pid. */
static socklen_t abstract_addr(struct sockaddr_un *sun, pid_t pid)
{
    *sun = (struct sockaddr_un){.sun_family = AF_UNIX};
    int n = snprintf(sun->sun_path + 1, sizeof sun->sun_path - 1, "pf-sandbox-%d", (int)pid);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* A listener on the test process's abstract Unix address. */
static int abstract_listener(void)
{
    struct sockaddr_un sun;
    socklen_t len = abstract_addr(&sun, getpid());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sun, len) == 0 && listen(fd, 4) == 0);
    return fd;
}

/* Landlock's scopes (ABI 6): the child reaches neither the process that
 * forked it nor that process's abstract socket. */
static void expect_scoped(void)
{
    expect_errno("kill(parent, 0)", kill(getppid(), 0), EPERM);
    struct sockaddr_un sun;
    socklen_t len = abstract_addr(&sun, getppid());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    expect_errno("connect to the parent's abstract socket",
                 connect(fd, (struct sockaddr *)&sun, len), EPERM);
    close(fd);
}

static void root_only(int listener)
{
    int abi = become_worker(false);
    expect_open("root/a.txt", O_RDONLY, 0);
    expect_open("root/sub", O_RDONLY | O_DIRECTORY, 0);
    expect_open("outside.txt", O_RDONLY, EACCES);
    expect_open("root/out.txt", O_RDONLY, EACCES); /* the symlink's target is outside */
    expect_open("root/a.txt", O_WRONLY, EACCES);
    expect_open("root/new.txt", O_WRONLY | O_CREAT, EACCES);
    expect_open("logs/access.log", O_WRONLY | O_APPEND, 0);
    expect_open("logs/access.log.new", O_WRONLY | O_APPEND | O_CREAT, 0); /* after logrotate */
    expect_open("logs/access.log", O_RDONLY, EACCES);
    char path[128];
    snprintf(path, sizeof path, "%s/root/a.txt", base);
    expect_errno("unlink root/a.txt", unlink(path), EACCES);
    char *const argv[] = {"false", NULL}; /* if it ran, the child would exit 1 */
    expect_errno("execv /bin/false", execv("/bin/false", argv), EACCES);
    if (abi >= 4) {
        struct sockaddr_in sin;
        socklen_t len = sizeof sin;
        getsockname(listener, (struct sockaddr *)&sin, &len);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        expect_errno("connect to 127.0.0.1", connect(fd, (struct sockaddr *)&sin, sizeof sin),
                     EACCES);
        close(fd);
    }
    if (abi >= 6)
        expect_scoped();
}

Test(sandbox, a_worker_reads_beneath_the_root_and_writes_only_its_logs)
{
    int listener = tcp_listener(), unix_listener = abstract_listener();
    run_sandboxed(root_only, listener);
    close(listener);
    close(unix_listener);
}

static void follow_symlinks(int listener)
{
    (void)listener;
    become_worker(true);
    expect_open("root/out.txt", O_RDONLY, 0);
    expect_open("outside.txt", O_RDONLY, 0);
    expect_open("outside.txt", O_WRONLY, EACCES);
    expect_open("root/new.txt", O_WRONLY | O_CREAT, EACCES);
}

Test(sandbox, with_follow_symlinks_it_reads_anywhere_and_still_writes_only_its_logs)
{
    run_sandboxed(follow_symlinks, -1);
}
