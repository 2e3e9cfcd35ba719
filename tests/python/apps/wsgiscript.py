"""wsgiscript.py — prefork.serve_wsgi called from Python code with a callable."""
import sys

import prefork


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from serve_wsgi"]


if __name__ == "__main__":
    sys.exit(prefork.serve_wsgi(app, listen=["127.0.0.1:0"], workers=2, pidfile=sys.argv[1],
                                error_log=sys.argv[2], max_requests=1000))
