"""sigapp.py — an application that installs Python signal handlers when imported, as some frameworks do."""
import os
import signal


def _handler(signum, frame):
    raise SystemExit(f"the app's handler ran for signal {signum}")


for _sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1):
    signal.signal(_sig, _handler)


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
