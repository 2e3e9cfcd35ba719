"""test_pip.py — pip install ./python into a fresh virtual environment, offline, and serve from there."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, Server


def test_pip_install_offline(tmp_path):
    venv = tmp_path / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        pytest.skip(f"no venv with pip here (python3-venv / ensurepip missing): {r.stderr[-200:]}")
    py = venv / "bin" / "python"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-index", str(ROOT / "python")],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = subprocess.run([str(py), "-c", "import prefork; print(prefork.__file__)"],
                       capture_output=True, text=True, timeout=30, env=env, cwd=tmp_path)
    assert str(venv) in r.stdout
    app = tmp_path / "app"
    app.mkdir()
    (app / "hello.py").write_text("def app(e, sr):\n    sr('200 OK', [])\n    return [b'hi']\n")
    s = Server(tmp_path / "s", "hello:app", cwd=app, python=str(py),
               env={"PYTHONPATH": str(app)})
    try:
        assert s.get("/")[1] == b"hi"
        assert s.stop() == 0
    finally:
        s.kill()
