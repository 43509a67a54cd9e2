"""Every expected mistake at the command line is one line on standard error and exit status 2.

No traceback, nothing on standard output, and never a key or its hash. Most cases run the
command in-process (click's runner); a few run it as its own process, as an operator would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from app.cli import UPGRADE, main
from app.config import BadSetting, normalized_database_url

ROOT = Path(__file__).resolve().parents[2]
CUT = [
    *("--country", "DE", "--from", "2020-07-01", "--to", "2020-12-31", "--vat-type", "NORMAL"),
    *("--from-rate", "19", "--to-rate", "16", "--mode", "keep-gross"),
]
# Commands that need the schema, each as it would be typed.
NEEDING_THE_SCHEMA = {
    "keys create": ["keys", "create", "--business", "1000", "--role", "merchant"],
    "keys revoke": ["keys", "revoke", "aas_12345678"],
    "verify": ["verify"],
    "tax-correction": ["tax-correction", "--business", "1000", *CUT],
    "worker": ["worker", "--once"],
    "idempotency purge": ["idempotency", "purge"],
}


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": url})


def refusal(result: Result) -> str:
    """The one line of a refusal: exit 2, nothing else printed, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert result.stdout == ""
    return lines[0]


def run_process(url: str, *args: str, cwd: Path, pythonpath: Path = ROOT) -> str:
    """The command as its own process; returns its one line after the same checks."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(pythonpath)}
    done = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def unmigrated_url(database_url: str) -> Iterator[str]:
    """A database that exists but was never migrated."""
    name = f"accounting_unmigrated_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="module")
def refused_url(database_url: str) -> str:
    """The test server's URL on a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = make_url(database_url).set(host="127.0.0.1", port=port, password="secret-pw")
    return url.render_as_string(hide_password=False)


# --- the database is not there, or not ready ---------------------------------------------


@pytest.mark.parametrize("command", NEEDING_THE_SCHEMA)
def test_an_unmigrated_database_is_told_to_be_upgraded(unmigrated_url: str, command: str) -> None:
    result = run(unmigrated_url, *NEEDING_THE_SCHEMA[command])
    line = refusal(result)

    assert "aas_" not in result.output.replace("aas_12345678", "")  # no key was made
    assert line.startswith("Error: the database has no schema yet (relation ")
    assert line.endswith(f"does not exist): {UPGRADE}")


@pytest.mark.parametrize("command", [*NEEDING_THE_SCHEMA, "db upgrade"])
def test_a_refused_connection_names_the_database_without_its_password(
    refused_url: str, command: str
) -> None:
    args = NEEDING_THE_SCHEMA.get(command, command.split())

    result = run(refused_url, *args)
    line = refusal(result)

    assert "aas_" not in result.output.replace("aas_12345678", "")
    shown = make_url(refused_url).render_as_string(hide_password=True)
    assert line.startswith(f"Error: cannot use the database at {shown}: connection failed")
    assert "Connection refused" in line
    assert "secret-pw" not in line


def test_an_unknown_database_is_named(database_url: str) -> None:
    url = make_url(database_url).set(database="no_such_database")

    line = refusal(run(url.render_as_string(hide_password=False), "verify"))

    assert 'database "no_such_database" does not exist' in line


def test_a_refused_connection_is_one_line_from_a_process_too(refused_url: str) -> None:
    line = run_process(refused_url, "verify", cwd=ROOT)

    assert line.startswith("Error: cannot use the database at ")


def test_an_unmigrated_database_is_one_line_from_a_process_too(
    unmigrated_url: str, tmp_path: Path
) -> None:
    line = run_process(unmigrated_url, "worker", "--once", cwd=tmp_path)

    assert "run `accounting db upgrade`" in line


def test_migrations_not_found_from_the_working_directory_is_one_line(
    tmp_path: Path, database_url: str
) -> None:
    """The package installed without its migrations, run away from the project's folder."""
    installed = tmp_path / "site"
    shutil.copytree(ROOT / "app", installed / "app", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    line = run_process(database_url, "db", "upgrade", cwd=elsewhere, pythonpath=installed)

    assert line == (
        f"Error: no migrations in {elsewhere / 'migrations'}: run this from the project's "
        "directory (the one holding migrations/)"
    )


# --- DATABASE_URL -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://u:secret-pw@h:abc/db", "DATABASE_URL is not a database URL"),
        ("not a url", "DATABASE_URL is not a database URL"),
        ("postgresql+psycopg://u:secret-pw@h:99999/db", "port 99999 is not between 1 and 65535"),
        ("postgresql+psycopg://u:secret-pw@h:0/db", "port 0 is not between 1 and 65535"),
        ("mysql://u:secret-pw@h/db", "unsupported database or driver 'mysql'"),
        ("postgresql+psycopg2://u:secret-pw@h/db", "driver 'postgresql+psycopg2'"),
    ],
)
def test_a_database_url_that_cannot_work_is_refused(url: str, message: str) -> None:
    line = refusal(run(url, "verify"))

    assert message in line
    assert "secret-pw" not in line


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_heroku_and_libpq_urls_are_taken_as_psycopg(
    scheme: str, database_url: str, engine: Engine
) -> None:
    url = database_url.replace("postgresql+psycopg://", f"{scheme}://")
    assert url.startswith(f"{scheme}://")

    result = run(url, "verify")

    assert result.exit_code == 0, result.output
    assert normalized_database_url(url) == database_url


def test_a_url_normalization_keeps_everything_but_the_driver() -> None:
    url = "postgres://user:p%40ss@db.example:6432/accounting?sslmode=require"

    assert normalized_database_url(url) == (
        "postgresql+psycopg://user:p%40ss@db.example:6432/accounting?sslmode=require"
    )
    assert normalized_database_url("sqlite:///var/accounting.db") == "sqlite:///var/accounting.db"
    with pytest.raises(BadSetting):
        normalized_database_url("postgresql+asyncpg://u@h/db")


# --- refusals of the commands themselves ---------------------------------------------------


def test_roles_are_refused_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'accounting.db'}"

    line = refusal(run(url, "db", "grant", "--role", "accounting_service"))

    assert line == "Error: database roles are PostgreSQL's: DATABASE_URL names a SQLite file"


def test_revoking_an_unknown_prefix_is_refused_without_repeating_a_pasted_key(
    database_url: str, engine: Engine
) -> None:
    pasted = "aas_" + "k" * 43

    line = refusal(run(database_url, "keys", "revoke", pasted))

    assert line == "Error: no live key starts with aas_kkkkkkkk (give a key's first 12 characters)"
    assert pasted not in line


def test_revoking_with_a_whole_key_never_prints_the_key_or_its_hash(
    database_url: str, engine: Engine
) -> None:
    created = run(database_url, "keys", "create", "--business", "1000", "--role", "merchant")
    key = created.stdout.splitlines()[-1]

    revoked = run(database_url, "keys", "revoke", key)
    again = run(database_url, "keys", "revoke", key)

    assert revoked.exit_code == 0, revoked.output
    assert revoked.stderr == f"revoked {key[:12]} for 1 business(es)\n"
    assert (
        refusal(again)
        == f"Error: no live key starts with {key[:12]} (give a key's first 12 characters)"
    )
    digest = hashlib.sha256(key.encode()).hexdigest()
    for output in (revoked.output, again.output):
        assert key not in output and digest not in output


def test_a_tax_correction_for_an_unknown_business_is_refused(
    database_url: str, engine: Engine
) -> None:
    line = refusal(run(database_url, "tax-correction", "--business", "9999", *CUT))

    assert line == "Error: --business: no order and no key for 9999"


def test_a_tax_correction_for_an_unknown_country_is_refused(
    database_url: str, engine: Engine
) -> None:
    created = run(database_url, "keys", "create", "--business", "1000", "--role", "staff")
    assert created.exit_code == 0
    args = ["tax-correction", "--business", "1000", *CUT]
    args[args.index("DE")] = "XX"

    line = refusal(run(database_url, *args))

    assert line == "Error: --country: XX is no ISO 3166 country"


def test_a_tax_correction_for_a_known_business_still_runs(
    database_url: str, engine: Engine
) -> None:
    created = run(database_url, "keys", "create", "--business", "1000", "--role", "staff")
    assert created.exit_code == 0

    result = run(database_url, "tax-correction", "--business", "1000", *CUT)

    assert result.exit_code == 0, result.output
    assert "0 selected" in result.stderr


def test_a_refused_tax_change_names_the_option_on_one_line(
    database_url: str, engine: Engine
) -> None:
    args = ["tax-correction", "--business", "1000", *CUT]
    args[args.index("keep-gross")] = "keep-net"
    rates = args.index("--from-rate")
    args[rates + 1], args[rates + 3] = "16", "19"

    line = refusal(run(database_url, *args))

    assert line.startswith("Error: --to-rate: keep-net would raise gross prices")


def test_the_service_role_without_grants_is_told_so(database_url: str, engine: Engine) -> None:
    role = f"acc_nobody_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    try:
        url = make_url(database_url).set(username=role).render_as_string(hide_password=False)
        line = refusal(run(url, "verify"))
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"REVOKE USAGE ON SCHEMA public FROM {role}"))
            connection.execute(text(f"DROP ROLE {role}"))

    assert line.startswith("Error: permission denied for table ")
    assert line.endswith("lacks this privilege (docs/operations.md, Database roles)")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ACCOUNTING_SELLERS", "absent.toml", "ACCOUNTING_SELLERS: cannot read absent.toml"),
        ("ACCOUNTING_DOCUMENT_TEMPLATES", "no-such-dir", "holds no document.html"),
    ],
)
def test_serve_refuses_document_settings_that_cannot_work_before_any_worker_starts(
    database_url: str, variable: str, value: str, message: str
) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--port", "1"], env={"DATABASE_URL": database_url, variable: value}
    )

    assert message in refusal(result)
