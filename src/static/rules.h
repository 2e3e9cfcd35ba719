/* rules.h — response header fields by request path: `prefork serve`'s --header and --header-add rules. */
#ifndef PF_STATIC_RULES_H
#define PF_STATIC_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"

/*
 * A rule is one option value, "PATTERN Name: value": the pattern is the
 * first token (up to the first space or tab), then one header field, OWS
 * around its value trimmed. Examples:
 *
 *   *.html Cache-Control: no-cache
 *   /index.html Cache-Control: no-cache
 *   *.woff2 Access-Control-Allow-Origin: *
 *
 * and "/assets/" then '*', with "Cache-Control: max-age=31536000,
 * immutable", for everything beneath /assets.
 *
 * The pattern starts with '/' or '*' and is matched with fnmatch(3), flags
 * 0, against a decoded URL path (the handler gives the path of the file
 * it sends, "/docs/index.html" for "/docs/", or the request's path when
 * it sends no file): case-sensitive, '*' crosses '/', '?' and "[...]" as
 * fnmatch has them, '\' quotes the next character.
 *
 * Two kinds, applied in the order they were given:
 *   - set (--header): for that field name (ASCII case ignored) it replaces
 *     whatever earlier matching rules gave, set or added; an empty value
 *     removes it. So for each name, the last matching set rule wins.
 *   - add (--header-add): one more line of that field (several Link
 *     fields, say), after what earlier matching rules gave.
 *
 * Names the server writes itself are refused: the core's (Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade) and
 * the site's Date, Content-Range, Content-Encoding, ETag, Last-Modified,
 * Accept-Ranges, Location and Allow. Content-Type may be set (not added):
 * it replaces the type the site would send, and is handed to the caller
 * apart from the other fields. Server may be set or added: the core then
 * sends no Server of its own.
 */

/* At most this many rules; a pattern at most STATIC_RULES_PATTERN_MAX bytes. */
#define STATIC_RULES_MAX 256
#define STATIC_RULES_PATTERN_MAX 1024

struct static_rule;

/* The rules, in the order given. {0} is none. */
struct static_rules {
    struct static_rule *v;
    size_t n;
};

/*
 * Parse spec, one rule ("PATTERN Name: value"), and append it to r: a set
 * rule, or an add rule when add is true. Returns 0; -EINVAL (a syntax
 * error, a name that is not a token, a control character in the value),
 * -EPERM (a name the server writes itself, or Content-Type added), -E2BIG
 * (STATIC_RULES_MAX rules already) or -ENOMEM, with why[0..why_len) set to
 * a one-line reason; r is unchanged then.
 */
int static_rules_parse(struct static_rules *r, const char *spec, bool add, char *why,
                       size_t why_len);

/* Release the rules; r is {0} again. */
void static_rules_free(struct static_rules *r);

/*
 * Append to out the fields the rules give path (NUL-terminated, starting
 * with '/'), in rule order. A Content-Type they give is not appended but
 * reported: *type then points to its value (NUL-terminated, owned by r),
 * *type_len is its length; else *type is NULL. When type is NULL, a
 * Content-Type goes into out like the rest. No allocation but out's
 * growth; one fnmatch per rule. Returns 0, or -ENOMEM with out as it was
 * and no type.
 */
int static_rules_fields(const struct static_rules *r, const char *path, struct http_fields *out,
                        const char **type, size_t *type_len);

#endif
