#!/usr/bin/env python3
"""echo.py — an echo service on prefork.serve: each connection gets back what it sends, served by an idle worker.

    PYTHONPATH=build/python python3 examples/python/echo.py [-l 127.0.0.1:7000] [-w 4]
    printf 'hello\\n' | nc -q1 127.0.0.1 7000
"""
import argparse
import os
import sys

import prefork


def echo(sock, address):
    print(f"worker {prefork.worker_index()} (pid {os.getpid()}): {address[0]}:{address[1]} "
          "connected", file=sys.stderr)
    while data := sock.recv(65536):
        sock.sendall(data)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-l", "--listen", default="127.0.0.1:7000")
    p.add_argument("-w", "--workers", type=int, default=4)
    a = p.parse_args()
    prefork.serve(echo, listen=a.listen, workers=a.workers)


if __name__ == "__main__":
    main()
