/* path.c — request paths: percent-decode and normalise a target, open it beneath the root, encode it back. */
#include "static/path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Decoding and normalising happen in one pass that writes straight into out.
 * Each segment is decoded after the output built so far (behind a '/' when
 * that is not empty); when the segment ends, it is kept, or, if it was "." or
 * "..", rolled back along with what ".." removes. No byte is looked at twice
 * and nothing is allocated. The cost of this simplicity: out must hold the
 * longest intermediate path, so "/<4000 bytes>/../x" needs a 4 KiB buffer
 * even though the answer is "x".
 */

/* Where the pass is: out[0..len) is the path so far, and the segment being
 * decoded started when len was start. */
struct norm {
    char *out;
    size_t cap;
    size_t len;
    size_t start;
};

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* ASCII lower case; maps nothing else onto a-f */
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte at t[*i], percent-decoded, and *i moved past it; or -EINVAL for
 * a broken escape or a byte no path may hold (controls, NUL, DEL, and a raw
 * '#': a fragment is never part of a request target, RFC 9112 3.2). */
static int next_byte(const char *t, size_t end, size_t *i)
{
    unsigned char c = (unsigned char)t[*i];
    if (c == '%') {
        if (end - *i < 3)
            return -EINVAL;
        int hi = hex_value((unsigned char)t[*i + 1]);
        int lo = hex_value((unsigned char)t[*i + 2]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        c = (unsigned char)(hi << 4 | lo);
        *i += 3;
    } else {
        if (c == '#')
            return -EINVAL;
        *i += 1;
    }
    if (c < 0x20 || c == 0x7f)
        return -EINVAL;
    return c;
}

/* Add one byte of a segment, with the '/' that separates it from the path
 * before it when this is its first byte. One byte stays free for the NUL. */
static int put_byte(struct norm *s, unsigned char c)
{
    size_t need = (s->len == s->start && s->start > 0) ? 2 : 1;
    if (s->cap - s->len <= need)
        return -ENAMETOOLONG;
    if (need == 2)
        s->out[s->len++] = '/';
    s->out[s->len++] = (char)c;
    return 0;
}

/* The segment just decoded has ended: keep it, or apply it if it is "." or
 * "..". Returns 1 when it was empty, "." or "..", 0 when it was kept, or
 * -EINVAL for a ".." with nothing left to climb out of. */
static int end_segment(struct norm *s)
{
    size_t from = s->start + (s->start > 0);
    size_t n = s->len > s->start ? s->len - from : 0;
    const char *seg = s->out + from;
    int special = n == 0 || (n == 1 && seg[0] == '.') ||
                  (n == 2 && seg[0] == '.' && seg[1] == '.');
    if (n > 0 && special) {
        s->len = s->start;
        if (n == 2) {
            if (s->len == 0)
                return -EINVAL;
            while (s->len > 0 && s->out[s->len - 1] != '/')
                s->len--;
            if (s->len > 0)
                s->len--; /* the '/' before the removed segment */
        }
    }
    s->start = s->len;
    return special;
}

/* Whether some segment of the normalised path starts with '.'. */
static bool has_dot_segment(const char *path, size_t len)
{
    if (len > 0 && path[0] == '.')
        return true;
    const char *p = path, *end = path + len;
    while ((p = memchr(p, '/', (size_t)(end - p))) && p + 1 < end) {
        if (p[1] == '.')
            return true;
        p++;
    }
    return false;
}

/* Decode and normalise the path part, target[0..end). Every '/', raw or
 * decoded, ends a segment; the empty one before the leading '/' is a no-op.
 * The path has a trailing slash when its last segment is empty, "." or "..". */
static int normalise(const char *t, size_t end, struct norm *s, bool *trailing)
{
    int rc;
    for (size_t i = 0; i < end;) {
        int c = next_byte(t, end, &i);
        if (c < 0)
            return c;
        rc = c == '/' ? end_segment(s) : put_byte(s, (unsigned char)c);
        if (rc < 0)
            return rc;
    }
    rc = end_segment(s);
    if (rc < 0)
        return rc;
    *trailing = rc == 1;
    return 0;
}

int static_path_decode(const char *target, size_t n, char *out, size_t cap, struct static_path *p)
{
    const char *q = n ? memchr(target, '?', n) : NULL;
    size_t end = q ? (size_t)(q - target) : n;
    struct norm s = {out, cap, 0, 0};
    bool trailing = false;
    if (cap == 0)
        return -ENAMETOOLONG;
    if (end > 0 && target[0] != '/')
        return -EINVAL;
    int rc = normalise(target, end, &s, &trailing);
    if (rc < 0) {
        out[0] = '\0';
        return rc;
    }
    out[s.len] = '\0';
    p->len = s.len;
    p->raw_len = end;
    p->trailing_slash = trailing;
    p->has_dot_segment = has_dot_segment(out, s.len);
    return 0;
}

/* Whether rel has a ".." segment. static_path_decode() never makes one; this
 * guards the mode where the kernel does not confine "..". */
static bool has_dotdot(const char *rel)
{
    for (const char *seg = rel; *seg;) {
        size_t n = strcspn(seg, "/");
        if (n == 2 && seg[0] == '.' && seg[1] == '.')
            return true;
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return false;
}

/* RESOLVE_BENEATH fails with EAGAIN when a rename or mount anywhere on the
 * system raced with the lookup, as the kernel then cannot prove the walk
 * stayed inside. Retrying is the documented answer; a bound keeps a storm of
 * renames from holding a worker. */
#define OPEN_RETRIES 16

int static_open_beneath(int rootfd, const char *rel, int oflags, unsigned mode, int *out)
{
    if (rel[0] == '/' || has_dotdot(rel) || (mode & ~STATIC_OPEN_FOLLOW_OUTSIDE))
        return -EINVAL;
    if ((oflags & O_CREAT) || (oflags & O_TMPFILE & ~O_DIRECTORY))
        return -EINVAL;
    struct open_how how = {
        .flags = (uint64_t)(unsigned)(oflags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK),
        .mode = 0,
        .resolve = RESOLVE_NO_MAGICLINKS,
    };
    if (!(mode & STATIC_OPEN_FOLLOW_OUTSIDE))
        how.resolve |= RESOLVE_BENEATH;
    for (int tries = 0;; tries++) {
        long fd = syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how);
        if (fd >= 0) {
            *out = (int)fd;
            return 0;
        }
        int e = errno;
        if ((e != EAGAIN && e != EINTR) || tries >= OPEN_RETRIES)
            return -e;
    }
}

static bool url_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
}

size_t static_url_encode_path(const char *in, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        size_t k = url_unreserved(c) ? 1 : 3;
        if (need == w && cap > 0 && w + k < cap) {
            if (k == 1) {
                out[w++] = (char)c;
            } else {
                out[w++] = '%';
                out[w++] = hex[c >> 4];
                out[w++] = hex[c & 15];
            }
        }
        need += k;
    }
    if (cap > 0)
        out[w] = '\0';
    return need;
}
