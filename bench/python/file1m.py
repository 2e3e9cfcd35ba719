"""file1m.py — a benchmark WSGI application that sends a 1 MiB file through wsgi.file_wrapper."""
import os

# bench/run.sh makes the file (build/bench/www/1m.bin) and names it here.
PATH = os.environ.get("BENCH_FILE", "build/bench/www/1m.bin")
SIZE = os.path.getsize(PATH)


def app(environ, start_response):
    f = open(PATH, "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(SIZE))])
    # The server closes the wrapper (and so the file) when the response is done.
    return environ["wsgi.file_wrapper"](f, 65536)
