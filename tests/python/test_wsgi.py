"""test_wsgi.py — PEP 3333 conformance of python3 -m prefork, through real sockets."""
import hashlib
import json
import os
import socket
import time

import pytest

from conftest import wait_for

BIG = 5 * 1024 * 1024


# Every test runs twice: the application called on the worker's loop
# thread (the default), and in threads of --threads, whose responses go
# back to the loop (pyw_thread.c).
@pytest.fixture(scope="module", params=["loop", "threads"])
def srv(tmp_path_factory, request):
    from conftest import Server
    tmp = tmp_path_factory.mktemp("conform")
    big = tmp / "big.bin"
    big.write_bytes(os.urandom(BIG))
    threads = ["--threads", "4"] if request.param == "threads" else []
    s = Server(tmp / "srv", "conform:app", "--max-body-bytes", str(8 << 20), *threads,
               env={"CONFORM_FILE": str(big)})
    s.threads = bool(threads)
    s.big = big
    yield s
    assert s.stop() == 0
    assert s.sanitizer_reports() == []


def raw(srv, data, timeout=10):
    """Send data on a new connection, read until the server closes."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as c:
        c.sendall(data)
        out = b""
        while True:
            b = c.recv(65536)
            if not b:
                return out
            out += b


def env_of(srv, path="/env", headers=None):
    r, data = srv.get(path, headers=headers)
    assert r.status == 200
    return json.loads(data)


def test_hello_and_keepalive(srv):
    c = srv.conn()
    for _ in range(3):
        c.request("GET", "/ping")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"pong"
        assert r.getheader("Content-Length") == "4"
    c.close()


def test_environ_basics(srv):
    e = env_of(srv, "/env/a%20b%2Fc%C3%A9?x=1&y=%20")
    assert e["REQUEST_METHOD"] == "GET"
    assert e["SCRIPT_NAME"] == ""
    # percent-decoded, then bytes as latin-1 (PEP 3333 native strings)
    assert e["PATH_INFO"] == "/env/a b/c" + "\xc3\xa9"
    assert e["QUERY_STRING"] == "x=1&y=%20"
    assert e["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert e["SERVER_NAME"] == "127.0.0.1" and e["SERVER_PORT"] == str(srv.port)
    assert e["REMOTE_ADDR"] == "127.0.0.1" and e["REMOTE_PORT"].isdigit()
    assert e["wsgi.version"] == [1, 0]
    assert e["wsgi.url_scheme"] == "http"
    assert e["wsgi.multithread"] is srv.threads and e["wsgi.multiprocess"] is True
    assert e["wsgi.run_once"] is False and e["wsgi.input_terminated"] is True
    assert e["has_errors"] and e["input_type"] == "Input"
    assert "HTTP_CONTENT_TYPE" not in e and "HTTP_CONTENT_LENGTH" not in e


def test_environ_headers(srv):
    req = (b"POST /env HTTP/1.1\r\nHost: example.org:8080\r\nContent-Type: text/x\r\n"
           b"Content-Length: 2\r\nX-Multi: a\r\nX-Multi: b\r\nX-User: dashed\r\n"
           b"X_User: underscored\r\nCookie: a=1\r\nCookie: b=2\r\n"
           b"Connection: close\r\n\r\nhi")
    out = raw(srv, req)
    e = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert e["CONTENT_TYPE"] == "text/x" and e["CONTENT_LENGTH"] == "2"
    assert e["HTTP_X_MULTI"] == "a, b"
    assert e["HTTP_X_USER"] == "dashed"  # X_User never lands on X-User's key
    assert e["HTTP_COOKIE"] == "a=1; b=2"
    assert e["SERVER_NAME"] == "example.org" and e["SERVER_PORT"] == "8080"
    assert e["HTTP_HOST"] == "example.org:8080"


def test_http10(srv):
    out = raw(srv, b"GET /stream?n=3&size=4 HTTP/1.0\r\n\r\n")
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == b"AAAABBBBCCCC"  # delimited by the close


@pytest.mark.parametrize("how", ["pieces", "all", "lines", "readlines", "readline"])
@pytest.mark.parametrize("size", [0, 1, 300000, BIG])
def test_bodies(srv, size, how):
    if size == BIG and how not in ("pieces", "lines"):
        pytest.skip("5 MiB is read two ways, enough")
    body = os.urandom(size) if how in ("pieces", "all") else (b"line of text\n" * (size // 13 + 1))[:size]
    r, data = srv.get(f"/md5?{how}", method="POST", body=body)
    assert r.status == 200
    got = json.loads(data)
    assert got == {"md5": hashlib.md5(body).hexdigest(), "len": size, "after": 0,
                   "cl": str(size)}


def test_chunked_body_with_trailers(srv):
    req = (b"POST /md5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    out = raw(srv, req)
    got = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert got["md5"] == hashlib.md5(b"hello world").hexdigest()
    assert got["len"] == 11 and got["cl"] == "11"


def test_100_continue(srv):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as c:
        c.sendall(b"POST /md5 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        first = c.recv(100)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        c.sendall(b"12345")
        out = first[25:]
        while (b := c.recv(65536)):
            out += b
    assert b"HTTP/1.1 200" in out
    assert json.loads(out.split(b"\r\n\r\n", 1)[1])["md5"] == hashlib.md5(b"12345").hexdigest()


def test_413(server):
    s = server("conform:app", "--max-body-bytes", "1000")
    out = raw(s, b"POST /md5 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413")
    # chunked, found too big as it arrives
    out = raw(s, b"POST /md5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"800\r\n" + b"a" * 2048 + b"\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413")
    assert s.get("/ping")[1] == b"pong"


def test_streaming_chunked(srv):
    r, data = srv.get("/stream?n=50&size=1000")
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert data == b"".join(bytes([65 + i % 26]) * 1000 for i in range(50))


def test_big_stream_backpressure(srv):
    # 80 MiB through a client that reads slowly at first: the worker waits
    # for room instead of queueing it all, and everything arrives in order.
    c = srv.conn()
    c.request("GET", "/stream?n=1280&size=65536")
    r = c.getresponse()
    first = r.read(65536)
    time.sleep(0.2)  # let the socket fill (the point of the test, not a wait)
    h = hashlib.md5(first)
    n = len(first)
    while (b := r.read(1 << 20)):
        h.update(b)
        n += len(b)
    assert n == 1280 * 65536
    want = hashlib.md5(b"".join(bytes([65 + i % 26]) * 65536 for i in range(1280)))
    assert h.hexdigest() == want.hexdigest()


def test_write_waits_for_the_client(srv, tmp_path):
    # write() returns once its bytes are out (or nearly: up to the
    # high-water mark): against a client that reads nothing, the app is held
    # after what the sockets' buffers take (a few MiB on loopback), not
    # after all 64 MiB are queued in the worker.
    mark = tmp_path / "written"
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.sendall(f"GET /write-big?n=1024&mark={mark} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    wait_for(mark.exists, 10, "the first write()")
    seen = []
    deadline = time.monotonic() + 1.0  # long enough to queue 64 MiB if nothing held it
    while time.monotonic() < deadline:
        seen.append(int(mark.read_text() or 0))
        time.sleep(0.05)
    assert max(seen) < 200, f"write() ran ahead of the client: {max(seen)} pieces"
    n = 0
    while (b := c.recv(1 << 20)):  # then all of it arrives, in order
        n += len(b)
        if n >= 1024 * 65536:
            break
    c.close()
    assert n >= 1024 * 65536
    wait_for(lambda: mark.read_text() == "1024", 10, "the last write()")


def test_worker_index(srv):
    # Each worker knows its index (0 or 1 here) and generation, as
    # prefork run's programs do from PREFORK_WORKER / PREFORK_GENERATION.
    seen = set()
    for _ in range(20):
        w = json.loads(srv.get("/worker")[1])
        assert w["index"] in (0, 1) and w["generation"] == 1
        assert w["env"] == [str(w["index"]), "1"]
        seen.add(w["index"])
    import subprocess, sys
    from conftest import PYPATH, py_env
    out = subprocess.run([sys.executable, "-c", "import prefork; print(prefork.worker_index())"],
                         env=py_env(str(PYPATH)), capture_output=True, text=True,
                         timeout=30).stdout
    assert out.strip() == "None"  # outside a worker


def test_single_item_gets_length(srv):
    r, data = srv.get("/ping")
    assert r.getheader("Content-Length") == "4" and r.getheader("Transfer-Encoding") is None
    r, data = srv.get("/gen1")
    assert data == b"one item"


def test_file_wrapper_sendfile(srv):
    r, data = srv.get("/file")
    assert r.getheader("Content-Length") == str(BIG)
    assert data == srv.big.read_bytes()


def test_file_wrapper_no_fileno(srv):
    r, data = srv.get("/bytesio")
    assert data == b"x" * 100000


def test_head(srv):
    c = srv.conn()
    c.request("HEAD", "/ping")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "4"
    assert r.read() == b""
    c.request("GET", "/ping")  # the connection is still in step
    assert c.getresponse().read() == b"pong"
    c.close()


def test_204_has_no_body(srv):
    out = raw(srv, b"GET /204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 204") and out.endswith(b"\r\n\r\n")


def test_write_callable(srv):
    assert srv.get("/write")[1] == b"written then returned"


def test_exc_info_before_head(srv):
    r, data = srv.get("/excinfo")
    assert r.status == 500 and r.reason == "Oops" and data == b"replaced"


def test_exc_info_after_head_cuts(srv):
    # The head went out (or was about to): the connection is cut, so the
    # client never mistakes the response for a whole one.
    out = raw(srv, b"GET /excinfo-late HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"never" not in out and not out.endswith(b"0\r\n\r\n")
    assert srv.get("/ping")[1] == b"pong"


def test_exception_500_then_next(srv):
    r, data = srv.get("/error")
    assert r.status == 500
    assert srv.get("/ping")[1] == b"pong"
    wait_for(lambda: "RuntimeError: boom in the app" in srv.log_text(), 5, "the traceback")
    assert "error in the application for 'GET /error'" in srv.log_text()


def test_exception_mid_response_closes(srv):
    out = raw(srv, b"GET /error-mid HTTP/1.1\r\nHost: x\r\n\r\n")  # no hang: closed
    assert not out.endswith(b"0\r\n\r\n")
    wait_for(lambda: "boom mid-response" in srv.log_text(), 5, "the traceback")


def test_close_called_on_disconnect(srv, tmp_path):
    mark = tmp_path / "closed"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as c:
        c.sendall(f"GET /closecheck?{mark} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert c.recv(1000).startswith(b"HTTP/1.1 200")
    wait_for(mark.exists, 10, "close() of the iterable")
    assert srv.get("/ping")[1] == b"pong"


@pytest.mark.parametrize("route", ["inject-status", "inject-header", "nul"])
def test_header_injection_refused(srv, route):
    out = raw(srv, f"GET /{route} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 500")
    assert b"Injected" not in out and b"evil" not in out and b"\0" not in out


def test_longer_than_content_length_cut(srv):
    out = raw(srv, b"GET /cl-long HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"Content-Length: 5" in head and body == b"01234"


def test_wsgi_errors_to_log(srv):
    assert srv.get("/errors")[1] == b"logged"
    wait_for(lambda: "hello from wsgi.errors" in srv.log_text(), 5, "the log line")
    line = next(l for l in srv.log_text().splitlines() if "hello from wsgi.errors" in l)
    assert "worker" in line


def test_wsgiref_validate(srv):
    r, data = srv.get("/validate", method="POST", body=b"abc")
    assert r.status == 200 and data == b"validatedabc"
    r, data = srv.get("/validate")
    assert r.status == 200 and data == b"validated"
    assert "AssertionError" not in srv.log_text()


def test_pipelining(srv):
    out = raw(srv, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n" * 3 +
              b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.count(b"pong") == 4
