"""prefork.reload: --reload, for development: worker 0 watches the code's files, and a change reloads the pool as HUP does."""
import os
import signal
import sys
import threading
import time

from . import _prefork

INTERVAL = 1.0  # seconds between two looks at the files


def _files(extra):
    """The files of every module imported so far, and the extra ones."""
    files = set(extra)
    for module in list(sys.modules.values()):
        f = getattr(module, "__file__", None)
        if isinstance(f, str):
            files.add(f)
    return files


def _mtimes(files):
    out = {}
    for f in files:
        try:
            out[f] = os.stat(f).st_mtime_ns
        except OSError:
            out[f] = None  # gone: coming back is a change
    return out


def _watch(extra, interval):
    seen = _mtimes(_files(extra))
    _prefork.log("info", f"--reload: watching {len(seen)} files")
    while True:
        time.sleep(interval)
        now = _mtimes(_files(extra))
        changed = sorted(f for f, t in now.items() if f in seen and seen[f] != t)
        seen = now
        if changed:
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            _prefork.log("info", f"--reload: {changed[0]}{more} changed; reloading")
            os.kill(os.getppid(), signal.SIGHUP)


def start(extra=(), interval=INTERVAL):
    """Watch from a thread of this worker: the master is its parent. A file
    that changes sends the master HUP: a new generation imports the code
    afresh while the old one finishes its requests; a new generation that
    fails to import leaves the old one serving, watching still."""
    t = threading.Thread(target=_watch, args=(tuple(extra), interval),
                         name="prefork-reload", daemon=True)
    t.start()
