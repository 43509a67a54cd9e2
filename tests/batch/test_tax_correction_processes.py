"""Batch tax corrections survive SIGKILL and share a job between workers (issue 6).

Invoices are bulk-loaded through the domain (bench/tax_correction.py's loader); the command
and the workers run as real processes against the test database. Whatever happens to them,
each invoice ends with exactly one new version, one credit note and one rebooking, and
`verify` finds nothing wrong.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.adapters import schema
from app.domain.tax_change import TaxChange
from app.service import tax_correction as tc
from app.service.verify import verify
from bench.tax_correction import BUSINESS, CORRECTION, load
from tests.batch.processes import WAIT, start

INVOICES = 300
CUT = TaxChange(
    country="DE",
    vat_type="NORMAL",
    from_rate_bp=1900,
    to_rate_bp=1600,
    mode="keep-gross",
    start=date(2020, 7, 1),
    end=date(2020, 12, 31),
)


@pytest.fixture
def loaded(engine: Engine) -> int:
    load(engine, INVOICES)
    return INVOICES


def finish(process: subprocess.Popen[bytes], log: Path) -> str:
    assert process.wait(timeout=WAIT) == 0, log.read_text()
    return log.read_text()


def corrected_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(schema.invoices)
                .where(schema.invoices.c.current_version > 1)
            ).scalar_one()
        )


def kill_half_way(process: subprocess.Popen[bytes], engine: Engine) -> int:
    """SIGKILL the process (and its workers) mid-run; returns how many were corrected then."""
    deadline = time.monotonic() + WAIT
    while corrected_count(engine) < INVOICES // 2:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT)
    done = corrected_count(engine)
    assert done < INVOICES, "the run finished before the kill: nothing was interrupted"
    return done


def assert_each_invoice_corrected_exactly_once(engine: Engine, sessions: Any) -> None:
    inv, ver, notes = schema.invoices, schema.invoice_versions, schema.credit_notes
    entries = schema.journal_entries
    with engine.connect() as connection:

        def per_invoice(column: Any, *where: Any) -> dict[int, int]:
            counts = (
                select(column, func.count().label("n")).where(*where).group_by(column).subquery()
            )
            rows = connection.execute(select(counts.c.n, func.count()).group_by(counts.c.n)).all()
            return {int(n): int(k) for n, k in rows}

        assert per_invoice(ver.c.invoice_reference) == {2: INVOICES}
        assert per_invoice(notes.c.invoice_reference) == {1: INVOICES}
        booked_invoices = per_invoice(entries.c.document_reference, entries.c.kind == "invoice")
        assert booked_invoices == {2: INVOICES}
        assert per_invoice(entries.c.order_reference, entries.c.kind == "credit-note") == {
            1: INVOICES
        }
        current = connection.execute(
            select(inv.c.current_version, func.count()).group_by(inv.c.current_version)
        ).all()
        assert dict(current) == {2: INVOICES}
    checked, violations = verify(sessions)
    assert (checked, violations) == (INVOICES, [])


class TestKilledRun:
    @pytest.mark.parametrize("workers", ["1", "2"])
    def test_a_rerun_after_sigkill_corrects_every_invoice_exactly_once(
        self,
        loaded: int,
        engine: Engine,
        database_url: str,
        session_factory: sessionmaker[Session],
        processes: list[subprocess.Popen[bytes]],
        tmp_path: Path,
        workers: str,
    ) -> None:
        command = ["tax-correction", *CORRECTION, "--workers", workers]
        first = start(processes, database_url, tmp_path / "first.log", *command)
        done = kill_half_way(first, engine)

        output = finish(start(processes, database_url, tmp_path / "rerun.log", *command),
                        tmp_path / "rerun.log")  # fmt: skip

        left = INVOICES - done
        assert f"{left} selected" in output
        assert f"{left} invoices: {left} corrected, 0 blocked, 0 unchanged, 0 failed" in output
        assert_each_invoice_corrected_exactly_once(engine, session_factory)


class TestWorkers:
    def job(self, session_factory: sessionmaker[Session]) -> str:
        answer, _replayed = tc.create_job(
            session_factory, BUSINESS, CUT, False, None, lambda r: {"jobId": r["job"].job_id}
        )
        job_id: str = answer["jobId"]
        return job_id

    def test_two_workers_share_one_job_and_correct_every_invoice_once(
        self,
        loaded: int,
        engine: Engine,
        database_url: str,
        session_factory: sessionmaker[Session],
        processes: list[subprocess.Popen[bytes]],
        tmp_path: Path,
    ) -> None:
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        workers = [start(processes, database_url, log, "worker", "--poll", "0.05") for log in logs]
        # Both workers look for work before there is any, so neither can finish the job alone
        # before the other has started (a fast worker corrects 300 invoices in under a second).
        deadline = time.monotonic() + WAIT
        while not all("ready" in log.read_text() for log in logs):
            assert all(w.poll() is None for w in workers), [g.read_text() for g in logs]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        job_id = self.job(session_factory)
        while tc.job_report(session_factory, BUSINESS, job_id)["status"] != "completed":
            assert time.monotonic() < deadline, "the job was not completed"
            time.sleep(0.05)
        for worker, log in zip(workers, logs, strict=True):
            worker.send_signal(signal.SIGTERM)
            finish(worker, log)

        report = tc.job_report(session_factory, BUSINESS, job_id)
        assert report["status"] == "completed"
        assert report["counts"][tc.CORRECTED] == INVOICES
        with engine.connect() as connection:
            per_worker = connection.execute(
                select(schema.tax_correction_items.c.worker, func.count()).group_by(
                    schema.tax_correction_items.c.worker
                )
            ).all()
        assert len(per_worker) == 2, per_worker  # both took part
        assert_each_invoice_corrected_exactly_once(engine, session_factory)

    def test_a_killed_worker_leaves_the_rest_to_the_next(
        self,
        loaded: int,
        engine: Engine,
        database_url: str,
        session_factory: sessionmaker[Session],
        processes: list[subprocess.Popen[bytes]],
        tmp_path: Path,
    ) -> None:
        job_id = self.job(session_factory)
        first = start(processes, database_url, tmp_path / "w1.log", "worker", "--poll", "0.05")
        done = kill_half_way(first, engine)
        assert tc.job_report(session_factory, BUSINESS, job_id)["processed"] == done

        finish(
            start(processes, database_url, tmp_path / "w2.log", "worker", "--once"),
            tmp_path / "w2.log",
        )

        report = tc.job_report(session_factory, BUSINESS, job_id)
        assert (report["status"], report["counts"][tc.CORRECTED]) == ("completed", INVOICES)
        assert_each_invoice_corrected_exactly_once(engine, session_factory)
