"""`accounting tax-correction` and `accounting worker`: batch tax corrections (issue 6)."""

from __future__ import annotations

import csv
import dataclasses
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import TextIO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.adapters import idempotency, migrations
from app.adapters.db import STATEMENT_TIMEOUT_MS, command_engine, make_session_factory
from app.adapters.schema import idempotency_keys, tax_correction_items, tax_correction_jobs
from app.adapters.tax_jobs import AMOUNTS
from app.config import database_url, worker_idempotency_retention
from app.domain.errors import DomainError, field_errors
from app.domain.money import decimals_of, rate_to_bp, to_major
from app.domain.tax_change import MODES, TaxChange
from app.service import tax_correction as tc

OPTIONS = {
    "business": "--business",
    "country": "--country",
    "end": "--to",
    "vat_type": "--vat-type",
    "from_rate_bp": "--from-rate",
    "to_rate_bp": "--to-rate",
    "mode": "--mode",
}
REPORT_COLUMNS = ("invoice", "order", "currency", *AMOUNTS, "refund", "status", "problem_code")
PLAIN_EVERY_SECONDS = 10.0
WORKER_TABLES = (tax_correction_jobs, tax_correction_items, idempotency_keys)
PURGE_EVERY = timedelta(days=1)
PURGE_RETRY = timedelta(hours=1)  # after a purge that failed


def _rate(value: str, option: str) -> int:
    try:
        percent = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"not a number: {value}", param_hint=option) from None
    if not percent.is_finite() or decimals_of(percent) > 2:
        raise click.BadParameter("a percentage with at most 2 decimals", param_hint=option)
    return rate_to_bp(percent)


@contextmanager
def _database(one_connection: bool = True) -> Iterator[sessionmaker[Session]]:
    """Sessions on DATABASE_URL; by default all on one connection (see on_one_connection)."""
    with command_engine(statement_timeout_ms=STATEMENT_TIMEOUT_MS) as engine:
        if one_connection:
            factory, connection = tc.on_one_connection(engine)
            with connection:
                yield factory
        else:
            yield make_session_factory(engine)


class Summary:
    """Counts per outcome and problem, refunds and the net and VAT moved, per currency."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.refunds: Counter[str] = Counter()
        self.refunded: Counter[str] = Counter()
        self.net_moved: Counter[str] = Counter()
        self.vat_moved: Counter[str] = Counter()

    def add(self, outcome: tc.InvoiceOutcome) -> None:
        self.statuses[outcome.status] += 1
        if outcome.problem_code:
            self.problems[outcome.problem_code] += 1
        currency = outcome.currency or ""
        if outcome.before is not None and outcome.after is not None:
            self.net_moved[currency] += outcome.after.net - outcome.before.net
            self.vat_moved[currency] += outcome.after.vat - outcome.before.vat
        if outcome.refund:
            self.refunds[currency] += 1
            self.refunded[currency] += outcome.refund

    @property
    def processed(self) -> int:
        return sum(self.statuses.values())

    def lines(self, dry_run: bool, seconds: float) -> list[str]:
        done = tc.WOULD_CORRECT if dry_run else tc.CORRECTED
        counts = ", ".join(
            f"{self.statuses[s]} {s}" for s in (done, tc.BLOCKED, tc.UNCHANGED, tc.FAILED)
        )
        result = [f"{self.processed} invoices: {counts}"]
        if self.problems:
            problems = ", ".join(f"{code} {n}" for code, n in sorted(self.problems.items()))
            result.append(f"problems: {problems}")
        for currency in sorted(set(self.net_moved) | set(self.vat_moved)):
            result.append(
                f"{currency}: net {_signed(self.net_moved[currency], currency)}, "
                f"VAT {_signed(self.vat_moved[currency], currency)}, "
                f"refunds {self.refunds[currency]} "
                f"({to_major(self.refunded[currency], currency)})"
            )
        rate = self.processed / seconds if seconds > 0 else 0.0
        result.append(f"{seconds:.1f} s, {rate:.1f} invoices/s")
        if dry_run:
            result.append("dry run: nothing was written")
        return result


def _signed(minor: int, currency: str) -> str:
    return f"{'+' if minor >= 0 else ''}{to_major(minor, currency)}"


def _amount(minor: int | None, currency: str | None) -> str:
    return "" if minor is None or currency is None else str(to_major(minor, currency))


def _report_row(outcome: tc.InvoiceOutcome) -> list[str]:
    currency, refund = outcome.currency, outcome.refund if outcome.after else None
    amounts = (_amount(minor, currency) for minor in (*outcome.amounts().values(), refund))
    return [
        outcome.invoice_reference,
        outcome.order_reference,
        currency or "",
        *amounts,
        outcome.status,
        outcome.problem_code or "",
    ]


@contextmanager
def _report(path: Path | None) -> Iterator[Callable[[tc.InvoiceOutcome], None]]:
    """A CSV row per invoice, written as it is processed (nothing is kept in memory)."""
    if path is None:
        yield lambda _outcome: None
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        yield lambda outcome: writer.writerow(_report_row(outcome))


@contextmanager
def progress(total: int, stream: TextIO) -> Iterator[Callable[[Summary], None]]:
    """A progress bar on a terminal; otherwise a plain line every 5 % or 10 seconds."""
    if stream.isatty():
        with Progress(
            TextColumn("tax correction"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
        ) as bar:
            task = bar.add_task("invoices", total=total, status="")

            def advance(summary: Summary) -> None:
                problems = summary.statuses[tc.BLOCKED] + summary.statuses[tc.FAILED]
                bar.update(task, completed=summary.processed, status=f"{problems} skipped")

            yield advance
        return
    step = max(1, total // 20)
    last = time.monotonic()

    def line(summary: Summary) -> None:
        nonlocal last
        done, now = summary.processed, time.monotonic()
        if done % step and done != total and now - last < PLAIN_EVERY_SECONDS:
            return
        last = now
        counts = ", ".join(f"{summary.statuses[s]} {s}" for s in tc.OUTCOMES if summary.statuses[s])
        print(f"tax-correction: {done}/{total} invoices ({counts})", file=stream, flush=True)

    yield line


@contextmanager
def _options_named() -> Iterator[None]:
    """A refused change names the command's options (--to-rate), not the API's fields."""
    try:
        yield
    except DomainError as error:
        raise field_errors(
            *(dataclasses.replace(e, field=OPTIONS.get(e.field, e.field)) for e in error.errors)
        ) from None


@click.command("tax-correction")
@click.option("--business", required=True, help="Business code.")
@click.option("--country", required=True, help="Declaration country, e.g. DE.")
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First invoice date."
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last invoice date."
)
@click.option("--vat-type", required=True, help="NORMAL or REDUCED.")
@click.option("--from-rate", required=True, help="The rate invoices carry now, e.g. 19.")
@click.option("--to-rate", required=True, help="The rate they should carry, e.g. 16.")
@click.option("--mode", type=click.Choice(MODES), required=True)
@click.option("--dry-run", is_flag=True, help="Compute and report; write nothing.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Processes correcting at once (each invoice still in its own transaction).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write a CSV row per invoice: old and new amounts, refund, status, problem code.",
)
def tax_correction(
    business: str,
    country: str,
    start: datetime,
    end: datetime,
    vat_type: str,
    from_rate: str,
    to_rate: str,
    mode: str,
    dry_run: bool,
    workers: int,
    report: Path | None,
) -> None:
    """Apply a VAT-rate change to every invoice of a period, each in its own transaction.

    keep-gross: prices stay, net and VAT are split anew. keep-net: gross follows the new rate
    (a decrease only), and what was paid beyond the new total is refunded. A rerun after an
    interruption corrects only what is left.
    """
    change = TaxChange(
        country=country,
        vat_type=vat_type,
        from_rate_bp=_rate(from_rate, "--from-rate"),
        to_rate_bp=_rate(to_rate, "--to-rate"),
        mode=mode,
        start=start.date(),
        end=end.date(),
    )
    with _options_named():
        change.check()
    summary = Summary()
    started = time.monotonic()
    # Worker processes bring their own connections; the parent's pool is emptied before they
    # are forked.
    with _database(one_connection=workers == 1) as factory:
        with _options_named():
            tc.check_scope(factory, business, change)
        total = tc.count_selected(factory, business, change)
        click.echo(
            f"tax-correction: business {business}, {country} {vat_type} {from_rate} % -> "
            f"{to_rate} % ({mode}), invoices dated {change.start} to {change.end}: "
            f"{total} selected",
            err=True,
        )
        with (
            tc.Corrections(database_url(), factory, workers) as corrections,
            _report(report) as write,
            progress(total, sys.stderr) as advance,
        ):
            for outcome in corrections.correct(business, change, dry_run):
                summary.add(outcome)
                write(outcome)
                advance(summary)
    for text in summary.lines(dry_run, time.monotonic() - started):
        click.echo(text)
    sys.exit(1 if summary.statuses[tc.FAILED] else 0)


class DailyPurge(threading.Thread):
    """Deletes idempotency keys older than `retention` now and then once a day, on a
    connection of its own, beside the worker's tax corrections (never in their way)."""

    def __init__(self, retention: timedelta, report: Callable[[str], None]):
        super().__init__(name="idempotency-purge", daemon=True)
        self.retention = retention
        self.report = report
        self.stopping = threading.Event()

    def run(self) -> None:
        with command_engine(
            statement_timeout_ms=STATEMENT_TIMEOUT_MS, pool_size=1, max_overflow=0
        ) as engine:
            while True:
                pause = PURGE_EVERY
                before = datetime.now(UTC) - self.retention
                try:
                    purged = idempotency.purge(engine, before, should_stop=self.stopping.is_set)
                except SQLAlchemyError as error:
                    reason = str(getattr(error, "orig", None) or type(error).__name__)
                    self.report(f"idempotency purge failed, again in 1 h: {reason.splitlines()[0]}")
                    pause = PURGE_RETRY
                else:
                    hours = self.retention.total_seconds() / 3600
                    self.report(f"purged {purged} idempotency keys older than {hours:g} h")
                if self.stopping.wait(pause.total_seconds()):
                    return

    def stop(self) -> None:
        """Stop after the purge under way, if any (a purge stops between its chunks)."""
        self.stopping.set()
        self.join()


@click.command()
@click.option("--once", is_flag=True, help="Return when no job has work left.")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between looks for work.")
@click.option(
    "--idempotency-retention",
    "retention",
    default=None,
    help="Purge idempotency keys older than this once a day: a number and m, h or d, at "
    "least 24h, or off. Default: ACCOUNTING_IDEMPOTENCY_RETENTION, else 48h.",
)
def worker(once: bool, poll: float, retention: str | None) -> None:
    """Process queued tax correction jobs; several workers share a job. Also purges old
    idempotency keys once a day (with --once: once, before returning)."""
    kept = worker_idempotency_retention(retention)
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def finished(job: tc.Job, processed: int) -> None:
        click.echo(f"worker: job {job.job_id}: {processed} invoices processed", err=True)

    purge = DailyPurge(kept, lambda text: click.echo(f"worker: {text}", err=True)) if kept else None
    with _database() as factory:
        with factory() as session:  # a database never migrated fails here, before any work
            migrations.read_nothing_from(session.connection(), *WORKER_TABLES)
        click.echo(f"worker {tc.worker_name()} ready", err=True)
        if purge is not None:
            purge.start()
        try:
            processed = tc.work(
                factory, once=once, poll_seconds=poll, should_stop=lambda: stopping, on_job=finished
            )
        finally:
            if purge is not None:
                purge.stop()
    click.echo(f"worker: {processed} invoices processed, stopping", err=True)
