/* test_static_path.c — unit tests for request-path decoding, URL encoding and opening beneath the root. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/static/path.h"

/* ---- static_path_decode ---- */

/* One target and what it must decode to. rc 0 rows give the path and the
 * two flags; error rows only the code. */
struct dcase {
    const char *target;
    int rc;
    const char *out;
    bool trailing;
    bool dot;
};

static const struct dcase dcases[] = {
    /* the root and plain paths */
    {"/", 0, "", true, false},
    {"", 0, "", true, false},
    {"?q=1", 0, "", true, false},
    {"/?", 0, "", true, false},
    {"/a/b%20c?q=1", 0, "a/b c", false, false},
    {"/a/b/", 0, "a/b", true, false},
    {"/index.html", 0, "index.html", false, false},
    {"/a+b", 0, "a+b", false, false},
    {"/%41%62%7e", 0, "Ab~", false, false},
    {"/a?x=/../..", 0, "a", false, false},
    {"/a?#b", 0, "a", false, false},
    /* normalisation */
    {"//a///b//", 0, "a/b", true, false},
    {"/./a/./b/.", 0, "a/b", true, false},
    {"/a/../b", 0, "b", false, false},
    {"/a/b/..", 0, "a", true, false},
    {"/a/..", 0, "", true, false},
    {"/a/b/../../c/", 0, "c", true, false},
    {"/a%2fb", 0, "a/b", false, false},
    {"/a%2F%2Fb%2F", 0, "a/b", true, false},
    {"/a%2f..%2fb", 0, "b", false, false},
    /* dot segments that name files */
    {"/.git/config", 0, ".git/config", false, true},
    {"/a/.hidden", 0, "a/.hidden", false, true},
    {"/a/b.c", 0, "a/b.c", false, false},
    {"/.a/../b", 0, "b", false, false},
    {"/...", 0, "...", false, true},
    {"/.../x", 0, ".../x", false, true},
    {"/%2ehtaccess", 0, ".htaccess", false, true},
    {"/a/..b", 0, "a/..b", false, true},
    /* traversal in every spelling */
    {"/..", -EINVAL, NULL, false, false},
    {"/../", -EINVAL, NULL, false, false},
    {"/../etc/passwd", -EINVAL, NULL, false, false},
    {"/%2e%2e/", -EINVAL, NULL, false, false},
    {"/%2E%2E%2F", -EINVAL, NULL, false, false},
    {"/%2e%2e%2fetc%2fpasswd", -EINVAL, NULL, false, false},
    {"/..%2f", -EINVAL, NULL, false, false},
    {"/..%2F..%2Fetc", -EINVAL, NULL, false, false},
    {"/%2e./", -EINVAL, NULL, false, false},
    {"/.%2e/", -EINVAL, NULL, false, false},
    {"/./../", -EINVAL, NULL, false, false},
    {"//..//", -EINVAL, NULL, false, false},
    {"/a/../../", -EINVAL, NULL, false, false},
    {"/a/%2e%2e/%2e%2e/x", -EINVAL, NULL, false, false},
    {"%2F..", -EINVAL, NULL, false, false},
    {"/a%2F..%2F..%2Fb", -EINVAL, NULL, false, false},
    /* overlong UTF-8 dots are plain bytes: a strange name, never "..". */
    {"/%c0%ae%c0%ae/", 0, "\xc0\xae\xc0\xae", true, false},
    {"/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", 0, "\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/etc/passwd",
     false, false},
    {"/%e0%80%ae%e0%80%ae/x", 0, "\xe0\x80\xae\xe0\x80\xae/x", false, false},
    /* backslashes are ordinary bytes */
    {"/..\\..\\etc\\passwd", 0, "..\\..\\etc\\passwd", false, true},
    {"/%5c..%5c", 0, "\\..\\", false, false},
    {"/a\\..", 0, "a\\..", false, false},
    /* NUL, controls, bad escapes */
    {"/%00", -EINVAL, NULL, false, false},
    {"/a%00b", -EINVAL, NULL, false, false},
    {"/%2500", 0, "%00", false, false},
    {"/%252e%252e/", 0, "%2e%2e", true, false},
    {"/%zz", -EINVAL, NULL, false, false},
    {"/%4", -EINVAL, NULL, false, false},
    {"/%", -EINVAL, NULL, false, false},
    {"/a%2", -EINVAL, NULL, false, false},
    {"/%g0", -EINVAL, NULL, false, false},
    {"/%0g", -EINVAL, NULL, false, false},
    {"/% 1", -EINVAL, NULL, false, false},
    {"/%0a", -EINVAL, NULL, false, false},
    {"/%0D%0A", -EINVAL, NULL, false, false},
    {"/%1f", -EINVAL, NULL, false, false},
    {"/%7f", -EINVAL, NULL, false, false},
    {"/%7F", -EINVAL, NULL, false, false},
    {"/a\tb", -EINVAL, NULL, false, false},
    {"/a\x7f", -EINVAL, NULL, false, false},
    {"/%20", 0, " ", false, false},
    {"/%ff", 0, "\xff", false, false},
    {"/a#b", -EINVAL, NULL, false, false},
    /* not origin-form */
    {"a/b", -EINVAL, NULL, false, false},
    {"*", -EINVAL, NULL, false, false},
    {"http://h/a", -EINVAL, NULL, false, false},
    {"%2fa", -EINVAL, NULL, false, false},
};

Test(http_path, decode_table, .timeout = 10)
{
    for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
        const struct dcase *c = &dcases[i];
        char out[PATH_MAX];
        struct static_path p;
        memset(&p, 0xa5, sizeof p);
        int rc = static_path_decode(c->target, strlen(c->target), out, sizeof out, &p);
        cr_expect_eq(rc, c->rc, "\"%s\": rc %d, want %d", c->target, rc, c->rc);
        if (rc != 0 || c->rc != 0)
            continue;
        cr_expect_str_eq(out, c->out, "\"%s\" -> \"%s\"", c->target, out);
        cr_expect_eq(p.len, strlen(c->out), "\"%s\": len", c->target);
        cr_expect_eq(p.trailing_slash, c->trailing, "\"%s\": trailing_slash", c->target);
        cr_expect_eq(p.has_dot_segment, c->dot, "\"%s\": has_dot_segment", c->target);
    }
}

Test(http_path, raw_len_points_at_query, .timeout = 10)
{
    char out[64];
    struct static_path p;
    const char *t = "/a%20b?x=1";
    cr_assert_eq(static_path_decode(t, strlen(t), out, sizeof out, &p), 0);
    cr_expect_eq(p.raw_len, 6);
    cr_assert_eq(static_path_decode(t, 2, out, sizeof out, &p), 0); /* n limits the read */
    cr_expect_str_eq(out, "a");
    cr_expect_eq(p.raw_len, 2);
}

Test(http_path, embedded_raw_nul_is_refused, .timeout = 10)
{
    char out[64];
    struct static_path p;
    cr_expect_eq(static_path_decode("/a\0b", 4, out, sizeof out, &p), -EINVAL);
}

Test(http_path, capacity, .timeout = 10)
{
    char out[PATH_MAX];
    struct static_path p;
    const char *t = "/abc/def";
    cr_expect_eq(static_path_decode(t, strlen(t), out, 8, &p), 0); /* "abc/def" + NUL */
    cr_expect_str_eq(out, "abc/def");
    cr_expect_eq(static_path_decode(t, strlen(t), out, 7, &p), -ENAMETOOLONG);
    cr_expect_eq(static_path_decode(t, strlen(t), out, 0, &p), -ENAMETOOLONG);
    cr_expect_eq(static_path_decode("/", 1, out, 1, &p), 0);
    cr_expect_str_eq(out, "");
}

/* A target of len bytes: "/" then copies of unit, cut to fit, then tail. */
static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(1 + u * times + t + 1);
    cr_assert(s);
    s[0] = '/';
    for (size_t i = 0; i < times; i++)
        memcpy(s + 1 + i * u, unit, u);
    memcpy(s + 1 + u * times, tail, t + 1);
    return s;
}

Test(http_path, long_paths, .timeout = 10)
{
    char out[PATH_MAX];
    struct static_path p;
    char *s = repeat("a", 5000, "");
    cr_expect_eq(static_path_decode(s, strlen(s), out, sizeof out, &p), -ENAMETOOLONG);
    free(s);
    s = repeat("a", 4000, "/../x");
    cr_expect_eq(static_path_decode(s, strlen(s), out, sizeof out, &p), 0);
    cr_expect_str_eq(out, "x");
    cr_expect_eq(static_path_decode(s, strlen(s), out, 100, &p), -ENAMETOOLONG);
    free(s);
    s = repeat("../", 10000, "etc/passwd");
    cr_expect_eq(static_path_decode(s, strlen(s), out, sizeof out, &p), -EINVAL);
    free(s);
    s = repeat("%2e%2e%2f", 10000, "x");
    cr_expect_eq(static_path_decode(s, strlen(s), out, sizeof out, &p), -EINVAL);
    free(s);
    s = repeat("a/../", 100000, "b");
    cr_expect_eq(static_path_decode(s, strlen(s), out, sizeof out, &p), 0);
    cr_expect_str_eq(out, "b");
    free(s);
    s = repeat("/", 100000, "b");
    cr_expect_eq(static_path_decode(s, strlen(s), out, sizeof out, &p), 0);
    cr_expect_str_eq(out, "b");
    free(s);
}

/* ---- static_url_encode_path ---- */

Test(http_path, url_encode, .timeout = 10)
{
    char out[128];
    static const struct { const char *in, *want; } cases[] = {
        {"", ""},
        {"a b/c", "a%20b/c"},
        {"<script>", "%3Cscript%3E"},
        {"a&b", "a%26b"},
        {"quote\"", "quote%22"},
        {"\xc3\xbcn\xc3\xaf", "%C3%BCn%C3%AF"},
        {"AZaz09-._~/", "AZaz09-._~/"},
        {"a:b?c#d%e+f;g=h'i", "a%3Ab%3Fc%23d%25e%2Bf%3Bg%3Dh%27i"},
        {"\\", "%5C"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = static_url_encode_path(cases[i].in, strlen(cases[i].in), out, sizeof out);
        cr_expect_str_eq(out, cases[i].want);
        cr_expect_eq(n, strlen(cases[i].want));
    }
    cr_expect_eq(static_url_encode_path("\0", 1, out, sizeof out), 3);
    cr_expect_str_eq(out, "%00");
}

Test(http_path, url_encode_truncates_whole_escapes, .timeout = 10)
{
    char out[8];
    memset(out, 'x', sizeof out);
    cr_expect_eq(static_url_encode_path("a b", 3, out, 4), 5);
    cr_expect_str_eq(out, "a"); /* "%20" does not fit after "a" in 3 bytes */
    cr_expect_eq(static_url_encode_path("a b", 3, out, 5), 5);
    cr_expect_str_eq(out, "a%20");
    cr_expect_eq(static_url_encode_path("a b", 3, out, 6), 5);
    cr_expect_str_eq(out, "a%20b");
    out[0] = 'x';
    cr_expect_eq(static_url_encode_path("abc", 3, out, 0), 3);
    cr_expect_eq(out[0], 'x');
}

/* Encoding a decoded path and decoding it again gives the same path. */
Test(http_path, encode_decode_round_trip, .timeout = 10)
{
    static const char *const paths[] = {
        "", "a", "a/b c", "\xc0\xae\xc0\xae", "%00", "<x>&\"'", "..a/.b", "\xff\xfe/\x80",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char enc[256], dec[256];
        struct static_path p;
        enc[0] = '/';
        static_url_encode_path(paths[i], strlen(paths[i]), enc + 1, sizeof enc - 1);
        cr_assert_eq(static_path_decode(enc, strlen(enc), dec, sizeof dec, &p), 0, "%s", enc);
        cr_expect_str_eq(dec, paths[i]);
    }
}

/* ---- static_open_beneath, on a tree in a temporary directory ----
 *
 *   base/secret            the sentinel: must never open by default
 *   base/outside.txt
 *   base/root/             the document root
 *     index.html, .hidden, private (mode 0600), fifo
 *     sub/file.txt, sub/link_back -> ../index.html, sub/link_up2 -> ../..
 *     link_in -> index.html, link_sub -> sub/file.txt, link_dir -> sub
 *     link_out -> ../secret, link_up -> .., link_abs -> /etc/passwd
 *     link_abs_sentinel -> base/secret, link_abs_inside -> base/root/index.html
 *     link_proc -> /proc/self/root/base/secret (through a magic link)
 *     loop1 -> loop2, loop2 -> loop1
 */

static char base[64], root[128];
static int rootfd = -1;
static struct stat sentinel_st, outside_st;

static void put_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void put_link(const char *target, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, name);
    cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
}

static void setup(void)
{
    char tmp[PATH_MAX], sub[256];
    strcpy(base, "/tmp/pf_path.XXXXXX");
    cr_assert(mkdtemp(base));
    cr_assert_eq(chmod(base, 0755), 0);
    snprintf(root, sizeof root, "%s/root", base);
    snprintf(sub, sizeof sub, "%s/sub", root);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(sub, 0755), 0);
    put_file(base, "secret", "SENTINEL", 0644);
    put_file(base, "outside.txt", "outside", 0644);
    put_file(root, "index.html", "hello", 0644);
    put_file(root, ".hidden", "hidden", 0644);
    put_file(root, "private", "private", 0600);
    put_file(sub, "file.txt", "file", 0644);
    snprintf(tmp, sizeof tmp, "%s/fifo", root);
    cr_assert_eq(mkfifo(tmp, 0644), 0);
    put_link("index.html", "link_in");
    put_link("sub/file.txt", "link_sub");
    put_link("sub", "link_dir");
    put_link("../index.html", "sub/link_back");
    put_link("../..", "sub/link_up2");
    put_link("../secret", "link_out");
    put_link("..", "link_up");
    put_link("/etc/passwd", "link_abs");
    snprintf(tmp, sizeof tmp, "%s/secret", base);
    put_link(tmp, "link_abs_sentinel");
    cr_assert_eq(stat(tmp, &sentinel_st), 0);
    snprintf(tmp, sizeof tmp, "%s/outside.txt", base);
    cr_assert_eq(stat(tmp, &outside_st), 0);
    snprintf(tmp, sizeof tmp, "%s/index.html", root);
    put_link(tmp, "link_abs_inside");
    snprintf(tmp, sizeof tmp, "/proc/self/root%s/secret", base);
    put_link(tmp, "link_proc");
    put_link("loop2", "loop1");
    put_link("loop1", "loop2");
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert(rootfd >= 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void teardown(void)
{
    if (rootfd >= 0)
        close(rootfd);
    if (base[0])
        nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open rel and return what it holds (up to 63 bytes), or "" for a
 * directory or FIFO; asserts the open succeeds. */
static const char *read_beneath(const char *rel, unsigned mode)
{
    static char buf[64];
    int fd = -1, rc = static_open_beneath(rootfd, rel, O_RDONLY, mode, &fd);
    cr_assert_eq(rc, 0, "open \"%s\": %s", rel, strerror(-rc));
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

static bool same_file(int fd, const struct stat *want)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    return st.st_dev == want->st_dev && st.st_ino == want->st_ino;
}

TestSuite(http_open, .init = setup, .fini = teardown);

Test(http_open, root_and_plain_files, .timeout = 10)
{
    int fd = -1;
    struct stat want;
    cr_assert_eq(stat(root, &want), 0);
    cr_assert_eq(static_open_beneath(rootfd, "", O_RDONLY | O_DIRECTORY, 0, &fd), 0);
    cr_expect(same_file(fd, &want));
    close(fd);
    cr_expect_str_eq(read_beneath("index.html", 0), "hello");
    cr_expect_str_eq(read_beneath("sub/file.txt", 0), "file");
    cr_expect_str_eq(read_beneath(".hidden", 0), "hidden"); /* refusing dotfiles is the server's */
}

Test(http_open, flags_always_added, .timeout = 10)
{
    int fd = -1;
    cr_assert_eq(static_open_beneath(rootfd, "index.html", O_RDONLY, 0, &fd), 0);
    cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    cr_expect(fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);
}

Test(http_open, symlinks_inside_work, .timeout = 10)
{
    cr_expect_str_eq(read_beneath("link_in", 0), "hello");
    cr_expect_str_eq(read_beneath("link_sub", 0), "file");
    cr_expect_str_eq(read_beneath("link_dir/file.txt", 0), "file");
    cr_expect_str_eq(read_beneath("sub/link_back", 0), "hello");
    cr_expect_str_eq(read_beneath("link_dir/link_back", 0), "hello");
}

static void expect_refused(const char *rel, unsigned mode)
{
    int fd = -1, rc = static_open_beneath(rootfd, rel, O_RDONLY, mode, &fd);
    cr_expect(rc == -EXDEV || rc == -ELOOP, "\"%s\" (mode %u): rc %d (%s)", rel, mode, rc,
              rc < 0 ? strerror(-rc) : "opened");
    if (rc == 0)
        close(fd);
}

Test(http_open, symlinks_leaving_the_root_are_refused, .timeout = 10)
{
    expect_refused("link_out", 0);
    expect_refused("link_up", 0);
    expect_refused("link_up/secret", 0);
    expect_refused("sub/link_up2/secret", 0);
    expect_refused("link_abs", 0);
    expect_refused("link_abs_sentinel", 0);
    /* Absolute symlinks are refused even when they point inside the root:
     * RESOLVE_BENEATH cannot tell where '/' would lead. */
    expect_refused("link_abs_inside", 0);
    expect_refused("link_proc", 0);
}

Test(http_open, follow_outside_allows_them, .timeout = 10)
{
    int fd = -1;
    cr_expect_str_eq(read_beneath("link_out", STATIC_OPEN_FOLLOW_OUTSIDE), "SENTINEL");
    cr_expect_str_eq(read_beneath("link_up/outside.txt", STATIC_OPEN_FOLLOW_OUTSIDE), "outside");
    cr_expect_str_eq(read_beneath("link_abs_inside", STATIC_OPEN_FOLLOW_OUTSIDE), "hello");
    if (access("/etc/passwd", R_OK) == 0) {
        cr_expect_eq(static_open_beneath(rootfd, "link_abs", O_RDONLY, STATIC_OPEN_FOLLOW_OUTSIDE, &fd), 0);
        close(fd);
    }
    /* Magic links stay refused in every mode. */
    if (access("/proc/self/root", F_OK) == 0) {
        cr_expect_eq(static_open_beneath(rootfd, "link_proc", O_RDONLY, STATIC_OPEN_FOLLOW_OUTSIDE, &fd),
                     -ELOOP);
    }
}

Test(http_open, bad_arguments, .timeout = 10)
{
    int fd = -1;
    cr_expect_eq(static_open_beneath(rootfd, "/etc/passwd", O_RDONLY, 0, &fd), -EINVAL);
    cr_expect_eq(static_open_beneath(rootfd, "../secret", O_RDONLY, 0, &fd), -EINVAL);
    cr_expect_eq(static_open_beneath(rootfd, "sub/../index.html", O_RDONLY, 0, &fd), -EINVAL);
    cr_expect_eq(static_open_beneath(rootfd, "..", O_RDONLY, STATIC_OPEN_FOLLOW_OUTSIDE, &fd), -EINVAL);
    cr_expect_eq(static_open_beneath(rootfd, "sub/..", O_RDONLY, STATIC_OPEN_FOLLOW_OUTSIDE, &fd), -EINVAL);
    cr_expect_eq(static_open_beneath(rootfd, "index.html", O_RDONLY, 2, &fd), -EINVAL);
    cr_expect_eq(static_open_beneath(rootfd, "new", O_WRONLY | O_CREAT, 0, &fd), -EINVAL);
    cr_expect_eq(static_open_beneath(rootfd, "", O_RDWR | O_TMPFILE, 0, &fd), -EINVAL);
    cr_expect_eq(fd, -1);
}

Test(http_open, errors, .timeout = 10)
{
    int fd = -1;
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_expect_eq(static_open_beneath(rootfd, "missing", O_RDONLY, 0, &fd), -ENOENT);
    cr_expect_eq(static_open_beneath(rootfd, "index.html/x", O_RDONLY, 0, &fd), -ENOTDIR);
    cr_expect_eq(static_open_beneath(rootfd, "index.html", O_RDONLY | O_DIRECTORY, 0, &fd), -ENOTDIR);
    cr_expect_eq(static_open_beneath(rootfd, "loop1", O_RDONLY, 0, &fd), -ELOOP);
    cr_expect_eq(static_open_beneath(rootfd, longname, O_RDONLY, 0, &fd), -ENAMETOOLONG);
    cr_expect_eq(static_open_beneath(-1, "index.html", O_RDONLY, 0, &fd), -EBADF);
}

/* Permission checks mean nothing to root, so drop to nobody in a child. */
Test(http_open, permission_denied, .timeout = 10)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = -1;
        if (geteuid() == 0 && (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)))
            _exit(2);
        if (static_open_beneath(rootfd, "private", O_RDONLY, 0, &fd) != -EACCES)
            _exit(3);
        if (static_open_beneath(rootfd, "index.html", O_RDONLY, 0, &fd) != 0)
            _exit(4);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}

/* Without O_NONBLOCK this open would wait for a writer forever. */
Test(http_open, fifo_does_not_block, .timeout = 10)
{
    int fd = -1;
    struct stat st;
    cr_assert_eq(static_open_beneath(rootfd, "fifo", O_RDONLY, 0, &fd), 0);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode));
    close(fd);
    cr_expect_eq(static_open_beneath(rootfd, "fifo", O_WRONLY, 0, &fd), -ENXIO);
}

/* ---- the sentinel: decode + open, in every combination we can think of ---- */

static const char *const prefixes[] = {
    "", "sub/", "link_dir/", "link_up/", "sub/link_up2/", "./", "%2e/", "sub%2f", "sub/../",
    "link_dir%2F..%2F", "nope/", "index.html/",
};
static const char *const climbs[] = {
    "..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%c0%ae%c0%ae", "%e0%80%ae%e0%80%ae", "..%5c",
    "%5c..", "%252e%252e", ".", "...", "..;", "%2e%2e%00",
};
static const char *const seps[] = {"/", "%2f", "%2F", "//", "\\", "%5c", "/./", "%2f%2e%2f"};
static const char *const tails[] = {
    "secret", "outside.txt", "root/../secret", "link_out", "link_abs_sentinel", "link_proc",
    "%73ecret", "secret%00", "secret/", "secret?x",
};

/* Whether an opened descriptor is one of the files outside the root. */
static bool is_outside(int fd)
{
    return same_file(fd, &sentinel_st) || same_file(fd, &outside_st);
}

/* Decode target, open it, and report whether that reached outside the root. */
static bool escapes(const char *target, unsigned mode, char *rel)
{
    struct static_path p;
    int fd = -1;
    if (static_path_decode(target, strlen(target), rel, PATH_MAX, &p) != 0)
        return false;
    if (static_open_beneath(rootfd, rel, O_RDONLY, mode, &fd) != 0)
        return false;
    bool out = is_outside(fd);
    close(fd);
    return out;
}

Test(http_open, sentinel_is_never_served, .timeout = 10)
{
    char target[512], rel[PATH_MAX];
    size_t tried = 0;
    for (size_t a = 0; a < sizeof prefixes / sizeof *prefixes; a++)
    for (size_t b = 0; b < sizeof climbs / sizeof *climbs; b++)
    for (size_t c = 0; c < sizeof seps / sizeof *seps; c++)
    for (size_t d = 0; d < sizeof tails / sizeof *tails; d++)
    for (int depth = 0; depth <= 3; depth++) {
        int k = snprintf(target, sizeof target, "/%s", prefixes[a]);
        for (int i = 0; i < depth; i++)
            k += snprintf(target + k, sizeof target - (size_t)k, "%s%s", climbs[b], seps[c]);
        snprintf(target + k, sizeof target - (size_t)k, "%s", tails[d]);
        tried++;
        cr_assert(!escapes(target, 0, rel), "\"%s\" (as \"%s\") reached outside the root",
                  target, rel);
        /* Following symlinks outside may reach the sentinel only through one. */
        if (escapes(target, STATIC_OPEN_FOLLOW_OUTSIDE, rel))
            cr_assert(strstr(rel, "link_"), "\"%s\" (as \"%s\") escaped without a symlink",
                      target, rel);
    }
    cr_expect_gt(tried, 10000);
}
