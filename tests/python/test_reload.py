"""test_reload.py — python3 -m prefork --reload: a change to the code reloads the pool with no failed request; code that fails to import leaves the old generation serving."""
import subprocess
import sys
import threading
import time

from conftest import PYPATH, py_env, wait_for

APP = '''import prefork

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%s %%d" %% prefork.generation()]
'''


def write_app(d, version):
    (d / "devapp.py").write_text(APP % version)


def answer(s):
    r, data = s.get("/")
    assert r.status == 200
    return data.decode().split()


def test_a_change_reloads_the_code(server, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    write_app(code, "v1")
    extra = code / "template.html"
    extra.write_text("one")
    s = server("devapp:app", "--reload", "--reload-extra-file", str(extra), cwd=code)
    assert answer(s) == ["v1", "1"]
    wait_for(lambda: "--reload: watching" in s.log_text(), 10, "the watcher")
    # Clients go on meanwhile: not one request fails.
    failures, done, stop = [], [0], threading.Event()

    def client():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and done[0] < 20000:
            try:
                r, _ = s.get("/", timeout=10)
                if r.status != 200:
                    failures.append(r.status)
            except OSError as e:
                failures.append(repr(e))
            done[0] += 1
    t = threading.Thread(target=client)
    t.start()
    try:
        write_app(code, "v2")
        # The generation from the answer that showed the new code: until the
        # old workers stop accepting, the next answer may still be theirs.
        gen = int(wait_for(lambda: (a := answer(s))[0] == "v2" and a, 20, "the new code")[1])
        assert "devapp.py changed; reloading" in s.log_text()
        # Code that does not import: the reload fails, the old code serves on.
        wait_for(lambda: s.log_text().count("--reload: watching") >= 2, 10, "the new watcher")
        (code / "devapp.py").write_text("def app(:\n")
        wait_for(lambda: "reload failed" in s.log_text(), 20, "the failed reload")
        assert answer(s) == ["v2", str(gen)]
        write_app(code, "v3")
        v3 = wait_for(lambda: (a := answer(s))[0] == "v3" and a, 20, "the fixed code")
        # A file beside the code, named by --reload-extra-file.
        wait_for(lambda: s.log_text().count("--reload: watching") >= 3, 10, "the new watcher")
        extra.write_text("two")
        wait_for(lambda: int(answer(s)[1]) > int(v3[1]), 20, "a reload for the extra file")
    finally:
        stop.set()
        t.join(30)
    assert done[0] > 0 and failures == []
    assert s.stop() == 0


def test_reload_refuses_preload(tmp_path):
    r = subprocess.run([sys.executable, "-m", "prefork", "--reload", "--preload", "m:app"],
                       env=py_env(str(PYPATH)), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--reload needs the application by name" in lines[0], r.stderr
