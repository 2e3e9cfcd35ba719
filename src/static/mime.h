/* mime.h — Content-Type of a file from its name's extension. */
#ifndef PF_STATIC_MIME_H
#define PF_STATIC_MIME_H

#include <stddef.h>

/* What a name with no extension, or one we do not know, is served as. */
#define STATIC_MIME_DEFAULT "application/octet-stream"

/*
 * The media type for the file name (or path) name[0..len), from the
 * extension after the last dot of its final path component, compared
 * without regard to ASCII case. Text types carry "; charset=utf-8". A name
 * without an extension, a dot file such as ".profile", and any extension not
 * in the table get STATIC_MIME_DEFAULT. The result is a static string; the
 * lookup is a binary search and allocates nothing.
 */
const char *static_mime_type(const char *name, size_t len);

#endif
