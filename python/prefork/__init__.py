"""prefork: WSGI applications and socket services on a supervised pool of worker processes.

The pool, the HTTP/1.1 server and the WSGI glue are C (libprefork); the
master process supervises and never runs application code.

    prefork.serve_wsgi(app, listen="127.0.0.1:8000", workers=4)
    prefork.serve(handler, listen=":7000")   # handler(sock, address)

From a shell: python3 -m prefork [OPTIONS] MODULE:CALLABLE (see --help).
"""
from ._prefork import FileWrapper, version as __version__
from ._prefork import worker as _worker
from .server import Worker, load, serve, serve_wsgi

__all__ = ["serve", "serve_wsgi", "load", "worker_index", "generation", "FileWrapper",
           "Worker", "__version__"]


def worker_index():
    """This worker's index, 0 to workers-1 (a replacement takes over the
    index of the worker it replaces); None outside a worker. Also in
    os.environ["PREFORK_WORKER"]."""
    w = _worker()
    return w[0] if w else None


def generation():
    """This worker's generation: 1, then one more with each reload (HUP);
    None outside a worker. Also in os.environ["PREFORK_GENERATION"]."""
    w = _worker()
    return w[1] if w else None
