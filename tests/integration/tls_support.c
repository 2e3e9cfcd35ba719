/* tls_support.c — helpers shared by the HTTPS tests: certificates made with openssl, the server on a ,tls listener, curl and s_client runs. */
#include "tls_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define CERT_MS 60000 /* RSA key generation on a slow machine under load */
#define CLIENT_MS 20000

const char *tl_file(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", hs_tmp, name);
    return b;
}

static int vsh(char **out, int timeout_ms, const char *fmt, va_list ap)
{
    char cmd[8192], *o = NULL, *e = NULL;
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    int st = hs_run((const char *const[]){"/bin/sh", "-c", cmd, NULL}, timeout_ms, &o, &e);
    if (out) {
        size_t lo = strlen(o), le = strlen(e);
        *out = malloc(lo + le + 1);
        cr_assert_not_null(*out);
        memcpy(*out, o, lo);
        memcpy(*out + lo, e, le + 1);
    }
    free(o);
    free(e);
    return st;
}

int tl_sh(char **out, int timeout_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = vsh(out, timeout_ms, fmt, ap);
    va_end(ap);
    return st;
}

/* One leaf under the CA: name.pem and name.key, keyopts for openssl req. */
static void leaf(const char *name, const char *cn, const char *san, const char *keyopts)
{
    char *out;
    int st = tl_sh(&out, CERT_MS,
                   "cd '%s' && openssl req -new -newkey %s -nodes -keyout %s.key -out %s.csr "
                   "-subj '/CN=%s' && printf 'subjectAltName=%s\\n' > %s.ext && "
                   "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                   "-days 2 -extfile %s.ext -out %s.pem",
                   hs_tmp, keyopts, name, name, cn, san, name, name, name, name);
    ts_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "making %s.pem: %s", name, out);
    free(out);
}

void tl_certs(void)
{
    char *out;
    int st = tl_sh(&out, CERT_MS,
                   "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                   "-nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=prefork test CA'",
                   hs_tmp);
    ts_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "making the CA: %s", out);
    free(out);
    const char *ec = "ec -pkeyopt ec_paramgen_curve:P-256";
    leaf("a", "localhost", "DNS:localhost,IP:127.0.0.1", ec);
    leaf("b", "other.test", "DNS:other.test", "rsa:2048");
    leaf("c", "localhost-2", "DNS:localhost,IP:127.0.0.1", ec);
}

void tl_client_certs(void)
{
    leaf("client", "client one", "DNS:client.test", "ec -pkeyopt ec_paramgen_curve:P-256");
    char *out;
    int st = tl_sh(&out, CERT_MS,
                   "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                   "-nodes -keyout rogue.key -out rogue.pem -days 2 -subj '/CN=rogue'", hs_tmp);
    ts_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "making rogue.pem: %s", out);
    free(out);
}

int tl_serve(struct ts_proc **srv, const char *const *args)
{
    const char *argv[48] = {"prefork", "serve", hs_root, "-l", "127.0.0.1:0,tls",
                            "--tls-cert", tl_file("a.pem"), "--tls-key", tl_file("a.key"),
                            "--access-log", "off"};
    int n = 11;
    for (int i = 0; args[i]; i++) {
        cr_assert_lt(n, 46, "too many arguments");
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    struct ts_proc *p = ts_start(argv);
    int port = ts_wait_port(p, HS_START_MS);
    ts_assert(port > 0, "no start-up line with a port: %s", strerror(-port));
    if (srv)
        *srv = p;
    return port;
}

char *tl_client(int port, const char *fmt, ...)
{
    char opts[2048], *out;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(opts, sizeof opts, fmt, ap);
    va_end(ap);
    tl_sh(&out, CLIENT_MS,
          "printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
          "openssl s_client -connect 127.0.0.1:%d -CAfile '%s' -ign_eof %s 2>&1",
          port, tl_file("ca.pem"), opts);
    return out;
}

void tl_wait_generation(struct ts_proc *srv, unsigned gen)
{
    char re[64];
    snprintf(re, sizeof re, "generation %u ready", gen);
    int err = ts_wait_log(srv, re, HS_START_MS, NULL, 0);
    ts_assert(err == 0, "no \"%s\" in the log: %s", re, strerror(-err));
}
