/* listing.h — the HTML page listing a directory that has no index file. */
#ifndef PF_STATIC_LISTING_H
#define PF_STATIC_LISTING_H

#include <stdbool.h>

#include "http/buf.h"

/* At most this many entries are read from one directory; past it the page
 * says it is incomplete. With names of up to 255 bytes, this bounds the
 * memory a listing takes besides the page itself (at most out's limit) to
 * about 28 MiB in the worst case, a few MiB in practice. */
#define STATIC_LISTING_MAX_ENTRIES 100000

/*
 * Append to out a complete HTML5 page listing the directory dirfd (an open
 * directory, O_PATH is fine), titled "Index of /url/path/".
 *
 * url_path is the decoded path of the directory as the client asked for it,
 * with or without its leading and trailing '/' (the out of
 * static_path_decode() will do): it is only shown, HTML-escaped, and decides
 * whether there is a parent link ("../", absent at the root). Links to the
 * entries are relative, each name percent-encoded, directories with a
 * trailing '/'.
 *
 * Entries: "." and ".." never; names starting with '.' only when
 * show_dotfiles; directories first, then the rest, each group sorted by name
 * in byte order. Each entry is looked at with fstatat(AT_SYMLINK_NOFOLLOW),
 * so a symlink shows under its own name, as a file with no size, whatever it
 * points to (the server decides later whether following it is allowed); an
 * entry that vanishes while the listing is made is left out. Sizes are
 * human-readable in binary units ("1.2 KiB"), times are UTC
 * ("2026-11-25 16:30").
 *
 * The directory is read through a descriptor of its own, so dirfd's offset
 * does not move and the caller keeps dirfd. When the page would pass out's
 * limit, rows stop there and the page still ends properly, with a note.
 *
 * Returns 0, or -errno (-ENOMEM when even an empty page does not fit, or
 * memory runs out; an error of opening or reading the directory). On error
 * out is as it was.
 */
int static_listing_render(int dirfd, const char *url_path, bool show_dotfiles, struct http_buf *out);

#endif
