"""The `accounting` command: database, keys, serving and checks (SPEC section 12).

Every expected mistake (a bad DATABASE_URL, a database that refuses the connection or has no
schema yet, a missing privilege, a refused business rule) is one line on standard error and
exit status 2; docs/operations.md lists them. Nothing the commands print carries a key or its
hash.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.adapters import idempotency as idempotency_store
from app.adapters import keys as api_keys
from app.adapters import migrations
from app.adapters.db import command_engine, make_session_factory
from app.adapters.roles import SERVICE, RoleRefused, grant_service_role
from app.api.openapi_cli import openapi
from app.batch_cli import tax_correction, worker
from app.config import (
    IDEMPOTENCY_RETENTION,
    POSTGRESQL,
    BadSetting,
    database_url,
    document_templates,
    flag,
    idempotency_retention,
    sellers,
)
from app.domain.errors import DomainError
from app.refunds_cli import Refused, refunds
from app.relay_cli import relay
from app.service.verify import verify as run_verify

# SQLSTATEs of a schema older than the code: a table, or a column, it does not have yet.
NO_TABLE, NO_COLUMN = "42P01", "42703"
NO_PRIVILEGE = "42501"
ROLES_DOC = "docs/operations.md, Database roles"
UPGRADE = "run `accounting db upgrade` (and `accounting db grant` for the service's role)"


class MigrationsNotFound(Exception):
    """Neither the package's folder nor the working directory holds the migrations."""


def alembic_config(url: str) -> Config:
    """Alembic pointed at the project's migrations and the given database."""
    location = migrations.location()
    if not (location / "env.py").is_file():
        raise MigrationsNotFound(
            f"no migrations in {location}: run this from the project's directory (the one "
            "holding migrations/)"
        )
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Apply every migration to the database at url."""
    cfg = alembic_config(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(cfg, "head")


def _first_line(error: BaseException | None) -> str:
    lines = str(error or "").strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def _database_problem(error: DBAPIError) -> str | None:
    """One line for a database failure a command can expect; None for anything else.

    Only the driver's own message is used, never SQLAlchemy's rendering of the statement and
    its parameters (a key's hash is one)."""
    reason = _first_line(error.orig)
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate == NO_TABLE or reason.startswith("no such table"):
        return f"the database has no schema yet ({reason}): {UPGRADE}"
    if sqlstate == NO_COLUMN or reason.startswith("no such column"):
        return f"the database schema is older than this version ({reason}): {UPGRADE}"
    if sqlstate == NO_PRIVILEGE:
        return f"{reason}: the role in DATABASE_URL lacks this privilege ({ROLES_DOC})"
    if isinstance(error, OperationalError | InterfaceError):
        try:
            where = make_url(database_url()).render_as_string(hide_password=True)
        except BadSetting:
            where = "DATABASE_URL"
        return f"cannot use the database at {where}: {reason}"
    return None


def refusal(error: Exception) -> str | None:
    """The one line an expected mistake is told in; None for a failure nobody expects."""
    if isinstance(error, DomainError):
        return error.detail
    if isinstance(error, BadSetting | MigrationsNotFound | RoleRefused):
        return str(error)
    if isinstance(error, CommandError):
        return f"migrations: {_first_line(error)}"
    if isinstance(error, DBAPIError):
        return _database_problem(error)
    return None


class Commands(click.Group):
    """The command group; turns every expected mistake of a command into a Refused."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            message = refusal(error)
            if message is None:
                raise
            raise Refused(message) from None


@click.group(cls=Commands)
def main() -> None:
    """Accounting-as-a-Service."""


@main.group()
def db() -> None:
    """The database schema and the service's role."""


@db.command("upgrade")
@click.option(
    "--grant-to",
    "role",
    default=None,
    help="Then give this role the service's privileges (as `db grant --role`).",
)
def db_upgrade(role: str | None) -> None:
    """Apply the migrations to DATABASE_URL (default: a SQLite file under ./var/)."""
    url = database_url()
    upgrade(url)
    click.echo("database is at the latest migration", err=True)
    if role is not None:
        _grant(url, role)


@db.command("grant")
@click.option("--role", required=True, help="The login role the service connects as.")
def db_grant(role: str) -> None:
    """Give ROLE what the service needs on every table, and nothing more (PostgreSQL).

    Run it with the owner's DATABASE_URL, after every `db upgrade`; it prints the statements
    it ran, and running it again changes nothing.
    """
    _grant(database_url(), role)


def _grant(url: str, role: str) -> None:
    if not url.startswith(f"{POSTGRESQL}://"):
        raise Refused("database roles are PostgreSQL's: DATABASE_URL names a SQLite file")
    with command_engine(url) as engine, engine.begin() as connection:
        statements = grant_service_role(connection, role)
    for statement in statements:
        click.echo(f"{statement};")
    click.echo(f"role {role} holds the service's privileges on {len(SERVICE)} tables", err=True)


@main.group()
def keys() -> None:
    """API keys (with the owner's DATABASE_URL: the service's role only reads them)."""


@keys.command("create")
@click.option("--business", "businesses", multiple=True, required=True, help="Business code.")
@click.option("--role", type=click.Choice(api_keys.ROLES), required=True)
@click.option("--name", default=None, help="What the key is for.")
def keys_create(businesses: tuple[str, ...], role: str, name: str | None) -> None:
    """Create a key; it is printed once, on the last line, and stored only as a hash."""
    with command_engine() as engine, make_session_factory(engine)() as session, session.begin():
        key = api_keys.create_key(session, list(businesses), role, name)
    click.echo(f"created a {role} key for business {', '.join(businesses)}", err=True)
    click.echo(key)


@keys.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix: str) -> None:
    """Revoke the key that starts with PREFIX (its first 12 characters)."""
    # Only the prefix is ever repeated: a whole key pasted by mistake is not printed back.
    shown = prefix[:12]
    with command_engine() as engine, make_session_factory(engine)() as session, session.begin():
        count = api_keys.revoke_key(session, prefix)
    if not count:
        raise Refused(f"no live key starts with {shown} (give a key's first 12 characters)")
    click.echo(f"revoked {shown} for {count} business(es)", err=True)


@main.group()
def idempotency() -> None:
    """Stored answers to writes sent with an Idempotency-Key."""


@idempotency.command("purge")
@click.option(
    "--older-than",
    "age",
    default=IDEMPOTENCY_RETENTION,
    show_default=True,
    help="Age of the keys to delete: a number and m, h or d (at least 24h).",
)
def idempotency_purge(age: str) -> None:
    """Delete the idempotency keys older than the given age (the contract keeps them 24 h)."""
    before = datetime.now(UTC) - idempotency_retention(age)
    with command_engine() as engine:
        purged = idempotency_store.purge(engine, before)
    click.echo(
        f"purged {purged} idempotency keys older than {age} "
        f"(stored before {before:%Y-%m-%d %H:%M:%S} UTC)",
        err=True,
    )


@main.command()
@click.option("--host", default=None, help="Default: ACCOUNTING_BIND's host, else 127.0.0.1.")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Default: ACCOUNTING_BIND's port, else 8000.",
)
@click.option("--workers", default=None, type=int, help="Default: gunicorn.conf.py's choice.")
@click.option(
    "--migrate/--no-migrate",
    default=None,
    help="Apply the migrations before serving (default: ACCOUNTING_MIGRATE_ON_START=1).",
)
def serve(host: str | None, port: int | None, workers: int | None, migrate: bool | None) -> None:
    """Run the service under gunicorn (gunicorn.conf.py: threaded workers, timeouts)."""
    configured = os.environ.get("ACCOUNTING_BIND") or "127.0.0.1:8000"  # gunicorn.conf.py too
    default_host, _, default_port = configured.rpartition(":")
    if not default_host or not default_port.isdigit() or not 0 < int(default_port) < 65536:
        raise Refused(f"ACCOUNTING_BIND is not HOST:PORT with a port from 1 to 65535: {configured}")
    url = database_url()  # a DATABASE_URL that cannot work is refused here, not in every worker
    sellers(os.environ.get("ACCOUNTING_SELLERS"))  # so are the sellers file
    document_templates(os.environ.get("ACCOUNTING_DOCUMENT_TEMPLATES"))  # and the templates
    if flag("ACCOUNTING_REQUIRE_DATABASE_URL") and not os.environ.get("DATABASE_URL"):
        raise Refused(
            "DATABASE_URL is not set: this installation serves PostgreSQL only "
            "(ACCOUNTING_REQUIRE_DATABASE_URL=1)"
        )
    if flag("ACCOUNTING_MIGRATE_ON_START") if migrate is None else migrate:
        upgrade(url)
        click.echo("database is at the latest migration", err=True)
    bind = f"{host or default_host}:{port or default_port}"
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="accounting-prom-"))
    # gunicorn from this interpreter: the console script works from a virtualenv that was
    # never activated (.venv/bin/accounting serve).
    args = [sys.executable, "-m", "gunicorn", "--bind", bind]
    conf = Path.cwd() / "gunicorn.conf.py"
    if not conf.exists():
        conf = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    if conf.exists():
        args += ["--config", str(conf)]
    if workers:
        args += ["--workers", str(workers)]
    args.append("app.wsgi:app")
    click.echo(f"serving on http://{bind}", err=True)
    os.execv(sys.executable, args)


@main.command()
def verify() -> None:
    """Check every invariant of every order and journal entry; exit 1 naming each violation."""
    with command_engine() as engine:
        checked, violations = run_verify(make_session_factory(engine))
    for violation in violations:
        click.echo(violation)
    click.echo(f"verify: {checked} orders checked, {len(violations)} violations", err=True)
    sys.exit(1 if violations else 0)


main.add_command(tax_correction)
main.add_command(worker)
main.add_command(openapi)
main.add_command(refunds)
main.add_command(relay)
