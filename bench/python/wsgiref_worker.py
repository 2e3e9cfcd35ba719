#!/usr/bin/env python3
"""wsgiref_worker.py — serves MODULE:CALLABLE with the standard library's wsgiref on the socket prefork run passes (the old way).

    prefork run -w 2 -l 127.0.0.1:8000 -- python3 bench/python/wsgiref_worker.py hello:app

The same server as examples/python/wsgi_app.py (one thread, HTTP/1.0),
with the application named on the command line. Quiet: wsgiref's line per
request would cost more than the hello-world application itself.
"""
import importlib
import os
import signal
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "examples", "python")]
from prefork_worker import listen_socket, notify  # noqa: E402
from wsgi_app import InheritedWSGIServer  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    module, _, name = sys.argv[1].partition(":")
    app = getattr(importlib.import_module(module), name or "application")
    server = InheritedWSGIServer(listen_socket())
    server.RequestHandlerClass = QuietHandler
    server.set_app(app)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    notify("READY=1")
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
