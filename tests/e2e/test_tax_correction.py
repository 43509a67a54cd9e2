"""Batch tax corrections (issue 6): a VAT-rate change across the invoices of a period.

Orders and invoices are made through the API; the correction runs as `accounting
tax-correction` or as a job (`POST /tax-corrections` and `accounting worker`). The example is
Germany's cut from 19 % to 16 % for invoices dated July to December 2020.

The default order is 11.90 + 23.80 at 19 % = 35.70 gross, 5.70 VAT, 30.00 net.
    keep-gross at 16 %: 35.70 gross, VAT 35.70 x 16 / 116 = 4.924... -> 4.92, net 30.78.
    keep-net at 16 %:   11.60 + 23.20 = 34.80 gross, VAT 4.80, net 30.00.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import Engine, func, select

from app.adapters import schema
from app.batch_cli import Summary, progress
from app.cli import main
from app.service.tax_correction import InvoiceOutcome
from app.service.verify import verify
from tests import factories
from tests.e2e.conftest import BASE, Api, fields_of, new_key, problem
from tests.factories import item

IN_PERIOD = "2020-08-10"
PERIOD = ["--from", "2020-07-01", "--to", "2020-12-31"]
CUT = ["--business", "1000", "--country", "DE", *PERIOD, "--vat-type", "NORMAL"]
JOBS = f"{BASE}/1000/tax-corrections"
JOB_BODY = {
    "country": "DE",
    "from": "2020-07-01",
    "to": "2020-12-31",
    "vatType": "NORMAL",
    "fromRate": 19,
    "toRate": 16,
    "mode": "keep-gross",
}


# --- helpers ------------------------------------------------------------------------------


def invoiced(
    api: Api, invoice_date: str = IN_PERIOD, refs: list[int] | None = None, **order_fields: Any
) -> tuple[str, str]:
    """An order invoiced on one date (all its positions unless refs are named)."""
    order = factories.OrderFactory(**order_fields)
    assert api.create_order(order).status_code == 200
    refs = refs or [i["orderItemReference"] for i in order["items"]]
    invoice = factories.InvoiceFactory(
        invoiceDate=invoice_date,
        dueDate=invoice_date,
        dispatchDate=invoice_date,
        items=[{"orderItemReference": r} for r in refs],
    )
    response = api.invoice(order["orderReference"], invoice)
    assert response.status_code == 200, response.get_json()
    return order["orderReference"], invoice["invoiceReference"]


def tax_correction(database_url: str, *args: str, rates: tuple[str, str] = ("19", "16"),
                   mode: str = "keep-gross") -> Result:  # fmt: skip
    """`accounting tax-correction` against the test database, for the 2020 cut by default."""
    rate_args = ["--from-rate", rates[0], "--to-rate", rates[1], "--mode", mode]
    return CliRunner().invoke(
        main, ["tax-correction", *CUT, *rate_args, *args], env={"DATABASE_URL": database_url}
    )


def corrected(database_url: str, *args: str, **kwargs: Any) -> Result:
    result = tax_correction(database_url, *args, **kwargs)
    assert result.exit_code == 0, result.output
    return result


def report_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["invoice"]: row for row in csv.DictReader(handle)}


def versions(api: Api, order_ref: str, invoice_ref: str) -> list[dict[str, Any]]:
    versions: list[dict[str, Any]] = api.invoice_doc(order_ref, invoice_ref)["versions"]
    return versions


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in schema.metadata.sorted_tables
        }


def verified(app: Flask) -> None:
    _checked, violations = verify(app.extensions["accounting"].session_factory)
    assert violations == []


def tax_rows(api: Api) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["vatType"], r["vatPercent"]): r for r in api.tax_report("2020-07-01", "2020-12-31")}


def run_worker(database_url: str) -> Result:
    result = CliRunner().invoke(
        main, ["worker", "--once", "--poll", "0.05"], env={"DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    return result


# --- keep-gross ---------------------------------------------------------------------------


class TestKeepGross:
    def test_prices_stay_while_net_and_vat_are_split_anew(
        self, api: Api, database_url: str, app: Flask
    ) -> None:
        order_ref, invoice_ref = invoiced(api)
        corrected(database_url)
        v1, v2 = versions(api, order_ref, invoice_ref)
        assert (v1["status"], v1["nullifiedBy"]) == ("nullified", f"CN-{invoice_ref}-1")
        assert (v2["grossTotal"], v2["netTotal"], v2["vatTotal"]) == (
            Decimal("35.70"),
            Decimal("30.78"),
            Decimal("4.92"),
        )
        assert v2["invoiceDate"] == IN_PERIOD
        positions = api.order(order_ref)["positions"]
        assert [(p["grossUnitPrice"], p["vatPercent"]) for p in positions] == [
            (Decimal("11.90"), 16),
            (Decimal("23.80"), 16),
        ]
        verified(app)

    def test_nothing_is_refunded_though_the_order_was_paid(
        self, api: Api, database_url: str
    ) -> None:
        order_ref, _invoice_ref = invoiced(api)
        assert api.pay(order_ref).status_code == 200
        corrected(database_url)
        assert api.refunds(order_ref) == []
        assert api.order(order_ref)["totals"]["balance"] == 0

    def test_a_rate_increase_is_allowed(self, api: Api, database_url: str) -> None:
        order_ref, invoice_ref = invoiced(api, items=[item(1, "11.60", "16")])
        corrected(database_url, rates=("16", "19"))
        v2 = versions(api, order_ref, invoice_ref)[-1]
        assert (v2["grossTotal"], v2["vatTotal"]) == (Decimal("11.60"), Decimal("1.85"))


# --- keep-net -----------------------------------------------------------------------------


class TestKeepNet:
    def test_gross_follows_the_lower_rate_and_the_overpayment_is_refunded(
        self, api: Api, database_url: str, app: Flask
    ) -> None:
        order_ref, invoice_ref = invoiced(api)
        assert api.pay(order_ref).status_code == 200
        corrected(database_url, mode="keep-net")
        v2 = versions(api, order_ref, invoice_ref)[-1]
        assert (v2["grossTotal"], v2["netTotal"], v2["vatTotal"]) == (
            Decimal("34.80"),
            Decimal("30.00"),
            Decimal("4.80"),
        )
        [refund] = api.refunds(order_ref)
        assert refund["amount"] == Decimal("0.90")
        verified(app)

    def test_an_unpaid_order_only_owes_less(self, api: Api, database_url: str) -> None:
        order_ref, _invoice_ref = invoiced(api)
        corrected(database_url, mode="keep-net")
        assert api.refunds(order_ref) == []
        assert api.order(order_ref)["totals"]["balance"] == Decimal("34.80")

    def test_a_rate_increase_is_refused_and_nothing_is_written(
        self, api: Api, database_url: str, engine: Engine
    ) -> None:
        invoiced(api, items=[item(1, "11.60", "16")])
        before = row_counts(engine)
        result = tax_correction(database_url, rates=("16", "19"), mode="keep-net")
        assert result.exit_code == 2
        assert "--to-rate" in result.output
        assert "gross may never increase" in result.output
        assert row_counts(engine) == before


# --- which invoices -----------------------------------------------------------------------


class TestSelection:
    def test_only_invoices_of_the_period_country_type_and_rate_are_corrected(
        self, api: Api, database_url: str, tmp_path: Path
    ) -> None:
        chosen = invoiced(api)
        others = [
            invoiced(api, invoice_date="2020-06-30"),
            invoiced(api, invoice_date="2021-01-01"),
            invoiced(api, vatDeclarationCountry="AT"),
            invoiced(api, items=[item(1, "10.70", "7")]),
            invoiced(api, items=[item(1, "11.60", "16")]),
        ]
        corrected(database_url, "--report", str(tmp_path / "report.csv"))
        assert list(report_rows(tmp_path / "report.csv")) == [chosen[1]]
        assert len(versions(api, *chosen)) == 2
        assert all(len(versions(api, *other)) == 1 for other in others)

    def test_lines_at_other_rates_keep_their_rate_and_price(
        self, api: Api, database_url: str
    ) -> None:
        order_ref, _invoice_ref = invoiced(api, items=[item(1), item(2, "10.70", "7")])
        corrected(database_url, mode="keep-net")
        positions = api.order(order_ref)["positions"]
        assert [(p["grossUnitPrice"], p["vatPercent"]) for p in positions] == [
            (Decimal("11.60"), 16),
            (Decimal("10.70"), 7),
        ]

    def test_a_rerun_finds_nothing_left_to_correct(self, api: Api, database_url: str) -> None:
        invoices = [invoiced(api) for _ in range(3)]
        corrected(database_url)
        rerun = corrected(database_url)
        assert "0 selected" in rerun.stderr
        assert all(len(versions(api, *inv)) == 2 for inv in invoices)


# --- invoices the rules block -------------------------------------------------------------


class TestBlockedInvoices:
    def test_returns_goodwills_and_open_positions_skip_the_invoice_with_their_code(
        self, api: Api, database_url: str, tmp_path: Path, app: Flask
    ) -> None:
        returned = invoiced(api)
        assert api.return_items(returned[0], "R-1", [(1, 1)]).status_code == 200
        goodwilled = invoiced(api)
        assert api.goodwill(goodwilled[0], "G-1", [(2, Decimal("5.00"))]).status_code == 200
        unsettled = invoiced(api, refs=[1])
        fine = invoiced(api)

        result = corrected(database_url, "--report", str(tmp_path / "report.csv"))

        rows = report_rows(tmp_path / "report.csv")
        assert {ref: (r["status"], r["problem_code"]) for ref, r in rows.items()} == {
            returned[1]: ("blocked", "position-returned"),
            goodwilled[1]: ("blocked", "position-goodwilled"),
            unsettled[1]: ("blocked", "order-not-settled"),
            fine[1]: ("corrected", ""),
        }
        assert "1 corrected, 3 blocked" in result.stdout
        assert "order-not-settled 1, position-goodwilled 1, position-returned 1" in result.stdout
        assert [len(versions(api, *inv)) for inv in (returned, goodwilled, unsettled, fine)] == [
            1,
            1,
            1,
            2,
        ]
        verified(app)


# --- the report, the dry run and the tax report -------------------------------------------


class TestReport:
    def test_the_report_has_old_and_new_amounts_refund_status_and_problem(
        self, api: Api, database_url: str, tmp_path: Path
    ) -> None:
        order_ref, invoice_ref = invoiced(api)
        assert api.pay(order_ref).status_code == 200
        corrected(database_url, "--report", str(tmp_path / "r.csv"), mode="keep-net")
        assert report_rows(tmp_path / "r.csv")[invoice_ref] == {
            "invoice": invoice_ref,
            "order": order_ref,
            "currency": "EUR",
            "old_gross": "35.70",
            "old_net": "30.00",
            "old_vat": "5.70",
            "new_gross": "34.80",
            "new_net": "30.00",
            "new_vat": "4.80",
            "refund": "0.90",
            "status": "corrected",
            "problem_code": "",
        }

    def test_the_summary_names_the_amounts_moved_and_the_refunds(
        self, api: Api, database_url: str
    ) -> None:
        for _ in range(2):
            order_ref, _invoice_ref = invoiced(api)
            assert api.pay(order_ref).status_code == 200
        result = corrected(database_url, mode="keep-net")
        assert "2 invoices: 2 corrected, 0 blocked, 0 unchanged, 0 failed" in result.stdout
        assert "EUR: net +0.00, VAT -1.80, refunds 2 (1.80)" in result.stdout
        assert "invoices/s" in result.stdout

    def test_without_a_terminal_progress_is_written_as_plain_lines(
        self, api: Api, database_url: str
    ) -> None:
        invoiced(api)
        result = corrected(database_url)
        assert "tax-correction: 1/1 invoices (1 corrected)" in result.stderr


class TestProgress:
    def test_a_terminal_gets_a_progress_bar_counting_the_skipped(self) -> None:
        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        screen, summary = Terminal(), Summary()
        with progress(2, screen) as advance:
            for outcome in (
                InvoiceOutcome("INV1", "ORD1", "corrected"),
                InvoiceOutcome("INV2", "ORD2", "blocked", "position-returned"),
            ):
                summary.add(outcome)
                advance(summary)
        assert "tax correction" in screen.getvalue()
        assert "2/2" in screen.getvalue()
        assert "1 skipped" in screen.getvalue()


class TestDryRun:
    def test_a_dry_run_writes_nothing_and_reports_what_would_change(
        self, api: Api, database_url: str, engine: Engine, tmp_path: Path
    ) -> None:
        order_ref, invoice_ref = invoiced(api)
        assert api.pay(order_ref).status_code == 200
        blocked = invoiced(api, refs=[1])
        before = row_counts(engine)

        result = corrected(
            database_url, "--dry-run", "--report", str(tmp_path / "r.csv"), mode="keep-net"
        )

        assert row_counts(engine) == before
        assert len(versions(api, order_ref, invoice_ref)) == 1
        rows = report_rows(tmp_path / "r.csv")
        assert (rows[invoice_ref]["status"], rows[invoice_ref]["new_gross"]) == (
            "would-correct",
            "34.80",
        )
        assert rows[invoice_ref]["refund"] == "0.90"
        assert (rows[blocked[1]]["status"], rows[blocked[1]]["problem_code"]) == (
            "blocked",
            "order-not-settled",
        )
        assert "dry run: nothing was written" in result.stdout


class TestTaxReport:
    def test_the_tax_report_moves_exactly_the_corrected_amounts(
        self, api: Api, database_url: str, tmp_path: Path
    ) -> None:
        for _ in range(2):
            invoiced(api, items=[item(1), item(2, "23.80"), item(3, "10.70", "7")])
        blocked = invoiced(api, refs=[1])
        before = tax_rows(api)

        corrected(database_url, "--report", str(tmp_path / "r.csv"))

        after = tax_rows(api)
        # The blocked invoice holds 11.90 at 19 %: 1.90 VAT, 10.00 net. It stays.
        assert (after["NORMAL", 19]["net"], after["NORMAL", 19]["vat"]) == (
            Decimal("10.00"),
            Decimal("1.90"),
        )
        # Each corrected invoice moves 35.70 from 19 % (30.00 + 5.70) to 16 % (30.78 + 4.92).
        assert before["NORMAL", 19]["vat"] - after["NORMAL", 19]["vat"] == Decimal("11.40")
        assert (after["NORMAL", 16]["net"], after["NORMAL", 16]["vat"]) == (
            Decimal("61.56"),
            Decimal("9.84"),
        )
        assert after["REDUCED", 7] == before["REDUCED", 7]
        rows = report_rows(tmp_path / "r.csv")
        moved_vat = sum(
            Decimal(r["old_vat"]) - Decimal(r["new_vat"])
            for r in rows.values()
            if r["status"] == "corrected"
        )
        vat_before = before["NORMAL", 19]["vat"] + before["REDUCED", 7]["vat"]
        vat_after = sum(r["vat"] for r in after.values())
        assert vat_before - vat_after == moved_vat
        assert rows[blocked[1]]["status"] == "blocked"


# --- the same as a job --------------------------------------------------------------------


class TestJobs:
    def test_a_staff_key_queues_a_job_and_is_answered_202(self, api: Api) -> None:
        response = api.post(JOBS, JOB_BODY)
        assert response.status_code == 202, response.get_json()
        body = response.get_json()
        assert body["status"] == "queued"
        assert body["progress"] == {"processed": 0, "total": None, "percent": None}
        assert response.headers["Location"].endswith(f"/tax-corrections/{body['jobId']}")
        assert body["internalRequestId"]

    def test_a_retry_under_the_same_idempotency_key_answers_the_same_job(self, api: Api) -> None:
        key = {"Idempotency-Key": "tax-cut-2020"}
        first = api.post(JOBS, JOB_BODY, headers=key)
        again = api.post(JOBS, JOB_BODY, headers=key)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.get_json() == first.get_json()
        assert again.headers["Idempotent-Replayed"] == "true"
        other = api.post(JOBS, {**JOB_BODY, "mode": "keep-net"}, headers=key)
        problem(other, 422, "idempotency-key-reused")

    def test_a_merchant_key_is_forbidden(self, api: Api, app: Flask) -> None:
        merchant = new_key(app, ["1000"], "merchant")
        response = api.post(JOBS, JOB_BODY, headers={"X-Subscription-Key": merchant})
        problem(response, 403, "forbidden")
        problem(api.get(f"{JOBS}/x", headers={"X-Subscription-Key": merchant}), 403, "forbidden")

    def test_a_job_of_another_business_does_not_exist_for_its_key(
        self, api: Api, app: Flask
    ) -> None:
        job_id = api.post(JOBS, JOB_BODY).get_json()["jobId"]
        other = new_key(app, ["2000"], "staff")
        response = api.get(f"{BASE}/2000/tax-corrections/{job_id}", headers={
            "X-Subscription-Key": other})  # fmt: skip
        problem(response, 404, "not-found")
        problem(api.post(f"{BASE}/2000/tax-corrections", JOB_BODY), 404, "not-found")

    def test_an_unknown_job_is_not_found(self, api: Api) -> None:
        problem(api.get(f"{JOBS}/no-such-job"), 404, "not-found")

    def test_keep_net_may_not_raise_the_rate(self, api: Api) -> None:
        body = {**JOB_BODY, "fromRate": 16, "toRate": 19, "mode": "keep-net"}
        found = problem(api.post(JOBS, body), 422, "rate-increase-forbidden")
        assert fields_of(found) == {"toRate"}

    def test_unknown_fields_and_bad_values_are_named(self, api: Api) -> None:
        body = {**JOB_BODY, "vatType": "TAXLESS", "rate": 5, "toRate": Decimal("16.005")}
        found = problem(api.post(JOBS, body), 422, "validation-failed")
        assert fields_of(found) == {"vatType", "rate"}

    def test_a_worker_carries_out_the_job_and_its_progress_shows_it(
        self, api: Api, database_url: str, app: Flask
    ) -> None:
        invoices = [invoiced(api) for _ in range(3)]
        blocked = invoiced(api, refs=[1])
        job = api.post(JOBS, JOB_BODY).get_json()

        run_worker(database_url)

        response = api.get(f"{JOBS}/{job['jobId']}")
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == "completed"
        assert body["counts"] == {
            "pending": 0,
            "corrected": 3,
            "wouldCorrect": 0,
            "blocked": 1,
            "unchanged": 0,
            "failed": 0,
        }
        assert body["progress"] == {"processed": 4, "total": 4, "percent": 100}
        assert body["problems"] == [
            {
                "invoiceReference": blocked[1],
                "orderReference": blocked[0],
                "status": "blocked",
                "code": "order-not-settled",
            }
        ]
        assert all(len(versions(api, *inv)) == 2 for inv in invoices)
        verified(app)

    def test_a_dry_run_job_counts_what_would_change_and_writes_no_invoice(
        self, api: Api, database_url: str
    ) -> None:
        order_ref, invoice_ref = invoiced(api)
        job = api.post(JOBS, {**JOB_BODY, "dryRun": True}).get_json()
        run_worker(database_url)
        body = api.get(f"{JOBS}/{job['jobId']}").get_json()
        assert (body["status"], body["dryRun"], body["counts"]["wouldCorrect"]) == (
            "completed",
            True,
            1,
        )
        assert len(versions(api, order_ref, invoice_ref)) == 1

    @pytest.mark.parametrize("mode", ["keep-gross", "keep-net"])
    def test_a_job_corrects_like_the_command(self, api: Api, database_url: str, mode: str) -> None:
        by_job, by_command = invoiced(api), invoiced(api, invoice_date="2020-09-01")
        api.post(JOBS, {**JOB_BODY, "mode": mode, "to": "2020-08-31"})
        run_worker(database_url)
        corrected(database_url, mode=mode)
        job_version, command_version = (versions(api, *inv)[-1] for inv in (by_job, by_command))
        totals = ("grossTotal", "netTotal", "vatTotal", "taxes")
        assert [job_version[k] for k in totals] == [command_version[k] for k in totals]
