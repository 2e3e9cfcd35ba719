/* sessions.c — TLS 1.2 sessions by their ID in memory every worker shares, for clients that resume without a ticket. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tls/internal.h"

/*
 * Most clients resume with a ticket (tickets.c), which any worker opens.
 * Some resume by session ID only (tickets turned off, as Mozilla's own
 * server settings once advised, or not implemented), and that needs the
 * session itself kept where every worker finds it: this table, one shared
 * anonymous mapping the master makes before the first fork, so the workers
 * of every generation share it (a USR2 upgrade starts an empty one).
 *
 * Sessions are kept serialized (i2d_SSL_SESSION) in slots of 512 bytes,
 * four per set, a set picked by the session ID (random, made by OpenSSL:
 * its first bytes hash well enough). A new session takes an empty or
 * expired slot of its set, else the one expiring first. TLS 1.3 sessions
 * are not kept: they resume by tickets alone.
 *
 * Any worker writes, so each slot is a sequence lock whose writers take
 * it with a compare-and-swap (odd: being written). A writer that finds it
 * taken skips the store (the table is a cache: a session not kept costs a
 * full handshake later), and a reader that keeps meeting a write misses.
 * A worker killed in the middle of a write would leave its slot taken for
 * ever; a writer finds such a slot by its age (taken ten seconds
 * ago, when a write takes a microsecond) and takes it over. The slots hold
 * master secrets: never in a core dump (MADV_DONTDUMP), wiped on free.
 */

#define SLOT_BYTES 512
#define WAYS 4
#define ID_MAX SSL_MAX_SSL_SESSION_ID_LENGTH /* 32 */
#define STALE_S 10 /* a slot taken this long ago was left by a dead writer */
#define DER_MAX TLS_SESSION_MAX /* what is left of a slot for the session */

struct slot {
    /* The lock: a sequence number (low 32 bits, odd while the slot is
     * being written) and when its writer took it (high 32 bits, monotonic
     * seconds), changed together by one compare-and-swap. */
    _Atomic uint64_t lock;
    uint32_t len;    /* of der; 0: empty */
    uint32_t unused;
    int64_t expires; /* wall-clock seconds */
    uint8_t id_len;
    uint8_t id[ID_MAX];
    uint8_t der[DER_MAX];
    uint8_t pad[3];
};
_Static_assert(sizeof(struct slot) == SLOT_BYTES, "a slot is 512 bytes");

static struct slot *table;
static size_t nsets;
static size_t table_bytes;

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return ts.tv_sec;
}

int tls__sessions_init(unsigned entries)
{
    if (table || entries == 0)
        return 0;
    nsets = (entries + WAYS - 1) / WAYS;
    table_bytes = nsets * WAYS * sizeof(struct slot);
    void *p = mmap(NULL, table_bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    madvise(p, table_bytes, MADV_DONTDUMP);
    table = p;
    return 0;
}

void tls__sessions_free(void)
{
    if (!table)
        return;
    OPENSSL_cleanse(table, table_bytes);
    munmap(table, table_bytes);
    table = NULL;
}

static struct slot *set_of(const unsigned char *id, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a over the first bytes */
    for (size_t i = 0; i < len && i < 16; i++)
        h = (h ^ id[i]) * 0x100000001b3u;
    return &table[(h % nsets) * WAYS];
}

/* ---- the sequence lock ---- */

static uint64_t lock_word(uint32_t seq, int64_t when)
{
    return (uint64_t)(uint32_t)when << 32 | seq;
}

static bool write_begin(struct slot *s)
{
    uint64_t w = atomic_load_explicit(&s->lock, memory_order_relaxed);
    uint32_t seq = (uint32_t)w;
    int64_t now = mono_s();
    if (seq & 1) {
        if (now - (int64_t)(w >> 32) <= STALE_S)
            return false; /* someone is writing it */
        seq++; /* left taken by a writer that died: taken over, still odd */
    }
    if (!atomic_compare_exchange_strong(&s->lock, &w, lock_word(seq + 1, now)))
        return false;
    atomic_thread_fence(memory_order_release);
    return true;
}

static void write_end(struct slot *s)
{
    atomic_fetch_add_explicit(&s->lock, 1, memory_order_release);
}

#define READ_TRIES 100

/* A consistent copy of the slot's session if it holds id and has not
 * expired: its length, or 0. */
static size_t read_slot(struct slot *s, const unsigned char *id, size_t id_len,
                        unsigned char *der, int64_t now)
{
    for (int t = 0; t < READ_TRIES; t++) {
        uint64_t w = atomic_load_explicit(&s->lock, memory_order_acquire);
        if (w & 1)
            continue;
        size_t len = s->len;
        bool match = s->id_len == id_len && memcmp(s->id, id, id_len) == 0 &&
                     s->expires > now && len > 0 && len <= DER_MAX;
        if (match)
            memcpy(der, s->der, len);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->lock, memory_order_relaxed) == w)
            return match ? len : 0;
    }
    return 0;
}

/* ---- the table ---- */

int tls__sessions_put(const unsigned char *id, size_t id_len, const unsigned char *der,
                      size_t len, int64_t expires)
{
    if (!table || id_len == 0 || id_len > ID_MAX || len == 0 || len > DER_MAX)
        return -EINVAL;
    struct slot *set = set_of(id, id_len), *victim = &set[0];
    int64_t now = time(NULL);
    for (int i = 0; i < WAYS; i++) {
        struct slot *s = &set[i];
        if (s->id_len == id_len && memcmp(s->id, id, id_len) == 0) {
            victim = s; /* the same session again: replaced */
            break;
        }
        if (s->len == 0 || s->expires <= now) {
            victim = s;
            break;
        }
        if (s->expires < victim->expires)
            victim = s;
    }
    if (!write_begin(victim))
        return -EBUSY;
    victim->len = (uint32_t)len;
    victim->expires = expires;
    victim->id_len = (uint8_t)id_len;
    memcpy(victim->id, id, id_len);
    memcpy(victim->der, der, len);
    write_end(victim);
    return 0;
}

size_t tls__sessions_get(const unsigned char *id, size_t id_len, unsigned char *der)
{
    if (!table || id_len == 0 || id_len > ID_MAX)
        return 0;
    struct slot *set = set_of(id, id_len);
    int64_t now = time(NULL);
    for (int i = 0; i < WAYS; i++) {
        size_t len = read_slot(&set[i], id, id_len, der, now);
        if (len)
            return len;
    }
    return 0;
}

void tls__sessions_remove(const unsigned char *id, size_t id_len)
{
    if (!table || id_len == 0 || id_len > ID_MAX)
        return;
    struct slot *set = set_of(id, id_len);
    for (int i = 0; i < WAYS; i++) {
        struct slot *s = &set[i];
        if (s->id_len != id_len || memcmp(s->id, id, id_len) != 0 || !write_begin(s))
            continue;
        if (s->id_len == id_len && memcmp(s->id, id, id_len) == 0) {
            OPENSSL_cleanse(s->der, s->len <= DER_MAX ? s->len : DER_MAX);
            s->len = 0;
            s->id_len = 0;
        }
        write_end(s);
    }
}

/* ---- OpenSSL's callbacks ---- */

static int on_new(SSL *ssl, SSL_SESSION *sess)
{
    unsigned id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    if (SSL_version(ssl) != TLS1_2_VERSION || id_len == 0)
        return 0; /* TLS 1.3 resumes by tickets only */
    unsigned char der[DER_MAX], *p = der;
    int len = i2d_SSL_SESSION(sess, NULL);
    if (len <= 0 || (size_t)len > sizeof der || i2d_SSL_SESSION(sess, &p) != len)
        return 0;
    tls__sessions_put(id, id_len, der, (size_t)len,
                      (int64_t)SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess));
    OPENSSL_cleanse(der, (size_t)len);
    return 0; /* no reference kept */
}

static SSL_SESSION *on_get(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
    (void)ssl;
    *copy = 0;
    unsigned char der[DER_MAX];
    size_t len = id_len > 0 ? tls__sessions_get(id, (size_t)id_len, der) : 0;
    if (!len)
        return NULL;
    const unsigned char *p = der;
    SSL_SESSION *sess = d2i_SSL_SESSION(NULL, &p, (long)len);
    OPENSSL_cleanse(der, len);
    return sess;
}

static void on_remove(SSL_CTX *ctx, SSL_SESSION *sess)
{
    (void)ctx;
    unsigned id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    tls__sessions_remove(id, id_len);
}

void tls__sessions_use(SSL_CTX *ctx)
{
    if (!table) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        return;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL |
                                            SSL_SESS_CACHE_NO_AUTO_CLEAR);
    SSL_CTX_sess_set_new_cb(ctx, on_new);
    SSL_CTX_sess_set_get_cb(ctx, on_get);
    SSL_CTX_sess_set_remove_cb(ctx, on_remove);
}
