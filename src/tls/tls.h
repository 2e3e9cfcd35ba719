/* tls.h — HTTPS for services built on the HTTP core: certificates loaded by the master, a TLS transport for the listeners flagged ",tls". */
#ifndef PF_TLS_H
#define PF_TLS_H

/*
 * How a service uses it (prefork serve does; the Python server can alike):
 *
 *   in the master, before the pool runs, in this order:
 *     tls_config_init(&tc); tls_config_set(&tc, "tls-cert", FILE, &why) ...
 *     tls_load(&tc, why, size)            read every chain and key, now
 *     http_cfg.transport = tls_source();  connections on ,tls get TLS
 *     http_service(&http_cfg, &h, &svc); tls_service(&svc);
 *                                         HUP reloads the certificates,
 *                                         ticket keys rotate in the master
 *                                         (before pf_pool_new, which copies svc)
 *     pf_pool_new, pf_pool_listen(pool, "ADDR,tls") ...
 *     tls_listeners(pool, why, size)      which listeners speak TLS
 *     pf_pool_run(pool); tls_unload();
 *
 * Everything is read once, in the master, before the workers fork: a key
 * readable only by root works with --user, and a worker never opens a
 * file for TLS (its sandbox stays as it is). A HUP reads the files again
 * for the new generation; if one cannot be loaded, the reload fails with
 * one log line and the serving generation goes on with what it has.
 *
 * Session tickets are sealed with keys the master makes, in memory shared
 * with every worker: a client resumes on any worker, after a HUP (the new
 * generation shares the same keys) and after a USR2 upgrade (the new master
 * maps the old one's, a memfd kept open across exec). The master replaces
 * the oldest of TLS_KEYS keys every ticket-rotate period; a ticket stays
 * good for two periods at least. A TLS 1.2 client that resumes by session
 * ID instead finds its session in a table the workers share (session-cache
 * entries; kept across HUP, not across USR2), for as long.
 *
 * The protocol defaults, not options: TLS 1.2 and 1.3 only; Mozilla's
 * "intermediate" ciphers and groups, the client's order; no renegotiation,
 * no 0-RTT, no compression; ALPN http/1.1; buffers released while a
 * connection is idle. Conventions as in prefork.h: 0 or -errno.
 */

#include <stdbool.h>
#include <stddef.h>

#include "prefork.h"

struct http_tp_source;

#define TLS_MAX_PAIRS 32 /* certificate and key pairs (SNI names) */

/* A certificate chain, its key, and an OCSP response to staple (NULL:
 * none): file names, as given. */
struct tls_pair {
    const char *cert, *key, *ocsp;
};

struct tls_config {
    struct tls_pair pairs[TLS_MAX_PAIRS]; /* the first is the default */
    int ncerts, nkeys;
    unsigned ticket_rotate_s;             /* default 3600 */
    unsigned session_cache;               /* sessions kept by ID (default 20000; 0: none) */
    unsigned min_version;                 /* 12: TLS 1.2 and 1.3 (the default); 13: 1.3 only */
    const char *ciphers;                  /* TLS 1.2 suites (OpenSSL's syntax); NULL:
                                             Mozilla's intermediate ones */
    const char *client_ca;                /* PEM: ask clients for a certificate it
                                             signed; NULL: none asked */
    bool client_optional;                 /* a client may come without one */
    bool verify_named;                    /* tls-verify-client was given */
    char first[24];                       /* the first option set by name, for messages */
};

void tls_config_init(struct tls_config *tc);

/* Set one option from text by its command-line long name: tls-cert FILE
 * and tls-key FILE (each call adds one; the n-th key goes with the n-th
 * certificate), tls-ocsp FILE (a DER OCSP response for the certificate
 * given last, stapled to handshakes that ask; read again on HUP, so the
 * user's own tooling refreshes it), tls-ticket-rotate SEC,
 * tls-session-cache N, tls-min-version 1.2|1.3, tls-ciphers LIST (checked
 * by tls_load: OpenSSL must know a suite of it), tls-client-ca FILE (client
 * certificates: asked for, checked against FILE's authorities, required),
 * tls-verify-client required|optional. Returns 0,
 * -ENOENT (not one of these), or -EINVAL with *why set to a static reason. */
int tls_config_set(struct tls_config *tc, const char *name, const char *value,
                   const char **why);

/* tls-ocsp FILE for the i-th certificate set so far (from 0), for faces
 * that keep the responses in a list beside the certificates (the Python
 * server's tls_ocsp). 0, or -EINVAL with *why set. */
int tls_config_set_ocsp(struct tls_config *tc, int i, const char *value, const char **why);

/* Whether any TLS option was given (tc->first names the first set by name). */
bool tls_config_used(const struct tls_config *tc);

/* The text of these options for a command's --help. */
extern const char tls_help[];

/* Master: load every pair of tc (which must outlive the pool) and make the
 * shared ticket keys. Returns 0, or -EINVAL with a one-line reason in why
 * ("--tls-key k.pem: key does not match certificate c.pem"). */
int tls_load(const struct tls_config *tc, char *why, size_t size);

/* Master, once the listeners are bound: remember which have PF_ADDR_TLS.
 * Returns how many do, or -EINVAL when some do and tls_load has not run
 * (why says so). */
int tls_listeners(const pf_pool *pool, char *why, size_t size);

/* The transport source for http_config.transport. */
const struct http_tp_source *tls_source(void);

/* Add the master's hooks to svc: certificates reloaded on HUP, ticket
 * keys rotated. */
void tls_service(struct pf_service *svc);

/* Master: free what tls_load made (the tests; the CLI's end). */
void tls_unload(void);

/* The calls above that need OpenSSL, as one table. The prefork command
 * is built without OpenSSL and loads this module (prefork-tls.so, whose
 * only symbol is this table) when a listener asks for TLS: a plain server
 * never maps OpenSSL. The tls_config_* calls are built into it. */
struct tls_api {
    int (*load)(const struct tls_config *tc, char *why, size_t size);
    int (*listeners)(const pf_pool *pool, char *why, size_t size);
    const struct http_tp_source *(*source)(void);
    void (*service)(struct pf_service *svc);
    void (*unload)(void);
};
#define TLS_API_SYMBOL "tls_api"
extern const struct tls_api tls_api;

#endif
