"""Tax-correction jobs and their items, and the invoices a VAT-rate change selects.

The SQL of batch tax corrections (app/service/tax_correction.py orchestrates them): which
invoices a change reaches, a job's row and items, claiming an item with SKIP LOCKED, and what
happened to each invoice (an item's outcome, the command's report row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, RowMapping, Select, exists, func, literal, select, update

from app.adapters import schema
from app.adapters.schema import utc_now
from app.domain.model import InvoiceVersion
from app.domain.tax_change import TaxChange

jobs_table, items_table = schema.tax_correction_jobs, schema.tax_correction_items
PENDING = "pending"
QUEUED, RUNNING, COMPLETED = "queued", "running", "completed"


@dataclass(frozen=True)
class Job:
    business: str
    job_id: str
    change: TaxChange
    dry_run: bool


def _job_of(row: Any) -> Job:
    change = TaxChange(
        country=row.country,
        vat_type=row.vat_type,
        from_rate_bp=row.from_rate_bp,
        to_rate_bp=row.to_rate_bp,
        mode=row.mode,
        start=row.period_from,
        end=row.period_to,
    )
    return Job(row.business_code, row.job_id, change, bool(row.dry_run))


AMOUNTS = ("old_gross", "old_net", "old_vat", "new_gross", "new_net", "new_vat")


class Totals(NamedTuple):
    gross: int
    net: int
    vat: int

    @classmethod
    def of(cls, version: InvoiceVersion) -> Totals:
        return cls(version.gross, version.net, version.vat)


@dataclass(frozen=True)
class InvoiceOutcome:
    """What happened to one selected invoice; amounts in minor units of `currency`."""

    invoice_reference: str
    order_reference: str
    status: str
    problem_code: str | None = None
    currency: str | None = None
    before: Totals | None = None
    after: Totals | None = None
    refund: int = 0

    def amounts(self) -> dict[str, int | None]:
        """The totals before and after, named as an item and the report name them (None for
        a side that is missing)."""
        sides = (*(self.before or (None,) * 3), *(self.after or (None,) * 3))
        return dict(zip(AMOUNTS, sides, strict=True))


def selection(business: str, change: TaxChange) -> Select[str, str]:
    """Invoices whose current version is declared in the country, dated in the period, and
    has a line of the type at the old rate (an invoice's positions read as its current lines).
    """
    inv, ver, pos = schema.invoices, schema.invoice_versions, schema.positions
    line_at_old_rate = exists().where(
        pos.c.business_code == inv.c.business_code,
        pos.c.order_reference == inv.c.order_reference,
        pos.c.invoice_reference == inv.c.invoice_reference,
        pos.c.vat_type == change.vat_type,
        pos.c.rate_bp == change.from_rate_bp,
    )
    return (
        select(inv.c.invoice_reference, inv.c.order_reference)
        .join(
            ver,
            (ver.c.business_code == inv.c.business_code)
            & (ver.c.invoice_reference == inv.c.invoice_reference)
            & (ver.c.version == inv.c.current_version),
        )
        .where(inv.c.business_code == business)
        .where(ver.c.declaration_country == change.country)
        .where(ver.c.invoice_date.between(change.start, change.end))
        .where(line_at_old_rate)
    )


class TaxJobRepository:
    """Jobs, items and selections on one connection, in the caller's transaction."""

    def __init__(self, connection: Connection):
        self.connection = connection

    # --- selection -----------------------------------------------------------------------

    def business_known(self, business: str) -> bool:
        """Whether the database has an order or a key for the business."""
        return bool(
            self.connection.scalar(
                select(
                    exists().where(schema.orders.c.business_code == business)
                    | exists().where(schema.api_keys.c.business_code == business)
                )
            )
        )

    def count_selected(self, business: str, change: TaxChange) -> int:
        query = select(func.count()).select_from(selection(business, change).subquery())
        return int(self.connection.scalar(query) or 0)

    def selected_after(
        self, business: str, change: TaxChange, cursor: str, limit: int
    ) -> list[tuple[str, str]]:
        """(invoice, order) of the selection after the cursor, in invoice order."""
        rows = self.connection.execute(
            selection(business, change)
            .where(schema.invoices.c.invoice_reference > cursor)
            # Redundant, but it lets PostgreSQL start the versions' index scan at the cursor
            # too, instead of at the business's first invoice on every page.
            .where(schema.invoice_versions.c.invoice_reference > cursor)
            .order_by(schema.invoices.c.invoice_reference)
            .limit(limit)
        ).all()
        return [(r[0], r[1]) for r in rows]

    # --- jobs ----------------------------------------------------------------------------

    def add(self, job: Job, requested_by: str | None) -> None:
        change = job.change
        self.connection.execute(
            jobs_table.insert().values(
                business_code=job.business,
                job_id=job.job_id,
                status=QUEUED,
                country=change.country,
                vat_type=change.vat_type,
                from_rate_bp=change.from_rate_bp,
                to_rate_bp=change.to_rate_bp,
                period_from=change.start,
                period_to=change.end,
                mode=change.mode,
                dry_run=job.dry_run,
                requested_by=requested_by,
            )
        )

    def get(self, business: str, job_id: str) -> tuple[Job, Row[Any]] | None:
        """The job and its row as stored (where it stands: status, total, timestamps)."""
        row = self.connection.execute(
            select(jobs_table)
            .where(jobs_table.c.business_code == business)
            .where(jobs_table.c.job_id == job_id)
        ).first()
        return None if row is None else (_job_of(row), row)

    def item_counts(self, job: Job) -> dict[str, int]:
        """How many of the job's items have each status."""
        rows = self.connection.execute(
            select(items_table.c.status, func.count())
            .where(self._in(job))
            .group_by(items_table.c.status)
        ).all()
        return {status: int(count) for status, count in rows}

    def items_with(self, job: Job, statuses: tuple[str, ...], limit: int) -> Sequence[RowMapping]:
        """invoice_reference, order_reference, status and problem_code of the first items
        with these statuses."""
        query = (
            select(
                items_table.c.invoice_reference,
                items_table.c.order_reference,
                items_table.c.status,
                items_table.c.problem_code,
            )
            .where(self._in(job))
            .where(items_table.c.status.in_(statuses))
            .order_by(items_table.c.invoice_reference)
            .limit(limit)
        )
        return self.connection.execute(query).mappings().all()

    def claim_queued(self) -> Job | None:
        """The oldest queued job, locked; None when none is free (SKIP LOCKED)."""
        row = self.connection.execute(
            select(jobs_table)
            .where(jobs_table.c.status == QUEUED)
            .order_by(jobs_table.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        return _job_of(row) if row is not None else None

    def queued(self) -> int:
        query = select(func.count()).select_from(jobs_table).where(jobs_table.c.status == QUEUED)
        return int(self.connection.scalar(query) or 0)

    def start(self, job: Job) -> None:
        """Select the job's invoices as pending items and mark it running with their count."""
        chosen = selection(job.business, job.change).subquery()
        self.connection.execute(
            items_table.insert().from_select(
                ["business_code", "job_id", "invoice_reference", "order_reference", "status"],
                select(
                    literal(job.business),
                    literal(job.job_id),
                    chosen.c.invoice_reference,
                    chosen.c.order_reference,
                    literal(PENDING),
                ),
            )
        )
        total = self.connection.scalar(select(func.count()).where(self._in(job)))
        self.connection.execute(
            self._update(job).values(status=RUNNING, total=total, started_at=utc_now())
        )

    def running(self) -> list[Job]:
        rows = self.connection.execute(
            select(jobs_table)
            .where(jobs_table.c.status == RUNNING)
            .order_by(jobs_table.c.created_at)
        ).all()
        return [_job_of(row) for row in rows]

    def has_pending(self, job: Job) -> bool:
        return bool(self.connection.scalar(select(self._pending(job))))

    def complete(self, job: Job) -> None:
        """Mark a running job completed, if nothing of it is pending any more."""
        self.connection.execute(
            self._update(job)
            .where(jobs_table.c.status == RUNNING)
            .where(~self._pending(job))
            .values(status=COMPLETED, finished_at=utc_now())
        )

    # --- items ---------------------------------------------------------------------------

    def claim(self, job: Job, cursor: str) -> tuple[str, str] | None:
        """The next pending item after the cursor that no other worker holds, locked until
        commit. SKIP LOCKED lets workers pass each other's items; SQLite has no row locks,
        but its writes serialize, so a plain claim is just as safe there."""
        row = self.connection.execute(
            select(items_table.c.invoice_reference, items_table.c.order_reference)
            .where(self._in(job))
            .where(items_table.c.status == PENDING)
            .where(items_table.c.invoice_reference > cursor)
            .order_by(items_table.c.invoice_reference)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        return (row[0], row[1]) if row is not None else None

    def record(self, job: Job, outcome: InvoiceOutcome, worker: str) -> None:
        """Store an item's outcome; only a pending item changes (it may have been done since)."""
        self.connection.execute(
            update(items_table)
            .where(self._in(job))
            .where(items_table.c.invoice_reference == outcome.invoice_reference)
            .where(items_table.c.status == PENDING)
            .values(
                status=outcome.status,
                problem_code=outcome.problem_code,
                currency=outcome.currency,
                **outcome.amounts(),
                refund=outcome.refund,
                worker=worker,
                processed_at=utc_now(),
            )
        )

    @staticmethod
    def _in(job: Job) -> Any:
        return (items_table.c.business_code == job.business) & (items_table.c.job_id == job.job_id)

    def _pending(self, job: Job) -> Any:
        return exists().where(self._in(job), items_table.c.status == PENDING)

    @staticmethod
    def _update(job: Job) -> Any:
        return (
            update(jobs_table)
            .where(jobs_table.c.business_code == job.business)
            .where(jobs_table.c.job_id == job.job_id)
        )
