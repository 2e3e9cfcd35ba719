/* test_static_listing.c — unit tests for the directory listing page and the byte buffer it is written to. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/http/buf.h"
#include "../../src/static/listing.h"

/* ---- struct http_buf ---- */

Test(http_buf, append_and_printf_grow, .timeout = 10)
{
    struct http_buf b = HTTP_BUF_INIT(0);
    cr_expect_eq(http_buf_limit(&b), HTTP_BUF_DEFAULT_MAX);
    cr_assert_eq(http_buf_append(&b, "abc", 3), 0);
    cr_assert_eq(http_buf_puts(&b, "def"), 0);
    cr_expect_str_eq(b.p, "abcdef");
    cr_assert_eq(http_buf_append(&b, "", 0), 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(http_buf_printf(&b, "<%d>", i), 0);
    cr_expect(strstr(b.p, "<999>") && b.len == strlen(b.p) && b.cap > b.len);
    char big[5000];
    memset(big, 'x', sizeof big);
    cr_assert_eq(http_buf_printf(&b, "%.*s!", (int)sizeof big, big), 0);
    cr_expect_eq(b.p[b.len - 1], '!');
    cr_expect_eq(b.p[b.len], '\0');
    http_buf_free(&b);
    cr_expect(b.p == NULL && b.len == 0 && b.cap == 0);
}

Test(http_buf, limit_is_hard_and_failures_change_nothing, .timeout = 10)
{
    struct http_buf b;
    http_buf_init(&b, 10);
    cr_assert_eq(http_buf_append(&b, "0123456789", 10), 0);
    cr_expect_leq(b.cap, 11);
    cr_expect_eq(http_buf_append(&b, "x", 1), -ENOMEM);
    cr_expect_eq(http_buf_reserve(&b, 1), -ENOMEM);
    cr_expect_eq(http_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    cr_expect_eq(http_buf_printf(&b, "%d", 1), -ENOMEM);
    cr_expect_eq(http_html_escape(&b, "a", 1), -ENOMEM);
    cr_expect_eq(b.len, 10);
    cr_expect_str_eq(b.p, "0123456789");
    http_buf_reset(&b);
    cr_expect_eq(b.len, 0);
    cr_expect_str_eq(b.p, "");
    cr_assert_eq(http_buf_printf(&b, "%s", "abcdefgh"), 0);
    cr_expect_eq(http_buf_printf(&b, "%s", "abc"), -ENOMEM); /* would need 11 */
    cr_expect_str_eq(b.p, "abcdefgh");
    cr_expect_eq(http_html_escape(&b, "<", 1), -ENOMEM); /* "&lt;" does not fit */
    cr_expect_str_eq(b.p, "abcdefgh");
    http_buf_free(&b);
    cr_expect_eq(b.max, 10);
}

Test(http_buf, reset_keeps_small_frees_big, .timeout = 10)
{
    struct http_buf b = HTTP_BUF_INIT(0);
    cr_assert_eq(http_buf_reserve(&b, 100), 0);
    char *p = b.p;
    http_buf_reset(&b);
    cr_expect_eq(b.p, p);
    cr_assert_eq(http_buf_reserve(&b, HTTP_BUF_KEEP + 1), 0);
    http_buf_reset(&b);
    cr_expect_null(b.p);
    cr_expect_eq(b.cap, 0);
    http_buf_free(&b);
}

Test(http_buf, html_escape, .timeout = 10)
{
    struct http_buf b = HTTP_BUF_INIT(0);
    const char in[] = "<a href=\"x\">Tom & Jerry's</a>\t\n\x01\x7f\xc3\xbc";
    cr_assert_eq(http_html_escape(&b, in, sizeof in - 1), 0);
    cr_expect_str_eq(b.p, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;\t\n"
                          "\xEF\xBF\xBD\xEF\xBF\xBD\xc3\xbc");
    http_buf_reset(&b);
    cr_assert_eq(http_html_escape(&b, "\0", 1), 0);
    cr_expect_str_eq(b.p, "\xEF\xBF\xBD");
    http_buf_free(&b);
}

/* ---- static_listing_render, on a temporary directory ---- */

static char dir[64];
static int dirfd_ = -1;

#define T_MTIME 1795624200 /* 2026-11-25 16:30:00 UTC */

static void put(const char *name, off_t size)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    cr_assert_eq(ftruncate(fd, size), 0);
    struct timespec ts[2] = {{T_MTIME, 0}, {T_MTIME, 0}};
    cr_assert_eq(futimens(fd, ts), 0);
    close(fd);
}

static void setup(void)
{
    char path[PATH_MAX];
    strcpy(dir, "/tmp/pf_listing.XXXXXX");
    cr_assert(mkdtemp(dir));
    put("<script>", 10);
    put("a&b", 1234);
    put("sp ace", 0);
    put("quote\"", 1023);
    put("\xc3\xbcn\xc3\xaf", 1);
    put(".dot", 5);
    put("big", (off_t)5 << 20);
    put("huge", ((off_t)3 << 30) + ((off_t)1 << 29));
    snprintf(path, sizeof path, "%s/sub<1>", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/.git", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/lnk", dir);
    cr_assert_eq(symlink("a&b", path), 0);
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert(dirfd_ >= 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void teardown(void)
{
    if (dirfd_ >= 0)
        close(dirfd_);
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(http_listing, .init = setup, .fini = teardown);

static char *render(const char *url, bool dots)
{
    struct http_buf b = HTTP_BUF_INIT(0);
    int rc = static_listing_render(dirfd_, url, dots, &b);
    cr_assert_eq(rc, 0, "render: %s", strerror(-rc));
    cr_assert_eq(strlen(b.p), b.len);
    return b.p;
}

/* The row of the entry whose link is href, from "<tr>" to "</tr>". */
static char *row_of(const char *page, const char *href)
{
    static char row[1024];
    char key[256];
    snprintf(key, sizeof key, "<a href=\"%s\">", href);
    const char *a = strstr(page, key);
    cr_assert(a, "no link to %s", href);
    const char *tr = a;
    while (tr > page && strncmp(tr, "<tr>", 4) != 0)
        tr--;
    const char *end = strstr(a, "</tr>");
    cr_assert(end && (size_t)(end - tr) < sizeof row);
    memcpy(row, tr, (size_t)(end - tr));
    row[end - tr] = '\0';
    return row;
}

Test(http_listing, complete_page, .timeout = 10)
{
    char *page = render("/x/y/", false);
    cr_expect(strncmp(page, "<!DOCTYPE html>\n", 16) == 0);
    cr_expect(strstr(page, "<meta charset=\"utf-8\">"));
    cr_expect(strstr(page, "<meta name=\"viewport\""));
    cr_expect(strstr(page, "prefers-color-scheme:dark"));
    cr_expect(strstr(page, "<title>Index of /x/y/</title>"));
    cr_expect(strstr(page, "<h1>Index of /x/y/</h1>"));
    size_t n = strlen(page);
    cr_expect(n > 8 && strcmp(page + n - 8, "</html>\n") == 0);
    cr_expect_null(strstr(page, "incomplete"));
    free(page);
}

Test(http_listing, names_escaped_and_encoded, .timeout = 10)
{
    char *page = render("/", false);
    cr_expect_null(strstr(page, "<script>"));
    cr_expect(strstr(page, "<a href=\"%3Cscript%3E\">&lt;script&gt;</a>"));
    cr_expect(strstr(page, "<a href=\"a%26b\">a&amp;b</a>"));
    cr_expect(strstr(page, "<a href=\"sp%20ace\">sp ace</a>"));
    cr_expect(strstr(page, "<a href=\"quote%22\">quote&quot;</a>"));
    cr_expect(strstr(page, "<a href=\"%C3%BCn%C3%AF\">\xc3\xbcn\xc3\xaf</a>"));
    cr_expect(strstr(page, "<a href=\"sub%3C1%3E/\">sub&lt;1&gt;/</a>"));
    cr_expect(strstr(page, "<a href=\"lnk\">lnk</a>"));
    free(page);
}

Test(http_listing, sizes_and_times, .timeout = 10)
{
    char *page = render("/", false);
    cr_expect(strstr(row_of(page, "a%26b"), ">1.2 KiB<"));
    cr_expect(strstr(row_of(page, "a%26b"), ">2026-11-25 16:30<"));
    cr_expect(strstr(row_of(page, "sp%20ace"), ">0 B<"));
    cr_expect(strstr(row_of(page, "quote%22"), ">1023 B<"));
    cr_expect(strstr(row_of(page, "big"), ">5.0 MiB<"));
    cr_expect(strstr(row_of(page, "huge"), ">3.5 GiB<"));
    cr_expect(strstr(row_of(page, "sub%3C1%3E/"), "<td class=\"s\">-<"));
    cr_expect(strstr(row_of(page, "lnk"), "<td class=\"s\">-<"));
    free(page);
}

/* Directories first, then byte order (so "ü", 0xC3, comes last). */
Test(http_listing, sorted, .timeout = 10)
{
    static const char *const order[] = {
        "sub%3C1%3E/", "%3Cscript%3E", "a%26b", "big", "huge", "lnk", "quote%22", "sp%20ace",
        "%C3%BCn%C3%AF",
    };
    char *page = render("/", false);
    const char *last = page;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "href=\"%s\"", order[i]);
        const char *at = strstr(page, key);
        cr_assert(at, "missing %s", order[i]);
        cr_expect_gt(at, last, "%s out of order", order[i]);
        last = at;
    }
    free(page);
}

Test(http_listing, dotfiles_hidden_unless_asked, .timeout = 10)
{
    char *page = render("/", false);
    cr_expect_null(strstr(page, "href=\".dot\""));
    cr_expect_null(strstr(page, "href=\".git/\""));
    free(page);
    page = render("/", true);
    cr_expect(strstr(page, "href=\".dot\""));
    cr_expect(strstr(page, "href=\".git/\""));
    cr_expect_null(strstr(page, "href=\"./\""));
    cr_expect_null(strstr(page, "href=\"../\"")); /* the root has no parent */
    free(page);
}

Test(http_listing, parent_link_except_at_root, .timeout = 10)
{
    static const char *const roots[] = {"", "/", "//"};
    for (size_t i = 0; i < 3; i++) {
        char *page = render(roots[i], false);
        cr_expect_null(strstr(page, "href=\"../\""), "\"%s\"", roots[i]);
        cr_expect(strstr(page, "<title>Index of /</title>"));
        free(page);
    }
    static const char *const subs[] = {"a", "/a", "a/", "/a/"};
    for (size_t i = 0; i < 4; i++) {
        char *page = render(subs[i], false);
        cr_expect(strstr(page, "<a href=\"../\">../</a>"), "\"%s\"", subs[i]);
        cr_expect(strstr(page, "<title>Index of /a/</title>"), "\"%s\"", subs[i]);
        free(page);
    }
    char *page = render("/<b>&\"/", false);
    cr_expect(strstr(page, "<title>Index of /&lt;b&gt;&amp;&quot;/</title>"));
    free(page);
}

Test(http_listing, caller_keeps_dirfd_and_o_path_works, .timeout = 10)
{
    char *a = render("/", true);
    char *b = render("/", true); /* same fd again: its offset did not move */
    cr_expect_str_eq(a, b);
    int pfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert(pfd >= 0);
    struct http_buf c = HTTP_BUF_INIT(0);
    cr_assert_eq(static_listing_render(pfd, "/", true, &c), 0);
    cr_expect_str_eq(c.p, a);
    close(pfd);
    http_buf_free(&c);
    free(a);
    free(b);
}

Test(http_listing, appends_and_errors_leave_buffer_alone, .timeout = 10)
{
    struct http_buf b = HTTP_BUF_INIT(0);
    cr_assert_eq(http_buf_puts(&b, "HEAD\r\n"), 0);
    cr_assert_eq(static_listing_render(dirfd_, "/", false, &b), 0);
    cr_expect(strncmp(b.p, "HEAD\r\n<!DOCTYPE html>", 21) == 0);
    http_buf_free(&b);

    http_buf_init(&b, 100);
    cr_assert_eq(http_buf_puts(&b, "HEAD"), 0);
    cr_expect_eq(static_listing_render(dirfd_, "/", false, &b), -ENOMEM);
    cr_expect_str_eq(b.p, "HEAD");
    cr_expect_eq(static_listing_render(-1, "/", false, &b), -EBADF);
    cr_expect_str_eq(b.p, "HEAD");
    http_buf_free(&b);
}

/* With too small a limit the rows stop, but the page still closes. */
Test(http_listing, cut_short_by_the_limit, .timeout = 10)
{
    char *full = render("/", false);
    size_t n = strlen(full);
    struct http_buf b;
    http_buf_init(&b, n - 200);
    cr_assert_eq(static_listing_render(dirfd_, "/", false, &b), 0);
    cr_expect_leq(b.len, n - 200);
    cr_expect(strstr(b.p, "This listing is incomplete"));
    cr_expect(strcmp(b.p + b.len - 8, "</html>\n") == 0);
    cr_expect(strstr(b.p, "</tbody>\n</table>\n"));
    http_buf_free(&b);
    free(full);
}

Test(http_listing, not_a_directory, .timeout = 10)
{
    struct http_buf b = HTTP_BUF_INIT(0);
    int fd = openat(dirfd_, "big", O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_expect_eq(static_listing_render(fd, "/", false, &b), -ENOTDIR);
    cr_expect_eq(b.len, 0);
    close(fd);
    http_buf_free(&b);
}
