/* test_run.c — prefork run: a Python program as the workers, supervised, reloaded and stopped like any other. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_support.h"
#include "support.h"

TestSuite(run, .fini = hs_cleanup, .timeout = 90);

static char app[PATH_MAX];

/* prefork run -w N -l 127.0.0.1:0 [EXTRA...] -- python3 examples/python/app.py [ARGS...] */
static struct ts_proc *start_app(const char *workers, const char *const *extra,
                                 const char *const *args)
{
    const char *argv[32] = {"prefork", "run", "-w", workers, "-l", "127.0.0.1:0"};
    int n = 6;
    cr_assert_not_null(realpath("examples/python/app.py", app), "examples/python/app.py: %s",
                       strerror(errno));
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n++] = "--";
    argv[n++] = "python3";
    argv[n++] = app;
    for (int i = 0; args && args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return ts_start(argv);
}

/* GET / on a new connection: the pid in "hello from worker N, generation G,
 * pid P", or -1. */
static int served_by(int port)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    int fd = ts_connect_tcp(port, HS_IO_MS);
    if (fd < 0)
        return -1;
    struct hs_buf b = {0};
    int pid = -1;
    if (ts_send_all(fd, req, sizeof req - 1, HS_IO_MS) == 0 &&
        hs_read_to_eof(fd, &b, HS_IO_MS) == 0 && b.len > 12 &&
        memcmp(b.p, "HTTP/1.1 200", 12) == 0) {
        const char *p = strstr(b.p, ", pid ");
        if (p)
            pid = atoi(p + 6);
    }
    free(b.p);
    close(fd);
    return pid;
}

static int start_and_wait(struct ts_proc **srv, const char *workers, const char *const *extra,
                          const char *const *args, pid_t *pids)
{
    *srv = start_app(workers, extra, args);
    int port = ts_wait_port(*srv, HS_START_MS);
    ts_assert(port > 0, "no port");
    ts_assert(ts_wait_ready((*srv)->pid, atoi(workers), pids, HS_START_MS) == 0,
              "workers never said READY=1");
    return port;
}

Test(run, three_workers_serve_from_three_pids_and_log_as_themselves)
{
    struct ts_proc *srv;
    pid_t pids[3];
    int port = start_and_wait(&srv, "3", NULL, NULL, pids);
    int seen[3] = {0};
    for (int i = 0; i < 300 && !(seen[0] && seen[1] && seen[2]); i++) {
        int pid = served_by(port);
        ts_assert(pid > 0, "request %d failed", i);
        for (int k = 0; k < 3; k++)
            seen[k] |= pid == pids[k];
    }
    ts_assert(seen[0] && seen[1] && seen[2], "not every worker served");
    /* The program's stderr (its request log) is logged under its worker. */
    char re[64];
    snprintf(re, sizeof re, "worker [0-2] \\(pid %d\\)  info  .*GET / HTTP", (int)pids[0]);
    ts_assert(ts_wait_log(srv, re, HS_IO_MS, NULL, 0) == 0, "no tagged request log line");
}

Test(run, a_crashed_worker_is_replaced)
{
    struct ts_proc *srv;
    pid_t pids[2];
    int port = start_and_wait(&srv, "2", NULL, NULL, pids);
    ts_kill(pids[0], SIGKILL);
    ts_assert(ts_wait_log(srv, "killed by signal 9", HS_IO_MS, NULL, 0) == 0, "kill not logged");
    pid_t now[2];
    int64_t deadline = ts_now_ms() + HS_START_MS;
    do {
        ts_assert(ts_now_ms() < deadline, "no replacement became ready");
        poll(NULL, 0, 50);
    } while (ts_wait_ready(srv->pid, 2, now, 1000) != 0 || now[0] == pids[0]);
    for (int i = 0; i < 20; i++)
        ts_assert(served_by(port) > 0, "request %d failed after the crash", i);
}

Test(run, five_hups_under_load_lose_nothing_and_change_the_pids)
{
    struct ts_proc *srv;
    pid_t first[2];
    int port = start_and_wait(&srv, "2", NULL, NULL, first);
    int failed = 0;
    for (int i = 0; i < 500; i++) { /* HUPs at 50, 150, ... 450: five */
        if (i % 100 == 50) {
            char re[48];
            ts_kill(srv->pid, SIGHUP);
            snprintf(re, sizeof re, "generation %d ready", i / 100 + 2);
            /* keep the load going while the new generation starts */
            for (int k = 0; k < 20; k++)
                failed += served_by(port) < 0;
            ts_assert(ts_wait_log(srv, re, HS_START_MS, NULL, 0) == 0, "reload %d never finished",
                      i / 100 + 1);
        }
        failed += served_by(port) < 0;
    }
    ts_assert(failed == 0, "%d requests failed", failed);
    ts_assert(ts_wait_pids_dead(first, 2, HS_IO_MS) == 0, "first-generation programs still run");
    /* Generation 5 is told to stop when generation 6 is ready; its
     * programs may still be on their way out: wait for them, bounded. */
    unsigned left = 0;
    for (int64_t deadline = ts_now_ms() + HS_START_MS; ts_now_ms() < deadline; poll(NULL, 0, 20)) {
        struct pf_slot_info s[8];
        int n = ts_board(srv->pid, s, 8);
        left = 0;
        for (int i = 0; i < n; i++)
            if (s[i].generation != 6)
                left = s[i].generation;
        if (n > 0 && !left)
            break;
    }
    ts_assert(left == 0, "a worker of generation %u is left", left);
}

Test(run, a_program_that_never_says_ready_fails_the_reload_cleanly)
{
    char flag[600];
    hs_tree("run");
    hs_path("never-ready", flag, sizeof flag);
    struct ts_proc *srv;
    pid_t pids[2];
    int port = start_and_wait(&srv, "2", (const char *const[]){"--ready-timeout", "2", NULL},
                              (const char *const[]){"--never-ready-if", flag, NULL}, pids);
    hs_put_text("never-ready", "x");
    ts_kill(srv->pid, SIGHUP);
    ts_assert(ts_wait_log(srv, "reload failed: generation 2 not ready after 2000 ms; "
                               "generation 1 keeps serving", HS_START_MS, NULL, 0) == 0,
              "the reload did not fail as it should");
    for (int i = 0; i < 20; i++) {
        int pid = served_by(port);
        ts_assert(pid == pids[0] || pid == pids[1], "request %d not served by the old workers", i);
    }
}

Test(run, term_stops_every_program_and_exits_0)
{
    struct ts_proc *srv;
    pid_t pids[3];
    start_and_wait(&srv, "3", NULL, NULL, pids);
    ts_kill(srv->pid, SIGTERM);
    ts_assert(ts_wait_exit(srv, HS_START_MS) == 0 && WIFEXITED(srv->status) &&
                  WEXITSTATUS(srv->status) == 0,
              "master did not exit 0");
    ts_assert(ts_wait_pids_dead(pids, 3, HS_IO_MS) == 0, "a program outlived the master");
}

Test(run, usage_errors_are_one_line_and_status_2)
{
    char plain[600];
    hs_tree("run");
    hs_put_text("plain.txt", "not a program\n"); /* mode 0644 */
    hs_path("plain.txt", plain, sizeof plain);
    const char *const cases[][8] = {
        {"prefork", "run", "--", "no-such-command-here", NULL},
        {"prefork", "run", "--", plain, NULL},
        {"prefork", "run", NULL},
        {"prefork", "run", "--mode", "dispatch", "--", "true", NULL},
        {"prefork", "run", "--stop-signal", "KILL", "--", "true", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ts_proc *p;
        int status = ts_run(cases[i], HS_IO_MS, &p);
        ts_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 2,
                  "case %zu: status %d", i, status);
        char *err = ts_read_file(p->err);
        ts_assert(err && strchr(err, '\n') == strrchr(err, '\n') && strncmp(err, "prefork: ", 9) == 0,
                  "case %zu: not one line: [%s]", i, err ? err : "");
        free(err);
    }
}

Test(run, the_wsgi_example_serves)
{
    char wsgi[PATH_MAX];
    cr_assert_not_null(realpath("examples/python/wsgi_app.py", wsgi), "wsgi_app.py");
    struct ts_proc *srv = TS_START("prefork", "run", "-w", "2", "-l", "127.0.0.1:0", "--",
                                   "python3", wsgi);
    int port = ts_wait_port(srv, HS_START_MS);
    ts_assert(port > 0, "no port");
    pid_t pids[2];
    ts_assert(ts_wait_ready(srv->pid, 2, pids, HS_START_MS) == 0, "workers never said READY=1");
    size_t len;
    char *r = hs_exchange(port, "GET /hi HTTP/1.0\r\n\r\n", 20, &len);
    ts_assert(strstr(r, " 200 ") && strstr(r, ": /hi\n"), "got [%s]", hs_shown(r, len));
    free(r);
}

Test(run, ready_delay_makes_a_silent_program_ready)
{
    char flag[600];
    hs_tree("run");
    hs_put_text("silent", "x"); /* app.py never says READY=1 while it exists */
    hs_path("silent", flag, sizeof flag);
    struct ts_proc *srv;
    pid_t pids[2];
    int port = start_and_wait(&srv, "2", (const char *const[]){"--ready-delay", "1", NULL},
                              (const char *const[]){"--never-ready-if", flag, NULL}, pids);
    ts_assert(served_by(port) > 0, "not serving");
}

Test(run, max_lifetime_recycles_workers_without_loss)
{
    struct ts_proc *srv;
    pid_t first[2];
    int port = start_and_wait(&srv, "2", (const char *const[]){"--max-lifetime", "1", NULL}, NULL,
                              first);
    int failed = 0;
    int64_t deadline = ts_now_ms() + HS_START_MS;
    while (ts_log_count(srv, "takes over from") < 2) {
        ts_assert(ts_now_ms() < deadline, "workers were not recycled");
        failed += served_by(port) < 0;
    }
    ts_assert(ts_log_count(srv, "reached its max lifetime") >= 2, "no lifetime log line");
    ts_assert(failed == 0, "%d requests failed while recycling", failed);
}

/* A program that says READY=1, ticks WATCHDOG=1 for a while, then stops
 * ticking (it keeps running): with --timeout it must be found hung. */
static const char watchdog_prog[] =
    "import os, socket, time\n"
    "a = os.environ['NOTIFY_SOCKET']; a = '\\0' + a[1:] if a[0] == '@' else a\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "s.sendto(b'READY=1', a)\n"
    "for _ in range(5):\n"
    "    s.sendto(b'WATCHDOG=1\\nSTATUS=ticking', a); time.sleep(0.2)\n"
    "s.sendto(b'STATUS=stuck', a)\n"
    "time.sleep(3600)\n";

Test(run, watchdog_heartbeats_feed_timeout)
{
    struct ts_proc *srv = TS_START("prefork", "run", "-w", "1", "-l", "127.0.0.1:0", "--timeout",
                                   "2", "--", "python3", "-c", watchdog_prog);
    ts_assert(ts_wait_port(srv, HS_START_MS) > 0, "no port");
    pid_t pid;
    ts_assert(ts_wait_ready(srv->pid, 1, &pid, HS_START_MS) == 0, "never said READY=1");
    ts_assert(ts_wait_log(srv, "is not responding: no heartbeat for [0-9]+ ms, busy with 'stuck'",
                          HS_START_MS, NULL, 0) == 0,
              "the stalled program was not found hung");
    ts_assert(ts_wait_pids_dead(&pid, 1, HS_START_MS) == 0, "the hung program was not stopped");
}

Test(run, usr2_upgrades_a_running_program_pool)
{
    char pidfile[600], text[32] = "";
    hs_tree("run");
    hs_path("prefork.pid", pidfile, sizeof pidfile);
    struct ts_proc *srv;
    pid_t pids[2];
    int port = start_and_wait(&srv, "2", (const char *const[]){"--pidfile", pidfile, NULL}, NULL,
                              pids);
    ts_kill(srv->pid, SIGUSR2);
    ts_assert(ts_wait_log(srv, "upgrade: new master \\(pid [0-9]+\\) is ready", HS_START_MS, NULL,
                          0) == 0, "no upgrade");
    ts_assert(ts_wait_exit(srv, HS_START_MS) == 0 && WIFEXITED(srv->status) &&
                  WEXITSTATUS(srv->status) == 0,
              "the old master did not exit 0");
    ts_assert(ts_wait_pids_dead(pids, 2, HS_IO_MS) == 0, "old programs still run");
    char *t = ts_read_file(pidfile);
    ts_assert(t != NULL, "no pidfile");
    snprintf(text, sizeof text, "%s", t);
    free(t);
    pid_t heir = (pid_t)atoi(text);
    ts_assert(heir > 0 && heir != srv->pid, "the pidfile names %d", (int)heir);
    int pid = served_by(port);
    ts_assert(pid > 0 && pid != pids[0] && pid != pids[1], "not served by the new programs");
    ts_kill(heir, SIGTERM);
    ts_assert(ts_wait_pids_dead(&heir, 1, HS_START_MS) == 0, "the new master did not stop");
}

Test(run, a_command_that_disappears_ends_with_127)
{
    char prog[600];
    hs_tree("run");
    hs_put_text("prog.sh", "#!/bin/sh\nexec sleep 3600\n");
    hs_path("prog.sh", prog, sizeof prog);
    cr_assert_eq(chmod(prog, 0755), 0);
    struct ts_proc *srv = TS_START("prefork", "run", "-w", "1", "-l", "127.0.0.1:0",
                                   "--ready-delay", "0.2", "--", prog);
    ts_assert(ts_wait_port(srv, HS_START_MS) > 0, "no port");
    pid_t pid;
    ts_assert(ts_wait_ready(srv->pid, 1, &pid, HS_START_MS) == 0, "not ready");
    cr_assert_eq(unlink(prog), 0);
    ts_kill(pid, SIGKILL); /* its replacements cannot start any more */
    ts_assert(ts_wait_exit(srv, HS_START_MS) == 0 && WIFEXITED(srv->status) &&
                  WEXITSTATUS(srv->status) == 127,
              "status %d, not exit 127", srv->status);
    ts_assert(ts_wait_log(srv, "is gone", HS_IO_MS, NULL, 0) == 0, "no 'is gone' line");
}
