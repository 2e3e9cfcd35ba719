"""test_slow.py — 500 clients dripping their heads and 50 slow uploads never hold a Python worker."""
import socket
import threading
import time

from conftest import wait_for


def test_slow_clients_do_not_delay_a_request(server):
    s = server("conform:app", "--max-conns", "2000")
    heads, uploads = [], []
    try:
        for _ in range(500):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            heads.append(c)
        for _ in range(50):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"POST /md5 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" +
                      b"u" * 1000)
            uploads.append(c)
        stop = threading.Event()

        def drip():
            while not stop.is_set():
                for c in heads + uploads:
                    try:
                        c.send(b"X" if c in heads else b"u")
                    except OSError:
                        pass
                stop.wait(0.2)

        t = threading.Thread(target=drip)
        t.start()
        try:
            # A normal request is answered at once, each time, while the
            # slow ones hold their connections (bounded wait, not a timing).
            for _ in range(20):
                r, data = s.get("/ping", timeout=5)
                assert r.status == 200 and data == b"pong"
        finally:
            stop.set()
            t.join(10)
    finally:
        for c in heads + uploads:
            c.close()
    assert s.stop() == 0
