"""Shared fixtures: one migrated database per run, emptied after every test.

ACCOUNTING_TEST_DATABASE_URL names the database: a PostgreSQL URL (the test command starts
its own server) or "sqlite" for a temporary file. Unset means "sqlite".
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from app.adapters.db import make_engine
from app.adapters.schema import metadata
from app.cli import upgrade


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("ACCOUNTING_TEST_DATABASE_URL", "sqlite")
    if url == "sqlite":
        return f"sqlite:///{tmp_root / 'accounting.db'}"
    return url


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="accounting-test-") as tmp:
        url = _database_url(Path(tmp))
        if url.startswith("postgresql"):
            _reset_postgres(url)
        upgrade(url)
        yield url


def _reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touches the database starts and ends with empty tables."""
    yield
    if "engine" not in request.fixturenames:
        return
    engine: Engine = request.getfixturevalue("engine")
    names = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(names)}"))
        else:
            for name in names:
                connection.execute(text(f"DELETE FROM {name}"))
