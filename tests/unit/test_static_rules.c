/* test_static_rules.c — unit tests for the --header rules: parsing and its refusals, path matching, set/add/remove precedence, Content-Type, the limit. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../src/static/rules.h"

#define SET false
#define ADD true

static struct static_rules rules;

static void fini(void)
{
    static_rules_free(&rules);
}

TestSuite(rules, .fini = fini);

static void ok(const char *spec, bool add)
{
    char why[256] = "";
    int err = static_rules_parse(&rules, spec, add, why, sizeof why);
    cr_assert_eq(err, 0, "[%s]: %d (%s)", spec, err, why);
}

/* The spec is refused with err, a reason that contains want, and the
 * rules as they were. */
static void refused(const char *spec, bool add, int want_err, const char *want)
{
    char why[256] = "";
    size_t n = rules.n;
    int err = static_rules_parse(&rules, spec, add, why, sizeof why);
    cr_assert_eq(err, want_err, "[%s]: %d, expected %d (%s)", spec, err, want_err, why);
    cr_assert(strstr(why, want), "[%s]: reason [%s] lacks [%s]", spec, why, want);
    cr_assert(strchr(why, '\n') == NULL, "[%s]: reason is not one line", spec);
    cr_assert_eq(rules.n, n, "[%s]: a refused rule was kept", spec);
}

/* The fields the rules give path, as "Name: value\r\n" lines, and the
 * Content-Type reported ("" when none). */
static void expect(const char *path, const char *want, const char *want_type)
{
    struct http_fields f = {0};
    const char *type = "unset";
    size_t type_len = 99;
    int err = static_rules_fields(&rules, path, &f, &type, &type_len);
    cr_assert_eq(err, 0, "%s: %d", path, err);
    char got[1024];
    snprintf(got, sizeof got, "%.*s", (int)f.len, f.p ? f.p : "");
    cr_assert_str_eq(got, want, "%s: fields [%s], expected [%s]", path, got, want);
    if (want_type[0]) {
        cr_assert(type && type_len == strlen(want_type) && strcmp(type, want_type) == 0,
                  "%s: type [%s], expected [%s]", path, type ? type : "(null)", want_type);
    } else {
        cr_assert_null(type, "%s: type [%s], expected none", path, type);
        cr_assert_eq(type_len, 0);
    }
    http_fields_free(&f);
}

Test(rules, parse_ok, .timeout = 10)
{
    ok("/assets/* Cache-Control: public, max-age=31536000, immutable", SET);
    ok("*.html Cache-Control: no-cache", SET);
    ok("/api-docs/* Access-Control-Allow-Origin: *", SET);
    ok("/x \t Link:</a.css>; rel=preload", ADD);  /* spaces and tabs, no OWS after ':' */
    ok("/x X-Empty:", SET);                        /* an empty value: a removal */
    ok("/x X-Tab: a\tb", SET);                     /* HTAB is allowed inside */
    ok("/x X-Obs: caf\xc3\xa9", SET);              /* obs-text */
    ok("/x Server: mine", SET);
    ok("/x Content-Type: text/plain; charset=utf-8", SET);
    cr_assert_eq(rules.n, 9);
    expect("/x", "Link: </a.css>; rel=preload\r\nX-Tab: a\tb\r\nX-Obs: caf\xc3\xa9\r\n"
                 "Server: mine\r\n", "text/plain; charset=utf-8");
}

Test(rules, parse_refused, .timeout = 10)
{
    refused("", SET, -EINVAL, "no pattern");
    refused(" /x Foo: bar", SET, -EINVAL, "no pattern");
    refused("Cache-Control: no-cache", SET, -EINVAL, "must start with '/' or '*'");
    refused("x/* Foo: bar", SET, -EINVAL, "must start with '/' or '*'");
    refused("/x", SET, -EINVAL, "no field after the pattern");
    refused("/x   ", SET, -EINVAL, "no field after the pattern");
    refused("/x Cache-Control no-cache", SET, -EINVAL, "no ':'");
    refused("/x : no-cache", SET, -EINVAL, "no field name");
    refused("/x Cache Control: no-cache", SET, -EINVAL, "not a field name");
    refused("/x Cache-Control : no-cache", SET, -EINVAL, "not a field name");
    refused("/x Caf\xc3\xa9: x", SET, -EINVAL, "not a field name");
    refused("/x Foo(bar): x", SET, -EINVAL, "not a field name");
    refused("/x Foo: a\rb", SET, -EINVAL, "control character");
    refused("/x Foo: a\nX-Injected: b", SET, -EINVAL, "control character");
    refused("/x Foo: a\x01", SET, -EINVAL, "control character");
    refused("/x Foo: a\x7f", ADD, -EINVAL, "control character");
    refused("/x Link:", ADD, -EINVAL, "empty");
    refused("/x Content-Type: text/plain", ADD, -EPERM, "Content-Type");
    static const char *const owned[] = {
        "Content-Length", "transfer-encoding", "Connection", "Keep-Alive", "TE", "Trailer",
        "Upgrade", "Date", "Content-Range", "CONTENT-ENCODING", "ETag", "Last-Modified",
        "Accept-Ranges", "Location", "Allow",
    };
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "/x %s: 1", owned[i]);
        refused(spec, SET, -EPERM, "written by the server");
        refused(spec, ADD, -EPERM, "written by the server");
    }
    cr_assert_eq(rules.n, 0);
}

Test(rules, pattern_length, .timeout = 10)
{
    char spec[STATIC_RULES_PATTERN_MAX + 64];
    memset(spec, 'a', STATIC_RULES_PATTERN_MAX);
    spec[0] = '/';
    strcpy(spec + STATIC_RULES_PATTERN_MAX, " X-Long: 1");
    ok(spec, SET);
    memset(spec, 'a', STATIC_RULES_PATTERN_MAX + 1);
    spec[0] = '/';
    strcpy(spec + STATIC_RULES_PATTERN_MAX + 1, " X-Long: 1");
    refused(spec, SET, -EINVAL, "longer than 1024");
}

Test(rules, a_short_why_is_cut_not_overrun, .timeout = 10)
{
    char why[8];
    memset(why, '#', sizeof why);
    cr_assert_eq(static_rules_parse(&rules, "/x Date: 1", SET, why, 5), -EPERM);
    cr_assert_eq(strlen(why), 4);
    cr_assert_eq(why[5], '#');
    cr_assert_eq(static_rules_parse(&rules, "/x Date: 1", SET, NULL, 0), -EPERM);
}

Test(rules, matching, .timeout = 10)
{
    ok("/assets/* X-A: 1", SET);
    ok("*.html X-H: 1", SET);
    ok("/index.html X-I: 1", SET);
    ok("/img/??.png X-Q: 1", SET);
    ok("/v[0-9]/* X-V: 1", SET);
    ok("/docs/ X-D: 1", SET);
    expect("/assets/app.js", "X-A: 1\r\n", "");
    expect("/assets/js/vendor/x.js", "X-A: 1\r\n", "");   /* '*' crosses '/' */
    expect("/assets/", "X-A: 1\r\n", "");
    expect("/assets", "", "");
    expect("/ASSETS/app.js", "", "");                     /* case-sensitive */
    expect("/index.html", "X-H: 1\r\nX-I: 1\r\n", "");
    expect("/a/b/page.html", "X-H: 1\r\n", "");
    expect("/page.htm", "", "");
    expect("/img/ab.png", "X-Q: 1\r\n", "");
    expect("/img/abc.png", "", "");
    expect("/v2/api", "X-V: 1\r\n", "");
    expect("/vx/api", "", "");
    expect("/docs/", "X-D: 1\r\n", "");
    expect("/docs/a", "", "");
    expect("/", "", "");
}

Test(rules, no_rules_give_nothing, .timeout = 10)
{
    struct http_fields f = {0};
    const char *type = "unset";
    size_t type_len = 7;
    cr_assert_eq(static_rules_fields(&rules, "/a", &f, &type, &type_len), 0);
    cr_assert_eq(f.len, 0);
    cr_assert_null(type);
    cr_assert_eq(type_len, 0);
}

Test(rules, set_replaces_add_appends_empty_removes, .timeout = 10)
{
    ok("/* Cache-Control: max-age=60", SET);
    ok("/* Link: </a.css>; rel=preload", ADD);
    ok("/assets/* Cache-Control: max-age=31536000, immutable", SET);
    ok("/assets/* Link: </b.css>; rel=preload", ADD);
    ok("/private/* Cache-Control:", SET);
    ok("/private/* Link:", SET);
    ok("/private/x/* Link: </c.css>", ADD);
    ok("/assets/fresh/* Cache-Control: no-cache", SET);
    /* Only the first rule of each name. */
    expect("/index.html", "Cache-Control: max-age=60\r\nLink: </a.css>; rel=preload\r\n", "");
    /* The later set wins in place of the first; adds accumulate in order. */
    expect("/assets/app.js", "Link: </a.css>; rel=preload\r\n"
                             "Cache-Control: max-age=31536000, immutable\r\n"
                             "Link: </b.css>; rel=preload\r\n", "");
    /* The last set wins however many matched. */
    expect("/assets/fresh/a.js", "Link: </a.css>; rel=preload\r\nLink: </b.css>; rel=preload\r\n"
                                 "Cache-Control: no-cache\r\n", "");
    /* An empty set removes what came before, set and added alike. */
    expect("/private/a", "", "");
    /* An add after the removal counts again. */
    expect("/private/x/a", "Link: </c.css>\r\n", "");
}

Test(rules, a_set_after_adds_replaces_them_all, .timeout = 10)
{
    ok("/* Link: <1>", ADD);
    ok("/* Link: <2>", ADD);
    ok("/a/* Link: <3>", SET);
    ok("/* Link: <4>", ADD);
    expect("/b", "Link: <1>\r\nLink: <2>\r\nLink: <4>\r\n", "");
    expect("/a/b", "Link: <3>\r\nLink: <4>\r\n", "");
}

Test(rules, names_compare_without_case, .timeout = 10)
{
    ok("/* cache-control: a", SET);
    ok("/x/* CACHE-CONTROL: b", SET);
    ok("/x/y/* Cache-Control:", SET);
    ok("/* X-Foo: 1", ADD);
    ok("/z/* x-foo: 2", SET);
    expect("/a", "cache-control: a\r\nX-Foo: 1\r\n", "");
    expect("/x/a", "CACHE-CONTROL: b\r\nX-Foo: 1\r\n", "");  /* the name as its rule spells it */
    expect("/x/y/a", "X-Foo: 1\r\n", "");
    expect("/z/a", "cache-control: a\r\nx-foo: 2\r\n", "");
}

Test(rules, content_type_is_reported_apart, .timeout = 10)
{
    ok("*.map Content-Type: application/json", SET);
    ok("/raw/* content-type: text/plain; charset=utf-8", SET);
    ok("/raw/keep/* Content-Type:", SET);
    ok("/* X-Other: 1", SET);
    expect("/a.map", "X-Other: 1\r\n", "application/json");
    expect("/raw/a.map", "X-Other: 1\r\n", "text/plain; charset=utf-8");
    expect("/raw/keep/a.map", "X-Other: 1\r\n", ""); /* removed: the server's type stays */
    expect("/a.js", "X-Other: 1\r\n", "");
    /* A caller without a type of its own gets it as a field. */
    struct http_fields f = {0};
    cr_assert_eq(static_rules_fields(&rules, "/a.map", &f, NULL, NULL), 0);
    cr_assert(f.len == strlen("Content-Type: application/json\r\nX-Other: 1\r\n") &&
                  memcmp(f.p, "Content-Type: application/json\r\nX-Other: 1\r\n", f.len) == 0,
              "[%.*s]", (int)f.len, f.p);
    http_fields_free(&f);
}

Test(rules, server_is_marked, .timeout = 10)
{
    ok("/* Server: mine", SET);
    struct http_fields f = {0};
    const char *type;
    size_t type_len;
    cr_assert_eq(static_rules_fields(&rules, "/a", &f, &type, &type_len), 0);
    cr_assert(f.who & HTTP_FIELDS_SERVER, "the core would add its own Server");
    http_fields_free(&f);
}

Test(rules, fields_append_to_what_out_has, .timeout = 10)
{
    ok("/* X-A: 1", SET);
    struct http_fields f = {0};
    cr_assert_eq(http_fields_add(&f, "X-Before", 8, "0", 1), 0);
    const char *type;
    size_t type_len;
    cr_assert_eq(static_rules_fields(&rules, "/a", &f, &type, &type_len), 0);
    cr_assert(f.len == 21 && memcmp(f.p, "X-Before: 0\r\nX-A: 1\r\n", 21) == 0, "[%.*s]",
              (int)f.len, f.p);
    http_fields_free(&f);
}

Test(rules, limit, .timeout = 10)
{
    char spec[64];
    for (int i = 0; i < STATIC_RULES_MAX; i++) {
        snprintf(spec, sizeof spec, "/* X-R%d: %d", i % 3, i);
        ok(spec, i % 3 == 0 ? SET : ADD);
    }
    cr_assert_eq(rules.n, STATIC_RULES_MAX);
    refused("/* X-One-Too-Many: 1", SET, -E2BIG, "more than 256 rules");
    /* All 256 apply: X-R0 is set 86 times (the last, 255, wins), X-R1 and
     * X-R2 added 85 times each. */
    struct http_fields f = {0};
    const char *type;
    size_t type_len;
    cr_assert_eq(static_rules_fields(&rules, "/a", &f, &type, &type_len), 0);
    size_t r0 = 0, r1 = 0, r2 = 0;
    const char *end = f.p + f.len;
    for (const char *p = f.p; p && p < end;) {
        r0 += strncmp(p, "X-R0: ", 6) == 0;
        r1 += strncmp(p, "X-R1: ", 6) == 0;
        r2 += strncmp(p, "X-R2: ", 6) == 0;
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        p = eol ? eol + 2 : NULL;
    }
    cr_assert(r0 == 1 && r1 == 85 && r2 == 85, "X-R0 %zu, X-R1 %zu, X-R2 %zu", r0, r1, r2);
    cr_assert_not_null(memmem(f.p, f.len, "X-R0: 255\r\n", 11));
    http_fields_free(&f);
    static_rules_free(&rules);
    cr_assert(rules.n == 0 && rules.v == NULL);
    ok("/* X-Again: 1", SET); /* freed rules take new ones */
}
