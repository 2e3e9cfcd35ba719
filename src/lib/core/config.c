/* config.c — pool options: defaults, validation, and setting them from command-line text. */
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/core/internal.h"

/* Online CPUs this process may run on: the affinity mask, which taskset and
 * cgroup cpusets narrow, rather than every CPU of the machine. */
static int default_workers(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    return n > PF_MAX_WORKERS ? PF_MAX_WORKERS : n;
}

void pf_config_init(struct pf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = default_workers();
    cfg->mode = PF_MODE_SHARED;
    cfg->backlog = 0;
    cfg->max_conns = 10000;
    cfg->accept_batch = 16;
    cfg->graceful_timeout_ms = 60000;
    cfg->max_start_failures = 5;
    cfg->min_uptime_ms = 1000;
    cfg->backoff_max_ms = 30000;
    cfg->log_level = PF_LOG_INFO;
    cfg->hung_grace_ms = 5000;
    cfg->ready_timeout_ms = 60000;
    cfg->max_generations = 3;
    cfg->stop_signal = SIGTERM;
    pf_cidr_parse("127.0.0.1", &cfg->proxy_allow[0], NULL);
    pf_cidr_parse("::1", &cfg->proxy_allow[1], NULL);
    cfg->nproxy_allow = 2;
    cfg->proxy_timeout_ms = 10000;
}

/* "10.0.0.0/8,::1,unix", or "*": every source (IPv4, IPv6, Unix). */
static int set_proxy_allow(struct pf_config *cfg, const char *value, const char **why)
{
    struct pf_cidr list[PF_MAX_PROXY_ALLOW];
    int n = pf_cidr_parse_list(value, list, PF_MAX_PROXY_ALLOW, why);
    if (n < 0)
        return n;
    memcpy(cfg->proxy_allow, list, (size_t)n * sizeof list[0]);
    cfg->nproxy_allow = n;
    return 0;
}

int pf_config_check(const struct pf_config *cfg, const char **why)
{
    const char *bad = NULL;
    if (cfg->workers < 1 || cfg->workers > PF_MAX_WORKERS)
        bad = "workers must be from 1 to 1024";
    else if (cfg->mode > PF_MODE_DISPATCH)
        bad = "unknown mode";
    else if (cfg->backlog > 65535)
        bad = "backlog must be at most 65535";
    else if (cfg->max_conns < 1 || cfg->max_conns > PF_MAX_CONNS)
        bad = "max-conns must be from 1 to 1000000";
    else if (cfg->accept_batch < 1 || cfg->accept_batch > 1024)
        bad = "accept-batch must be from 1 to 1024";
    else if (cfg->max_start_failures < 1 || cfg->max_start_failures > 1000)
        bad = "max-start-failures must be from 1 to 1000";
    else if (cfg->graceful_timeout_ms > 86400000u)
        bad = "graceful-timeout must be at most 86400 s";
    else if (cfg->min_uptime_ms > 3600000u)
        bad = "min-uptime must be at most 3600 s";
    else if ((unsigned)cfg->log_level > PF_LOG_DEBUG)
        bad = "unknown log level";
    else if (cfg->max_requests > 1000000000u || cfg->max_requests_jitter > 1000000000u)
        bad = "max-requests and its jitter must be at most 10^9";
    else if (cfg->timeout_ms > 86400000u || cfg->pre_stop_delay_ms > 3600000u)
        bad = "timeout is at most 86400 s, pre-stop-delay at most 3600 s";
    else if (cfg->ready_timeout_ms < 1000 || cfg->ready_timeout_ms > 86400000u)
        bad = "ready-timeout must be from 1 to 86400 s";
    else if (cfg->max_generations < 2 || cfg->max_generations > 16)
        bad = "max-generations must be from 2 to 16";
    else if (cfg->stop_signal < 1 || cfg->stop_signal >= SIGRTMIN || cfg->stop_signal == SIGKILL ||
             cfg->stop_signal == SIGSTOP)
        bad = "stop-signal must be a signal a program can catch";
    else if (cfg->backoff_max_ms < 100)
        bad = "back-off cap must be at least 100 ms";
    else if (cfg->cpu_affinity && pf__cpus_usable(cfg, NULL) <= 0)
        bad = "cpu-affinity names no CPU this process may run on";
    if (bad && why)
        *why = bad;
    return bad ? -EINVAL : 0;
}

const char *pf_mode_name(enum pf_mode mode)
{
    static const char *const names[] = {"shared", "reuseport", "dispatch"};
    return mode <= PF_MODE_DISPATCH ? names[mode] : "unknown";
}

/* A whole decimal number in [lo, hi]: digits only, no sign, no spaces. */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    long v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (LONG_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (*s - '0');
    }
    if (v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Seconds with up to three decimals ("2", "0.5") into milliseconds. */
static int parse_seconds(const char *s, long max_s, unsigned *ms)
{
    char whole[16];
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    long secs, frac = 0;
    if (n == 0 || n >= sizeof whole)
        return -EINVAL;
    memcpy(whole, s, n);
    whole[n] = '\0';
    if (parse_int(whole, 0, max_s, &secs) < 0)
        return -EINVAL;
    if (dot) {
        size_t d = strlen(dot + 1);
        if (d < 1 || d > 3 || parse_int(dot + 1, 0, 999, &frac) < 0)
            return -EINVAL;
        for (; d < 3; d++)
            frac *= 10;
    }
    if (secs == max_s && frac > 0)
        return -EINVAL;
    *ms = (unsigned)(secs * 1000 + frac);
    return 0;
}

struct int_option {
    const char *name;
    long lo, hi;
    size_t offset;
    const char *why;
};

#define INT_OPT(n, lo, hi, field, why)                                         \
    {n, lo, hi, offsetof(struct pf_config, field), why}

static const struct int_option int_options[] = {
    INT_OPT("workers", 1, PF_MAX_WORKERS, workers,
            "must be a whole number from 1 to 1024"),
    INT_OPT("backlog", 1, 65535, backlog,
            "must be a whole number from 1 to 65535"),
    INT_OPT("max-conns", 1, PF_MAX_CONNS, max_conns,
            "must be a whole number from 1 to 1000000"),
};

static int set_mode(struct pf_config *cfg, const char *value, const char **why)
{
    for (int m = PF_MODE_SHARED; m <= PF_MODE_DISPATCH; m++)
        if (strcmp(value, pf_mode_name((enum pf_mode)m)) == 0) {
            cfg->mode = (enum pf_mode)m;
            return 0;
        }
    *why = "must be shared, reuseport or dispatch";
    return -EINVAL;
}

static int set_unsigned(unsigned *field, const char *value, long lo, long hi,
                        const char **why, const char *reason)
{
    long v;
    if (parse_int(value, lo, hi, &v) < 0) {
        *why = reason;
        return -EINVAL;
    }
    *field = (unsigned)v;
    return 0;
}

static int set_seconds(unsigned *field, const char *value, long max,
                       const char **why, const char *reason)
{
    if (parse_seconds(value, max, field) < 0) {
        *why = reason;
        return -EINVAL;
    }
    return 0;
}

/* "TERM", "SIGTERM" or a number; not KILL or STOP, which cannot be caught. */
static int parse_signal(const char *value)
{
    long n;
    if (parse_int(value, 1, SIGRTMIN - 1, &n) == 0)
        return n == SIGKILL || n == SIGSTOP ? -1 : (int)n;
    if (strncmp(value, "SIG", 3) == 0)
        value += 3;
    for (int sig = 1; sig < SIGRTMIN; sig++) {
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev && strcmp(abbrev, value) == 0 && sig != SIGKILL && sig != SIGSTOP)
            return sig;
    }
    return -1;
}

/* off, auto (every CPU this process may use) or a list such as 0-3,6. */
static int set_affinity(struct pf_config *cfg, const char *value, const char **why)
{
    struct pf_config c = *cfg;
    memset(c.cpu_list, 0, sizeof c.cpu_list);
    c.cpu_affinity = strcmp(value, "off") != 0;
    if (c.cpu_affinity && strcmp(value, "auto") != 0 && pf__cpus_parse(value, c.cpu_list) < 0) {
        *why = "must be off, auto or a CPU list such as 0-3,6 (CPUs 0 to 1023)";
        return -EINVAL;
    }
    if (c.cpu_affinity && pf__cpus_usable(&c, NULL) <= 0) {
        *why = "names no CPU this process may run on (see taskset -p)";
        return -EINVAL;
    }
    *cfg = c;
    return 0;
}

static int set_program(struct pf_config *cfg, const char *name, const char *value,
                       const char **why)
{
    if (strcmp(name, "stop-signal") == 0) {
        int sig = parse_signal(value);
        if (sig < 0) {
            *why = "must be a signal name such as TERM, INT or QUIT, or its number";
            return -EINVAL;
        }
        cfg->stop_signal = sig;
        return 0;
    }
    if (strcmp(name, "ready-delay") == 0)
        return set_seconds(&cfg->ready_delay_ms, value, 3600, why,
                           "must be seconds from 0 to 3600");
    if (strcmp(name, "max-lifetime") == 0)
        return set_seconds(&cfg->max_lifetime_ms, value, 1000000, why,
                           "must be seconds from 0 (off) to 1000000");
    if (strcmp(name, "max-lifetime-jitter") == 0)
        return set_seconds(&cfg->max_lifetime_jitter_ms, value, 1000000, why,
                           "must be seconds from 0 to 1000000");
    return -ENOENT;
}

static int set_lifecycle(struct pf_config *cfg, const char *name, const char *value,
                         const char **why)
{
    if (strcmp(name, "max-requests") == 0)
        return set_unsigned(&cfg->max_requests, value, 0, 1000000000, why,
                            "must be a whole number from 0 (off) to 10^9");
    if (strcmp(name, "max-requests-jitter") == 0)
        return set_unsigned(&cfg->max_requests_jitter, value, 0, 1000000000, why,
                            "must be a whole number from 0 to 10^9");
    if (strcmp(name, "timeout") == 0)
        return set_seconds(&cfg->timeout_ms, value, 86400, why,
                           "must be seconds from 0 (off) to 86400");
    if (strcmp(name, "ready-timeout") == 0) {
        unsigned ms;
        if (parse_seconds(value, 86400, &ms) < 0 || ms < 1000) {
            *why = "must be seconds from 1 to 86400";
            return -EINVAL;
        }
        cfg->ready_timeout_ms = ms;
        return 0;
    }
    if (strcmp(name, "proxy-allow-from") == 0)
        return set_proxy_allow(cfg, value, why);
    if (strcmp(name, "metrics-listen") == 0) {
        struct pf_addr a;
        if (strlen(value) >= sizeof cfg->metrics_listen) {
            *why = "address too long";
            return -EINVAL;
        }
        if (pf_addr_parse(value, &a, why) < 0)
            return -EINVAL;
        if (a.kind == PF_ADDR_FD) {
            *why = "expected HOST:PORT or unix:PATH";
            return -EINVAL;
        }
        strcpy(cfg->metrics_listen, value);
        return 0;
    }
    if (strcmp(name, "pre-stop-delay") == 0)
        return set_seconds(&cfg->pre_stop_delay_ms, value, 3600, why,
                           "must be seconds from 0 to 3600");
    if (strcmp(name, "max-generations") == 0)
        return set_unsigned(&cfg->max_generations, value, 2, 16, why,
                            "must be a whole number from 2 to 16");
    return set_program(cfg, name, value, why);
}

/* gunicorn's and syslog's names too: warning for warn, critical for error. */
static int set_log_level(struct pf_config *cfg, const char *value, const char **why)
{
    static const struct {
        const char *name;
        enum pf_log_level level;
    } levels[] = {{"error", PF_LOG_ERROR}, {"critical", PF_LOG_ERROR}, {"warn", PF_LOG_WARN},
                  {"warning", PF_LOG_WARN}, {"info", PF_LOG_INFO}, {"debug", PF_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(value, levels[i].name) == 0) {
            cfg->log_level = levels[i].level;
            return 0;
        }
    *why = "must be error, warning, info or debug";
    return -EINVAL;
}

int pf_config_set(struct pf_config *cfg, const char *name, const char *value,
                  const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    for (size_t i = 0; i < sizeof int_options / sizeof int_options[0]; i++) {
        const struct int_option *o = &int_options[i];
        long v;
        if (strcmp(name, o->name) != 0)
            continue;
        if (parse_int(value, o->lo, o->hi, &v) < 0) {
            *why = o->why;
            return -EINVAL;
        }
        *(int *)((char *)cfg + o->offset) = (int)v;
        return 0;
    }
    if (strcmp(name, "mode") == 0)
        return set_mode(cfg, value, why);
    if (strcmp(name, "cpu-affinity") == 0)
        return set_affinity(cfg, value, why);
    if (strcmp(name, "accept-batch") == 0)
        return set_unsigned(&cfg->accept_batch, value, 1, 1024, why,
                            "must be a whole number from 1 to 1024");
    if (strcmp(name, "max-start-failures") == 0)
        return set_unsigned(&cfg->max_start_failures, value, 1, 1000, why,
                            "must be a whole number from 1 to 1000");
    if (strcmp(name, "graceful-timeout") == 0)
        return set_seconds(&cfg->graceful_timeout_ms, value, 86400, why,
                           "must be seconds from 0 to 86400 (e.g. 30 or 2.5)");
    if (strcmp(name, "min-uptime") == 0)
        return set_seconds(&cfg->min_uptime_ms, value, 3600, why,
                           "must be seconds from 0 to 3600 (e.g. 1 or 0.5)");
    if (strcmp(name, "log-level") == 0)
        return set_log_level(cfg, value, why);
    return set_lifecycle(cfg, name, value, why);
}
