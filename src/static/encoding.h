/* encoding.h — Accept-Encoding: the client's weight for each content coding, and the pick among those a file has. */
#ifndef PF_STATIC_ENCODING_H
#define PF_STATIC_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

/* The codings a site may hold beside a file (FILE.br, FILE.zst, FILE.gz). */
enum static_encoding {
    STATIC_ENC_IDENTITY,
    STATIC_ENC_BR,
    STATIC_ENC_ZSTD,
    STATIC_ENC_GZIP,
    STATIC_ENC_N
};

/* q[e]: the client's weight for coding e in thousandths (0: not
 * acceptable), from the field value v[0..n) (present: the request had the
 * field; without it only identity is taken). */
void static_accept_encoding(const char *v, size_t n, bool present, int q[STATIC_ENC_N]);

/* Which coding to send, of identity and those in have (a bit per coding,
 * 1u << e): the client's highest weight, ties to br, zstd, gzip, then
 * identity. -1 when none is acceptable. */
int static_encoding_pick(const int q[STATIC_ENC_N], unsigned have);

/* "gzip", and ".gz": a coding's name and its file's suffix ("" for identity). */
const char *static_encoding_name(int e);
const char *static_encoding_suffix(int e);

#endif
