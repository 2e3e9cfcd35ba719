/* test_tls.c — `prefork serve` over HTTPS: curl with the test CA, openssl s_client for versions, ALPN and SNI, and the usage errors. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tls_support.h"

#define TIMEOUT 120
#define CURL_MS 60000

TestSuite(tls, .fini = hs_cleanup, .timeout = TIMEOUT);

static int port;

static void serve(void)
{
    hs_tree("tls");
    tl_certs();
    port = TL_SERVE(NULL, "-w", "2");
}

/* curl -sS with the test CA on https://localhost:PORT, extra options
 * pasted in; its stdout and stderr. */
static char *curl(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *curl(int *status, const char *fmt, ...)
{
    char args[4096], *out;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int st = tl_sh(&out, CURL_MS, "curl -sS --max-time 30 --cacert '%s' --resolve "
                   "localhost:%d:127.0.0.1 %s", tl_file("ca.pem"), port, args);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
    return out;
}

Test(tls, get_head_range_listing)
{
    serve();
    hs_put_text("index.html", "hello over tls\n");
    hs_make_dir("d");
    hs_put_text("d/f.txt", "0123456789");
    int st;
    char *out = curl(&st, "https://localhost:%d/", port);
    ts_assert(st == 0 && strcmp(out, "hello over tls\n") == 0, "GET: %d %s", st, out);
    free(out);
    out = curl(&st, "-I https://localhost:%d/", port);
    ts_assert(st == 0 && strstr(out, "HTTP/1.1 200") && strstr(out, "Content-Length: 15"),
              "HEAD: %s", out);
    free(out);
    out = curl(&st, "-r 2-5 https://localhost:%d/d/f.txt", port);
    ts_assert(st == 0 && strcmp(out, "2345") == 0, "range: %s", out);
    free(out);
    out = curl(&st, "https://localhost:%d/d/", port);
    ts_assert(st == 0 && strstr(out, "f.txt"), "listing: %s", out);
    free(out);
}

/* A file of n bytes from seed as big.bin: its bytes (the caller frees). */
static char *put_big(size_t n, uint64_t seed)
{
    char *data = malloc(n);
    cr_assert_not_null(data);
    ts_fill(data, n, seed);
    hs_put_file("big.bin", data, n);
    return data;
}

/* The file name (under the test's folder) holds data[0, n) exactly. */
static void expect_same(const char *name, const char *data, size_t n)
{
    size_t len;
    char *got = hs_slurp(tl_file(name), &len);
    ts_assert(len == n && memcmp(got, data, n) == 0, "%s differs (%zu bytes)", name, len);
    free(got);
}

Test(tls, five_mib_byte_exact_and_keepalive)
{
    serve();
    size_t n = 5u << 20;
    char *data = put_big(n, 42);
    hs_put_text("small.txt", "small\n");
    int st;
    /* Two URLs in one run: the second on the same connection. */
    char *out = curl(&st, "-v -o '%s' https://localhost:%d/big.bin -o /dev/null "
                     "https://localhost:%d/small.txt", tl_file("got.bin"), port, port);
    ts_assert(st == 0, "curl: %s", out);
    ts_assert(strstr(out, "Re-using existing connection"), "no keep-alive: %s", out);
    free(out);
    expect_same("got.bin", data, n);
    free(data);
}

/* Readers slower than the server fill their socket, so that the records
 * of a write go out in parts (src/tls/sink.c holds the rest): every byte
 * still arrives, in order; one that leaves mid-file takes nothing down. */
Test(tls, slow_readers_get_every_byte)
{
    serve();
    size_t n = 5u << 20;
    char *data = put_big(n, 7);
    char *out;
    int st = tl_sh(&out, CURL_MS,
                   "curl -sS --max-time 2 --limit-rate 512K --cacert '%s' --resolve "
                   "localhost:%d:127.0.0.1 -o /dev/null https://localhost:%d/big.bin & "
                   "curl -sS --max-time 40 --limit-rate 3M --cacert '%s' --resolve "
                   "localhost:%d:127.0.0.1 -o '%s' https://localhost:%d/big.bin "
                   "https://localhost:%d/big.bin -o '%s'; s=$?; wait; exit $s",
                   tl_file("ca.pem"), port, port, tl_file("ca.pem"), port,
                   tl_file("slow1.bin"), port, port, tl_file("slow2.bin"));
    ts_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "slow curl: %s", out);
    free(out);
    expect_same("slow1.bin", data, n);
    expect_same("slow2.bin", data, n);
    free(data);
    st = 0;
    out = curl(&st, "https://localhost:%d/big.bin -o /dev/null -w '%%{size_download}'", port);
    ts_assert(st == 0 && strcmp(out, "5242880") == 0, "after the slow readers: %d %s", st, out);
    free(out);
}

/* Three requests in one write, over s_client: three answers in order. */
Test(tls, pipelining)
{
    serve();
    hs_put_text("a.txt", "AAA\n");
    hs_put_text("b.txt", "BBB\n");
    char *out;
    int st = tl_sh(&out, CURL_MS,
                   "printf 'GET /a.txt HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /b.txt HTTP/1.1\\r\\n"
                   "Host: x\\r\\n\\r\\nGET /a.txt HTTP/1.1\\r\\nHost: x\\r\\nConnection: close"
                   "\\r\\n\\r\\n' | openssl s_client -connect 127.0.0.1:%d -quiet -ign_eof "
                   "-CAfile '%s' 2>/dev/null",
                   port, tl_file("ca.pem"));
    (void)st;
    const char *a1 = strstr(out, "AAA"), *b = a1 ? strstr(a1, "BBB") : NULL;
    const char *a2 = b ? strstr(b, "AAA") : NULL;
    ts_assert(a2, "three pipelined answers in order: %s", out);
    free(out);
}

Test(tls, versions)
{
    serve();
    /* SECLEVEL=0 lets this client offer the old versions: the refusal is
     * the server's. */
    const char *old[] = {"-tls1", "-tls1_1"};
    for (int i = 0; i < 2; i++) {
        char *out = tl_client(port, "%s -cipher DEFAULT@SECLEVEL=0", old[i]);
        ts_assert(strstr(out, "alert protocol version") && !strstr(out, "HTTP/1.1 200"),
                  "%s accepted: %s", old[i], out);
        free(out);
    }
    const char *ok[] = {"-tls1_2", "-tls1_3"}, *proto[] = {"TLSv1.2", "TLSv1.3"};
    for (int i = 0; i < 2; i++) {
        char *out = tl_client(port, "%s", ok[i]);
        ts_assert(strstr(out, proto[i]) && strstr(out, "HTTP/1.1 200"), "%s: %s", ok[i], out);
        ts_assert(strstr(out, "Verify return code: 0"), "%s: chain not verified: %s", ok[i],
                  out);
        free(out);
    }
}

/* s_client on port with the options fmt makes: its output must hold want,
 * and an answer (served) or none (refused: want is then the alert). */
static void expect_client(bool served, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void expect_client(bool served, const char *want, const char *fmt, ...)
{
    char opts[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(opts, sizeof opts, fmt, ap);
    va_end(ap);
    char *out = tl_client(port, "%s", opts);
    ts_assert(strstr(out, want) && !strstr(out, "HTTP/1.1 200") == !served,
              "s_client %s: %s expected, with \"%s\": %s", opts, served ? "served" : "refused",
              want, out);
    free(out);
}

/* --tls-min-version 1.3 refuses TLS 1.2; --tls-ciphers narrows TLS 1.2's
 * suites to the list, and a client that offers none of them is refused. */
Test(tls, min_version_and_ciphers)
{
    hs_tree("tls");
    tl_certs();
    port = TL_SERVE(NULL, "-w", "1", "--tls-min-version", "1.3");
    expect_client(false, "alert protocol version", "-tls1_2");
    expect_client(true, "TLSv1.3", "-tls1_3");

    port = TL_SERVE(NULL, "-w", "1", "--tls-ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384");
    expect_client(true, "ECDHE-ECDSA-AES256-GCM-SHA384", "-tls1_2");
    expect_client(false, "handshake failure", "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256");
    expect_client(true, "TLSv1.3", "-tls1_3"); /* TLS 1.3 keeps its suites */
}

/* --tls-client-ca: a certificate from its authority is required; none, or
 * one from elsewhere, fails the handshake; optional serves a client without
 * one, never one with a bad one. */
Test(tls, client_certificates)
{
    hs_tree("tls");
    tl_certs();
    tl_client_certs();
    char ca[512], client[1100], rogue[1100];
    snprintf(ca, sizeof ca, "%s", tl_file("ca.pem")); /* tl_file's buffers are reused */
    snprintf(client, sizeof client, "-cert '%s' -key '%s'", tl_file("client.pem"),
             tl_file("client.key"));
    snprintf(rogue, sizeof rogue, "-cert '%s' -key '%s'", tl_file("rogue.pem"),
             tl_file("rogue.key"));
    port = TL_SERVE(NULL, "-w", "1", "--tls-client-ca", ca);
    expect_client(true, "TLSv1.3", "%s", client);
    expect_client(false, "certificate required", "-tls1_3");
    expect_client(false, "alert handshake failure", "-tls1_2");
    expect_client(false, "unknown ca", "%s", rogue);

    port = TL_SERVE(NULL, "-w", "1", "--tls-client-ca", ca, "--tls-verify-client", "optional");
    expect_client(true, "TLSv1.3", "-tls1_3");
    expect_client(false, "unknown ca", "%s", rogue);
}

Test(tls, alpn)
{
    serve();
    char *out = tl_client(port, "-alpn h2,http/1.1");
    ts_assert(strstr(out, "ALPN protocol: http/1.1"), "ALPN: %s", out);
    free(out);
    out = tl_client(port, "-alpn h2");
    ts_assert(strstr(out, "no application protocol") && !strstr(out, "HTTP/1.1 200"),
              "h2 only: %s", out);
    free(out);
}

Test(tls, sni_picks_the_chain)
{
    hs_tree("tls");
    tl_certs();
    port = TL_SERVE(NULL, "-w", "1", "--tls-cert", tl_file("b.pem"), "--tls-key",
                    tl_file("b.key"));
    char *out = tl_client(port, "-servername other.test");
    ts_assert(strstr(out, "CN = other.test") && strstr(out, "Verify return code: 0"),
              "SNI other.test: %s", out);
    free(out);
    out = tl_client(port, "-servername localhost");
    ts_assert(strstr(out, "CN = localhost") && !strstr(out, "CN = other.test"), "localhost: %s",
              out);
    free(out);
    out = tl_client(port, "-servername unknown.example");
    ts_assert(strstr(out, "CN = localhost") && strstr(out, "HTTP/1.1 200"), "unknown: %s",
              out);
    free(out);
}

/* Plain and TLS listeners side by side, in one pool. */
Test(tls, plain_and_tls_side_by_side)
{
    hs_tree("tls");
    tl_certs();
    hs_put_text("index.html", "both\n");
    struct ts_proc *srv;
    port = TL_SERVE(&srv, "-w", "2", "-l", "127.0.0.1:0", "--hsts", "600");
    char line[512];
    ts_assert(ts_wait_log(srv, "serving .* on https://", HS_START_MS, line, sizeof line) == 0,
              "no https:// in the start-up line");
    const char *second = strstr(line, ", http://127.0.0.1:");
    ts_assert(second, "no plain listener in: %s", line);
    int plain = atoi(second + strlen(", http://127.0.0.1:"));
    char *out;
    tl_sh(&out, CURL_MS, "curl -sS -i http://127.0.0.1:%d/", plain);
    ts_assert(strstr(out, "\r\n\r\nboth\n") && !strstr(out, "Strict-Transport-Security"),
              "plain: %s", out);
    free(out);
    int st;
    out = curl(&st, "-i https://localhost:%d/", port);
    ts_assert(st == 0 && strstr(out, "\r\n\r\nboth\n"), "tls: %s", out);
    ts_assert(strstr(out, "\r\nStrict-Transport-Security: max-age=600\r\n"), "no HSTS: %s", out);
    free(out);
}

/* ---- usage errors: one line, exit 2, nothing served ---- */

static void expect_usage(const char *want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect_usage(const char *want, const char *fmt, ...)
{
    char cmd[4096], *out;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = tl_sh(&out, HS_START_MS, "'%s/prefork' %s", ts_build_dir(), cmd);
    ts_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit 0x%x for %s: %s", st, cmd, out);
    ts_assert(strstr(out, want), "expected \"%s\" for %s, got: %s", want, cmd, out);
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    ts_assert(lines == 1, "one line expected: %s", out);
    free(out);
}

Test(tls, usage_errors)
{
    hs_tree("tls");
    tl_certs();
    expect_usage("needs --tls-cert", "serve '%s' -l 127.0.0.1:0,tls", hs_root);
    expect_usage("is for listeners with ,tls", "serve '%s' -l 127.0.0.1:0 --tls-cert '%s' "
                 "--tls-key '%s'", hs_root, tl_file("a.pem"), tl_file("a.key"));
    expect_usage("come in pairs", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s'", hs_root,
                 tl_file("a.pem"));
    expect_usage("does not match", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' "
                 "--tls-key '%s'", hs_root, tl_file("a.pem"), tl_file("b.key"));
    expect_usage("--tls-key /nonexistent.key", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' "
                 "--tls-key /nonexistent.key", hs_root, tl_file("a.pem"));
    expect_usage("--tls-cert", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' --tls-key '%s'",
                 hs_root, tl_file("a.key"), tl_file("a.key"));
    expect_usage("unknown listener flag", "serve '%s' -l 127.0.0.1:0,tsl", hs_root);
    expect_usage("--tls-session-cache is for listeners with ,tls", "serve '%s' -l 127.0.0.1:0 "
                 "--tls-session-cache 5", hs_root);
    expect_usage("--tls-ticket-rotate is for listeners with ,tls", "serve '%s' -l 127.0.0.1:0 "
                 "--tls-ticket-rotate 60", hs_root);
    expect_usage("--tls-session-cache", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' --tls-key "
                 "'%s' --tls-session-cache 1000001", hs_root, tl_file("a.pem"), tl_file("a.key"));
    expect_usage("--tls-session-cache", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' --tls-key "
                 "'%s' --tls-session-cache -1", hs_root, tl_file("a.pem"), tl_file("a.key"));
    expect_usage("--tls-min-version '1.0': must be 1.2 or 1.3", "serve '%s' -l "
                 "127.0.0.1:0,tls --tls-cert '%s' --tls-key '%s' --tls-min-version 1.0", hs_root,
                 tl_file("a.pem"), tl_file("a.key"));
    expect_usage("--tls-ciphers 'RC4-NOPE': OpenSSL knows no TLS 1.2 suite", "serve '%s' -l "
                 "127.0.0.1:0,tls --tls-cert '%s' --tls-key '%s' --tls-ciphers RC4-NOPE", hs_root,
                 tl_file("a.pem"), tl_file("a.key"));
    expect_usage("--tls-ciphers is for listeners with ,tls", "serve '%s' -l 127.0.0.1:0 "
                 "--tls-ciphers HIGH", hs_root);
    expect_usage("--tls-verify-client needs --tls-client-ca", "serve '%s' -l 127.0.0.1:0,tls "
                 "--tls-cert '%s' --tls-key '%s' --tls-verify-client optional", hs_root,
                 tl_file("a.pem"), tl_file("a.key"));
    expect_usage("--tls-verify-client 'maybe': must be required or optional", "serve '%s' -l "
                 "127.0.0.1:0,tls --tls-cert '%s' --tls-key '%s' --tls-verify-client maybe",
                 hs_root, tl_file("a.pem"), tl_file("a.key"));
    expect_usage("--tls-client-ca /nonexistent.pem: No such file", "serve '%s' -l "
                 "127.0.0.1:0,tls --tls-cert '%s' --tls-key '%s' --tls-client-ca "
                 "/nonexistent.pem", hs_root, tl_file("a.pem"), tl_file("a.key"));
    expect_usage("--tls-client-ca", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' --tls-key "
                 "'%s' --tls-client-ca '%s'", hs_root, tl_file("a.pem"), tl_file("a.key"),
                 tl_file("a.key"));
    expect_usage("cannot terminate TLS", "run -l 127.0.0.1:0,tls -- /bin/true");
    expect_usage("cannot terminate TLS", "run --tls-cert '%s' -- /bin/true", tl_file("a.pem"));
}

/* systemd's sockets get flags by number: systemd-socket-activate binds a
 * socket and passes it as fd 3 with LISTEN_FDS, as a .socket unit does, and
 * -l fd:3,tls serves HTTPS on it (not adopted twice, nor closed as one no
 * address asked for). */
Test(tls, systemd_socket_named_by_number_gets_tls)
{
    const char *activate = "/usr/bin/systemd-socket-activate";
    if (access(activate, X_OK) != 0)
        cr_skip_test("systemd-socket-activate (Debian's systemd package) is not installed");
    hs_tree("tls");
    tl_certs();
    hs_put_text("index.html", "activated\n");
    char bin[4096];
    ts_assert(realpath(ts_build_dir(), bin) && strlen(bin) < sizeof bin - 9, "build dir");
    strcat(bin, "/prefork");
    /* A Unix socket: no port to pick and race for. The program starts
     * with the first connection, which waits in the socket's queue. */
    const char *sock = tl_file("activated.sock");
    struct ts_proc *p = TS_START(activate, "-l", sock, bin, "serve", hs_root, "-l", "fd:3,tls",
                                 "--tls-cert", tl_file("a.pem"), "--tls-key", tl_file("a.key"),
                                 "-w", "1");
    ts_assert(ts_wait_log(p, "Listening on", HS_START_MS, NULL, 0) == 0, "%s", ts_log(p));
    int st;
    char *out = curl(&st, "--unix-socket '%s' https://localhost/", sock);
    ts_assert(st == 0 && strcmp(out, "activated\n") == 0, "over HTTPS: %d %s\n%s", st, out,
              ts_log(p));
    free(out);
    ts_assert(ts_log_count(p, "closing inherited socket|error") == 0, "%s", ts_log(p));
}

/* A key only root can read works: the master reads it before the workers
 * drop to --user. */
Test(tls, root_only_key_with_user)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to test --user");
    hs_tree("tls");
    tl_certs();
    hs_put_text("index.html", "dropped\n");
    ts_assert(chmod(tl_file("a.key"), 0600) == 0, "chmod");
    ts_assert(chmod(hs_base, 0755) == 0 && chmod(hs_root, 0755) == 0, "chmod");
    port = TL_SERVE(NULL, "-w", "1", "--user", "nobody");
    int st;
    char *out = curl(&st, "https://localhost:%d/", port);
    ts_assert(st == 0 && strcmp(out, "dropped\n") == 0, "as nobody: %d %s", st, out);
    free(out);
}

/* With kernel TLS, files go out with SSL_sendfile: the kernel's counters
 * of TLS sockets move. Where the kernel has no tls module, skipped. */
Test(tls, kernel_tls_files)
{
    char *ulp = ts_read_file("/proc/sys/net/ipv4/tcp_available_ulp");
    bool have = ulp && strstr(ulp, "tls");
    free(ulp);
    if (!have)
        cr_skip_test("the kernel has no \"tls\" upper layer protocol "
                     "(/proc/sys/net/ipv4/tcp_available_ulp): kernel TLS not tested here");
    serve();
    size_t n = 1u << 20;
    char *data = malloc(n);
    ts_fill(data, n, 9);
    hs_put_file("k.bin", data, n);
    char *before = ts_read_file("/proc/net/tls_stat");
    int st;
    char *out = curl(&st, "--tls-max 1.2 -o '%s' https://localhost:%d/k.bin", tl_file("k.out"),
                     port);
    ts_assert(st == 0, "curl: %s", out);
    free(out);
    size_t len;
    char *got = hs_slurp(tl_file("k.out"), &len);
    ts_assert(len == n && memcmp(got, data, n) == 0, "kTLS body differs");
    char *after = ts_read_file("/proc/net/tls_stat");
    ts_assert(before && after && strcmp(before, after) != 0, "no kTLS socket was used");
    free(before);
    free(after);
    free(got);
    free(data);
}

/* --https-redirect: plain requests are sent to the TLS listener. */
Test(tls, https_redirect)
{
    hs_tree("tls");
    tl_certs();
    hs_put_text("index.html", "secure\n");
    struct ts_proc *srv;
    port = TL_SERVE(&srv, "-w", "1", "-l", "127.0.0.1:0", "--https-redirect");
    char line[512];
    ts_assert(ts_wait_log(srv, "serving .* on https://", HS_START_MS, line, sizeof line) == 0,
              "no start-up line");
    int plain = atoi(strstr(line, ", http://127.0.0.1:") + strlen(", http://127.0.0.1:"));
    static const char get[] = "GET /a/b?c=1 HTTP/1.1\r\nHost: localhost:9\r\nConnection: close\r\n\r\n";
    size_t len;
    char *got = hs_exchange(plain, get, sizeof get - 1, &len), want[128];
    snprintf(want, sizeof want, "\r\nLocation: https://localhost:%d/a/b?c=1\r\n", port);
    ts_assert(strncmp(got, "HTTP/1.1 301 ", 13) == 0 && strstr(got, want), "GET: %s",
              hs_shown(got, len));
    free(got);
    static const char post[] = "POST /f HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\nhi";
    got = hs_exchange(plain, post, sizeof post - 1, &len);
    ts_assert(strncmp(got, "HTTP/1.1 308 ", 13) == 0, "POST: %s", hs_shown(got, len));
    free(got);
    static const char old[] = "GET / HTTP/1.0\r\n\r\n";
    got = hs_exchange(plain, old, sizeof old - 1, &len);
    ts_assert(strncmp(got, "HTTP/1.1 400 ", 13) == 0, "no Host: %s", hs_shown(got, len));
    free(got);
    int st;
    char *out = curl(&st, "-L http://localhost:%d/", plain);
    ts_assert(st == 0 && strcmp(out, "secure\n") == 0, "followed: %s", out);
    free(out);
    expect_usage("--https-redirect needs", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' "
                 "--tls-key '%s' --https-redirect", hs_root, tl_file("a.pem"), tl_file("a.key"));
}

/* A response from the test CA's own responder for cert NAME, in NAME.ocsp,
 * the certificate valid (V) or revoked (R). */
static void ocsp_response(const char *name, char state)
{
    char *out;
    int st = tl_sh(&out, 60000,
                   "cd '%s' && serial=$(openssl x509 -in %s.pem -noout -serial | cut -d= -f2) && "
                   "end=$(openssl x509 -in %s.pem -noout -enddate | cut -d= -f2) && "
                   "rev=%s && printf '%c\t%%s\t%%s\t%%s\tunknown\t/CN=x\n' "
                   "\"$(date -u -d \"$end\" +%%y%%m%%d%%H%%M%%SZ)\" \"$rev\" \"$serial\" "
                   "> index.txt && "
                   "openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem "
                   "-issuer ca.pem -cert %s.pem -respout %s.ocsp -ndays 1",
                   hs_tmp, name, name, state == 'R' ? "$(date -u +%y%m%d%H%M%SZ)" : "''",
                   state, name, name);
    ts_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl ocsp: %s", out);
    free(out);
}

/* --tls-ocsp: the response (made here by the test CA's own responder) is
 * stapled for clients that ask, and only for them; a file that is not
 * one, a response about another certificate or a revoked one is a usage
 * error. */
Test(tls, ocsp_stapling)
{
    hs_tree("tls");
    tl_certs();
    char *out;
    ocsp_response("b", 'V');
    expect_usage("not about this certificate", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' "
                 "--tls-key '%s' --tls-ocsp '%s'", hs_root, tl_file("a.pem"), tl_file("a.key"),
                 tl_file("b.ocsp"));
    ocsp_response("a", 'R');
    expect_usage("revoked", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' --tls-key '%s' "
                 "--tls-ocsp '%s'", hs_root, tl_file("a.pem"), tl_file("a.key"), tl_file("a.ocsp"));
    ocsp_response("a", 'V');
    expect_usage("not an OCSP response", "serve '%s' -l 127.0.0.1:0,tls --tls-cert '%s' "
                 "--tls-key '%s' --tls-ocsp '%s'", hs_root, tl_file("a.pem"), tl_file("a.key"),
                 tl_file("a.pem"));
    expect_usage("goes after the --tls-cert", "serve '%s' -l 127.0.0.1:0,tls --tls-ocsp '%s'",
                 hs_root, tl_file("a.ocsp"));
    port = TL_SERVE(NULL, "-w", "1", "--tls-ocsp", tl_file("a.ocsp"));
    out = tl_client(port, "-status");
    ts_assert(strstr(out, "OCSP Response Status: successful") && strstr(out, "Cert Status: good"),
              "stapled: %s", out);
    free(out);
    out = tl_client(port, "%s", "");
    ts_assert(!strstr(out, "OCSP Response Status") && strstr(out, "HTTP/1.1 200"),
              "sent unasked: %s", out);
    free(out);
}
