/* status.c — `prefork status`: print the scoreboard of a running pool as a table or JSON. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "prefork.h"

static const char *state_name(enum pf_state s)
{
    static const char *const names[] = {"empty", "starting", "idle", "busy", "draining"};
    return (unsigned)s <= PF_STATE_DRAINING ? names[s] : "?";
}

static uint64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void print_table(const struct pf_slot_info *s, int n)
{
    uint64_t now = now_wall_ms();
    printf("%-6s %-8s %-4s %-9s %9s %8s %10s %8s %10s %12s  %s\n", "WORKER", "PID",
           "GEN", "STATE", "UPTIME", "BEAT", "ACCEPTED", "ACTIVE", "REQUESTS",
           "BYTES", "ACTIVITY (FOR)");
    for (int i = 0; i < n; i++) {
        double up = s[i].started_ms && now > s[i].started_ms
                        ? (double)(now - s[i].started_ms) / 1000.0 : 0.0;
        char doing[160] = "";
        if (s[i].activity[0])
            snprintf(doing, sizeof doing, "%s (%.1fs)", s[i].activity,
                     (double)s[i].activity_ms / 1000.0);
        printf("%-6d %-8d %-4u %-9s %8.1fs %7.1fs %10llu %8llu %10llu %12llu  %s\n",
               s[i].index, (int)s[i].pid, s[i].generation, state_name(s[i].state), up,
               (double)s[i].heartbeat_ms / 1000.0, (unsigned long long)s[i].accepted,
               (unsigned long long)s[i].active, (unsigned long long)s[i].requests,
               (unsigned long long)s[i].bytes, doing);
    }
}

/* Activity text comes from clients (a request line): escape it for JSON. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_counts(const char *name, const uint64_t *v, int n)
{
    printf(",\"%s\":[", name);
    for (int i = 0; i < n; i++)
        printf("%s%llu", i ? "," : "", (unsigned long long)v[i]);
    putchar(']');
}

/* The pool's figures: its counters, and each worker index's totals over
 * its life (what the metrics show). */
static void print_json_pool(pf_scoreboard *sb)
{
    struct pf_pool_info p;
    pf_scoreboard_pool(sb, &p);
    printf("\"pool\":{\"master\":%d,\"mode\":\"%s\",\"generation\":%u,\"started_ms\":%llu,"
           "\"stopping\":%s,\"restarts\":{\"crash\":%llu,\"timeout\":%llu,\"recycle\":%llu,"
           "\"reload\":%llu},\"reloads\":%llu,\"reloads_failed\":%llu,\"upgrades\":%llu},",
           (int)p.master, pf_mode_name(p.mode), p.generation, (unsigned long long)p.started_ms,
           p.stopping ? "true" : "false", (unsigned long long)p.restarts[PF_RESTART_CRASH],
           (unsigned long long)p.restarts[PF_RESTART_TIMEOUT],
           (unsigned long long)p.restarts[PF_RESTART_RECYCLE],
           (unsigned long long)p.restarts[PF_RESTART_RELOAD], (unsigned long long)p.reloads,
           (unsigned long long)p.reloads_failed, (unsigned long long)p.upgrades);
    printf("\"totals\":[");
    for (int i = 0, k = 0; i < p.index_hi; i++) {
        struct pf_worker_totals t;
        if (!pf_scoreboard_totals(sb, i, &t))
            continue;
        printf("%s{\"index\":%d,\"live\":%d,\"accepted\":%llu,\"active\":%llu,"
               "\"requests\":%llu,\"bytes\":%llu,\"duration_us\":%llu,\"tls_full\":%llu,"
               "\"tls_resumed\":%llu", k++ ? "," : "", i, t.live,
               (unsigned long long)t.accepted, (unsigned long long)t.active,
               (unsigned long long)t.requests, (unsigned long long)t.bytes,
               (unsigned long long)t.duration_us, (unsigned long long)t.tls_full,
               (unsigned long long)t.tls_resumed);
        json_counts("status_classes", t.status, 5);
        json_counts("duration_buckets", t.hist, PF_DURATION_BUCKETS);
        putchar('}');
    }
    printf("],\"duration_bounds_us\":[");
    for (int i = 0; i < PF_DURATION_BUCKETS - 1; i++)
        printf("%s%llu", i ? "," : "", (unsigned long long)pf_duration_bound_us(i));
    putchar(']');
}

static void print_json(pf_scoreboard *sb, const struct pf_slot_info *s, int n)
{
    printf("{\"workers\":[");
    for (int i = 0; i < n; i++) {
        printf("%s{\"index\":%d,\"pid\":%d,\"generation\":%u,\"state\":\"%s\","
               "\"started_ms\":%llu,\"heartbeat_age_ms\":%llu,\"accepted\":%llu,"
               "\"wakeups\":%llu,\"active\":%llu,\"requests\":%llu,\"bytes\":%llu,"
               "\"activity_ms\":%llu,\"activity\":",
               i ? "," : "", s[i].index, (int)s[i].pid, s[i].generation,
               state_name(s[i].state), (unsigned long long)s[i].started_ms,
               (unsigned long long)s[i].heartbeat_ms, (unsigned long long)s[i].accepted,
               (unsigned long long)s[i].wakeups, (unsigned long long)s[i].active,
               (unsigned long long)s[i].requests, (unsigned long long)s[i].bytes,
               (unsigned long long)s[i].activity_ms);
        json_string(s[i].activity);
        putchar('}');
    }
    printf("],");
    print_json_pool(sb);
    printf("}\n");
}

static int parse_pid(const char *arg, pid_t *pid)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || *end || end == arg || v <= 0 || v > 4194304)
        return -1;
    *pid = (pid_t)v;
    return 0;
}

static const char status_usage[] =
    "usage: prefork status PID | --pidfile FILE [--json] [--watch]\n"
    "The workers of the running pool whose master is PID, one line each: index, pid,\n"
    "generation, state, uptime, heartbeat age, connections accepted and open,\n"
    "requests, bytes, and what each is doing and for how long.\n"
    "\n"
    "      --pidfile FILE   the master's pid from FILE (it follows an upgrade)\n"
    "      --json           one JSON object instead of the table\n"
    "      --watch          print it again every second until the pool is gone\n"
    "  -h, --help\n";

struct status_args {
    const char *pidarg, *pidfile;
    bool json, watch;
};

/* 0, -1 after --help, or a usage error's status. */
static int parse_args(int argc, char **argv, struct status_args *a)
{
    enum { OPT_JSON = 256, OPT_WATCH, OPT_PIDFILE };
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"watch", no_argument, NULL, OPT_WATCH},
        {"pidfile", required_argument, NULL, OPT_PIDFILE},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_JSON:
            a->json = true;
            break;
        case OPT_WATCH:
            a->watch = true;
            break;
        case OPT_PIDFILE:
            a->pidfile = optarg;
            break;
        case 'h':
            fputs(status_usage, stdout);
            return -1;
        case ':':
            return cli_error(CLI_USAGE, "status: option '%s' needs a value", cli_argv_current());
        default:
            return cli_error(CLI_USAGE, "status: unknown option '%s' (see prefork status --help)",
                             cli_argv_current());
        }
    }
    if (optind < argc)
        a->pidarg = argv[optind++];
    if (optind < argc)
        return cli_error(CLI_USAGE, "status: unexpected argument '%s'", argv[optind]);
    if (!a->pidarg == !a->pidfile)
        return cli_error(CLI_USAGE, "status: give the master's PID or --pidfile FILE");
    return 0;
}

/* The master's pid from the command line or its pidfile. */
static int find_master(const struct status_args *a, pid_t *pid)
{
    char text[32] = {0};
    const char *arg = a->pidarg;
    if (a->pidfile) {
        FILE *f = fopen(a->pidfile, "re");
        if (!f)
            return cli_error(CLI_FAIL, "status: %s: %s", a->pidfile, strerror(errno));
        if (!fgets(text, sizeof text, f))
            text[0] = '\0';
        fclose(f);
        text[strcspn(text, "\n")] = '\0';
        arg = text;
    }
    if (parse_pid(arg, pid) < 0)
        return cli_error(a->pidfile ? CLI_FAIL : CLI_USAGE, "status: '%s' is not a process id",
                         arg);
    return 0;
}

/* One look at the scoreboard, printed; a master that went away meanwhile
 * (an upgrade) is looked up again in the pidfile. */
static int show(const struct status_args *a)
{
    pid_t pid = 0;
    int status = find_master(a, &pid);
    if (status)
        return status;
    pf_scoreboard *sb;
    int err = pf_scoreboard_open(pid, &sb);
    if (err == -ENOENT)
        return cli_error(CLI_FAIL, "status: process %d is not a prefork master", (int)pid);
    if (err < 0)
        return cli_error(CLI_FAIL, "status: process %d: %s", (int)pid, strerror(-err));
    static struct pf_slot_info slots[2 * PF_MAX_WORKERS];
    int n = pf_scoreboard_read(sb, slots, (int)(sizeof slots / sizeof slots[0]));
    if (a->watch && !a->json)
        printf("\033[H\033[2Jprefork master %d, %d worker process%s\n\n", (int)pid, n,
               n == 1 ? "" : "es");
    if (a->json)
        print_json(sb, slots, n);
    else
        print_table(slots, n);
    pf_scoreboard_close(sb);
    fflush(stdout);
    return CLI_OK;
}

int cli_status(int argc, char **argv)
{
    struct status_args a = {0};
    int status = parse_args(argc, argv, &a);
    if (status)
        return status < 0 ? CLI_OK : status;
    if (!a.watch)
        return show(&a);
    /* --watch: once a second until interrupted, or until the pool is gone. */
    while ((status = show(&a)) == CLI_OK)
        sleep(1);
    return status;
}
