"""The two halves of bench/instructions.sh (see there).

    python bench/instructions.py load N      # orders to correct, with documents from before
    python bench/instructions.py measure N   # under callgrind: 20 PUTs, then N counted

`measure` turns callgrind's instrumentation on just for the N PUTs (callgrind_control), so
the count is theirs alone: building the app and the requests, the warm-up and the exit are
not in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

WARMUP = 20


def load(count: int) -> None:
    # Documents from before (see bench/run), then the orders to correct.
    sets = {"H": (2000, workload.CORRECTED), "P": (count + WARMUP, workload.PAID)}
    workload.load(os.environ["DATABASE_URL"], sets, bare=1, hot_positions=1)


def measure(count: int) -> None:
    put = workload.in_process_client(os.environ["DATABASE_URL"], "instructions")
    requests = [workload.correction_request(n) for n in range(1, count + WARMUP + 1)]
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
