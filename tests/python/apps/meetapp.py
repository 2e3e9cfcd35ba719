"""meetapp.py — requests that wait for one another: how many run in one worker at once under --threads."""
import os
import threading
import time

_lock = threading.Condition()
_inside = 0


def _mark():
    if os.environ.get("MEET_MARK"):
        with open(os.environ["MEET_MARK"], "w") as f:
            f.write(str(_inside))


def app(environ, start_response):
    """/meet?N or /meet?N,SEC: stay until N requests are inside together
    (or SEC, default 10, pass), then answer how many were; the count inside
    goes to the file $MEET_MARK as it changes. /pid: the worker; else pong."""
    global _inside
    path = environ["PATH_INFO"]
    if path == "/meet":
        want, _, wait = environ["QUERY_STRING"].partition(",")
        with _lock:
            _inside += 1
            _mark()
            _lock.notify_all()
            _lock.wait_for(lambda: _inside >= int(want), timeout=float(wait or 10))
            seen = _inside
        time.sleep(0.05)  # the others see the same count before anyone leaves
        with _lock:
            _inside -= 1
            _mark()
        body = f"{seen} {threading.get_ident()}"
    elif path == "/pid":
        body = str(os.getpid())
    else:
        body = "pong"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
