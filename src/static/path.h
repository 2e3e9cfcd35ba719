/* path.h — request paths: percent-decode and normalise a target, open it beneath the root, encode it back. */
#ifndef PF_STATIC_PATH_H
#define PF_STATIC_PATH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Safety rests on two layers, and the second never trusts the first:
 *
 *   1. static_path_decode() turns the request target into a clean relative
 *      path: no "." or ".." segment, no empty segment, no leading '/', no
 *      NUL or control byte. A ".." that would climb above the root is a 400.
 *   2. static_open_beneath() opens that path with openat2(RESOLVE_BENEATH), so
 *      the kernel itself refuses to leave the root, whatever the string
 *      holds and whatever symlinks (or renames racing with us) are in the
 *      tree. Magic links (/proc/self/fd/N and the like) are always refused.
 */

/* What static_path_decode() learnt besides the path itself. */
struct static_path {
    size_t len;           /* strlen(out): 0 for the root */
    size_t raw_len;       /* bytes of target before the query: the query
                             ("?..." without the '?') is target[raw_len + 1..n) */
    bool trailing_slash;  /* the path ended with '/' (or with "/." or "/..",
                             which RFC 3986 5.2.4 turns into one); the root
                             always has it */
    bool has_dot_segment; /* some segment of out starts with '.': a dotfile
                             or dot-directory, refused (404) unless --dotfiles */
};

/*
 * Decode target[0..n), a request target in origin-form ("/a/b%20c?q=1"),
 * into out (cap bytes, NUL-terminated) as a path relative to the root:
 * "a/b c" here, "" for the root.
 *
 *   - The query ('?' and after) is cut off, unread. An empty target, or one
 *     that starts with '?', is the root: that is what the path of an
 *     absolute-form target can be (RFC 9112 3.2.2). Anything else that does
 *     not start with '/' is -EINVAL.
 *   - "%XX" (two hex digits, either case) becomes byte 0xXX. A '%' without
 *     two hex digits after it is -EINVAL, as is any byte, raw or decoded,
 *     below 0x20 or equal to 0x7F (NUL included). '+' stays '+', '\' stays
 *     '\' (an ordinary byte on Linux), bytes >= 0x80 stay as they are: an
 *     overlong UTF-8 form such as "%C0%AE" is two plain bytes, never a dot.
 *   - "%2F" decodes to '/' and then separates segments like a raw '/', as
 *     nginx does. Keeping it inside a segment would be pointless (no file
 *     name can hold '/'), and refusing it would break clients that encode
 *     every byte. Because decoding comes first, "%2e%2e%2f" is "../".
 *   - Then it is normalised: repeated '/' collapse, "." segments go, ".."
 *     removes the segment before it; a ".." with nothing left to remove
 *     would climb above the root and is -EINVAL.
 *
 * Returns 0 with *p filled, -EINVAL (answer 400) or -ENAMETOOLONG (answer
 * 414) when the path, at any step of the normalisation, needs more than cap
 * bytes with its NUL. cap = n + 1 always suffices; PATH_MAX is the usual size.
 */
int static_path_decode(const char *target, size_t n, char *out, size_t cap, struct static_path *p);

/* Modes of static_open_beneath(). */
#define STATIC_OPEN_FOLLOW_OUTSIDE 1u /* follow symlinks that leave the root */

/*
 * Open rel, a path from static_path_decode(), beneath the directory rootfd
 * (which may be an O_PATH descriptor). "" opens the root itself. oflags are
 * the open(2) flags wanted, e.g. O_RDONLY or O_RDONLY | O_DIRECTORY;
 * O_CLOEXEC, O_NOCTTY and O_NONBLOCK are always added (the last so that a
 * FIFO in the tree cannot block the worker). O_CREAT and O_TMPFILE are
 * refused: this only opens what exists.
 *
 * By default the kernel resolves the whole path beneath rootfd
 * (RESOLVE_BENEATH): symlinks that stay inside the root work, a symlink that
 * leaves it (absolute, or through "..") fails with EXDEV. With
 * STATIC_OPEN_FOLLOW_OUTSIDE symlinks may lead anywhere, and ".." in rel is
 * kept out by a check here, as the kernel cannot be asked for that alone.
 * In both modes magic links are refused (ELOOP), and so are an absolute rel
 * and a ".." segment in rel (-EINVAL), which static_path_decode() never makes.
 *
 * Returns 0 with *out set to a new descriptor the caller closes, or -errno.
 * How the server should answer:
 *   ENOENT, ENOTDIR, EXDEV, ELOOP, ENAMETOOLONG, ENXIO -> 404
 *   EACCES, EPERM                                       -> 403
 *   EMFILE, ENFILE, ENOMEM                              -> 503
 *   anything else (EINVAL, ENOSYS, EAGAIN after retries) -> 500
 * ENOSYS means a kernel before 5.6 or a seccomp filter: check once at
 * startup with static_open_beneath(rootfd, "", O_RDONLY | O_DIRECTORY, 0, &fd)
 * and refuse to serve rather than serve unconfined.
 *
 * The caller must still fstat the result and serve only regular files and
 * directories: a FIFO, socket or device inside the root opens fine here.
 */
int static_open_beneath(int rootfd, const char *rel, int oflags, unsigned mode, int *out);

/*
 * Percent-encode in[0..n) for a URL path: every byte but the unreserved
 * ones (A-Z a-z 0-9 - . _ ~) and '/' becomes "%XX" (upper-case hex). Works
 * like snprintf: writes at most cap bytes, NUL included, never half an
 * escape, and returns the length the whole encoding needs (without the NUL),
 * so a result >= cap means it was cut short. At most 3 * n.
 */
size_t static_url_encode_path(const char *in, size_t n, char *out, size_t cap);

#endif
