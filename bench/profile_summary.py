"""Summarize a py-spy profile (`py-spy record --format raw --idle`) of the service (issue 7).

    python bench/profile_summary.py PROFILE.txt [--top 25]

The raw format is one collapsed stack per line, `frame;frame;...;frame COUNT`, each frame
`function (path:line)`. Only samples taken while a worker was serving a request count (a frame
`SyncWorker.handle_request` on the stack): idle workers, the master and background threads
(the rate limiter's expiry timer) are left out. With --idle, time spent waiting for PostgreSQL
is in the samples too, so the shares are shares of a request's wall time in the worker.

Printed: the request's time by phase (the innermost phase frame on the stack wins, so a flush
triggered inside the journal insert counts as "store"), by package of the innermost frame, and
the functions with the largest inclusive share.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
IN_REQUEST = ("handle_request", "gunicorn/workers/")

# (function, path fragment, phase), checked from the innermost frame outwards.
PHASES = [
    ("require_business", "app/api/auth.py", "authentication (API key lookup)"),
    ("_limit", "app/api/ratelimit.py", "rate limiter"),
    ("lock", "app/adapters/repository.py", "BEGIN, lock + load the order (one message)"),
    ("get_for_invoice", "app/adapters/repository.py", "load the order (read)"),
    ("get", "app/adapters/repository.py", "load the order (read)"),
    ("goodwill_reference_taken", "app/adapters/repository.py", "credit-note reference check"),
    ("invoice_owner", "app/adapters/repository.py", "invoice reference check"),
    ("_store", "app/service/orders.py", "store: the write's rows, held for the COMMIT"),
    ("commit", "app/service/unit_of_work.py", "commit: the write's rows and COMMIT (one message)"),
    ("correct_invoice", "app/domain/model.py", "domain (Order.correct_invoice)"),
    ("create_invoice", "app/domain/model.py", "domain (Order.create_invoice)"),
    ("present", "app/api/views.py", "present: response schema dump"),
    ("item_specs", "app/service/commands.py", "body to domain specs"),
    ("_raw_load_json", "app/api/jsonio.py", "request JSON parse"),
    ("parse", "webargs/core.py", "request schema load (webargs, marshmallow)"),
    ("_finish", "app/factory.py", "after request: JSON log line"),
    ("_record", "app/api/ops.py", "after request: Prometheus metrics"),
    ("answer", "app/api/views.py", "response body"),
    ("wsgi_app", "flask/app.py", "Flask, flask-smorest, Werkzeug (the rest)"),
]
PACKAGES = [
    ("sqlalchemy/", "SQLAlchemy"),
    ("psycopg", "psycopg (incl. waiting for PostgreSQL)"),
    ("marshmallow/", "marshmallow"),
    ("webargs/", "webargs"),
    ("flask_smorest/", "flask-smorest"),
    ("flask/", "Flask"),
    ("werkzeug/", "Werkzeug"),
    ("gunicorn/", "gunicorn (HTTP, socket)"),
    ("pythonjsonlogger/", "logging"),
    ("logging/", "logging"),
    ("simplejson/", "JSON"),
    ("json/", "JSON"),
    ("limits/", "rate limiter (limits)"),
    ("threading.py", "threads (the rate limiter's expiry timer)"),
    ("prometheus_client/", "Prometheus client"),
    ("babel/", "babel"),
]


def package(path: str) -> str:
    if _ours(path):
        return "app (this service)"
    for marker, name in PACKAGES:
        if marker in path:
            return name
    return "other (stdlib, interpreter)"


def parse(line: str) -> tuple[list[tuple[str, str]], int] | None:
    stack, _, count = line.rstrip().rpartition(" ")
    if not stack or not count.isdigit():
        return None
    frames = []
    for raw in stack.split(";"):
        match = FRAME.match(raw.strip())
        frames.append((match["func"], match["path"]) if match else (raw.strip(), ""))
    return frames, int(count)


def short(func: str, path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{func} ({path})"


def _ours(path: str) -> bool:
    """A frame of this service's code (py-spy names it app/...; gunicorn/app/... is not)."""
    return path.startswith("app/") or "/work/main/app/" in path


def phase(frames: list[tuple[str, str]]) -> str:
    for func, path in reversed(frames):
        name = func.rsplit(".", 1)[-1]
        for wanted, fragment, label in PHASES:
            if name == wanted and fragment in path:
                return label
    return "gunicorn: read request, write response"


def main(path: Path, top: int) -> None:
    by_phase: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        parsed = parse(line)
        if parsed is None:
            continue
        frames, count = parsed
        if not any(IN_REQUEST[0] in f and IN_REQUEST[1] in p for f, p in frames):
            continue
        total += count
        by_phase[phase(frames)] += count
        by_package[package(frames[-1][1])] += count
        for name in {short(f, p) for f, p in frames if _ours(p)}:
            inclusive[name] += count
    if not total:
        raise SystemExit(f"{path}: no samples of a worker serving a request")
    print(f"{total} samples of workers serving a request (wall time, waiting included)")
    print("\nby phase:")
    for name, count in by_phase.most_common():
        print(f"  {100 * count / total:5.1f} %  {name}")
    print("\nby package of the innermost frame:")
    for name, count in by_package.most_common():
        print(f"  {100 * count / total:5.1f} %  {name}")
    print(f"\nthe service's own functions, inclusive, top {top}:")
    for name, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f} %  {name}")


if __name__ == "__main__":
    args = sys.argv[1:]
    n = int(args[args.index("--top") + 1]) if "--top" in args else 20
    main(Path(args[0]), n)
