"""prefork.cli: `python3 -m prefork [OPTIONS] MODULE:CALLABLE`, with the options of `prefork serve` by the same names."""
import argparse
import os
import sys

from . import _prefork, config
from .server import HTTP_OPTIONS, POOL_OPTIONS, TLS_OPTIONS, WSGI_OPTIONS, serve_wsgi

DESCRIPTION = """\
Serve the WSGI application MODULE:CALLABLE (or MODULE:factory()) over
HTTP/1.1 on a pool of worker processes. The master supervises; each worker
imports the application (again after each HUP, unless --preload) and calls
it once a request and its body are complete.

A configuration file (-c FILE) is Python: each option by its long name with
underscores (workers = 4, bind = ["127.0.0.1:8000"], wsgi_app = "app:app"),
and the hooks on_starting(), post_fork(worker), post_worker_init(worker),
worker_exit(worker), when_ready(), on_reload(), child_exit(worker), on_exit().
The command line wins over the file.

Signals to the master: TERM/INT graceful stop, QUIT fast stop, HUP reload
the code with a new generation of workers, USR1 reopen logs, USR2 upgrade,
TTIN/TTOU one worker more/fewer."""


class Parser(argparse.ArgumentParser):
    """Usage errors: one line naming the option, exit status 2."""

    def error(self, message):
        sys.stderr.write(f"prefork: {message} (see --help)\n")
        sys.exit(2)


class _OcspAfterCert(argparse.Action):
    """--tls-ocsp goes with the --tls-cert given before it, as in prefork
    serve: the responses make a list beside tls_cert, None where none."""

    def __call__(self, parser, namespace, value, option_string=None):
        certs = getattr(namespace, "tls_cert", None) or []
        ocsp = list(getattr(namespace, "tls_ocsp", None) or [])
        ocsp += [None] * (len(certs) - len(ocsp))
        if not certs or ocsp[-1] is not None:
            parser.error(f"{option_string} '{value}': goes after the --tls-cert it is for "
                         "(one each)")
        ocsp[-1] = value
        setattr(namespace, self.dest, ocsp)


# (flags, metavar, help) of the options that take a value and go to C as is.
POOL = [
    (("-w", "--workers"), "N", "worker processes (default: online CPUs)"),
    (("--mode",), "MODE", "how connections reach workers: shared (one accept queue, the "
     "default), reuseport (a socket per worker), dispatch (the master passes each)"),
    (("--backlog",), "N", "listen backlog (default: net.core.somaxconn)"),
    (("--max-conns",), "N", "connections per worker (default 10000)"),
    (("--accept-batch",), "N", "connections a worker accepts per wake-up (16)"),
    (("--graceful-timeout",), "SEC", "drain deadline on TERM and reloads (default 60)"),
    (("--max-start-failures",), "N", "give up after N failed starts (default 5)"),
    (("--max-requests",), "N", "recycle a worker after N requests (0: never)"),
    (("--max-requests-jitter",), "N", "... plus a random 0..N per worker"),
    (("--timeout",), "SEC", "a request in Python longer than SEC: its worker is replaced, "
     "the request and its Python stack logged (0: off, the default)"),
    (("--ready-timeout",), "SEC", "a reload's or upgrade's workers must be ready (60)"),
    (("--pre-stop-delay",), "SEC", "on TERM keep serving SEC before stopping (0)"),
    (("--max-generations",), "N", "generations alive at once, draining ones too (3)"),
    (("--cpu-affinity",), "CPUS", "pin worker i to one CPU: off (the default), auto, or a "
     "list such as 0-3,6"),
    (("--proxy-allow-from",), "CIDR[,CIDR...]", "the sources a ,proxy listener takes the "
     "PROXY header from; others are closed (default 127.0.0.1,::1)"),
    (("--metrics-listen",), "ADDR", "the master answers GET /metrics there, in Prometheus "
     "text format (default: off)"),
    (("--log-level",), "LEVEL", "error, warning, info (the default) or debug; wins over -q "
     "(warning) and -v (debug)"),
]
HTTP = [
    (("--header-timeout",), "SEC", "a request head must arrive within (default 10)"),
    (("--keepalive-timeout",), "SEC", "idle keep-alive connections close after (15)"),
    (("--send-timeout",), "SEC", "a stalled response is dropped after (30)"),
    (("--body-timeout",), "SEC", "a stalled request body is a 408 after (60)"),
    (("--keepalive-requests",), "N", "requests per connection, 0 = no limit (1000)"),
    (("--max-header-bytes",), "N", "request head limit, else 431 (16384)"),
    (("--max-uri-bytes",), "N", "request target limit, else 414 (8192)"),
    (("--max-headers",), "N", "header fields limit, else 431 (100)"),
    (("--max-body-bytes",), "N", "request body limit, else 413 (104857600); bodies past "
     "256 KiB wait in an unlinked temporary file"),
    (("--health-path",), "PATH", "answered by the server, never the application: 200 while "
     "serving, 503 once a graceful stop begins (with --pre-stop-delay, before the listeners "
     "close)"),
]

TLS = [
    (("--tls-ticket-rotate",), "SEC", "session-ticket keys, shared by every worker, rotate "
     "every SEC (3600)"),
    (("--tls-session-cache",), "N", "TLS 1.2 sessions kept for clients that resume by session "
     "ID, shared by every worker (20000; 0: none)"),
    (("--tls-min-version",), "1.2|1.3", "1.2 (the default: TLS 1.2 and 1.3) or 1.3 (TLS 1.3 "
     "only)"),
    (("--tls-ciphers",), "LIST", "TLS 1.2 suites in OpenSSL's syntax (default: Mozilla's "
     "intermediate list)"),
    (("--tls-client-ca",), "FILE", "ask clients for a certificate from an authority in FILE "
     "(PEM); the application sees SSL_CLIENT_S_DN and SSL_CLIENT_VERIFY"),
    (("--tls-verify-client",), "MODE", "required (the default: no valid certificate, no "
     "connection) or optional"),
]


def parser():
    p = Parser(prog="python3 -m prefork", usage="%(prog)s [OPTIONS] MODULE:CALLABLE",
               description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="MODULE:CALLABLE", nargs="?",
                   help="the WSGI application, e.g. myapp:app or myapp:create_app() "
                   "(or wsgi_app in the configuration file)")
    g = p.add_argument_group("pool options (as prefork serve)")
    g.add_argument("-l", "--listen", "-b", "--bind", action="append", metavar="ADDR",
                   dest="listen", help="HOST:PORT, [V6]:PORT, :PORT, unix:PATH, fd:N "
                   "(repeatable; default 127.0.0.1:8000; -b/--bind is the same), then flags: "
                   ",tls (HTTPS, with --tls-cert and --tls-key), ,proxy (a load balancer's "
                   "PROXY protocol header first)")
    for flags, metavar, text in POOL:
        g.add_argument(*flags, metavar=metavar, help=text)
    g.add_argument("--user", metavar="USER", help="workers run as USER (bind as root first)")
    g.add_argument("--group", metavar="GROUP", help="workers run as GROUP")
    g.add_argument("--pidfile", metavar="FILE", help="written once ready, replaced on upgrade")
    g.add_argument("--error-log", metavar="FILE|-",
                   help="where log lines go, wsgi.errors too (default: stderr; USR1 reopens)")
    g.add_argument("--capture-output", action="store_true",
                   help="what the workers print (stdout, stderr) goes to the error log, "
                   "a line each, tagged with the worker (default: left on the master's)")
    g.add_argument("-q", "--quiet", action="store_true", help="fewer log lines")
    g.add_argument("-v", "--verbose", action="store_true", help="more log lines")
    h = p.add_argument_group("HTTP options (as prefork serve)")
    h.add_argument("--access-log", metavar="FILE|-|off",
                   help="Combined Log Format + worker + microseconds (default: off)")
    for flags, metavar, text in HTTP:
        h.add_argument(*flags, metavar=metavar, help=text)
    t = p.add_argument_group("HTTPS options (as prefork serve)")
    t.add_argument("--tls-cert", action="append", metavar="FILE",
                   help="a certificate chain (PEM) for the listeners with ,tls; repeatable, "
                   "the first the default, the others chosen by SNI")
    t.add_argument("--tls-key", action="append", metavar="FILE",
                   help="its private key (PEM, not encrypted); the n-th goes with the n-th "
                   "certificate; read by the master before forking, never by a worker")
    t.add_argument("--tls-ocsp", action=_OcspAfterCert, metavar="FILE",
                   help="an OCSP response (DER) for the --tls-cert given before it, stapled "
                   "to handshakes that ask; read again on HUP (your tooling refreshes it)")
    for flags, metavar, text in TLS:
        t.add_argument(*flags, metavar=metavar, help=text)
    y = p.add_argument_group("Python options")
    y.add_argument("--reload", action="store_true",
                   help="for development: a change to the application's code (any module "
                   "imported) reloads the pool, as HUP does; not with --preload")
    y.add_argument("--reload-extra-file", action="append", metavar="FILE",
                   dest="reload_extra_files", help="with --reload, watch FILE too (repeatable)")
    y.add_argument("-c", "--config", metavar="FILE",
                   help="a configuration file (Python): settings by their long names with "
                   "underscores, and hooks; read once at start (USR2 reads it again)")
    y.add_argument("--check-config", action="store_true",
                   help="import the application and check every option (the configuration "
                   "file, the certificates) without serving: exit 0 when all is well")
    y.add_argument("--preload", action="store_true",
                   help="import the application once in the master before forking "
                   "(memory shared copy-on-write; HUP then does not reload the code)")
    y.add_argument("--threads", metavar="N",
                   help="run the application in N threads per worker, for apps that wait "
                   "(on a database, an API); the event loop stays in C (default 1: the "
                   "application runs on the worker's loop thread, fastest when it does not wait)")
    y.add_argument("--chdir", metavar="DIR", help="change to DIR before loading the application")
    y.add_argument("-e", "--env", action="append", metavar="NAME=VALUE",
                   help="set NAME in os.environ before loading the application, e.g. "
                   "DJANGO_SETTINGS_MODULE=mysite.settings (repeatable)")
    y.add_argument("--forwarded-allow-ips", metavar="CIDR[,CIDR...]",
                   help="the proxies believed when they say the client used HTTPS "
                   "(X-Forwarded-Proto: https, X-Forwarded-Protocol: ssl, X-Forwarded-Ssl: on):"
                   " wsgi.url_scheme is then https (default 127.0.0.1,::1,unix; * for any; "
                   "'' for none)")
    p.add_argument("-V", "--version", action="version", version=f"prefork {_prefork.version}")
    return p


def merge(args, settings):
    """The configuration file's settings where the command line gave none."""
    listen = settings.pop("listen", []) + settings.pop("bind", [])
    if listen and not args.listen:
        args.listen = listen
    for name, value in settings.items():
        if getattr(args, name, None) in (None, False):
            setattr(args, name, value)


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    hooks = {}
    if args.config:
        try:
            settings, hooks = config.load(args.config)
        except config.ConfigError as e:
            p.error(str(e))
        args.target = args.target or settings.pop("wsgi_app", None)
        merge(args, settings)
    if not args.target:
        p.error("the following arguments are required: MODULE:CALLABLE")
    for item in args.env or []:
        name, eq, value = item.partition("=")
        if not eq or not name or "\0" in item:
            p.error(f"--env '{item}': expected NAME=VALUE")
        os.environ[name] = value
    opts = {name: getattr(args, name)
            for name in POOL_OPTIONS + HTTP_OPTIONS + WSGI_OPTIONS + TLS_OPTIONS}
    try:
        rc = serve_wsgi(args.target, preload=args.preload, reload=args.reload,
                        reload_extra_files=args.reload_extra_files, listen=args.listen or [],
                        access_log=args.access_log, error_log=args.error_log,
                        pidfile=args.pidfile, user=args.user, group=args.group,
                        chdir=args.chdir, quiet=args.quiet, verbose=args.verbose,
                        capture_output=args.capture_output, check_config=args.check_config,
                        **hooks, **opts)
        if args.check_config and rc == 0:
            print(f"prefork: {args.target}: the application imports and the options hold")
        return rc
    except ValueError as e:
        sys.stderr.write(f"prefork: {e}\n")
        return 2
    except OSError as e:
        sys.stderr.write(f"prefork: {e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
