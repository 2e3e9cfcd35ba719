/* test_config.c — tests of pool options: defaults, pf_config_check, pf_config_set and pf_mode_name. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "prefork.h"

static int affinity_cpus(void)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

Test(config, defaults, .timeout = 10)
{
    struct pf_config c;
    memset(&c, 0xa5, sizeof c);
    pf_config_init(&c);
    int cpus = affinity_cpus();
    cr_assert_eq(c.workers, cpus > PF_MAX_WORKERS ? PF_MAX_WORKERS : cpus);
    cr_assert_eq(c.mode, PF_MODE_SHARED);
    cr_assert_leq(c.backlog, 0, "default backlog means net.core.somaxconn");
    cr_assert_eq(c.max_conns, 10000);
    cr_assert_eq(c.accept_batch, 16u);
    cr_assert_eq(c.graceful_timeout_ms, 60000u);
    cr_assert_eq(c.max_start_failures, 5u);
    cr_assert_eq(c.min_uptime_ms, 1000u);
    cr_assert_eq(c.backoff_max_ms, 30000u);
    cr_assert_eq(c.log_level, PF_LOG_INFO);
    const char *why = NULL;
    cr_assert_eq(pf_config_check(&c, &why), 0, "defaults rejected: %s", why ? why : "?");
    cr_assert_eq(pf_config_check(&c, NULL), 0);
}

/* The default follows the CPUs this process may use (taskset, cpusets),
 * not every CPU of the machine. Each test runs in its own process, so
 * narrowing the affinity here touches nothing else. */
Test(config, default_workers_follow_cpu_affinity, .timeout = 10)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int first = -1;
    for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
        if (CPU_ISSET(i, &set))
            first = i;
    cr_assert_geq(first, 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    struct pf_config c;
    pf_config_init(&c);
    cr_assert_eq(c.workers, 1);
}

/* ---- pf_config_set: a table of good and bad values for every name ---- */

enum field { F_WORKERS, F_MODE, F_BACKLOG, F_MAXCONNS, F_BATCH, F_GRACE, F_UPTIME, F_FAILS,
             F_LEVEL };

static long field_value(const struct pf_config *c, enum field f)
{
    switch (f) {
    case F_WORKERS: return c->workers;
    case F_MODE: return (long)c->mode;
    case F_BACKLOG: return c->backlog;
    case F_MAXCONNS: return c->max_conns;
    case F_BATCH: return (long)c->accept_batch;
    case F_GRACE: return (long)c->graceful_timeout_ms;
    case F_UPTIME: return (long)c->min_uptime_ms;
    case F_FAILS: return (long)c->max_start_failures;
    case F_LEVEL: return (long)c->log_level;
    }
    return -1;
}

struct good {
    const char *name, *value;
    enum field field;
    long want;
};

static const struct good goods[] = {
    {"workers", "1", F_WORKERS, 1},
    {"workers", "1024", F_WORKERS, 1024},
    {"workers", "7", F_WORKERS, 7},
    {"mode", "shared", F_MODE, PF_MODE_SHARED},
    {"mode", "reuseport", F_MODE, PF_MODE_REUSEPORT},
    {"mode", "dispatch", F_MODE, PF_MODE_DISPATCH},
    {"backlog", "1", F_BACKLOG, 1},
    {"backlog", "511", F_BACKLOG, 511},
    {"backlog", "65535", F_BACKLOG, 65535},
    {"max-conns", "1", F_MAXCONNS, 1},
    {"max-conns", "1000000", F_MAXCONNS, 1000000},
    {"accept-batch", "1", F_BATCH, 1},
    {"accept-batch", "1024", F_BATCH, 1024},
    {"graceful-timeout", "0", F_GRACE, 0},
    {"graceful-timeout", "2.5", F_GRACE, 2500},
    {"graceful-timeout", "30", F_GRACE, 30000},
    {"graceful-timeout", "86400", F_GRACE, 86400000},
    {"graceful-timeout", "86400.0", F_GRACE, 86400000},
    {"graceful-timeout", "0.001", F_GRACE, 1},
    {"graceful-timeout", "1.05", F_GRACE, 1050},
    {"graceful-timeout", "2.50", F_GRACE, 2500},
    {"graceful-timeout", "0.999", F_GRACE, 999},
    {"min-uptime", "0", F_UPTIME, 0},
    {"min-uptime", "0.5", F_UPTIME, 500},
    {"min-uptime", "1", F_UPTIME, 1000},
    {"min-uptime", "3600", F_UPTIME, 3600000},
    {"max-start-failures", "1", F_FAILS, 1},
    {"max-start-failures", "1000", F_FAILS, 1000},
    {"log-level", "error", F_LEVEL, PF_LOG_ERROR},
    {"log-level", "critical", F_LEVEL, PF_LOG_ERROR},
    {"log-level", "warning", F_LEVEL, PF_LOG_WARN},
    {"log-level", "warn", F_LEVEL, PF_LOG_WARN},
    {"log-level", "info", F_LEVEL, PF_LOG_INFO},
    {"log-level", "debug", F_LEVEL, PF_LOG_DEBUG},
};

Test(config, set_accepts_good_values, .timeout = 10)
{
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const struct good *g = &goods[i];
        struct pf_config c;
        pf_config_init(&c);
        const char *why = NULL;
        int r = pf_config_set(&c, g->name, g->value, &why);
        cr_assert_eq(r, 0, "%s \"%s\": %d (%s)", g->name, g->value, r, why ? why : "-");
        cr_assert_eq(field_value(&c, g->field), g->want, "%s \"%s\": got %ld, want %ld",
                     g->name, g->value, field_value(&c, g->field), g->want);
        cr_assert_eq(pf_config_check(&c, &why), 0, "%s \"%s\" then check: %s", g->name,
                     g->value, why);
    }
}

struct bad {
    const char *name, *value;
    enum field field;
};

static const struct bad bads[] = {
    {"workers", "0", F_WORKERS},
    {"workers", "-1", F_WORKERS},
    {"workers", "1025", F_WORKERS},
    {"workers", "100000", F_WORKERS},
    {"workers", "abc", F_WORKERS},
    {"workers", "", F_WORKERS},
    {"workers", "4x", F_WORKERS},
    {"workers", " 4", F_WORKERS},
    {"workers", "4 ", F_WORKERS},
    {"workers", "+4", F_WORKERS},
    {"workers", "0x10", F_WORKERS},
    {"workers", "4.0", F_WORKERS},
    {"workers", "99999999999999999999999", F_WORKERS},
    {"workers", "4294967297", F_WORKERS}, /* 2^32 + 1: wraps to 1 as a 32-bit int */
    {"mode", "", F_MODE},
    {"mode", "Shared", F_MODE},
    {"mode", "shared ", F_MODE},
    {"mode", "share", F_MODE},
    {"mode", "sharedx", F_MODE},
    {"mode", "0", F_MODE},
    {"backlog", "0", F_BACKLOG},
    {"backlog", "-1", F_BACKLOG},
    {"backlog", "65536", F_BACKLOG},
    {"backlog", "", F_BACKLOG},
    {"backlog", "1k", F_BACKLOG},
    {"max-conns", "0", F_MAXCONNS},
    {"max-conns", "1000001", F_MAXCONNS},
    {"max-conns", "-5", F_MAXCONNS},
    {"max-conns", "ten", F_MAXCONNS},
    {"accept-batch", "0", F_BATCH},
    {"accept-batch", "1025", F_BATCH},
    {"accept-batch", "-1", F_BATCH},
    {"accept-batch", "", F_BATCH},
    {"graceful-timeout", "86400.5", F_GRACE},
    {"graceful-timeout", "86400.001", F_GRACE},
    {"graceful-timeout", "86401", F_GRACE},
    {"graceful-timeout", "2.5555", F_GRACE},
    {"graceful-timeout", "-1", F_GRACE},
    {"graceful-timeout", ".5", F_GRACE},
    {"graceful-timeout", "5.", F_GRACE},
    {"graceful-timeout", "abc", F_GRACE},
    {"graceful-timeout", "", F_GRACE},
    {"graceful-timeout", ".", F_GRACE},
    {"graceful-timeout", "1..5", F_GRACE},
    {"graceful-timeout", "1.-5", F_GRACE},
    {"graceful-timeout", "1.5s", F_GRACE},
    {"graceful-timeout", "1e3", F_GRACE},
    {"graceful-timeout", " 1", F_GRACE},
    {"graceful-timeout", "99999999999999999999", F_GRACE},
    {"min-uptime", "3601", F_UPTIME},
    {"min-uptime", "3600.001", F_UPTIME},
    {"min-uptime", "-0.5", F_UPTIME},
    {"min-uptime", "0.0001", F_UPTIME},
    {"min-uptime", "", F_UPTIME},
    {"max-start-failures", "0", F_FAILS},
    {"max-start-failures", "1001", F_FAILS},
    {"max-start-failures", "-1", F_FAILS},
    {"max-start-failures", "many", F_FAILS},
    {"log-level", "", F_LEVEL},
    {"log-level", "DEBUG", F_LEVEL},
    {"log-level", "trace", F_LEVEL},
    {"log-level", "3", F_LEVEL},
};

Test(config, set_rejects_bad_values_and_changes_nothing, .timeout = 10)
{
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        struct pf_config c, before;
        pf_config_init(&c);
        memcpy(&before, &c, sizeof c);
        const char *why = NULL;
        int r = pf_config_set(&c, b->name, b->value, &why);
        cr_assert_eq(r, -EINVAL, "%s \"%s\": got %d, want -EINVAL", b->name, b->value, r);
        cr_assert_not_null(why, "%s \"%s\": no reason", b->name, b->value);
        cr_assert_gt(strlen(why), 0);
        cr_assert_null(strchr(why, '\n'), "a reason is one line");
        cr_assert_eq(field_value(&c, b->field), field_value(&before, b->field),
                     "%s \"%s\" changed the field to %ld", b->name, b->value,
                     field_value(&c, b->field));
        cr_assert_eq(memcmp(&c, &before, sizeof c), 0, "%s \"%s\" changed the config",
                     b->name, b->value);
    }
}

Test(config, set_reasons_name_the_range, .timeout = 10)
{
    struct pf_config c;
    pf_config_init(&c);
    const char *why = NULL;
    cr_assert_eq(pf_config_set(&c, "workers", "0", &why), -EINVAL);
    cr_assert_str_eq(why, "must be a whole number from 1 to 1024");
    why = NULL;
    cr_assert_eq(pf_config_set(&c, "mode", "fast", &why), -EINVAL);
    cr_assert_not_null(strstr(why, "reuseport"), "%s", why);
}

Test(config, set_without_a_why_pointer, .timeout = 10)
{
    struct pf_config c;
    pf_config_init(&c);
    cr_assert_eq(pf_config_set(&c, "workers", "0", NULL), -EINVAL);
    cr_assert_eq(pf_config_set(&c, "mode", "nope", NULL), -EINVAL);
    cr_assert_eq(pf_config_set(&c, "graceful-timeout", "x", NULL), -EINVAL);
    cr_assert_eq(pf_config_set(&c, "accept-batch", "0", NULL), -EINVAL);
    cr_assert_eq(pf_config_set(&c, "nope", "1", NULL), -ENOENT);
    cr_assert_eq(pf_config_set(&c, "workers", "3", NULL), 0);
    cr_assert_eq(c.workers, 3);
}

Test(config, set_unknown_name_is_enoent, .timeout = 10)
{
    static const char *const names[] = {"worker", "Workers", "", "workers ", "loglevel",
                                        "name", "graceful_timeout", "backoff-max", "-workers",
                                        "--workers"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct pf_config c, before;
        pf_config_init(&c);
        memcpy(&before, &c, sizeof c);
        const char *why = NULL;
        cr_assert_eq(pf_config_set(&c, names[i], "1", &why), -ENOENT, "\"%s\"", names[i]);
        cr_assert_eq(memcmp(&c, &before, sizeof c), 0);
    }
}

Test(config, set_twice_keeps_the_last, .timeout = 10)
{
    struct pf_config c;
    pf_config_init(&c);
    cr_assert_eq(pf_config_set(&c, "workers", "3", NULL), 0);
    cr_assert_eq(pf_config_set(&c, "workers", "9", NULL), 0);
    cr_assert_eq(c.workers, 9);
    cr_assert_eq(pf_config_set(&c, "mode", "dispatch", NULL), 0);
    cr_assert_eq(pf_config_set(&c, "mode", "shared", NULL), 0);
    cr_assert_eq(c.mode, PF_MODE_SHARED);
    cr_assert_eq(pf_config_set(&c, "workers", "0", NULL), -EINVAL);
    cr_assert_eq(c.workers, 9);
}

/* ---- pf_config_check on fields set directly ---- */

struct direct {
    const char *what;
    void (*apply)(struct pf_config *c);
};

static void workers_0(struct pf_config *c) { c->workers = 0; }
static void workers_neg(struct pf_config *c) { c->workers = -3; }
static void workers_1025(struct pf_config *c) { c->workers = PF_MAX_WORKERS + 1; }
static void mode_3(struct pf_config *c) { c->mode = (enum pf_mode)3; }
static void mode_big(struct pf_config *c) { c->mode = (enum pf_mode)1000; }
static void backlog_65536(struct pf_config *c) { c->backlog = 65536; }
static void max_conns_0(struct pf_config *c) { c->max_conns = 0; }
static void max_conns_neg(struct pf_config *c) { c->max_conns = -1; }
static void max_conns_big(struct pf_config *c) { c->max_conns = PF_MAX_CONNS + 1; }
static void batch_0(struct pf_config *c) { c->accept_batch = 0; }
static void batch_1025(struct pf_config *c) { c->accept_batch = 1025; }
static void fails_0(struct pf_config *c) { c->max_start_failures = 0; }
static void backoff_99(struct pf_config *c) { c->backoff_max_ms = 99; }

static const struct direct out_of_range[] = {
    {"workers 0", workers_0},
    {"workers -3", workers_neg},
    {"workers 1025", workers_1025},
    {"mode 3", mode_3},
    {"mode 1000", mode_big},
    {"backlog 65536", backlog_65536},
    {"max_conns 0", max_conns_0},
    {"max_conns -1", max_conns_neg},
    {"max_conns 1000001", max_conns_big},
    {"accept_batch 0", batch_0},
    {"accept_batch 1025", batch_1025},
    {"max_start_failures 0", fails_0},
    {"backoff_max_ms 99", backoff_99},
};

Test(config, check_catches_out_of_range_fields, .timeout = 10)
{
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        struct pf_config c;
        pf_config_init(&c);
        out_of_range[i].apply(&c);
        const char *why = NULL;
        cr_assert_eq(pf_config_check(&c, &why), -EINVAL, "%s accepted", out_of_range[i].what);
        cr_assert_not_null(why, "%s: no reason", out_of_range[i].what);
        cr_assert_gt(strlen(why), 0);
        cr_assert_eq(pf_config_check(&c, NULL), -EINVAL);
    }
}

static void edge_values(struct pf_config *c)
{
    c->workers = PF_MAX_WORKERS;
    c->mode = PF_MODE_DISPATCH;
    c->backlog = 65535;
    c->max_conns = PF_MAX_CONNS;
    c->accept_batch = 1024;
    c->max_start_failures = 1;
    c->backoff_max_ms = 100;
    c->graceful_timeout_ms = 0;
    c->min_uptime_ms = 0;
}

Test(config, check_accepts_the_edges, .timeout = 10)
{
    struct pf_config c;
    pf_config_init(&c);
    edge_values(&c);
    const char *why = NULL;
    cr_assert_eq(pf_config_check(&c, &why), 0, "%s", why ? why : "-");
    c.workers = 1;
    c.backlog = -1; /* <= 0: the kernel's somaxconn */
    c.max_conns = 1;
    c.accept_batch = 1;
    cr_assert_eq(pf_config_check(&c, &why), 0, "%s", why ? why : "-");
}

/* pf_config_set refuses these values as out of range, yet pf_config_check
 * lets them through when they are set directly. Disabled: whether check
 * should enforce set's ranges is for the lead to decide (see the report). */
static void fails_1001(struct pf_config *c) { c->max_start_failures = 1001; }
static void grace_big(struct pf_config *c) { c->graceful_timeout_ms = 86400u * 1000u + 1u; }
static void uptime_big(struct pf_config *c) { c->min_uptime_ms = 3600u * 1000u + 1u; }
static void level_big(struct pf_config *c) { c->log_level = (enum pf_log_level)9; }
static const struct direct set_ranges[] = {
    {"max_start_failures 1001", fails_1001},
    {"graceful_timeout_ms 86400001", grace_big},
    {"min_uptime_ms 3600001", uptime_big},
    {"log_level 9", level_big},
};

Test(config, check_agrees_with_set_ranges, .timeout = 10)
{
    for (size_t i = 0; i < sizeof set_ranges / sizeof set_ranges[0]; i++) {
        struct pf_config c;
        pf_config_init(&c);
        set_ranges[i].apply(&c);
        const char *why = NULL;
        cr_expect_eq(pf_config_check(&c, &why), -EINVAL, "%s accepted", set_ranges[i].what);
    }
}

Test(config, mode_names, .timeout = 10)
{
    cr_assert_str_eq(pf_mode_name(PF_MODE_SHARED), "shared");
    cr_assert_str_eq(pf_mode_name(PF_MODE_REUSEPORT), "reuseport");
    cr_assert_str_eq(pf_mode_name(PF_MODE_DISPATCH), "dispatch");
    cr_assert_not_null(pf_mode_name((enum pf_mode)7));
    /* Every name round-trips through pf_config_set. */
    for (int m = PF_MODE_SHARED; m <= PF_MODE_DISPATCH; m++) {
        struct pf_config c;
        pf_config_init(&c);
        cr_assert_eq(pf_config_set(&c, "mode", pf_mode_name((enum pf_mode)m), NULL), 0);
        cr_assert_eq((int)c.mode, m);
    }
}

/* ---- cpu-affinity: off, auto or a CPU list ---- */

static bool cpu_listed(const struct pf_config *c, int cpu)
{
    return c->cpu_list[cpu / 64] >> (cpu % 64) & 1;
}

static int listed_count(const struct pf_config *c)
{
    int n = 0;
    for (int cpu = 0; cpu < PF_MAX_CPUS; cpu++)
        n += cpu_listed(c, cpu);
    return n;
}

/* The first CPU this process may run on: every list below names it, so
 * that the tests pass under taskset or a cpuset too. */
static int first_cpu(void)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set))
            return i;
    cr_assert_fail("no CPU in the affinity mask");
    return -1;
}

Test(config, cpu_affinity_is_off_by_default_and_takes_auto_and_off, .timeout = 10)
{
    struct pf_config c;
    pf_config_init(&c);
    cr_assert(!c.cpu_affinity);
    cr_assert_eq(listed_count(&c), 0);
    cr_assert_eq(pf_config_set(&c, "cpu-affinity", "auto", NULL), 0);
    cr_assert(c.cpu_affinity);
    cr_assert_eq(listed_count(&c), 0, "auto is every usable CPU: an empty list");
    cr_assert_eq(pf_config_check(&c, NULL), 0);
    cr_assert_eq(pf_config_set(&c, "cpu-affinity", "off", NULL), 0);
    cr_assert(!c.cpu_affinity);
}

Test(config, cpu_affinity_lists_parse_like_taskset, .timeout = 10)
{
    char text[64];
    int f = first_cpu();
    struct pf_config c;
    pf_config_init(&c);
    snprintf(text, sizeof text, "%d", f);
    cr_assert_eq(pf_config_set(&c, "cpu-affinity", text, NULL), 0);
    cr_assert(c.cpu_affinity);
    cr_assert_eq(listed_count(&c), 1);
    cr_assert(cpu_listed(&c, f));
    snprintf(text, sizeof text, "%d,1000-1023,70,64-65", f);
    cr_assert_eq(pf_config_set(&c, "cpu-affinity", text, NULL), 0);
    cr_assert_eq(listed_count(&c), f == 64 || f == 65 || f == 70 || f >= 1000 ? 27 : 28);
    cr_assert(cpu_listed(&c, f) && cpu_listed(&c, 1000) && cpu_listed(&c, 1023));
    cr_assert(cpu_listed(&c, 64) && cpu_listed(&c, 65) && cpu_listed(&c, 70));
    cr_assert(!cpu_listed(&c, 999) && !cpu_listed(&c, 66));
    /* Setting again replaces the list; it does not add to it. */
    snprintf(text, sizeof text, "%d-%d", f, f);
    cr_assert_eq(pf_config_set(&c, "cpu-affinity", text, NULL), 0);
    cr_assert_eq(listed_count(&c), 1);
    cr_assert_eq(pf_config_check(&c, NULL), 0);
}

Test(config, cpu_affinity_rejects_bad_lists_and_changes_nothing, .timeout = 10)
{
    static const char *const bad[] = {
        "", "on", "Auto", "1-", "-1", "3-1", "1,", ",1", "1,,2", "1 ", " 1", "0x1",
        "1024", "0-1024", "99999999999", "1.5", "a-b", "1--2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pf_config c;
        pf_config_init(&c);
        const char *why = NULL;
        cr_assert_eq(pf_config_set(&c, "cpu-affinity", bad[i], &why), -EINVAL, "\"%s\"", bad[i]);
        cr_assert_not_null(why);
        cr_assert(!c.cpu_affinity, "\"%s\" changed the config", bad[i]);
    }
}

/* A list of only CPUs this process may not run on could never pin
 * anything: refused by set and by check alike. */
Test(config, cpu_affinity_refuses_a_list_with_no_usable_cpu, .timeout = 10)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first_cpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    int other = first_cpu() == 0 ? 1023 : 0;
    char text[16];
    snprintf(text, sizeof text, "%d", other);
    struct pf_config c;
    pf_config_init(&c);
    const char *why = NULL;
    cr_assert_eq(pf_config_set(&c, "cpu-affinity", text, &why), -EINVAL);
    cr_assert(strstr(why, "no CPU"), "why: %s", why);
    c.cpu_affinity = true;
    c.cpu_list[other / 64] = (uint64_t)1 << (other % 64);
    cr_assert_eq(pf_config_check(&c, &why), -EINVAL);
    cr_assert(strstr(why, "no CPU"), "why: %s", why);
}
