/* fuzz_static_encoding.c — libFuzzer target: Accept-Encoding, read from a block of its exact size, gives weights in range and a pick among what exists. */

/*
 * Input: one control byte (which codings the file has), then the field
 * value, copied to a heap block of exactly its size so ASan sees any read
 * past it. The weights must be 0..1000; the pick must be identity, a coding
 * the file has, or -1 only when identity is not acceptable; and parsing the
 * value twice must agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "static/encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_static_encoding: check failed at line %d: %s\n", __LINE__, #c); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned have = (unsigned)(data[0] & 0x0e);
    size_t n = size - 1;
    char *v = malloc(n ? n : 1);
    memcpy(v, data + 1, n);
    int q[STATIC_ENC_N], again[STATIC_ENC_N];
    static_accept_encoding(v, n, true, q);
    static_accept_encoding(v, n, true, again);
    free(v);
    for (int i = 0; i < STATIC_ENC_N; i++)
        CHECK(q[i] >= 0 && q[i] <= 1000 && q[i] == again[i]);
    int e = static_encoding_pick(q, have);
    CHECK(e >= -1 && e < STATIC_ENC_N);
    CHECK(e != -1 || q[STATIC_ENC_IDENTITY] == 0);
    CHECK(e <= 0 || (have & (1u << e)));
    CHECK(e < 0 || q[e] > 0);
    return 0;
}
