"""Alembic environment: the project's metadata, the URL from the caller or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from app.adapters.schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    from app.config import default_database_url

    return config.get_main_option("sqlalchemy.url") or os.environ.get(
        "DATABASE_URL", default_database_url()
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as fresh:
        _run(fresh)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":  # type: ignore[attr-defined]
            # A migration waiting on a busy table must fail fast, not block every request.
            context.execute("SET LOCAL lock_timeout = '5s'")
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
