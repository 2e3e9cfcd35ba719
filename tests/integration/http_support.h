/* http_support.h — helpers shared by the tests of `prefork serve`: a document-root tree, the server, raw exchanges, responses, programs run with a deadline. */
#ifndef HS_HTTP_SUPPORT_H
#define HS_HTTP_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "support.h"

/*
 * Built on support.h (ts_*): like it, every helper that waits has a deadline,
 * and a helper that cannot do its job fails the test with an assertion (the
 * logs dumped), so callers check nothing but what they test.
 */

#define HS_START_MS 20000 /* the server's start-up: generous, a slow machine under ASan */
#define HS_IO_MS 10000    /* one exchange over loopback */

/* ---- the document-root tree ---- */

/* The current test's tree, set by hs_tree and emptied by hs_cleanup: read
 * them, never write them. hs_root is hs_base/root, the document root;
 * hs_tmp is hs_base/tmp, for files that must not show in a listing. */
extern char hs_base[256], hs_root[300], hs_tmp[300];

/* Make a fresh tree: hs_base is a new directory $TMPDIR/PREFIX-XXXXXX (or
 * under /tmp) holding the empty directories root and tmp. One per test. */
void hs_tree(const char *prefix);

/* The .fini of the suites: ts_cleanup first (nothing the test started may
 * still write into the tree), then remove the whole tree. ts_temp_dir only
 * removes flat directories, hence this. */
void hs_cleanup(void);

/* The full path of rel, a path relative to the root ("../x" is hs_base/x,
 * out of the root), into out. */
void hs_path(const char *rel, char *out, size_t size);

/* Create (or truncate) the file rel with n bytes of data, or with text. */
void hs_put_file(const char *rel, const void *data, size_t n);
void hs_put_text(const char *rel, const char *text);

/* Make the directory rel. */
void hs_make_dir(const char *rel);

/* Set both times of rel to t (seconds since the epoch). */
void hs_set_mtime(const char *rel, time_t t);

/* A whole file with its length in *len, NUL-terminated and binary safe (the
 * caller frees it). A missing file reads as empty: curl makes no -o file for
 * an empty body. */
char *hs_slurp(const char *path, size_t *len);

/* ---- the server ---- */

/* Start `prefork serve -l 127.0.0.1:0 ARGS...` (ARGS name the root too) and
 * wait for its start-up line; returns its port. The process goes to *srv
 * unless srv is NULL. */
int hs_serve(struct ts_proc **srv, const char *const *args);
#define HS_SERVE(srv, ...) hs_serve(srv, (const char *const[]){__VA_ARGS__, NULL})

/* ---- bytes ---- */

/* A growable buffer, always NUL-terminated once something (even "") was
 * added. The caller owns p and frees it; {0} is an empty buffer. */
struct hs_buf {
    char *p;
    size_t len, cap;
};

/* Append n bytes of s to b. */
void hs_buf_add(struct hs_buf *b, const char *s, size_t n);

/* Printable form of n bytes for messages: CR, LF and NUL made visible, the
 * rest cut at about 190 characters. One static buffer, reused by each call. */
const char *hs_shown(const char *s, size_t n);

/* ---- raw connections ---- */

/* Connect to 127.0.0.1:port; asserts it works. The fd is non-blocking. */
int hs_connect(int port);

/* Read into b until the peer closes: 0, -ETIMEDOUT, or -errno (a reset is
 * -ECONNRESET). b->p is not NULL afterwards, whatever the result. */
int hs_read_to_eof(int fd, struct hs_buf *b, int timeout_ms);

/* Send n bytes on a new connection and read until the server closes it;
 * asserts that it does close, without a reset. Returns what came, with its
 * length in *len (NUL-terminated; the caller frees it). */
char *hs_exchange(int port, const void *req, size_t n, size_t *len);

/* ---- responses ---- */

/* The value of the first field called name (any case) in head, which is a
 * status line and fields, each ended by CRLF; the search stops at the end of
 * the string or at an empty line, so head may be a whole response. Copied
 * into out without its CRLF and leading blanks; returns out, or NULL. */
const char *hs_field(const char *head, const char *name, char *out, size_t size);

/* One HTTP/1.1 response parsed from a buffer. */
struct hs_resp {
    int status;
    char head[4096];  /* a NUL-terminated copy of the head (cut if longer) */
    const char *body; /* into the buffer parsed */
    size_t body_len;  /* from Content-Length; 0 without it */
};

/* Parse one response at p[0..n): the bytes it takes, or -1 while it is not
 * whole or not an HTTP/1.1 response. A response to HEAD (head_only) or a 304
 * has no body. */
long hs_parse_resp(const char *p, size_t n, bool head_only, struct hs_resp *r);

/* ---- programs ---- */

/* Run argv (argv[0] found on PATH unless it has a '/') with stdin from
 * /dev/null; its stdout and stderr go to *out and *err (NUL-terminated, the
 * caller frees both). Returns the wait status, or -ETIMEDOUT after killing
 * it by pid at the deadline. */
int hs_run(const char *const *argv, int timeout_ms, char **out, char **err);

#endif
