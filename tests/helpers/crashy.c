/* crashy.c — a test service whose workers always fail to start, to exercise the master's back-off, giving up and exit events. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prefork.h"

/*
 * usage: crashy [-l ADDR] [-w N] [--max-start-failures N] [--abort]
 * Every worker fails in init, before it could say ready: with -EIO by
 * default (the worker exits with status 1), or by abort() with --abort
 * (killed by SIGABRT). Exits 2 on a usage error, 1 when the pool gives up.
 * The master logs each event it reports (pf_service.on_master_event).
 */

static bool crash;

static int init_fails(pf_worker *w, void *ud)
{
    (void)w, (void)ud;
    if (crash)
        abort();
    return -EIO;
}

static void on_conn(pf_worker *w, int fd, const struct sockaddr *peer,
                    socklen_t len, void *ud)
{
    (void)peer, (void)len, (void)ud;
    pf_worker_close_conn(w, fd);
}

/* The master's events, each a log line the tests count. */
static void on_event(void *ud, const struct pf_event *ev)
{
    (void)ud;
    if (ev->kind == PF_EVENT_WORKER_EXIT)
        pf_log(PF_LOG_INFO, "event: worker %d (pid %d) of generation %u exited, wait status %#x",
               ev->index, (int)ev->pid, ev->generation, (unsigned)ev->status);
    else
        pf_log(PF_LOG_INFO, "event: %s, generation %u",
               ev->kind == PF_EVENT_READY ? "ready" : "reloaded", ev->generation);
}

static int usage_error(const char *what)
{
    fprintf(stderr, "crashy: %s\n", what);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"max-start-failures", required_argument, NULL, 1},
        {"abort", no_argument, NULL, 2},
        {0, 0, 0, 0},
    };
    struct pf_config cfg;
    struct pf_service svc = {.init = init_fails, .on_conn = on_conn, .on_master_event = on_event};
    const char *listen = "127.0.0.1:0", *why;
    int opt;
    pf_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "l:w:", opts, NULL)) != -1) {
        const char *name = opt == 'w' ? "workers" : "max-start-failures";
        if (opt == 'l')
            listen = optarg;
        else if (opt == 2)
            crash = true;
        else if (opt == '?')
            return 2;
        else if (pf_config_set(&cfg, name, optarg, &why) < 0)
            return usage_error(why);
    }
    pf_log_set_level(cfg.log_level);
    pf_pool *pool;
    int err = pf_pool_new(&pool, &cfg, &svc);
    if (err == 0) {
        err = pf_pool_listen(pool, listen);
        if (err == 0)
            err = pf_pool_run(pool);
        pf_pool_free(pool);
    }
    if (err < 0)
        fprintf(stderr, "crashy: %s\n", strerror(-err));
    return err < 0 ? 1 : 0;
}
