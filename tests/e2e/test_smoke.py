from decimal import Decimal

from tests.e2e.conftest import Api, journal_balances


def test_order_invoice_payment_books_a_balanced_journal(api: Api) -> None:
    order, _invoice = api.invoiced_order()
    ref = order["orderReference"]
    assert api.pay(ref).status_code == 200
    read = api.order(ref)
    assert read["totals"]["paid"] == Decimal("35.70")
    assert read["totals"]["balance"] == 0
    entries = api.journal(ref)
    assert [e["kind"] for e in entries] == ["invoice", "payment"]
    assert journal_balances(entries)
