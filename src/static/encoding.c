/* encoding.c — Accept-Encoding (RFC 9110 12.5.3): how much the client wants each content coding a site may have, and which of those present to send. */
#include <string.h>
#include <strings.h>

#include "static/encoding.h"

/*
 * Each element is a coding with an optional weight, "gzip;q=0.5". Names are
 * case-insensitive ("x-gzip" is gzip), "*" stands for every coding not named
 * elsewhere in the field, q=0 means "not acceptable", and identity (no
 * coding) is acceptable unless the field excludes it ("identity;q=0", or
 * "*;q=0" without identity); left unnamed, it weighs the least (one
 * thousandth), below any coding the client names. Without the field at
 * all, the server sends identity: a client that says nothing gets the
 * plain bytes, as nginx and Caddy do. An element that cannot be read is
 * skipped, not the whole field. Weights are kept in thousandths.
 */

static const char *const names[STATIC_ENC_N] = {"identity", "br", "zstd", "gzip"};

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* A qvalue: "0", "0.5", "1", "1.000" (RFC 9110 12.4.2), into thousandths;
 * -1 if it is not one. */
static int qvalue(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1') || (n > 1 && p[1] != '.') || n > 5)
        return -1;
    int v = (p[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v += (p[i] - '0') * scale;
    }
    return v > 1000 ? -1 : v;
}

/* The weight of one element's parameters (";q=0.5"); 1000 without one. */
static int weight(const char *p, size_t n)
{
    int q = 1000;
    while (n > 0) {
        while (n > 0 && (is_space(*p) || *p == ';'))
            p++, n--;
        const char *end = memchr(p, ';', n);
        size_t len = end ? (size_t)(end - p) : n;
        size_t trimmed = len;
        while (trimmed > 0 && is_space(p[trimmed - 1]))
            trimmed--;
        if (trimmed >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
            q = qvalue(p + 2, trimmed - 2);
        p += len;
        n -= len;
    }
    return q;
}

static int coding(const char *p, size_t n)
{
    if (n == 6 && strncasecmp(p, "x-gzip", 6) == 0)
        return STATIC_ENC_GZIP;
    for (int i = 0; i < STATIC_ENC_N; i++)
        if (strlen(names[i]) == n && strncasecmp(p, names[i], n) == 0)
            return i;
    return n == 1 && p[0] == '*' ? STATIC_ENC_N : -1;
}

void static_accept_encoding(const char *v, size_t n, bool present, int q[STATIC_ENC_N])
{
    int star = -1;
    bool named[STATIC_ENC_N] = {false};
    for (int i = 0; i < STATIC_ENC_N; i++)
        q[i] = 0;
    q[STATIC_ENC_IDENTITY] = 1000;
    if (!present)
        return;
    while (n > 0) {
        const char *comma = memchr(v, ',', n);
        size_t len = comma ? (size_t)(comma - v) : n;
        const char *p = v;
        size_t m = len;
        while (m > 0 && is_space(*p))
            p++, m--;
        size_t name = 0;
        while (name < m && p[name] != ';' && !is_space(p[name]))
            name++;
        int c = coding(p, name), w = weight(p + name, m - name);
        if (c >= 0 && w >= 0) {
            if (c == STATIC_ENC_N) {
                star = w;
            } else {
                q[c] = w;
                named[c] = true;
            }
        }
        v += len + (comma ? 1 : 0);
        n -= len + (comma ? 1 : 0);
    }
    for (int i = 0; star >= 0 && i < STATIC_ENC_N; i++)
        if (!named[i])
            q[i] = star;
    /* Identity unnamed (and no "*"): acceptable, but the last resort, so
     * that "gzip;q=0.5" alone gets gzip, as clients mean it. */
    if (!named[STATIC_ENC_IDENTITY] && star < 0)
        q[STATIC_ENC_IDENTITY] = 1;
}

int static_encoding_pick(const int q[STATIC_ENC_N], unsigned have)
{
    /* The client's weight first; on a tie the server's order: br, zstd,
     * gzip, then identity (the smallest bytes first). */
    static const int order[] = {STATIC_ENC_BR, STATIC_ENC_ZSTD, STATIC_ENC_GZIP,
                                STATIC_ENC_IDENTITY};
    int best = -1;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        int e = order[k];
        if (q[e] > 0 && (e == STATIC_ENC_IDENTITY || (have & (1u << e))) &&
            (best < 0 || q[e] > q[best]))
            best = e;
    }
    return best; /* -1: nothing acceptable (a 406 would be honest; callers send identity) */
}

const char *static_encoding_name(int e)
{
    return e >= 0 && e < STATIC_ENC_N ? names[e] : "";
}

const char *static_encoding_suffix(int e)
{
    static const char *const suffix[STATIC_ENC_N] = {"", ".br", ".zst", ".gz"};
    return e >= 0 && e < STATIC_ENC_N ? suffix[e] : "";
}
