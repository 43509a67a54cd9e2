"""The order lifecycle over HTTP (SPEC section 5): each rule, allowed and refused.

Every scenario ends by checking the books: each journal entry balances, the order's totals
obey balance = gross - credited - paid + refunded, and refunds never exceed payments.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.service.verify import verify
from tests import factories
from tests.e2e.conftest import Api, fields_of, journal_balances, problem
from tests.factories import item


def assert_books_agree(api: Api, order_ref: str) -> dict[str, Any]:
    """The journal balances and the order's totals agree with each other; returns the order."""
    entries = api.journal(order_ref)
    assert journal_balances(entries)
    order = api.order(order_ref)
    totals = order["totals"]
    assert totals["balance"] == (
        totals["gross"] - totals["credited"] - totals["paid"] + totals["refunded"]
    )
    assert totals["balance"] >= 0
    assert totals["refunded"] <= totals["paid"]
    assert sum(r["amount"] for r in api.refunds(order_ref)) == totals["refunded"]
    if all(p["state"] != "open" for p in order["positions"]):
        # Once every position is invoiced or cancelled, the ledger's receivable is the balance.
        receivable = sum(
            line["debit"] - line["credit"]
            for entry in entries
            for line in entry["lines"]
            if line["account"] == "receivable"
        )
        assert receivable == totals["balance"]
    return order


def states(order: dict[str, Any]) -> dict[int, str]:
    return {p["orderItemReference"]: p["state"] for p in order["positions"]}


def position(order: dict[str, Any], ref: int) -> dict[str, Any]:
    return next(p for p in order["positions"] if p["orderItemReference"] == ref)


def kinds(api: Api, order_ref: str) -> list[str]:
    return [e["kind"] for e in api.journal(order_ref)]


def new_order(api: Api, *items: dict[str, Any]) -> str:
    """An order with these positions (default: 11.90 and 23.80 at 19 %); its reference."""
    fields = {"items": list(items)} if items else {}
    order = factories.OrderFactory(**fields)
    response = api.create_order(order)
    assert response.status_code == 200, response.get_json()
    return str(order["orderReference"])


def invoice(api: Api, order_ref: str, *refs: int, reference: str | None = None) -> Any:
    body = factories.InvoiceFactory(items=[{"orderItemReference": r} for r in refs])
    if reference is not None:
        body["invoiceReference"] = reference
    return api.invoice(order_ref, body)


# --- creating an order ------------------------------------------------------------------


def test_a_new_order_has_open_positions_and_books_nothing(api: Api) -> None:
    ref = new_order(api)

    order = assert_books_agree(api, ref)
    assert states(order) == {1: "open", 2: "open"}
    assert order["totals"]["gross"] == Decimal("35.70")
    assert order["totals"]["balance"] == Decimal("35.70")
    assert api.journal(ref) == []


def test_an_order_reference_cannot_be_created_twice(api: Api) -> None:
    order = factories.OrderFactory()
    assert api.create_order(order).status_code == 200

    problem(api.create_order(order), 409, "order-exists")


# --- invoices ---------------------------------------------------------------------------


def test_an_invoice_takes_whole_open_positions(api: Api) -> None:
    ref = new_order(api)

    response = invoice(api, ref, 1, 2, reference="INV-ALL")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["versions"][0]["grossTotal"] == Decimal("35.70")
    order = assert_books_agree(api, ref)
    assert states(order) == {1: "invoiced", 2: "invoiced"}
    assert {p["invoiceReference"] for p in order["positions"]} == {"INV-ALL"}
    assert order["totals"]["invoiced"] == Decimal("35.70")
    assert kinds(api, ref) == ["invoice"]


def test_a_second_invoice_naming_an_invoiced_position_is_refused(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, reference="INV-FIRST").status_code == 200

    body = problem(invoice(api, ref, 1, 2, reference="INV-SECOND"), 409, "position-not-open")

    assert fields_of(body) == {"items"}
    order = assert_books_agree(api, ref)
    assert position(order, 1)["invoiceReference"] == "INV-FIRST"
    assert position(order, 2)["state"] == "open"
    assert order["totals"]["invoiced"] == Decimal("11.90")
    assert kinds(api, ref) == ["invoice"]


def test_two_partial_invoices_on_different_positions_both_succeed(api: Api) -> None:
    ref = new_order(api)

    first = invoice(api, ref, 1, reference="INV-PART1")
    second = invoice(api, ref, 2, reference="INV-PART2")

    assert first.status_code == 200, first.get_json()
    assert second.status_code == 200, second.get_json()
    order = assert_books_agree(api, ref)
    assert position(order, 1)["invoiceReference"] == "INV-PART1"
    assert position(order, 2)["invoiceReference"] == "INV-PART2"
    assert order["totals"]["invoiced"] == Decimal("35.70")
    assert kinds(api, ref) == ["invoice", "invoice"]


def test_an_invoice_naming_an_unknown_position_is_refused(api: Api) -> None:
    ref = new_order(api)

    body = problem(invoice(api, ref, 1, 7), 422, "unknown-position")

    assert fields_of(body) == {"items[1].orderItemReference"}
    assert states(assert_books_agree(api, ref)) == {1: "open", 2: "open"}


def test_an_invoice_may_not_name_a_position_twice(api: Api) -> None:
    ref = new_order(api)

    response = invoice(api, ref, 1, 1)

    body = problem(response, 422, "validation-failed")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("items[1].orderItemReference", "duplicate-position")
    ]
    assert states(assert_books_agree(api, ref)) == {1: "open", 2: "open"}


def test_an_invoice_reference_cannot_be_used_twice(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, reference="INV-ONCE").status_code == 200

    problem(invoice(api, ref, 2, reference="INV-ONCE"), 409, "invoice-exists")

    assert position(assert_books_agree(api, ref), 2)["state"] == "open"


# --- cancellations ----------------------------------------------------------------------


def test_cancellation_takes_open_positions_and_books_nothing(api: Api) -> None:
    ref = new_order(api)

    response = api.cancel(ref, [1], cancellationReason="OUT_OF_STOCK")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["reference"].startswith("C-")
    assert response.get_json()["refund"] is None
    order = assert_books_agree(api, ref)
    assert states(order) == {1: "cancelled", 2: "open"}
    assert order["totals"]["cancelled"] == Decimal("11.90")
    assert order["totals"]["gross"] == Decimal("23.80")
    assert order["totals"]["balance"] == Decimal("23.80")
    assert api.journal(ref) == []


def test_an_invoiced_position_cannot_be_cancelled(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1).status_code == 200

    body = problem(api.cancel(ref, [1, 2]), 409, "position-not-open")

    assert fields_of(body) == {"items"}
    assert states(assert_books_agree(api, ref)) == {1: "invoiced", 2: "open"}


def test_a_cancelled_position_cannot_be_cancelled_again(api: Api) -> None:
    ref = new_order(api)
    assert api.cancel(ref, [2]).status_code == 200

    problem(api.cancel(ref, [2]), 409, "position-not-open")

    assert assert_books_agree(api, ref)["totals"]["cancelled"] == Decimal("23.80")


def test_a_cancelled_position_is_never_invoiced(api: Api) -> None:
    ref = new_order(api)
    assert api.cancel(ref, [2]).status_code == 200

    body = problem(invoice(api, ref, 1, 2), 409, "position-not-open")

    assert fields_of(body) == {"items"}
    order = assert_books_agree(api, ref)
    assert states(order) == {1: "open", 2: "cancelled"}
    assert order["totals"]["invoiced"] == 0
    assert api.journal(ref) == []


def test_the_open_rest_of_a_partly_cancelled_order_can_still_be_invoiced(api: Api) -> None:
    ref = new_order(api)
    assert api.cancel(ref, [2]).status_code == 200

    assert invoice(api, ref, 1).status_code == 200

    order = assert_books_agree(api, ref)
    assert states(order) == {1: "invoiced", 2: "cancelled"}
    assert order["totals"]["invoiced"] == Decimal("11.90")
    assert order["totals"]["balance"] == Decimal("11.90")


# --- returns ----------------------------------------------------------------------------


def test_partial_returns_sum_up_to_the_invoiced_quantity(api: Api) -> None:
    ref = new_order(api, item(1, "10.00", quantity="3"))
    assert invoice(api, ref, 1).status_code == 200

    assert api.return_items(ref, "RET-1", [(1, 1)]).status_code == 200
    assert api.return_items(ref, "RET-2", [(1, 2)]).status_code == 200

    order = assert_books_agree(api, ref)
    assert position(order, 1)["returnedQuantity"] == 3
    assert order["totals"]["credited"] == Decimal("30.00")
    assert order["totals"]["balance"] == 0
    assert kinds(api, ref) == ["invoice", "return", "return"]


def test_returning_more_than_is_left_after_earlier_returns_is_refused(api: Api) -> None:
    ref = new_order(api, item(1, "10.00", quantity="3"))
    assert invoice(api, ref, 1).status_code == 200
    assert api.return_items(ref, "RET-1", [(1, 2)]).status_code == 200

    body = problem(api.return_items(ref, "RET-2", [(1, 2)]), 409, "return-exceeds-invoiced")

    assert fields_of(body) == {"items[0].quantity"}
    order = assert_books_agree(api, ref)
    assert position(order, 1)["returnedQuantity"] == 2
    assert order["totals"]["credited"] == Decimal("20.00")


def test_a_return_over_the_invoiced_quantity_is_refused(api: Api) -> None:
    ref = new_order(api, item(1, "11.90", quantity="2"))
    assert invoice(api, ref, 1).status_code == 200

    body = problem(api.return_items(ref, "RET-OVER", [(1, 3)]), 409, "return-exceeds-invoiced")

    assert fields_of(body) == {"items[0].quantity"}
    order = assert_books_agree(api, ref)
    assert position(order, 1)["returnedQuantity"] == 0
    assert kinds(api, ref) == ["invoice"]


def test_a_refused_return_names_the_offending_item_by_its_index(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200

    body = problem(
        api.return_items(ref, "RET-MIXED", [(1, 1), (2, 2)]), 409, "return-exceeds-invoiced"
    )

    assert fields_of(body) == {"items[1].quantity"}
    assert position(assert_books_agree(api, ref), 1)["returnedQuantity"] == 0


def test_a_fractional_quantity_can_be_returned_in_parts(api: Api) -> None:
    ref = new_order(api, item(1, "4.00", quantity="2.5"))
    assert invoice(api, ref, 1).status_code == 200

    assert api.return_items(ref, "RET-HALF", [(1, Decimal("0.5"))]).status_code == 200
    refused = api.return_items(ref, "RET-REST", [(1, Decimal("2.001"))])

    problem(refused, 409, "return-exceeds-invoiced")
    order = assert_books_agree(api, ref)
    assert position(order, 1)["returnedQuantity"] == Decimal("0.5")
    assert order["totals"]["credited"] == Decimal("2.00")
    assert order["totals"]["balance"] == Decimal("8.00")


def test_an_open_position_cannot_be_returned(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1).status_code == 200

    body = problem(api.return_items(ref, "RET-OPEN", [(2, 1)]), 409, "position-not-invoiced")

    assert fields_of(body) == {"items"}
    assert kinds(api, ref) == ["invoice"]
    assert_books_agree(api, ref)


def test_a_return_books_the_reverse_of_the_returned_share(api: Api) -> None:
    ref = new_order(api, item(1, "11.90", quantity="2"))
    assert invoice(api, ref, 1).status_code == 200

    assert api.return_items(ref, "RET-ONE", [(1, 1)]).status_code == 200

    entry = api.journal(ref)[-1]
    assert (entry["kind"], entry["documentReference"]) == ("return", "RET-ONE")
    lines = {line["account"]: (line["debit"], line["credit"]) for line in entry["lines"]}
    # One of two units at 11.90: 11.90 gross, 1.90 VAT (11.90 x 19 / 119), 10.00 net.
    assert lines == {
        "receivable": (0, Decimal("11.90")),
        "revenue/DE/NORMAL/19": (Decimal("10.00"), 0),
        "vat-payable/DE/NORMAL/19": (Decimal("1.90"), 0),
    }
    assert assert_books_agree(api, ref)["totals"]["balance"] == Decimal("11.90")


def test_a_return_reference_cannot_be_used_twice(api: Api) -> None:
    ref = new_order(api, item(1, "10.00", quantity="3"))
    assert invoice(api, ref, 1).status_code == 200
    assert api.return_items(ref, "RET-SAME", [(1, 1)]).status_code == 200

    problem(api.return_items(ref, "RET-SAME", [(1, 1)]), 409, "reference-taken")

    assert position(assert_books_agree(api, ref), 1)["returnedQuantity"] == 1


# --- goodwills --------------------------------------------------------------------------


def test_a_goodwill_of_everything_that_is_left_is_accepted(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200

    response = api.goodwill(
        ref, "GW-ALL", [(1, Decimal("11.90"))], goodwillReason="ARTICLE_DEFECTIVE"
    )

    assert response.status_code == 200, response.get_json()
    order = assert_books_agree(api, ref)
    assert position(order, 1)["goodwillAmount"] == Decimal("11.90")
    assert order["totals"]["credited"] == Decimal("11.90")
    assert order["totals"]["balance"] == Decimal("23.80")


def test_a_goodwill_over_what_is_left_of_the_position_is_refused(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.goodwill(ref, "GW-1", [(1, Decimal("10.00"))]).status_code == 200

    response = api.goodwill(ref, "GW-2", [(2, Decimal("1.00")), (1, Decimal("1.91"))])

    body = problem(response, 409, "goodwill-exceeds-remaining")
    assert fields_of(body) == {"items[1].grossUnitPrice"}
    order = assert_books_agree(api, ref)
    assert position(order, 1)["goodwillAmount"] == Decimal("10.00")
    assert position(order, 2)["goodwillAmount"] == 0
    assert api.goodwill(ref, "GW-3", [(1, Decimal("1.90"))]).status_code == 200


def test_a_goodwill_after_a_return_is_limited_to_what_is_left(api: Api) -> None:
    ref = new_order(api, item(1, "11.90", quantity="2"))
    assert invoice(api, ref, 1).status_code == 200
    assert api.return_items(ref, "RET-ONE", [(1, 1)]).status_code == 200

    refused = api.goodwill(ref, "GW-OVER", [(1, Decimal("11.91"))])
    accepted = api.goodwill(ref, "GW-REST", [(1, Decimal("11.90"))])

    assert fields_of(problem(refused, 409, "goodwill-exceeds-remaining")) == {
        "items[0].grossUnitPrice"
    }
    assert accepted.status_code == 200, accepted.get_json()
    order = assert_books_agree(api, ref)
    assert order["totals"]["credited"] == Decimal("23.80")
    assert order["totals"]["balance"] == 0


def test_a_return_after_a_goodwill_credits_only_what_is_left(api: Api) -> None:
    ref = new_order(api, item(1, "11.90"))
    assert invoice(api, ref, 1).status_code == 200
    assert api.goodwill(ref, "GW-PART", [(1, Decimal("5.00"))]).status_code == 200

    assert api.return_items(ref, "RET-ALL", [(1, 1)]).status_code == 200

    order = assert_books_agree(api, ref)
    assert order["totals"]["credited"] == Decimal("11.90")
    assert order["totals"]["balance"] == 0


def test_an_open_position_cannot_receive_a_goodwill(api: Api) -> None:
    ref = new_order(api)

    body = problem(
        api.goodwill(ref, "GW-OPEN", [(1, Decimal("1.00"))]), 409, "position-not-invoiced"
    )

    assert fields_of(body) == {"items"}
    assert api.journal(ref) == []
    assert_books_agree(api, ref)


# --- payments ---------------------------------------------------------------------------


def test_a_payment_without_an_amount_pays_the_balance(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200

    response = api.pay(ref)

    assert response.status_code == 200, response.get_json()
    order = assert_books_agree(api, ref)
    assert order["totals"]["paid"] == Decimal("35.70")
    assert order["totals"]["balance"] == 0
    assert kinds(api, ref) == ["invoice", "payment"]


def test_a_partial_payment_leaves_the_rest_open(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200

    assert api.pay(ref, Decimal("10.00")).status_code == 200
    assert api.pay(ref).status_code == 200

    order = assert_books_agree(api, ref)
    assert order["totals"]["paid"] == Decimal("35.70")
    assert order["totals"]["balance"] == 0


def test_a_payment_over_the_balance_is_refused(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.pay(ref, Decimal("30.00")).status_code == 200

    body = problem(api.pay(ref, Decimal("5.71")), 409, "payment-exceeds-balance")

    assert fields_of(body) == {"authorizedAmount"}
    order = assert_books_agree(api, ref)
    assert order["totals"]["paid"] == Decimal("30.00")
    assert api.pay(ref, Decimal("5.70")).status_code == 200


def test_a_payment_when_nothing_is_open_is_refused(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.pay(ref).status_code == 200

    problem(api.pay(ref), 409, "nothing-to-pay")

    assert assert_books_agree(api, ref)["totals"]["paid"] == Decimal("35.70")


def test_a_payment_before_invoicing_is_normal_and_refunds_nothing(api: Api) -> None:
    ref = new_order(api)
    assert api.pay(ref).status_code == 200

    assert invoice(api, ref, 1, 2).status_code == 200

    order = assert_books_agree(api, ref)
    assert order["totals"]["paid"] == Decimal("35.70")
    assert order["totals"]["balance"] == 0
    assert api.refunds(ref) == []


# --- refunds ----------------------------------------------------------------------------


def test_cancelling_a_prepaid_order_refunds_what_was_paid_exactly_once(api: Api) -> None:
    ref = new_order(api)
    assert api.pay(ref).status_code == 200

    response = api.cancel(ref, [1, 2])
    retried = api.cancel(ref, [1, 2])

    refund = response.get_json()["refund"]
    assert refund["amount"] == Decimal("35.70")
    assert refund["status"] == "pending"
    assert refund["cause"] == f"cancellation {response.get_json()['reference']}"
    problem(retried, 409, "position-not-open")
    assert [r["amount"] for r in api.refunds(ref)] == [Decimal("35.70")]
    order = assert_books_agree(api, ref)
    assert order["totals"]["refunded"] == order["totals"]["paid"] == Decimal("35.70")
    assert order["totals"]["balance"] == 0
    assert kinds(api, ref) == ["payment", "refund"]


def test_cancelling_a_prepaid_order_in_parts_refunds_in_sum_what_was_paid(api: Api) -> None:
    ref = new_order(api)
    assert api.pay(ref).status_code == 200

    first = api.cancel(ref, [1])
    second = api.cancel(ref, [2])

    assert first.get_json()["refund"]["amount"] == Decimal("11.90")
    assert second.get_json()["refund"]["amount"] == Decimal("23.80")
    assert [r["amount"] for r in api.refunds(ref)] == [Decimal("11.90"), Decimal("23.80")]
    assert assert_books_agree(api, ref)["totals"]["refunded"] == Decimal("35.70")


def test_cancelling_a_partly_prepaid_order_refunds_no_more_than_was_paid(api: Api) -> None:
    ref = new_order(api)
    assert api.pay(ref, Decimal("5.00")).status_code == 200

    response = api.cancel(ref, [1, 2])

    assert response.get_json()["refund"]["amount"] == Decimal("5.00")
    order = assert_books_agree(api, ref)
    assert order["totals"]["refunded"] == Decimal("5.00")
    assert order["totals"]["balance"] == 0


def test_cancelling_what_was_not_paid_for_refunds_nothing(api: Api) -> None:
    ref = new_order(api)
    assert api.pay(ref, Decimal("20.00")).status_code == 200

    # 23.80 stays ordered and 20.00 were paid towards it: nothing is overpaid.
    response = api.cancel(ref, [1])

    assert response.get_json()["refund"] is None
    assert api.refunds(ref) == []
    assert assert_books_agree(api, ref)["totals"]["balance"] == Decimal("3.80")


def test_cancelling_an_unpaid_order_refunds_nothing(api: Api) -> None:
    ref = new_order(api)

    response = api.cancel(ref, [1, 2])

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["refund"] is None
    assert api.refunds(ref) == []
    assert api.journal(ref) == []
    order = assert_books_agree(api, ref)
    assert order["totals"]["gross"] == 0
    assert order["totals"]["balance"] == 0


def test_a_return_after_full_payment_refunds_the_returned_share(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.pay(ref).status_code == 200

    response = api.return_items(ref, "RET-PAID", [(1, 1)])

    refund = response.get_json()["refund"]
    assert refund["amount"] == Decimal("11.90")
    assert refund["cause"] == "return RET-PAID"
    assert [r["amount"] for r in api.refunds(ref)] == [Decimal("11.90")]
    order = assert_books_agree(api, ref)
    assert order["totals"]["refunded"] == Decimal("11.90")
    assert order["totals"]["balance"] == 0
    assert kinds(api, ref) == ["invoice", "payment", "return", "refund"]


def test_a_return_after_partial_payment_refunds_only_the_overpaid_part(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.pay(ref, Decimal("30.00")).status_code == 200

    # Now worth 11.90 with 30.00 paid: 18.10 goes back.
    response = api.return_items(ref, "RET-BIG", [(2, 1)])

    assert response.get_json()["refund"]["amount"] == Decimal("18.10")
    assert assert_books_agree(api, ref)["totals"]["balance"] == 0


def test_a_return_that_leaves_the_payment_below_the_new_total_refunds_nothing(
    api: Api,
) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.pay(ref, Decimal("10.00")).status_code == 200

    response = api.return_items(ref, "RET-SMALL", [(2, 1)])

    assert response.get_json()["refund"] is None
    assert api.refunds(ref) == []
    assert assert_books_agree(api, ref)["totals"]["balance"] == Decimal("1.90")


def test_a_goodwill_after_full_payment_is_refunded(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.pay(ref).status_code == 200

    response = api.goodwill(ref, "GW-PAID", [(2, Decimal("5.00"))])

    assert response.get_json()["refund"]["amount"] == Decimal("5.00")
    order = assert_books_agree(api, ref)
    assert order["totals"]["refunded"] == Decimal("5.00")
    assert order["totals"]["balance"] == 0


def test_everything_returned_after_full_payment_refunds_exactly_what_was_paid(api: Api) -> None:
    ref = new_order(api)
    assert invoice(api, ref, 1, 2).status_code == 200
    assert api.pay(ref).status_code == 200
    assert api.goodwill(ref, "GW-FIRST", [(1, Decimal("2.00"))]).status_code == 200

    assert api.return_items(ref, "RET-ALL", [(1, 1), (2, 1)]).status_code == 200

    assert [r["amount"] for r in api.refunds(ref)] == [Decimal("2.00"), Decimal("33.70")]
    order = assert_books_agree(api, ref)
    assert order["totals"]["refunded"] == order["totals"]["paid"] == Decimal("35.70")
    assert order["totals"]["credited"] == Decimal("35.70")
    assert order["totals"]["balance"] == 0


# --- a position credited in full leaves nothing booked -----------------------------------


def net_by_account(api: Api, order_ref: str) -> dict[str, Decimal]:
    """Debit less credit per account over every journal entry of the order."""
    balances: dict[str, Decimal] = {}
    for entry in api.journal(order_ref):
        for line in entry["lines"]:
            account = line["account"]
            balances[account] = balances.get(account, Decimal(0)) + line["debit"] - line["credit"]
    return balances


def report_of_june(api: Api) -> list[tuple[Any, ...]]:
    rows = api.tax_report("2024-06-01", "2024-06-30")
    return [(r["vatType"], r["vatPercent"], r["net"], r["vat"], r["gross"]) for r in rows]


def nothing_left_booked(api: Api, order_ref: str) -> None:
    """The period's tax report and every account of the order are back at zero, and
    `accounting verify` finds every entry as its document implies."""
    assert report_of_june(api) == [("NORMAL", 19, 0, 0, 0)]
    assert set(net_by_account(api, order_ref).values()) == {0}
    assert verify(api.client.application.extensions["accounting"].session_factory)[1] == []


def test_three_one_unit_returns_of_a_position_leave_no_cent_booked_or_declared(
    api: Api,
) -> None:
    # 9.99 holds 1.60 VAT at 19 %; one unit of 3.33 holds 0.53, three of them 1.59.
    order, _invoice = api.invoiced_order(items=[item(1, "3.33", quantity="3")])
    ref = order["orderReference"]

    answers = [
        api.return_items(ref, f"RET-{n}", [(1, 1)], returnDate="2024-06-20") for n in (1, 2, 3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200]
    returns = [e["lines"] for e in api.journal(ref) if e["kind"] == "return"]
    assert [
        line["debit"] for lines in returns for line in lines if line["account"].startswith("vat")
    ] == [Decimal("0.53"), Decimal("0.53"), Decimal("0.54")]
    nothing_left_booked(api, ref)
    totals = assert_books_agree(api, ref)["totals"]
    assert (totals["credited"], totals["balance"]) == (Decimal("9.99"), 0)


def test_a_position_credited_by_a_goodwill_and_returns_leaves_no_cent_booked(api: Api) -> None:
    order, _invoice = api.invoiced_order(items=[item(1, "3.33", quantity="3")])
    ref = order["orderReference"]
    june = {"goodwillDate": "2024-06-15"}

    assert api.goodwill(ref, "GW-1", [(1, Decimal("3.33"))], **june).status_code == 200
    assert api.return_items(ref, "RET-1", [(1, 1)], returnDate="2024-06-20").status_code == 200
    assert api.return_items(ref, "RET-2", [(1, 2)], returnDate="2024-06-21").status_code == 200

    nothing_left_booked(api, ref)
    assert assert_books_agree(api, ref)["totals"]["balance"] == 0


def test_positions_of_one_rate_returned_apart_leave_no_cent_booked(api: Api) -> None:
    order, _invoice = api.invoiced_order(items=[item(1, "3.33"), item(2, "3.33", quantity="2")])
    ref = order["orderReference"]

    assert api.return_items(ref, "RET-1", [(1, 1)], returnDate="2024-06-20").status_code == 200
    assert api.return_items(ref, "RET-2", [(2, 2)], returnDate="2024-06-20").status_code == 200

    nothing_left_booked(api, ref)
