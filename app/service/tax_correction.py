"""Batch tax corrections (issue 6): one VAT-rate change over every invoice of a period.

Each selected invoice is corrected in its own transaction, exactly as the PUT corrects one:
the order's lock first, then `Order.correct_invoice` with the order restated at the new rate,
then the same documents, ledger entries, refund and outbox event. Rules that block an invoice
(returns, goodwills, open positions) skip it and name their problem code.

Resuming needs no bookkeeping: a corrected invoice's current version no longer has lines at
the old rate, so it drops out of the selection, and the check is repeated under the order's
lock. A rerun after a crash therefore corrects every invoice exactly once.

The same work runs as a job (`POST /tax-corrections`, `accounting worker`): the job's items
are the invoices it selected; a worker claims one pending item, corrects its invoice and
records the outcome in one transaction, so several workers share a job and a killed worker
leaves its item pending for the next.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

import pycountry
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.adapters.db import make_engine, make_session_factory
from app.adapters.repository import Correcting
from app.adapters.tax_jobs import PENDING, InvoiceOutcome, Job, TaxJobRepository, Totals
from app.domain.errors import DomainError, FieldError, NotFound, field_errors
from app.domain.tax_change import TaxChange, restate
from app.service.orders import Idempotency, Written, correct_locked, idempotent
from app.service.unit_of_work import UnitOfWork, run

log = logging.getLogger("app.tax_correction")

CORRECTED = "corrected"
WOULD_CORRECT = "would-correct"
BLOCKED = "blocked"
UNCHANGED = "unchanged"  # no longer selected: corrected before (a rerun) or changed since
FAILED = "failed"
OUTCOMES = (CORRECTED, WOULD_CORRECT, BLOCKED, UNCHANGED, FAILED)

PAGE = 500
CHUNK = 20  # invoices sent to a worker process at a time
IN_FLIGHT_PER_PROCESS = 3
PROBLEMS_SHOWN = 100


# --- selection ---------------------------------------------------------------------------


def _jobs(session: Session) -> TaxJobRepository:
    return TaxJobRepository(session.connection())


def check_scope(session_factory: sessionmaker[Session], business: str, change: TaxChange) -> None:
    """Refuse a change for a country ISO 3166 does not know, or for a business the database
    does not know (no order and no key): a mistyped one would select nothing and look done."""
    errors = []
    if pycountry.countries.get(alpha_2=change.country) is None:
        errors.append(
            FieldError("country", "unknown-country", f"{change.country} is no ISO 3166 country")
        )
    with session_factory() as session:
        known = _jobs(session).business_known(business)
    if not known:
        errors.append(
            FieldError("business", "unknown-business", f"no order and no key for {business}")
        )
    if errors:
        raise field_errors(*errors)


def count_selected(session_factory: sessionmaker[Session], business: str, change: TaxChange) -> int:
    with session_factory() as session:
        return _jobs(session).count_selected(business, change)


def _pages(
    session_factory: sessionmaker[Session], business: str, change: TaxChange
) -> Iterator[list[tuple[str, str]]]:
    """The selection in invoice order, a page at a time, from a cursor (nothing held open)."""
    cursor = ""
    while True:
        with session_factory() as session:
            page = _jobs(session).selected_after(business, change, cursor, PAGE)
        if not page:
            return
        yield page
        cursor = page[-1][0]


# --- one invoice -------------------------------------------------------------------------


def _correct(
    uow: UnitOfWork,
    business: str,
    order_reference: str,
    invoice_reference: str,
    change: TaxChange,
    dry_run: bool,
) -> InvoiceOutcome:
    """Correct one invoice inside the caller's transaction, the order's lock taken first.

    The steps are those of OrderService.correct_invoice (the PUT) after it has parsed the
    body: the same lock, rule checks, credit-note reference check and store. Leaves the
    transaction to the caller: corrected changes are stored, blocked and dry-run ones write
    nothing.
    """
    order = uow.orders.lock(business, order_reference, correcting=Correcting(invoice_reference))
    invoice = order.invoice(invoice_reference) if order is not None else None
    if order is None or invoice is None:
        return InvoiceOutcome(invoice_reference, order_reference, FAILED, "not-found")
    current = invoice.current
    seen = InvoiceOutcome(
        invoice_reference, order_reference, UNCHANGED, None, order.currency, Totals.of(current)
    )
    if not change.applies_to(current):
        return seen
    try:
        restated = restate(order, invoice, change)
        result, effects = correct_locked(
            uow,
            order,
            invoice_reference,
            restated.spec,
            restated.header,
            restated.items,
            restated.body_refs,
            None,
            store=not dry_run,
        )
    except DomainError as error:
        return replace(seen, status=BLOCKED, problem_code=error.code)
    if not result.changed:
        return seen
    return replace(
        seen,
        status=WOULD_CORRECT if dry_run else CORRECTED,
        after=Totals.of(result.after),
        refund=effects.refund.amount if effects.refund is not None else 0,
    )


def _failed(invoice_reference: str, order_reference: str, error: Exception) -> InvoiceOutcome:
    if isinstance(error, DomainError):  # the order stayed busy, or a reference clashed
        code = error.code
    else:
        log.exception("tax correction of %s failed", invoice_reference)
        code = "database-error"
    return InvoiceOutcome(invoice_reference, order_reference, FAILED, code)


def correct_one(
    session_factory: sessionmaker[Session],
    business: str,
    order_reference: str,
    invoice_reference: str,
    change: TaxChange,
    dry_run: bool,
) -> InvoiceOutcome:
    """One invoice in its own transaction; a dry run computes everything and writes nothing."""

    def use_case(uow: UnitOfWork) -> InvoiceOutcome:
        outcome = _correct(uow, business, order_reference, invoice_reference, change, dry_run)
        if outcome.status == CORRECTED:
            uow.commit()
        return outcome

    try:
        return run(session_factory, use_case)
    except (DomainError, SQLAlchemyError) as error:
        return _failed(invoice_reference, order_reference, error)


_process_factory: sessionmaker[Session] | None = None


def on_one_connection(engine: Engine) -> tuple[sessionmaker[Session], Connection]:
    """Sessions that all use one connection, one after the other, and that connection.

    A batch runs thousands of short transactions in a row: checking a connection out of the
    pool (and pinging it) for each costs more CPU than the batch's own code. An invalidated
    connection reconnects on its next use.
    """
    connection = engine.connect()
    factory = make_session_factory(engine)
    factory.configure(bind=connection)
    return factory, connection


def _start_process(database_url: str) -> None:
    """A worker process's own engine and connection; the parent's are never touched."""
    global _process_factory
    _process_factory, _connection = on_one_connection(make_engine(database_url, pool_size=1))


def _corrected(
    session_factory: sessionmaker[Session],
    business: str,
    invoices: list[tuple[str, str]],
    change: TaxChange,
    dry_run: bool,
) -> Iterator[InvoiceOutcome]:
    """Each (invoice, order) in its own transaction, one after the other."""
    for invoice_ref, order_ref in invoices:
        yield correct_one(session_factory, business, order_ref, invoice_ref, change, dry_run)


def _correct_chunk(
    business: str, chunk: list[tuple[str, str]], change: TaxChange, dry_run: bool
) -> list[InvoiceOutcome]:
    assert _process_factory is not None, "set by _start_process"
    return list(_corrected(_process_factory, business, chunk, change, dry_run))


class Corrections:
    """Every selected invoice, each in its own transaction, in invoice order: with one
    process here, one after the other; with more, spread over worker processes.

    Each invoice still takes its order's lock first and is checked again under it, so the
    processes never correct one twice. Only a few chunks are in flight at a time, so memory
    does not grow with the selection. The processes are forked (sharing the parent's loaded
    code) when entering, before the caller starts any thread, and with no connection open.
    """

    def __init__(
        self, database_url: str, session_factory: sessionmaker[Session], processes: int
    ) -> None:
        self.database_url = database_url
        self.session_factory = session_factory
        self.processes = processes

    def __enter__(self) -> Corrections:
        self.pool: Pool | None = None
        if self.processes > 1:
            bind = self.session_factory.kw.get("bind")
            if isinstance(bind, Engine):
                bind.dispose()
            self.pool = multiprocessing.get_context("fork").Pool(
                self.processes, initializer=_start_process, initargs=(self.database_url,)
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def correct(self, business: str, change: TaxChange, dry_run: bool) -> Iterator[InvoiceOutcome]:
        change.check()
        in_flight: deque[AsyncResult[list[InvoiceOutcome]]] = deque()
        for page in _pages(self.session_factory, business, change):
            if self.pool is None:  # one process: each invoice here, as it is asked for
                yield from _corrected(self.session_factory, business, page, change, dry_run)
                continue
            for start in range(0, len(page), CHUNK):
                chunk = page[start : start + CHUNK]
                task = self.pool.apply_async(_correct_chunk, (business, chunk, change, dry_run))
                in_flight.append(task)
                if len(in_flight) >= IN_FLIGHT_PER_PROCESS * self.processes:
                    yield from in_flight.popleft().get()
        while in_flight:
            yield from in_flight.popleft().get()


# --- jobs --------------------------------------------------------------------------------


def create_job(
    session_factory: sessionmaker[Session],
    business: str,
    change: TaxChange,
    dry_run: bool,
    requested_by: str | None,
    present: Callable[[dict[str, Any]], dict[str, Any]],
    idempotency: Idempotency | None = None,
) -> tuple[dict[str, Any], bool]:
    """Queue a job (a worker selects its invoices when it starts it): (its presented report,
    whether that is the stored answer to an earlier request under the same idempotency key).

    Under an idempotency key the answer is stored with the job, so a retried request answers
    the same job instead of queueing a second one.
    """
    change.check()

    def write(uow: UnitOfWork) -> Written:
        jobs = TaxJobRepository(uow.connection)
        job = Job(business, str(uuid.uuid4()), change, dry_run)
        jobs.add(job, requested_by)
        return present(_job_report(jobs, business, job.job_id)), 0, True

    outcome = run(session_factory, idempotent(business, idempotency, write))
    return outcome.body, outcome.replayed


def job_report(
    session_factory: sessionmaker[Session], business: str, job_id: str
) -> dict[str, Any]:
    """A job's parameters, status, counts per outcome and the problems met so far."""
    return run(
        session_factory,
        lambda uow: _job_report(TaxJobRepository(uow.connection), business, job_id),
    )


def _job_report(jobs: TaxJobRepository, business: str, job_id: str) -> dict[str, Any]:
    found = jobs.get(business, job_id)
    if found is None:
        raise NotFound(f"tax correction job {job_id} not found")
    job, row = found
    counts = dict.fromkeys((PENDING, *OUTCOMES), 0)
    counts.update(jobs.item_counts(job))
    return {
        "job": job,
        "status": row.status,
        "total": row.total,
        "counts": counts,
        "processed": sum(counts[s] for s in OUTCOMES),
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "problems": jobs.items_with(job, (BLOCKED, FAILED), PROBLEMS_SHOWN),
    }


def _start_queued_job(session_factory: sessionmaker[Session]) -> Job | bool | None:
    """Start the oldest queued job: select its invoices as pending items.

    Returns the job, None when nothing is queued, or True when queued jobs exist but another
    worker is starting them right now.
    """
    with session_factory() as session, session.begin():
        jobs = _jobs(session)
        job = jobs.claim_queued()
        if job is None:
            return True if jobs.queued() else None
        jobs.start(job)
    return job


def _running_job(session_factory: sessionmaker[Session]) -> Job | None:
    """Complete running jobs with nothing pending; return the oldest one with work left."""
    with session_factory() as session, session.begin():
        jobs = _jobs(session)
        for job in jobs.running():
            if jobs.has_pending(job):
                return job
            jobs.complete(job)
    return None


def _process_next(
    session_factory: sessionmaker[Session], job: Job, cursor: str, worker: str
) -> InvoiceOutcome | None:
    """Claim, correct and record one item in one transaction; None when nothing is left."""
    claimed: list[tuple[str, str]] = []

    def use_case(uow: UnitOfWork) -> InvoiceOutcome | None:
        claimed.clear()
        jobs = TaxJobRepository(uow.connection)
        item = jobs.claim(job, cursor)
        if item is None:
            return None
        claimed.append(item)
        invoice_reference, order_reference = item
        outcome = _correct(
            uow, job.business, order_reference, invoice_reference, job.change, job.dry_run
        )
        jobs.record(job, outcome, worker)
        uow.commit()
        return outcome

    try:
        return run(session_factory, use_case)
    except (DomainError, SQLAlchemyError) as error:
        if not claimed:
            raise
        outcome = _failed(claimed[0][0], claimed[0][1], error)
        with session_factory() as session, session.begin():
            _jobs(session).record(job, outcome, worker)
        return outcome


def work_on(
    session_factory: sessionmaker[Session],
    job: Job,
    worker: str,
    should_stop: Callable[[], bool],
) -> int:
    """Process a running job's pending items until none is left to claim; returns how many.

    Each worker walks the items in invoice order from its own cursor and wraps around once at
    the end, to take items another worker released (a crashed worker's claim rolls back).
    """
    processed, cursor = 0, ""
    while not should_stop():
        outcome = _process_next(session_factory, job, cursor, worker)
        if outcome is None:
            if cursor == "":
                break
            cursor = ""
            continue
        processed += 1
        cursor = outcome.invoice_reference
    with session_factory() as session, session.begin():
        _jobs(session).complete(job)
    return processed


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def work(
    session_factory: sessionmaker[Session],
    once: bool,
    poll_seconds: float,
    should_stop: Callable[[], bool],
    on_job: Callable[[Job, int], None],
) -> int:
    """Process queued and running jobs; with `once`, return when no job has work left."""
    worker, total = worker_name(), 0
    while not should_stop():
        job = _running_job(session_factory)
        started = job or _start_queued_job(session_factory)
        if isinstance(started, Job):
            processed = work_on(session_factory, started, worker, should_stop)
            total += processed
            if processed:
                on_job(started, processed)
                continue
        elif started is None and once:
            return total
        time.sleep(poll_seconds)  # nothing to claim now: items are held by other workers
    return total
