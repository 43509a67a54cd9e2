"""Where the schema stands: the migrations' heads against the database's revision."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Table, literal_column, select, text
from sqlalchemy.exc import DBAPIError


def location() -> Path:
    """The project's migrations folder: beside the package, else in the working directory
    (the image copies it to /srv/migrations)."""
    beside = Path(__file__).resolve().parents[2] / "migrations"
    return beside if beside.is_dir() else Path.cwd() / "migrations"


def heads() -> frozenset[str]:
    """The revisions a migrated database is at; empty when the scripts are not found."""
    folder = location()
    if not (folder / "env.py").is_file():
        return frozenset()
    return frozenset(ScriptDirectory(str(folder)).get_heads())


def current(connection: Connection) -> frozenset[str]:
    """The database's revisions; empty for a database never migrated."""
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return frozenset(rows)
    except DBAPIError as error:
        if "alembic_version" in str(error.orig):  # no such table: never migrated
            return frozenset()
        raise


def read_nothing_from(connection: Connection, *tables: Table) -> None:
    """Fails (no such table) on a database these tables were never migrated into."""
    for table in tables:
        connection.execute(select(literal_column("1")).select_from(table).limit(0))
