"""Refund payouts: a SEPA credit-transfer file of the pending bank refunds, then each refund
confirmed (completed) or failed (owed again, retried with new bank details), the ledger and the
order's totals following every step; refunds to the original payment method go through a
payment provider."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from lxml import etree
from sqlalchemy import Engine, select

from app.adapters.schema import outbox
from app.cli import main
from app.domain.errors import StateConflict
from app.service.refunds import ProviderPayout, RefundPayouts
from tests import factories
from tests.e2e.conftest import Api, journal_balances, new_key, problem

XSD = Path(__file__).resolve().parents[1] / "fixtures" / "sepa" / "pain.001.001.03.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
DEBTOR = ["--debtor-name", "Riverty Refunds", "--debtor-iban", "DE89370400440532013000"]
IBAN_1, IBAN_2, IBAN_NEW = (
    "DE02120300000000202051",
    "DE02500105170137075030",
    "DE02100500000054540402",
)


def cli(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url})


def step(database_url: str, verb: str, *args: str) -> Result:
    """`accounting refunds VERB --business 1000 ARGS`."""
    return cli(database_url, "refunds", verb, "--business", "1000", *args)


def export(database_url: str, out: Path, *extra: str) -> Result:
    return cli(
        database_url, "refunds", "export", "--business", "1000", "--out", str(out), *DEBTOR, *extra
    )


def prepaid_order_cancelled(api: Api, bank_details: dict[str, Any] | None) -> str:
    """An order of 11.90 and 23.80 paid in advance, then 23.80 cancelled: a refund of 23.80."""
    order = factories.OrderFactory()
    ref = order["orderReference"]
    assert api.create_order(order).status_code == 200
    assert api.pay(ref).status_code == 200
    extra = {"bankDetails": bank_details} if bank_details else {}
    response = api.cancel(ref, [2], **extra)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["refund"]["amount"] == Decimal("23.80")
    return ref


def accounts(entries: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Each account's balance over the entries, debit positive."""
    balance: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        for line in entry["lines"]:
            balance[line["account"]] += Decimal(str(line["debit"])) - Decimal(str(line["credit"]))
    return balance


def transfers(document: bytes) -> dict[str, Decimal]:
    """The file's transfers: end-to-end id (the refund's id) to amount."""
    root = etree.fromstring(document)
    return {
        tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS): Decimal(
            tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)
        )
        for tx in root.iterfind(".//p:CdtTrfTxInf", namespaces=NS)
    }


def end_to_end(refund: dict[str, Any]) -> str:
    return str(refund["id"]).replace("-", "")


def test_an_export_is_a_valid_pain_001_file_and_confirm_and_fail_close_its_refunds(
    api: Api, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    first = prepaid_order_cancelled(api, {"iban": IBAN_1, "accountOwner": "Max Mustermann"})
    second = prepaid_order_cancelled(api, {"iban": IBAN_2, "bic": "COBADEFFXXX"})
    by_card = prepaid_order_cancelled(api, None)
    [refund_1], [refund_2] = api.refunds(first), api.refunds(second)
    assert (refund_1["status"], refund_1["method"]) == ("pending", "bank-transfer")
    assert api.refunds(by_card)[0]["method"] == "original-method"

    result = export(database_url, tmp_path / "one.xml")
    assert result.exit_code == 0, result.output
    document = (tmp_path / "one.xml").read_bytes()
    etree.XMLSchema(etree.parse(str(XSD))).assertValid(etree.fromstring(document))
    assert transfers(document) == {
        end_to_end(refund_1): Decimal("23.80"),
        end_to_end(refund_2): Decimal("23.80"),
    }
    root = etree.fromstring(document)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "47.60"
    [export_id] = re.findall(r"^export (\S+):", result.stderr, re.MULTILINE)
    copy = step(database_url, "file", "--out", str(tmp_path / "copy.xml"), export_id)
    assert copy.exit_code == 0, copy.output
    assert (tmp_path / "copy.xml").read_bytes() == document
    assert [r["status"] for r in (*api.refunds(first), *api.refunds(second))] == ["in_payout"] * 2
    assert api.refunds(by_card)[0]["status"] == "pending"

    assert step(database_url, "confirm", refund_1["id"]).exit_code == 0
    failed = step(database_url, "fail", "--reason", "AC04 account closed", refund_2["id"])
    assert failed.exit_code == 0, failed.output

    [done], [bounced] = api.refunds(first), api.refunds(second)
    assert (done["status"], done["attempt"]) == ("completed", 1)
    assert (bounced["status"], bounced["failureReason"]) == ("failed", "AC04 account closed")
    totals_1, totals_2 = api.order(first)["totals"], api.order(second)["totals"]
    assert (totals_1["refunded"], totals_1["refundsPaidOut"], totals_1["balance"]) == (
        Decimal("23.80"), Decimal("23.80"), 0)  # fmt: skip
    assert (totals_2["refunded"], totals_2["refundsPaidOut"]) == (Decimal("23.80"), 0)
    journal_1, journal_2 = api.journal(first), api.journal(second)
    assert journal_balances(journal_1) and journal_balances(journal_2)
    ledger_1, ledger_2 = accounts(journal_1), accounts(journal_2)
    # Paid out: nothing owed any more, the money left the bank account.
    assert (ledger_1["refunds-payable"], ledger_1["refunds-in-payout"]) == (0, 0)
    assert ledger_1["bank"] == Decimal("-23.80")
    # Bounced: owed again, nothing left the bank.
    assert (ledger_2["refunds-payable"], ledger_2["refunds-in-payout"]) == (Decimal("-23.80"), 0)
    assert ledger_2["bank"] == 0

    again = export(database_url, tmp_path / "two.xml")
    assert again.exit_code == 0, again.output
    assert "no bank refund of business 1000 is due" in again.stderr
    assert not (tmp_path / "two.xml").exists()

    refused = step(database_url, "confirm", refund_1["id"])
    assert refused.exit_code == 2
    assert "is completed; it must be in_payout to be confirmed" in refused.stderr

    retried = step(database_url, "retry", "--iban", IBAN_NEW, refund_2["id"])
    assert retried.exit_code == 0, retried.output
    assert export(database_url, tmp_path / "three.xml").exit_code == 0
    third = (tmp_path / "three.xml").read_bytes()
    assert transfers(third) == {end_to_end(refund_2): Decimal("23.80")}
    assert IBAN_NEW.encode() in third
    assert step(database_url, "confirm", refund_2["id"]).exit_code == 0
    [paid] = api.refunds(second)
    assert (paid["status"], paid["attempt"]) == ("completed", 2)
    assert accounts(api.journal(second))["bank"] == Decimal("-23.80")  # paid once, not twice

    with engine.connect() as connection:
        topics = [row[0] for row in connection.execute(select(outbox.c.topic))]
    assert topics.count("refundCompleted") == 2 and topics.count("refundFailed") == 1
    verified = cli(database_url, "verify")
    assert verified.exit_code == 0, verified.output


def test_an_export_can_write_pain_001_001_09(api: Api, database_url: str, tmp_path: Path) -> None:
    ref = prepaid_order_cancelled(api, {"iban": IBAN_1, "accountOwner": "Max Mustermann"})
    out = tmp_path / "refunds.xml"
    result = export(database_url, out, "--format", "pain.001.001.09")
    assert result.exit_code == 0, result.output
    root = etree.fromstring(out.read_bytes())
    assert root.tag == "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.09}Document"
    assert api.refunds(ref)[0]["status"] == "in_payout"


def test_an_export_refuses_an_invalid_paying_account(database_url: str, tmp_path: Path) -> None:
    result = cli(database_url, "refunds", "export", "--business", "1000", "--debtor-name", "X",
                 "--debtor-iban", "DE00123")  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: debtor_iban:")


def test_an_unknown_refund_cannot_be_confirmed(database_url: str) -> None:
    result = step(database_url, "confirm", "nope")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: refund nope not found"


class StubProvider:
    """A payment provider that pays what it is asked to, and remembers it."""

    def __init__(self) -> None:
        self.paid: list[ProviderPayout] = []

    def pay(self, payout: ProviderPayout) -> str:
        self.paid.append(payout)
        return f"psp-{len(self.paid)}"


def test_a_refund_to_the_original_payment_method_goes_through_the_provider(
    api: Api, app: Flask
) -> None:
    ref = prepaid_order_cancelled(api, None)
    payouts = RefundPayouts(app.extensions["accounting"].session_factory)
    provider = StubProvider()

    [started] = payouts.pay_to_providers("1000", provider)
    assert payouts.pay_to_providers("1000", provider) == []  # in payout: never paid twice
    [asked] = provider.paid
    assert (asked.amount, asked.currency, asked.idempotency_key) == (
        2380, "EUR", f"{started.refund_id}/1")  # fmt: skip
    [refund] = api.refunds(ref)
    assert (refund["status"], refund["payoutReference"]) == ("in_payout", "psp-1")

    payouts.confirm("1000", started.refund_id)
    assert api.refunds(ref)[0]["status"] == "completed"
    ledger = accounts(api.journal(ref))
    # The payment came in on the provider's clearing account and the refund went back out.
    assert ledger["payment-clearing"] == Decimal("35.70") - Decimal("23.80")
    assert (ledger["refunds-payable"], ledger["refunds-in-payout"]) == (0, 0)
    with pytest.raises(StateConflict):
        payouts.fail("1000", started.refund_id, "too late")


# --- over HTTP, for staff keys ---------------------------------------------------------------


def refund_path(refund_id: str, action: str) -> str:
    return f"/accounting/v1/businesses/1000/refunds/{refund_id}/{action}"


def in_payout(api: Api, database_url: str, tmp_path: Path) -> dict[str, Any]:
    """A bank refund put in payout by an export."""
    ref = prepaid_order_cancelled(api, {"iban": IBAN_1, "accountOwner": "Max Mustermann"})
    assert export(database_url, tmp_path / "refunds.xml").exit_code == 0
    [refund] = api.refunds(ref)
    return {**refund, "orderReference": ref}


def test_staff_confirm_a_payout_over_http_and_a_retry_replays_the_answer(
    api: Api, app: Flask, database_url: str, tmp_path: Path
) -> None:
    refund = in_payout(api, database_url, tmp_path)
    staff, merchant = api, Api(api.client, new_key(app, ["1000"]))
    path = refund_path(refund["id"], "confirmation")

    problem(merchant.post(path, {}), 403, "forbidden")
    key = {"Idempotency-Key": "confirm-1"}
    first = staff.post(path, {"confirmedDate": "2026-12-01"}, headers=key)
    again = staff.post(path, {"confirmedDate": "2026-12-01"}, headers=key)

    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert (body["orderReference"], body["refund"]["status"]) == (
        refund["orderReference"], "completed")  # fmt: skip
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    problem(staff.post(path, {}), 409, "refund-not-in-payout")
    assert api.order(refund["orderReference"])["totals"]["refundsPaidOut"] == Decimal("23.80")


def test_staff_fail_a_payout_over_http_and_retry_it_to_new_bank_details(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    refund = in_payout(api, database_url, tmp_path)
    staff = api

    problem(staff.post(refund_path(refund["id"], "failure"), {}), 422, "validation-failed")
    failed = staff.post(refund_path(refund["id"], "failure"), {"reason": "AC04 account closed"})
    assert failed.status_code == 200, failed.get_json()
    assert failed.get_json()["refund"]["failureReason"] == "AC04 account closed"
    bad = staff.post(refund_path(refund["id"], "retry"), {"bankDetails": {"iban": "DE00"}})
    assert bad.status_code == 422
    retried = staff.post(refund_path(refund["id"], "retry"), {"bankDetails": {"iban": IBAN_NEW}})
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["refund"]["status"] == "pending"
    problem(staff.post(refund_path("no-such-refund", "confirmation"), {}), 404, "not-found")
    assert accounts(api.journal(refund["orderReference"]))["refunds-payable"] == Decimal("-23.80")


def test_a_refund_id_no_database_could_hold_is_not_found(api: Api) -> None:
    problem(api.post(refund_path("A%00B", "confirmation"), {}), 404, "not-found")
