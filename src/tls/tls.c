/* tls.c — the module's face: loading in the master, the reload on HUP, the key rotation, and which connections get TLS. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include "tls/internal.h"

static const struct tls_config *loaded; /* what tls_load read, for HUP */
static bool ktls;

/* ---- loading, in the master ---- */

static int check_pairs(const struct tls_config *tc, char *why, size_t size)
{
    if (tc->ncerts == 0 && tc->nkeys == 0)
        snprintf(why, size, "a listener with ,tls needs --tls-cert FILE and --tls-key FILE");
    else if (tc->ncerts != tc->nkeys)
        snprintf(why, size, "--tls-cert and --tls-key come in pairs: %d certificate%s, %d key%s",
                 tc->ncerts, tc->ncerts == 1 ? "" : "s", tc->nkeys, tc->nkeys == 1 ? "" : "s");
    else if (tc->verify_named && !tc->client_ca)
        snprintf(why, size, "--tls-verify-client needs --tls-client-ca FILE (the authorities "
                 "client certificates must come from)");
    else
        return 0;
    return -EINVAL;
}

int tls_load(const struct tls_config *tc, char *why, size_t size)
{
    int err = check_pairs(tc, why, size);
    if (err < 0)
        return err;
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CONFIG, NULL);
    if ((err = tls__sink_init()) < 0) {
        snprintf(why, size, "making the TLS socket writer: %s", strerror(-err));
        return err;
    }
    if ((err = tls__keys_init()) < 0) {
        snprintf(why, size, "making the session-ticket keys: %s", strerror(-err));
        return err;
    }
    if ((err = tls__sessions_init(tc->session_cache)) < 0) {
        snprintf(why, size, "making the session cache (%u entries): %s", tc->session_cache,
                 strerror(-err));
        return err;
    }
    ktls = tls__ktls_available();
    struct tls__set *set;
    if ((err = tls__set_load(tc, ktls, &set, why, size)) < 0)
        return err;
    tls__set_free(tls__active);
    tls__active = set;
    loaded = tc;
    return 0;
}

void tls_unload(void)
{
    tls__set_free(tls__active);
    tls__active = NULL;
    tls__keys_free();
    tls__sessions_free();
    tls__sink_free_method();
    loaded = NULL;
}

/* HUP: the files again, for the new generation. The old set is freed in
 * the master only; the old workers keep their own copies until they go. */
static int on_reload(void *ud, char *why, size_t size)
{
    (void)ud;
    struct tls__set *set;
    if (!loaded)
        return 0;
    int err = tls__set_load(loaded, ktls, &set, why, size);
    if (err < 0)
        return err;
    tls__set_free(tls__active);
    tls__active = set;
    pf_log(PF_LOG_INFO, "TLS: %d certificate%s loaded again", set->n, set->n == 1 ? "" : "s");
    return 0;
}

static void on_tick(void *ud)
{
    (void)ud;
    tls__keys_rotate();
    pf_log(PF_LOG_DEBUG, "TLS: session-ticket keys rotated");
}

void tls_service(struct pf_service *svc)
{
    if (!loaded)
        return;
    svc->on_master_reload = on_reload;
    svc->on_master_tick = on_tick;
    svc->master_tick_ms = loaded->ticket_rotate_s * 1000u;
}

/* ---- which listeners, and which connections ---- */

/* The TLS listeners' bound addresses. A connection is TLS when it
 * arrived on one of them: its own local address tells (getsockname),
 * whichever way it reached the worker (shared, reuseport, dispatch). */
static struct sockaddr_storage tls_addr[PF_MAX_LISTENERS];
static socklen_t tls_len[PF_MAX_LISTENERS];
static int ntls, nplain;

int tls_listeners(const pf_pool *pool, char *why, size_t size)
{
    ntls = nplain = 0;
    for (int i = 0; i < pf_pool_listener_count(pool); i++) {
        char name[128];
        struct pf_addr a;
        if (!(pf_pool_listener_flags(pool, i) & PF_ADDR_TLS)) {
            nplain++;
            continue;
        }
        if (!tls__active) {
            snprintf(why, size, "a listener with ,tls needs --tls-cert FILE and --tls-key FILE");
            return -EINVAL;
        }
        if (pf_pool_listener_name(pool, i, name, sizeof name) < 0 ||
            pf_addr_parse(name, &a, NULL) < 0 || a.kind == PF_ADDR_FD) {
            snprintf(why, size, "listener %s: its address cannot be told apart", name);
            return -EINVAL;
        }
        tls_addr[ntls] = a.ss;
        tls_len[ntls++] = a.len;
    }
    return ntls;
}

static bool any_address(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static bool same_inet(const struct sockaddr_storage *l, const struct sockaddr_storage *c)
{
    const struct sockaddr_in *l4 = (const void *)l, *c4 = (const void *)c;
    const struct sockaddr_in6 *l6 = (const void *)l, *c6 = (const void *)c;
    in_port_t lp = l->ss_family == AF_INET ? l4->sin_port : l6->sin6_port;
    in_port_t cp = c->ss_family == AF_INET ? c4->sin_port : c6->sin6_port;
    if (lp != cp)
        return false;
    if (any_address(l))
        return true; /* ":PORT": v4 clients arrive as v4-mapped v6 */
    if (l->ss_family != c->ss_family)
        return false;
    return l->ss_family == AF_INET ? l4->sin_addr.s_addr == c4->sin_addr.s_addr
                                   : IN6_ARE_ADDR_EQUAL(&l6->sin6_addr, &c6->sin6_addr);
}

static bool on_tls_listener(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (nplain == 0)
        return true; /* no system call when every listener is TLS */
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    for (int i = 0; i < ntls; i++) {
        const struct sockaddr_storage *l = &tls_addr[i];
        if (l->ss_family == AF_UNIX && ss.ss_family == AF_UNIX) {
            if (len == tls_len[i] && memcmp(&ss, l, len) == 0)
                return true;
        } else if (l->ss_family != AF_UNIX && ss.ss_family != AF_UNIX && same_inet(l, &ss)) {
            return true;
        }
    }
    return false;
}

static int source_open(struct http_tp *tp, void *ud)
{
    (void)ud;
    if (ntls == 0 || !tls__active || !on_tls_listener(tp->fd))
        return 0;
    return tls__conn_open(tp, tls__active->ctx[0]);
}

static const struct http_tp_source source = {source_open, NULL};

const struct http_tp_source *tls_source(void)
{
    return &source;
}

const struct tls_api tls_api = {tls_load, tls_listeners, tls_source, tls_service, tls_unload};
