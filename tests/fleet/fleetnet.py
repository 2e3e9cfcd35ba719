"""fleetnet.py — what the fleet tests share: network namespaces for a client, a balancer and two hosts running prefork serve, the hosts themselves, and wrk's load from the client."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
PREFORK = ROOT / os.environ.get("PF_BUILD", "build") / "prefork"

# Addresses from 198.18.0.0/15 (set aside for benchmarking), assigned only
# inside the namespaces the test makes; no route leads out of them.
CLIENT, LB_FRONT = "198.18.0.1", "198.18.0.2"
HOSTS = [("198.18.1.1", "198.18.1.2"), ("198.18.2.1", "198.18.2.2")]  # (lb side, host)
PORT = 8080
PRE_STOP = 2  # seconds: longer than HAProxy's fall x inter (test_fleet.py)


def why_not(*tools):
    """Why the fleet tests cannot run here (None if they can)."""
    if os.geteuid() != 0:
        return "the fleet test needs root (network namespaces)"
    for tool in ("ip", "wrk", *tools):
        if not shutil.which(tool):
            return f"the fleet test needs {tool} (make deps)"
    name = f"pfprobe-{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        return "this machine cannot create network namespaces"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


class Net:
    """Four namespaces: the client, the balancer, two hosts; a veth pair
    from the balancer to each of the others."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.ns = {k: f"pf{tag}-{k}" for k in ("cl", "lb", "h0", "h1")}
        for n in self.ns.values():
            sh("ip", "netns", "add", n)
            sh("ip", "-n", n, "link", "set", "lo", "up")
        self.link("cl", CLIENT, "lb", LB_FRONT, "c")
        for i, (lb, host) in enumerate(HOSTS):
            self.link(f"h{i}", host, "lb", lb, f"{i}")

    def link(self, a, a_addr, b, b_addr, tag):
        va, vb = f"v{tag}a", f"v{tag}b"
        sh("ip", "link", "add", va, "netns", self.ns[a], "type", "veth", "peer", "name", vb,
           "netns", self.ns[b])
        for n, v, addr in ((a, va, a_addr), (b, vb, b_addr)):
            sh("ip", "-n", self.ns[n], "addr", "add", f"{addr}/24", "dev", v)
            sh("ip", "-n", self.ns[n], "link", "set", v, "up")

    def run(self, where, *cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.ns[where], *cmd], **kw)

    def remove(self):
        for n in self.ns.values():
            for pid in subprocess.run(["ip", "netns", "pids", n], capture_output=True,
                                      text=True).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


class Host:
    def __init__(self, net, i, tmp):
        self.net, self.i, self.addr = net, i, HOSTS[i][1]
        self.dir = tmp / f"h{i}"
        (self.dir / "www").mkdir(parents=True, exist_ok=True)
        (self.dir / "www" / "page.html").write_bytes(b"x" * 2048)
        self.alog, self.elog = self.dir / "access.log", self.dir / "error.log"
        self.pidfile = self.dir / "pid"
        self.proc = None

    def start(self):
        if self.pidfile.exists():
            self.pidfile.unlink()
        self.proc = self.net.run(
            f"h{self.i}", str(PREFORK), "serve", str(self.dir / "www"), "-w", "2",
            "-l", f"{self.addr}:{PORT},proxy", "--proxy-allow-from", HOSTS[self.i][0],
            "--health-path", "/healthz", "--pre-stop-delay", str(PRE_STOP),
            "--graceful-timeout", "10", "--access-log", str(self.alog),
            "--error-log", str(self.elog), "--pidfile", str(self.pidfile),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.pidfile.exists, 20, f"host {self.i} ready")
        return self

    def master(self):
        return int(self.pidfile.read_text())

    def stop(self):
        self.term()
        return self.wait()

    def term(self):
        os.kill(self.master(), signal.SIGTERM)

    def wait(self):
        self.proc.wait(30)
        return self.proc.returncode

    def client_lines(self):
        """The access-log lines of the client's requests (the log is
        flushed each second)."""
        if not self.alog.exists():
            return []
        return [l for l in self.alog.read_text().splitlines() if l.startswith(CLIENT + " ")]


class Load:
    """wrk from the client's namespace for a bounded time: its counts."""

    def __init__(self, net, seconds, conns=8, close=False):
        opts = ["-H", "Connection: close"] if close else []  # a new connection each request
        self.proc = net.run("cl", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s",
                            *opts, f"http://{LB_FRONT}:{PORT}/page.html", stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)

    def result(self):
        out, _ = self.proc.communicate(timeout=120)
        done = int(re.search(r"(\d+) requests in", out).group(1))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                         out)
        failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0)
        return done, failed, out


def report(event, done, failed, extra=""):
    """One line per event for make bench's fleet section (FLEET_REPORT)."""
    path = os.environ.get("FLEET_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(f"{event}\t{done}\t{failed}\t{extra}\n")


def load_running(hosts):
    """The load has reached both hosts."""
    wait_for(lambda: all(h.client_lines() for h in hosts), 10, "the load to reach both hosts")


def only_client_lines(hosts):
    """Every access-log line on the hosts has the client's own address,
    never the balancer's (health checks aside)."""
    for h in hosts:
        lines = h.alog.read_text().splitlines()
        assert lines and all(l.startswith(CLIENT + " ") or " /healthz " in l for l in lines), \
            lines[:3]
