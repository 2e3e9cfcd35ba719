/* support.c — helpers shared by the integration tests: processes, logs, /proc, sockets and the scoreboard. */
#include "support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 16
#define MAX_ARGS 64
#define STEP_MS 5          /* how often waiting helpers look again */
#define DUMP_TAIL 6000     /* bytes of each log shown on failure */

static struct ts_proc procs[MAX_PROCS];
static int nprocs;
static int child_nofile; /* ts_limit_fds */
static char dirs[4][256]; /* temporary directories to remove */
static int ndirs;
static bool hooked;

/* ------------------------------------------------------------------------ */
/* Small things                                                             */
/* ------------------------------------------------------------------------ */

const char *ts_build_dir(void)
{
    const char *b = getenv("PF_BUILD");
    return b && *b ? b : "build";
}

int64_t ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Milliseconds left before deadline, at least 0. */
static int left_ms(int64_t deadline)
{
    int64_t d = deadline - ts_now_ms();
    return d > 0 ? (int)d : 0;
}

void ts_fill(void *buf, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (unsigned char)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

char *ts_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

char *ts_log(const struct ts_proc *p)
{
    return ts_read_file(p->out);
}

/* ------------------------------------------------------------------------ */
/* Starting programs                                                        */
/* ------------------------------------------------------------------------ */

/* Once per test process: orphans of our masters come to us rather than to
 * init (so "no worker left" can be checked), a closed client socket does not
 * kill the test, and whatever happens the table is cleaned at exit. */
static void setup_once(void)
{
    if (hooked)
        return;
    hooked = true;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    atexit(ts_cleanup);
}

static int temp_file(char *path, size_t size, const char *what)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/pf-test-%s-XXXXXX.log", dir && *dir ? dir : "/tmp", what);
    return mkostemps(path, 4, O_CLOEXEC | O_APPEND);
}

/* In the child, between fork and exec: only async-signal-safe calls. The
 * child dies with the test (PDEATHSIG), keeps no descriptor of the test's,
 * and starts with default signal handling. */
_Noreturn static void child_exec(char *const *argv, pid_t parent, int out, int err)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    close_range(3, ~0u, 0);
    /* A worker that aborts must not leave a core file in the tree. */
    struct rlimit nocore = {0, 0}, nofile;
    setrlimit(RLIMIT_CORE, &nocore);
    getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = (rlim_t)child_nofile; /* the hard limit stays: prlimit may raise it back */
    if (child_nofile > 0 && setrlimit(RLIMIT_NOFILE, &nofile) < 0)
        _exit(127);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static struct ts_proc *spawn(const char *const *argv, bool split)
{
    setup_once();
    cr_assert_lt(nprocs, MAX_PROCS, "too many processes in one test");
    struct ts_proc *p = &procs[nprocs];
    memset(p, 0, sizeof *p);
    char path[512], *args[MAX_ARGS];
    if (argv[0][0] == '/')
        snprintf(path, sizeof path, "%s", argv[0]);
    else
        snprintf(path, sizeof path, "%s/%s", ts_build_dir(), argv[0]);
    snprintf(p->name, sizeof p->name, "%s", argv[0]);
    args[0] = path;
    int n = 1;
    for (; argv[n] && n < MAX_ARGS - 1; n++)
        args[n] = (char *)argv[n];
    args[n] = NULL;
    cr_assert_eq(access(path, X_OK), 0, "%s: %s (is it built?)", path, strerror(errno));
    int out = temp_file(p->out, sizeof p->out, split ? "out" : "log");
    int err = split ? temp_file(p->err, sizeof p->err, "err") : out;
    cr_assert(out >= 0 && err >= 0, "mkostemps: %s", strerror(errno));
    nprocs++;
    pid_t parent = getpid(), pid = fork();
    if (pid == 0)
        child_exec(args, parent, out, err);
    cr_assert_gt(pid, 0, "fork: %s", strerror(errno));
    p->pid = pid;
    close(out);
    if (split)
        close(err);
    return p;
}

struct ts_proc *ts_start(const char *const *argv)
{
    return spawn(argv, false);
}

int ts_run(const char *const *argv, int timeout_ms, struct ts_proc **out)
{
    struct ts_proc *p = spawn(argv, true);
    *out = p;
    int err = ts_wait_exit(p, timeout_ms);
    if (err < 0) {
        ts_kill(p->pid, SIGKILL);
        ts_wait_exit(p, 5000);
        return err;
    }
    return p->status;
}

/* ------------------------------------------------------------------------ */
/* Processes                                                                */
/* ------------------------------------------------------------------------ */

/* Reap p if it has exited; true once it is reaped. */
static bool poll_exit(struct ts_proc *p)
{
    if (p->reaped)
        return true;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->status = r == p->pid ? status : -1;
        p->reaped = true;
    }
    return p->reaped;
}

int ts_wait_exit(struct ts_proc *p, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    while (!poll_exit(p)) {
        if (ts_now_ms() >= deadline)
            return -ETIMEDOUT;
        nap(STEP_MS);
    }
    return 0;
}

int ts_kill(pid_t pid, int sig)
{
    /* 0 and negative pids name process groups, or everything we may signal. */
    if (pid <= 0)
        return -EINVAL;
    return kill(pid, sig) < 0 ? -errno : 0;
}

/* State letter and parent of a process from /proc/PID/stat, or -errno. The
 * command name may hold spaces and parentheses, so parse after the last ')'. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    char *end = strrchr(buf, ')');
    int pp;
    if (!end || sscanf(end + 1, " %c %d", state, &pp) != 2)
        return -EINVAL;
    *ppid = pp;
    return 0;
}

bool ts_pid_alive(pid_t pid)
{
    char state;
    pid_t ppid;
    if (pid <= 0 || proc_stat(pid, &state, &ppid) < 0)
        return false;
    return state != 'Z' && state != 'X' && state != 'x';
}

int ts_wait_pids_dead(const pid_t *pids, int n, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++)
            alive += ts_pid_alive(pids[i]);
        if (alive == 0)
            return 0;
        if (ts_now_ms() >= deadline)
            return -ETIMEDOUT;
        nap(STEP_MS);
    }
}

/* The inodes of every socket listening on 127.0.0.1:port (/proc/net/tcp). */
int ts_listener_inodes(int port, unsigned long *out, int max)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f) && n < max) {
        unsigned addr, lport, st;
        unsigned long ino;
        if (sscanf(line, " %*d: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &addr,
                   &lport, &st, &ino) == 4 && (int)lport == port && st == 0x0A)
            out[n++] = ino;
    }
    if (f)
        fclose(f);
    return n;
}

/* The inode of the one socket listening on 127.0.0.1:port, 0 if none. */
unsigned long ts_listener_inode(int port)
{
    unsigned long ino[2];
    return ts_listener_inodes(port, ino, 2) == 1 ? ino[0] : 0;
}

/* Whether process pid has a descriptor for socket inode. */
bool ts_holds_socket(pid_t pid, unsigned long inode)
{
    char want[64], path[64], target[64];
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    for (int fd = 0; fd < 256; fd++) {
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0 && (target[n] = '\0', strcmp(target, want) == 0))
            return true;
    }
    return false;
}

int ts_children(pid_t ppid, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end, state;
        long pid = strtol(e->d_name, &end, 10);
        pid_t parent;
        if (*end || pid <= 0 || proc_stat((pid_t)pid, &state, &parent) < 0)
            continue;
        if (parent != ppid || state == 'Z' || state == 'X')
            continue;
        if (n < max)
            out[n] = (pid_t)pid;
        n++;
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Logs                                                                     */
/* ------------------------------------------------------------------------ */

/* Find the first line of text matching re; copy it into line. */
static bool find_line(char *text, const regex_t *re, char *line, size_t size)
{
    for (char *s = text; *s;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        bool hit = regexec(re, s, 0, NULL, 0) == 0;
        if (hit && line)
            snprintf(line, size, "%s", s);
        if (nl)
            *nl = '\n';
        if (hit)
            return true;
        if (!nl)
            break;
        s = nl + 1;
    }
    return false;
}

static bool log_has(const struct ts_proc *p, const regex_t *re, char *line, size_t size)
{
    char *text = ts_log(p);
    bool hit = text && find_line(text, re, line, size);
    free(text);
    return hit;
}

int ts_wait_log(struct ts_proc *p, const char *re, int timeout_ms, char *line,
                size_t size)
{
    regex_t rx;
    cr_assert_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0, "bad regex %s", re);
    int64_t deadline = ts_now_ms() + timeout_ms;
    int err = 0;
    for (;;) {
        /* Look at exit before the log, so a line written just before the
         * exit is still seen by the last read. */
        bool gone = poll_exit(p);
        if (log_has(p, &rx, line, size))
            break;
        if (gone || ts_now_ms() >= deadline) {
            err = gone ? -ESRCH : -ETIMEDOUT;
            break;
        }
        nap(STEP_MS);
    }
    regfree(&rx);
    return err;
}

int ts_log_count(const struct ts_proc *p, const char *re)
{
    regex_t rx;
    cr_assert_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0, "bad regex %s", re);
    char *text = ts_log(p);
    int n = 0;
    for (char *s = text; s && *s;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        n += regexec(&rx, s, 0, NULL, 0) == 0;
        if (!nl)
            break;
        s = nl + 1;
    }
    free(text);
    regfree(&rx);
    return n;
}

int ts_wait_port(struct ts_proc *p, int timeout_ms)
{
    char line[1024];
    int err = ts_wait_log(p, "started [0-9]+ workers? \\([a-z]+\\) on 127\\.0\\.0\\.1:[0-9]+",
                          timeout_ms, line, sizeof line);
    if (err < 0)
        return err;
    int port = atoi(strstr(line, "127.0.0.1:") + strlen("127.0.0.1:"));
    return port > 0 && port < 65536 ? port : -EINVAL;
}

static void dump_file(const char *name, const char *path)
{
    char *text = path[0] ? ts_read_file(path) : NULL;
    if (!text)
        return;
    size_t len = strlen(text);
    char *s = len > DUMP_TAIL ? strchr(text + len - DUMP_TAIL, '\n') : text;
    cr_log_error("---- %s (%s)%s ----", name, path, s == text ? "" : ", last lines");
    for (s = s && s != text ? s + 1 : text; s && *s;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        cr_log_error("%s", s);
        s = nl ? nl + 1 : NULL;
    }
    free(text);
}

void ts_dump_logs(void)
{
    for (int i = 0; i < nprocs; i++) {
        dump_file(procs[i].name, procs[i].out);
        dump_file(procs[i].name, procs[i].err);
    }
}

/* ------------------------------------------------------------------------ */
/* Clean-up                                                                 */
/* ------------------------------------------------------------------------ */

/* Orphaned workers were reparented to this process (a subreaper): every
 * child not in the table is one of them. */
static void kill_orphans(void)
{
    pid_t kids[256];
    int n = ts_children(getpid(), kids, 256);
    for (int i = 0; i < n && i < 256; i++)
        ts_kill(kids[i], SIGKILL);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* Remove a directory made by ts_temp_dir and the files the test left in it. */
static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char file[512];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        unlink(file);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

void ts_temp_dir(char *buf, size_t size)
{
    setup_once();
    cr_assert_lt(ndirs, 4, "too many temporary directories in one test");
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, size, "%s/pf-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(buf), "mkdtemp: %s", strerror(errno));
    snprintf(dirs[ndirs++], sizeof dirs[0], "%s", buf);
}

void ts_limit_fds(int n)
{
    child_nofile = n;
}

void ts_cleanup(void)
{
    child_nofile = 0;
    for (int i = 0; i < nprocs; i++) {
        struct ts_proc *p = &procs[i];
        if (!poll_exit(p)) {
            ts_kill(p->pid, SIGKILL);
            ts_wait_exit(p, 5000);
        }
    }
    kill_orphans();
    for (int i = 0; i < nprocs; i++) {
        unlink(procs[i].out);
        if (procs[i].err[0])
            unlink(procs[i].err);
    }
    nprocs = 0;
    for (int i = 0; i < ndirs; i++)
        remove_dir(dirs[i]);
    ndirs = 0;
}

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */
/* ------------------------------------------------------------------------ */

static int connect_to(const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (connect(fd, sa, len) < 0) {
        err = -errno;
        if (err == -EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int r = poll(&pfd, 1, timeout_ms);
            socklen_t elen = sizeof err;
            if (r == 0)
                err = -ETIMEDOUT;
            else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
                err = -errno;
            else
                err = -err;
        }
    }
    if (err < 0) {
        close(fd);
        return err;
    }
    return fd;
}

int ts_connect_tcp(int port, int timeout_ms)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((in_port_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return connect_to((struct sockaddr *)&sin, sizeof sin, timeout_ms);
}

int ts_connect_unix(const char *path, int timeout_ms)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path)
        return -ENAMETOOLONG;
    strcpy(sun.sun_path, path);
    return connect_to((struct sockaddr *)&sun, sizeof sun, timeout_ms);
}

/* Wait for events on fd until deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    for (;;) {
        int r = poll(&pfd, 1, left_ms(deadline));
        if (r > 0)
            return 0;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int ts_send_all(int fd, const void *buf, size_t n, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int err = wait_fd(fd, POLLOUT, deadline);
        if (err < 0)
            return err;
    }
    return 0;
}

int ts_recv_exact(int fd, void *buf, size_t n, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return -ENODATA;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        int err = wait_fd(fd, POLLIN, deadline);
        if (err < 0)
            return err;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Scoreboard                                                               */
/* ------------------------------------------------------------------------ */

int ts_board(pid_t master, struct pf_slot_info *out, int max)
{
    pf_scoreboard *sb;
    int err = pf_scoreboard_open(master, &sb);
    if (err < 0)
        return err;
    int n = pf_scoreboard_read(sb, out, max);
    pf_scoreboard_close(sb);
    return n;
}

/* Ready workers 0..n-1 in the board, their pids stored by index. */
static bool all_ready(const struct pf_slot_info *s, int count, int n, pid_t *pids)
{
    int ready = 0;
    for (int i = 0; i < count; i++) {
        bool up = s[i].state == PF_STATE_IDLE || s[i].state == PF_STATE_BUSY;
        if (up && s[i].pid > 0 && s[i].index >= 0 && s[i].index < n) {
            pids[s[i].index] = s[i].pid;
            ready++;
        }
    }
    return ready == n;
}

int ts_wait_ready(pid_t master, int n, pid_t *pids, int timeout_ms)
{
    struct pf_slot_info slots[64];
    int64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        int count = ts_board(master, slots, 64);
        if (count > 0 && all_ready(slots, count, n, pids))
            return 0;
        if (ts_now_ms() >= deadline)
            return count < 0 ? count : -ETIMEDOUT;
        nap(STEP_MS);
    }
}
