"""The two halves of bench/instructions.sh (see there).

    python bench/instructions.py load N      # orders to correct, with documents from before
    python bench/instructions.py measure N   # under callgrind: 20 PUTs, then N counted

`measure` turns callgrind's instrumentation on just for the N PUTs (callgrind_control), so
the count is theirs alone: building the app, the warm-up and the exit are not in it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

from app import create_app, jsoncodec
from app.adapters.keys import create_key

WARMUP = 20


def load(count: int) -> None:
    url = os.environ["DATABASE_URL"]
    # Documents from before (see bench/run), then the orders to correct.
    workload.load(
        url,
        {"H": (2000, workload.CORRECTED), "P": (count + WARMUP, workload.PAID)},
        bare=1,
        hot_positions=1,
    )


def measure(count: int) -> None:
    # As production builds it: JSON request log at INFO, Prometheus, the rate limiter.
    app = create_app(
        {"DATABASE_URL": os.environ["DATABASE_URL"], "RATE_LIMIT_PER_MINUTE": 100_000_000}
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    with app.extensions["accounting"].session_factory() as session, session.begin():
        key = create_key(session, [workload.BUSINESS], "merchant", "instructions")
    client = app.test_client()
    headers = {"X-Subscription-Key": key, "Content-Type": "application/json"}
    requests = []
    for n in range(1, count + WARMUP + 1):
        ref = f"P{n:07d}"
        body = jsoncodec.dumps(workload.correction_body(ref))
        requests.append((f"{workload.ORDERS}/{ref}/invoices/INV-{ref}", body))

    def put(path: str, body: str) -> None:
        response = client.put(path, data=body, headers=headers)
        assert response.status_code == 200, response.data[:300]

    for path, body in requests[count:]:
        put(path, body)
    instrument("on")
    for path, body in requests[:count]:
        put(path, body)
    instrument("off")


def instrument(state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True,
                   capture_output=True)  # fmt: skip


if __name__ == "__main__":
    {"load": load, "measure": measure}[sys.argv[1]](int(sys.argv[2]))
