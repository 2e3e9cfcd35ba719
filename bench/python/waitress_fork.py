#!/usr/bin/env python3
"""waitress_fork.py — waitress as a benchmark peer with 2 processes: binds one socket, forks WORKERS waitress servers on it.

    python3 bench/python/waitress_fork.py PORT WORKERS MODULE:CALLABLE

waitress itself is one process with a pool of threads (4 by default, kept
here); the benchmark runs every server with 2 processes, so this starts 2
of them on one listening socket (waitress.serve's sockets=), unsupervised.
On TERM or INT it stops them and exits.
"""
import importlib
import logging
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    port, workers, target = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name or "application")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    kids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            import waitress
            # Its "Task queue depth is N" warning, printed for every request
            # queued behind the busy threads, would cost more than the
            # application; a deployment with logging set up would not see
            # it on the terminal either.
            logging.getLogger("waitress.queue").setLevel(logging.ERROR)
            waitress.create_server(app, sockets=[sock]).run()
            os._exit(0)
        kids.append(pid)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for pid in kids:
        os.kill(pid, signal.SIGTERM)
    for pid in kids:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
