"""test_proxy.py — ,proxy listeners: PROXY protocol v1 and v2 headers on raw sockets, and the address the application sees (REMOTE_ADDR)."""
import json
import socket
import struct

import pytest

from conftest import wait_for

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
REQ = b"GET /env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def v2(cmd, fam, body):
    return SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(body)) + body


def v2_inet(src, sport, dst="198.18.1.1", dport=80, tlvs=b"", cmd=1, fam=0x11):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return v2(cmd, fam, body + tlvs)


def v2_inet6(src, sport, dst="::1", dport=80):
    body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack(">HH", sport, dport))
    return v2(1, 0x21, body)


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def exchange(port, pieces, timeout=10):
    """Send the pieces one by one (each in its own segment), read until the
    server closes; b"" if it closed (or reset) without an answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for p in pieces:
                c.sendall(p)
            out = b""
            while (b := c.recv(65536)):
                out += b
            return out
        except ConnectionResetError:
            return b""


def env(out):
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    return json.loads(out.split(b"\r\n\r\n", 1)[1])


@pytest.fixture(scope="module")
def px(tmp_path_factory):
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("proxy") / "srv", "conform:app", "--header-timeout", "2",
               workers=1, listen="127.0.0.1:0,proxy")
    yield s
    assert s.stop() == 0


@pytest.mark.parametrize("header, addr, port", [
    (b"PROXY TCP4 198.18.0.7 198.18.1.1 56324 443\r\n", "198.18.0.7", "56324"),
    (b"PROXY TCP6 2001:db8::7 ::1 4000 443\r\n", "2001:db8::7", "4000"),
    (v2_inet("198.18.0.9", 5555), "198.18.0.9", "5555"),
    (v2_inet6("2001:db8::9", 6666), "2001:db8::9", "6666"),
    (v2_inet("198.18.0.10", 7777, tlvs=tlv(1, b"h2") + tlv(2, b"example.com") + tlv(4, b"\0" * 9)),
     "198.18.0.10", "7777"),
])
def test_the_client_address_from_the_header(px, header, addr, port):
    e = env(exchange(px.port, [header + REQ]))
    assert e["REMOTE_ADDR"] == addr and e["REMOTE_PORT"] == port


@pytest.mark.parametrize("header", [
    b"PROXY UNKNOWN\r\n",
    v2(0, 0x00, b""),                                  # LOCAL, UNSPEC: a health check
    v2_inet("198.18.0.7", 1, cmd=0),                   # LOCAL with addresses: ignored
    v2(1, 0x00, b"\0" * 5),                            # PROXY, UNSPEC: its bytes skipped
])
def test_local_keeps_the_real_address(px, header):
    e = env(exchange(px.port, [header + REQ]))
    assert e["REMOTE_ADDR"] == "127.0.0.1"


def test_header_split_across_reads(px):
    h = v2_inet("198.18.0.11", 1234) + REQ
    pieces = [h[:1], h[1:12], h[12:15], h[15:20], h[20:]]
    e = env(exchange(px.port, pieces))
    assert e["REMOTE_ADDR"] == "198.18.0.11"
    h1 = b"PROXY TCP4 198.18.0.12 198.18.1.1 80 81\r\n" + REQ
    e = env(exchange(px.port, [h1[:3], h1[3:20], h1[20:40], h1[40:]]))
    assert e["REMOTE_ADDR"] == "198.18.0.12"


@pytest.mark.parametrize("data", [
    REQ,                                                       # no header: never guessed
    b"PROXY TCP4 198.18.0.7 198.18.1.1 99999 443\r\n" + REQ,   # bad port
    b"PROXY TCP4 1.2.3.4\r\n" + REQ,                           # cut short
    SIG + b"\x31\x11\x00\x0c" + b"\0" * 12 + REQ,              # version 3
    SIG + b"\x21\x11\x00\x08" + b"\0" * 8 + REQ,               # shorter than its addresses
    v2_inet("198.18.0.7", 1, tlvs=b"\x01\x00\x09ab") + REQ,    # a TLV past the end
    SIG + b"\x21\x11\xff\xff" + REQ,                           # longer than any we take
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",           # a TLS ClientHello
    bytes(range(256)),
])
def test_bad_headers_close_the_connection(px, data):
    assert exchange(px.port, [data]) == b""
    assert env(exchange(px.port, [v2_inet("198.18.0.1", 1) + REQ]))  # the next one is served


def test_a_stalled_header_waits_at_most_the_header_timeout(px):
    with socket.create_connection(("127.0.0.1", px.port), timeout=10) as c:
        c.sendall(SIG[:8])
        c.settimeout(10)
        try:
            assert c.recv(100) == b""  # closed by the server, after --header-timeout 2
        except ConnectionResetError:
            pass


def test_untrusted_sources_are_closed(server):
    s = server("conform:app", "--proxy-allow-from", "198.18.0.0/15", workers=1,
               listen="127.0.0.1:0,proxy")
    assert exchange(s.port, [v2_inet("198.18.0.7", 1) + REQ]) == b""
    wait_for(lambda: "proxy-allow-from does not trust" in s.log_text(), 10, "the log line")
    assert s.stop() == 0


def test_bad_allow_list_is_a_usage_error():
    import subprocess
    import sys
    from conftest import APPS, PYPATH, py_env
    p = subprocess.run([sys.executable, "-m", "prefork", "--proxy-allow-from", "10.0.0.1/8",
                        "conform:app"], env=py_env(f"{PYPATH}:{APPS}"), cwd=APPS,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--proxy-allow-from" in p.stderr
