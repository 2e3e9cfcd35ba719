/* rules.c — response header fields by request path: parse the --header and --header-add rules, and pick those a path gets. */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "static/rules.h"

/* One rule. pattern, name and value are NUL-terminated strings in one
 * allocation (pattern's). name_id is the index of the first rule with
 * the same name (ASCII case ignored), so that requests compare numbers. */
struct static_rule {
    char *pattern;
    const char *name, *value;
    size_t name_len, value_len;
    unsigned name_id;
    bool add;
    bool type; /* Content-Type */
};

/* Fields the site writes itself (the core refuses its own with -EPERM). */
static const char *const site_owned[] = {
    "Date", "Content-Range", "Content-Encoding", "ETag", "Last-Modified",
    "Accept-Ranges", "Location", "Allow",
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* tchar (RFC 9110 5.6.2). */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool same_name(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && strncasecmp(a, b, a_len) == 0;
}

__attribute__((format(printf, 4, 5)))
static int refuse(char *why, size_t why_len, int err, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* What one spec says, pointing into it. */
struct spec {
    const char *pattern, *name, *value;
    size_t pattern_len, name_len, value_len;
};

/* Split "PATTERN Name: value" and check its syntax. */
static int split(const char *s, struct spec *p, char *why, size_t why_len)
{
    p->pattern = s;
    p->pattern_len = strcspn(s, " \t");
    if (p->pattern_len == 0)
        return refuse(why, why_len, -EINVAL, "no pattern: the form is 'PATTERN Name: value'");
    if (s[0] != '/' && s[0] != '*')
        return refuse(why, why_len, -EINVAL, "the pattern must start with '/' or '*'");
    if (p->pattern_len > STATIC_RULES_PATTERN_MAX)
        return refuse(why, why_len, -EINVAL, "the pattern is longer than %d bytes",
                      STATIC_RULES_PATTERN_MAX);
    s += p->pattern_len;
    while (is_space(*s))
        s++;
    if (!*s)
        return refuse(why, why_len, -EINVAL, "no field after the pattern: the form is "
                                             "'PATTERN Name: value'");
    const char *colon = strchr(s, ':');
    if (!colon)
        return refuse(why, why_len, -EINVAL, "no ':' after the field name");
    p->name = s;
    p->name_len = (size_t)(colon - s);
    if (p->name_len == 0)
        return refuse(why, why_len, -EINVAL, "no field name before ':'");
    for (size_t i = 0; i < p->name_len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return refuse(why, why_len, -EINVAL,
                          "'%.*s' is not a field name (letters, digits and !#$%%&'*+-.^_`|~ "
                          "only)", (int)(p->name_len > 64 ? 64 : p->name_len), s);
    p->value = colon + 1;
    while (is_space(*p->value))
        p->value++;
    p->value_len = strlen(p->value);
    while (p->value_len > 0 && is_space(p->value[p->value_len - 1]))
        p->value_len--;
    for (size_t i = 0; i < p->value_len; i++) {
        unsigned char c = (unsigned char)p->value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return refuse(why, why_len, -EINVAL,
                          "the value has a control character (0x%02x)", c);
    }
    return 0;
}

/* Whether the field may come from a rule of this kind. */
static int allowed(const struct spec *p, bool add, char *why, size_t why_len)
{
    int n = (int)p->name_len;
    for (size_t i = 0; i < sizeof site_owned / sizeof site_owned[0]; i++)
        if (same_name(p->name, p->name_len, site_owned[i], strlen(site_owned[i])))
            return refuse(why, why_len, -EPERM, "%.*s is written by the server itself", n,
                          p->name);
    if (add && same_name(p->name, p->name_len, "Content-Type", 12))
        return refuse(why, why_len, -EPERM, "Content-Type can be set, not added "
                                            "(a response has one type)");
    if (add && p->value_len == 0)
        return refuse(why, why_len, -EINVAL, "nothing to add: the value is empty");
    /* The core's own check, so that a rule never fails later, per request. */
    struct http_fields f = {0};
    int err = http_fields_add(&f, p->name, p->name_len, p->value, p->value_len);
    http_fields_free(&f);
    if (err == -EPERM)
        return refuse(why, why_len, err, "%.*s is written by the server itself", n, p->name);
    if (err == -ENOMEM)
        return refuse(why, why_len, err, "out of memory");
    if (err)
        return refuse(why, why_len, err, "not a valid header field");
    return 0;
}

/* The rule, its strings copied into one allocation. */
static int make(const struct spec *p, bool add, struct static_rule *rule)
{
    size_t size = p->pattern_len + p->name_len + p->value_len + 3;
    char *m = malloc(size);
    if (!m)
        return -ENOMEM;
    memcpy(m, p->pattern, p->pattern_len);
    m[p->pattern_len] = '\0';
    char *name = m + p->pattern_len + 1;
    memcpy(name, p->name, p->name_len);
    name[p->name_len] = '\0';
    char *value = name + p->name_len + 1;
    memcpy(value, p->value, p->value_len);
    value[p->value_len] = '\0';
    *rule = (struct static_rule){.pattern = m, .name = name, .value = value,
                                 .name_len = p->name_len, .value_len = p->value_len,
                                 .add = add,
                                 .type = same_name(name, p->name_len, "Content-Type", 12)};
    return 0;
}

int static_rules_parse(struct static_rules *r, const char *spec, bool add, char *why,
                       size_t why_len)
{
    struct spec p = {0};
    if (r->n >= STATIC_RULES_MAX)
        return refuse(why, why_len, -E2BIG, "more than %d rules", STATIC_RULES_MAX);
    int err = split(spec, &p, why, why_len);
    if (!err)
        err = allowed(&p, add, why, why_len);
    if (err)
        return err;
    struct static_rule rule;
    struct static_rule *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!v)
        return refuse(why, why_len, -ENOMEM, "out of memory");
    r->v = v;
    if (make(&p, add, &rule) < 0)
        return refuse(why, why_len, -ENOMEM, "out of memory");
    rule.name_id = (unsigned)r->n;
    for (size_t i = 0; i < r->n; i++)
        if (same_name(v[i].name, v[i].name_len, rule.name, rule.name_len)) {
            rule.name_id = v[i].name_id;
            break;
        }
    v[r->n++] = rule;
    return 0;
}

void static_rules_free(struct static_rules *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].pattern);
    free(r->v);
    *r = (struct static_rules){0};
}

int static_rules_fields(const struct static_rules *r, const char *path, struct http_fields *out,
                        const char **type, size_t *type_len)
{
    bool hit[STATIC_RULES_MAX];
    int last[STATIC_RULES_MAX]; /* by name_id: the last matching set rule, or -1 */
    size_t n = r->n < STATIC_RULES_MAX ? r->n : STATIC_RULES_MAX;
    if (type) {
        *type = NULL;
        *type_len = 0;
    }
    for (size_t i = 0; i < n; i++)
        last[r->v[i].name_id] = -1;
    for (size_t i = 0; i < n; i++) {
        const struct static_rule *rule = &r->v[i];
        hit[i] = fnmatch(rule->pattern, path, 0) == 0;
        if (hit[i] && !rule->add)
            last[rule->name_id] = (int)i;
    }
    size_t len = out->len;
    unsigned who = out->who;
    for (size_t i = 0; i < n; i++) {
        const struct static_rule *rule = &r->v[i];
        if (!hit[i] || last[rule->name_id] > (int)i || rule->value_len == 0)
            continue;
        if (rule->type && type) {
            *type = rule->value;
            *type_len = rule->value_len;
        } else if (http_fields_add(out, rule->name, rule->name_len, rule->value,
                                   rule->value_len) < 0) {
            out->len = len; /* checked at parse: only memory can fail */
            out->who = who;
            if (type)
                *type = NULL, *type_len = 0;
            return -ENOMEM;
        }
    }
    return 0;
}
