"""Summarize a py-spy profile (`py-spy record --format raw`): where the time goes (issue 7).

    python bench/profile_summary.py PROFILE.txt [--top 25]

The raw format is one collapsed stack per line, `frame;frame;...;frame COUNT`, each frame
`function (path:line)`. Printed: the share of samples by the package of the innermost frame
(self time), the functions with the largest inclusive share, and the largest self shares.
Samples of idle workers (waiting in accept/select) are dropped when py-spy ran with --idle.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
IDLE = ("select (", "accept (", "wait (gunicorn", "sleep (gunicorn", "run_for_one", "epoll")

PACKAGES = [
    ("app/", "app (this service)"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("psycopg", "psycopg (driver, waiting for PostgreSQL)"),
    ("marshmallow/", "marshmallow"),
    ("webargs/", "webargs"),
    ("flask_smorest/", "flask-smorest"),
    ("flask/", "Flask"),
    ("werkzeug/", "Werkzeug"),
    ("gunicorn/", "gunicorn"),
    ("pythonjsonlogger/", "logging"),
    ("logging/", "logging"),
    ("simplejson/", "JSON"),
    ("json/", "JSON"),
    ("limits/", "rate limiter (limits)"),
    ("threading.py", "threads (limits' expiry timer)"),
    ("prometheus_client/", "Prometheus client"),
    ("decimal", "decimal"),
    ("babel/", "babel"),
]


def package(path: str) -> str:
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
        if match:
            frames.append((match["func"], match["path"]))
        else:
            frames.append((raw.strip(), ""))
    return frames, int(count)


def short(func: str, path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{func} ({path})"


def main(path: Path, top: int) -> None:
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        parsed = parse(line)
        if parsed is None:
            continue
        frames, count = parsed
        if not frames or any(marker in short(*frames[-1]) for marker in IDLE):
            continue
        total += count
        leaf_func, leaf_path = frames[-1]
        by_package[package(leaf_path)] += count
        self_time[short(leaf_func, leaf_path)] += count
        for name in {short(f, p) for f, p in frames if p}:
            inclusive[name] += count
    if not total:
        raise SystemExit(f"{path}: no samples")
    print(f"{total} samples\n\nself time by package (innermost frame):")
    for name, count in by_package.most_common():
        print(f"  {100 * count / total:5.1f} %  {name}")
    print(f"\ninclusive time, top {top}:")
    for name, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f} %  {name}")
    print(f"\nself time, top {top}:")
    for name, count in self_time.most_common(top):
        print(f"  {100 * count / total:5.1f} %  {name}")


if __name__ == "__main__":
    args = sys.argv[1:]
    n = int(args[args.index("--top") + 1]) if "--top" in args else 25
    main(Path(args[0]), n)
