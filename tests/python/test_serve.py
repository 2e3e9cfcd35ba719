"""test_serve.py — prefork.serve(handler) in dispatch mode: connections go to idle workers."""
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from conftest import APPS, PYPATH, alive, wait_for


def test_dispatch_spreads_over_idle_workers(tmp_path):
    out = tmp_path / "stdout"
    pidfile = tmp_path / "pid"
    env = dict(os.environ, PYTHONPATH=f"{PYPATH}:{APPS}")
    with open(out, "wb") as o:
        p = subprocess.Popen([sys.executable, str(APPS / "sockapp.py"), str(pidfile),
                              str(tmp_path / "error.log")], stdout=o, stderr=subprocess.STDOUT,
                             env=env)
    try:
        m = wait_for(lambda: re.search(r"on 127\.0\.0\.1:(\d+) \(4 workers, dispatch\)",
                                       out.read_text()), 15, "the start-up line")
        port = int(m.group(1))
        wait_for(pidfile.exists, 15, "the workers")
        answers, waits = [], []

        def client(i):
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
                c.sendall(f"hello {i}\n".encode())
                data = c.makefile("rb").readline().decode().split()
            answers.append(data)
            waits.append(time.monotonic() - t0)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(answers) == 32
        assert all(a[1] == "hello" and a[3] == "127.0.0.1" for a in answers)
        per = {}
        for a in answers:
            per[a[0]] = per.get(a[0], 0) + 1
        # Each of the 4 workers took its share: 8 each when nobody waits
        # behind a busy worker while another is idle; a little slack for
        # connections that arrive while a worker is just finishing.
        assert len(per) == 4, per
        assert max(per.values()) <= 10 and min(per.values()) >= 6, per
        pids = [int(x) for x in per]
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
        wait_for(lambda: not any(alive(x) for x in pids), 10, "the workers to exit")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
