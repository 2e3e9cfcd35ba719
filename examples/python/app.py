#!/usr/bin/env python3
"""app.py — a standard-library http.server application that takes its socket from prefork run (fd 3).

    prefork run -w 3 -l 127.0.0.1:8000 -- python3 examples/python/app.py

It answers every GET with which worker and process served it. It says
READY=1 once it serves, and on SIGTERM (prefork's stop signal) finishes the
requests in flight and exits. For tests: with --never-ready-if FILE it
never says READY=1 while FILE exists.
"""
import http.server
import os
import signal
import socketserver
import sys
import threading

from prefork_worker import listen_socket, notify, worker_name


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 10  # an idle keep-alive connection ends after 10 s (and so does a drain)
    # Buffered: head and body leave in one send. Unbuffered (the default),
    # the body's small second send waits for the client's delayed ACK.
    wbufsize = -1

    def do_GET(self):
        body = f"hello from {worker_name()}, pid {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # the client asked; say that we will
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # to stderr: prefork logs it as this worker's
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


class InheritedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTPServer on a socket that is already bound and listening.

    On SIGTERM it stops accepting, and server_close() waits for the requests
    in flight (non-daemon threads, block_on_close) before the process exits:
    a stop or a reload loses none of them."""
    daemon_threads = False
    block_on_close = True

    def __init__(self, sock, handler):
        socketserver.BaseServer.__init__(self, sock.getsockname(), handler)
        self.socket = sock
        self.server_name, self.server_port = sock.getsockname()[:2]


def main():
    never_ready = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--never-ready-if" else None
    server = InheritedServer(listen_socket(), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if not (never_ready and os.path.exists(never_ready)):
        notify("READY=1")
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
