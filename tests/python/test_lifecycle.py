"""test_lifecycle.py — HUP reloads the application's code under load, --max-requests recycles under load, --preload: no failed request."""
import http.client
import os
import signal
import threading
import time

from conftest import APPS, wait_for


class Load:
    """Clients in threads, each a new connection per request, counting
    answers by body and failures, until stopped."""

    def __init__(self, srv, path="/", clients=4):
        self.srv, self.path = srv, path
        self.ok, self.failed, self.bodies = 0, [], {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                r, data = self.srv.get(self.path, timeout=30)
                with self.lock:
                    if r.status != 200:
                        self.failed.append(r.status)
                    else:
                        self.ok += 1
                        self.bodies[data] = self.bodies.get(data, 0) + 1
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failed.append(repr(e))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)


def test_hup_reloads_code_under_load(server, tmp_path):
    app = tmp_path / "hupapp.py"
    app.write_text("def app(e, sr):\n    sr('200 OK', [])\n    return [b'one']\n")
    s = server("hupapp:app", cwd=tmp_path)
    load = Load(s)
    wait_for(lambda: load.ok > 50, 20, "load on the first generation")
    # A longer file: a new size as well as a new time, whatever the clock's grain.
    app.write_text("def app(e, sr):\n    sr('200 OK', [])\n    return [b'two, changed']\n")
    s.send(signal.SIGHUP)
    wait_for(lambda: load.bodies.get(b"two, changed", 0) > 50, 30, "the new code to answer")
    wait_for(lambda: "generation 2 ready" in s.log_text(), 20, "the reload to finish")
    n = load.ok
    wait_for(lambda: load.ok > n + 50, 20, "more load after the reload")
    load.stop()
    assert load.failed == []
    tail = load.ok - n
    assert tail > 0
    assert s.stop() == 0


def test_max_requests_under_load(server):
    s = server("conform:app", "--max-requests", "40", "--max-requests-jitter", "10")
    load = Load(s, "/pid")
    wait_for(lambda: len(load.bodies) >= 5, 30, "workers to be recycled")
    load.stop()
    assert load.failed == []
    assert s.stop() == 0


def test_preload_imports_once_in_master(server):
    s = server("conform:app", "--preload")
    imported, worker = s.get("/imported")[1].split()
    assert int(imported) == s.pid and int(worker) != s.pid
    assert s.stop() == 0


def test_no_preload_imports_in_worker(server):
    s = server("conform:app")
    imported, worker = s.get("/imported")[1].split()
    assert imported == worker
    assert s.stop() == 0


def test_app_threads_run_while_the_worker_waits(server):
    # The worker releases the GIL while its loop waits: a thread of the
    # application keeps ticking between requests, not only during them.
    s = server("threadapp:app", workers=1)
    s.get("/")
    wait_for(lambda: int(s.get("/")[1]) >= 1, 10, "the app's thread to start")
    before = int(s.get("/")[1])
    time.sleep(0.5)  # a window with no request at all: what is measured
    after = int(s.get("/")[1])
    assert after - before >= 10  # about 50; a GIL held in epoll_wait gives 0 or 1
    assert s.stop() == 0


def test_health_path_answered_by_the_core(server):
    # The application never sees the health path; TERM turns it to 503 at
    # once, while the pre-stop delay still serves the application.
    s = server("conform:app", "--health-path", "/healthz", "--pre-stop-delay", "2", workers=1)
    r, data = s.get("/healthz")
    assert r.status == 200 and data == b"ok\n"
    assert s.get("/ping")[1] == b"pong"
    s.send(signal.SIGTERM)
    wait_for(lambda: "pre-stop delay" in s.log_text(), 10, "the pre-stop line")
    r, data = s.get("/healthz")
    assert r.status == 503 and data == b"stopping\n"
    assert r.getheader("Connection") == "close"
    r, data = s.get("/ping")
    assert r.status == 200 and data == b"pong"
    assert s.stop() == 0
