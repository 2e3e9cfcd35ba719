"""test_deploy_snippets.py — docs/deploy.md's systemd unit and Kubernetes pod, run as written: their prefork options on loopback, the health path through a stop, and the stop within the time they give it."""
import json
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from fleetnet import PREFORK, ROOT, wait_for

DOC = (ROOT / "docs" / "deploy.md").read_text()


def block(lang, holding):
    """The docs' ```lang block that holds a given text."""
    for m in re.finditer(r"```" + lang + r"\n(.*?)```", DOC, re.S):
        if holding in m.group(1):
            return m.group(1)
    raise AssertionError(f"no ```{lang} block with {holding!r} in docs/deploy.md")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def option(args, name):
    return float(args[args.index(name) + 1])


def status(url, proxy=False):
    """The status of GET url, -1 when nothing answers; through a PROXY v1
    header when the listener wants one."""
    host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", url).groups()
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            head = f"PROXY TCP4 192.0.2.7 {host} 40000 {port}\r\n" if proxy else ""
            s.sendall(f"{head}GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return -1
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(m.group(1)) if m else -1


class Pool:
    """prefork serve with the snippet's arguments, on loopback."""

    def __init__(self, args):
        self.site = tempfile.TemporaryDirectory(prefix="pf-deploy-")
        with open(f"{self.site.name}/index.html", "w") as f:
            f.write("<p>site</p>\n")
        self.log = tempfile.TemporaryFile()
        argv = [str(PREFORK)] + [self.site.name if a == "/srv/site" else a for a in args]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.site.cleanup()


@pytest.fixture
def pools():
    made = []
    yield lambda args: made.append(Pool(args)) or made[-1]
    for p in made:
        p.stop()


def drain_as_promised(pool, site_url, health_url, proxy, pre_stop, limit):
    """TERM: the health path turns to 503 at once while the site is still
    served, for pre_stop seconds; then the pool exits 0 within limit."""
    pool.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    wait_for(lambda: status(health_url, proxy) == 503, 5, "the health path to turn 503")
    assert status(site_url, proxy) == 200, "the site stopped with the health path"
    served_until = t0
    while pool.proc.poll() is None and time.monotonic() - t0 < limit:
        if status(site_url, proxy) == 200:
            served_until = time.monotonic()
        time.sleep(0.1)
    assert pool.proc.poll() == 0, f"not stopped with 0 within {limit} s:\n{pool.text()}"
    assert served_until - t0 >= pre_stop - 0.5, \
        f"served only {served_until - t0:.1f} s of the {pre_stop} s pre-stop delay"


def test_systemd_unit(pools):
    unit = block("ini", "ExecStart=")
    start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))
    stop_limit = float(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1))
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", unit, re.M)
    assert start[0].endswith("/prefork") and start[1] == "serve"
    args = start[1:]
    pre_stop, graceful = option(args, "--pre-stop-delay"), option(args, "--graceful-timeout")
    assert stop_limit > pre_stop + graceful, "the unit's TimeoutStopSec is too short"
    # Its addresses are a host's and its balancer's: loopback here.
    listen = next(a for a in args if a.endswith(",proxy"))
    port = free_port()
    args = [f"127.0.0.1:{port},proxy" if a == listen else a for a in args]
    allow = args.index("--proxy-allow-from") + 1
    args[allow] = "127.0.0.1"
    pool = pools(args)
    site, health = f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/healthz"
    wait_for(lambda: status(health, True) == 200, 20, "the pool to serve")
    assert status(site, True) == 200
    assert status(site, False) == -1, "a connection without a PROXY header was served"
    pool.proc.send_signal(signal.SIGHUP)  # ExecReload
    wait_for(lambda: "reload" in pool.text().lower(), 10, "the reload in the log")
    assert status(site, True) == 200
    drain_as_promised(pool, site, health, True, pre_stop, stop_limit)


def test_kubernetes_pod(pools):
    pod = block("yaml", "readinessProbe")
    args = json.loads(re.search(r"args: (\[.*?\])", pod, re.S).group(1))
    grace = float(re.search(r"terminationGracePeriodSeconds: (\d+)", pod).group(1))
    probe = re.search(r"httpGet: \{path: (\S+), port: (\d+)\}", pod)
    pre_stop, graceful = option(args, "--pre-stop-delay"), option(args, "--graceful-timeout")
    assert grace > pre_stop + graceful, "terminationGracePeriodSeconds is too short"
    assert args[args.index("-l") + 1] == f":{probe.group(2)}", "the probe's port is not served"
    assert probe.group(1) == args[args.index("--health-path") + 1]
    # ":8080" and ":9100" listen on every address: loopback ports here.
    port, metrics = free_port(), free_port()
    args[args.index("-l") + 1] = f"127.0.0.1:{port}"
    args[args.index("--metrics-listen") + 1] = f"127.0.0.1:{metrics}"
    pool = pools(args)
    site, health = f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}{probe.group(1)}"
    wait_for(lambda: status(health) == 200, 20, "the readiness probe to pass")
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as r:
        assert b"prefork_requests_total" in r.read()
    drain_as_promised(pool, site, health, False, pre_stop, grace)
