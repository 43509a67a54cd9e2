"""The service's commands as real processes: started each leading its own process group, so
a test can SIGKILL one with every child it forked (the `processes` fixture of conftest.py
kills any left running at the end)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ACCOUNTING = str(Path(sys.executable).parent / "accounting")
WAIT = 120.0  # seconds any process may take before the test fails instead of hanging


def start(
    started: list[subprocess.Popen[bytes]], database_url: str, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    """`accounting *args` on the test database, its output in `log`."""
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [ACCOUNTING, *args],
            env={**os.environ, "DATABASE_URL": database_url},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started.append(process)
    return process
