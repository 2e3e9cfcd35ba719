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
        fam, _ = scrape(port)
        return fam if total(fam, "prefork_requests") == 35 else None

    fam = wait_for(counted, 10, "35 requests counted")
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
