"""conftest.py — start the real `python3 -m prefork` on an ephemeral port, talk to it, stop it by its PID."""
import http.client
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / os.environ.get("PF_BUILD", "build")
PYPATH = BUILD / "python"
APPS = pathlib.Path(__file__).resolve().parent / "apps"


def wait_for(pred, timeout=10.0, what="condition"):
    """Poll pred until it returns a true value, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while read
        return False


def py_env(pythonpath, **extra):
    """The environment of an interpreter a test starts: PYTHONPATH, and
    under sanitizers ASan's runtime preloaded (it must come first)."""
    e = dict(os.environ, PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    if os.environ.get("PF_PY_PRELOAD"):
        # The interpreter's own allocations are not ours to judge.
        e["LD_PRELOAD"] = os.environ["PF_PY_PRELOAD"]
        e["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    e.update(extra)
    return e


class Server:
    """One master and its workers, stdout (start-up line, access log) and
    the error log in files of tmp."""

    def __init__(self, tmp, target, *args, cwd=APPS, env=None, workers=2, python=None,
                 listen="127.0.0.1:0"):
        self.tmp = pathlib.Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.log = self.tmp / "error.log"
        self.out = self.tmp / "stdout"
        self.pidfile = self.tmp / "pid"  # written once every worker is ready
        e = py_env(f"{PYPATH}:{cwd}", **(env or {}))
        cmd = [python or sys.executable, "-m", "prefork", "-l", listen, "-w",
               str(workers), "--error-log", str(self.log), "--pidfile", str(self.pidfile),
               *args, *([target] if target else [])]
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                         env=e)
        self.pid = self.proc.pid
        try:
            m = wait_for(self._started, 15, "the start-up line")
            self.port = int(m.group(1))
            self.workers = workers
            wait_for(self.pidfile.exists, 15, "the workers to be ready (the pidfile)")
        except BaseException:
            self.kill()
            raise

    def _started(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited {self.proc.returncode}: "
                                 f"{self.out.read_text()} {self.log_text()}")
        return re.search(r"on https?://127\.0\.0\.1:(\d+)/", self.out.read_text())

    def probe(self):
        try:
            c = self.conn(timeout=2)
            c.request("GET", "/ping")
            c.getresponse().read()
            c.close()
            return True
        except OSError:
            return False

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, method="GET", body=None, headers=None, timeout=30):
        c = self.conn(timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def worker_pids(self):
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):  # gone, or going while read
            return []

    def send(self, sig):
        os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        pids = self.worker_pids()
        if self.proc.poll() is None:
            self.send(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the master did not stop in time")
        wait_for(lambda: not any(alive(p) for p in pids), 10, "the workers to exit")
        return rc

    def sanitizer_reports(self):
        text = self.out.read_text(errors="replace") if self.out.exists() else ""
        return [l for l in text.splitlines()
                if "AddressSanitizer" in l or "runtime error:" in l or "LeakSanitizer" in l]

    def kill(self):
        for p in self.worker_pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tmp_path):
    """server(target, *args): a started Server, stopped at the end of the test."""
    started = []

    def start(target, *args, **kw):
        s = Server(tmp_path / f"s{len(started)}", target, *args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()
    for s in started:
        assert s.sanitizer_reports() == []
