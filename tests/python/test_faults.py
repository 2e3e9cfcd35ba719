"""test_faults.py — an application that raises, loops, exits or is stopped mid-request, and a pool that goes on."""
import http.client
import signal
import threading

import pytest

from conftest import alive, wait_for


@pytest.mark.parametrize("threads", [[], ["--threads", "2"]], ids=["loop", "threads"])
def test_exception_then_next_request(server, threads):
    s = server("conform:app", *threads, workers=1)
    r, _ = s.get("/error")
    assert r.status == 500
    r, data = s.get("/ping")
    assert r.status == 200 and data == b"pong"
    assert s.stop() == 0


def test_endless_loop_timeout_logs_python_stack(server):
    s = server("conform:app", "--timeout", "2", workers=1)
    stuck = int(s.get("/pid")[1])
    failed = []

    def client():
        try:
            s.get("/loop", timeout=30)
        except (OSError, http.client.HTTPException) as e:
            failed.append(e)  # the worker is killed under it

    t = threading.Thread(target=client)
    t.start()
    # The watchdog logs the request and its Python stack; the master
    # replaces the worker at once and kills it after the grace period.
    wait_for(lambda: "endless_loop_here" in s.log_text(), 10, "the Python stack in the log")
    log = s.log_text()
    assert "'GET /loop' stuck in Python" in log
    assert "r_loop" in log and "conform.py" in log
    wait_for(lambda: "'GET /loop'" in s.log_text(), 10, "the master's line naming the request")
    wait_for(lambda: not alive(stuck), 15, "the stuck worker to be killed")
    t.join(15)
    assert failed
    r, data = s.get("/pid", timeout=10)  # its replacement serves
    assert r.status == 200 and int(data) != stuck
    assert s.stop() == 0


def test_os_exit_in_handler(server):
    s = server("conform:app", workers=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        s.get("/exit")
    wait_for(lambda: "exited with status 3" in s.log_text(), 10, "the exit in the log")
    wait_for(s.probe, 10, "the replacement worker")
    assert s.get("/ping")[1] == b"pong"
    assert s.stop() == 0


@pytest.mark.parametrize("threads", [[], ["--threads", "2"]], ids=["loop", "threads"])
def test_term_with_slow_request_in_flight(server, tmp_path, threads):
    s = server("conform:app", *threads, workers=2)
    mark = tmp_path / "begun"
    got = []
    t = threading.Thread(target=lambda: got.append(s.get(f"/slowmark?{mark}")))
    t.start()
    wait_for(mark.exists, 10, "the slow request to begin")
    pids = s.worker_pids()
    assert s.stop(signal.SIGTERM) == 0  # waits for the master, then the workers
    t.join(10)
    r, data = got[0]
    assert r.status == 200 and data == b"slow done"
    assert not any(alive(p) for p in pids)


def test_app_that_fails_to_import(server, tmp_path):
    (tmp_path / "broken.py").write_text("raise ImportError('broken on purpose')\n")
    from conftest import Server
    with pytest.raises(AssertionError, match="exited 1"):
        Server(tmp_path / "s", "broken:app", "--preload", cwd=tmp_path)
    assert "broken on purpose" in (tmp_path / "s" / "stdout").read_text()
