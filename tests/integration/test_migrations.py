"""Migrations are reviewed code: one head, in step with the models, keys led by business."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, make_url, text
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.pool import NullPool

from app.adapters.schema import metadata
from app.cli import alembic_config, upgrade

BUSINESS = "business_code"


def heads(url: str) -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def tables_and_version(url: str) -> tuple[set[str], str | None]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return set(inspect(engine).get_table_names()), version
    finally:
        engine.dispose()


@pytest.fixture
def inspector(engine: Engine) -> Inspector:
    return inspect(engine)


@pytest.fixture
def empty_postgres_url(database_url: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"accounting_fresh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_migrations_have_exactly_one_head(database_url: str) -> None:
    assert len(heads(database_url)) == 1


def test_the_models_match_the_migrations(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_the_migrations_build_an_empty_postgresql_database(empty_postgres_url: str) -> None:
    upgrade(empty_postgres_url)
    tables, version = tables_and_version(empty_postgres_url)
    assert tables == {*metadata.tables, "alembic_version"}
    assert [version] == heads(empty_postgres_url)


def test_the_migrations_build_an_empty_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'accounting.db'}"
    upgrade(url)
    tables, version = tables_and_version(url)
    assert tables == {*metadata.tables, "alembic_version"}
    assert [version] == heads(url)


# --- every key starts with business_code (SPEC section 10) ------------------------------


def business_tables(inspector: Inspector) -> list[str]:
    return [name for name in inspector.get_table_names() if name != "alembic_version"]


def test_the_migrated_database_holds_every_business_table(inspector: Inspector) -> None:
    assert set(business_tables(inspector)) == set(metadata.tables)


def test_every_primary_key_starts_with_business_code(inspector: Inspector) -> None:
    wrong = {
        table: key["constrained_columns"]
        for table in business_tables(inspector)
        if (key := inspector.get_pk_constraint(table))["constrained_columns"][:1] != [BUSINESS]
    }
    assert wrong == {}


def test_every_unique_constraint_and_unique_index_starts_with_business_code(
    inspector: Inspector,
) -> None:
    wrong = {}
    for table in business_tables(inspector):
        uniques = [
            *inspector.get_unique_constraints(table),
            *(i for i in inspector.get_indexes(table) if i["unique"]),
        ]
        for unique in uniques:
            if unique["column_names"][:1] != [BUSINESS]:
                wrong[f"{table}.{unique['name']}"] = unique["column_names"]
    assert wrong == {}


def test_the_schema_has_unique_keys_to_check(inspector: Inspector) -> None:
    unique_indexes = [
        i["name"]
        for t in business_tables(inspector)
        for i in inspector.get_indexes(t)
        if i["unique"]
    ]
    assert "uq_credit_notes_version" in unique_indexes


def test_every_foreign_key_starts_with_business_code_on_both_sides(inspector: Inspector) -> None:
    wrong = {}
    keys = 0
    for table in business_tables(inspector):
        for key in inspector.get_foreign_keys(table):
            keys += 1
            if key["constrained_columns"][:1] != [BUSINESS] or key["referred_columns"][:1] != [
                BUSINESS
            ]:
                wrong[f"{table}.{key['name']}"] = (
                    key["constrained_columns"],
                    key["referred_columns"],
                )
    assert wrong == {}
    assert keys > 0
