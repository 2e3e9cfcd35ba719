/* tls_support.h — helpers shared by the HTTPS tests: certificates made with openssl, the server on a ,tls listener, curl and s_client runs. */
#ifndef TLS_SUPPORT_H
#define TLS_SUPPORT_H

#include "http_support.h"

/*
 * Certificates are made by each test, in hs_tmp, with `openssl req`: no key
 * is ever committed. tl_certs() makes a test CA (ca.pem) and under it:
 *   a.pem / a.key    CN localhost, SAN localhost and 127.0.0.1, ECDSA P-256
 *   b.pem / b.key    CN other.test, SAN other.test, RSA 2048
 *   c.pem / c.key    CN localhost-2 (SAN localhost), ECDSA: a replacement
 */
void tl_certs(void);

/* After tl_certs: client.pem / client.key (CN "client one") under the test
 * CA, and rogue.pem / rogue.key, self-signed (CN rogue). */
void tl_client_certs(void);

/* The full path of a file in hs_tmp, in a static buffer (one of 8 in turn). */
const char *tl_file(const char *name);

/* Start `prefork serve ROOT -l 127.0.0.1:0,tls --tls-cert a.pem --tls-key
 * a.key --access-log off ARGS...` and return the TLS port; the process in
 * *srv. */
int tl_serve(struct ts_proc **srv, const char *const *args);
#define TL_SERVE(srv, ...) tl_serve(srv, (const char *const[]){__VA_ARGS__, NULL})

/* Run a shell command line (sh -c) with a deadline: its wait status; its
 * stdout and stderr joined into *out (the caller frees it) unless NULL. */
int tl_sh(char **out, int timeout_ms, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* openssl s_client to 127.0.0.1:port with the test CA, sending a GET of /
 * (Connection: close) and reading to the end; extra options are pasted in
 * as they are. Returns its output (stdout and stderr; the caller frees). */
char *tl_client(int port, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Wait until the log has the start-up line of generation gen's workers
 * ("generation N ready"). */
void tl_wait_generation(struct ts_proc *srv, unsigned gen);

#endif
