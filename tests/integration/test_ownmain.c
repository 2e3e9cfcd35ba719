/* test_ownmain.c — a worker main of its own (examples/classic): readiness, serving, heartbeat, draining. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <sys/wait.h>

#include "support.h"

TestSuite(ownmain, .fini = ts_cleanup, .timeout = 60);

/* Send one line, read the whole answer (the server closes after it). */
static int ask(int port, const char *line, char *out, size_t size)
{
    int fd = ts_connect_tcp(port, 5000);
    if (fd < 0)
        return fd;
    size_t n = 0;
    int err = ts_send_all(fd, line, strlen(line), 5000);
    while (err == 0 && n + 1 < size) {
        err = ts_recv_exact(fd, out + n, 1, 5000);
        if (err == 0 && out[n++] == '\n')
            break;
    }
    out[n] = '\0';
    close(fd);
    return err;
}

static void serves_from_every_worker_and_drains(const char *mode)
{
    struct ts_proc *p = TS_START("examples/classic", "-l", "127.0.0.1:0", "-w", "2", "-m", mode);
    int port = ts_wait_port(p, 10000);
    ts_assert(port > 0, "no port");
    pid_t pids[2];
    ts_assert(ts_wait_ready(p->pid, 2, pids, 10000) == 0, "workers not ready");

    /* Both workers get some: poll-based workers race for each connection
     * (shared), the kernel hashes (reuseport), the master picks (dispatch). */
    bool seen[2] = {false, false};
    for (int i = 0; i < 200 && !(seen[0] && seen[1]); i++) {
        char reply[256];
        ts_assert(ask(port, "ping\n", reply, sizeof reply) == 0, "request %d failed", i);
        ts_assert(strstr(reply, ": ping\n") != NULL, "bad reply '%s'", reply);
        for (int k = 0; k < 2; k++) {
            char tag[64];
            snprintf(tag, sizeof tag, "(pid %d)", (int)pids[k]);
            seen[k] |= strstr(reply, tag) != NULL;
        }
    }
    ts_assert(seen[0] && seen[1], "one worker served everything");

    /* The heartbeat is ticked by the worker's own loop. */
    struct pf_slot_info slots[4];
    int n = ts_board(p->pid, slots, 4);
    ts_assert(n == 2, "scoreboard has %d slots", n);
    for (int i = 0; i < n; i++)
        ts_assert(slots[i].heartbeat_ms < 5000, "stale heartbeat %llu ms",
                  (unsigned long long)slots[i].heartbeat_ms);

    ts_kill(p->pid, SIGTERM);
    ts_assert(ts_wait_exit(p, 10000) == 0, "master did not exit");
    ts_assert(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0, "exit status %d",
              p->status);
    ts_assert(ts_wait_pids_dead(pids, 2, 2000) == 0, "a worker outlived the master");
}

Test(ownmain, shared) { serves_from_every_worker_and_drains("shared"); }
Test(ownmain, reuseport) { serves_from_every_worker_and_drains("reuseport"); }
Test(ownmain, dispatch) { serves_from_every_worker_and_drains("dispatch"); }
