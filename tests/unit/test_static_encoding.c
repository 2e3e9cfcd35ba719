/* test_static_encoding.c — unit tests for Accept-Encoding: weights, *, identity, x-gzip, bad elements, and the pick. */
#include <criterion/criterion.h>

#include <string.h>

#include "../../src/static/encoding.h"

static void weights(const char *v, int want_id, int want_br, int want_zstd, int want_gzip)
{
    int q[STATIC_ENC_N];
    static_accept_encoding(v, v ? strlen(v) : 0, v != NULL, q);
    cr_assert(q[STATIC_ENC_IDENTITY] == want_id && q[STATIC_ENC_BR] == want_br &&
                  q[STATIC_ENC_ZSTD] == want_zstd && q[STATIC_ENC_GZIP] == want_gzip,
              "[%s]: identity %d br %d zstd %d gzip %d", v ? v : "(absent)",
              q[STATIC_ENC_IDENTITY], q[STATIC_ENC_BR], q[STATIC_ENC_ZSTD], q[STATIC_ENC_GZIP]);
}

Test(encoding, weights, .timeout = 10)
{
    weights(NULL, 1000, 0, 0, 0);
    weights("", 1, 0, 0, 0); /* present, empty: identity, the least */
    weights("gzip", 1, 0, 0, 1000);
    weights("gzip, deflate, br, zstd", 1, 1000, 1000, 1000);
    weights("GZIP;Q=0.5 , Br;q=0.8", 1, 800, 0, 500);
    weights("x-gzip", 1, 0, 0, 1000);
    weights("*", 1000, 1000, 1000, 1000);
    weights("*;q=0.1, gzip", 100, 100, 100, 1000);
    weights("gzip;q=0, *", 1000, 1000, 1000, 0);
    weights("identity;q=0, gzip", 0, 0, 0, 1000);
    weights("*;q=0", 0, 0, 0, 0);
    weights("*;q=0, identity", 1000, 0, 0, 0);
    weights("br;q=1.000, gzip;q=0.001", 1, 1000, 0, 1);
    weights("gzip ; q=0.5", 1, 0, 0, 500);
    /* Bad elements are skipped, not the field. */
    weights("br;q=2, gzip", 1, 0, 0, 1000);
    weights("br;q=0.5555, gzip;q=1.1, zstd;q=.5", 1, 0, 0, 0);
    weights("br;q=, gzip;q=x", 1, 0, 0, 0);
    weights(",,, gzip ,", 1, 0, 0, 1000);
    weights("compress, deflate", 1, 0, 0, 0);
}

static int pick(const char *v, unsigned have)
{
    int q[STATIC_ENC_N];
    static_accept_encoding(v, v ? strlen(v) : 0, v != NULL, q);
    return static_encoding_pick(q, have);
}

#define ALL ((1u << STATIC_ENC_BR) | (1u << STATIC_ENC_ZSTD) | (1u << STATIC_ENC_GZIP))

Test(encoding, pick, .timeout = 10)
{
    cr_assert_eq(pick("gzip, br", ALL), STATIC_ENC_BR);           /* the server's order */
    cr_assert_eq(pick("gzip, zstd", ALL), STATIC_ENC_ZSTD);
    cr_assert_eq(pick("gzip;q=1, br;q=0.5", ALL), STATIC_ENC_GZIP); /* the client's weight */
    cr_assert_eq(pick("gzip, br", 1u << STATIC_ENC_GZIP), STATIC_ENC_GZIP); /* what exists */
    cr_assert_eq(pick("gzip, br", 0), STATIC_ENC_IDENTITY);
    cr_assert_eq(pick(NULL, ALL), STATIC_ENC_IDENTITY);
    cr_assert_eq(pick("identity, gzip;q=0.5", ALL), STATIC_ENC_IDENTITY);
    cr_assert_eq(pick("gzip;q=0.5", ALL), STATIC_ENC_GZIP); /* identity unnamed: the least */
    cr_assert_eq(pick("gzip;q=0.001", ALL), STATIC_ENC_GZIP);
    cr_assert_eq(pick("gzip;q=0.5", 0), STATIC_ENC_IDENTITY);
    cr_assert_eq(pick("identity;q=0.5, gzip", ALL), STATIC_ENC_GZIP);
    cr_assert_eq(pick("*;q=0", ALL), -1);
    cr_assert_eq(pick("identity;q=0", 0), -1);
    cr_assert_eq(pick("identity;q=0, gzip", 1u << STATIC_ENC_GZIP), STATIC_ENC_GZIP);
    cr_assert_str_eq(static_encoding_name(STATIC_ENC_GZIP), "gzip");
    cr_assert_str_eq(static_encoding_suffix(STATIC_ENC_ZSTD), ".zst");
}
