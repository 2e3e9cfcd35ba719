/* test_tls_reload.c — HTTPS across workers and generations: session resumption (tickets and session IDs) on every worker and after HUP, ticket keys rotated, certificates and client authorities replaced by HUP (under load, and broken ones refused). */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tls_support.h"

#define TIMEOUT 180
#define LOAD_MS 120000

TestSuite(tls_reload, .fini = hs_cleanup, .timeout = TIMEOUT);

static struct ts_proc *srv;
static int port;

static void serve(const char *workers, const char *mode)
{
    hs_tree("tlsr");
    tl_certs();
    hs_put_text("index.html", "resumable\n");
    port = TL_SERVE(&srv, "-w", workers, "--mode", mode);
}

/* A new session into sess.pem. */
static void new_session(void)
{
    char *out = tl_client(port, "-sess_out '%s'", tl_file("sess.pem"));
    ts_assert(strstr(out, "New, TLSv1.3") && strstr(out, "HTTP/1.1 200"), "first: %s", out);
    free(out);
}

/* A connection that resumes the saved session. */
static void expect_resumed(const char *when)
{
    char *out = tl_client(port, "-sess_in '%s'", tl_file("sess.pem"));
    ts_assert(strstr(out, "Reused, TLSv1.3") && strstr(out, "HTTP/1.1 200"), "%s: %s", when,
              out);
    free(out);
}

/* How many workers have accepted at least one connection. */
static int workers_used(void)
{
    struct pf_slot_info slots[8];
    int n = ts_board(srv->pid, slots, 8), used = 0;
    for (int i = 0; i < n; i++)
        used += slots[i].accepted > 0 && slots[i].state != PF_STATE_DRAINING;
    return used;
}

/* Dispatch mode passes each connection to the least busy worker, in
 * turn among equals: both workers serve some of a few connections. */
Test(tls_reload, resumes_on_every_worker)
{
    serve("2", "dispatch");
    new_session();
    int i;
    for (i = 0; i < 20 && workers_used() < 2; i++)
        expect_resumed("resumed on another connection");
    expect_resumed("one more");
    ts_assert(workers_used() == 2, "only %d worker served (%d connections)", workers_used(), i);
}

/* A TLS 1.2 session without a ticket (s_client -no_ticket), saved into
 * sid.pem; then whether a connection resumed it by its ID. */
static void id_session(void)
{
    char *out = tl_client(port, "-tls1_2 -no_ticket -sess_out '%s'", tl_file("sid.pem"));
    ts_assert(strstr(out, "New, TLSv1.2") && strstr(out, "HTTP/1.1 200"), "first: %s", out);
    free(out);
}

static bool id_resumed(void)
{
    char *out = tl_client(port, "-tls1_2 -no_ticket -sess_in '%s'", tl_file("sid.pem"));
    ts_assert(strstr(out, "HTTP/1.1 200"), "no answer: %s", out);
    bool reused = strstr(out, "Reused, TLSv1.2") != NULL;
    free(out);
    return reused;
}

/* The session table is shared: a client resuming by session ID does so on
 * every worker, and after a HUP (the new generation shares the table). */
Test(tls_reload, resumes_by_session_id_on_every_worker_and_after_hup)
{
    serve("2", "dispatch");
    id_session();
    int i;
    for (i = 0; i < 20 && workers_used() < 2; i++)
        ts_assert(id_resumed(), "not resumed by session ID on connection %d", i + 2);
    ts_assert(id_resumed(), "one more");
    ts_assert(workers_used() == 2, "only %d worker served (%d connections)", workers_used(), i);
    ts_assert(ts_kill(srv->pid, SIGHUP) == 0);
    tl_wait_generation(srv, 2);
    ts_assert(id_resumed(), "not resumed by session ID after HUP");
}

/* --tls-session-cache 0: no resumption by ID; tickets still resume. */
Test(tls_reload, no_session_cache_resumes_by_ticket_only)
{
    hs_tree("tlsr");
    tl_certs();
    hs_put_text("index.html", "resumable\n");
    port = TL_SERVE(&srv, "-w", "2", "--tls-session-cache", "0");
    /* No session ID is given out (s_client then saves no session), or one
     * that does not resume. */
    id_session();
    char *out;
    if (tl_sh(&out, 10000, "test -s '%s'", tl_file("sid.pem")) == 0)
        ts_assert(!id_resumed(), "resumed by session ID with --tls-session-cache 0");
    free(out);
    new_session();
    expect_resumed("by ticket, without the session cache");
}

Test(tls_reload, resumes_after_hup_with_new_certificate)
{
    serve("2", "shared");
    new_session();
    char *out;
    int st = tl_sh(&out, 10000, "cp '%s' '%s' && cp '%s' '%s'", tl_file("c.pem"),
                   tl_file("a.pem"), tl_file("c.key"), tl_file("a.key"));
    ts_assert(st == 0, "cp: %s", out);
    free(out);
    ts_assert(ts_kill(srv->pid, SIGHUP) == 0);
    tl_wait_generation(srv, 2);
    ts_assert(ts_log_count(srv, "certificates? loaded again") == 1, "no reload line");
    expect_resumed("after HUP");
    out = tl_client(port, "-servername localhost");
    ts_assert(strstr(out, "CN = localhost-2") && strstr(out, "HTTP/1.1 200"),
              "new connections see the new chain: %s", out);
    free(out);
}

/* --tls-client-ca is read again on HUP: after the file names another
 * authority, the old client's certificate is refused and the new one's
 * served. */
Test(tls_reload, client_ca_replaced_by_hup)
{
    hs_tree("tlsr");
    tl_certs();
    tl_client_certs();
    char *out;
    int st = tl_sh(&out, 10000, "cp '%s' '%s'", tl_file("ca.pem"), tl_file("clients.pem"));
    ts_assert(st == 0, "cp: %s", out);
    free(out);
    port = TL_SERVE(&srv, "-w", "1", "--tls-client-ca", tl_file("clients.pem"));
    out = tl_client(port, "-cert '%s' -key '%s'", tl_file("client.pem"), tl_file("client.key"));
    ts_assert(strstr(out, "HTTP/1.1 200"), "the CA's client: %s", out);
    free(out);
    st = tl_sh(&out, 10000, "cp '%s' '%s'", tl_file("rogue.pem"), tl_file("clients.pem"));
    ts_assert(st == 0, "cp: %s", out);
    free(out);
    ts_assert(ts_kill(srv->pid, SIGHUP) == 0);
    tl_wait_generation(srv, 2);
    out = tl_client(port, "-cert '%s' -key '%s'", tl_file("client.pem"), tl_file("client.key"));
    ts_assert(strstr(out, "unknown ca") && !strstr(out, "HTTP/1.1 200"),
              "the old CA's client after HUP: %s", out);
    free(out);
    out = tl_client(port, "-cert '%s' -key '%s'", tl_file("rogue.pem"), tl_file("rogue.key"));
    ts_assert(strstr(out, "HTTP/1.1 200"), "the new authority's client after HUP: %s", out);
    free(out);
}

Test(tls_reload, broken_certificate_keeps_the_old_generation)
{
    serve("2", "shared");
    char *out;
    tl_sh(&out, 10000, "echo 'not a certificate' > '%s'", tl_file("a.pem"));
    free(out);
    ts_assert(ts_kill(srv->pid, SIGHUP) == 0);
    int err = ts_wait_log(srv, "reload failed: --tls-cert .*a\\.pem: no start line; generation 1 "
                          "keeps serving", HS_START_MS, NULL, 0);
    ts_assert(err == 0, "no reload failure line");
    ts_assert(ts_log_count(srv, "error") == 1, "one log line for the failed reload");
    ts_assert(ts_log_count(srv, "generation 2") == 0, "a generation 2 was started");
    out = tl_client(port, "-servername localhost");
    ts_assert(strstr(out, "CN = localhost") && strstr(out, "HTTP/1.1 200"),
              "old generation still serving: %s", out);
    free(out);
    /* A key that does not match is refused the same way. */
    tl_sh(&out, 10000, "cp '%s' '%s' && cp '%s' '%s'", tl_file("c.pem"), tl_file("a.pem"),
          tl_file("b.key"), tl_file("a.key"));
    free(out);
    ts_assert(ts_kill(srv->pid, SIGHUP) == 0);
    err = ts_wait_log(srv, "reload failed: --tls-key .*: does not match", HS_START_MS, NULL, 0);
    ts_assert(err == 0, "no mismatch line");
}

/* Lines of file that are exactly "200". */
static int count_lines(const char *path, const char *want, int *other)
{
    char *text = ts_read_file(path);
    int n = 0;
    *other = 0;
    for (char *s = text, *nl; s && *s; s = nl + 1) {
        nl = strchr(s, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if (strcmp(s, want) == 0)
            n++;
        else
            (*other)++;
    }
    free(text);
    return n;
}

static void wait_lines(const char *path, int n)
{
    int64_t end = ts_now_ms() + LOAD_MS;
    int other, got;
    while ((got = count_lines(path, "200", &other)) < n && ts_now_ms() < end)
        poll(NULL, 0, 20); /* polled, until the deadline */
    ts_assert(got >= n, "only %d answers", got);
}

/* A client loop makes new connections and keep-alive ones while two HUPs
 * swap the certificate: every request is answered 200. */
Test(tls_reload, hup_under_load_fails_nothing)
{
    serve("2", "shared");
    const char *codes = tl_file("codes");
    char script[4096];
    snprintf(script, sizeof script,
             "i=0; while [ $i -lt 120 ]; do i=$((i+1)); curl -s --max-time 20 --cacert '%s' "
             "--resolve localhost:%d:127.0.0.1 -o /dev/null -o /dev/null -w '%%{http_code}\\n' "
             "https://localhost:%d/ https://localhost:%d/ >> '%s'; done; echo done >> '%s'",
             tl_file("ca.pem"), port, port, port, codes, codes);
    struct ts_proc *load = TS_START("/bin/sh", "-c", script);
    wait_lines(codes, 20);
    char *out;
    tl_sh(&out, 10000, "cp '%s' '%s' && cp '%s' '%s'", tl_file("c.pem"), tl_file("a.pem"),
          tl_file("c.key"), tl_file("a.key"));
    free(out);
    ts_assert(ts_kill(srv->pid, SIGHUP) == 0);
    tl_wait_generation(srv, 2);
    ts_assert(ts_kill(srv->pid, SIGHUP) == 0);
    tl_wait_generation(srv, 3);
    ts_assert(ts_wait_exit(load, LOAD_MS) == 0, "the client loop did not end");
    int other, ok = count_lines(codes, "200", &other);
    ts_assert(ok == 240 && other == 1, "%d answered 200, %d lines else (one is \"done\")", ok,
              other);
}

/* With keys rotated every second, a ticket resumes at once, and stops
 * resuming once its key has been replaced (three rotations at most). */
Test(tls_reload, ticket_keys_rotate)
{
    hs_tree("tlsr");
    tl_certs();
    hs_put_text("index.html", "x\n");
    port = TL_SERVE(&srv, "-w", "2", "--tls-ticket-rotate", "1");
    new_session();
    expect_resumed("at once");
    int64_t end = ts_now_ms() + 30000;
    bool fresh = false;
    while (!fresh && ts_now_ms() < end) {
        char *out = tl_client(port, "-sess_in '%s'", tl_file("sess.pem"));
        fresh = strstr(out, "New, TLSv1.3") != NULL;
        free(out);
    }
    ts_assert(fresh, "a ticket still opened after 30 s of rotating keys");
}

/* A TLS 1.3 client uses each ticket once: a resumed connection must bring
 * a new ticket, which resumes in turn. */
Test(tls_reload, resumed_connections_bring_new_tickets)
{
    serve("1", "shared");
    new_session();
    for (int i = 0; i < 3; i++) {
        char *out = tl_client(port, "-sess_in '%s' -sess_out '%s'", tl_file("sess.pem"),
                              tl_file("next.pem"));
        ts_assert(strstr(out, "Reused, TLSv1.3") && strstr(out, "New Session Ticket arrived"),
                  "resumption %d: %s", i + 1, out);
        free(out);
        ts_assert(rename(tl_file("next.pem"), tl_file("sess.pem")) == 0, "no new ticket saved");
    }
}

/* USR2: the new master takes the ticket keys over, and a session from
 * before the upgrade resumes after it. The new master is not our child:
 * it is stopped by its pid, waited for by polling. */
Test(tls_reload, resumes_after_upgrade)
{
    serve("1", "shared");
    new_session();
    ts_assert(ts_kill(srv->pid, SIGUSR2) == 0);
    char line[1024];
    int err = ts_wait_log(srv, "upgrade: new master \\(pid [0-9]+\\) is ready", HS_START_MS, line,
                          sizeof line);
    ts_assert(err == 0, "no upgrade");
    pid_t heir = (pid_t)atoi(strstr(line, "(pid ") + 5);
    ts_assert(heir > 0, "no pid in: %s", line);
    ts_assert(ts_log_count(srv, "session-ticket keys taken over") == 1, "keys not taken over");
    ts_assert(ts_wait_exit(srv, HS_START_MS) == 0, "the old master did not leave");
    expect_resumed("after USR2");
    ts_kill(heir, SIGTERM);
    ts_assert(ts_wait_pids_dead(&heir, 1, HS_START_MS) == 0, "the new master did not stop");
}
