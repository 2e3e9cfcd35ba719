/* fuzz_static_cond.c — libFuzzer target for Range, entity-tag lists, If-Range, preconditions and HTTP-dates. */
/* fuzz-sources: none */

/*
 * Input: one selector byte (picks the representation size and whether the
 * request is GET), then optionally our own ETag up to a '\n', then the field
 * value. Every parser sees the same value. The sources are included so the
 * target needs nothing but this file; static helpers are reachable too.
 *
 * Invariants checked: nothing crashes or reads outside the value (both parts
 * are copied into buffers of their exact size, so ASan sees any over-read);
 * STATIC_RANGE_OK implies first <= last < size; a list that matches strongly
 * also matches weakly; a parsed date formats and parses back to itself; a
 * malformed list matches nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/static/cond.c"
#include "../../src/http/date.c"
#include "../../src/static/mime.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_range(const char *v, size_t n, uint64_t total)
{
    uint64_t first = 0, last = 0;
    int rc = static_range_parse(v, n, total, &first, &last);
    if (rc == STATIC_RANGE_OK && !(first <= last && last < total))
        abort();
    if (rc != STATIC_RANGE_OK && rc != STATIC_RANGE_IGNORE && rc != STATIC_RANGE_UNSATISFIABLE)
        abort();
    if (rc == STATIC_RANGE_OK) {
        char out[STATIC_CONTENT_RANGE_MAX];
        if (static_content_range(out, sizeof out, first, last, total) == 0)
            abort();
    }
}

static void check_lists(const char *v, size_t n, const char *ours, size_t ol)
{
    struct etag o;
    const struct etag *op = etag_ours(ours, ol, &o) ? &o : NULL;
    int strong = etag_list_match(v, n, op, true);
    int weak = etag_list_match(v, n, op, false);
    if (strong < -1 || strong > 1 || weak < -1 || weak > 1)
        abort();
    if (strong == 1 && weak != 1)
        abort();
    if ((strong == -1) != (weak == -1)) /* malformation does not depend on the comparison */
        abort();
}

static void check_date(const char *v, size_t n)
{
    time_t t;
    if (http_date_parse_at(v, n, (time_t)1748779200, &t) != 0)
        return;
    char buf[HTTP_DATE_LEN + 1];
    time_t back;
    if (http_date_format(t, buf) != HTTP_DATE_LEN) {
        /* Only a leap second on 9999-12-31 lands past what four digits hold. */
        if (t != (time_t)253402300800)
            abort();
        return;
    }
    if (http_date_parse(buf, HTTP_DATE_LEN, &back) != 0 || back != t)
        abort();
}

static void check_cond(const char *v, size_t n, const char *ours, size_t ol, bool get)
{
    struct static_cond c = {v, n, v, n, v, n, v, n};
    const struct static_cond fields[4] = {
        {.if_match = v, .if_match_len = n},
        {.if_none_match = v, .if_none_match_len = n},
        {.if_modified_since = v, .if_modified_since_len = n},
        {.if_unmodified_since = v, .if_unmodified_since_len = n},
    };
    int r = static_cond_evaluate(&c, ours, ol, 784111777, get);
    for (int i = 0; i < 4; i++)
        r |= static_cond_evaluate(&fields[i], ours, ol, 784111777, get);
    if (r & ~3)
        abort();
    (void)static_if_range_ok(v, n, ours, ol, 784111777);
    if (static_mime_type(v, n) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t totals[8] = {0, 1, 2, 499, 10000, 1ULL << 32, UINT64_MAX - 1, UINT64_MAX};
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *rest = (const char *)data + 1;
    size_t rn = size - 1;

    const char *nl = memchr(rest, '\n', rn);
    size_t ol = nl ? (size_t)(nl - rest) : 5;
    size_t vn = nl ? rn - ol - 1 : rn;
    char *ours = malloc(ol ? ol : 1), *v = malloc(vn ? vn : 1);
    if (!ours || !v)
        abort();
    memcpy(ours, nl ? rest : "\"abc\"", ol);
    memcpy(v, nl ? nl + 1 : rest, vn);

    check_range(v, vn, totals[sel & 7]);
    check_lists(v, vn, ours, ol);
    check_date(v, vn);
    check_cond(v, vn, ours, ol, sel & 8);

    free(ours);
    free(v);
    return 0;
}
