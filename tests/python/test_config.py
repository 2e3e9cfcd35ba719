"""test_config.py — python3 -m prefork -c FILE: settings and hooks from a Python file, the command line winning, its errors in one line."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import APPS, PYPATH, py_env, wait_for

HOOKS = '''
import os, sys
_marks = {marks!r}

def _mark(what, worker):
    # what, the worker, and whether the application module is loaded yet
    name = f"{{what}}.{{worker.index}}.{{worker.generation}}"
    with open(os.path.join(_marks, name), "w") as f:
        f.write(f"{{worker.pid}} {{'conform' in sys.modules}}")

def post_fork(worker):
    _mark("fork", worker)

def post_worker_init(worker):
    _mark("init", worker)

def worker_exit(worker):
    _mark("exit", worker)

def on_starting():
    open(os.path.join(_marks, "starting"), "w").write(str(os.getpid()))

def on_exit():
    open(os.path.join(_marks, "on_exit"), "w").write(str(os.getpid()))
'''


def config(tmp_path, body, hooks=True):
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    f = tmp_path / "prefork_conf.py"
    f.write_text(textwrap.dedent(body) + (HOOKS.format(marks=str(marks)) if hooks else ""))
    return f, marks


def mark(marks, name):
    p = marks / name
    return p.read_text().split() if p.exists() else None


def test_settings_and_hooks_from_the_file(server, tmp_path):
    f, marks = config(tmp_path, '''
        import multiprocessing             # modules and imports are the file's own
        from os.path import join
        workers = 2
        wsgi_app = "conform:app"
        access_log = "-"
        max_requests = 1000
        capture_output = True              # a flag: checked in test_cli
        _helper = "a name of its own"
    ''')
    s = server(None, "-c", str(f))
    assert s.get("/ping")[1] == b"pong"
    assert mark(marks, "starting") == [str(s.pid)]
    pids = sorted(s.worker_pids())
    assert len(pids) == 2
    # post_fork before the application is imported, post_worker_init after.
    for i in (0, 1):
        assert mark(marks, f"fork.{i}.1")[1] == "False"
        assert mark(marks, f"init.{i}.1")[1] == "True"
    assert sorted(int(mark(marks, f"init.{i}.1")[0]) for i in (0, 1)) == pids
    wait_for(lambda: "GET /ping" in s.out.read_text(), 10, "the access log line")  # from the file
    # A reload: the new generation runs the start hooks, the old one worker_exit.
    s.send(signal.SIGHUP)
    wait_for(lambda: all(mark(marks, f"{w}.{i}.{g}") for w, g in (("init", 2), ("exit", 1))
                         for i in (0, 1)), 20, "generation 2 and generation 1's exit hooks")
    assert sorted(int(mark(marks, f"exit.{i}.1")[0]) for i in (0, 1)) == pids
    assert s.stop() == 0
    assert all(mark(marks, f"exit.{i}.2") for i in (0, 1))
    assert mark(marks, "on_exit") == [str(s.pid)]


def test_preload_runs_the_worker_hooks_after_the_import(server, tmp_path):
    f, marks = config(tmp_path, '''
        preload = True
        workers = 1
    ''')
    s = server("conform:app", "-c", str(f), workers=1)
    assert s.get("/ping")[1] == b"pong"
    assert mark(marks, "fork.0.1")[1] == "True"
    assert s.stop() == 0


def test_the_command_line_wins(server, tmp_path):
    f, _ = config(tmp_path, '''
        workers = 3
        bind = ["127.0.0.1:9", "127.0.0.1:10"]
        wsgi_app = "nosuchmodule:app"
    ''', hooks=False)
    s = server("conform:app", "-c", str(f), workers=1)
    assert s.get("/ping")[1] == b"pong"
    assert len(s.worker_pids()) == 1
    out = s.out.read_text()
    assert ":9/" not in out and ":10/" not in out
    assert s.stop() == 0


@pytest.mark.parametrize("body,message", [
    ("worker = 4\n", "unknown setting 'worker' (a name of your own? start it with _)"),
    ("preload_app = True\n", "unknown setting 'preload_app' (gunicorn's name; here: preload)"),
    ("worker_class = 'gthread'\n", "'worker_class' (gunicorn's name; here: threads"),
    ("def nworkers_changed(server, new, old):\n    pass\n",
     "unknown setting 'nworkers_changed'"),
    ("def child_exit(server, worker):\n    pass\n", "child_exit: 'child_exit' must take one "
     "argument (worker)"),  # gunicorn's signature, refused rather than misread
    ("def when_ready(server):\n    pass\n", "when_ready: 'when_ready' must take no argument"),
    ("workers = [2]\n", "workers = [2]: expected a string or a number"),
    ("preload = 'yes'\n", "preload = 'yes': expected True or False"),
    ("bind = 8000\n", "bind = 8000: expected a string or a list of strings"),
    ("def post_fork(server, worker):\n    pass\n", "post_fork: 'post_fork' must take one "
     "argument (worker)"),
    ("on_exit = 3\n", "on_exit: 3 is not callable"),
    ("workers = (\n", "line 1: "),
    ("x = 1\n_y = 1 / 0\n", "line 2: ZeroDivisionError: division by zero"),
])
def test_errors_in_one_line(tmp_path, body, message):
    f = tmp_path / "c.py"
    f.write_text(body)
    r = subprocess.run([sys.executable, "-m", "prefork", "-c", str(f), "conform:app"],
                       env=py_env(f"{PYPATH}:{APPS}"), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"prefork: --config '{f}': "), r.stderr
    assert message in lines[0], r.stderr


def test_a_missing_file_and_a_missing_application(tmp_path):
    env = py_env(f"{PYPATH}:{APPS}")
    r = subprocess.run([sys.executable, "-m", "prefork", "-c", str(tmp_path / "none.py")],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "No such file or directory" in r.stderr, r.stderr
    f = tmp_path / "c.py"
    f.write_text("workers = 1\n")
    r = subprocess.run([sys.executable, "-m", "prefork", "-c", str(f)], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "MODULE:CALLABLE" in r.stderr, r.stderr


def test_a_failing_post_fork_fails_the_start(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("def post_fork(worker):\n    raise RuntimeError('no database')\n")
    log = tmp_path / "error.log"
    r = subprocess.run([sys.executable, "-m", "prefork", "-c", str(f), "-w", "1",
                        "-l", "127.0.0.1:0", "--max-start-failures", "1", "--error-log",
                        str(log), "conform:app"], env=py_env(f"{PYPATH}:{APPS}"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    text = log.read_text()
    assert "cannot start the worker:" in text
    assert "RuntimeError: no database" in text and "(raised by the post_fork hook)" in text
    assert "giving up" in text


def test_hooks_from_python_code(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f'''
        import os, sys, prefork

        def handler(sock, address):
            sock.sendall(b"hello")

        def post_fork(worker):
            open(os.path.join({str(marks)!r}, f"fork.{{worker.index}}"), "w").write(
                str(worker.pid))

        try:
            prefork.serve(handler, post_fork=lambda: None)
        except ValueError as e:
            print("refused:", e, flush=True)
        sys.exit(prefork.serve(handler, listen="127.0.0.1:0", workers=2,
                               pidfile={str(tmp_path / "pid")!r}, post_fork=post_fork))
    '''))
    out = tmp_path / "out"
    with open(out, "wb") as o:
        p = subprocess.Popen([sys.executable, str(script)], stdout=o, stderr=subprocess.STDOUT,
                             env=py_env(str(PYPATH)))
    try:
        wait_for((tmp_path / "pid").exists, 15, "the workers")
        assert "refused: post_fork: " in out.read_text()
        assert "must take one argument (worker)" in out.read_text()
        wait_for(lambda: all((marks / f"fork.{i}").exists() for i in (0, 1)), 10, "the hooks")
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


MASTER_HOOKS = '''
import os
_marks = {marks!r}

def _add(name, text):
    with open(os.path.join(_marks, name), "a") as f:
        f.write(text + "\\n")

def when_ready():
    _add("ready", f"{{os.getpid()}} {{os.path.exists({pidfile!r})}}")

def on_reload():
    _add("reload", str(os.getpid()))
    if os.path.exists(os.path.join(_marks, "refuse")):
        raise RuntimeError("not now")

def child_exit(worker):
    _add("exits", f"{{worker.index}} {{worker.generation}} {{worker.pid}} {{worker.exitcode}} "
                  f"{{os.getpid()}}")
'''


def test_master_hooks(server, tmp_path):
    """when_ready once every worker is ready, after the pidfile; child_exit
    for every worker gone (killed, reloaded, stopped) with its exit code;
    on_reload on HUP, and an on_reload that raises fails the reload: the
    serving generation stays. All in the master."""
    marks = tmp_path / "marks"
    marks.mkdir()
    f = tmp_path / "conf.py"
    f.write_text(MASTER_HOOKS.format(marks=str(marks), pidfile=str(tmp_path / "s0" / "pid")))
    s = server("conform:app", "-c", str(f))

    def lines(name):
        p = marks / name
        return [l.split() for l in p.read_text().splitlines()] if p.exists() else []
    wait_for(lambda: lines("ready"), 10, "when_ready")
    assert lines("ready") == [[str(s.pid), "True"]]
    gen1 = sorted(s.worker_pids())
    os.kill(gen1[0], signal.SIGKILL)
    wait_for(lambda: lines("exits"), 10, "child_exit")
    index, gen, pid, code, where = lines("exits")[0]
    assert (gen, int(pid), code, int(where)) == ("1", gen1[0], "-9", s.pid)
    wait_for(lambda: len(s.worker_pids()) == 2, 10, "the replacement")
    gen1 = sorted(s.worker_pids())

    s.send(signal.SIGHUP)  # a reload: generation 1 exits cleanly
    wait_for(lambda: len(lines("exits")) == 3, 20, "generation 1's exits")
    assert lines("reload") == [[str(s.pid)]]
    assert sorted((int(e[2]), e[1], e[3]) for e in lines("exits")[1:]) == \
        [(p, "1", "0") for p in gen1]
    gen2 = sorted(s.worker_pids())

    (marks / "refuse").touch()  # on_reload raises: the reload fails
    s.send(signal.SIGHUP)
    wait_for(lambda: "reload failed" in s.log_text(), 10, "the failed reload")
    assert "RuntimeError: not now" in s.log_text()
    assert len(lines("reload")) == 2 and sorted(s.worker_pids()) == gen2
    assert s.get("/ping")[1] == b"pong"
    assert len(lines("ready")) == 1

    assert s.stop() == 0
    assert sorted((int(e[2]), e[1], e[3]) for e in lines("exits")[3:]) == \
        [(p, "2", "0") for p in gen2]


def test_an_upgrade_after_chdir_finds_the_relative_paths(server, tmp_path):
    """USR2 starts a new master with the same argv, in the directory the
    first one started in: a relative -c and a chdir in the file both hold."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "upapp.py").write_text(
        "import os\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [str(os.getppid()).encode()]\n")
    (tmp_path / "up.py").write_text('chdir = "code"\nwsgi_app = "upapp:app"\n')
    s = server(None, "-c", "up.py", workers=1, cwd=tmp_path)
    old = s.pid
    assert s.get("/")[1] == str(old).encode()
    s.send(signal.SIGUSR2)
    new = wait_for(lambda: (s.pidfile.exists() and int(s.pidfile.read_text() or 0) != old
                            and int(s.pidfile.read_text())), 20, "the new master")
    try:
        assert s.proc.wait(30) == 0  # the old master hands over and leaves
        assert s.get("/")[1] == str(new).encode()
        assert "upgrade failed" not in s.log_text()
    finally:
        os.kill(new, signal.SIGTERM)
        wait_for(lambda: not os.path.exists(f"/proc/{new}") or
                 open(f"/proc/{new}/stat").read().split(") ")[1][0] == "Z", 30, "the new master")


def test_the_example_file_is_valid():
    example = APPS.parents[2] / "examples" / "python" / "prefork_conf.py"
    r = subprocess.run([sys.executable, "-c", "import sys; from prefork import config; "
                        "s, h = config.load(sys.argv[1]); print(s['wsgi_app'], s['workers'], "
                        "sorted(h))", str(example)], env=py_env(str(PYPATH)),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    app, workers, hooks = r.stdout.split(" ", 2)
    assert app == "flask_app:app" and int(workers) >= 1
    assert hooks.strip() == "['child_exit', 'post_fork', 'when_ready', 'worker_exit']"
