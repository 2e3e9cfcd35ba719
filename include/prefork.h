/* prefork.h — libprefork: run a network service on a supervised pool of worker processes. */
#ifndef PREFORK_H
#define PREFORK_H

/*
 * The model (see README.md, "The process model", and prefork(1)):
 *
 *   master (supervisor): binds the listeners once, forks N workers, reaps and
 *   respawns them, stops them gracefully. It never runs service code.
 *
 *   worker: either the library runs its epoll loop and hands each accepted
 *   connection to your on_conn callback, or your own main takes over.
 *
 * Conventions, everywhere in this header:
 *   - a call returns 0 (or a count, or an fd) on success and a negative errno
 *     on failure; there is no global error state;
 *   - the library never exits the process nor writes to stderr, except through
 *     the log sink (pf_log_set_sink) which defaults to stderr;
 *   - the caller owns what it allocates; each type says who frees what;
 *   - every descriptor the library creates is non-blocking and close-on-exec.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PF_VERSION "0.1.0"

/* Hard limits, each checked and reported as a usage error. */
#define PF_MAX_WORKERS 1024   /* workers in one pool */
#define PF_MAX_LISTENERS 64   /* listening sockets in one pool */
#define PF_MAX_PROXY_ALLOW 32 /* ranges in proxy-allow-from */
#define PF_MAX_CONNS 1000000  /* connections per worker */
#define PF_MAX_CPUS 1024      /* CPUs cpu-affinity can name: 0..1023 */

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

enum pf_log_level { PF_LOG_ERROR, PF_LOG_WARN, PF_LOG_INFO, PF_LOG_DEBUG };

/* A log sink receives one finished message (no trailing newline), its level
 * and its source ("master" or "worker 2 (pid 4711)"). */
typedef void pf_log_fn(void *ud, enum pf_log_level level, const char *source,
                       const char *msg);

/* Log a line in the pool's error log, tagged with this process's role.
 * Lines above the configured level are dropped. Async-signal-unsafe. */
void pf_log(enum pf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pf_vlog(enum pf_log_level level, const char *fmt, va_list ap);

/* Replace the sink (NULL restores the default: prefork(1) LOGS lines on the error
 * log, "2026-11-25T16:30:00.123Z master  info  started ..."). */
void pf_log_set_sink(pf_log_fn *fn, void *ud);
void pf_log_set_level(enum pf_log_level max);

/* Send the default sink's lines to PATH (appended, created 0644), or back to
 * stderr for NULL or "-". Returns 0 or -errno; on failure nothing changes. */
int pf_log_open(const char *path);

/* ------------------------------------------------------------------------ */
/* Addresses and listeners                                                  */
/* ------------------------------------------------------------------------ */

enum pf_addr_kind { PF_ADDR_TCP, PF_ADDR_UNIX, PF_ADDR_FD };

/* A parsed listen address. Plain data: no resources, nothing to free. */
struct pf_addr {
    enum pf_addr_kind kind;
    struct sockaddr_storage ss; /* TCP and UNIX: the address to bind */
    socklen_t len;
    bool any;                   /* ":PORT": every interface, IPv6 and IPv4 */
    int fd;                     /* FD: the inherited descriptor */
    unsigned flags;             /* PF_ADDR_TLS ... given after commas */
};

/* Flags a listen address may carry after a comma, "127.0.0.1:8443,tls".
 * The library only records them (pf_pool_listener_flags): the service
 * decides what they mean. */
#define PF_ADDR_TLS 0x1u   /* ",tls": the service speaks TLS on it */
#define PF_ADDR_PROXY 0x2u /* ",proxy": each connection starts with a PROXY protocol
                              header; the library reads it (from proxy-allow-from
                              only) and hands the service the client's address */

/* Parse a listen address:
 *   "HOST:PORT"   IPv4 literal or "localhost" (127.0.0.1), e.g. 127.0.0.1:8000
 *   "[V6]:PORT"   IPv6 literal, e.g. [::1]:8000 (bound IPv6-only)
 *   ":PORT"       all interfaces (dual-stack [::], or 0.0.0.0 without IPv6)
 *   "unix:PATH"   a Unix stream socket (PATH at most 107 bytes)
 *   "unix:@NAME"  a Linux abstract Unix socket (nothing on disk)
 *   "fd:N"        an already-listening descriptor N >= 0
 * PORT is 0..65535; 0 asks the kernel for a free port. Any of them may be
 * followed by flags, each after a comma: ",tls" (PF_ADDR_TLS), ",proxy"
 * (PF_ADDR_PROXY) into
 * out->flags; another word after a comma is -EINVAL (but a Unix path may
 * hold a comma: "unix:/a,b" is the path "/a,b").
 * Returns 0, or -EINVAL with *why (if why is not NULL) set to a static
 * one-line reason. Never resolves names, never touches the network. */
int pf_addr_parse(const char *spec, struct pf_addr *out, const char **why);

/* Format a socket address as "127.0.0.1:8000", "[::1]:8000" or "unix:PATH"
 * into buf (always terminated). Returns 0 or -ENOSPC / -EAFNOSUPPORT. */
int pf_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                   size_t size);

/* Flags for pf_listen_open. */
#define PF_LISTEN_REUSEPORT 0x1 /* set SO_REUSEPORT before bind */

/* Bind and listen on a parsed address. backlog <= 0 means the kernel's
 * net.core.somaxconn. A Unix socket path left by a dead server is replaced;
 * one a live server answers on is -EADDRINUSE; a path that is not a socket
 * is -EEXIST. For PF_ADDR_FD the descriptor is checked to be a listening
 * stream socket (-ENOTSOCK / -EINVAL otherwise), made non-blocking and
 * close-on-exec, and returned as is. PF_LISTEN_REUSEPORT applies to TCP only.
 * Returns the listening fd or -errno. */
int pf_listen_open(const struct pf_addr *a, int backlog, int flags);

/* Read net.core.somaxconn (4096 if it cannot be read). */
int pf_listen_somaxconn(void);

/* An address range: "198.18.0.0/15", "2001:db8::/32", a bare address (a
 * range of one), or "unix" (peers over a Unix socket). An IPv4 range also
 * matches IPv4-mapped IPv6 peers (::ffff:a.b.c.d). */
struct pf_cidr {
    int family; /* AF_INET, AF_INET6 or AF_UNIX */
    unsigned char addr[16];
    unsigned bits;
};
/* 0, or -EINVAL with *why set (also for host bits past the prefix). */
int pf_cidr_parse(const char *spec, struct pf_cidr *out, const char **why);
/* A comma-separated list of ranges into out[0..max), or "*" (every IPv4,
 * IPv6 and Unix peer). Returns how many, or -EINVAL with *why set (an empty
 * item, a bad range, more than max). */
int pf_cidr_parse_list(const char *spec, struct pf_cidr *out, int max, const char **why);
bool pf_cidr_match(const struct pf_cidr *c, const struct sockaddr *sa, socklen_t len);
bool pf_cidr_match_any(const struct pf_cidr *list, int n, const struct sockaddr *sa,
                       socklen_t len);

/* The PROXY protocol header (HAProxy's, versions 1 and 2) that a balancer
 * sends first on each connection, carrying the client's address. */
#define PF_PROXY_MAX 4096 /* the longest header taken (v2 with its TLVs) */
struct pf_proxy {
    bool local;                  /* keep the connection's own addresses: a v2
                                    LOCAL command (the balancer's health check),
                                    v1 UNKNOWN, or no address family */
    struct sockaddr_storage src; /* the client, when !local */
    struct sockaddr_storage dst; /* the address it connected to */
    socklen_t srclen, dstlen;
    char alpn[32];               /* v2 TLVs, "" when absent */
    char authority[256];         /* the host name the client asked for (SNI) */
};

/* Parse the header at the start of buf[0..n): returns its length (> 0),
 * the stream proper starting there; 0 when more bytes are needed (a
 * header cut short so far; never more than PF_PROXY_MAX); -EPROTO when
 * the bytes are not a valid header (or not one at all: a listener that
 * expects the header never guesses); -EMSGSIZE for a v2 header longer
 * than PF_PROXY_MAX. Never reads past n, nor past the header. */
int pf_proxy_parse(const void *buf, size_t n, struct pf_proxy *out);

/* Sockets passed by systemd socket activation (LISTEN_PID, LISTEN_FDS,
 * LISTEN_FDNAMES). Fills fds[] (and names[], each at most 63 bytes, which may
 * be NULL) with up to max descriptors starting at 3, makes them close-on-exec,
 * and unsets the three variables so children do not see them. Returns the
 * count (0 when the variables are absent or meant for another pid), -EINVAL
 * when they are malformed, -EBADF when a passed descriptor is not open, or
 * -E2BIG when more than max were passed (the first max are stored). Without
 * LISTEN_FDNAMES each name is "unknown". */
int pf_listen_systemd(int *fds, char (*names)[64], int max);

/* ------------------------------------------------------------------------ */
/* Descriptor passing (SCM_RIGHTS)                                          */
/* ------------------------------------------------------------------------ */

#define PF_FD_MAX_PASS 16 /* descriptors in one message */

/* Meant for SOCK_SEQPACKET or SOCK_DGRAM sockets, which keep message
 * boundaries; on SOCK_STREAM a short send is -EMSGSIZE (the descriptors went).
 *
 * Send n (1..PF_FD_MAX_PASS) descriptors and len (>= 1) bytes of data over
 * the Unix socket sock in one message. The caller keeps its copies.
 * Returns 0, -EAGAIN if sock is non-blocking and full, -EPIPE if the peer
 * has closed, or another -errno. Never raises SIGPIPE. */
int pf_fd_send(int sock, const int *fds, int n, const void *data, size_t len);

/* Receive one message: up to len bytes into data and up to max descriptors
 * into fds (each close-on-exec). *n is set to how many arrived. Descriptors
 * beyond max, or in a truncated message, are closed, never leaked.
 * Returns the number of data bytes (0 means the peer closed), or -errno
 * (-EAGAIN on a non-blocking socket with nothing to read, -EMSGSIZE for a
 * truncated message); *n is 0 on any failure. */
ssize_t pf_fd_recv(int sock, int *fds, int max, int *n, void *data,
                   size_t len);

/* ------------------------------------------------------------------------ */
/* Event loop                                                               */
/* ------------------------------------------------------------------------ */

/* Event bits: equal to the epoll ones, so they can be passed either way. */
#define PF_EV_READ 0x001u   /* EPOLLIN */
#define PF_EV_WRITE 0x004u  /* EPOLLOUT */
#define PF_EV_ERROR 0x008u  /* EPOLLERR (always reported) */
#define PF_EV_HUP 0x010u    /* EPOLLHUP (always reported) */
#define PF_EV_RDHUP 0x2000u /* EPOLLRDHUP: the peer shut down its writing */
#define PF_EV_EDGE (1u << 31) /* EPOLLET: edge-triggered */

typedef struct pf_loop pf_loop;

/* Called with the events that fired on fd. */
typedef void pf_io_fn(pf_loop *loop, int fd, unsigned events, void *ud);

/* Create and free a loop (epoll, a timer heap). pf_loop_free does not close
 * the descriptors that were added. */
int pf_loop_new(pf_loop **out);
void pf_loop_free(pf_loop *loop);

/* Watch fd for events (PF_EV_*). One watcher per fd; adding a watched fd is
 * -EEXIST. A callback may add, modify or delete any fd, including its own.
 * Delete an fd before closing it: if another descriptor shares the open file
 * (a dup, a forked child's copy), epoll keeps reporting it after close. */
int pf_loop_add(pf_loop *loop, int fd, unsigned events, pf_io_fn *cb, void *ud);
int pf_loop_mod(pf_loop *loop, int fd, unsigned events);
int pf_loop_del(pf_loop *loop, int fd);

/* Run until pf_loop_stop is called (from a callback). Returns 0 or -errno
 * if epoll_wait failed for a reason other than EINTR. With nothing ready the
 * loop gives its CPU once to any other runnable thread (sched_yield) and
 * polls again before it sleeps: where threads outnumber CPUs, the work often
 * comes from that thread, and is then taken without a sleep and a wake-up. */
int pf_loop_run(pf_loop *loop);
void pf_loop_stop(pf_loop *loop);

/* The monotonic clock in milliseconds, read once per loop iteration. */
uint64_t pf_loop_now(const pf_loop *loop);

/* A one-shot timer. The caller owns the struct and keeps it alive while it
 * is active; initialise it once with pf_timer_init. Starting an active timer
 * moves it. ms counts from pf_loop_now (the loop's clock, read once per
 * iteration); a 0 ms timer started from a timer callback fires on the next
 * iteration. Starting an active timer later than it was due (an idle timeout
 * pushed back by each request) is O(1): the timer keeps its place and moves
 * when that time comes. Other operations are O(log n) in active timers. */
typedef struct pf_timer pf_timer;
typedef void pf_timer_fn(pf_loop *loop, pf_timer *t, void *ud);
struct pf_timer {
    uint64_t due;     /* private: its place in the heap */
    uint64_t later;   /* private: when it fires, if restarted past due; else 0 */
    size_t slot;      /* private: heap index + 1, 0 when inactive */
    pf_timer_fn *cb;
    void *ud;
};
void pf_timer_init(pf_timer *t, pf_timer_fn *cb, void *ud);
/* Returns 0, or -ENOMEM, and then the timer stays inactive. It can fail
 * only when it would make more timers active at once than ever before on
 * this loop (the heap grows then, and never shrinks): starting an active
 * timer (moving it, earlier or later) never fails, nor does restarting a
 * timer from its own callback before any other timer is started. */
int pf_timer_start(pf_loop *loop, pf_timer *t, uint64_t ms);
void pf_timer_stop(pf_loop *loop, pf_timer *t);
static inline bool pf_timer_active(const pf_timer *t) { return t->slot != 0; }

/* A deferred call: runs once, on the loop's next iteration, after that
 * iteration's descriptor events and before its timers; while one is queued
 * the loop polls without sleeping. It lets a long job give way to the other
 * descriptors: a large response sent one slice per iteration, say, instead
 * of all at once. Calls run in the order they were queued; one queued from a
 * deferred callback (its own included) waits for the iteration after. The
 * caller owns the struct and keeps it alive while it is queued; initialise
 * it once with pf_defer_init. Queueing a queued call does nothing; stopping
 * one that is not queued does nothing. Each operation is O(1). */
typedef struct pf_defer pf_defer;
typedef void pf_defer_fn(pf_loop *loop, pf_defer *d, void *ud);
struct pf_defer {
    pf_defer *prev, *next; /* private: the queue; NULL when not queued */
    pf_defer_fn *cb;
    void *ud;
};
void pf_defer_init(pf_defer *d, pf_defer_fn *cb, void *ud);
void pf_defer_start(pf_loop *loop, pf_defer *d);
void pf_defer_stop(pf_loop *loop, pf_defer *d);
static inline bool pf_defer_active(const pf_defer *d) { return d->next != NULL; }

/* ------------------------------------------------------------------------ */
/* Worker side                                                              */
/* ------------------------------------------------------------------------ */

/* The worker's context, owned by the library, valid inside the worker. */
typedef struct pf_worker pf_worker;

int pf_worker_index(const pf_worker *w);          /* 0 .. workers-1 */
pf_worker *pf_worker_self(void); /* this process's worker; NULL in the master */
unsigned pf_worker_generation(const pf_worker *w); /* 1, then +1 a reload */

/* The descriptors new connections arrive on; *fds stays owned by the
 * library. Returns the count. In shared and reuseport modes they are
 * listening sockets; in dispatch mode it is the one control socket over
 * which the master passes connections. */
int pf_worker_listeners(const pf_worker *w, const int **fds);

/* Own-main workers: take one connection from fd, one of
 * pf_worker_listeners', once poll(2) says it is readable (accept4, or in
 * dispatch mode a connection the master passed). The connection is
 * non-blocking and close-on-exec, and counted in the scoreboard: give it
 * back with pf_worker_close_conn. peer (may be NULL) gets its address.
 * Returns the fd, or -EAGAIN (nothing there: another worker took it), or
 * another -errno. */
int pf_worker_accept(pf_worker *w, int fd, struct sockaddr_storage *peer, socklen_t *len);

/* The worker's event loop (also usable from a worker main of your own). */
pf_loop *pf_worker_loop(pf_worker *w);

/* Own-main workers: tell the master the worker is ready to serve (the
 * library's loop does it by itself), tick the liveness heartbeat (at least
 * once per second; the library's loop ticks it), and learn about draining:
 * pf_worker_drain_fd becomes readable when the master asks this worker to
 * stop accepting and finish (then pf_worker_draining returns true after
 * pf_worker_poll_control has been called on it). */
void pf_worker_ready(pf_worker *w);
void pf_worker_heartbeat(pf_worker *w);
int pf_worker_drain_fd(const pf_worker *w);
bool pf_worker_poll_control(pf_worker *w);
bool pf_worker_draining(const pf_worker *w);

/* Whether the whole pool is stopping: true from the moment a graceful stop
 * begins (TERM, INT), its --pre-stop-delay included, while the worker may
 * still serve; false through reloads and upgrades, where the pool goes on.
 * What a health check answers (the HTTP core's --health-path: 503). */
bool pf_worker_stopping(const pf_worker *w);

/* From any thread of the worker: work of the service's own is stuck (a
 * request past its time in a thread of its own, while the loop runs on).
 * The heartbeat stops as though the loop had stopped --timeout ago, so the
 * master replaces this worker at its next check, as a hung one: TERM, then
 * KILL after the grace period. Does nothing useful without a timeout. */
void pf_worker_hung(pf_worker *w);

/* A connection handed to on_conn belongs to the service until it passes it
 * here: the fd is removed from the loop if watched, closed, and the worker's
 * connection count drops (a draining worker exits when it reaches 0). The
 * service must not keep a dup of it (the close is what unregisters it). */
void pf_worker_close_conn(pf_worker *w, int fd);

/* Scoreboard counters and the activity line shown by `prefork status`
 * (for example the request line being served; NULL clears it). */
void pf_worker_count(pf_worker *w, uint64_t requests, uint64_t bytes);

/* Count one response of a request/response service (the HTTP core does):
 * a request, its status (by class, 1xx to 5xx), the bytes sent, and how
 * long it took, into a histogram of PF_DURATION_BUCKETS buckets whose
 * upper bounds pf_duration_bound_us gives (the last bucket has none). The
 * metrics (pf_config.metrics_listen) and `prefork status --json` show them.
 * And one TLS handshake, full or resumed. */
void pf_worker_count_response(pf_worker *w, int status, uint64_t bytes, uint64_t us);
void pf_worker_count_tls(pf_worker *w, bool resumed);
#define PF_DURATION_BUCKETS 15
/* Bucket i's upper bound in microseconds (0.5 ms .. 10 s); UINT64_MAX for
 * the last, which holds the rest. */
uint64_t pf_duration_bound_us(int i);
void pf_worker_set_activity(pf_worker *w, const char *what);

/* Stop the library's loop: the worker exits with status as soon as the
 * current callback returns, without waiting for connections. */
void pf_worker_exit(pf_worker *w, int status);

/* Own-main workers: become another program, as systemd's socket activation
 * starts one (what `prefork run` does). The listeners go to descriptors
 * 3, 4, ... (not close-on-exec), the environment gets LISTEN_FDS,
 * LISTEN_PID (this process), LISTEN_FDNAMES ("listen" each),
 * PREFORK_WORKER (the index) and PREFORK_GENERATION, every signal goes back
 * to its default and none is blocked, stdin reads /dev/null; then
 * execvp(argv[0], argv). The pid stays: the master supervises the program
 * as the worker (see pf_config's notify and capture_output for its
 * readiness and output). Returns only on failure, logged: -EINVAL (no
 * argv[0]), -ENOTSUP in PF_MODE_DISPATCH (no listening sockets to give),
 * or exec's -errno; the process is then half changed: exit (127 is the
 * shell's "cannot run"). */
int pf_worker_exec(pf_worker *w, char *const argv[]);

/* What a service provides. All callbacks are optional except that one of
 * on_conn and main must be set. They run in the worker process. */
/* What the master tells a service about its pool (pf_service.on_master_event). */
enum pf_event_kind {
    PF_EVENT_READY,       /* the first generation is all ready: the pool serves
                             (after the pidfile is written) */
    PF_EVENT_RELOADED,    /* a reload's generation is all ready; the old one drains */
    PF_EVENT_WORKER_EXIT, /* a worker has exited, for any cause, and was reaped */
};
struct pf_event {
    enum pf_event_kind kind;
    unsigned generation;  /* READY, RELOADED: the one now serving; WORKER_EXIT: the worker's */
    int index;            /* WORKER_EXIT: the worker's index; else -1 */
    pid_t pid;            /* WORKER_EXIT: its pid; else 0 */
    int status;           /* WORKER_EXIT: its wait status (WIFEXITED, WTERMSIG ...) */
};

struct pf_service {
    /* After fork, before serving. A negative return makes the worker exit
     * with status 1 (a start failure, respawned with back-off). */
    int (*init)(pf_worker *w, void *ud);
    /* Library loop: a connection was accepted (non-blocking, close-on-exec)
     * from peer (valid during the call only; peerlen 0 if unknown). */
    void (*on_conn)(pf_worker *w, int fd, const struct sockaddr *peer,
                    socklen_t peerlen, void *ud);
    /* Library loop: the master asked to drain. Listeners are already closed;
     * close idle connections, finish the others. */
    void (*on_drain)(pf_worker *w, void *ud);
    /* Own main: runs instead of the library loop; returns the exit status. */
    int (*main)(pf_worker *w, void *ud);
    /* Before the worker exits normally (flush buffers). */
    void (*fini)(pf_worker *w, void *ud);
    /* The master got USR1: reopen log files (the library reopens its own
     * error log first). Library loop only. */
    void (*on_reopen)(pf_worker *w, void *ud);
    /* In the master, never in a worker. On HUP, before the new generation
     * is forked: load afresh what it must see (certificates, say). A
     * negative return fails the reload, with why (a line, filled in by the
     * hook, at most size bytes) in the one log line that says so; the
     * serving generation goes on. It runs in the master's loop: keep it
     * short, never blocking on the network. */
    int (*on_master_reload)(void *ud, char *why, size_t size);
    /* In the master, every master_tick_ms (0: never), from the first
     * generation's start until the pool stops: short periodic work (such
     * as rotating keys the workers share). */
    void (*on_master_tick)(void *ud);
    unsigned master_tick_ms;
    /* In the master: the pool's events, from its loop (keep it short). */
    void (*on_master_event)(void *ud, const struct pf_event *ev);
    void *ud;
};

/* A worker exit status meaning "do not respawn: stop the pool" (a permanent
 * error such as a bad configuration), as s6's 100. */
#define PF_EXIT_FATAL 100

/* ------------------------------------------------------------------------ */
/* Master side                                                              */
/* ------------------------------------------------------------------------ */

/* How connections reach the workers. SHARED: all poll the same listeners
 * (EPOLLEXCLUSIVE); a worker with more than 1.25 times the connections of
 * the least loaded other one, plus 4, leaves new ones to the others for a
 * while (library loop only). REUSEPORT: one SO_REUSEPORT socket per worker
 * index, kept by the master. DISPATCH: the master accepts and passes each
 * connection to the least busy ready worker. */
enum pf_mode { PF_MODE_SHARED, PF_MODE_REUSEPORT, PF_MODE_DISPATCH };

/* Pool options. Fill with pf_config_init, then change what you need. */
struct pf_config {
    int workers;                  /* 1..PF_MAX_WORKERS; default: online CPUs */
    enum pf_mode mode;            /* default PF_MODE_SHARED */
    int backlog;                  /* <= 0: net.core.somaxconn */
    int max_conns;                /* per worker; default 10000 */
    unsigned accept_batch;        /* accepts per wake-up; default 16 */
    /* Set on the TCP listeners when they are bound; accepted connections
     * inherit them, in every mode (default false): */
    bool tcp_nodelay;             /* TCP_NODELAY */
    bool defer_accept;            /* TCP_DEFER_ACCEPT: a connection is handed
                                     over once its first bytes are in (for
                                     protocols where the client speaks first) */
    unsigned graceful_timeout_ms; /* TERM: drain deadline; default 60000 */
    unsigned max_start_failures;  /* give up after this many; default 5 */
    unsigned min_uptime_ms;       /* a death sooner is "young"; default 1000 */
    unsigned backoff_max_ms;      /* back-off cap; default 30000 */
    enum pf_log_level log_level;  /* default PF_LOG_INFO */
    /* Lifecycle (all 0 = off unless said otherwise): */
    unsigned max_requests;        /* recycle a worker after this many requests */
    unsigned max_requests_jitter; /* ... plus a random 0..jitter, per worker */
    unsigned timeout_ms;          /* a worker whose heartbeat is older is hung */
    unsigned hung_grace_ms;       /* then killed after this; default 5000 */
    unsigned ready_timeout_ms;    /* a reload's workers must be ready by; 60000 */
    unsigned pre_stop_delay_ms;   /* TERM: keep serving this long first */
    /* Listeners that require the PROXY protocol (a balancer's header with
     * the client's address first on each connection): the sources it is
     * taken from; a connection from anywhere else is closed. Default
     * 127.0.0.1 and ::1. */
    struct pf_cidr proxy_allow[PF_MAX_PROXY_ALLOW];
    int nproxy_allow;
    unsigned proxy_timeout_ms;    /* for the whole header; default 10000 */
    char metrics_listen[128];     /* an address (pf_addr_parse) where the master
                                     answers GET /metrics with the pool's figures
                                     in Prometheus text format; "": off */
    unsigned max_generations;     /* alive at once (draining included); 3 */
    bool drop_privileges;         /* workers switch to uid/gid after fork */
    uid_t uid;
    gid_t gid;
    const char *pidfile;          /* written atomically once ready (if it cannot be,
                                     the pool stops: pf_pool_run); NULL none */
    const char *error_log;        /* the path pf_log_open was given, reopened
                                     on USR1; NULL: stderr */
    /* For workers that exec another program (prefork run): */
    int stop_signal;              /* asks a worker to stop; default SIGTERM */
    bool notify;                  /* give each worker a NOTIFY_SOCKET (sd_notify:
                                     READY=1, WATCHDOG=1, STATUS=) */
    unsigned ready_delay_ms;      /* ready after this long without READY=1 */
    bool capture_output;          /* log workers' stdout/stderr, line by line */
    unsigned max_lifetime_ms;     /* recycle a worker after this long */
    unsigned max_lifetime_jitter_ms;
    /* CPU pinning (default off, as nginx's worker_cpu_affinity): worker i
     * runs only on the (i mod n)-th of the n usable CPUs, those the master
     * may run on (its affinity mask: taskset, cgroup cpusets), narrowed to
     * cpu_list unless cpu_list is all zero ("auto"). Workers then stay
     * one per CPU instead of sharing one while another idles; worth it when
     * they have their CPUs to themselves, not when other busy processes
     * share them (a pinned worker cannot move away: see bench/README.md).
     * In PF_MODE_REUSEPORT with no more workers than usable CPUs, each new
     * connection also goes to the worker on the CPU that handled its SYN
     * (SO_ATTACH_REUSEPORT_CBPF), which pays in either setting. */
    bool cpu_affinity;
    uint64_t cpu_list[PF_MAX_CPUS / 64]; /* bit c of word c / 64: CPU c */
};
void pf_config_init(struct pf_config *cfg);

/* Check a configuration: 0, or -EINVAL with *why set to a static reason. */
int pf_config_check(const struct pf_config *cfg, const char **why);

/* Set one option from text, by its command-line long name, so that every
 * service built on the library parses the common options alike:
 *   workers N (1..PF_MAX_WORKERS)     mode shared|reuseport|dispatch
 *   backlog N (1..65535)              max-conns N (1..PF_MAX_CONNS)
 *   accept-batch N (1..1024)          graceful-timeout SEC (0..86400, e.g. 2.5)
 *   max-start-failures N (1..1000)    min-uptime SEC (0..3600)
 *   max-requests N (0..10^9, 0 off)   max-requests-jitter N (0..10^9)
 *   timeout SEC (0..86400, 0 off)     ready-timeout SEC (1..86400)
 *   pre-stop-delay SEC (0..3600)      max-generations N (2..16)
 *   stop-signal NAME (TERM, INT, QUIT, HUP, USR1, USR2, WINCH or a number)
 *   ready-delay SEC (0..3600)         max-lifetime SEC (0..10^6, 0 off)
 *   max-lifetime-jitter SEC (0..10^6)
 *   cpu-affinity off|auto|LIST (LIST as taskset -c takes it: "0-3,6"; it
 *                               must name a CPU this process may run on)
 *   metrics-listen ADDR (HOST:PORT or unix:PATH, as pf_addr_parse reads it)
 *   proxy-allow-from CIDR[,CIDR...] (pf_cidr_parse; "*" for any source)
 *   log-level error|warning|info|debug (also warn, and critical for error)
 * Returns 0; -ENOENT for an unknown name; -EINVAL with *why set to a static
 * reason ("must be a whole number from 1 to 1024") for a bad value. */
int pf_config_set(struct pf_config *cfg, const char *name, const char *value,
                  const char **why);

/* "shared", "reuseport" or "dispatch". */
const char *pf_mode_name(enum pf_mode mode);

/* The pool. Created by pf_pool_new, freed by pf_pool_free (which closes the
 * listeners). cfg and svc are copied. */
typedef struct pf_pool pf_pool;
int pf_pool_new(pf_pool **out, const struct pf_config *cfg,
                const struct pf_service *svc);
void pf_pool_free(pf_pool *pool);

/* Add a listener: parse spec (pf_addr_parse) and bind it now, in the master.
 * A socket systemd or an old master (USR2) passed is taken as it is: the one
 * bound to the address asked for, or for "fd:N" socket N (so that systemd's
 * sockets get flags: "fd:3,tls"). Returns 0 or -errno (-EINVAL for a bad
 * spec, -EADDRINUSE, -EACCES, ...). */
int pf_pool_listen(pf_pool *pool, const char *spec);

/* Adopt the sockets systemd passed (pf_listen_systemd) that no
 * pf_pool_listen took. Returns the count. The pool makes every passed
 * socket non-blocking (systemd passes them blocking). */
int pf_pool_listen_systemd(pf_pool *pool);

/* The bound address of listener i ("127.0.0.1:41234" when port 0 was asked),
 * for the start-up line. Returns 0, or -ENOENT past the last listener. */
int pf_pool_listener_name(const pf_pool *pool, int i, char *buf, size_t size);
int pf_pool_listener_count(const pf_pool *pool);

/* The flags listener i was given in its spec (PF_ADDR_TLS ...): 0 for
 * sockets adopted from systemd. -ENOENT past the last listener. */
int pf_pool_listener_flags(const pf_pool *pool, int i);

/* Run the pool: fork the workers and supervise them until a stop signal
 * (TERM, INT, QUIT) has been handled, or until a new master started by USR2
 * has taken over. Returns 0 after a clean stop, -ECHILD when a worker kept
 * failing to start (or exited PF_EXIT_FATAL), or -errno if the master could
 * not set itself up or write cfg.pidfile once ready (it then stops
 * gracefully). Returns in the master only.
 *
 * Signals (as in prefork(1), SIGNALS): TERM graceful stop, INT the same (a second INT:
 * fast), QUIT fast stop, HUP rolling reload (a new generation of workers,
 * then the old one drains), USR1 reopen logs (master and workers), USR2
 * upgrade (exec the program anew as a new master that inherits the
 * listeners; once it is ready this master drains and returns 0), TTIN / TTOU
 * one worker more / fewer. Under systemd (NOTIFY_SOCKET) the master reports
 * READY=1, RELOADING=1, STOPPING=1 and MAINPID=. */
int pf_pool_run(pf_pool *pool);

/* The program a USR2 upgrade runs: path and argv (NULL-terminated; both
 * must outlive the pool). Without it, USR2 is refused with a log line.
 * Typically the caller's own /proc/self/exe (resolved at start) and argv. */
void pf_pool_set_upgrade(pf_pool *pool, const char *path, char *const *argv);

/* The directory the upgrade's program starts in (it must outlive the pool).
 * Without it, the master's current one: a program that changes directory
 * after reading its arguments names here the one they were relative to. */
void pf_pool_set_upgrade_dir(pf_pool *pool, const char *dir);

/* ------------------------------------------------------------------------ */
/* Scoreboard (read side, for status tools and tests)                       */
/* ------------------------------------------------------------------------ */

enum pf_state {
    PF_STATE_EMPTY,    /* slot unused */
    PF_STATE_STARTING, /* forked, not ready yet */
    PF_STATE_IDLE,     /* ready, no connection */
    PF_STATE_BUSY,     /* ready, at least one connection */
    PF_STATE_DRAINING, /* told to stop: not accepting, finishing */
};

/* A copy of one worker's slot. */
struct pf_slot_info {
    pid_t pid;
    int index;
    unsigned generation;
    enum pf_state state;
    uint64_t started_ms;   /* wall clock, ms since the epoch */
    uint64_t heartbeat_ms; /* age of the last heartbeat, ms */
    uint64_t accepted;     /* connections accepted */
    uint64_t wakeups;      /* listener events this worker handled (a wake-up
                              the kernel absorbs inside epoll_wait is not
                              seen; bench/wakeups also counts context
                              switches for that) */
    uint64_t requests;     /* as counted by the service */
    uint64_t bytes;        /* bytes sent, as counted by the service */
    uint64_t active;       /* open connections */
    uint64_t status[5];    /* responses by class, 1xx .. 5xx (pf_worker_count_response) */
    uint64_t duration_us;  /* their durations, summed */
    uint64_t hist[PF_DURATION_BUCKETS]; /* per bucket, not cumulative */
    uint64_t tls_full, tls_resumed;
    uint64_t activity_ms;  /* how long it has been doing it, ms */
    char activity[128];    /* what it is doing (service-defined) */
};

/* Why the master replaced a worker (the restart counters). */
enum pf_restart_cause {
    PF_RESTART_CRASH,   /* it died unasked (a crash, an exit) */
    PF_RESTART_TIMEOUT, /* it hung past --timeout */
    PF_RESTART_RECYCLE, /* --max-requests, --max-lifetime */
    PF_RESTART_RELOAD,  /* a new generation took its place (HUP) */
    PF_RESTART_CAUSES
};

/* The pool's own figures. */
struct pf_pool_info {
    pid_t master;
    enum pf_mode mode;
    unsigned generation;       /* the one serving */
    int index_hi;              /* worker indexes 0 .. index_hi-1 have been used */
    uint64_t started_ms;       /* wall clock, ms since the epoch */
    bool stopping;             /* a graceful stop has begun */
    uint64_t restarts[PF_RESTART_CAUSES];
    uint64_t reloads, reloads_failed, upgrades;
};

/* One worker index over the pool's life: its live workers (two during a
 * reload) and the workers of that index that have exited, summed. These
 * counters never go back while the master runs. */
struct pf_worker_totals {
    uint64_t accepted, requests, bytes;
    uint64_t status[5];        /* responses by class, 1xx .. 5xx */
    uint64_t duration_us;
    uint64_t hist[PF_DURATION_BUCKETS];
    uint64_t tls_full, tls_resumed;
    uint64_t active;           /* open connections now (live workers only) */
    int live;                  /* its workers alive now */
};

/* Attach read-only to the scoreboard of the running master `pid` (same user
 * or root). Returns 0 or -errno (-ESRCH: no such process; -ENOENT: not a
 * prefork master). Free with pf_scoreboard_close. */
typedef struct pf_scoreboard pf_scoreboard;
int pf_scoreboard_open(pid_t pid, pf_scoreboard **out);
void pf_scoreboard_close(pf_scoreboard *sb);
/* Copy the used slots (state != EMPTY) into out (up to max). Returns the
 * count. */
int pf_scoreboard_read(pf_scoreboard *sb, struct pf_slot_info *out, int max);
void pf_scoreboard_pool(pf_scoreboard *sb, struct pf_pool_info *out);
/* Worker index i's totals: true if the index has been used. */
bool pf_scoreboard_totals(pf_scoreboard *sb, int index, struct pf_worker_totals *out);

#ifdef __cplusplus
}
#endif
#endif /* PREFORK_H */
