"""Gunicorn settings, read by `gunicorn -c gunicorn.conf.py`."""

import os
from typing import Any


def _default_workers() -> int:
    # Honour CPU affinity (containers, taskset) where the platform exposes it.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(2 * (cores or 1) + 1, 8)


wsgi_app = "app.wsgi:app"
bind = os.environ.get("ACCOUNTING_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("ACCOUNTING_WORKERS") or _default_workers())
# Threads: a request waiting on a busy order (at most the 2 s lock budget, app/adapters/db.py)
# holds one thread, not its whole worker, so reads of other businesses and /health/live are
# served meanwhile. A worker whose threads are all busy accepts no more connections (as many
# as threads), so the others take them instead of queueing them behind a lock wait. Each
# thread holds at most one pooled connection (the pool has as many, app/adapters/db.py).
worker_class = "app.server.ProblemWorker"  # gunicorn's gthread, refusals as problem+json
threads = int(os.environ.get("ACCOUNTING_THREADS") or 8)
worker_connections = threads
timeout = 30
graceful_timeout = 20
accesslog = None  # the app writes its own JSON request log
max_requests = 10000
max_requests_jitter = 500
preload_app = False
# gunicorn's control socket lives in $HOME and would be shared by every instance on a host.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """A line per worker once its app is built and it takes requests: how long a worker
    (re)start took shows in the log."""
    worker.log.info("Worker ready (pid: %s)", worker.pid)
