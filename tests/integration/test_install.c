/* test_install.c — make install into a temporary DESTDIR, build the echo example against that copy with pkg-config alone, run it, and make uninstall. */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/*
 * These tests drive the Makefile from the top of the tree (where run.sh
 * runs them) and always install the normal build (build/), even in the
 * sanitizer run: a program linked against an instrumented libprefork would
 * need the sanitizer's runtime, which pkg-config does not name. The first
 * make may have to build build/ (under make test-san, about 10 s on two
 * cores): MAKE_MS leaves room for it within run.sh's --timeout=120, which
 * overrides a test's own .timeout.
 */
#define PREFIX "/usr"
#define MAKE_MS 100000
#define TOOL_MS 60000  /* cc, readelf, nm */
#define START_MS 20000
#define IO_MS 10000

static char root[256]; /* the temporary folder: DESTDIR is root/dest */
static char dest[300];

/* Remove what nftw visits (children first). */
static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/pf-install-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(root), "mkdtemp: %s", strerror(errno));
    snprintf(dest, sizeof dest, "%s/dest", root);
}

static void teardown(void)
{
    ts_cleanup();
    if (root[0])
        nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
}

TestSuite(install, .init = setup, .fini = teardown);

/* Run a shell command line (printf-style) to completion within timeout_ms;
 * returns its exit code (-1 when it did not exit). Its stdout is kept in
 * out (the caller frees it) when out is not NULL. Make runs in a clean
 * environment of its own: the MAKEFLAGS of the make that started the suite
 * name a jobserver whose descriptors the child no longer has. */
__attribute__((format(printf, 3, 4)))
static int sh(char **out, int timeout_ms, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof cmd, "command too long");
    char script[4200];
    snprintf(script, sizeof script, "unset MAKEFLAGS MFLAGS MAKELEVEL; %s", cmd);
    struct ts_proc *p;
    int status = TS_RUN(&p, timeout_ms, "/bin/sh", "-c", script);
    if (out)
        *out = ts_read_file(p->out);
    if (status < 0 || !WIFEXITED(status)) {
        cr_log_error("sh -c '%s': %s", cmd, status < 0 ? strerror(-status) : "killed");
        return -1;
    }
    if (WEXITSTATUS(status) != 0)
        cr_log_info("sh -c '%s' exited %d", cmd, WEXITSTATUS(status));
    return WEXITSTATUS(status);
}

static void make_install(void)
{
    ts_assert(sh(NULL, MAKE_MS, "make -s -j2 install DESTDIR='%s' PREFIX=" PREFIX, dest) == 0,
              "make install failed");
}

/* The installed files (no folders), one per line, sorted, relative to dest. */
static char *installed_files(void)
{
    char *list;
    ts_assert(sh(&list, TOOL_MS, "cd '%s' && find . ! -type d | LC_ALL=C sort", dest) == 0,
              "find failed");
    ts_assert(list != NULL, "no output");
    return list;
}

static void expect_mode(const char *rel, mode_t mode)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s%s", dest, rel);
    ts_assert(lstat(path, &st) == 0, "%s: %s", rel, strerror(errno));
    ts_assert(S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode, "%s: mode %o, want %o", rel,
              (unsigned)(st.st_mode & 07777), (unsigned)mode);
}

static void expect_link(const char *rel, const char *target)
{
    char path[512], got[256];
    snprintf(path, sizeof path, "%s%s", dest, rel);
    ssize_t n = readlink(path, got, sizeof got - 1);
    ts_assert(n > 0, "%s: not a symbolic link", rel);
    got[n] = '\0';
    ts_assert(strcmp(got, target) == 0, "%s -> %s, want %s", rel, got, target);
}

/* Whether the installed file rel has a line equal to line. */
static bool file_has_line(const char *rel, const char *line)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", dest, rel);
    return sh(NULL, TOOL_MS, "grep -qxF '%s' '%s'", line, path) == 0;
}

Test(install, puts_each_file_in_its_place_and_uninstall_takes_them_all)
{
    make_install();
    char *list = installed_files();
    const char *want = "./usr/bin/prefork\n"
                       "./usr/include/prefork.h\n"
                       "./usr/lib/libprefork.a\n"
                       "./usr/lib/libprefork.so\n"
                       "./usr/lib/libprefork.so.0\n"
                       "./usr/lib/libprefork.so.0.1.0\n"
                       "./usr/lib/pkgconfig/prefork.pc\n"
                       "./usr/lib/prefork/prefork-tls.so\n"
                       "./usr/lib/systemd/system/prefork.service\n"
                       "./usr/lib/systemd/system/prefork.socket\n"
                       "./usr/share/man/man1/prefork.1\n";
    ts_assert(strcmp(list, want) == 0, "installed:\n%s\nwanted:\n%s", list, want);
    free(list);
    expect_mode("/usr/bin/prefork", 0755);
    expect_mode("/usr/lib/prefork/prefork-tls.so", 0755);
    expect_mode("/usr/lib/libprefork.a", 0644);
    expect_mode("/usr/lib/libprefork.so." PF_VERSION, 0755);
    expect_link("/usr/lib/libprefork.so.0", "libprefork.so." PF_VERSION);
    expect_link("/usr/lib/libprefork.so", "libprefork.so.0");
    expect_mode("/usr/include/prefork.h", 0644);
    expect_mode("/usr/lib/pkgconfig/prefork.pc", 0644);
    expect_mode("/usr/share/man/man1/prefork.1", 0644);
    expect_mode("/usr/lib/systemd/system/prefork.service", 0644);
    expect_mode("/usr/lib/systemd/system/prefork.socket", 0644);
    /* The generated files name the prefix, the version and the command. */
    ts_assert(file_has_line("/usr/lib/pkgconfig/prefork.pc", "prefix=" PREFIX), "pc prefix");
    ts_assert(file_has_line("/usr/lib/pkgconfig/prefork.pc", "Version: " PF_VERSION), "pc version");
    ts_assert(sh(NULL, TOOL_MS, "grep -q '^ExecStart=" PREFIX "/bin/prefork ' '%s%s'", dest,
                 "/usr/lib/systemd/system/prefork.service") == 0,
              "the unit's ExecStart does not name " PREFIX "/bin/prefork");
    ts_assert(sh(NULL, TOOL_MS, "grep -q '^\\.TH PREFORK 1 .*\"prefork " PF_VERSION "\"' '%s%s'",
                 dest, "/usr/share/man/man1/prefork.1") == 0,
              "the man page does not name version " PF_VERSION);

    ts_assert(sh(NULL, MAKE_MS, "make -s uninstall DESTDIR='%s' PREFIX=" PREFIX, dest) == 0,
              "make uninstall failed");
    list = installed_files();
    ts_assert(list[0] == '\0', "left after make uninstall:\n%s", list);
    free(list);
}

/* Compile examples/echo.c into root/name with pkg-config's flags only:
 * PKG_CONFIG_LIBDIR sees the installed prefork.pc alone, and the sysroot
 * puts DESTDIR before every folder it names. link is the link part of the
 * command line. */
static void build_echo(const char *name, const char *link)
{
    const char *cc = getenv("CC");
    ts_assert(sh(NULL, TOOL_MS,
                 "export PKG_CONFIG_LIBDIR='%s" PREFIX "/lib/pkgconfig' "
                 "PKG_CONFIG_SYSROOT_DIR='%s' PKG_CONFIG_PATH=; "
                 "%s -std=c17 -Wall -Wextra -Werror -o '%s/%s' examples/echo.c "
                 "$(pkg-config --cflags prefork) %s",
                 dest, dest, cc && *cc ? cc : "cc", root, name, link) == 0,
              "building %s against the installed copy failed", name);
}

/* The dynamic section of an ELF file, from readelf -d. */
static char *dynamic_section(const char *path)
{
    char *text;
    ts_assert(sh(&text, TOOL_MS, "readelf -d '%s'", path) == 0 && text, "readelf -d %s", path);
    return text;
}

/* Start root/name on two workers, echo a line through it, stop it by its
 * pid with TERM and expect a clean exit with no worker left. Returns the
 * server's memory map as read while it ran (the caller frees it). */
static char *run_echo(const char *name)
{
    char path[512], maps[64];
    snprintf(path, sizeof path, "%s/%s", root, name);
    struct ts_proc *srv = TS_START(path, "-w", "2", "-l", "127.0.0.1:0");
    int port = ts_wait_port(srv, START_MS);
    ts_assert(port > 0, "%s: no port (%s)", name, strerror(-port));
    pid_t pids[2];
    ts_assert(ts_wait_ready(srv->pid, 2, pids, START_MS) == 0, "%s: workers not ready", name);
    snprintf(maps, sizeof maps, "/proc/%d/maps", (int)pids[0]);
    char *map = ts_read_file(maps);
    ts_assert(map != NULL, "cannot read %s", maps);

    int fd = ts_connect_tcp(port, IO_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    const char msg[] = "installed, and it echoes\n";
    char got[sizeof msg] = {0};
    ts_assert(ts_send_all(fd, msg, sizeof msg - 1, IO_MS) == 0, "send");
    int err = ts_recv_exact(fd, got, sizeof msg - 1, IO_MS);
    ts_assert(err == 0, "recv: %s", strerror(-err));
    ts_assert(strcmp(got, msg) == 0, "echoed '%s'", got);
    close(fd);

    ts_assert(ts_kill(srv->pid, SIGTERM) == 0, "kill");
    ts_assert(ts_wait_exit(srv, START_MS) == 0, "%s did not stop on TERM", name);
    ts_assert(WIFEXITED(srv->status) && WEXITSTATUS(srv->status) == 0, "%s: status %#x", name,
              (unsigned)srv->status);
    ts_assert(ts_wait_pids_dead(pids, 2, START_MS) == 0, "a worker outlived its master");
    return map;
}

Test(install, echo_links_shared_with_pkg_config_and_runs_on_the_installed_library)
{
    make_install();
    build_echo("echo-shared", "$(pkg-config --libs prefork)");
    char exe[512], lib[512];
    snprintf(exe, sizeof exe, "%s/echo-shared", root);
    char *dyn = dynamic_section(exe);
    ts_assert(strstr(dyn, "Shared library: [libprefork.so.0]"), "no NEEDED libprefork.so.0:\n%s",
              dyn);
    free(dyn);

    snprintf(lib, sizeof lib, "%s" PREFIX "/lib", dest);
    setenv("LD_LIBRARY_PATH", lib, 1);
    char *map = run_echo("echo-shared");
    unsetenv("LD_LIBRARY_PATH");
    snprintf(lib, sizeof lib, "%s" PREFIX "/lib/libprefork.so." PF_VERSION, dest);
    ts_assert(strstr(map, lib), "the worker did not map %s", lib);
    free(map);
}

Test(install, echo_links_static_with_pkg_config_and_needs_no_libprefork_so)
{
    make_install();
    /* -Bstatic: the -lprefork of pkg-config --static takes libprefork.a,
     * which sits next to the .so; libc stays shared. */
    build_echo("echo-static", "-Wl,-Bstatic $(pkg-config --static --libs prefork) -Wl,-Bdynamic");
    char exe[512];
    snprintf(exe, sizeof exe, "%s/echo-static", root);
    char *dyn = dynamic_section(exe);
    ts_assert(!strstr(dyn, "libprefork"), "linked to a shared libprefork:\n%s", dyn);
    free(dyn);
    char *map = run_echo("echo-static");
    ts_assert(!strstr(map, "libprefork"), "a libprefork was mapped");
    free(map);
}

/* Whether the header text declares a function name: "name(" not preceded
 * by a character of a longer name. */
static bool declares(const char *header, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = strstr(header, name); s; s = strstr(s + 1, name)) {
        char before = s == header ? ' ' : s[-1];
        if (s[n] == '(' && before != '_' && !isalnum((unsigned char)before))
            return true;
    }
    return false;
}

Test(install, shared_library_has_its_soname_and_exports_only_the_public_api)
{
    make_install();
    char lib[512], *out;
    snprintf(lib, sizeof lib, "%s" PREFIX "/lib/libprefork.so." PF_VERSION, dest);
    out = dynamic_section(lib);
    ts_assert(strstr(out, "Library soname: [libprefork.so.0]"), "soname:\n%s", out);
    free(out);

    /* The static library does define pf__ internals shared between files,
     * so their absence below is the version script's work. */
    ts_assert(sh(NULL, TOOL_MS,
                 "nm -g --defined-only '%s" PREFIX "/lib/libprefork.a' | grep -q ' pf__'",
                 dest) == 0,
              "libprefork.a defines no pf__ symbol: the check below would prove nothing");
    ts_assert(sh(&out, TOOL_MS, "nm -D --defined-only '%s' | awk '{print $3}'", lib) == 0 && out,
              "nm -D");
    char header[512];
    snprintf(header, sizeof header, "%s" PREFIX "/include/prefork.h", dest);
    char *decl = ts_read_file(header);
    ts_assert(decl != NULL, "cannot read %s", header);
    int n = 0;
    for (char *s = strtok(out, "\n"); s; s = strtok(NULL, "\n"), n++) {
        ts_assert(strncmp(s, "pf_", 3) == 0 && strncmp(s, "pf__", 4) != 0,
                  "exports %s, not public API", s);
        ts_assert(declares(decl, s), "exports %s, which prefork.h does not declare", s);
    }
    free(decl);
    free(out);
    ts_assert(n >= 40, "only %d symbols exported", n);
}

/* Whether a worker of the running server p maps OpenSSL. */
static bool worker_maps_openssl(struct ts_proc *p)
{
    pid_t w[4];
    int err = ts_wait_ready(p->pid, 1, w, START_MS);
    ts_assert(err == 0, "no worker ready: %s", strerror(-err));
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)w[0]);
    char *maps = ts_read_file(path);
    ts_assert(maps != NULL, "cannot read %s", path);
    bool found = strstr(maps, "libssl.so") != NULL;
    free(maps);
    return found;
}

/* The installed command loads OpenSSL, through its module in
 * LIBDIR/prefork, only for a listener with ,tls; without the module such
 * a listener is a one-line error, and plain listeners still serve. */
Test(install, the_installed_command_loads_its_tls_module_only_for_tls)
{
    make_install();
    ts_assert(sh(NULL, TOOL_MS, "cd '%s' && mkdir -p www && echo hi > www/index.html && "
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout k.pem -out c.pem -days 1 -subj /CN=localhost >/dev/null 2>&1",
                 root) == 0,
              "openssl req failed");
    char bin[400], www[300], cert[300], key[300], *out;
    snprintf(bin, sizeof bin, "%s" PREFIX "/bin/prefork", dest);
    snprintf(www, sizeof www, "%s/www", root);
    snprintf(cert, sizeof cert, "%s/c.pem", root);
    snprintf(key, sizeof key, "%s/k.pem", root);

    struct ts_proc *p = TS_START(bin, "serve", www, "-l", "127.0.0.1:0,tls", "--tls-cert", cert,
                                 "--tls-key", key, "-w", "1", "--access-log", "off");
    int port = ts_wait_port(p, START_MS);
    ts_assert(port > 0, "no start-up line: %s", ts_log(p));
    ts_assert(sh(&out, TOOL_MS, "curl -sk https://127.0.0.1:%d/", port) == 0 && out &&
                  strcmp(out, "hi\n") == 0,
              "HTTPS from the installed command: %s", out ? out : "");
    free(out);
    ts_assert(worker_maps_openssl(p), "a TLS worker without OpenSSL mapped");
    ts_kill(p->pid, SIGTERM);
    ts_assert(ts_wait_exit(p, START_MS) == 0, "did not stop");

    p = TS_START(bin, "serve", www, "-l", "127.0.0.1:0", "-w", "1", "--access-log", "off");
    ts_assert(ts_wait_port(p, START_MS) > 0, "no start-up line: %s", ts_log(p));
    ts_assert(!worker_maps_openssl(p), "a plain server maps OpenSSL");
    ts_kill(p->pid, SIGTERM);
    ts_assert(ts_wait_exit(p, START_MS) == 0, "did not stop");

    ts_assert(sh(NULL, TOOL_MS, "rm '%s" PREFIX "/lib/prefork/prefork-tls.so'", dest) == 0, "rm");
    int st = sh(&out, TOOL_MS, "'%s' serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' --tls-key "
                "'%s' 2>&1", bin, www, cert, key);
    ts_assert(st == 1 && out && strncmp(out, "prefork: serve: HTTPS needs the TLS module: no "
                                             "prefork-tls.so", 46) == 0 &&
                  strchr(out, '\n') == strrchr(out, '\n'),
              "without the module: exit %d, %s", st, out ? out : "");
    free(out);
}
