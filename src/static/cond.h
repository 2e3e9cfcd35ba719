/* cond.h — validators and conditional requests (RFC 9110 8.8, 13) and single byte ranges (RFC 9110 14). */
#ifndef PF_STATIC_COND_H
#define PF_STATIC_COND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/*
 * Every field value is given as pointer + length into the caller's buffer
 * (no NUL needed), as the request parser hands them out; leading and
 * trailing OWS is tolerated. Nothing here allocates or keeps a pointer.
 */

/* Room for the longest ETag static_etag_make writes, with its NUL:
 * DQUOTE, three 16-digit hex numbers, two dashes, DQUOTE. */
#define STATIC_ETAG_MAX 56

/*
 * Write a strong ETag for the file st describes, quoted and NUL-terminated:
 * "\"<inode>-<size>-<mtime in ns>\"" in lower-case hex. A file rewritten in
 * place within the same second still gets a new tag, since the mtime keeps
 * its nanoseconds. Returns the length without the NUL, or 0 when cap is too
 * small (STATIC_ETAG_MAX always suffices).
 */
size_t static_etag_make(const struct stat *st, char *out, size_t cap);

/* The precondition fields of a request; a NULL pointer means "absent".
 * An empty value (pointer set, length 0) is present, and malformed. */
struct static_cond {
    const char *if_match;
    size_t if_match_len;
    const char *if_none_match;
    size_t if_none_match_len;
    const char *if_modified_since;
    size_t if_modified_since_len;
    const char *if_unmodified_since;
    size_t if_unmodified_since_len;
};

enum static_cond_result {
    STATIC_COND_OK,                  /* go on with the request */
    STATIC_COND_NOT_MODIFIED,        /* answer 304 */
    STATIC_COND_PRECONDITION_FAILED, /* answer 412 */
};

/*
 * Evaluate the preconditions of c against the selected representation, whose
 * ETag is etag[0..etag_len) (quoted as static_etag_make writes it; NULL if it
 * has none) and whose Last-Modified is mtime, in the order of RFC 9110
 * 13.2.2: If-Match (strong comparison), else If-Unmodified-Since; then
 * If-None-Match (weak comparison; 304 for GET/HEAD, 412 otherwise), else, for
 * GET/HEAD only, If-Modified-Since. A date that does not parse, or that lies
 * after the current time, is ignored. An entity-tag list that is malformed
 * anywhere matches nothing. Range and If-Range come after this, separately.
 */
enum static_cond_result static_cond_evaluate(const struct static_cond *c, const char *etag,
                                         size_t etag_len, time_t mtime, bool get_or_head);

/* What static_range_parse makes of a Range field. */
enum static_range_result {
    STATIC_RANGE_OK,            /* answer 206 with bytes first..last */
    STATIC_RANGE_IGNORE,        /* answer 200 with everything */
    STATIC_RANGE_UNSATISFIABLE, /* answer 416, see static_content_range_unsatisfied */
};

/*
 * Parse the Range value v[0..n) against a representation of size bytes.
 * Only one range is served: "bytes=a-b", "bytes=a-" and "bytes=-suffix" (the
 * unit in any case, OWS around "=" and the list's commas, empty list
 * elements skipped). Returns STATIC_RANGE_OK with first <= last < size set
 * (last clamped to size - 1, a suffix longer than the file meaning all of
 * it); STATIC_RANGE_UNSATISFIABLE when first >= size, for a zero suffix, or
 * when size is 0; STATIC_RANGE_IGNORE for a syntax error, another unit, a
 * range with last < first, or several ranges (RFC 9110 14.2 lets a server
 * ignore Range; multipart/byteranges is not worth its cost for a static
 * server). Numbers of any length are safe: they saturate at UINT64_MAX.
 */
int static_range_parse(const char *v, size_t n, uint64_t size, uint64_t *first, uint64_t *last);

/*
 * Whether the If-Range value v[0..n) lets the Range field apply (RFC 9110
 * 13.1.5): a strong entity-tag equal to ours (a weak one, W/"...", never
 * matches), or an HTTP-date exactly equal to mtime. A date only counts as a
 * strong validator once its second is over (mtime < now), since a file
 * written twice within one second would keep the same date. Anything
 * else, malformed values included, is false: serve the whole representation.
 */
bool static_if_range_ok(const char *v, size_t n, const char *etag, size_t etag_len, time_t mtime);

/* Room for the longest Content-Range value, with its NUL:
 * "bytes " and three 20-digit numbers with "-" and "/". */
#define STATIC_CONTENT_RANGE_MAX 72

/* Write "bytes first-last/size" (the 206 form) and a NUL. Returns the length
 * without the NUL, or 0 when cap is too small. */
size_t static_content_range(char *out, size_t cap, uint64_t first, uint64_t last, uint64_t size);

/* Write the 416 form, "bytes", SP, "*", "/", size, and a NUL. Returns
 * the length without the NUL, or 0 when cap is too small. */
size_t static_content_range_unsatisfied(char *out, size_t cap, uint64_t size);

#endif
