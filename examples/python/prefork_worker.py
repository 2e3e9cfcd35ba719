"""prefork_worker.py — what a Python program needs to run under `prefork run`: its socket and sd_notify.

Standard library only. `listen_socket()` takes the listening socket that
prefork (or systemd) passed as descriptor 3 (LISTEN_FDS protocol), and
`notify("READY=1")` tells the master the worker can serve (sd_notify
protocol, through NOTIFY_SOCKET); without NOTIFY_SOCKET it does nothing, so
the program also runs under systemd or alone.
"""
import os
import socket

LISTEN_FDS_START = 3


def listen_socket():
    """The first inherited listening socket, or SystemExit with a clear message."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        raise SystemExit(f"{os.path.basename(__file__)}: no inherited socket: "
                         "run me under `prefork run -- python3 ...` (or systemd socket activation)")
    return socket.socket(fileno=LISTEN_FDS_START)


def notify(message):
    """Send one sd_notify message (READY=1, WATCHDOG=1, STATUS=...); no-op without NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), address)


def worker_name():
    """'worker 2, generation 1', from PREFORK_WORKER and PREFORK_GENERATION."""
    return (f"worker {os.environ.get('PREFORK_WORKER', '?')}, "
            f"generation {os.environ.get('PREFORK_GENERATION', '?')}")
