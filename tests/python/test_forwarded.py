"""test_forwarded.py — wsgi.url_scheme from X-Forwarded-Proto and its kin: believed from --forwarded-allow-ips only, headers that disagree a 400."""
import http.client
import json
import socket

import pytest

MODES = pytest.mark.parametrize("threads", [[], ["--threads", "2"]], ids=["loop", "threads"])


def scheme(s, headers):
    r, data = s.get("/env", headers=headers)
    assert r.status == 200, (r.status, data)
    e = json.loads(data)
    return e["wsgi.url_scheme"], e.get("HTTPS")


@MODES
def test_a_proxy_on_this_host_is_believed(server, threads):
    s = server("conform:app", *threads)  # the default: loopback and Unix peers
    assert scheme(s, {}) == ("http", None)
    assert scheme(s, {"X-Forwarded-Proto": "https"}) == ("https", "on")
    assert scheme(s, {"X-Forwarded-Proto": "HTTPS"}) == ("https", "on")
    assert scheme(s, {"X-Forwarded-Protocol": "ssl"}) == ("https", "on")
    assert scheme(s, {"X-Forwarded-Ssl": "on"}) == ("https", "on")
    assert scheme(s, {"X-Forwarded-Proto": "http"}) == ("http", None)
    assert scheme(s, {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"}) == \
        ("https", "on")
    # The application still sees the header itself.
    r, data = s.get("/env", headers={"X-Forwarded-Proto": "https"})
    assert json.loads(data)["HTTP_X_FORWARDED_PROTO"] == "https"
    assert s.stop() == 0


@MODES
def test_headers_that_disagree_are_a_400(server, threads):
    s = server("conform:app", *threads)
    r, data = s.get("/env", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"})
    assert r.status == 400
    # Repeated, with two values: the same.
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"GET /env HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n"
                  b"X-Forwarded-Proto: http\r\n\r\n")
        assert c.makefile("rb").readline().startswith(b"HTTP/1.1 400 ")
    assert scheme(s, {}) == ("http", None)  # and the server goes on
    assert s.stop() == 0


@pytest.mark.parametrize("allow", ["198.18.0.0/15", ""], ids=["elsewhere", "none"])
def test_other_peers_are_not_believed(server, allow):
    s = server("conform:app", "--forwarded-allow-ips", allow)
    assert scheme(s, {"X-Forwarded-Proto": "https"}) == ("http", None)
    # Not believed, so not judged either: no 400.
    assert scheme(s, {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}) == \
        ("http", None)
    assert s.stop() == 0


def test_a_unix_socket_peer_is_believed(server, tmp_path):
    path = tmp_path / "s.sock"
    s = server("conform:app", "-l", f"unix:{path}")
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(path))
    h = http.client.HTTPConnection("localhost", timeout=10)
    h.sock = c
    h.request("GET", "/env", headers={"X-Forwarded-Proto": "https"})
    assert json.loads(h.getresponse().read())["wsgi.url_scheme"] == "https"
    h.close()
    assert s.stop() == 0
