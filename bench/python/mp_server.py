#!/usr/bin/env python3
"""mp_server.py — the baseline prefork run replaces: a multiprocessing pool of http.server processes on one socket.

    mp_server.py PORT WORKERS

It binds 127.0.0.1:PORT itself and starts WORKERS processes with the
standard library's multiprocessing, each serving the shared socket with the
same handler as examples/python/app.py. No supervision: a worker that dies
is not replaced. For the benchmark only (bench/run.sh, section run).
"""
import multiprocessing
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
from app import Handler, InheritedServer  # noqa: E402


def serve(sock):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # terminate() must work
    InheritedServer(sock, Handler).serve_forever()


def main():
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    multiprocessing.set_start_method("fork")
    procs = [multiprocessing.Process(target=serve, args=(sock,)) for _ in range(workers)]
    for p in procs:
        p.start()
    print(f"mp_server: started {workers} workers on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for p in procs:
        p.terminate()
    for p in procs:
        p.join()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
