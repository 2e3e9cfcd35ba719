"""prefork.server: serve_wsgi() and serve(), whose keyword arguments mirror the command line."""
import ast
import collections
import gc
import grp
import importlib
import inspect
import os
import pwd
import sys

from . import _prefork

# Options the C side parses by their command-line names (underscores here,
# dashes there): the pool's, then the HTTP core's.
POOL_OPTIONS = (
    "workers", "mode", "backlog", "max_conns", "accept_batch", "graceful_timeout",
    "max_start_failures", "max_requests", "max_requests_jitter", "timeout",
    "ready_timeout", "pre_stop_delay", "max_generations", "cpu_affinity", "metrics_listen",
    "proxy_allow_from", "log_level",
)
HTTP_OPTIONS = (
    "header_timeout", "keepalive_timeout", "send_timeout", "body_timeout",
    "keepalive_requests", "max_header_bytes", "max_uri_bytes", "max_headers",
    "max_body_bytes", "health_path",
)
# The WSGI server's own, and HTTPS's (tls_cert and tls_key repeatable:
# lists, the n-th key going with the n-th certificate).
WSGI_OPTIONS = ("threads", "forwarded_allow_ips")
TLS_OPTIONS = ("tls_cert", "tls_key", "tls_ocsp", "tls_ticket_rotate", "tls_session_cache",
               "tls_min_version", "tls_ciphers", "tls_client_ca", "tls_verify_client")

# The hooks, keyword arguments of serve_wsgi() and serve() and names in a
# configuration file, with the arguments each is called with: where, when.
HOOKS = {
    "on_starting": (),             # the master, before the listeners (and --preload)
    "post_fork": ("worker",),      # each worker, before it loads the application
    "post_worker_init": ("worker",),  # each worker, the application loaded
    "worker_exit": ("worker",),    # each worker leaving cleanly: stop, reload, recycle
    "when_ready": (),              # the master, every worker ready (after the pidfile)
    "on_reload": (),               # the master, on HUP before the new generation; raising
                                   # fails the reload
    "child_exit": ("worker",),     # the master, a worker gone for any cause
    "on_exit": (),                 # the master, the pool stopped
}
MASTER_HOOKS = ("when_ready", "on_reload", "child_exit")

Worker = collections.namedtuple("Worker", "index generation pid exitcode", defaults=(None,))
Worker.__doc__ = """The worker a hook runs in or is about: its index (0 to
workers-1, taken over by its replacement), its generation (1, then one more
with each HUP), its process id, and in child_exit its exit code (minus the
signal that killed it, as subprocess's returncode); None elsewhere."""


def check_hook(name, fn):
    """ValueError unless fn can be called as the hook name is."""
    if not callable(fn):
        raise ValueError(f"{name}: {fn!r} is not callable")
    args = HOOKS[name]
    try:
        inspect.signature(fn).bind(*args)
    except TypeError:
        want = f"one argument ({args[0]})" if args else "no argument"
        raise ValueError(f"{name}: {getattr(fn, '__qualname__', fn)!r} must take {want}") from None
    except ValueError:  # no signature to read (some built-ins): called as it is
        pass


def _hooks(options):
    """The hooks among options (taken out of them), checked."""
    hooks = {name: fn for name in HOOKS if (fn := options.pop(name, None)) is not None}
    for name, fn in hooks.items():
        check_hook(name, fn)
    return hooks


def _call(hooks, name, *args):
    fn = hooks.get(name)
    if fn is None:
        return
    try:
        fn(*args)
    except Exception as e:
        e.add_note(f"(raised by the {name} hook)")
        raise


def _this_worker():
    index, generation = _prefork.worker()
    return Worker(index, generation, os.getpid())


def _worker_start(app, loader, hooks):
    """What each worker calls to get its application: post_fork, the
    application (loaded, or the preloaded one), post_worker_init."""
    if "post_fork" not in hooks and "post_worker_init" not in hooks:
        return loader

    def start():
        w = _this_worker()
        _call(hooks, "post_fork", w)
        a = loader() if loader is not None else app
        _call(hooks, "post_worker_init", w)
        return a
    return start


def _master_event(hooks):
    """What the master calls on the pool's events (py_master.c), if a
    master hook is set."""
    if not any(name in hooks for name in MASTER_HOOKS):
        return None

    def event(kind, index, generation, pid, status):
        if kind == "ready":
            _call(hooks, "when_ready")
        elif kind == "reload":
            _call(hooks, "on_reload")
        elif kind == "worker_exit":
            _call(hooks, "child_exit",
                  Worker(index, generation, pid, os.waitstatus_to_exitcode(status)))
    return event


def _worker_exit(hooks):
    if "worker_exit" not in hooks:
        return None
    return lambda: _call(hooks, "worker_exit", _this_worker())


def load(target):
    """The object that target names: "MODULE:NAME", "MODULE:obj.attr",
    "MODULE:factory()" or "MODULE:factory('literal', 2)"; "MODULE" alone
    means MODULE:application."""
    module, _, expr = target.partition(":")
    if not module:
        raise ValueError(f"'{target}': expected MODULE:CALLABLE")
    expr = expr or "application"
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise ValueError(f"'{target}': '{expr}' is not a name or a call") from None
    call = None
    if isinstance(node, ast.Call):
        call, node = node, node.func
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ValueError(f"'{target}': '{expr}' is not a name or a call")
    names.append(node.id)
    obj = importlib.import_module(module)
    for name in reversed(names):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise ValueError(f"'{target}': no '{name}' in {obj!r}") from None
    if call is not None:
        try:
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        except ValueError:
            raise ValueError(f"'{target}': factory arguments must be literals") from None
        obj = obj(*args, **kwargs)
    if not callable(obj):
        raise ValueError(f"'{target}': {obj!r} is not callable")
    return obj


def _listeners(listen, bind):
    out = []
    for spec in (listen, bind):
        if isinstance(spec, str):
            out.append(spec)
        elif spec:
            out.extend(spec)
    return out


def _ids(user, group):
    """uid and gid the workers switch to, or -1 for each when unchanged."""
    uid = gid = -1
    if user is not None:
        try:
            pw = pwd.getpwuid(int(user)) if str(user).isdigit() else pwd.getpwnam(user)
        except KeyError:
            raise ValueError(f"--user '{user}': no such user") from None
        uid, gid = pw.pw_uid, pw.pw_gid
    if group is not None:
        try:
            gr = grp.getgrgid(int(group)) if str(group).isdigit() else grp.getgrnam(group)
        except KeyError:
            raise ValueError(f"--group '{group}': no such group") from None
        gid = gr.gr_gid
    if (uid >= 0 or gid >= 0) and os.geteuid() != 0:
        raise ValueError("--user/--group need the master to run as root")
    return uid, gid


def _run(kind, app, loader, what, hooks, start_dir, *, listen=None, bind=None,
         access_log=None, error_log=None, pidfile=None, user=None, group=None, chdir=None,
         quiet=False, verbose=False, capture_output=False, check=False, **opts):
    unknown = (set(opts) - set(POOL_OPTIONS) - set(HTTP_OPTIONS) - set(WSGI_OPTIONS)
               - set(TLS_OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    options = {k.replace("_", "-"): [str(x) for x in v] if isinstance(v, (list, tuple)) else str(v)
               for k, v in opts.items() if v is not None and k != "tls_ocsp"}
    ocsp = opts.get("tls_ocsp")
    if ocsp is not None:
        # A list beside tls_cert: the n-th response for the n-th certificate.
        ocsp = [ocsp] if isinstance(ocsp, (str, os.PathLike)) else list(ocsp)
        if len(ocsp) > len(opts.get("tls_cert") or ()):
            raise ValueError("--tls-ocsp: more responses than --tls-cert certificates "
                             "(the n-th goes with the n-th)")
        options["tls-ocsp"] = [None if x is None else os.fspath(x) for x in ocsp]
    uid, gid = _ids(user, group)
    if chdir:
        os.chdir(chdir)
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    level = -1 if quiet else 1 if verbose else 0
    argv = [sys.executable] + sys.orig_argv[1:]
    if check:
        return _prefork.run(kind, app, None, options, _listeners(listen, bind), what,
                            access_log=access_log, error_log=error_log, pidfile=pidfile,
                            uid=uid, gid=gid, level=level, check=True)
    if capture_output and sys.stdout is not None:
        # A pipe's stream is written a block at a time; the workers inherit
        # this one, and a print should reach the log when it is made.
        sys.stdout.reconfigure(line_buffering=True)
    try:
        return _prefork.run(kind, app, _worker_start(app, loader, hooks), options,
                            _listeners(listen, bind), what, access_log=access_log,
                            error_log=error_log, pidfile=pidfile, uid=uid, gid=gid,
                            upgrade_argv=argv, upgrade_dir=start_dir, level=level,
                            worker_exit=_worker_exit(hooks),
                            capture_output=bool(capture_output),
                            master_event=_master_event(hooks))
    finally:
        _call(hooks, "on_exit")


def _reloading(hooks, app, preload, user, group, extra):
    """--reload: worker 0 of each generation watches the files (reload.py),
    after the post_worker_init hook."""
    if preload or not isinstance(app, str):
        raise ValueError("--reload needs the application by name (MODULE:CALLABLE) and no "
                         "--preload: each generation imports it afresh")
    if user is not None or group is not None:
        raise ValueError("--reload is for development: not with --user/--group (a worker "
                         "could not signal its master)")
    from . import reload
    user_init = hooks.get("post_worker_init")

    def init(worker):
        if user_init is not None:
            user_init(worker)
        if worker.index == 0:
            reload.start(extra)
    hooks["post_worker_init"] = init


def serve_wsgi(app, *, preload=False, reload=False, reload_extra_files=(), check_config=False,
               **options):
    """Serve a WSGI application on the pool until it is stopped (TERM, INT,
    QUIT); returns the exit status. app is a callable, or a "MODULE:CALLABLE"
    string: then each generation of workers imports it afresh (HUP reloads
    the code) unless preload=True. Keyword arguments are the command-line
    options with underscores: listen, workers, threads, mode, max_requests,
    timeout, access_log, capture_output, max_body_bytes..., and the hooks: on_starting(),
    post_fork(worker), post_worker_init(worker), worker_exit(worker),
    when_ready(), on_reload(), child_exit(worker), on_exit() (worker: a
    prefork.Worker). reload=True (development): a
    change to the code's files, or to reload_extra_files, reloads the pool.
    check_config=True: import the application and check every option (the
    certificates too) without serving or running a hook; returns 0."""
    start_dir = os.getcwd()  # where an upgrade (USR2) starts again: argv is relative to it
    hooks = _hooks(options)
    if check_config:
        return _check(app, options)
    if reload:
        _reloading(hooks, app, preload, options.get("user"), options.get("group"),
                   [os.path.abspath(f) for f in reload_extra_files or ()])
    _call(hooks, "on_starting")
    loader = None
    what = app if isinstance(app, str) else getattr(app, "__qualname__", repr(app))
    if isinstance(app, str):
        target = app
        if options.get("chdir"):
            os.chdir(options.pop("chdir"))
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        if preload:
            app = load(target)
        else:
            app, loader = None, lambda: load(target)
    if app is not None:
        # Objects made so far stay where they are: the collector would
        # otherwise touch them in every worker and unshare their pages.
        gc.collect()
        gc.freeze()
    return _run("wsgi", app, loader, what, hooks, start_dir, **options)


def _check(app, options):
    what = app if isinstance(app, str) else getattr(app, "__qualname__", repr(app))
    if isinstance(app, str):
        if options.get("chdir"):
            os.chdir(options.pop("chdir"))
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        load(app)  # what the workers would import; an error propagates
    return _run("wsgi", None, None, what, {}, os.getcwd(), check=True, **options)


def serve(handler, *, mode="dispatch", **options):
    """Call handler(sock, address) in a worker for each connection: sock is
    a blocking socket.socket the handler owns (closed after it returns,
    unless the handler kept a reference). In the default dispatch mode the
    master passes each connection to an idle worker. Keyword arguments as
    serve_wsgi's, hooks too."""
    start_dir = os.getcwd()
    hooks = _hooks(options)
    _call(hooks, "on_starting")
    gc.collect()
    gc.freeze()
    what = getattr(handler, "__qualname__", repr(handler))
    return _run("socket", handler, None, what, hooks, start_dir, mode=mode, **options)
