"""conform.py — a WSGI application with one route per behaviour the conformance tests check."""
import hashlib
import io
import json
import os
import sys
import time
import urllib.parse
from wsgiref.validate import validator

BIG = 5 * 1024 * 1024
IMPORTED_IN = os.getpid()


def text(start_response, body, status="200 OK", headers=()):
    start_response(status, [("Content-Type", "text/plain")] + list(headers))
    return [body if isinstance(body, bytes) else body.encode()]


def r_env(environ, start_response):
    env = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    env["input_type"] = type(environ["wsgi.input"]).__name__
    env["has_errors"] = hasattr(environ["wsgi.errors"], "write")
    return text(start_response, json.dumps(env))


def r_md5(environ, start_response):
    """Read the body in pieces of every shape, and say what came."""
    inp = environ["wsgi.input"]
    how = environ.get("QUERY_STRING", "")
    h, n = hashlib.md5(), 0
    if how == "lines":
        parts = list(inp)
    elif how == "readlines":
        parts = inp.readlines()
    elif how == "readline":
        parts = []
        while True:
            line = inp.readline(1000)
            if not line:
                break
            parts.append(line)
    elif how == "all":
        parts = [inp.read()]
    else:
        parts = []
        while True:
            b = inp.read(65536)
            if not b:
                break
            parts.append(b)
    for p in parts:
        h.update(p)
        n += len(p)
    extra = inp.read(10)
    return text(start_response, json.dumps({"md5": h.hexdigest(), "len": n,
                                            "after": len(extra),
                                            "cl": environ.get("CONTENT_LENGTH")}))


def r_stream(environ, start_response):
    q = urllib.parse.parse_qs(environ["QUERY_STRING"])
    n, size = int(q.get("n", ["10"])[0]), int(q.get("size", ["100"])[0])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for i in range(n):
        yield bytes([65 + i % 26]) * size


def r_file(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    f = open(os.environ["CONFORM_FILE"], "rb")
    return environ["wsgi.file_wrapper"](f, 65536)


def r_bytesio(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 100000), 4096)


def r_write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    write(b"then ")
    return [b"returned"]


def r_write_big(environ, start_response):
    """n pieces of 64 KiB through write(), counting them in the file named
    by the query (after each returned)."""
    q = urllib.parse.parse_qs(environ["QUERY_STRING"])
    n, mark = int(q["n"][0]), q["mark"][0]
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    piece = b"w" * 65536
    for i in range(n):
        write(piece)
        with open(mark, "w") as f:
            f.write(str(i + 1))
    return []


def r_worker(environ, start_response):
    import prefork
    return text(start_response, json.dumps({
        "index": prefork.worker_index(), "generation": prefork.generation(),
        "env": [os.environ.get("PREFORK_WORKER"), os.environ.get("PREFORK_GENERATION")]}))


def r_excinfo(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("before the head")
    except ValueError:
        start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced"]


def r_excinfo_late(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"partial")
    try:
        raise ValueError("after the head")
    except ValueError:
        start_response("500 Oops", [], sys.exc_info())  # raises again
    return [b"never"]


def r_error(environ, start_response):
    raise RuntimeError("boom in the app")


def r_error_mid(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first"
    raise RuntimeError("boom mid-response")


def r_error_late(environ, start_response):
    """A body without a length, cut by an error after 256 KiB went."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(4):
        yield b"x" * 65536
    raise RuntimeError("boom after 256 KiB")


class Closing:
    """An endless response that records its close()."""

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        while True:
            yield b"z" * 65536

    def close(self):
        with open(self.path, "w") as f:
            f.write("closed")


def r_closecheck(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Closing(urllib.parse.unquote(environ["QUERY_STRING"]))


def r_inject_status(environ, start_response):
    start_response("200 OK\r\nX-Injected: 1", [])
    return [b"no"]


def r_inject_header(environ, start_response):
    start_response("200 OK", [("X-Ok", "a\r\nSet-Cookie: evil=1")])
    return [b"no"]


def r_nul(environ, start_response):
    start_response("200 OK", [("X-Ok", "a\0b")])
    return [b"no"]


def r_cl_long(environ, start_response):
    start_response("200 OK", [("Content-Length", "5")])
    return [b"0123456789"]


def r_204(environ, start_response):
    start_response("204 No Content", [])
    return [b"ignored"]


def r_gen1(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one item"


def r_errors(environ, start_response):
    environ["wsgi.errors"].write("hello from wsgi.errors\n")
    environ["wsgi.errors"].flush()
    return text(start_response, "logged")


def r_pid(environ, start_response):
    return text(start_response, str(os.getpid()))


def r_imported(environ, start_response):
    return text(start_response, f"{IMPORTED_IN} {os.getpid()}")


def r_slowmark(environ, start_response):
    """Mark the request as begun (a file), then take a while."""
    path = urllib.parse.unquote(environ["QUERY_STRING"])
    open(path, "w").close()
    time.sleep(1.5)
    return text(start_response, "slow done")


def r_sleep(environ, start_response):
    time.sleep(float(environ["QUERY_STRING"] or "0.1"))
    return text(start_response, str(os.getpid()))


def endless_loop_here():
    n = 0
    while True:
        n += 1


def r_loop(environ, start_response):
    endless_loop_here()


def r_exit(environ, start_response):
    os._exit(3)


@validator
def r_validate(environ, start_response):
    # the validator allows read(n) only, as WSGI 1.0 did
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body) + 9))])
    return [b"validated", body]


ROUTES = {k[2:].replace("_", "-"): v for k, v in globals().items() if k.startswith("r_")}


def app(environ, start_response):
    route = environ["PATH_INFO"].strip("/").split("/")[0] or "ping"
    if route == "ping":
        return text(start_response, "pong")
    fn = ROUTES.get(route)
    if fn is None:
        return text(start_response, "no such route", "404 Not Found")
    return fn(environ, start_response)
