/* listing.c — the HTML page listing a directory that has no index file. */
#include "static/listing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "static/path.h"

/*
 * The directory is read whole before anything is written, because the page
 * is sorted. Names go one after another into one arena, each entry keeps an
 * offset into it: two allocations whatever the number of entries, and both
 * bounded (STATIC_LISTING_MAX_ENTRIES). Then the page is written row by row
 * into the caller's buffer, keeping FOOTER_ROOM bytes of its limit back so
 * that a page cut short still closes its table and says so.
 */

enum kind { K_DIR, K_FILE, K_LINK, K_OTHER };

struct entry {
    size_t name;     /* offset of the NUL-terminated name in the arena */
    size_t name_len;
    enum kind kind;
    bool stat_ok;    /* size and mtime are known */
    off_t size;
    time_t mtime;
};

struct entries {
    struct entry *v;
    size_t n, cap;
    struct http_buf names;
    bool truncated; /* the directory held more than we read */
};

#define FOOTER_ROOM 512

static enum kind kind_of_mode(mode_t m)
{
    return S_ISDIR(m) ? K_DIR : S_ISREG(m) ? K_FILE : S_ISLNK(m) ? K_LINK : K_OTHER;
}

static enum kind kind_of_dtype(unsigned char t)
{
    return t == DT_DIR ? K_DIR : t == DT_REG ? K_FILE : t == DT_LNK ? K_LINK : K_OTHER;
}

static int entries_grow(struct entries *es)
{
    if (es->n < es->cap)
        return 0;
    size_t cap = es->cap ? es->cap * 2 : 64;
    if (cap > STATIC_LISTING_MAX_ENTRIES)
        cap = STATIC_LISTING_MAX_ENTRIES;
    struct entry *v = realloc(es->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    es->v = v;
    es->cap = cap;
    return 0;
}

/* Record one directory entry. An entry that is gone by the time we look
 * (ENOENT) is skipped, and so is a name longer than NAME_MAX, which some
 * network file systems can return but no open can reach; one we may not
 * stat still shows, with the type readdir gave and no size or time. */
static int add_entry(struct entries *es, int fd, const struct dirent *de)
{
    struct stat st;
    struct entry e = {0};
    e.name_len = strlen(de->d_name);
    if (e.name_len > NAME_MAX)
        return 0;
    if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        e.kind = kind_of_mode(st.st_mode);
        e.stat_ok = true;
        e.size = st.st_size;
        e.mtime = st.st_mtim.tv_sec;
    } else if (errno == ENOENT) {
        return 0;
    } else {
        e.kind = kind_of_dtype(de->d_type);
    }
    e.name = es->names.len;
    int rc = entries_grow(es);
    if (rc == 0)
        rc = http_buf_append(&es->names, de->d_name, e.name_len + 1);
    if (rc < 0)
        return rc;
    es->v[es->n++] = e;
    return 0;
}

static bool skip_name(const char *name, bool show_dotfiles)
{
    if (name[0] != '.')
        return false;
    if (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))
        return true;
    return !show_dotfiles;
}

/* Read the directory through a descriptor of our own: a dup would share
 * dirfd's offset, and getdents on an O_PATH descriptor fails. */
static int read_entries(int dirfd, bool show_dotfiles, struct entries *es)
{
    int fd = -1, rc = static_open_beneath(dirfd, "", O_RDONLY | O_DIRECTORY, 0, &fd);
    if (rc < 0)
        return rc;
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            rc = -errno;
            break;
        }
        if (skip_name(de->d_name, show_dotfiles))
            continue;
        if (es->n == STATIC_LISTING_MAX_ENTRIES) {
            es->truncated = true;
            break;
        }
        rc = add_entry(es, fd, de);
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

/* Directories first, then byte order: strcmp compares as unsigned char. */
static int entry_cmp(const void *a, const void *b, void *arena)
{
    const struct entry *x = a, *y = b;
    if ((x->kind == K_DIR) != (y->kind == K_DIR))
        return x->kind == K_DIR ? -1 : 1;
    const char *names = arena;
    return strcmp(names + x->name, names + y->name);
}

/* "1023 B", "1.2 KiB", "3.0 GiB": one decimal from KiB on, and the unit
 * chosen so that the rounded number stays below 1024. */
static void format_size(off_t size, char *buf, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (size < 1024) {
        snprintf(buf, cap, "%lld B", (long long)size);
        return;
    }
    double v = (double)size / 1024;
    size_t u = 0;
    while (v >= 1023.95 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, units[u]);
}

static void format_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%d %H:%M", &tm) == 0)
        buf[0] = '\0';
}

static const char page_head[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"color-scheme\" content=\"light dark\">\n"
    "<title>Index of ";

static const char page_style[] =
    "</title>\n"
    "<style>\n"
    ":root{--fg:#1f2328;--bg:#fff;--dim:#59636e;--rule:#d1d9e0;--link:#0969da;--hover:#f6f8fa}\n"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--dim:#9198a1;"
    "--rule:#30363d;--link:#4493f8;--hover:#151b23}}\n"
    "body{margin:0 auto;max-width:64rem;padding:1rem 1.25rem;color:var(--fg);"
    "background:var(--bg);font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",sans-serif}\n"
    "h1{font-size:1.25rem;font-weight:600;margin:.5rem 0 1rem;overflow-wrap:anywhere}\n"
    "table{width:100%;border-collapse:collapse}\n"
    "th,td{padding:.3rem .6rem;border-bottom:1px solid var(--rule);text-align:left}\n"
    "th{color:var(--dim);font-weight:500}\n"
    "td.n{overflow-wrap:anywhere}\n"
    ".s,.t{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\n"
    "td.s,td.t{color:var(--dim)}\n"
    "tbody tr:hover{background:var(--hover)}\n"
    "a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}\n"
    "p.note{color:var(--dim);font-size:.9rem}\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>Index of ";

static const char page_table[] =
    "</h1>\n"
    "<table>\n"
    "<thead><tr><th class=\"n\">Name</th><th class=\"s\">Size</th>"
    "<th class=\"t\">Modified (UTC)</th></tr></thead>\n"
    "<tbody>\n";

/* The directory's path as shown: "/" + url_path without its own leading
 * and trailing slashes + "/", HTML-escaped. */
static int put_title(struct http_buf *out, const char *path, size_t n)
{
    int rc = http_buf_puts(out, "/");
    if (rc == 0 && n > 0) {
        rc = http_html_escape(out, path, n);
        if (rc == 0)
            rc = http_buf_puts(out, "/");
    }
    return rc;
}

static int render_head(struct http_buf *out, const char *path, size_t n)
{
    int rc = http_buf_puts(out, page_head);
    if (rc == 0)
        rc = put_title(out, path, n);
    if (rc == 0)
        rc = http_buf_puts(out, page_style);
    if (rc == 0)
        rc = put_title(out, path, n);
    if (rc == 0)
        rc = http_buf_puts(out, page_table);
    if (rc == 0 && n > 0)
        rc = http_buf_puts(out, "<tr><td class=\"n\"><a href=\"../\">../</a></td>"
                                "<td class=\"s\"></td><td class=\"t\"></td></tr>\n");
    return rc;
}

/* One table row. The href needs no HTML escaping: percent-encoding leaves
 * only unreserved bytes, '%' and '/'. */
static int render_row(struct http_buf *out, const char *name, const struct entry *e)
{
    char href[3 * NAME_MAX + 2], size[32] = "-", mtime[32] = "";
    bool dir = e->kind == K_DIR;
    size_t hn = static_url_encode_path(name, e->name_len, href, sizeof href - 1);
    if (hn >= sizeof href - 1)
        return -ENAMETOOLONG; /* cannot happen: names have at most NAME_MAX bytes */
    if (dir) {
        href[hn++] = '/';
        href[hn] = '\0';
    }
    if (e->stat_ok && e->kind == K_FILE)
        format_size(e->size, size, sizeof size);
    if (e->stat_ok)
        format_time(e->mtime, mtime, sizeof mtime);
    int rc = http_buf_printf(out, "<tr><td class=\"n\"><a href=\"%s\">", href);
    if (rc == 0)
        rc = http_html_escape(out, name, e->name_len);
    if (rc == 0)
        rc = http_buf_printf(out,
                             "%s</a></td><td class=\"s\">%s</td><td class=\"t\">%s</td></tr>\n",
                             dir ? "/" : "", size, mtime);
    return rc;
}

/* Rows until the entries or the room run out; returns how many were written.
 * A row that does not fit is taken back whole. */
static size_t render_rows(struct http_buf *out, const struct entries *es)
{
    size_t i;
    for (i = 0; i < es->n; i++) {
        size_t mark = out->len;
        if (render_row(out, es->names.p + es->v[i].name, &es->v[i]) < 0) {
            out->len = mark;
            out->p[mark] = '\0';
            break;
        }
    }
    return i;
}

static int render_foot(struct http_buf *out, size_t shown, bool cut)
{
    int rc = http_buf_puts(out, "</tbody>\n</table>\n");
    if (rc == 0 && cut)
        rc = http_buf_printf(out, "<p class=\"note\">This listing is incomplete: %zu entries are "
                                  "shown, the directory holds more.</p>\n", shown);
    if (rc == 0)
        rc = http_buf_puts(out, "</body>\n</html>\n");
    return rc;
}

/* Write the page with FOOTER_ROOM of the limit held back from the head and
 * the rows, then give it back for the footer. */
static int render_page(struct http_buf *out, const char *url_path, const struct entries *es)
{
    size_t limit = http_buf_limit(out), saved = out->max;
    if (limit < FOOTER_ROOM || out->len > limit - FOOTER_ROOM)
        return -ENOMEM;
    while (*url_path == '/')
        url_path++;
    size_t n = strlen(url_path);
    while (n > 0 && url_path[n - 1] == '/')
        n--;
    out->max = limit - FOOTER_ROOM;
    int rc = render_head(out, url_path, n);
    size_t shown = rc == 0 ? render_rows(out, es) : 0;
    out->max = saved;
    if (rc == 0)
        rc = render_foot(out, shown, es->truncated || shown < es->n);
    return rc;
}

int static_listing_render(int dirfd, const char *url_path, bool show_dotfiles, struct http_buf *out)
{
    size_t names_cap = (size_t)STATIC_LISTING_MAX_ENTRIES * (NAME_MAX + 1);
    struct entries es = {NULL, 0, 0, HTTP_BUF_INIT(names_cap), false};
    size_t start = out->len;
    int rc = read_entries(dirfd, show_dotfiles, &es);
    if (rc == 0) {
        if (es.n > 1)
            qsort_r(es.v, es.n, sizeof *es.v, entry_cmp, es.names.p);
        rc = render_page(out, url_path, &es);
    }
    if (rc < 0 && out->len > start) {
        out->len = start;
        out->p[start] = '\0';
    }
    free(es.v);
    http_buf_free(&es.names);
    return rc;
}
