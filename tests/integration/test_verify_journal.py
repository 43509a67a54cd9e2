"""`accounting verify` rebuilds every journal entry from its document and names a tampered one.

The tampering here is what the roles and the trigger exist to stop (test_database_roles.py):
someone who can switch the trigger off rewrites a line and keeps the entry balanced, so only
the comparison with the document's stored amounts can tell.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.cli import main
from app.service.verify import verify
from tests import factories
from tests.e2e.conftest import Api, app_for, new_key


@pytest.fixture
def app(engine: Engine, database_url: str) -> Flask:
    return app_for(engine, database_url)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client(), new_key(app, ["1000"], "staff"))


def corrected_order(api: Api) -> tuple[str, str]:
    """An order invoiced, paid and corrected (11.90 -> 9.90): (order, invoice reference)."""
    order, invoice = api.invoiced_order()
    ref = order["orderReference"]
    assert api.pay(ref).status_code == 200
    items = [dict(i) for i in order["items"]]
    items[0].update(grossUnitPrice=Decimal("9.90"), vatAmount=Decimal("1.58"))
    body = factories.correction({**order, "items": items}, invoice)
    response = api.correct(ref, invoice["invoiceReference"], body)
    assert response.status_code == 200, response.get_json()
    return ref, invoice["invoiceReference"]


def entry_lines(engine: Engine, kind: str, reference: str) -> dict[str, Any]:
    """The last entry of this kind and document: its id and its lines by account."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT e.entry_id, l.line_no, l.account, l.debit, l.credit"
                " FROM journal_entries e JOIN journal_lines l"
                " ON l.business_code = e.business_code AND l.entry_id = e.entry_id"
                " WHERE e.kind = :kind AND e.document_reference = :reference"
                " ORDER BY e.created_at DESC, l.line_no"
            ),
            {"kind": kind, "reference": reference},
        ).all()
    entry_id = rows[0][0]
    return {
        "entry_id": entry_id,
        **{row[2]: (row[1], row[3], row[4]) for row in rows if row[0] == entry_id},
    }


def rewrite_credit(engine: Engine, entry_id: str, line_no: int, credit: int) -> None:
    """Rewrite one line's credit, with the trigger switched off for the moment (the owner may
    do that; only verify then tells)."""
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE journal_lines DISABLE TRIGGER USER"))
        connection.execute(
            text(
                "UPDATE journal_lines SET credit = :credit"
                " WHERE business_code = '1000' AND entry_id = :entry AND line_no = :line"
            ),
            {"credit": credit, "entry": entry_id, "line": line_no},
        )
        connection.execute(text("ALTER TABLE journal_lines ENABLE TRIGGER USER"))


def test_an_untampered_database_is_clean(api: Api, app: Flask) -> None:
    corrected_order(api)
    returned = api.return_items(api.invoiced_order()[0]["orderReference"], "R1", [(2, 1)])
    assert returned.status_code == 200, returned.get_json()

    checked, violations = verify(app.extensions["accounting"].session_factory)

    assert (checked, violations) == (2, [])


def test_vat_moved_to_revenue_in_a_balanced_entry_is_named(
    api: Api, app: Flask, engine: Engine, database_url: str
) -> None:
    _order, invoice_ref = corrected_order(api)
    booked = entry_lines(engine, "invoice", invoice_ref)  # version 2: 9.90 + 23.80 at 19 %
    revenue_line, _debit, revenue_credit = booked["revenue"]
    vat_line, _debit, vat_credit = booked["vat-payable"]
    assert (revenue_credit, vat_credit) == (2832, 538)
    with pytest.raises(DBAPIError, match="the journal is append-only"), engine.begin() as c:
        c.execute(text("UPDATE journal_lines SET credit = 0 WHERE line_no = :n"), {"n": vat_line})

    rewrite_credit(engine, booked["entry_id"], revenue_line, revenue_credit + vat_credit)
    rewrite_credit(engine, booked["entry_id"], vat_line, 0)

    _checked, violations = verify(app.extensions["accounting"].session_factory)
    entry = f"journal entry 1000/{booked['entry_id']} (invoice {invoice_ref})"
    implied = f"invoice {invoice_ref} version 2 implies"
    assert violations == [
        f"{entry}: line {revenue_line} revenue/DE/NORMAL/19: debit 0, credit 3370; "
        f"{implied} debit 0, credit 2832",
        f"{entry}: line {vat_line} vat-payable/DE/NORMAL/19: debit 0, credit 0; "
        f"{implied} debit 0, credit 538",
    ]
    result = CliRunner().invoke(main, ["verify"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 1
    assert result.stdout.splitlines() == violations
    assert result.stderr == "verify: 1 orders checked, 2 violations\n"
