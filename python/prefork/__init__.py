"""prefork: WSGI applications and socket services on a supervised pool of worker processes.

The pool, the HTTP/1.1 server and the WSGI glue are C (libprefork); the
master process supervises and never runs application code.

    prefork.serve_wsgi(app, listen="127.0.0.1:8000", workers=4)
    prefork.serve(handler, listen=":7000")   # handler(sock, address)

From a shell: python3 -m prefork [OPTIONS] MODULE:CALLABLE (see --help).
"""
from ._prefork import FileWrapper, version as __version__
from .server import load, serve, serve_wsgi

__all__ = ["serve", "serve_wsgi", "load", "FileWrapper", "__version__"]
