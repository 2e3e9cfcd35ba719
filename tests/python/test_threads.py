"""test_threads.py — --threads N: the application in N threads per worker, the loop in C; concurrency, limits, faults."""
import http.client
import subprocess
import sys
import threading

import pytest

from conftest import PYPATH, APPS, alive, py_env, wait_for


def parallel(s, paths):
    """GET every path at once, each on its own connection."""
    out = [None] * len(paths)

    def one(i, p):
        out[i] = s.get(p, timeout=30)

    ts = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


def test_requests_run_side_by_side(server):
    # One worker, 4 threads: 4 requests that wait for each other all get in
    # together, each in a thread of its own; the loop meanwhile serves more.
    s = server("meetapp:app", "--threads", "4", workers=1)
    got = parallel(s, ["/meet?4"] * 4)
    seen = [data.decode().split() for r, data in got if r.status == 200]
    assert len(seen) == 4
    assert all(n == "4" for n, _ in seen)
    assert len({t for _, t in seen}) == 4
    assert s.stop() == 0


def test_no_more_than_n_at_once(server):
    # 6 requests, 3 threads: the first 3 meet (3 inside, waiting for 6,
    # which never come while they hold the threads), time out, answer 3.
    s = server("meetapp:app", "--threads", "3", workers=1)
    got = parallel(s, ["/meet?6,1"] * 6)
    counts = sorted(int(data.split()[0]) for r, data in got)
    assert max(counts) == 3, counts
    assert s.stop() == 0


def test_stuck_thread_replaced_with_its_stack(server):
    # A thread that never returns: the loop goes on serving (other threads
    # answer), the watchdog logs the request and its stack, and the worker
    # is replaced though its loop never stopped.
    s = server("conform:app", "--threads", "2", "--timeout", "2", workers=1)
    stuck = int(s.get("/pid")[1])
    failed = []

    def client():
        try:
            s.get("/loop", timeout=30)
        except (OSError, http.client.HTTPException) as e:
            failed.append(e)

    t = threading.Thread(target=client)
    t.start()
    wait_for(lambda: "'GET /loop' stuck in Python" in s.log_text(), 10, "the stuck request")
    wait_for(lambda: "endless_loop_here" in s.log_text(), 10, "its Python stack")
    wait_for(lambda: not alive(stuck), 20, "the stuck worker to be killed")
    t.join(15)
    assert failed
    r, data = s.get("/pid", timeout=10)
    assert r.status == 200 and int(data) != stuck
    assert s.stop() == 0


def test_loop_serves_while_threads_are_busy(server, tmp_path):
    # Both threads held; the worker still accepts, parses and answers a bad
    # request at once (the loop is C's, not a Python thread's).
    mark = tmp_path / "inside"
    s = server("meetapp:app", "--threads", "2", workers=1, env={"MEET_MARK": str(mark)})
    held = threading.Thread(target=lambda: parallel(s, ["/meet?3,5"] * 2))
    held.start()
    wait_for(lambda: mark.exists() and mark.read_text() == "2", 10, "both threads busy")
    c = s.conn(timeout=3)
    c.request("GET", "/x" * 5000)  # past --max-uri-bytes: the core's 414
    assert c.getresponse().status == 414
    held.join(30)
    assert s.stop() == 0


@pytest.mark.parametrize("value", ["0", "-1", "x", "1025"])
def test_bad_thread_counts(value):
    p = subprocess.run([sys.executable, "-m", "prefork", "--threads", value, "meetapp:app"],
                       env=py_env(f"{PYPATH}:{APPS}"), cwd=APPS, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    assert "--threads" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_threads_refused_for_socket_services():
    code = ("import prefork\n"
            "try:\n prefork.serve(lambda s, a: None, threads=2)\n"
            "except ValueError as e:\n print('refused:', e)\n")
    p = subprocess.run([sys.executable, "-c", code], env=py_env(str(PYPATH)),
                       capture_output=True, text=True, timeout=30)
    assert "refused: --threads is for WSGI" in p.stdout
