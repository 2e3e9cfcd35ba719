"""test_signals.py — Python signal handlers of the application leave the pool's signals alone; serve_wsgi from code."""
import http.client
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import APPS, PYPATH, alive, wait_for


@pytest.mark.parametrize("preload", [[], ["--preload"]])
def test_app_signal_handlers_do_not_break_the_pool(server, preload):
    s = server("sigapp:app", *preload)
    first = set()
    wait_for(lambda: first.add(s.get("/")[1]) or len(first) == 2, 10, "both workers")
    s.send(signal.SIGUSR1)  # reopen logs: no handler of the app runs
    s.send(signal.SIGHUP)
    wait_for(lambda: "generation 2 ready" in s.log_text(), 20, "the reload")
    later = set()
    wait_for(lambda: later.add(s.get("/")[1]) or len(later) == 2, 10, "the new workers")
    assert not first & later
    assert s.stop(signal.SIGTERM) == 0
    assert "the app's handler ran" not in s.out.read_text() + s.log_text()


def test_serve_wsgi_from_code(tmp_path):
    out, pidfile = tmp_path / "stdout", tmp_path / "pid"
    env = dict(os.environ, PYTHONPATH=f"{PYPATH}:{APPS}")
    with open(out, "wb") as o:
        p = subprocess.Popen([sys.executable, str(APPS / "wsgiscript.py"), str(pidfile),
                              str(tmp_path / "error.log")], stdout=o, stderr=subprocess.STDOUT,
                             env=env)
    try:
        m = wait_for(lambda: re.search(r"serving app on http://127\.0\.0\.1:(\d+)/ \(2 workers",
                                       out.read_text()), 15, "the start-up line")
        wait_for(pidfile.exists, 15, "the workers")
        c = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        c.request("GET", "/")
        assert c.getresponse().read() == b"from serve_wsgi"
        c.close()
        p.send_signal(signal.SIGINT)  # Ctrl-C: as TERM
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
