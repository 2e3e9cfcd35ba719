#!/usr/bin/env python3
"""wsgi_app.py — a WSGI application served by the standard library's wsgiref, on the socket prefork run passes.

    prefork run -w 2 -l 127.0.0.1:8000 -- python3 examples/python/wsgi_app.py

Replace `application` with your framework's WSGI callable (Flask's app,
Django's get_wsgi_application()) to scale it over every core.
"""
import os
import signal
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prefork_worker import listen_socket, notify, worker_name


def application(environ, start_response):
    body = f"hello from {worker_name()}, pid {os.getpid()}: {environ['PATH_INFO']}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]


class InheritedWSGIServer(WSGIServer):
    """wsgiref's server on a socket that is already bound and listening."""

    def __init__(self, sock):
        super().__init__(sock.getsockname(), WSGIRequestHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_bind_done()

    def server_bind_done(self):
        self.server_name, self.server_port = self.socket.getsockname()[:2]
        self.setup_environ()


def main():
    server = InheritedWSGIServer(listen_socket())
    server.set_app(application)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    notify("READY=1")
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
