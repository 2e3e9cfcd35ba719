"""test_tls.py — the WSGI server over HTTPS: wsgi.url_scheme and HTTPS in the environ, bodies both ways, files, and the usage errors of its options."""
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import sys

import pytest

from conftest import APPS, PYPATH, py_env


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    key, crt = d / "key.pem", d / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def https(srv, crt, method, path, body=None):
    ctx = ssl.create_default_context(cafile=str(crt))
    c = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=30)
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


@pytest.mark.parametrize("threads", [[], ["--threads", "2"]], ids=["loop", "threads"])
def test_wsgi_over_https(server, cert, tmp_path, threads):
    crt, key = cert
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 << 20))
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key), *threads,
               listen="127.0.0.1:0,tls", env={"CONFORM_FILE": str(big)})
    r, data = https(s, crt, "GET", "/env")
    e = json.loads(data)
    assert e["wsgi.url_scheme"] == "https" and e["HTTPS"] == "on"
    body = os.urandom(300_000)
    r, data = https(s, crt, "POST", "/md5", body)
    assert r.status == 200 and hashlib.md5(body).hexdigest() in data.decode()
    r, data = https(s, crt, "GET", "/file")
    assert r.status == 200 and data == big.read_bytes()
    assert s.stop() == 0


def test_plain_listener_beside_says_http(server, cert):
    crt, key = cert
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key), "-l",
               "127.0.0.1:0,tls")
    e = json.loads(s.get("/env")[1])  # the first listener: plain
    assert e["wsgi.url_scheme"] == "http" and "HTTPS" not in e
    assert s.stop() == 0


@pytest.mark.parametrize("args, says", [
    (["-l", "127.0.0.1:0,tls"], "tls"),
    (["--tls-cert", "{crt}", "--tls-key", "{key}"], ",tls"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "{crt}", "--tls-key", "{crt}"], "tls-key"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "/nonexistent.pem", "--tls-key", "{key}"],
     "nonexistent"),
])
def test_usage_errors(cert, args, says):
    crt, key = cert
    args = [a.format(crt=crt, key=key) for a in args]
    p = subprocess.run([sys.executable, "-m", "prefork", *args, "conform:app"],
                       env=py_env(f"{PYPATH}:{APPS}"), cwd=APPS, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], p.stderr
