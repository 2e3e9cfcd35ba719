/* fuzz_static_path.c — libFuzzer target for static_path_decode and static_url_encode_path: no input may yield a path that leaves the root. */
/* fuzz-sources: none */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/static/path.c"

/*
 * Build by hand (make fuzz runs it too):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c17 -D_GNU_SOURCE \
 *         -Iinclude -Isrc tests/fuzz/fuzz_http_path.c -o /tmp/fz
 *   /tmp/fz -max_total_time=60 tests/fuzz/corpus/http_path
 *
 * What must hold for every input that decodes: the path has no NUL, no
 * control byte, no leading or trailing '/', no empty, "." or ".." segment;
 * the flags match it; encoding it and decoding that again gives it back;
 * and a smaller buffer gives the same answer or -ENAMETOOLONG, never another.
 */

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);   \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* Segment by segment: none empty, ".", or "..", and the dot flag agrees. */
static void check_segments(const char *out, size_t len, const struct static_path *p)
{
    bool dot = false;
    for (size_t i = 0; i < len;) {
        const char *seg = out + i;
        const char *slash = memchr(seg, '/', len - i);
        size_t n = slash ? (size_t)(slash - seg) : len - i;
        CHECK(n > 0);
        CHECK(!(n == 1 && seg[0] == '.'));
        CHECK(!(n == 2 && seg[0] == '.' && seg[1] == '.'));
        dot |= seg[0] == '.';
        i += n + (slash != NULL);
        CHECK(!slash || i < len); /* no trailing '/' */
    }
    CHECK(dot == p->has_dot_segment);
}

static void check_path(const char *out, const struct static_path *p, size_t n)
{
    CHECK(strlen(out) == p->len);
    CHECK(p->len <= n);
    CHECK(p->raw_len <= n);
    CHECK(p->len == 0 || out[0] != '/');
    for (size_t i = 0; i < p->len; i++)
        CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    check_segments(out, p->len, p);
    if (p->len == 0)
        CHECK(p->trailing_slash);
}

/* Encoding the path and decoding it again must give it back unchanged. */
static void check_round_trip(const char *out, const struct static_path *p)
{
    size_t need = static_url_encode_path(out, p->len, NULL, 0);
    char *enc = malloc(need + 2), *dec = malloc(p->len + 1);
    CHECK(enc && dec);
    enc[0] = '/';
    CHECK(static_url_encode_path(out, p->len, enc + 1, need + 1) == need);
    struct static_path q;
    CHECK(static_path_decode(enc, need + 1, dec, p->len + 1, &q) == 0);
    CHECK(q.len == p->len && memcmp(dec, out, p->len) == 0);
    free(enc);
    free(dec);
}

/* A cut-short encoding is a prefix of the full one, and stays inside cap. */
static void check_encode_cap(const char *in, size_t n, size_t cap)
{
    size_t need = static_url_encode_path(in, n, NULL, 0);
    char *full = malloc(need + 1), *part = malloc(cap ? cap : 1);
    CHECK(full && part);
    CHECK(static_url_encode_path(in, n, full, need + 1) == need);
    CHECK(static_url_encode_path(in, n, part, cap) == need);
    if (cap > 0) {
        size_t got = strlen(part);
        CHECK(got < cap && memcmp(part, full, got) == 0);
        CHECK(got == need || need >= cap);
    }
    free(full);
    free(part);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    size_t cap = size + 1;
    char *out = malloc(cap), *small;
    struct static_path p, q;
    if (!out)
        return 0;
    int rc = static_path_decode(t, size, out, cap, &p);
    CHECK(rc == 0 || rc == -EINVAL); /* n + 1 bytes always suffice */
    if (rc == 0) {
        check_path(out, &p, size);
        check_round_trip(out, &p);
    }
    size_t scap = size ? data[0] % (size + 1) : 0;
    small = malloc(scap ? scap : 1);
    if (small) {
        int rc2 = static_path_decode(t, size, small, scap, &q);
        if (rc2 == 0)
            CHECK(rc == 0 && q.len == p.len && memcmp(small, out, p.len + 1) == 0);
        else
            CHECK(rc2 == -ENAMETOOLONG || rc2 == rc);
        free(small);
    }
    check_encode_cap(t, size, scap);
    free(out);
    return 0;
}
