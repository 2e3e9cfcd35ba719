"""test_flask.py — a Flask application served end to end: routes, JSON, a form upload."""
import hashlib
import json
import os
import uuid

import pytest

flask = pytest.importorskip("flask", reason="python3-flask is not installed")


def multipart(fields, files):
    b = uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += (f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").encode()
    for k, (name, data) in files.items():
        out += (f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return out, f"multipart/form-data; boundary={b}"


@pytest.mark.parametrize("threads", [[], ["--threads", "4"]], ids=["loop", "threads"])
def test_flask_end_to_end(server, threads):
    s = server("flaskapp:create_app()", *threads)
    r, data = s.get("/")
    assert r.status == 200 and data == b"hello from flask"
    r, data = s.get("/user/ada%20l?x=1")
    assert r.status == 200 and json.loads(data) == {"name": "ada l", "args": {"x": "1"}}
    r, _ = s.get("/nowhere")
    assert r.status == 404
    payload = {"a": [1, 2, 3], "b": "é"}
    r, data = s.get("/json", "POST", json.dumps(payload).encode(),
                    {"Content-Type": "application/json"})
    assert json.loads(data) == {"got": payload, "n": 2}
    blob = os.urandom(2 * 1024 * 1024)
    body, ctype = multipart({"field": "value"}, {"file": ("photo.bin", blob)})
    r, data = s.get("/upload", "POST", body, {"Content-Type": ctype})
    assert r.status == 200
    assert json.loads(data) == {"filename": "photo.bin", "size": len(blob),
                                "md5": hashlib.md5(blob).hexdigest(), "field": "value"}
    assert s.stop() == 0
