"""sleep10.py — a benchmark WSGI application that waits 10 ms (a database or an API call) and answers hello."""
import time

BODY = b"Hello, world!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    time.sleep(0.010)
    start_response("200 OK", HEADERS)
    return [BODY]
