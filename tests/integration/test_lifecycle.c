/* test_lifecycle.c — the master's lifecycle on the real programs: HUP, USR2, TTIN/TTOU, recycling, hung workers, USR1, --user, pre-stop delay, status. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#define PREFORK "prefork"
#define HANG "tests/helpers/hang"
#define START_MS 20000 /* generous: a slow machine under ASan */
#define IO_MS 10000
#define STEP_MS 20000  /* one step of a lifecycle: a reload, an upgrade, a drain */
#define RUN_MS 20000   /* a `prefork status` run */
#define TIMEOUT 120    /* every Test: one value per program (Criterion 2.4 under ASan) */

#define SMALL_LEN 1000
#define LOAD_TOTAL 3000  /* requests of a load run, each on a new connection */
#define LOAD_THREADS 4
#define KA_CLIENTS 16    /* keep-alive clients during reloads */
#define MAX_WHY 8        /* failure reasons kept for the message */
#define RECYCLE_BOUND 1000 /* requests a worker with --max-requests 50 may serve */

#define GET_CLOSE "GET /small.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
#define GET_KEEP "GET /small.bin HTTP/1.1\r\nHost: t\r\n\r\n"

/*
 * The load generators run in threads of the test process while its main
 * thread sends signals and watches the logs; threads only count and keep a
 * few failure reasons (assertions belong to the main thread). A request
 * fails when it gets anything but 200 with the exact body: a refused or
 * reset connection, an end of stream before or inside the response, a
 * timeout.
 */

static char small[SMALL_LEN];
static struct load *running; /* stopped by fini if a test fails mid-load */

static void stop_load(struct load *l);
static void free_load(struct load *l);

static void fini(void)
{
    if (running) {
        struct load *l = running;
        stop_load(l);
        free_load(l);
    }
    ts_cleanup();
}

TestSuite(lifecycle, .fini = fini);

static void nap(int ms)
{
    poll(NULL, 0, ms);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

static void put_file(const char *dir, const char *name, const void *data, size_t n, mode_t mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, n), (ssize_t)n, "write %s", path);
    cr_assert_eq(fchmod(fd, mode), 0, "fchmod %s", path);
    close(fd);
}

/* A document root (a temporary directory) with small.bin: SMALL_LEN
 * printable bytes, so that a response can be searched as text. Readable by
 * everyone, for workers that run as another user. */
static void make_root(char *root, size_t size)
{
    ts_temp_dir(root, size);
    cr_assert_eq(chmod(root, 0755), 0, "chmod %s: %s", root, strerror(errno));
    ts_fill(small, sizeof small, 7);
    for (size_t i = 0; i < sizeof small; i++)
        small[i] = (char)('a' + (unsigned char)small[i] % 26);
    put_file(root, "small.bin", small, sizeof small, 0644);
}

/* The pid a pidfile holds, or -1. */
static pid_t read_pid(const char *path)
{
    char *text = ts_read_file(path);
    pid_t pid = text && *text ? (pid_t)atoi(text) : -1;
    free(text);
    return pid > 0 ? pid : -1;
}

static void wait_pidfile(const char *path, pid_t want, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    pid_t got;
    while ((got = read_pid(path)) != want && ts_now_ms() < deadline)
        nap(5);
    ts_assert(got == want, "pidfile %s holds %d, expected %d", path, (int)got, (int)want);
}

/* Wait until the file at path has at least n lines matching the extended
 * regex re; copy the nth into line (if not NULL). 0 or -ETIMEDOUT. */
static int wait_lines(const char *path, const char *re, int n, int timeout_ms, char *line,
                      size_t size)
{
    regex_t rx;
    cr_assert_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0, "bad regex %s", re);
    int64_t deadline = ts_now_ms() + timeout_ms;
    int err = -ETIMEDOUT;
    while (err < 0) {
        char *text = ts_read_file(path);
        int seen = 0;
        for (char *s = text; s && *s && seen < n;) {
            char *nl = strchr(s, '\n');
            if (nl)
                *nl = '\0';
            if (regexec(&rx, s, 0, NULL, 0) == 0 && ++seen == n) {
                if (line)
                    snprintf(line, size, "%s", s);
                err = 0;
            }
            s = nl ? nl + 1 : NULL;
        }
        free(text);
        if (err < 0 && ts_now_ms() >= deadline)
            break;
        if (err < 0)
            nap(5);
    }
    regfree(&rx);
    return err;
}

/* As wait_lines on a program's log, asserted. */
static void expect_line(struct ts_proc *p, const char *re, int n, char *line, size_t size)
{
    int err = wait_lines(p->out, re, n, STEP_MS, line, size);
    ts_assert(err == 0, "%s: no line %d matching /%s/ within %d ms", p->name, n, re, STEP_MS);
}

/* The number after "(pid " in a log line. */
static pid_t pid_in(const char *line)
{
    const char *p = strstr(line, "(pid ");
    cr_assert_not_null(p, "no pid in [%s]", line);
    return (pid_t)atoi(p + 5);
}

/* ------------------------------------------------------------------------ */
/* Processes                                                                */
/* ------------------------------------------------------------------------ */

static void send_signal(pid_t pid, int sig)
{
    int err = ts_kill(pid, sig);
    ts_assert(err == 0, "kill(%d, SIG%s): %s", (int)pid, sigabbrev_np(sig), strerror(-err));
}

/* Reap a process that is not in support's table: a master started by an
 * upgrade, which becomes this test's child (a subreaper) when the master
 * that forked it exits. 0 with *status; -ECHILD when it is not our child
 * (then only its end is awaited); -ETIMEDOUT. */
static int reap_pid(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno == ECHILD)
            return ts_wait_pids_dead(&pid, 1, timeout_ms) == 0 ? -ECHILD : -ETIMEDOUT;
        if (ts_now_ms() >= deadline)
            return -ETIMEDOUT;
        nap(5);
    }
}

static void expect_exit0(struct ts_proc *p)
{
    int err = ts_wait_exit(p, STEP_MS);
    ts_assert(err == 0, "%s (pid %d) did not exit within %d ms", p->name, (int)p->pid, STEP_MS);
    ts_assert(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0,
              "%s (pid %d): wait status 0x%x, expected exit 0", p->name, (int)p->pid,
              p->status);
}

/* ------------------------------------------------------------------------ */
/* The scoreboard                                                           */
/* ------------------------------------------------------------------------ */

static bool is_ready(const struct pf_slot_info *s)
{
    return s->pid > 0 && (s->state == PF_STATE_IDLE || s->state == PF_STATE_BUSY);
}

/* Wait until the board holds exactly n workers, all ready and of
 * generation gen (0: any), nothing starting or draining; their pids by
 * index into pids. */
static void wait_board(pid_t master, unsigned gen, int n, pid_t *pids)
{
    struct pf_slot_info s[64];
    int64_t deadline = ts_now_ms() + STEP_MS;
    int count = 0, ok = 0;
    for (;;) {
        count = ts_board(master, s, 64);
        ok = 0;
        for (int i = 0; i < count; i++)
            if (is_ready(&s[i]) && (!gen || s[i].generation == gen) && s[i].index < n) {
                pids[s[i].index] = s[i].pid;
                ok++;
            }
        if (count == n && ok == n)
            return;
        ts_assert(ts_now_ms() < deadline,
                  "master %d: board has %d slots, %d ready of generation %u; expected "
                  "exactly %d",
                  (int)master, count, ok, gen, n);
        nap(5);
    }
}

/* Wait until n workers other than `other` are ready, whatever else the
 * board holds; their pids by index into pids. */
static void wait_ready_beside(pid_t master, pid_t other, int n, pid_t *pids)
{
    struct pf_slot_info s[64];
    int64_t deadline = ts_now_ms() + STEP_MS;
    for (;;) {
        int count = ts_board(master, s, 64), ok = 0;
        for (int i = 0; i < count; i++)
            if (is_ready(&s[i]) && s[i].pid != other && s[i].index < n) {
                pids[s[i].index] = s[i].pid;
                ok++;
            }
        if (ok == n)
            return;
        ts_assert(ts_now_ms() < deadline, "master %d: %d of %d workers ready beside pid %d",
                  (int)master, ok, n, (int)other);
        nap(5);
    }
}

static bool pid_among(pid_t pid, const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] == pid)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* HTTP on raw sockets                                                      */
/* ------------------------------------------------------------------------ */

struct resp {
    size_t len, head, body; /* bytes held, head length, Content-Length */
    int status;
    bool close;             /* Connection: close */
    char buf[8192];
};

/* 1 when the response in r->buf is whole, 0 while not, -1 if malformed. */
static int resp_parse(struct resp *r)
{
    const char *end = memmem(r->buf, r->len, "\r\n\r\n", 4);
    if (!end)
        return r->len > 4096 ? -1 : 0;
    char head[4097];
    size_t hl = (size_t)(end + 4 - r->buf);
    if (hl >= sizeof head || strncmp(r->buf, "HTTP/1.1 ", 9) != 0)
        return -1;
    memcpy(head, r->buf, hl);
    head[hl] = '\0';
    const char *cl = strcasestr(head, "\r\nContent-Length:");
    r->head = hl;
    r->status = atoi(head + 9);
    r->body = cl ? strtoul(cl + 17, NULL, 10) : 0;
    r->close = strcasestr(head, "\r\nConnection: close\r\n") != NULL;
    if (hl + r->body >= sizeof r->buf)
        return -1;
    return r->len >= hl + r->body;
}

/* Read one response. 0; -ENODATA: the stream ended before its first byte;
 * -EPIPE: it ended inside; -EPROTO: malformed; -ETIMEDOUT; or -errno
 * (-ECONNRESET). */
static int resp_read(int fd, struct resp *r)
{
    int64_t deadline = ts_now_ms() + IO_MS;
    r->len = 0;
    for (;;) {
        int whole = resp_parse(r);
        if (whole)
            return whole > 0 ? 0 : -EPROTO;
        ssize_t n = recv(fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (n > 0) {
            r->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return r->len ? -EPIPE : -ENODATA;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - ts_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            return -ETIMEDOUT;
    }
}

static const char *io_text(int err)
{
    switch (err) {
    case -ENODATA:
        return "closed before the response";
    case -EPIPE:
        return "closed inside the response";
    case -EPROTO:
        return "malformed response";
    default:
        return strerror(-err);
    }
}

/* 0 when r is 200 with small.bin's body, else -EBADMSG and why. */
static int resp_check(const struct resp *r, char *why, size_t size)
{
    if (r->status == 200 && r->body == SMALL_LEN &&
        memcmp(r->buf + r->head, small, SMALL_LEN) == 0)
        return 0;
    snprintf(why, size, "status %d, %zu body bytes: [%.80s]", r->status, r->body, r->buf);
    return -EBADMSG;
}

/* GET /small.bin on a new connection, the whole response checked. */
static int get_small(int port, char *why, size_t size)
{
    int fd = ts_connect_tcp(port, IO_MS);
    if (fd < 0) {
        snprintf(why, size, "connect: %s", strerror(-fd));
        return fd;
    }
    struct resp *r = malloc(sizeof *r);
    int err = r ? ts_send_all(fd, GET_CLOSE, strlen(GET_CLOSE), IO_MS) : -ENOMEM;
    if (err < 0)
        snprintf(why, size, "send: %s", strerror(-err));
    else if ((err = resp_read(fd, r)) < 0)
        snprintf(why, size, "request sent, then: %s", io_text(err));
    else
        err = resp_check(r, why, size);
    free(r);
    close(fd);
    return err;
}

static void expect_get(int port)
{
    char why[256];
    int err = get_small(port, why, sizeof why);
    ts_assert(err == 0, "GET /small.bin on port %d: %s", port, why);
}

/* GET path on a new connection: expect 200. */
static void expect_200(int port, const char *path)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    struct resp *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    int fd = ts_connect_tcp(port, IO_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    int err = ts_send_all(fd, req, strlen(req), IO_MS);
    if (err == 0)
        err = resp_read(fd, r);
    close(fd);
    ts_assert(err == 0 && r->status == 200, "GET %s: %s, status %d", path, io_text(err),
              err == 0 ? r->status : 0);
    free(r);
}

/* One line through the hang helper: sent, echoed, closed. */
static void expect_echo(int port, const char *text)
{
    char want[64], got[64] = "";
    snprintf(want, sizeof want, "%s\n", text);
    size_t n = strlen(want);
    int fd = ts_connect_tcp(port, IO_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    int err = ts_send_all(fd, want, n, IO_MS);
    if (err == 0)
        err = ts_recv_exact(fd, got, n, IO_MS);
    close(fd);
    ts_assert(err == 0 && strcmp(got, want) == 0, "echo of '%s': %s, got [%s]", text,
              strerror(-err), got);
}

/* ------------------------------------------------------------------------ */
/* Load: clients in threads                                                 */
/* ------------------------------------------------------------------------ */

struct load {
    int port;
    atomic_bool stop;
    atomic_long ok, failed;
    atomic_long closes; /* keep-alive: responses that said Connection: close */
    atomic_long unsent; /* keep-alive: requests the connection refused to take */
    pthread_mutex_t mu;
    int nwhy;
    char why[MAX_WHY][240];
    int64_t t0;
    int nthreads;
    pthread_t th[KA_CLIENTS];
};

static void load_fail(struct load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void load_fail(struct load *l, const char *fmt, ...)
{
    atomic_fetch_add(&l->failed, 1);
    pthread_mutex_lock(&l->mu);
    if (l->nwhy < MAX_WHY) {
        char *w = l->why[l->nwhy++];
        int n = snprintf(w, sizeof l->why[0], "at %lld ms: ", (long long)(ts_now_ms() - l->t0));
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w + n, sizeof l->why[0] - (size_t)n, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&l->mu);
}

/* New connection per request, for ever until stopped. */
static void *close_client(void *ud)
{
    struct load *l = ud;
    char why[256];
    while (!atomic_load(&l->stop)) {
        if (get_small(l->port, why, sizeof why) == 0)
            atomic_fetch_add(&l->ok, 1);
        else
            load_fail(l, "%s", why);
    }
    return NULL;
}

/* One keep-alive request on *fd (opened if -1): the connection is dropped
 * after a response that said Connection: close, or after a failure. */
static void keep_request(struct load *l, int *fd, struct resp *r)
{
    char why[256];
    if (*fd < 0 && (*fd = ts_connect_tcp(l->port, IO_MS)) < 0) {
        load_fail(l, "connect: %s", strerror(-*fd));
        return;
    }
    int err = ts_send_all(*fd, GET_KEEP, strlen(GET_KEEP), IO_MS);
    if (err < 0) {
        atomic_fetch_add(&l->unsent, 1);
        load_fail(l, "send on a kept connection: %s", strerror(-err));
    } else if ((err = resp_read(*fd, r)) < 0) {
        load_fail(l, "request sent on a kept connection, then: %s", io_text(err));
    } else if ((err = resp_check(r, why, sizeof why)) < 0) {
        load_fail(l, "%s", why);
    } else {
        atomic_fetch_add(&l->ok, 1);
        if (r->close)
            atomic_fetch_add(&l->closes, 1);
    }
    if (err < 0 || r->close) {
        close(*fd);
        *fd = -1;
    }
}

static void *keep_client(void *ud)
{
    struct load *l = ud;
    struct resp *r = malloc(sizeof *r);
    int fd = -1;
    while (r && !atomic_load(&l->stop))
        keep_request(l, &fd, r);
    if (fd >= 0)
        close(fd);
    free(r);
    return NULL;
}

static struct load *start_load(int port, int nthreads, void *(*fn)(void *))
{
    struct load *l = calloc(1, sizeof *l);
    cr_assert_not_null(l);
    l->port = port;
    l->t0 = ts_now_ms();
    pthread_mutex_init(&l->mu, NULL);
    for (; l->nthreads < nthreads; l->nthreads++) {
        int err = pthread_create(&l->th[l->nthreads], NULL, fn, l);
        cr_assert_eq(err, 0, "pthread_create: %s", strerror(err));
    }
    running = l;
    return l;
}

static void stop_load(struct load *l)
{
    atomic_store(&l->stop, true);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->th[i], NULL);
    l->nthreads = 0;
    if (running == l)
        running = NULL;
}

static void free_load(struct load *l)
{
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void load_report(struct load *l, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "%ld ok, %ld failed", atomic_load(&l->ok),
                                atomic_load(&l->failed));
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->nwhy && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "\n  %s", l->why[i]);
    pthread_mutex_unlock(&l->mu);
}

/* Wait until the load has served at least `count` requests. */
static void load_until(struct load *l, long count)
{
    int64_t deadline = ts_now_ms() + 4 * STEP_MS;
    while (atomic_load(&l->ok) < count && ts_now_ms() < deadline)
        nap(5);
    char report[2048];
    load_report(l, report, sizeof report);
    ts_assert(atomic_load(&l->ok) >= count, "load stalled before %ld requests: %s", count,
              report);
}

static void expect_no_failure(struct load *l, const char *what)
{
    char report[2048];
    load_report(l, report, sizeof report);
    ts_assert(atomic_load(&l->failed) == 0, "%s: %s", what, report);
    cr_log_info("%s: %s", what, report);
}

/* ------------------------------------------------------------------------ */
/* `prefork status`                                                         */
/* ------------------------------------------------------------------------ */

struct jworker {
    int index, pid;
    unsigned generation;
    long long started_ms;
    char state[16];
};

static const char *const json_keys[] = {
    "index", "pid", "generation", "state", "started_ms", "heartbeat_age_ms", "accepted",
    "wakeups", "active", "requests", "bytes", "activity_ms", "activity",
};

/* The end of the object that starts at p ('{'), strings skipped; NULL if
 * it does not end. */
static const char *object_end(const char *p)
{
    bool in_string = false;
    for (p++; *p; p++) {
        if (in_string && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            in_string = !in_string;
        else if (!in_string && *p == '}')
            return p;
    }
    return NULL;
}

static bool json_field(const char *obj, const char *key, long long *num, char *str, size_t size)
{
    char pat[40];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *v = strstr(obj, pat);
    if (!v)
        return false;
    v += strlen(pat);
    if (str && *v == '"') {
        size_t n = strcspn(v + 1, "\"");
        snprintf(str, size, "%.*s", (int)(n < size ? n : size - 1), v + 1);
        return true;
    }
    char *end;
    *num = strtoll(v, &end, 10);
    return end != v;
}

/* One worker object of the status JSON: every documented key, and the
 * fields the tests look at. */
static bool json_worker(const char *obj, struct jworker *w)
{
    long long v;
    char s[64];
    for (size_t k = 0; k < sizeof json_keys / sizeof json_keys[0]; k++)
        if (!json_field(obj, json_keys[k], &v, s, sizeof s))
            return false;
    json_field(obj, "index", &v, NULL, 0);
    w->index = (int)v;
    json_field(obj, "pid", &v, NULL, 0);
    w->pid = (int)v;
    json_field(obj, "generation", &v, NULL, 0);
    w->generation = (unsigned)v;
    json_field(obj, "started_ms", &w->started_ms, NULL, 0);
    return json_field(obj, "state", &v, w->state, sizeof w->state);
}

/* Parse `{"workers":[{...},...],"pool":{...},...}\n`; returns the count of
 * workers, or -1. */
static int parse_status_json(const char *text, struct jworker *out, int max)
{
    static const char open[] = "{\"workers\":[";
    if (strncmp(text, open, strlen(open)) != 0)
        return -1;
    const char *p = text + strlen(open);
    int n = 0;
    while (*p == '{' && n < max) {
        const char *end = object_end(p);
        if (!end)
            return -1;
        char obj[1024];
        snprintf(obj, sizeof obj, "%.*s", (int)(end - p + 1), p);
        if (!json_worker(obj, &out[n++]))
            return -1;
        p = end + 1;
        if (*p == ',' && p[1] == '{')
            p++;
    }
    static const char pool[] = "],\"pool\":{\"master\":";
    return strncmp(p, pool, sizeof pool - 1) == 0 && strstr(p, "\"restarts\":{") &&
                   strstr(p, "\"totals\":[") && strcmp(p + strlen(p) - 2, "}\n") == 0
               ? n
               : -1;
}

/* `prefork status PID --json`, parsed and asserted. */
static int status_json(pid_t master, struct jworker *out, int max)
{
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)master);
    struct ts_proc *p;
    int st = TS_RUN(&p, RUN_MS, PREFORK, "status", pid, "--json");
    ts_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "prefork status %s --json: wait status 0x%x", pid, st);
    char *text = ts_read_file(p->out);
    cr_assert_not_null(text);
    int n = parse_status_json(text, out, max);
    ts_assert(n >= 0, "prefork status --json printed no valid object: [%s]", text);
    free(text);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Starting                                                                 */
/* ------------------------------------------------------------------------ */

static int wait_port(struct ts_proc *p)
{
    int port = ts_wait_port(p, START_MS);
    ts_assert(port > 0, "%s: no start-up line with a port: %s", p->name, strerror(-port));
    return port;
}

/* HUP, then wait for the new generation to be ready; the old generation's
 * pids (n of them, by index) are stored in old. */
static void reload(struct ts_proc *srv, unsigned gen, int n, pid_t *old)
{
    char re[128];
    wait_board(srv->pid, gen - 1, n, old);
    send_signal(srv->pid, SIGHUP);
    snprintf(re, sizeof re, "SIGHUP: reloading: starting generation %u \\(%d workers\\)", gen,
             n);
    expect_line(srv, re, 1, NULL, 0);
    snprintf(re, sizeof re, "generation %u ready \\(%d workers\\); generation %u drains", gen,
             n, gen - 1);
    expect_line(srv, re, 1, NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* HUP                                                                      */
/* ------------------------------------------------------------------------ */

Test(lifecycle, five_reloads_under_load_fail_no_request, .timeout = TIMEOUT)
{
    enum { W = 2, RELOADS = 5 };
    char root[256];
    make_root(root, sizeof root);
    struct ts_proc *srv =
        TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2", "--access-log", "off");
    int port = wait_port(srv);
    pid_t first[W], old[W], now[W];
    wait_board(srv->pid, 1, W, first);

    struct load *l = start_load(port, LOAD_THREADS, close_client);
    for (unsigned gen = 2; gen <= 1 + RELOADS; gen++) {
        load_until(l, 250 + 500 * (long)(gen - 2));
        reload(srv, gen, W, old);
        /* The old generation finishes its requests and goes. */
        int err = ts_wait_pids_dead(old, W, STEP_MS);
        ts_assert(err == 0, "generation %u did not drain", gen - 1);
    }
    load_until(l, LOAD_TOTAL);
    stop_load(l);
    expect_no_failure(l, "5 reloads under load");
    free_load(l);

    wait_board(srv->pid, 1 + RELOADS, W, now);
    struct jworker w[8];
    int n = status_json(srv->pid, w, 8);
    ts_assert(n == W, "status shows %d workers", n);
    for (int i = 0; i < n; i++) {
        ts_assert(w[i].generation == 1 + RELOADS, "worker %d is of generation %u", w[i].index,
                  w[i].generation);
        ts_assert(!pid_among(w[i].pid, first, W), "pid %d served in generation 1 already",
                  w[i].pid);
        ts_assert(pid_among(w[i].pid, now, W), "pid %d is not on the board", w[i].pid);
    }
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

Test(lifecycle, keepalive_clients_see_no_reset_during_reloads, .timeout = TIMEOUT)
{
    enum { W = 2, RELOADS = 3 };
    char root[256];
    make_root(root, sizeof root);
    struct ts_proc *srv =
        TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2", "--access-log", "off");
    int port = wait_port(srv);
    pid_t old[W];
    wait_board(srv->pid, 1, W, old);

    struct load *l = start_load(port, KA_CLIENTS, keep_client);
    for (unsigned gen = 2; gen <= 1 + RELOADS; gen++) {
        load_until(l, 300 + 600 * (long)(gen - 2));
        reload(srv, gen, W, old);
        /* Each kept connection is told to close on its next response: the
         * old workers go long before the graceful timeout. */
        int err = ts_wait_pids_dead(old, W, STEP_MS);
        ts_assert(err == 0, "generation %u did not drain its keep-alive connections", gen - 1);
    }
    load_until(l, 300 + 600 * RELOADS);
    stop_load(l);
    long closes = atomic_load(&l->closes), unsent = atomic_load(&l->unsent);
    cr_log_info("%d keep-alive clients, %d reloads: %ld responses said Connection: close",
                KA_CLIENTS, RELOADS, closes);
    expect_no_failure(l, "keep-alive clients during reloads");
    ts_assert(unsent == 0, "%ld requests could not be sent on kept connections", unsent);
    /* Every drained connection said so: at least one per reload. */
    ts_assert(closes >= RELOADS, "only %ld responses said Connection: close", closes);
    free_load(l);
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

/* A reload whose workers fail in init: the helper's init fails once the
 * flag file exists. Then, without the file, the next reload works. */
Test(lifecycle, reload_fails_when_new_workers_cannot_start, .timeout = TIMEOUT)
{
    char dir[256], flag[300];
    ts_temp_dir(dir, sizeof dir);
    snprintf(flag, sizeof flag, "%s/fail", dir);
    struct ts_proc *srv = TS_START(HANG, "-w", "2", "--fail-if", flag);
    int port = wait_port(srv);
    pid_t gen1[2], gen3[2];
    wait_board(srv->pid, 1, 2, gen1);

    put_file(dir, "fail", "", 0, 0644);
    send_signal(srv->pid, SIGHUP);
    expect_line(srv, "reload failed: a worker of generation 2 exited before it was ready; "
                     "generation 1 keeps serving", 1, NULL, 0);
    for (int i = 0; i < 4; i++)
        expect_echo(port, "still here");
    pid_t now[2];
    wait_board(srv->pid, 1, 2, now);
    ts_assert(now[0] == gen1[0] && now[1] == gen1[1], "generation 1 was replaced");

    unlink(flag);
    send_signal(srv->pid, SIGHUP);
    expect_line(srv, "generation 3 ready \\(2 workers\\); generation 1 drains", 1, NULL, 0);
    ts_assert(ts_wait_pids_dead(gen1, 2, STEP_MS) == 0, "generation 1 did not drain");
    wait_board(srv->pid, 3, 2, gen3);
    expect_echo(port, "generation 3");
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

/* A reload whose workers are too slow: --ready-timeout 1, init takes 4 s. */
Test(lifecycle, reload_fails_when_new_workers_are_not_ready_in_time, .timeout = TIMEOUT)
{
    char dir[256], flag[300];
    ts_temp_dir(dir, sizeof dir);
    snprintf(flag, sizeof flag, "%s/slow", dir);
    struct ts_proc *srv =
        TS_START(HANG, "-w", "2", "--ready-timeout", "1", "--slow-if", flag);
    int port = wait_port(srv);
    pid_t gen1[2], now[2];
    wait_board(srv->pid, 1, 2, gen1);

    put_file(dir, "slow", "", 0, 0644);
    send_signal(srv->pid, SIGHUP);
    expect_line(srv, "reload failed: generation 2 not ready after 1000 ms; generation 1 keeps "
                     "serving", 1, NULL, 0);
    for (int i = 0; i < 4; i++)
        expect_echo(port, "still here");
    /* The slow workers finish their start-up, see they were retired, go. */
    wait_board(srv->pid, 1, 2, now);
    ts_assert(now[0] == gen1[0] && now[1] == gen1[1], "generation 1 was replaced");
    expect_echo(port, "after");
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

/* ------------------------------------------------------------------------ */
/* USR2                                                                     */
/* ------------------------------------------------------------------------ */

#define RE_STARTED "SIGUSR2: upgrading: started a new master \\(pid [0-9]+\\) from /"
#define RE_READY "upgrade: new master \\(pid [0-9]+\\) is ready; this one drains and exits"

/* USR2 on master `cur`, whose lines go to log's file like those of every
 * master before it: waits for the new master to be ready and returns its
 * pid; checks that the pidfile follows. */
static pid_t upgrade(struct ts_proc *log, pid_t cur, const char *pidfile)
{
    char line[1024];
    int started = ts_log_count(log, RE_STARTED) + 1, ready = ts_log_count(log, RE_READY) + 1;
    send_signal(cur, SIGUSR2);
    expect_line(log, RE_STARTED, started, line, sizeof line);
    pid_t heir = pid_in(line);
    expect_line(log, RE_READY, ready, line, sizeof line);
    ts_assert(pid_in(line) == heir, "ready line names pid %d, not %d", (int)pid_in(line),
              (int)heir);
    wait_pidfile(pidfile, heir, STEP_MS);
    return heir;
}

/* The master replaced by an upgrade exits 0: the first is in support's
 * table, the later ones were started by a master and are checked by pid. */
static void expect_master_gone(struct ts_proc *first, pid_t pid)
{
    if (pid == first->pid) {
        expect_exit0(first);
        return;
    }
    int status = 0, err = reap_pid(pid, STEP_MS, &status);
    ts_assert(err == 0 || err == -ECHILD, "old master %d did not exit", (int)pid);
    if (err == 0)
        ts_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "old master %d: wait status 0x%x", (int)pid, status);
    else
        cr_log_info("old master %d is not our child: its exit status is not checked", (int)pid);
}

/* TERM to a master started by an upgrade (not our child): it stops, with
 * status 0 when it can be seen, and its pidfile goes with it. */
static void stop_heir(pid_t pid, const char *pidfile)
{
    send_signal(pid, SIGTERM);
    int status = 0, err = reap_pid(pid, STEP_MS, &status);
    ts_assert(err == 0 || err == -ECHILD, "master %d did not stop", (int)pid);
    ts_assert(err != 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
              "master %d: wait status 0x%x", (int)pid, status);
    ts_assert(access(pidfile, F_OK) < 0, "the pidfile outlived master %d", (int)pid);
}

/* prefork serve with 2 workers and its pidfile at name in a new folder
 * (the whole path written to pidfile). */
static struct ts_proc *serve_with_pidfile(char *pidfile, size_t size, const char *name)
{
    char root[256], dir[256];
    make_root(root, sizeof root);
    ts_temp_dir(dir, sizeof dir);
    snprintf(pidfile, size, "%s/%s", dir, name);
    return TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2", "--access-log",
                    "off", "--pidfile", pidfile);
}

Test(lifecycle, two_upgrades_under_load_fail_no_request, .timeout = TIMEOUT)
{
    enum { W = 2, UPGRADES = 2 };
    char pidfile[300];
    struct ts_proc *srv = serve_with_pidfile(pidfile, sizeof pidfile, "prefork.pid");
    int port = wait_port(srv);
    pid_t masters[1 + UPGRADES] = {srv->pid}, workers[W];
    wait_board(srv->pid, 1, W, workers);
    wait_pidfile(pidfile, srv->pid, STEP_MS);

    struct load *l = start_load(port, LOAD_THREADS, close_client);
    for (int k = 1; k <= UPGRADES; k++) {
        load_until(l, 300 + 1000 * (long)(k - 1));
        wait_board(masters[k - 1], 1, W, workers);
        masters[k] = upgrade(srv, masters[k - 1], pidfile);
        expect_master_gone(srv, masters[k - 1]);
        ts_assert(ts_wait_pids_dead(workers, W, STEP_MS) == 0,
                  "workers of master %d outlived it", (int)masters[k - 1]);
        ts_assert(ts_pid_alive(masters[k]), "new master %d is not running", (int)masters[k]);
        wait_pidfile(pidfile, masters[k], STEP_MS);
    }
    load_until(l, LOAD_TOTAL);
    stop_load(l);
    expect_no_failure(l, "2 upgrades under load");
    free_load(l);

    pid_t last = masters[UPGRADES];
    for (int k = 0; k < UPGRADES; k++)
        ts_assert(masters[k] != last, "the pid did not change");
    wait_board(last, 1, W, workers);
    expect_get(port);
    stop_heir(last, pidfile);
}

/* The socket each worker index listens on in a reuseport pool, by index:
 * the one of the port's listening sockets that worker i holds. */
static void rows_of(int port, const pid_t *workers, int n, unsigned long *row)
{
    unsigned long ino[16];
    int count = ts_listener_inodes(port, ino, 16);
    ts_assert(count == n, "%d listening sockets on port %d, expected %d", count, port, n);
    for (int i = 0; i < n; i++) {
        int held = 0;
        for (int k = 0; k < count; k++)
            if (ts_holds_socket(workers[i], ino[k]))
                row[i] = ino[k], held++;
        ts_assert(held == 1, "worker %d holds %d of the listening sockets", i, held);
    }
}

/* CPU steering picks a socket by its place in the port's reuseport group,
 * the order the rows joined it; so worker i of the new master must take
 * over worker i's socket, not any socket on the same address. */
Test(lifecycle, upgrade_in_reuseport_mode_gives_each_worker_index_its_old_socket,
     .timeout = TIMEOUT)
{
    enum { W = 3 };
    char root[256], dir[256], pidfile[300];
    make_root(root, sizeof root);
    ts_temp_dir(dir, sizeof dir);
    snprintf(pidfile, sizeof pidfile, "%s/prefork.pid", dir);
    struct ts_proc *srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "3",
                                   "--mode", "reuseport", "--access-log", "off", "--pidfile",
                                   pidfile);
    int port = wait_port(srv);
    pid_t old[W], heirs[W];
    unsigned long before[W], after[W];
    wait_board(srv->pid, 1, W, old);
    wait_pidfile(pidfile, srv->pid, STEP_MS);
    rows_of(port, old, W, before);

    pid_t heir = upgrade(srv, srv->pid, pidfile);
    expect_master_gone(srv, srv->pid);
    wait_board(heir, 1, W, heirs);
    rows_of(port, heirs, W, after);
    for (int i = 0; i < W; i++)
        ts_assert(after[i] == before[i], "worker %d now listens on socket %lu, not %lu", i,
                  after[i], before[i]);
    expect_get(port);
    stop_heir(heir, pidfile);
}

/* The test runs a copy from a temporary directory; ts_start takes paths
 * relative to the build directory, so climb from there to the root. */
static void relative_to_build(const char *abs, char *out, size_t size)
{
    char build[PATH_MAX];
    cr_assert_not_null(realpath(ts_build_dir(), build), "realpath %s", ts_build_dir());
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = build; *p; p++)
        if (*p == '/' && n + 3 < size) {
            memcpy(out + n, "../", 4);
            n += 3;
        }
    snprintf(out + n, size - n, "%s", abs + 1);
}

/* Install a program at path: written beside it, then renamed over it, as
 * a package manager does (the running file cannot be written). */
static void install(const char *path, const void *data, size_t n)
{
    char tmp[600], dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    snprintf(tmp, sizeof tmp, "%s/new", dir);
    put_file(dir, "new", data, n, 0755);
    cr_assert_eq(rename(tmp, path), 0, "rename %s: %s", tmp, strerror(errno));
}

static void *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size);
    cr_assert_not_null(buf);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        cr_assert_gt(r, 0, "read %s", path);
        got += (size_t)r;
    }
    close(fd);
    *n = got;
    return buf;
}

Test(lifecycle, failed_upgrade_keeps_the_old_master_serving, .timeout = TIMEOUT)
{
    static const char fail[] = "#!/bin/sh\nexit 1\n";
    char root[256], dir[256], bin[300], rel[PATH_MAX + 300], pidfile[300], src[300];
    make_root(root, sizeof root);
    ts_temp_dir(dir, sizeof dir);
    snprintf(bin, sizeof bin, "%s/prefork", dir);
    snprintf(pidfile, sizeof pidfile, "%s/prefork.pid", dir);
    snprintf(src, sizeof src, "%s/prefork", ts_build_dir());
    size_t len;
    void *program = slurp(src, &len);
    install(bin, program, len);
    relative_to_build(bin, rel, sizeof rel);

    struct ts_proc *srv = TS_START(rel, "serve", root, "-l", "127.0.0.1:0", "-w", "2",
                                   "--access-log", "off", "--pidfile", pidfile);
    int port = wait_port(srv);
    pid_t w[2];
    wait_board(srv->pid, 1, 2, w);
    wait_pidfile(pidfile, srv->pid, STEP_MS);

    install(bin, fail, strlen(fail));
    send_signal(srv->pid, SIGUSR2);
    char line[1024];
    expect_line(srv, "upgrade failed: new master \\(pid [0-9]+\\) exited with status 1; still "
                     "serving", 1, line, sizeof line);
    pid_t failed = pid_in(line);
    ts_assert(ts_wait_pids_dead(&failed, 1, STEP_MS) == 0, "the failed master %d lingers",
              (int)failed);
    for (int i = 0; i < 4; i++)
        expect_get(port);
    ts_assert(read_pid(pidfile) == srv->pid, "the pidfile changed");
    ts_assert(ts_pid_alive(srv->pid), "the old master went");

    /* The failure left nothing behind: with the program back, it works. */
    install(bin, program, len);
    free(program);
    pid_t heir = upgrade(srv, srv->pid, pidfile);
    expect_master_gone(srv, srv->pid);
    expect_get(port);
    send_signal(heir, SIGTERM);
    int status = 0, err = reap_pid(heir, STEP_MS, &status);
    ts_assert(err == 0 || err == -ECHILD, "the new master did not stop");
}

/* ------------------------------------------------------------------------ */
/* TTIN / TTOU, recycling, hung workers                                     */
/* ------------------------------------------------------------------------ */

Test(lifecycle, ttin_and_ttou_change_the_worker_count, .timeout = TIMEOUT)
{
    char root[256];
    make_root(root, sizeof root);
    struct ts_proc *srv =
        TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2", "--access-log", "off");
    int port = wait_port(srv);
    pid_t w[3];
    wait_board(srv->pid, 1, 2, w);

    send_signal(srv->pid, SIGTTIN);
    expect_line(srv, "SIGTTIN: 3 workers", 1, NULL, 0);
    wait_board(srv->pid, 1, 3, w);
    expect_get(port);
    static const char *const lines[] = {"SIGTTOU: 2 workers", "SIGTTOU: 1 worker$"};
    for (int n = 2; n >= 1; n--) {
        send_signal(srv->pid, SIGTTOU);
        expect_line(srv, lines[2 - n], 1, NULL, 0);
        wait_board(srv->pid, 1, n, w);
        expect_get(port);
    }
    send_signal(srv->pid, SIGTTOU);
    expect_line(srv, "SIGTTOU: staying at 1 worker", 1, NULL, 0);
    pid_t last = w[0];
    wait_board(srv->pid, 1, 1, w);
    ts_assert(w[0] == last, "the last worker was replaced");
    expect_get(port);
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

/* SIGKILL worker `index` of n (gen 1); the pool gets back to n ready. A
 * worker that asked to be recycled just before may be replaced meanwhile:
 * then its successor is the one killed. */
static void kill_and_expect_respawn(pid_t master, int index, int n, int port)
{
    pid_t now[PF_MAX_WORKERS], after[PF_MAX_WORKERS];
    int err = -ESRCH;
    for (int tries = 0; err == -ESRCH && tries < 10; tries++) {
        wait_board(master, 1, n, now);
        err = ts_kill(now[index], SIGKILL);
    }
    ts_assert(err == 0, "kill(%d, SIGKILL): %s", (int)now[index], strerror(-err));
    ts_assert(ts_wait_pids_dead(&now[index], 1, STEP_MS) == 0, "pid %d survived",
              (int)now[index]);
    wait_ready_beside(master, now[index], n, after);
    expect_get(port);
}

Test(lifecycle, max_requests_recycles_workers_under_load, .timeout = TIMEOUT)
{
    enum { W = 2 };
    char root[256];
    make_root(root, sizeof root);
    struct ts_proc *srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2",
                                   "--access-log", "off", "--max-requests", "50",
                                   "--max-requests-jitter", "10");
    int port = wait_port(srv);
    pid_t first[W], now[W];
    wait_board(srv->pid, 1, W, first);

    struct load *l = start_load(port, LOAD_THREADS, close_client);
    load_until(l, LOAD_TOTAL);
    stop_load(l);
    expect_no_failure(l, "--max-requests 50 under load");
    free_load(l);

    wait_board(srv->pid, 1, W, now);
    struct jworker j[8];
    int n = status_json(srv->pid, j, 8);
    ts_assert(n == W, "status shows %d workers", n);
    for (int i = 0; i < n; i++)
        ts_assert(!pid_among(j[i].pid, first, W), "pid %d was never recycled", j[i].pid);
    /* A worker asks at 50-60 requests and serves on only until its
     * successor is ready: far more means it was never replaced. */
    struct pf_slot_info s[8];
    n = ts_board(srv->pid, s, 8);
    for (int i = 0; i < n; i++)
        ts_assert(s[i].requests <= RECYCLE_BOUND,
                  "worker %d (pid %d) served %llu requests with --max-requests 50",
                  s[i].index, (int)s[i].pid, (unsigned long long)s[i].requests);
    /* About one recycling per 50-60 requests. */
    expect_line(srv, "worker [01] \\(pid [0-9]+\\) served its max requests; starting its "
                     "replacement", 10, NULL, 0);
    expect_line(srv, "worker [01] \\(pid [0-9]+\\) takes over from pid [0-9]+", 10, NULL, 0);
    int asked = ts_log_count(srv, "served its max requests; starting its replacement");
    int took = ts_log_count(srv, "takes over from pid");
    cr_log_info("%d recycling requests, %d take-overs for %d requests", asked, took,
                LOAD_TOTAL);
    /* After all that recycling, a worker that dies is still respawned. */
    for (int i = 0; i < W; i++)
        kill_and_expect_respawn(srv->pid, i, W, port);
    /* A respawned worker is nobody's successor. */
    ts_assert(ts_log_count(srv, "takes over from pid 0$") == 0, "a take-over from no worker");
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

/* The hang helper's worker that reads "hang" blocks for ever. */
Test(lifecycle, hung_worker_is_replaced_then_killed, .timeout = TIMEOUT)
{
    struct ts_proc *srv = TS_START(HANG, "-w", "2", "--timeout", "2");
    int port = wait_port(srv);
    pid_t w[2];
    wait_board(srv->pid, 1, 2, w);
    expect_echo(port, "hello");

    int fd = ts_connect_tcp(port, IO_MS);
    ts_assert(fd >= 0, "connect: %s", strerror(-fd));
    ts_assert(ts_send_all(fd, "hang\n", 5, IO_MS) == 0, "send");
    char re[256], line[1024];
    expect_line(srv, "worker [01] \\(pid [0-9]+\\) is not responding: no heartbeat for [0-9]+ "
                     "ms, busy with 'hang' for [0-9]+ ms; SIGTERM, then SIGKILL in 5000 ms",
                1, line, sizeof line);
    pid_t hung = pid_in(line);
    int index = atoi(strstr(line, "worker ") + 7);
    ts_assert(pid_among(hung, w, 2), "pid %d was not a worker", (int)hung);
    /* Its replacement starts at once, beside it. */
    pid_t now[2];
    wait_ready_beside(srv->pid, hung, 2, now);
    cr_log_info("replacement ready while the hung pid %d is %s", (int)hung,
                ts_pid_alive(hung) ? "still alive" : "gone already");
    expect_echo(port, "replacement");
    snprintf(re, sizeof re, "worker %d \\(pid %d\\) still not responding; killing it", index,
             (int)hung);
    expect_line(srv, re, 1, NULL, 0);
    ts_assert(ts_wait_pids_dead(&hung, 1, STEP_MS) == 0, "pid %d is still alive", (int)hung);
    close(fd);
    for (int i = 0; i < 4; i++)
        expect_echo(port, "after");
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

/* ------------------------------------------------------------------------ */
/* USR1, --user, --pre-stop-delay                                           */
/* ------------------------------------------------------------------------ */

Test(lifecycle, usr1_reopens_the_error_and_access_logs, .timeout = TIMEOUT)
{
    char root[256], dir[256], elog[300], alog[300], elog1[310], alog1[310];
    make_root(root, sizeof root);
    put_file(root, "second.txt", "2\n", 2, 0644);
    put_file(root, "third.txt", "3\n", 2, 0644);
    ts_temp_dir(dir, sizeof dir);
    snprintf(elog, sizeof elog, "%s/error.log", dir);
    snprintf(alog, sizeof alog, "%s/access.log", dir);
    snprintf(elog1, sizeof elog1, "%s.1", elog);
    snprintf(alog1, sizeof alog1, "%s.1", alog);
    /* One worker: once the new access log exists, it has reopened. */
    struct ts_proc *srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "1",
                                   "--error-log", elog, "--access-log", alog);
    char line[1024];
    ts_assert(wait_lines(elog, "started 1 worker \\(shared\\) on 127\\.0\\.0\\.1:[0-9]+", 1,
                         START_MS, line, sizeof line) == 0, "no start-up line in %s", elog);
    int port = atoi(strstr(line, "127.0.0.1:") + 10);
    pid_t w[1];
    wait_board(srv->pid, 1, 1, w);
    expect_get(port);
    ts_assert(wait_lines(alog, "\"GET /small.bin HTTP/1.1\" 200", 1, STEP_MS, NULL, 0) == 0,
              "no access line in %s", alog);

    /* logrotate: move the files away, then USR1. */
    cr_assert(rename(elog, elog1) == 0 && rename(alog, alog1) == 0, "rename: %s",
              strerror(errno));
    expect_200(port, "/second.txt");
    send_signal(srv->pid, SIGUSR1);
    ts_assert(wait_lines(elog, "master +info +SIGUSR1: logs reopened", 1, STEP_MS, NULL, 0) == 0,
              "no new %s with the reopen line", elog);
    int64_t deadline = ts_now_ms() + STEP_MS;
    while (access(alog, F_OK) < 0 && ts_now_ms() < deadline)
        nap(5);
    ts_assert(access(alog, F_OK) == 0, "the worker did not create a new %s", alog);

    expect_200(port, "/third.txt");
    ts_assert(wait_lines(alog, "\"GET /third.txt HTTP/1.1\" 200", 1, STEP_MS, NULL, 0) == 0,
              "no access line for the third request in the new %s", alog);
    /* What came before the reopen went to the old file, flushed. */
    ts_assert(wait_lines(alog1, "\"GET /second.txt HTTP/1.1\" 200", 1, STEP_MS, NULL, 0) == 0,
              "the second request is not in %s", alog1);
    ts_assert(wait_lines(alog, "second\\.txt", 1, 0, NULL, 0) < 0, "second request in %s", alog);
    ts_assert(wait_lines(elog, "started 1 worker", 1, 0, NULL, 0) < 0, "old lines in new log");
    ts_assert(wait_lines(elog1, "started 1 worker", 1, 0, NULL, 0) == 0, "%s lost lines", elog1);
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
    ts_assert(wait_lines(elog, "SIGTERM: stopping gracefully", 1, 0, NULL, 0) == 0,
              "the stop was not logged in the new %s", elog);
}

/* The Uid: line of /proc/PID/status: real, effective, saved, fs. */
static void expect_ids(pid_t pid, uid_t uid, gid_t gid)
{
    char path[64], want_u[64], want_g[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *text = ts_read_file(path);
    ts_assert(text, "cannot read %s", path);
    snprintf(want_u, sizeof want_u, "\nUid:\t%u\t%u\t%u\t%u\n", uid, uid, uid, uid);
    snprintf(want_g, sizeof want_g, "\nGid:\t%u\t%u\t%u\t%u\n", gid, gid, gid, gid);
    bool ok = strstr(text, want_u) && strstr(text, want_g);
    char *u = strstr(text, "Uid:");
    ts_assert(ok, "pid %d: expected uid %u gid %u: [%.60s]", (int)pid, uid, gid, u ? u : "?");
    free(text);
}

Test(lifecycle, user_nobody_runs_workers_unprivileged, .timeout = TIMEOUT)
{
    if (geteuid() != 0)
        cr_skip_test("needs root");
    struct passwd *pw = getpwnam("nobody");
    if (!pw)
        cr_skip_test("no user nobody");
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char root[256];
    make_root(root, sizeof root);
    struct ts_proc *srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2",
                                   "--access-log", "off", "--user", "nobody");
    int port = wait_port(srv);
    pid_t w[2];
    wait_board(srv->pid, 1, 2, w);
    for (int i = 0; i < 2; i++)
        expect_ids(w[i], uid, gid);
    expect_ids(srv->pid, 0, 0);
    for (int i = 0; i < 4; i++)
        expect_get(port);
    ts_assert(ts_log_count(srv, "warning: workers run as root") == 0, "warned with --user");
    /* A reload's workers drop their privileges too. */
    pid_t old[2];
    reload(srv, 2, 2, old);
    wait_board(srv->pid, 2, 2, w);
    for (int i = 0; i < 2; i++)
        expect_ids(w[i], uid, gid);
    expect_get(port);
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

Test(lifecycle, pre_stop_delay_serves_then_refuses, .timeout = TIMEOUT)
{
    char root[256];
    make_root(root, sizeof root);
    struct ts_proc *srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2",
                                   "--access-log", "off", "--pre-stop-delay", "1");
    int port = wait_port(srv);
    pid_t w[2];
    wait_board(srv->pid, 1, 2, w);

    int64_t t0 = ts_now_ms();
    send_signal(srv->pid, SIGTERM);
    expect_line(srv, "SIGTERM: still serving for 1000 ms \\(pre-stop delay\\), then stopping", 1,
                NULL, 0);
    /* Requests one after the other until the port refuses: each either
     * succeeds or is refused at connect. The last one may be the unlucky
     * connection that was queued when the last listener closed (a reset):
     * the kernel gives no way to close a listener without that race. */
    int served = 0, lost = 0, refused_at = -1;
    char why[256];
    while (ts_now_ms() - t0 < STEP_MS) {
        int err = get_small(port, why, sizeof why);
        if (err == 0) {
            served++;
        } else if (err == -ECONNREFUSED) {
            refused_at = (int)(ts_now_ms() - t0);
            break;
        } else {
            ts_assert(++lost <= 1, "request %d after TERM: %s", served + lost, why);
            cr_log_info("a request during the stop: %s", why);
        }
    }
    ts_assert(served > 0, "no request was served after TERM");
    ts_assert(refused_at >= 1000, "refused %d ms after TERM, before the 1000 ms delay",
              refused_at);
    cr_log_info("after TERM: %d requests served, refused at %d ms", served, refused_at);
    expect_exit0(srv);
}

/* One request on a new connection; the response in *r. 0 or -errno. */
static int ask(int port, const char *request, struct resp *r)
{
    int fd = ts_connect_tcp(port, IO_MS);
    if (fd < 0)
        return fd;
    int err = ts_send_all(fd, request, strlen(request), IO_MS);
    if (err == 0)
        err = resp_read(fd, r);
    close(fd);
    return err;
}

#define HEALTH "GET /healthz?probe=1 HTTP/1.1\r\nHost: t\r\n\r\n"

Test(lifecycle, health_path_turns_503_before_the_listeners_close, .timeout = TIMEOUT)
{
    char root[256];
    make_root(root, sizeof root);
    put_file(root, "healthz", "a file the site never gets to serve", 35, 0644);
    struct ts_proc *srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2",
                                   "--access-log", "off", "--pre-stop-delay", "2",
                                   "--health-path", "/healthz");
    int port = wait_port(srv);
    pid_t w[2];
    wait_board(srv->pid, 1, 2, w);
    struct resp r;
    cr_assert_eq(ask(port, HEALTH, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(r.body == 3 && memcmp(r.buf + r.head, "ok\n", 3) == 0, "[%.200s]", r.buf);
    cr_assert_not(r.close);
    cr_assert_eq(ask(port, "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r),
                 0);
    cr_assert_eq(r.status, 405);
    /* Through a reload the host stays healthy. */
    send_signal(srv->pid, SIGHUP);
    wait_board(srv->pid, 2, 2, w);
    cr_assert_eq(ask(port, HEALTH, &r), 0);
    cr_assert_eq(r.status, 200);

    send_signal(srv->pid, SIGTERM);
    expect_line(srv, "SIGTERM: still serving for 2000 ms \\(pre-stop delay\\)", 1, NULL, 0);
    /* At once: the check fails, files are still served, each response
     * closing its connection. */
    cr_assert_eq(ask(port, HEALTH, &r), 0);
    cr_assert_eq(r.status, 503);
    cr_assert(r.close && r.body == 9 && memcmp(r.buf + r.head, "stopping\n", 9) == 0,
              "[%.200s]", r.buf);
    char why[256];
    cr_assert_eq(get_small(port, why, sizeof why), 0, "%s", why);
    cr_assert_eq(ask(port, GET_KEEP, &r), 0);
    cr_assert(r.status == 200 && r.close, "a keep-alive request during the stop: [%.200s]", r.buf);
    expect_exit0(srv);
}

/* GET /metrics from the master; the body (NUL-terminated) into out. */
static void scrape(int port, char *out, size_t size)
{
    int fd = ts_connect_tcp(port, IO_MS);
    ts_assert(fd >= 0, "connect to the metrics port: %s", strerror(-fd));
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    ts_assert(ts_send_all(fd, req, sizeof req - 1, IO_MS) == 0, "send");
    size_t len = 0;
    int64_t deadline = ts_now_ms() + IO_MS;
    for (;;) {
        ssize_t n = recv(fd, out + len, size - 1 - len, 0);
        if (n > 0) {
            len += (size_t)n;
            ts_assert(len < size - 1, "the exposition is larger than %zu bytes", size);
            continue;
        }
        if (n == 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ts_assert((errno == EAGAIN || errno == EINTR) && ts_now_ms() < deadline &&
                      poll(&pfd, 1, IO_MS) >= 0, "reading the exposition: %s", strerror(errno));
    }
    close(fd);
    out[len] = '\0';
    ts_assert(strncmp(out, "HTTP/1.1 200 ", 13) == 0, "[%.200s]", out);
}

/* The sum of a metric's samples whose line starts with prefix. */
static long long metric_sum(const char *text, const char *prefix)
{
    long long sum = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; (p = strstr(p, prefix)) != NULL; p += n)
        if (p == text || p[-1] == '\n') {
            const char *sp = strchr(p, ' ');
            if (sp)
                sum += atoll(sp + 1);
        }
    return sum;
}

Test(lifecycle, metrics_count_through_a_crash, .timeout = TIMEOUT)
{
    char root[256], line[512];
    make_root(root, sizeof root);
    struct ts_proc *srv = TS_START(PREFORK, "serve", root, "-l", "127.0.0.1:0", "-w", "2",
                                   "--access-log", "off", "--metrics-listen", "127.0.0.1:0");
    int port = wait_port(srv);
    expect_line(srv, "metrics on 127\\.0\\.0\\.1:[0-9]+", 1, line, sizeof line);
    int mport = atoi(strstr(line, "metrics on 127.0.0.1:") + 21);
    pid_t w[2];
    wait_board(srv->pid, 1, 2, w);
    for (int i = 0; i < 20; i++)
        expect_get(port);
    static char text[1 << 16];
    int64_t deadline = ts_now_ms() + STEP_MS;
    do {
        scrape(mport, text, sizeof text);
    } while (metric_sum(text, "prefork_requests_total{") < 20 && ts_now_ms() < deadline);
    cr_assert_eq(metric_sum(text, "prefork_requests_total{"), 20, "%s", text);
    cr_assert_eq(metric_sum(text, "prefork_responses_total{worker=\"0\",code=\"2xx\"}") +
                     metric_sum(text, "prefork_responses_total{worker=\"1\",code=\"2xx\"}"),
                 20);
    /* A worker killed: replaced, counted as a crash, and what it served
     * stays counted under its index. */
    ts_kill(w[0], SIGKILL);
    deadline = ts_now_ms() + STEP_MS;
    do {
        scrape(mport, text, sizeof text);
    } while (metric_sum(text, "prefork_worker_restarts_total{cause=\"crash\"}") < 1 &&
             ts_now_ms() < deadline);
    cr_assert_eq(metric_sum(text, "prefork_worker_restarts_total{cause=\"crash\"}"), 1, "%s",
                 text);
    cr_assert_eq(metric_sum(text, "prefork_requests_total{"), 20, "%s", text);
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

Test(lifecycle, metrics_of_prefork_run, .timeout = TIMEOUT)
{
    char line[512];
    /* Any program: sleep(1) holds the inherited socket and never serves. */
    struct ts_proc *srv = TS_START(PREFORK, "run", "-w", "2", "-l", "127.0.0.1:0",
                                   "--metrics-listen", "127.0.0.1:0", "--", "sleep", "1000");
    expect_line(srv, "metrics on 127\\.0\\.0\\.1:[0-9]+", 1, line, sizeof line);
    int mport = atoi(strstr(line, "metrics on 127.0.0.1:") + 21);
    static char text[1 << 16];
    int64_t deadline = ts_now_ms() + STEP_MS;
    long long n;
    do {
        scrape(mport, text, sizeof text);
        n = metric_sum(text, "prefork_workers{state=\"starting\"}") +
            metric_sum(text, "prefork_workers{state=\"idle\"}") +
            metric_sum(text, "prefork_workers{state=\"busy\"}");
    } while (n < 2 && ts_now_ms() < deadline);
    cr_assert_eq(n, 2, "%s", text);
    cr_assert(strstr(text, "prefork_info{version=\"") != NULL, "%s", text);
    cr_assert(strstr(text, "prefork_listen_queue{listener=\"127.0.0.1:") != NULL, "%s", text);
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
}

/* ------------------------------------------------------------------------ */
/* prefork status                                                           */
/* ------------------------------------------------------------------------ */

static bool one_line(const char *s)
{
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '\n' && strchr(s, '\n') == s + n - 1;
}

/* Run `prefork status ARGS`: expect exit code, and for a failure nothing on
 * stdout and one line on stderr. */
static void expect_status(const char *const *argv, int code)
{
    struct ts_proc *p;
    int st = ts_run(argv, RUN_MS, &p);
    char *out = ts_read_file(p->out), *err = ts_read_file(p->err);
    cr_assert(out && err);
    char args[256] = "";
    for (int i = 2; argv[i]; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), " %s", argv[i]);
    ts_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == code,
              "prefork status%s: wait status 0x%x, expected exit %d; stderr [%s]", args, st,
              code, err);
    if (code != 0) {
        ts_assert(out[0] == '\0', "prefork status%s wrote on stdout: [%s]", args, out);
        ts_assert(one_line(err), "prefork status%s: stderr is not one line: [%s]", args, err);
    }
    free(out);
    free(err);
}

#define EXPECT_STATUS(code, ...) \
    expect_status((const char *const[]){PREFORK, "status", __VA_ARGS__, NULL}, code)

/* A pool with a pidfile, for the status tests: its 2 workers' pids. */
static struct ts_proc *pool_with_pidfile(char *pidfile, size_t size, pid_t *w)
{
    struct ts_proc *srv = serve_with_pidfile(pidfile, size, "prefork.pid");
    int port = wait_port(srv);
    wait_board(srv->pid, 1, 2, w);
    wait_pidfile(pidfile, srv->pid, STEP_MS);
    for (int i = 0; i < 3; i++)
        expect_get(port);
    return srv;
}

/* A pidfile that cannot be written: the pool stops once ready, exit 1,
 * and says why. */
Test(lifecycle, unwritable_pidfile_stops_the_pool_with_status_1, .timeout = TIMEOUT)
{
    char pidfile[320];
    struct ts_proc *srv = serve_with_pidfile(pidfile, sizeof pidfile, "no-such-dir/prefork.pid");
    int err = ts_wait_exit(srv, STEP_MS);
    ts_assert(err == 0, "the pool kept running without its pidfile");
    ts_assert(WIFEXITED(srv->status) && WEXITSTATUS(srv->status) == 1,
              "wait status 0x%x, expected exit 1", srv->status);
    ts_assert(ts_log_count(srv, "writing pidfile .*: No such file or directory") == 1,
              "no line saying why");
    ts_assert(ts_log_count(srv, "no pidfile: stopping gracefully") == 1, "no stop line");
}

Test(lifecycle, status_prints_the_scoreboard, .timeout = TIMEOUT)
{
    char pidfile[300];
    pid_t w[2];
    struct ts_proc *srv = pool_with_pidfile(pidfile, sizeof pidfile, w);
    if (geteuid() == 0)
        ts_assert(ts_log_count(srv, "warning: workers run as root; use --user") == 1,
                  "no warning about workers running as root");

    /* The table, by pidfile. */
    struct ts_proc *p;
    int st = TS_RUN(&p, RUN_MS, PREFORK, "status", "--pidfile", pidfile);
    ts_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status --pidfile: 0x%x", st);
    char *text = ts_read_file(p->out);
    cr_assert_not_null(text);
    ts_assert(strncmp(text, "WORKER ", 7) == 0, "no table header: [%s]", text);
    for (int i = 0; i < 2; i++) {
        char needle[32];
        snprintf(needle, sizeof needle, " %d ", (int)w[i]);
        ts_assert(strstr(text, needle), "worker pid %d not in the table: [%s]", (int)w[i], text);
    }
    free(text);

    /* JSON. */
    struct jworker j[8];
    int n = status_json(srv->pid, j, 8);
    ts_assert(n == 2, "status --json shows %d workers", n);
    for (int i = 0; i < n; i++) {
        ts_assert(pid_among(j[i].pid, w, 2) && j[i].index == (j[i].pid == w[0] ? 0 : 1),
                  "worker %d: pid %d", j[i].index, j[i].pid);
        ts_assert(j[i].generation == 1, "generation %u", j[i].generation);
        ts_assert(strcmp(j[i].state, "idle") == 0 || strcmp(j[i].state, "busy") == 0,
                  "state %s", j[i].state);
        ts_assert(j[i].started_ms > 1600000000000LL, "started_ms %lld", j[i].started_ms);
    }
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
    ts_assert(access(pidfile, F_OK) < 0, "the pidfile outlived the master");
}

Test(lifecycle, status_failures_and_watch, .timeout = TIMEOUT)
{
    char pidfile[300], nofile[320], pid[16], me[16];
    pid_t w[2];
    struct ts_proc *srv = pool_with_pidfile(pidfile, sizeof pidfile, w);
    snprintf(nofile, sizeof nofile, "%s.none", pidfile);
    snprintf(pid, sizeof pid, "%d", (int)srv->pid);
    snprintf(me, sizeof me, "%d", (int)getpid());

    /* One line, exit 1 at run time, exit 2 for bad arguments. */
    EXPECT_STATUS(1, me);
    EXPECT_STATUS(1, "--pidfile", nofile);
    EXPECT_STATUS(2, "--bogus");
    EXPECT_STATUS(2, "abc");
    EXPECT_STATUS(2, pid, "--pidfile", pidfile);
    EXPECT_STATUS(2, pid, pid);
    expect_status((const char *const[]){PREFORK, "status", NULL}, 2);

    /* --watch refreshes until the pool goes away. */
    struct ts_proc *watch = TS_START(PREFORK, "status", "--watch", "--pidfile", pidfile);
    char re[96];
    snprintf(re, sizeof re, "prefork master %d, 2 worker processes", (int)srv->pid);
    expect_line(watch, re, 2, NULL, 0);
    send_signal(srv->pid, SIGTERM);
    expect_exit0(srv);
    int err = ts_wait_exit(watch, STEP_MS);
    ts_assert(err == 0 && WIFEXITED(watch->status) && WEXITSTATUS(watch->status) == 1,
              "status --watch: %s, wait status 0x%x", strerror(-err), watch->status);
}
