"""sockapp.py — prefork.serve: a socket service whose handler takes 100 ms and answers with its pid."""
import os
import sys
import time

import prefork


def handler(sock, address):
    f = sock.makefile("rwb")
    line = f.readline()
    time.sleep(0.1)
    f.write(f"{os.getpid()} {line.decode().strip()} {address[0]}\n".encode())
    f.flush()
    f.close()


if __name__ == "__main__":
    sys.exit(prefork.serve(handler, listen="127.0.0.1:0", workers=4,
                           pidfile=sys.argv[1], error_log=sys.argv[2]))
