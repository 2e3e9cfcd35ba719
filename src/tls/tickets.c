/* tickets.c — session-ticket keys made by the master in memory every worker shares, rotated, and OpenSSL's callback that seals and opens tickets with them. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/internal.h"

/*
 * One shared mapping (of a memfd), made by the master before the first fork:
 * every worker of every generation sees the same keys, so a ticket that
 * one worker sealed opens on any other, and after a HUP. The master alone
 * writes it (a rotation: the oldest key is replaced by a new one, which
 * seals from then on); workers only read. A sequence number, odd while the
 * master writes, lets a reader retry a copy it took mid-write (a seqlock:
 * the writer never waits for the readers). The keys are never written to
 * a core dump (MADV_DONTDUMP), and a replaced key is gone: tickets sealed
 * with it no longer open, which bounds what a stolen key can decrypt.
 */

struct key {
    unsigned char name[16]; /* sent in the clear with each ticket */
    unsigned char aes[32];  /* AES-256-CBC */
    unsigned char hmac[32]; /* HMAC-SHA256 */
};

struct ring {
    _Atomic uint32_t seq;
    uint32_t newest; /* index in k of the sealing key */
    struct key k[TLS_KEYS];
};

static struct ring *ring;
static int ring_fd = -1;
static EVP_CIPHER *aes; /* fetched once: OpenSSL 3 looks a cipher up by name at each implicit use */

/* USR2: the new master is the old one's program executed anew. It takes
 * the keys over, so that tickets keep resuming across a binary upgrade:
 * the ring is a memfd that the master keeps open across exec, its number
 * in the environment. A descriptor that is not our memfd (the variable
 * set by someone else, or the number reused) is left alone: fresh keys. */
#define KEYS_ENV "PREFORK_TLS_KEYS_FD"
#define KEYS_NAME "prefork-tls-keys"
#define KEYS_FD_MIN 256 /* above the listeners an upgrade puts at 3, 4, ... */

static int inherited_fd(void)
{
    const char *v = getenv(KEYS_ENV);
    char path[64], target[128];
    struct stat st;
    if (!v)
        return -1;
    int fd = atoi(v);
    unsetenv(KEYS_ENV);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = fd > 2 ? readlink(path, target, sizeof target - 1) : -1;
    if (n <= 0)
        return -1;
    target[n] = '\0';
    if (strncmp(target, "/memfd:" KEYS_NAME " ", strlen("/memfd:" KEYS_NAME " ")) != 0 ||
        fstat(fd, &st) < 0 || st.st_size != (off_t)sizeof *ring)
        return -1;
    return fd;
}

/* A new ring's descriptor, kept open across exec (not close-on-exec) and
 * moved above the low numbers an upgrade overwrites. */
static int new_fd(void)
{
    int fd = memfd_create(KEYS_NAME, 0);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, sizeof *ring) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    int high = fcntl(fd, F_DUPFD, KEYS_FD_MIN);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    return fd;
}

static int fill(struct key *k)
{
    return RAND_priv_bytes((unsigned char *)k, sizeof *k) == 1 ? 0 : -EIO;
}

/* In a child of the master (a worker), the keys are read-only: a bug in a
 * worker cannot change what every other worker seals with. */
static void child_read_only(void)
{
    if (ring)
        mprotect(ring, sizeof *ring, PROT_READ);
}

int tls__keys_init(void)
{
    static bool registered;
    if (!registered && pthread_atfork(NULL, NULL, child_read_only) == 0)
        registered = true;
    if (!aes)
        aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL); /* NULL: the implicit way below */
    if (ring)
        return 0;
    int fd = inherited_fd();
    bool fresh = fd < 0;
    if (fresh && (fd = new_fd()) < 0)
        return fd;
    void *p = mmap(NULL, sizeof *ring, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int err = -errno;
        close(fd);
        return err;
    }
    madvise(p, sizeof *ring, MADV_DONTDUMP);
    ring = p;
    ring_fd = fd;
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    setenv(KEYS_ENV, num, 1);
    if (!fresh)
        pf_log(PF_LOG_INFO, "TLS: session-ticket keys taken over from the previous master");
    for (int i = 0; fresh && i < TLS_KEYS; i++)
        if (fill(&ring->k[i]) < 0)
            return -EIO;
    return 0;
}

void tls__keys_rotate(void)
{
    struct key fresh;
    if (!ring || fill(&fresh) < 0)
        return; /* the current keys stay: better than none */
    uint32_t next = (ring->newest + 1) % TLS_KEYS;
    atomic_fetch_add_explicit(&ring->seq, 1, memory_order_acq_rel); /* odd: writing */
    atomic_thread_fence(memory_order_release);
    ring->k[next] = fresh;
    ring->newest = next;
    atomic_fetch_add_explicit(&ring->seq, 1, memory_order_release);
    OPENSSL_cleanse(&fresh, sizeof fresh);
}

void tls__keys_free(void)
{
    EVP_CIPHER_free(aes);
    aes = NULL;
    if (!ring)
        return;
    munmap(ring, sizeof *ring);
    close(ring_fd);
    unsetenv(KEYS_ENV);
    ring = NULL;
    ring_fd = -1;
}

/* A consistent copy of the ring: true, or false when every try met a
 * write in progress. The master's write takes nanoseconds, so a few tries
 * do; the bound is for a master killed in the middle of one, which must not
 * hang its workers (they go without tickets until they follow it). */
#define SNAPSHOT_TRIES 1000

static bool snapshot(struct ring *out)
{
    for (int i = 0; i < SNAPSHOT_TRIES; i++) {
        uint32_t s = atomic_load_explicit(&ring->seq, memory_order_acquire);
        if (s & 1)
            continue;
        memcpy(out->k, (const void *)ring->k, sizeof out->k);
        out->newest = ring->newest;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&ring->seq, memory_order_relaxed) == s)
            return true;
    }
    return false;
}

static int set_keys(const struct key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                    EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_CipherInit_ex(cctx, aes ? aes : EVP_aes_256_cbc(), NULL, k->aes, iv, enc) != 1 ||
        EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    return 0;
}

/* OpenSSL's ticket callback. Sealing (enc = 1): the newest key, a fresh
 * IV. Opening: the key the ticket names; 1 to resume, 2 to resume and
 * issue a new ticket, 0 for a key we no longer have (a full handshake), -1
 * on failure. TLS 1.3 always gets a new ticket: without one OpenSSL sends
 * none after a resumption, and clients use a TLS 1.3 ticket once (RFC 8446
 * C.4), so the next visit would be a full handshake. TLS 1.2 renews only
 * tickets sealed with an older key. */
static int on_ticket(SSL *ssl, unsigned char name[16], unsigned char iv[16],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    bool tls13 = SSL_version(ssl) == TLS1_3_VERSION;
    struct ring r;
    int result = 0;
    if (!snapshot(&r))
        return enc ? -1 : 0; /* no ticket issued; a full handshake */
    if (enc) {
        const struct key *k = &r.k[r.newest];
        memcpy(name, k->name, sizeof k->name);
        result = RAND_bytes(iv, 16) == 1 && set_keys(k, iv, cctx, hctx, 1) == 0 ? 1 : -1;
    } else {
        for (int i = 0; i < TLS_KEYS; i++)
            if (memcmp(name, r.k[i].name, sizeof r.k[i].name) == 0) {
                result = set_keys(&r.k[i], iv, cctx, hctx, 0) < 0      ? -1
                         : i == (int)r.newest && !tls13 ? 1
                                                        : 2;
                break;
            }
    }
    OPENSSL_cleanse(&r, sizeof r);
    return result;
}

void tls__keys_use(SSL_CTX *ctx)
{
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
}
