"""Where a correction PUT spends its time: pyinstrument over the Flask app (issue 7).

    DATABASE_URL=postgresql+psycopg://... python bench/profile_put.py [N] [--html OUT.html]

Loads N orders (default 300) like bench/run's PUT set into an empty, migrated database, builds
the app as production does (JSON request log at INFO to a file, Prometheus, the rate limiter)
and sends each order its correction PUT through Flask's test client, one after another, under
pyinstrument (pip install pyinstrument). Prints the profile (and writes HTML with --html), the
mean wall time per PUT, and empties the tables again. The test client skips the socket and
gunicorn; everything from the WSGI call down is the service's own code.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from pyinstrument import Profiler
from sqlalchemy import text

from app.adapters import schema
from app.adapters.db import make_engine


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv and argv[0].isdigit() else 300
    html = argv[argv.index("--html") + 1] if "--html" in argv else None
    url = os.environ["DATABASE_URL"]
    # Documents from before (see bench/run), then the orders to correct.
    sets = {"H": (2000, workload.CORRECTED), "P": (count + 20, workload.PAID)}
    workload.load(url, sets, bare=1, hot_positions=1)
    put_request = workload.in_process_client(url, "profile")

    def put(n: int) -> None:
        put_request(*workload.correction_request(n))

    for n in range(count + 1, count + 21):  # warm-up, not profiled
        put(n)
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for n in range(1, count + 1):
        put(n)
    profiler.stop()
    elapsed = time.perf_counter() - started
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"{count} PUTs in {elapsed:.2f} s: {elapsed / count * 1000:.2f} ms each (profiled)")
    if html:
        Path(html).write_text(profiler.output_html())
    with make_engine(url).begin() as connection:
        tables = ", ".join(t.name for t in schema.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables}, bench_rows, bench_events"))


if __name__ == "__main__":
    main(sys.argv[1:])
