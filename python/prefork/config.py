"""prefork.config: a configuration file, Python as gunicorn's, read into the command line's settings and the hooks."""
import inspect
import os
import runpy
import traceback
import types

from .server import HOOKS, HTTP_OPTIONS, POOL_OPTIONS, TLS_OPTIONS, WSGI_OPTIONS, check_hook

# The settings a file may give: the long options, dashes as underscores.
FLAGS = ("preload", "quiet", "verbose", "reload", "capture_output")
LISTS = ("listen", "bind", "tls_cert", "tls_key", "tls_ocsp", "reload_extra_files", "env")
VALUES = tuple(n for n in POOL_OPTIONS + HTTP_OPTIONS + WSGI_OPTIONS + TLS_OPTIONS
               if n not in LISTS) + (
    "access_log", "error_log", "pidfile", "user", "group", "chdir", "wsgi_app")

# gunicorn's names for settings that mean the same here, for the error.
GUNICORN = {
    "preload_app": "preload", "accesslog": "access_log", "errorlog": "error_log",
    "keepalive": "keepalive_timeout", "worker_connections": "max_conns",
    "limit_request_fields": "max_headers", "limit_request_line": "max_uri_bytes",
    "certfile": "tls_cert", "keyfile": "tls_key", "loglevel": "log_level",
    "raw_env": "env", "ciphers": "tls_ciphers", "ssl_version": "tls_min_version",
    "ca_certs": "tls_client_ca", "cert_reqs": "tls_verify_client",
    "worker_class": "threads (gthread's threads; sync is the default)",
    "reuse_port": "mode = 'reuseport'", "proxy_protocol": "listen 'ADDR,proxy'",
    "proxy_allow_ips": "proxy_allow_from", "limit_request_field_size": "max_header_bytes",
    "access_log_format": "none: one format, as prefork serve writes it",
}

RUN_NAME = "__prefork_config__"


class ConfigError(ValueError):
    """A configuration file that cannot be used, in one line."""


def _run_file(path):
    try:
        return runpy.run_path(os.fspath(path), run_name=RUN_NAME)
    except OSError as e:
        raise ConfigError(f"--config '{path}': {e.strerror or e}") from None
    except SyntaxError as e:
        raise ConfigError(f"--config '{path}': line {e.lineno}: {e.msg}") from None
    except Exception as e:
        # The line of the file itself, not of what it called.
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if os.path.abspath(f.filename) == os.path.abspath(path)]
        where = f"line {frames[-1].lineno}: " if frames else ""
        raise ConfigError(f"--config '{path}': {where}{type(e).__name__}: {e}") from None


def _is_path(v):
    return isinstance(v, (str, os.PathLike))


def _setting(path, name, v):
    """The value of a setting, checked for its kind."""
    bad = None
    if name in FLAGS:
        bad = None if isinstance(v, bool) else "True or False"
    elif name in LISTS:
        v = [v] if _is_path(v) or v is None else v
        if not isinstance(v, (list, tuple)) or not all(
                _is_path(x) or (x is None and name == "tls_ocsp") for x in v):
            bad = "a string or a list of strings"
        else:
            v = [None if x is None else os.fspath(x) for x in v]
    elif isinstance(v, bool) or not isinstance(v, (str, int, float, os.PathLike)):
        bad = "a string or a number"
    if bad:
        raise ConfigError(f"--config '{path}': {name} = {v!r}: expected {bad}")
    return os.fspath(v) if isinstance(v, os.PathLike) else v


def _ignored(value):
    """Modules, and what the file imported rather than defined."""
    if isinstance(value, types.ModuleType):
        return True
    return (callable(value) or inspect.isclass(value)) and \
        getattr(value, "__module__", None) != RUN_NAME


def load(path):
    """The settings and hooks a configuration file gives, as two dicts;
    ConfigError for a file that cannot be read or run, a name that is
    neither a setting nor a hook, or a value of the wrong kind. Names
    starting with _, modules and what the file imports are its own."""
    settings, hooks = {}, {}
    for name, value in _run_file(path).items():
        if name.startswith("_") or _ignored(value):
            continue
        if name in HOOKS:
            try:
                check_hook(name, value)
            except ValueError as e:
                raise ConfigError(f"--config '{path}': {e}") from None
            hooks[name] = value
        elif name in FLAGS + LISTS + VALUES:
            settings[name] = _setting(path, name, value)
        else:
            hint = GUNICORN.get(name)
            hint = (f" (gunicorn's name; here: {hint})" if hint else
                    " (a name of your own? start it with _)")
            raise ConfigError(f"--config '{path}': unknown setting '{name}'{hint}")
    return settings, hooks
