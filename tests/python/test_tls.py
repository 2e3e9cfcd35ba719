"""test_tls.py — the WSGI server over HTTPS: wsgi.url_scheme and HTTPS in the environ, bodies both ways, files, and the usage errors of its options."""
import hashlib
import http.client
import json
import os
import socket
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


def test_over_tls_a_forwarded_http_changes_nothing(server, cert):
    crt, key = cert
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key),
               listen="127.0.0.1:0,tls")
    ctx = ssl.create_default_context(cafile=str(crt))
    c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=30)
    c.request("GET", "/env", headers={"X-Forwarded-Proto": "http"})
    e = json.loads(c.getresponse().read())
    c.close()
    assert e["wsgi.url_scheme"] == "https" and e["HTTPS"] == "on"
    assert s.stop() == 0


def test_plain_listener_beside_says_http(server, cert):
    crt, key = cert
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key), "-l",
               "127.0.0.1:0,tls")
    e = json.loads(s.get("/env")[1])  # the first listener: plain
    assert e["wsgi.url_scheme"] == "http" and "HTTPS" not in e
    assert s.stop() == 0


def get_json(port, ctx, path, session=None):
    """GET path (JSON) over a new TLS connection offering session: the
    answer, the connection's session and whether it was resumed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as t:
            t.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
            data = b""
            while chunk := t.recv(65536):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            return json.loads(body), t.session, t.session_reused


def test_tls12_resumes_by_session_id_on_every_worker(server, cert):
    crt, key = cert
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key), "-w", "2",
               "--mode", "dispatch", listen="127.0.0.1:0,tls")
    ctx = ssl.create_default_context(cafile=str(crt))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_TICKET  # resumption by session ID only
    env, session, reused = get_json(s.port, ctx, b"/env")
    assert env["wsgi.url_scheme"] == "https" and not reused
    workers = set()
    for _ in range(6):  # dispatch mode takes the workers in turn
        w, _, reused = get_json(s.port, ctx, b"/worker", session)
        assert reused
        workers.add(w["index"])
    assert workers == {0, 1}
    assert s.stop() == 0


def ocsp_response(crt, key, d):
    """A DER OCSP response saying "good" about crt, signed by crt itself (it
    is self-signed: its own issuer), as a responder of the user's would."""
    x509 = lambda *a: subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", *a],
                                     check=True, capture_output=True, text=True,
                                     timeout=30).stdout.strip().split("=", 1)[1]
    serial, end = x509("-serial"), x509("-enddate")
    expiry = subprocess.run(["date", "-u", "-d", end, "+%y%m%d%H%M%SZ"], check=True,
                            capture_output=True, text=True, timeout=30).stdout.strip()
    (d / "index.txt").write_text(f"V\t{expiry}\t\t{serial}\tunknown\t/CN=localhost\n")
    out = d / "crt.ocsp"
    subprocess.run(["openssl", "ocsp", "-index", str(d / "index.txt"), "-rsigner", str(crt),
                    "-rkey", str(key), "-CA", str(crt), "-issuer", str(crt), "-cert", str(crt),
                    "-respout", str(out), "-ndays", "1"],
                   check=True, capture_output=True, timeout=60)
    return out


def test_ocsp_response_is_stapled(server, cert, tmp_path):
    crt, key = cert
    resp = ocsp_response(crt, key, tmp_path)
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key), "--tls-ocsp",
               str(resp), listen="127.0.0.1:0,tls")
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.port}", "-status"],
                         input="", capture_output=True, text=True, timeout=30).stdout
    assert "OCSP Response Status: successful" in out and "Cert Status: good" in out, out
    assert s.stop() == 0


def test_ocsp_responses_go_with_their_certificates(cert, tmp_path):
    """serve_wsgi(tls_ocsp=[...]): the n-th response for the n-th
    certificate; one more than there are certificates is refused."""
    crt, key = cert
    code = ("import prefork; prefork.serve_wsgi('conform:app', listen='127.0.0.1:0,tls', "
            f"tls_cert=[{str(crt)!r}], tls_key=[{str(key)!r}], "
            f"tls_ocsp=[None, {str(tmp_path / 'x.der')!r}])")
    p = subprocess.run([sys.executable, "-c", code], env=py_env(f"{PYPATH}:{APPS}"), cwd=APPS,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "more responses than --tls-cert" in p.stderr, p.stderr


@pytest.mark.parametrize("args, says", [
    (["-l", "127.0.0.1:0,tls"], "tls"),
    (["--tls-cert", "{crt}", "--tls-key", "{key}"], ",tls"),
    (["--tls-session-cache", "5"], "--tls-session-cache is for listeners with ,tls"),
    (["-l", "127.0.0.1:0,tls", "--tls-ocsp", "{crt}", "--tls-cert", "{crt}", "--tls-key",
      "{key}"], "goes after the --tls-cert"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "{crt}", "--tls-key", "{key}", "--tls-ocsp",
      "{crt}"], "not an OCSP response"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "{crt}", "--tls-key", "{crt}"], "tls-key"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "/nonexistent.pem", "--tls-key", "{key}"],
     "nonexistent"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "{crt}", "--tls-key", "{key}",
      "--tls-session-cache", "many"], "tls-session-cache"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "{crt}", "--tls-key", "{key}",
      "--tls-min-version", "1.1"], "--tls-min-version '1.1': must be 1.2 or 1.3"),
    (["-l", "127.0.0.1:0,tls", "--tls-cert", "{crt}", "--tls-key", "{key}",
      "--tls-ciphers", "NO-SUCH-SUITE"], "--tls-ciphers 'NO-SUCH-SUITE': OpenSSL knows no"),
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


def read_to_end(port, crt, request):
    """Send request over TLS and read until the stream ends: the bytes, and
    whether it ended with the server's close_notify (a close without one is
    an error once Python's ragged-end allowances are off)."""
    ctx = ssl.create_default_context(cafile=str(crt))
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python sets it
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                             suppress_ragged_eofs=False) as t:
            t.sendall(request)
            data = b""
            try:
                while chunk := t.recv(65536):
                    data += chunk
            except ssl.SSLError as e:  # SSLEOFError, or this with OpenSSL 3
                if not isinstance(e, ssl.SSLEOFError) and e.reason != "UNEXPECTED_EOF_WHILE_READING":
                    raise
                return data, False
            return data, True


def test_close_notify_only_after_a_whole_response(server, cert):
    """A response that ends the connection ends with close_notify: an
    HTTP/1.0 body without a length is whole only if the stream ended
    cleanly. One cut short by the application ends without it, so the
    client cannot take the cut for the end."""
    crt, key = cert
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key),
               listen="127.0.0.1:0,tls")
    data, clean = read_to_end(s.port, crt, b"GET /stream?n=3&size=5 HTTP/1.0\r\n\r\n")
    assert data.endswith(b"\r\n\r\nAAAAABBBBBCCCCC") and clean
    data, clean = read_to_end(s.port, crt, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.endswith(b"pong") and clean
    data, clean = read_to_end(s.port, crt, b"GET /error-late HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and b"xxxx" in data, data[:200]
    assert not clean
    assert s.stop() == 0


def test_tls13_only(server, cert):
    """--tls-min-version 1.3: a TLS 1.2 client is refused, a 1.3 one served."""
    crt, key = cert
    s = server("conform:app", "--tls-cert", str(crt), "--tls-key", str(key),
               "--tls-min-version", "1.3", listen="127.0.0.1:0,tls")
    ctx = ssl.create_default_context(cafile=str(crt))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|protocol version"):
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
            ctx.wrap_socket(raw, server_hostname="localhost")
    r, data = https(s, crt, "GET", "/ping")
    assert data == b"pong"
    assert s.stop() == 0


@pytest.fixture(scope="module")
def client_ca(tmp_path_factory):
    """A CA, the server's certificate under it, and a client's (CN client one)."""
    d = tmp_path_factory.mktemp("ca")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=d)
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=test CA")
    for name, cn in (("server", "localhost"), ("client", "client one")):
        run("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={cn}")
        (d / f"{name}.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return d


@pytest.mark.parametrize("threads", [[], ["--threads", "2"]], ids=["loop", "threads"])
def test_client_certificates(server, client_ca, threads):
    """--tls-client-ca: the application sees the verified client's subject
    (SSL_CLIENT_S_DN, SSL_CLIENT_VERIFY=SUCCESS); with optional, a client
    without a certificate is served and sees neither."""
    d = client_ca
    s = server("conform:app", "--tls-cert", str(d / "server.pem"), "--tls-key",
               str(d / "server.key"), "--tls-client-ca", str(d / "ca.pem"),
               "--tls-verify-client", "optional", *threads, listen="127.0.0.1:0,tls")

    def env(cert):
        ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
        if cert:
            ctx.load_cert_chain(str(d / "client.pem"), str(d / "client.key"))
        c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=30)
        c.request("GET", "/env")
        e = json.loads(c.getresponse().read())
        c.close()
        return e
    e = env(True)
    assert e["SSL_CLIENT_S_DN"] == "CN=client one" and e["SSL_CLIENT_VERIFY"] == "SUCCESS"
    e = env(False)
    assert "SSL_CLIENT_S_DN" not in e and "SSL_CLIENT_VERIFY" not in e
    assert e["wsgi.url_scheme"] == "https"
    assert s.stop() == 0


def test_a_resumed_session_keeps_its_client(server, client_ca):
    """A session resumed from a ticket (on any worker) still names the
    client its certificate named."""
    d = client_ca
    s = server("conform:app", "--tls-cert", str(d / "server.pem"), "--tls-key",
               str(d / "server.key"), "--tls-client-ca", str(d / "ca.pem"),
               listen="127.0.0.1:0,tls")
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    ctx.load_cert_chain(str(d / "client.pem"), str(d / "client.key"))

    def get_env(session):
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as t:
                t.sendall(b"GET /env HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := t.recv(65536):
                    data += chunk
                return json.loads(data.split(b"\r\n\r\n", 1)[1]), t.session, t.session_reused
    e, session, reused = get_env(None)
    assert e["SSL_CLIENT_S_DN"] == "CN=client one" and not reused
    for _ in range(4):  # two workers: both have resumed it by now, most likely
        e, _, reused = get_env(session)
        assert reused and e["SSL_CLIENT_S_DN"] == "CN=client one"
    assert s.stop() == 0
