/* py_pool.c — run the pool from Python: options by their command-line names, listeners, the fork with the GIL held, each worker's Python start. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "py.h"
#include "tls/tls.h"

struct py_serve py_serve;

/* Read by the pool for as long as it runs, and by every worker. */
static struct pf_config cfg;
static struct http_handler handler;
static char *strings[8 + PF_MAX_LISTENERS + 3 * TLS_MAX_PAIRS];
static struct tls_config tls;
static int nstrings;
static char **upgrade_argv;
static char server_name[256] = "localhost", server_port[16] = "80";

/* A C string that lives as long as the process. */
static const char *keep(PyObject *s)
{
    const char *p = PyUnicode_AsUTF8(s);
    if (!p || nstrings == (int)(sizeof strings / sizeof strings[0]))
        return NULL;
    return strings[nstrings++] = strdup(p);
}

/* ---- the worker side ---- */

static int worker_index = -1;
static unsigned worker_generation;

PyObject *py_worker(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    if (worker_index < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(iI)", worker_index, worker_generation);
}

/* PREFORK_WORKER and PREFORK_GENERATION in os.environ, as `prefork run`
 * gives its programs. */
static void set_environ(void)
{
    PyObject *os = PyImport_ImportModule("os");
    PyObject *env = os ? PyObject_GetAttrString(os, "environ") : NULL;
    PyObject *i = PyUnicode_FromFormat("%d", worker_index);
    PyObject *g = PyUnicode_FromFormat("%u", worker_generation);
    if (!env || !i || !g || PyMapping_SetItemString(env, "PREFORK_WORKER", i) < 0 ||
        PyMapping_SetItemString(env, "PREFORK_GENERATION", g) < 0)
        py_log_exception("cannot set PREFORK_WORKER in os.environ:");
    Py_XDECREF(i);
    Py_XDECREF(g);
    Py_XDECREF(env);
    Py_XDECREF(os);
}

int py_worker_init(pf_worker *w)
{
    PyOS_AfterFork_Child();
    if (w) {
        worker_index = pf_worker_index(w);
        worker_generation = pf_worker_generation(w);
        set_environ();
    }
    if (py_serve.loader) {
        PyObject *app = PyObject_CallNoArgs(py_serve.loader);
        if (!app) {
            py_log_exception("cannot start the worker:");
            return -EINVAL;
        }
        Py_XSETREF(py_serve.app, app);
    }
    int err = py_watch_start(py_serve.timeout_ms, 1 + (int)py_serve.threads, w);
    if (err < 0)
        pf_log(PF_LOG_ERROR, "the --timeout watchdog thread: %s", strerror(-err));
    return 0;
}

static void flush_stream(const char *name)
{
    PyObject *f = PySys_GetObject(name); /* borrowed */
    PyObject *r = f && f != Py_None ? PyObject_CallMethod(f, "flush", NULL) : NULL;
    if (!r)
        PyErr_Clear();
    Py_XDECREF(r);
}

/* A worker leaving cleanly runs the worker_exit hook, then what Python
 * printed is flushed: the worker leaves with _exit. */
void py_worker_fini(void)
{
    py_gil_worker_end();
    if (py_serve.worker_exit) {
        PyObject *r = PyObject_CallNoArgs(py_serve.worker_exit);
        if (!r)
            py_log_exception("the worker_exit hook failed:");
        Py_XDECREF(r);
    }
    flush_stream("stdout");
    flush_stream("stderr");
}

/* ---- the options ---- */

/* --threads: 1 (the app runs on the loop's thread) to 1024. */
static int set_threads(const char *v, const char **why)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n < 1 || n > 1024) {
        *why = "expected a number of threads from 1 to 1024";
        return -EINVAL;
    }
    py_serve.threads = (unsigned)n;
    return 0;
}

/* Each is set by its long name, as the prefork command parses it: the
 * pool's (pf_config_set), else the HTTP core's (http_config_set). */
static int set_option(PyObject *name, PyObject *value)
{
    const char *n = PyUnicode_AsUTF8(name);
    PyObject *vs = n ? PyObject_Str(value) : NULL;
    const char *v = vs ? PyUnicode_AsUTF8(vs) : NULL;
    if (!v) {
        Py_XDECREF(vs);
        return -1;
    }
    const char *why = "bad value";
    int err = strcmp(n, "threads") == 0              ? set_threads(v, &why)
              : strcmp(n, "forwarded-allow-ips") == 0 ? pyw_forwarded_allow(v, &why)
                                                      : pf_config_set(&cfg, n, v, &why);
    if (err == -ENOENT)
        err = http_config_set(&py_serve.http, n, v, &why);
    if (err == -ENOENT && strncmp(n, "tls-", 4) == 0) { /* file names: kept as given */
        const char *kept = keep(vs);
        err = kept ? tls_config_set(&tls, n, kept, &why) : -ENOMEM;
    }
    if (err == -ENOENT)
        PyErr_Format(PyExc_ValueError, "unknown option --%s", n);
    else if (err < 0)
        PyErr_Format(PyExc_ValueError, "--%s '%s': %s", n, v, why);
    Py_DECREF(vs);
    return err < 0 ? -1 : 0;
}

/* tls-ocsp: a list beside tls-cert, its n-th file for the n-th
 * certificate (None: none), set once every certificate is. */
static int set_ocsp(PyObject *list)
{
    for (Py_ssize_t i = 0; PyList_Check(list) && i < PyList_GET_SIZE(list); i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (item == Py_None)
            continue;
        const char *kept = PyUnicode_Check(item) ? keep(item) : NULL, *why = "must be a file name";
        if (!kept || tls_config_set_ocsp(&tls, (int)i, kept, &why) < 0) {
            PyErr_Format(PyExc_ValueError, "--tls-ocsp #%zd: %s", i + 1, why);
            return -1;
        }
    }
    return 0;
}

static int set_options(PyObject *options)
{
    PyObject *k, *v, *ocsp = NULL;
    Py_ssize_t pos = 0;
    while (PyDict_Next(options, &pos, &k, &v)) {
        if (v == Py_None)
            continue;
        if (PyUnicode_Check(k) && PyUnicode_CompareWithASCIIString(k, "tls-ocsp") == 0) {
            ocsp = v;
            continue;
        }
        if (!PyList_Check(v)) {
            if (set_option(k, v) < 0)
                return -1;
            continue;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) /* repeated: --tls-cert */
            if (set_option(k, PyList_GET_ITEM(v, i)) < 0)
                return -1;
    }
    if (ocsp && set_ocsp(ocsp) < 0)
        return -1;
    py_serve.timeout_ms = cfg.timeout_ms;
    return 0;
}

static int open_access_log(PyObject *path)
{
    py_serve.http.access_log_fd = -1;
    if (path == Py_None)
        return 0;
    const char *p = keep(path);
    if (!p)
        return -1;
    if (strcmp(p, "off") == 0)
        return 0;
    if (strcmp(p, "-") == 0) {
        /* a copy: with --capture-output a worker's stdout becomes a pipe */
        int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        py_serve.http.access_log_fd = fd;
        return 0;
    }
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, p);
        return -1;
    }
    py_serve.http.access_log_fd = fd;
    py_serve.http.access_log_path = p;
    return 0;
}

static int open_error_log(PyObject *path)
{
    const char *p = path == Py_None ? NULL : keep(path);
    if (path != Py_None && !p)
        return -1;
    int err = pf_log_open(p);
    if (err < 0) {
        errno = -err;
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, p);
        return -1;
    }
    cfg.error_log = p && strcmp(p, "-") ? p : NULL;
    return 0;
}

/* argv for USR2: a NULL-terminated copy that outlives the pool. */
static int set_upgrade(pf_pool *pool, PyObject *argv, PyObject *dir)
{
    if (argv == Py_None)
        return 0;
    if (dir != Py_None) {
        const char *kept = keep(dir);
        if (!kept)
            return -1;
        pf_pool_set_upgrade_dir(pool, kept);
    }
    Py_ssize_t n = PyList_Size(argv);
    if (n < 1)
        return PyErr_Occurred() ? -1 : 0;
    upgrade_argv = calloc((size_t)n + 1, sizeof *upgrade_argv);
    for (Py_ssize_t i = 0; upgrade_argv && i < n; i++) {
        const char *s = PyUnicode_AsUTF8(PyList_GET_ITEM(argv, i));
        if (!s || !(upgrade_argv[i] = strdup(s)))
            return -1;
    }
    if (upgrade_argv)
        pf_pool_set_upgrade(pool, upgrade_argv[0], upgrade_argv);
    return 0;
}

/* ---- listeners, and what the start-up line says ---- */

static int bind_all(pf_pool *pool, PyObject *listen)
{
    Py_ssize_t n = PyList_Size(listen);
    if (n < 0)
        return -1;
    if (n == 0 && pf_pool_listen_systemd(pool) > 0)
        return 0;
    for (Py_ssize_t i = 0; i < (n ? n : 1); i++) {
        const char *spec = n ? PyUnicode_AsUTF8(PyList_GET_ITEM(listen, i)) : "127.0.0.1:8000";
        if (!spec)
            return -1;
        int err = pf_pool_listen(pool, spec);
        if (err == -EINVAL) {
            PyErr_Format(PyExc_ValueError, "--listen '%s': not an address", spec);
            return -1;
        }
        if (err < 0) {
            PyErr_Format(PyExc_OSError, "cannot listen on %s: %s", spec, strerror(-err));
            return -1;
        }
    }
    return 0;
}

/* SERVER_NAME and SERVER_PORT for requests without Host: the first
 * listener's address. */
static void server_address(pf_pool *pool)
{
    char name[128];
    if (pf_pool_listener_name(pool, 0, name, sizeof name) < 0 || strncmp(name, "unix:", 5) == 0 ||
        strncmp(name, "fd:", 3) == 0)
        return;
    char *colon = strrchr(name, ':');
    if (!colon)
        return;
    *colon = '\0';
    snprintf(server_port, sizeof server_port, "%s", colon + 1);
    snprintf(server_name, sizeof server_name, "%s", name);
}

static void print_start(pf_pool *pool, const char *what, const char *scheme)
{
    char where[1024];
    size_t n = 0;
    where[0] = '\0';
    for (int i = 0; i < pf_pool_listener_count(pool) && n < sizeof where; i++) {
        char name[128];
        pf_pool_listener_name(pool, i, name, sizeof name);
        bool path = strncmp(name, "unix:", 5) == 0 || strncmp(name, "fd:", 3) == 0;
        bool secure = pf_pool_listener_flags(pool, i) > 0 &&
                      (pf_pool_listener_flags(pool, i) & PF_ADDR_TLS);
        n += (size_t)snprintf(where + n, sizeof where - n, "%s%s%s%s", i ? ", " : "",
                              path ? "" : secure ? "https://" : scheme, name,
                              path || !*scheme ? "" : "/");
    }
    printf("prefork: serving %s on %s (%d worker%s, %s)\n", what, where, cfg.workers,
           cfg.workers == 1 ? "" : "s", pf_mode_name(cfg.mode));
    fflush(stdout);
}

/* ---- run ---- */

/* Whether a listener has ,tls; then the certificates, read now, in the
 * master, before anything forks (a bad one is a usage error). */
static int setup_tls(PyObject *listen, bool wsgi, struct pf_service *svc)
{
    bool wanted = false;
    for (Py_ssize_t i = 0; i < PyList_Size(listen); i++) {
        const char *spec = PyUnicode_AsUTF8(PyList_GET_ITEM(listen, i));
        struct pf_addr a;
        if (!spec)
            return -1;
        wanted |= pf_addr_parse(spec, &a, NULL) == 0 && (a.flags & PF_ADDR_TLS);
    }
    if (!wanted && !tls_config_used(&tls))
        return 0;
    if (!wsgi) {
        PyErr_SetString(PyExc_ValueError, "TLS is for WSGI applications: a socket handler "
                        "gets the raw connection");
        return -1;
    }
    if (!wanted) {
        PyErr_Format(PyExc_ValueError, "--%s is for listeners with ,tls (as in -l "
                     "127.0.0.1:8443,tls)", tls.first[0] ? tls.first : "tls-cert");
        return -1;
    }
    char why[512];
    if (tls_load(&tls, why, sizeof why) < 0) {
        PyErr_SetString(PyExc_ValueError, why);
        return -1;
    }
    py_serve.http.transport = tls_source();
    tls_service(svc);
    return 0;
}

static int setup(PyObject *kind, PyObject *options, PyObject *listen, PyObject *access_log,
                 PyObject *error_log, PyObject *pidfile, int uid, int gid, int level,
                 struct pf_service *svc)
{
    pf_config_init(&cfg);
    tls_config_init(&tls);
    cfg.log_level = level < 0 ? PF_LOG_WARN : level > 0 ? PF_LOG_DEBUG : PF_LOG_INFO;
    pf_log_set_level(cfg.log_level);
    http_config_init(&py_serve.http);
    py_serve.threads = 1;
    pyw_forwarded_init();
    py_serve.http.max_body = 100u << 20; /* uploads: spilled to disk past 256 KiB */
    cfg.tcp_nodelay = true;
    cfg.defer_accept = true;
    bool wsgi = PyUnicode_CompareWithASCIIString(kind, "wsgi") == 0;
    if (!wsgi)
        cfg.mode = PF_MODE_DISPATCH; /* a blocking handler: idle workers only */
    if (set_options(options) < 0 || open_access_log(access_log) < 0 ||
        open_error_log(error_log) < 0)
        return -1;
    pf_log_set_level(cfg.log_level); /* --log-level, if given, over -q / -v */
    cfg.proxy_timeout_ms = py_serve.http.header_timeout_ms; /* the header is part of the head */
    if (!wsgi && py_serve.threads > 1) {
        PyErr_SetString(PyExc_ValueError, "--threads is for WSGI applications: a socket "
                        "handler has its worker to itself (dispatch mode)");
        return -1;
    }
    if (pidfile != Py_None && !(cfg.pidfile = keep(pidfile)))
        return -1;
    if (uid >= 0 || gid >= 0) {
        cfg.drop_privileges = true;
        cfg.uid = uid >= 0 ? (uid_t)uid : geteuid();
        cfg.gid = gid >= 0 ? (gid_t)gid : getegid();
    }
    const char *why;
    if (pf_config_check(&cfg, &why) < 0) {
        PyErr_Format(PyExc_ValueError, "%s", why);
        return -1;
    }
    if (wsgi) {
        pyw_handler(&handler);
        http_service(&py_serve.http, &handler, svc);
    } else {
        py_sock_service(svc);
    }
    return setup_tls(listen, wsgi, svc);
}

/* --check-config: each address parses (none is bound); 0 then. */
static PyObject *check_listeners(PyObject *listen)
{
    for (Py_ssize_t i = 0; i < PyList_Size(listen); i++) {
        const char *spec = PyUnicode_AsUTF8(PyList_GET_ITEM(listen, i)), *why = "bad address";
        struct pf_addr a;
        if (!spec)
            return NULL;
        if (pf_addr_parse(spec, &a, &why) < 0)
            return PyErr_Format(PyExc_ValueError, "--listen '%s': %s", spec, why);
    }
    tls_unload();
    return PyLong_FromLong(0);
}

/* The pool forks with the GIL held by this thread, as fork() from Python
 * would: PyOS_BeforeFork once (the import lock stays held in the master,
 * which imports nothing meanwhile), PyOS_AfterFork_Child in each worker,
 * PyOS_AfterFork_Parent when the pool is done. */
static int run_pool(pf_pool *pool)
{
    PyOS_BeforeFork();
    int err = pf_pool_run(pool);
    PyOS_AfterFork_Parent();
    return err;
}

PyObject *py_run(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"kind", "app", "loader", "options", "listen", "what",
                            "access_log", "error_log", "pidfile", "uid", "gid",
                            "upgrade_argv", "level", "worker_exit", "upgrade_dir",
                            "capture_output", "master_event", "check", NULL};
    PyObject *kind, *app, *loader, *options, *listen, *access_log = Py_None,
             *error_log = Py_None, *pidfile = Py_None, *argv = Py_None,
             *worker_exit = Py_None, *upgrade_dir = Py_None, *master_event = Py_None;
    const char *what;
    int uid = -1, gid = -1, level = 0, capture = 0, check = 0;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "UOOO!O!s|OOOiiOiOOpOp:run", names, &kind,
                                     &app, &loader, &PyDict_Type, &options, &PyList_Type,
                                     &listen, &what, &access_log, &error_log, &pidfile, &uid,
                                     &gid, &argv, &level, &worker_exit, &upgrade_dir, &capture,
                                     &master_event, &check))
        return NULL;
    if (master_event != Py_None && !PyCallable_Check(master_event))
        return PyErr_Format(PyExc_TypeError, "master_event must be callable");
    if (py_serve.loader || py_serve.app)
        return PyErr_Format(PyExc_RuntimeError, "one pool per process");
    struct pf_service svc;
    if (setup(kind, options, listen, access_log, error_log, pidfile, uid, gid, level, &svc) < 0)
        return NULL;
    if (check) /* --check-config: the options, the certificates and the addresses hold */
        return check_listeners(listen);
    cfg.capture_output = capture; /* each line a worker prints: a log line of the master's */
    py_master_hooks(master_event, &svc);
    py_serve.app = app == Py_None ? NULL : Py_NewRef(app);
    py_serve.loader = loader == Py_None ? NULL : Py_NewRef(loader);
    py_serve.worker_exit = worker_exit == Py_None ? NULL : Py_NewRef(worker_exit);
    pf_pool *pool;
    int err = pf_pool_new(&pool, &cfg, &svc);
    if (err < 0)
        return PyErr_Format(PyExc_OSError, "cannot create the pool: %s", strerror(-err));
    char why[256];
    if (bind_all(pool, listen) < 0 || set_upgrade(pool, argv, upgrade_dir) < 0) {
        pf_pool_free(pool);
        return NULL;
    }
    if (tls_listeners(pool, why, sizeof why) < 0) {
        pf_pool_free(pool);
        return PyErr_Format(PyExc_ValueError, "%s", why);
    }
    server_address(pool);
    py_serve.server_name = server_name;
    py_serve.server_port = server_port;
    bool wsgi = PyUnicode_CompareWithASCIIString(kind, "wsgi") == 0;
    print_start(pool, what, wsgi ? "http://" : "");
    err = run_pool(pool);
    pf_pool_free(pool);
    tls_unload();
    return PyLong_FromLong(err < 0 ? 1 : 0);
}
