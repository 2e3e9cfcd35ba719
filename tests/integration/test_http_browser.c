/* test_http_browser.c — the directory listing loaded in headless Chromium: its links are the folder's entries, and following them serves the files; over HTTPS, scripts and styles from their .br files. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tls_support.h"

#define CHROMIUM "/usr/bin/chromium"
#define CURL "/usr/bin/curl"
#define BROWSER_MS 30000 /* one Chromium run, at most */
#define CURL_MS 20000
#define BUDGET_MS 80000  /* all the runs of one test, below its timeout */
#define TIMEOUT 90       /* every Test: one value per program (Criterion 2.4 under ASan) */
#define MAX_LINKS 32
#define BIN_SIZE 3000

/*
 * The tree (hs_tree): hs_root is the document root; hs_tmp holds what curl
 * and Chromium write (out of the root, so it never shows in a listing); each
 * Chromium run gets a new empty profile directory hs_base/profile-N, removed
 * with the tree by hs_cleanup after ts_cleanup (Chromium's helpers must not
 * write into a removed tree).
 */
static int port, runs;
static int64_t budget_end; /* when this test's Chromium and curl runs must be over */

/* One entry of the folder "d": the listing shows directories with a '/'. */
struct entry {
    const char *name;
    bool dir;
};

/* The folder's entries in the order the listing promises (listing.h):
 * directories first, then the rest, each sorted by name in byte order. Every
 * name needs escaping in HTML, in a URL, or both. */
static const struct entry d_entries[] = {
    {"d&r #2", true},
    {"sub", true},
    {"<tag>.txt", false},
    {"a b.txt", false},
    {"bin ary.bin", false},
    {"h#sh?.txt", false},
    {"q\"uote%.txt", false},
    {"x&y.txt", false},
    {"\xc3\xbcn\xc3\xaf.txt", false}, /* "ünï.txt" */
};
#define N_D_ENTRIES (sizeof d_entries / sizeof d_entries[0])

TestSuite(http_browser, .fini = hs_cleanup);

/* ---- the tree and the server ---- */

/* The text of a text file of d: it has characters HTML must escape too. */
static void text_of(const char *name, char *out, size_t size)
{
    snprintf(out, size, "file %s\n<b>&amp;</b> \xc3\xbc \"q\"\n", name);
}

static void bin_of(unsigned char *out)
{
    ts_fill(out, BIN_SIZE, 42);
}

/* root/top.txt, root/d/ with the entries above (no index.html), and
 * root/d/sub/in ner&.txt. */
static void make_tree(void)
{
    hs_tree("pf-browser");
    hs_put_file("top.txt", "top\n", 4);
    hs_make_dir("d");
    char rel[600], text[600];
    unsigned char bin[BIN_SIZE];
    for (size_t i = 0; i < N_D_ENTRIES; i++) {
        snprintf(rel, sizeof rel, "d/%s", d_entries[i].name);
        if (d_entries[i].dir) {
            hs_make_dir(rel);
        } else if (strstr(rel, ".bin")) {
            bin_of(bin);
            hs_put_file(rel, bin, sizeof bin);
        } else {
            text_of(d_entries[i].name, text, sizeof text);
            hs_put_file(rel, text, strlen(text));
        }
    }
    hs_put_file("d/sub/in ner&.txt", "inner\n", 6);
}

static void serve(void)
{
    port = HS_SERVE(NULL, "-w", "2", hs_root);
}

/* Skip (not fail) where the browser is not installed, and start the clock
 * of this test's runs. */
static void need_chromium(void)
{
    if (access(CHROMIUM, X_OK) != 0)
        cr_skip_test("%s is not installed (tests/deps.sh installs Debian's chromium)", CHROMIUM);
    budget_end = ts_now_ms() + BUDGET_MS;
}

/* ---- running programs ---- */

/* ts_run takes a path under the build directory: reach an absolute path
 * from there with enough "../" to climb to '/'. */
static void from_build(const char *abs, char *out, size_t size)
{
    char dir[PATH_MAX];
    cr_assert_not_null(realpath(ts_build_dir(), dir), "realpath %s: %s", ts_build_dir(),
                       strerror(errno));
    size_t n = 0;
    out[0] = '\0';
    for (const char *s = dir; *s; s++)
        if (*s == '/' && s[1])
            n += (size_t)snprintf(out + n, size - n, "../");
    cr_assert_lt(n + strlen(abs), size, "path too long");
    snprintf(out + n, size - n, "%s", abs + 1);
}

/* What is left of the budget for one run of at most cap ms. */
static int run_ms(int cap)
{
    int64_t left = budget_end - ts_now_ms();
    ts_assert(left > 1000, "out of time: the browser runs took more than %d s in all",
              BUDGET_MS / 1000);
    return left < cap ? (int)left : cap;
}

/* Run argv (argv[0] absolute) to completion and expect exit 0. */
static struct ts_proc *run_tool(const char **argv, int cap_ms)
{
    char path[PATH_MAX + 64];
    from_build(argv[0], path, sizeof path);
    const char *abs = argv[0];
    argv[0] = path;
    struct ts_proc *p;
    int ms = run_ms(cap_ms);
    int status = ts_run(argv, ms, &p);
    argv[0] = abs;
    ts_assert(status != -ETIMEDOUT, "%s did not finish in %d ms (killed)", abs, ms);
    ts_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s failed: wait status 0x%x", abs, status);
    return p;
}

/* Chromium, headless, with a new empty profile; the flags keep it from
 * reaching anything but the URL. flag and flag2 are more options (or NULL). */
static struct ts_proc *chromium(const char *url, const char *flag, const char *flag2)
{
    char profile[400], udd[420];
    snprintf(profile, sizeof profile, "%s/profile-%d", hs_base, runs++);
    cr_assert_eq(mkdir(profile, 0700), 0, "mkdir %s: %s", profile, strerror(errno));
    snprintf(udd, sizeof udd, "--user-data-dir=%s", profile);
    const char *argv[16] = {CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", udd};
    int n = 10;
    if (flag)
        argv[n++] = flag;
    if (flag2)
        argv[n++] = flag2;
    argv[n++] = url;
    argv[n] = NULL;
    return run_tool(argv, BROWSER_MS);
}

/* The DOM of url once Chromium loaded it (the caller frees it). */
static char *dump_dom(const char *url)
{
    struct ts_proc *p = chromium(url, "--dump-dom", NULL);
    size_t len;
    char *dom = hs_slurp(p->out, &len);
    ts_assert(len > 0, "Chromium dumped nothing for %s", url);
    return dom;
}

/* curl url into a file: the body (binary safe, the caller frees it) and the
 * status code. */
static char *curl(const char *url, int *code, size_t *len)
{
    char file[400];
    snprintf(file, sizeof file, "%s/curl-body", hs_tmp);
    unlink(file);
    ts_assert(access(CURL, X_OK) == 0, "%s is not installed (tests/deps.sh)", CURL);
    const char *argv[] = {CURL, "-sS", "--max-time", "20", "-o", file, "-w", "%{http_code}",
                          url, NULL};
    struct ts_proc *p = run_tool(argv, CURL_MS);
    char *out = ts_read_file(p->out);
    cr_assert_not_null(out);
    *code = atoi(out);
    free(out);
    return hs_slurp(file, len); /* empty when curl wrote no file (an empty body) */
}

/* ---- reading the DOM ---- */

static void put_utf8(unsigned long c, char *out, size_t *n)
{
    if (c < 0x80) {
        out[(*n)++] = (char)c;
    } else if (c < 0x800) {
        out[(*n)++] = (char)(0xc0 | c >> 6);
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        out[(*n)++] = (char)(0xe0 | c >> 12);
        out[(*n)++] = (char)(0x80 | (c >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | c >> 18);
        out[(*n)++] = (char)(0x80 | (c >> 12 & 0x3f));
        out[(*n)++] = (char)(0x80 | (c >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    }
}

/* Decode the character references a serialised DOM uses (the named ones
 * Chromium writes, and numeric ones) from s[0..n) into out, NUL-terminated. */
static void html_unescape(const char *s, size_t n, char *out, size_t size)
{
    static const struct { const char *ref, *text; } named[] = {
        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""},
        {"&#39;", "'"}, {"&nbsp;", "\xc2\xa0"},
    };
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        cr_assert_lt(o + 5, size, "text too long: %.*s", (int)n, s);
        if (s[i] != '&') {
            out[o++] = s[i++];
            continue;
        }
        size_t k = 0, m = sizeof named / sizeof named[0];
        for (; k < m; k++)
            if (strncmp(s + i, named[k].ref, strlen(named[k].ref)) == 0)
                break;
        if (k < m) {
            o += (size_t)snprintf(out + o, size - o, "%s", named[k].text);
            i += strlen(named[k].ref);
            continue;
        }
        char *end;
        bool hex = s[i + 1] == '#' && (s[i + 2] == 'x' || s[i + 2] == 'X');
        unsigned long c = s[i + 1] == '#' ? strtoul(s + i + 2 + hex, &end, hex ? 16 : 10) : 0;
        ts_assert(s[i + 1] == '#' && *end == ';' && c > 0 && c < 0x110000,
                  "unknown character reference in: %.*s", (int)n, s);
        put_utf8(c, out, &o);
        i = (size_t)(end + 1 - s);
    }
    out[o] = '\0';
}

struct link {
    char href[1024]; /* the attribute's value, references decoded */
    char text[1024]; /* the anchor's text, references decoded */
};

/* The value of attribute name in the start tag tag[0..n), or NULL. Chromium
 * writes every value in double quotes, with '"' as a reference. */
static const char *attr(const char *tag, size_t n, const char *name, size_t *len)
{
    char key[64];
    int k = snprintf(key, sizeof key, " %s=\"", name);
    for (const char *s = tag; (s = memmem(s, n - (size_t)(s - tag), key, (size_t)k)); s++) {
        const char *v = s + k, *q = memchr(v, '"', n - (size_t)(v - tag));
        if (q) {
            *len = (size_t)(q - v);
            return v;
        }
    }
    return NULL;
}

/* Every <a> of the DOM, in document order; returns the count. */
static int parse_links(const char *dom, struct link *links, int max)
{
    int n = 0;
    for (const char *s = dom; (s = strstr(s, "<a")) != NULL; s += 2) {
        if (s[2] != ' ' && s[2] != '>')
            continue; /* <abbr>, <area>... */
        const char *gt = strchr(s, '>'), *close = gt ? strstr(gt, "</a>") : NULL;
        ts_assert(close, "an anchor does not end: %.80s", s);
        ts_assert(n < max, "more than %d links in:\n%s", max, dom);
        size_t hlen;
        const char *href = attr(s, (size_t)(gt - s), "href", &hlen);
        ts_assert(href, "an anchor without href: %.*s", (int)(close - s), s);
        ts_assert(!memchr(gt + 1, '<', (size_t)(close - gt - 1)),
                  "markup inside an anchor: %.*s", (int)(close - s + 4), s);
        html_unescape(href, hlen, links[n].href, sizeof links[n].href);
        html_unescape(gt + 1, (size_t)(close - gt - 1), links[n].text, sizeof links[n].text);
        n++;
    }
    return n;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode s into out; false on a broken escape. */
static bool pct_decode(const char *s, char *out, size_t size)
{
    size_t o = 0;
    for (; *s && o + 1 < size; o++) {
        if (*s != '%') {
            out[o] = *s++;
            continue;
        }
        int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
        if (lo < 0)
            return false;
        out[o] = (char)(hi * 16 + lo);
        s += 3;
    }
    out[o] = '\0';
    return *s == '\0';
}

/* A link to an entry must stay in its folder whatever its name: a relative
 * path of one segment (a trailing '/' for a folder), every byte that is not
 * plain ASCII percent-encoded, nothing a browser would read as a scheme, a
 * query or a fragment. */
static void expect_plain_href(const char *href, bool dir)
{
    size_t n = strlen(href);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)href[i];
        bool last_slash = dir && i == n - 1 && c == '/';
        ts_assert(c > 0x20 && c < 0x7f && !strchr("\"#?:\\<>", c) && (c != '/' || last_slash),
                  "href \"%s\": byte 0x%02x at %zu should be percent-encoded", href, c, i);
    }
    ts_assert(!dir || (n > 0 && href[n - 1] == '/'), "folder href without '/': %s", href);
}

/* The links must be exactly the entries, in order, after a parent link
 * "../" when want_parent. */
static void expect_links(const struct link *links, int n, bool want_parent,
                         const struct entry *want, size_t count, const char *where)
{
    int first = want_parent ? 1 : 0;
    if (n != (int)count + first) {
        for (int i = 0; i < n; i++)
            cr_log_error("%s link %d: href \"%s\" text \"%s\"", where, i, links[i].href,
                         links[i].text);
        ts_assert(false, "%s: %d links, expected %zu%s", where, n, count,
                  want_parent ? " and \"../\"" : "");
    }
    if (want_parent)
        ts_assert(strcmp(links[0].href, "../") == 0 && strcmp(links[0].text, "../") == 0,
                  "%s: first link \"%s\" (\"%s\"), expected the parent \"../\"", where,
                  links[0].href, links[0].text);
    for (size_t i = 0; i < count; i++) {
        const struct link *l = &links[first + (int)i];
        char name[600], decoded[1024];
        snprintf(name, sizeof name, "%s%s", want[i].name, want[i].dir ? "/" : "");
        ts_assert(strcmp(l->text, name) == 0, "%s: link %zu shows \"%s\", expected \"%s\"",
                  where, i + (size_t)first, l->text, name);
        ts_assert(pct_decode(l->href, decoded, sizeof decoded), "%s: bad escape in \"%s\"",
                  where, l->href);
        ts_assert(strcmp(decoded, name) == 0, "%s: href \"%s\" decodes to \"%s\", not \"%s\"",
                  where, l->href, decoded, name);
        ts_assert(!want_parent || strcmp(l->href, "../") != 0, "%s: two parent links", where);
        expect_plain_href(l->href, want[i].dir);
    }
}

/* The link whose text is text; asserts it is there. */
static const struct link *find_link(const struct link *links, int n, const char *text)
{
    for (int i = 0; i < n; i++)
        if (strcmp(links[i].text, text) == 0)
            return &links[i];
    ts_assert(false, "no link shows \"%s\"", text);
    return NULL;
}

/* Resolve href against the URL of a listing (which ends in '/'), as a
 * browser does for these relative references: "../" drops the last
 * segment, a one-segment path is appended, percent-encoded as it is. */
static void resolve(const char *page, const char *href, char *out, size_t size)
{
    snprintf(out, size, "%s", page);
    if (strcmp(href, "../") == 0) {
        char *slash = out + strlen(out) - 1;
        while (slash > out && *--slash != '/')
            ;
        ts_assert(strncmp(out, "http://", 7) == 0 && slash > out + 7, "no parent of %s", page);
        slash[1] = '\0';
        return;
    }
    size_t n = strlen(out);
    cr_assert_lt(n + strlen(href), size, "URL too long");
    snprintf(out + n, size - n, "%s", href);
}

static void url_of(const char *path, char *out, size_t size)
{
    snprintf(out, size, "http://127.0.0.1:%d%s", port, path);
}

/* The links Chromium sees on the page at url. */
static int links_of(const char *url, struct link *links)
{
    char *dom = dump_dom(url);
    int n = parse_links(dom, links, MAX_LINKS);
    free(dom);
    return n;
}

/* The text Chromium shows for a text/plain page: the content of its <pre>. */
static void page_text(const char *dom, char *out, size_t size)
{
    const char *pre = strstr(dom, "<pre");
    const char *gt = pre ? strchr(pre, '>') : NULL;
    const char *end = gt ? strstr(gt, "</pre>") : NULL;
    ts_assert(end, "no <pre> in the page Chromium made of a text file:\n%s", dom);
    html_unescape(gt + 1, (size_t)(end - gt - 1), out, size);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

Test(http_browser, listing_links_are_the_entries, .timeout = TIMEOUT)
{
    need_chromium();
    make_tree();
    serve();
    struct link links[MAX_LINKS];
    char url[256];
    url_of("/d/", url, sizeof url);
    int n = links_of(url, links);
    expect_links(links, n, true, d_entries, N_D_ENTRIES, "/d/");

    /* The root has no parent link. */
    static const struct entry root_entries[] = {{"d", true}, {"top.txt", false}};
    url_of("/", url, sizeof url);
    n = links_of(url, links);
    expect_links(links, n, false, root_entries, 2, "/");
}

Test(http_browser, following_file_links_serves_the_files, .timeout = TIMEOUT)
{
    need_chromium();
    make_tree();
    serve();
    struct link links[MAX_LINKS];
    char page[256], url[2048], want[600], got[2048];
    url_of("/d/", page, sizeof page);
    int n = links_of(page, links);
    expect_links(links, n, true, d_entries, N_D_ENTRIES, "/d/");

    /* In the browser: the two names that break a URL most if not escaped. */
    const char *names[] = {"h#sh?.txt", "\xc3\xbcn\xc3\xaf.txt"};
    for (int i = 0; i < 2; i++) {
        resolve(page, find_link(links, n, names[i])->href, url, sizeof url);
        char *dom = dump_dom(url);
        page_text(dom, got, sizeof got);
        text_of(names[i], want, sizeof want);
        ts_assert(strcmp(got, want) == 0, "%s shows \"%s\", the file has \"%s\"", url, got, want);
        free(dom);
    }

    /* Byte for byte, with curl at the same resolved URLs: every file. */
    unsigned char bin[BIN_SIZE];
    bin_of(bin);
    for (size_t i = 0; i < N_D_ENTRIES; i++) {
        const struct entry *e = &d_entries[i];
        if (e->dir)
            continue;
        resolve(page, find_link(links, n, e->name)->href, url, sizeof url);
        int code;
        size_t len;
        char *body = curl(url, &code, &len);
        text_of(e->name, want, sizeof want);
        bool is_bin = strstr(e->name, ".bin") != NULL;
        const void *data = is_bin ? (const void *)bin : want;
        size_t size = is_bin ? sizeof bin : strlen(want);
        ts_assert(code == 200, "GET %s: %d", url, code);
        ts_assert(len == size && memcmp(body, data, size) == 0,
                  "GET %s: %zu bytes that are not the file's %zu", url, len, size);
        free(body);
    }
}

Test(http_browser, following_folder_links_lists_them, .timeout = TIMEOUT)
{
    need_chromium();
    make_tree();
    serve();
    struct link links[MAX_LINKS], sub[MAX_LINKS];
    char page[256], url[2048], back[2048];
    url_of("/d/", page, sizeof page);
    int n = links_of(page, links);
    expect_links(links, n, true, d_entries, N_D_ENTRIES, "/d/");

    static const struct entry sub_entries[] = {{"in ner&.txt", false}};
    resolve(page, find_link(links, n, "sub/")->href, url, sizeof url);
    int m = links_of(url, sub);
    expect_links(sub, m, true, sub_entries, 1, url);

    /* An empty folder whose name needs escaping: only the parent link. */
    resolve(page, find_link(links, n, "d&r #2/")->href, url, sizeof url);
    m = links_of(url, sub);
    expect_links(sub, m, true, NULL, 0, url);

    /* And its "../" leads back to the listing of d. */
    resolve(url, sub[0].href, back, sizeof back);
    ts_assert(strcmp(back, page) == 0, "../ of %s is %s, not %s", url, back, page);
    m = links_of(back, sub);
    expect_links(sub, m, true, d_entries, N_D_ENTRIES, back);
}

/* Big-endian 32 bits. */
static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* A screenshot of url at 1000x700: asserts it is a PNG of that size and
 * returns its length in bytes. */
static size_t screenshot(const char *url, const char *name)
{
    char shot[400], flag[420];
    snprintf(shot, sizeof shot, "%s/%s.png", hs_tmp, name);
    snprintf(flag, sizeof flag, "--screenshot=%s", shot);
    chromium(url, flag, "--window-size=1000,700");
    ts_assert(access(shot, F_OK) == 0, "Chromium wrote no screenshot of %s at %s", url, shot);
    size_t len;
    unsigned char *png = (unsigned char *)hs_slurp(shot, &len);
    /* The signature, then the IHDR chunk: width and height. */
    ts_assert(len > 24 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0 &&
                  memcmp(png + 12, "IHDR", 4) == 0,
              "the screenshot of %s is not a PNG image (%zu bytes)", url, len);
    ts_assert(be32(png + 16) == 1000 && be32(png + 20) == 700,
              "the screenshot of %s is %lux%lu, not 1000x700", url, be32(png + 16),
              be32(png + 20));
    free(png);
    return len;
}

/* The rows are drawn: a listing of nine entries compresses to a bigger
 * image than the listing of an empty folder (a title and a header). */
Test(http_browser, screenshot_of_the_listing, .timeout = TIMEOUT)
{
    need_chromium();
    make_tree();
    serve();
    char url[256];
    url_of("/d/", url, sizeof url);
    size_t full = screenshot(url, "full");
    url_of("/d/d%26r%20%232/", url, sizeof url);
    size_t empty = screenshot(url, "empty");
    ts_assert(full > empty + 2000, "the listing's screenshot (%zu bytes) is hardly bigger than "
              "an empty listing's (%zu bytes): are the rows drawn?", full, empty);
}

/* ------------------------------------------------------------------------ */
/* Precompressed variants in a real browser                                 */
/* ------------------------------------------------------------------------ */

/* 2020-01-02 03:04:05 UTC: every file of the page, variants too (the same
 * second: each variant is current). */
#define PAGE_MTIME 1577934245
#define ACCESS_LOG_MS 20000 /* the access log is written in batches */

static const char page_html[] =
    "<!doctype html>\n<html><head><title>codings</title>"
    "<link rel=\"stylesheet\" href=\"app.css\"></head>\n<body>\n"
    "<p id=\"js\">no script</p>\n<p id=\"c\">styled</p>\n<p id=\"css\">unread</p>\n"
    "<script src=\"app.js\"></script>\n"
    "<script>document.getElementById('css').textContent = 'color ' + "
    "getComputedStyle(document.getElementById('c')).color;</script>\n"
    "</body></html>\n";
/* What a client that takes no coding gets, and what the .br files hold. */
static const char app_js[] = "document.getElementById('js').textContent = 'identity';\n";
static const char app_js_br[] =
    "document.getElementById('js').textContent = ['bro', 'tli'].join('');\n";
static const char app_css[] = "#c { color: rgb(1, 2, 3); }\n";
static const char app_css_br[] = "#c { color: rgb(4, 5, 6); }\n";

/* root/name holding text, and root/name.br holding brotli's coding of
 * br_text (made with the brotli command). */
static void put_with_br(const char *name, const char *text, const char *br_text)
{
    char src[64], rel[80], *out;
    hs_put_file(name, text, strlen(text));
    hs_set_mtime(name, PAGE_MTIME);
    snprintf(src, sizeof src, "../tmp/%s.src", name);
    hs_put_file(src, br_text, strlen(br_text));
    snprintf(rel, sizeof rel, "%s.br", name);
    int st = tl_sh(&out, 20000, "brotli -c '%s/%s.src' > '%s/%s.br'", hs_tmp, name, hs_root,
                   name);
    ts_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "brotli %s: %s", name, out);
    free(out);
    hs_set_mtime(rel, PAGE_MTIME);
}

/* The size of root/rel. */
static long size_of(const char *rel)
{
    char path[1024];
    struct stat st;
    hs_path(rel, path, sizeof path);
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return (long)st.st_size;
}

/* Wait until the access log has a 200 for GET path; its byte count. */
static long logged_bytes(const char *log, const char *path)
{
    char want[256];
    snprintf(want, sizeof want, "\"GET %s HTTP/1.1\" 200 ", path);
    int64_t deadline = ts_now_ms() + ACCESS_LOG_MS;
    for (;;) {
        size_t len;
        char *text = hs_slurp(log, &len);
        const char *at = strstr(text, want);
        long bytes = at ? strtol(at + strlen(want), NULL, 10) : -1;
        free(text);
        if (bytes >= 0)
            return bytes;
        ts_assert(ts_now_ms() < deadline, "no 200 for GET %s in the access log after %d ms",
                  path, ACCESS_LOG_MS);
        poll(NULL, 0, 50);
    }
}

/* Chromium asks for br over HTTPS only: the page comes from a ,tls
 * listener, with the test CA's certificate (the browser is told to take
 * it). Its script and its style exist in two versions, and the DOM shows
 * which one the browser ran: the .br ones. */
Test(http_browser, scripts_and_styles_from_br_files, .timeout = TIMEOUT)
{
    need_chromium();
    hs_tree("pf-browser");
    tl_certs();
    hs_put_file("index.html", page_html, strlen(page_html));
    hs_set_mtime("index.html", PAGE_MTIME);
    put_with_br("app.js", app_js, app_js_br);
    put_with_br("app.css", app_css, app_css_br);
    char log[400], url[256];
    snprintf(log, sizeof log, "%s/access.log", hs_tmp);
    port = TL_SERVE(NULL, "-w", "1", "--access-log", log);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);

    struct ts_proc *p = chromium(url, "--dump-dom", "--ignore-certificate-errors");
    size_t len;
    char *dom = hs_slurp(p->out, &len);
    ts_assert(strstr(dom, "<p id=\"js\">brotli</p>"), "the script that ran is not app.js.br's "
              "(%s):\n%s", strstr(dom, ">identity<") ? "app.js's" : "none", dom);
    ts_assert(strstr(dom, "<p id=\"css\">color rgb(4, 5, 6)</p>"), "the style applied is not "
              "app.css.br's (%s):\n%s", strstr(dom, "rgb(1, 2, 3)") ? "app.css's" : "none", dom);
    free(dom);

    /* What was sent: the bytes of the .br files, not of the originals. */
    static const char *const names[] = {"app.js", "app.css"};
    for (int i = 0; i < 2; i++) {
        char path[64], br[64];
        snprintf(path, sizeof path, "/%s", names[i]);
        snprintf(br, sizeof br, "%s.br", names[i]);
        long sent = logged_bytes(log, path), want = size_of(br), plain = size_of(names[i]);
        ts_assert(want != plain, "%s and %s have the same size", names[i], br);
        ts_assert(sent == want, "GET %s: %ld bytes sent, %s has %ld (%s %ld)", path, sent, br,
                  want, names[i], plain);
    }
}
