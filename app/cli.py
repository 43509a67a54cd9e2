"""The `accounting` command: database, keys, serving and checks (SPEC section 12)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click
from alembic import command
from alembic.config import Config

from app.adapters import keys as api_keys
from app.adapters.db import make_engine, make_session_factory
from app.api.openapi_cli import openapi
from app.batch_cli import tax_correction, worker
from app.config import database_url
from app.service.verify import verify as run_verify


def alembic_config(url: str) -> Config:
    """Alembic pointed at the project's migrations and the given database."""
    here = Path(__file__).resolve().parent.parent / "migrations"
    location = here if here.is_dir() else Path.cwd() / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Apply every migration to the database at url."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


@click.group()
def main() -> None:
    """Accounting-as-a-Service."""


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations to DATABASE_URL (default: a SQLite file under ./var/)."""
    upgrade(database_url())
    click.echo("database is at the latest migration", err=True)


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--business", "businesses", multiple=True, required=True, help="Business code.")
@click.option("--role", type=click.Choice(api_keys.ROLES), required=True)
@click.option("--name", default=None, help="What the key is for.")
def keys_create(businesses: tuple[str, ...], role: str, name: str | None) -> None:
    """Create a key; it is printed once, on the last line, and stored only as a hash."""
    engine = make_engine(database_url())
    try:
        with make_session_factory(engine)() as session, session.begin():
            key = api_keys.create_key(session, list(businesses), role, name)
    finally:
        engine.dispose()
    click.echo(f"created a {role} key for business {', '.join(businesses)}", err=True)
    click.echo(key)


@keys.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix: str) -> None:
    """Revoke the key that starts with PREFIX (its first 12 characters)."""
    engine = make_engine(database_url())
    try:
        with make_session_factory(engine)() as session, session.begin():
            count = api_keys.revoke_key(session, prefix)
    finally:
        engine.dispose()
    if not count:
        click.echo(f"no live key starts with {prefix}", err=True)
        sys.exit(1)
    click.echo(f"revoked {prefix} for {count} business(es)", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="Default: gunicorn.conf.py's choice.")
def serve(host: str, port: int, workers: int | None) -> None:
    """Run the service under gunicorn."""
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="accounting-prom-"))
    args = ["gunicorn", "--bind", f"{host}:{port}"]
    conf = Path.cwd() / "gunicorn.conf.py"
    if not conf.exists():
        conf = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    if conf.exists():
        args += ["--config", str(conf)]
    if workers:
        args += ["--workers", str(workers)]
    args.append("app.wsgi:app")
    os.execvp(args[0], args)


@main.command()
def verify() -> None:
    """Check every invariant of every order; exit 1 naming each violation."""
    engine = make_engine(database_url())
    try:
        checked, violations = run_verify(make_session_factory(engine))
    finally:
        engine.dispose()
    for violation in violations:
        click.echo(violation)
    click.echo(f"verify: {checked} orders checked, {len(violations)} violations", err=True)
    sys.exit(1 if violations else 0)


main.add_command(tax_correction)
main.add_command(worker)
main.add_command(openapi)
