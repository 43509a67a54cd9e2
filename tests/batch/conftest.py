"""Batch tax corrections as separate processes on PostgreSQL: killed runs, several workers.

Only PostgreSQL has the row locks (and SKIP LOCKED) that several processes rely on, so this
tier fails rather than skips on SQLite.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.adapters.db import make_session_factory
from tests.batch.processes import WAIT


@pytest.fixture(autouse=True)
def _on_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.fail(
            "the batch tier needs PostgreSQL: run it through scripts/test.sh, or "
            "`source scripts/pg.sh && pg_start` and set ACCOUNTING_TEST_DATABASE_URL=$PG_URL",
            pytrace=False,
        )


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started processes; any left are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=WAIT)
