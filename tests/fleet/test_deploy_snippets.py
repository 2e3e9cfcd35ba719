"""test_deploy_snippets.py — docs/deploy.md's systemd unit and Kubernetes pod, run as written: their prefork options on loopback, the health path through a stop, and the stop within the time they give it; its Prometheus scrape_configs and PromQL example, run by a real Prometheus against a pool."""
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
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


PROMETHEUS = "/usr/bin/prometheus"


class Prometheus:
    """A Prometheus server of its own: the given configuration, a temporary
    TSDB, on a loopback port."""

    def __init__(self, config):
        self.dir = tempfile.TemporaryDirectory(prefix="pf-prom-")
        with open(f"{self.dir.name}/prometheus.yml", "w") as f:
            f.write(config)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir.name}/prometheus.yml",
             f"--storage.tsdb.path={self.dir.name}/data",
             f"--web.listen-address={self.url[len('http://'):]}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def ready(self):
        assert self.proc.poll() is None, f"prometheus exited:\n{self.text()}"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """The value of an instant query that gives one sample, None when it
        gives none."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            answer = json.load(r)
        assert answer["status"] == "success", answer
        result = answer["data"]["result"]
        assert len(result) <= 1, f"{expr}: {result}"
        return float(result[0]["value"][1]) if result else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.dir.cleanup()


def scraped(url):
    """The exposition at url, "" when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def test_prometheus_scrapes_the_pool(pools):
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip(f"no {PROMETHEUS} (make deps installs it)")
    scrape = block("yaml", "scrape_configs")
    share_5xx = block("promql", "prefork_responses_total").strip()
    assert share_5xx.count('code="5xx"') == 1
    share_4xx = share_5xx.replace('code="5xx"', 'code="4xx"')
    port, metrics = free_port(), free_port()
    pool = pools(["serve", "/srv/site", "-w", "2", "-l", f"127.0.0.1:{port}",
                  "--metrics-listen", f"127.0.0.1:{metrics}"])
    # The block as written, its two hosts' targets replaced by this pool's
    # metrics port, and a scrape each second rather than the default minute.
    targets = re.search(r"targets: (\[.*?\])", scrape)
    assert all(t.endswith(":9100") for t in json.loads(targets.group(1)))
    config = ("global:\n  scrape_interval: 1s\n" + scrape[:targets.start(1)]
              + json.dumps([f"127.0.0.1:{metrics}"]) + scrape[targets.end(1):])
    job = re.search(r"job_name: (\S+)", scrape).group(1)
    # Ready with no request made, so that every count starts at 0.
    wait_for(lambda: 'prefork_workers{state="idle"} 2' in
             scraped(f"http://127.0.0.1:{metrics}/metrics"), 20, "the pool's two workers")
    prom = Prometheus(config)
    try:
        wait_for(prom.ready, 30, "prometheus to be ready")
        # A scrape of the idle pool before the load, so that rate() sees all
        # of it as an increase.
        wait_for(lambda: prom.query(f'up{{job="{job}"}} == 1'), 20, "a first scrape")
        assert prom.query(f'sum(prefork_requests_total{{job="{job}"}})') == 0
        # The load: 40 requests, a quarter of them for files the site lacks.
        paths = [f"/missing-{i}" if i % 4 == 0 else "/index.html" for i in range(40)]
        for path in paths:
            want = 200 if path == "/index.html" else 404
            assert status(f"http://127.0.0.1:{port}{path}") == want, path
        sent, missing = len(paths), sum(p != "/index.html" for p in paths)
        wait_for(lambda: prom.query(f'sum(prefork_requests_total{{job="{job}"}})') == sent,
                 20, f"prometheus to count the {sent} requests")
        assert prom.query(f'up{{job="{job}"}}') == 1
        assert prom.query(f'sum(prefork_responses_total{{job="{job}",code="4xx"}})') == missing

        # The docs' expression evaluates to a share: 0, the pool answered no
        # 5xx; the same with 4xx is the 404s' share of the load.
        def number(expr):
            v = prom.query(expr)
            return v is not None and math.isfinite(v) and [v]
        [share] = wait_for(lambda: number(share_5xx), 10, "the 5xx share")
        assert share == 0, share
        [share] = wait_for(lambda: number(share_4xx), 10, "the 4xx share")
        assert share == pytest.approx(missing / sent, abs=1e-9), share
    finally:
        prom.stop()
    pool.proc.send_signal(signal.SIGTERM)
    assert pool.proc.wait(20) == 0, pool.text()
