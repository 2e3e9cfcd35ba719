"""test_cli.py — python3 -m prefork's command line: --help with each interpreter, usage errors, the start-up line, --env, --capture-output."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import APPS, PYPATH, py_env, wait_for

ENV = dict(os.environ, PYTHONPATH=str(PYPATH))


def interpreters():
    """Debian's python3 and the one first on PATH (pyenv's, say), if another."""
    found = [sys.executable]
    other = shutil.which("python3")
    if other and os.path.realpath(other) != os.path.realpath(sys.executable):
        found.append(other)
    return found


@pytest.mark.parametrize("python", interpreters())
def test_help_lists_every_option(python):
    r = subprocess.run([python, "-m", "prefork", "--help"], env=ENV, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for opt in ("--listen", "--bind", "--workers", "--mode", "--max-requests",
                "--max-requests-jitter", "--timeout", "--graceful-timeout", "--pidfile",
                "--user", "--group", "--error-log", "--access-log", "--preload", "--chdir",
                "--max-body-bytes", "--body-timeout", "--config", "--reload",
                "--forwarded-allow-ips", "--capture-output", "--log-level", "--check-config",
                "--tls-client-ca", "MODULE:CALLABLE"):
        assert opt in r.stdout, opt


@pytest.mark.parametrize("args,message", [
    (["--workers", "x", "m:app"], "--workers 'x'"),
    (["--mode", "fast", "m:app"], "--mode 'fast'"),
    (["--max-body-bytes", "-1", "m:app"], "--max-body-bytes '-1'"),
    (["--listen", "nowhere", "m:app"], "--listen 'nowhere'"),
    (["--forwarded-allow-ips", "10.0.0.1/8", "m:app"], "--forwarded-allow-ips '10.0.0.1/8'"),
    (["--nope", "m:app"], "--nope"),
    (["--env", "NOEQUALS", "m:app"], "--env 'NOEQUALS': expected NAME=VALUE"),
    (["-e", "=x", "m:app"], "--env '=x': expected NAME=VALUE"),
    (["--log-level", "loud", "m:app"], "--log-level 'loud': must be error, warning, info or"),
    ([], "MODULE:CALLABLE"),
])
def test_usage_errors(args, message):
    r = subprocess.run([sys.executable, "-m", "prefork", *args], env=ENV, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prefork: ") and message in lines[0], r.stderr


@pytest.mark.parametrize("python", interpreters())
def test_serves_with_each_interpreter(server, python):
    s = server("conform:app", "-b", "127.0.0.1:0", "--access-log", "-", python=python)
    r, data = s.get("/ping")
    assert data == b"pong"
    assert s.stop() == 0
    out = s.out.read_text()
    assert "prefork: serving conform:app on http://127.0.0.1:" in out
    # The access log: the Combined Log Format, then the worker's index.
    line = next(l for l in out.splitlines() if "GET /ping" in l)
    assert '"GET /ping HTTP/1.1" 200 4' in line


def test_env_sets_os_environ_before_the_import(server, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "envapp.py").write_text(
        "import os\n"
        "AT_IMPORT = os.environ.get('GREETING')\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [f\"{AT_IMPORT} {os.environ.get('EMPTY')!r} {os.environ.get('A')}\".encode()]\n")
    s = server("envapp:app", "-e", "GREETING=hello world", "--env", "EMPTY=", "-e",
               "A=b=c", cwd=code)
    assert s.get("/")[1] == b"hello world '' b=c"
    assert s.stop() == 0


PRINTING_APP = (
    "import os, sys\n"
    "def app(environ, start_response):\n"
    "    if environ['PATH_INFO'] == '/fail':\n"
    "        raise RuntimeError('boom')\n"
    "    print('printed by', os.getpid())\n"
    "    print('to stderr by', os.getpid(), file=sys.stderr)\n"
    "    sys.stdout.write('no newline')\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [str(os.getpid()).encode()]\n")


@pytest.mark.parametrize("captured", [True, False])
def test_capture_output(server, tmp_path, captured):
    """--capture-output: what a worker prints is a line of the error log
    tagged with that worker, when printed (no block buffering); the
    worker's own lines (a traceback) and the access log are not relayed
    through it. Without it, prints stay on the master's stdout."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "printapp.py").write_text(PRINTING_APP)
    s = server("printapp:app", "--access-log", "-", *(["--capture-output"] if captured else []),
               cwd=code, workers=1)
    pid = int(s.get("/")[1])
    assert s.get("/fail")[0].status == 500
    tag = f"worker 0 (pid {pid})  info  "
    if captured:
        wait_for(lambda: f"{tag}printed by {pid}" in s.log_text(), 10, "the printed line")
        assert f"{tag}to stderr by {pid}" in s.log_text()
    assert s.stop() == 0
    log, out = s.log_text(), s.out.read_text()
    if captured:
        assert f"{tag}no newline" in log  # the rest, once the worker has gone
        assert "printed by" not in out
        # The traceback: the worker's own lines, each tagged once.
        tb = [l for l in log.splitlines() if "RuntimeError: boom" in l]
        assert len(tb) == 1 and tb[0].count("worker 0") == 1, tb
    else:
        assert "printed by" not in log and f"printed by {pid}" in out
    assert sum('"GET / HTTP/1.1" 200' in l for l in out.splitlines()) == 1
    assert '"GET / HTTP/1.1"' not in log


@pytest.mark.parametrize("level", ["error", "debug"])
def test_log_level(server, level):
    """--log-level error: the start-up's info lines are gone; debug: the
    workers' readiness is there too. A failed request is logged either way."""
    s = server("conform:app", "-q", "--log-level", level)  # --log-level wins over -q
    assert s.get("/error")[0].status == 500
    assert s.stop() == 0
    log = s.log_text()
    assert "error in the application" in log
    assert ("started 2 workers" in log) == (level == "debug")
    assert (" debug " in log) == (level == "debug")


@pytest.mark.parametrize("args, rc, says", [
    (["conform:app"], 0, "prefork: conform:app: the application imports and the options hold"),
    (["nosuch:app"], 1, "ModuleNotFoundError: No module named 'nosuch'"),
    (["conform:nothing"], 2, "no 'nothing' in"),
    (["--max-conns", "0", "conform:app"], 2, "--max-conns '0'"),
    (["-l", "nowhere", "conform:app"], 2, "--listen 'nowhere'"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key",
      "conform:app"], 2, "--tls-cert /nonexistent.pem"),
])
def test_check_config(tmp_path, args, rc, says):
    """--check-config: the application imported, every option checked (the
    certificates too), nothing served and no hook run."""
    conf = tmp_path / "c.py"
    conf.write_text(f"def on_starting():\n    open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    r = subprocess.run([sys.executable, "-m", "prefork", "--check-config", "-c", str(conf),
                        "-l", "127.0.0.1:0", *args], env=py_env(f"{PYPATH}:{APPS}"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == rc, r.stderr
    assert says in (r.stdout if rc == 0 else r.stderr)
    assert not (tmp_path / "ran").exists()
