# prefork_conf.py — a configuration file for python3 -m prefork: settings by their long option
# names (dashes as underscores) and hooks. From the repository's root:
#     PYTHONPATH=build/python python3 -m prefork -c examples/python/prefork_conf.py
# The command line wins over the file (-w 2 here would give 2 workers).
import multiprocessing

wsgi_app = "flask_app:app"
chdir = "examples/python"          # relative to where the command starts
bind = ["127.0.0.1:8000"]
workers = multiprocessing.cpu_count()
max_requests = 10000               # replace a worker now and then: a leak stays small
max_requests_jitter = 1000
timeout = 30                       # a request stuck in Python: its stack logged, the worker replaced
access_log = "-"
capture_output = True              # what the application prints: error-log lines naming the worker


def post_fork(worker):
    # In each worker before the application is imported: what must not be shared between
    # processes (a database pool, a random seed, a client socket) is made here or after.
    print(f"worker {worker.index} of generation {worker.generation} (pid {worker.pid})")


def worker_exit(worker):
    print(f"worker {worker.index} (pid {worker.pid}) leaves")


# The master's hooks: short, they run between two of its events.
def when_ready():
    print("every worker is ready", flush=True)


def child_exit(worker):
    # After any worker's exit (a stop, a reload, a crash): e.g. with prometheus_client's
    # multiprocess mode, multiprocess.mark_process_dead(worker.pid).
    if worker.exitcode != 0:
        print(f"worker {worker.index} (pid {worker.pid}) exited with {worker.exitcode}",
              flush=True)
