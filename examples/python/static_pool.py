#!/usr/bin/env python3
"""static_pool.py — a pool of static-file HTTP servers: http.server's handler on prefork.serve, each log line naming its worker.

    PYTHONPATH=build/python python3 examples/python/static_pool.py [DIR] [-l 127.0.0.1:8000] [-w 4]

The seed of prefork, in Python: the master accepts each connection and
passes it to an idle worker (dispatch mode), which serves it with the
standard library's SimpleHTTPRequestHandler and closes it.
"""
import argparse
import functools
import http.server
import os
import sys

import prefork


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write(f"worker {prefork.worker_index()} (pid {os.getpid()}): "
                         f"{self.address_string()} {fmt % args}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("directory", nargs="?", default=".")
    p.add_argument("-l", "--listen", default="127.0.0.1:8000")
    p.add_argument("-w", "--workers", type=int, default=4)
    a = p.parse_args()
    handler = functools.partial(Handler, directory=os.path.abspath(a.directory))
    # handler(sock, address) serves one connection; the worker closes it after.
    prefork.serve(lambda sock, address: handler(sock, address, None),
                  listen=a.listen, workers=a.workers)


if __name__ == "__main__":
    main()
