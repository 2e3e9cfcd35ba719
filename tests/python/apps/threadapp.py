"""threadapp.py — an application with a background thread, which must run while its worker waits for requests."""
import threading
import time

ticks = 0


def _tick():
    global ticks
    while True:
        time.sleep(0.01)
        ticks += 1


_started = False
_lock = threading.Lock()


def app(environ, start_response):
    global _started
    with _lock:
        if not _started:  # started in the worker, after the fork
            threading.Thread(target=_tick, daemon=True).start()
            _started = True
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(ticks).encode()]
