"""test_metrics.py — --metrics-listen: the master's Prometheus exposition, parsed strictly, against a known load, through a reload, while every worker is busy."""
import re
import signal
import threading
import time
import urllib.request

import pytest

from conftest import wait_for

parser = pytest.importorskip("prometheus_client.parser",
                             reason="python3-prometheus-client is not installed")


def metrics_port(s):
    m = wait_for(lambda: re.search(r"metrics on 127\.0\.0\.1:(\d+)", s.log_text()), 10,
                 "the metrics line")
    return int(m.group(1))


def scrape(port, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = r.read().decode()
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    return families, text


def total(families, name, **labels):
    f = families[name]
    return sum(s.value for s in f.samples
               if s.name == name + ("_total" if f.type == "counter" else "")
               and all(s.labels.get(k) == v for k, v in labels.items()))


def test_exposition_counts_a_known_load(server):
    s = server("conform:app", "--metrics-listen", "127.0.0.1:0", workers=2)
    port = metrics_port(s)
    for _ in range(30):
        assert s.get("/ping")[1] == b"pong"
    for _ in range(5):
        assert s.get("/nope")[0].status == 404

    def counted():
        # A worker turns idle when its client's connection closes, which can
        # come a moment after the request is counted: wait for both.
        fam, _ = scrape(port)
        done = total(fam, "prefork_requests") == 35
        return fam if done and total(fam, "prefork_workers", state="idle") == 2 else None

    fam = wait_for(counted, 10, "35 requests counted and both workers idle")
    assert total(fam, "prefork_responses", code="2xx") == 30
    assert total(fam, "prefork_responses", code="4xx") == 5
    assert total(fam, "prefork_connections_accepted") == 35
    assert total(fam, "prefork_sent_bytes") > 0
    assert total(fam, "prefork_workers", state="idle") == 2
    info = [x for x in fam["prefork_info"].samples][0]
    assert info.labels["mode"] == "shared" and info.value == 1
    # The histogram: per worker, cumulative buckets ending in +Inf == count.
    h = fam["prefork_request_duration_seconds"]
    assert h.type == "histogram"
    workers = {x.labels["worker"] for x in h.samples}
    assert workers == {"0", "1"}
    count = 0
    for w in workers:
        buckets = [x.value for x in h.samples
                   if x.name.endswith("_bucket") and x.labels["worker"] == w]
        assert buckets == sorted(buckets)
        c = [x.value for x in h.samples if x.name.endswith("_count") and x.labels["worker"] == w]
        assert buckets[-1] == c[0]
        count += c[0]
    assert count == 35
    assert total(fam, "prefork_listen_queue") == 0
    assert s.stop() == 0


def test_counters_carry_over_a_reload(server):
    s = server("conform:app", "--metrics-listen", "127.0.0.1:0", workers=2)
    port = metrics_port(s)
    for _ in range(20):
        s.get("/ping")
    wait_for(lambda: total(scrape(port)[0], "prefork_requests") == 20, 10, "20 counted")
    s.send(signal.SIGHUP)
    wait_for(lambda: total(scrape(port)[0], "prefork_reloads", result="ok") == 1, 20,
             "the reload counted")
    # The old generation's workers leave; their counts stay with their index.
    wait_for(lambda: total(scrape(port)[0], "prefork_workers", state="draining") == 0, 20,
             "the old generation gone")
    fam, _ = scrape(port)
    assert total(fam, "prefork_requests") == 20
    assert total(fam, "prefork_worker_restarts", cause="reload") == 2
    assert total(fam, "prefork_generation") == 2
    for _ in range(10):
        s.get("/ping")
    wait_for(lambda: total(scrape(port)[0], "prefork_requests") == 30, 10, "30 counted")
    assert s.stop() == 0


def test_scrape_answers_while_every_worker_is_busy(server, tmp_path):
    # Both workers held in Python for 5 s: the master answers a scrape at
    # once, and shows them busy.
    mark = tmp_path / "inside"
    s = server("meetapp:app", "--metrics-listen", "127.0.0.1:0", workers=2,
               env={"MEET_MARK": str(mark)})
    port = metrics_port(s)
    held = [threading.Thread(target=lambda: s.get("/meet?3,5", timeout=30)) for _ in range(2)]
    for t in held:
        t.start()
    wait_for(lambda: total(scrape(port)[0], "prefork_connections_active") == 2, 10,
             "both workers holding a request")
    t0 = time.monotonic()
    fam, _ = scrape(port, timeout=2)
    assert time.monotonic() - t0 < 2
    assert total(fam, "prefork_workers", state="busy") == 2
    for t in held:
        t.join(30)
    assert s.stop() == 0


def test_bad_metrics_address_is_a_usage_error():
    import subprocess
    import sys
    from conftest import APPS, PYPATH, py_env
    p = subprocess.run([sys.executable, "-m", "prefork", "--metrics-listen", "nowhere",
                        "conform:app"], env=py_env(f"{PYPATH}:{APPS}"), cwd=APPS,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "--metrics-listen" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_tls_handshakes_and_proxy_on_prefork_serve(tmp_path):
    # prefork serve on one listener with both flags: the PROXY header comes
    # first, then the TLS handshake; the metrics count full and resumed
    # handshakes, and the access log has the address from the header.
    import socket
    import ssl
    import struct
    import subprocess
    from conftest import BUILD, Server
    key, crt = tmp_path / "key.pem", tmp_path / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True,
                   timeout=60)
    root = tmp_path / "www"
    root.mkdir()
    (root / "a.txt").write_text("hello\n")
    alog = tmp_path / "access.log"
    proc = subprocess.Popen([str(BUILD / "prefork"), "serve", str(root), "-w", "1",
                             "-l", "127.0.0.1:0,proxy,tls", "--tls-cert", str(crt),
                             "--tls-key", str(key), "--metrics-listen", "127.0.0.1:0",
                             "--access-log", str(alog), "--error-log", str(tmp_path / "err")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        m = None
        for _ in range(5):  # a warning about root may come first
            m = re.search(r"serving .* on https://127\.0\.0\.1:(\d+)", proc.stdout.readline())
            if m:
                break
        port = int(m.group(1))
        mport = int(wait_for(lambda: re.search(r"metrics on 127\.0\.0\.1:(\d+)",
                                               (tmp_path / "err").read_text()), 10,
                             "the metrics line").group(1))
        ctx = ssl.create_default_context(cafile=str(crt))
        ctx.check_hostname = False
        sig = b"\r\n\r\n\x00\r\nQUIT\n"
        body = socket.inet_aton("198.18.0.7") + socket.inet_aton("198.18.1.1") + \
            struct.pack(">HH", 4321, 443)
        session = None
        for _ in range(3):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            raw.sendall(sig + b"\x21\x11" + struct.pack(">H", len(body)) + body)
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as c:
                c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                out = b""
                while (b := c.recv(4096)):
                    out += b
                assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"hello\n")
                session = c.session
        fam = wait_for(lambda: (lambda f: f if total(f, "prefork_tls_handshakes") == 3 else None)(
            scrape(mport)[0]), 10, "3 handshakes counted")
        assert total(fam, "prefork_tls_handshakes", kind="full") >= 1
        assert total(fam, "prefork_tls_handshakes", kind="resumed") >= 1
        wait_for(lambda: alog.exists() and alog.read_text().count("198.18.0.7 ") == 3, 10,
                 "the access log with the header's address")
    finally:
        proc.terminate()
        proc.wait(30)
