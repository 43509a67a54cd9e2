"""Integration: migrations, keys and repositories against a real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.adapters.db import make_session_factory


@pytest.fixture(autouse=True)
def _on_postgresql(database_url: str) -> None:
    # Row locks, CREATE DATABASE and the production schema only exist there; running this
    # tier on SQLite would prove nothing, so it fails rather than skips.
    if not database_url.startswith("postgresql"):
        pytest.fail(
            "the integration tier needs PostgreSQL: run it through scripts/test.sh, or "
            "`source scripts/pg.sh && pg_start` and set ACCOUNTING_TEST_DATABASE_URL=$PG_URL",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
