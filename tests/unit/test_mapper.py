"""The data mapper: the rows a new order becomes, and what a store of a loaded order writes."""

from __future__ import annotations

from datetime import date

from app.adapters import mapper
from app.domain.bank_account import BankAccount
from app.domain.model import NULLIFIED, Order, Refund
from tests.domain_factories import OrderAggregateFactory, invoice_open


def invoiced_and_paid() -> tuple[Order, list[object]]:
    order = OrderAggregateFactory(order_reference="ORD1")
    _spec, invoiced = invoice_open(order, invoice_reference="INV1")
    _payment, paid = order.receive_payment(None, "VISA", None, date(2024, 6, 11))
    return order, [*invoiced.created, *paid.created]


def loaded(order: Order) -> dict[int, tuple[object, tuple[object, ...]]]:
    """The state a repository remembers for each object of an order it has just loaded."""
    return {id(obj): (obj, m.state(obj)) for m, obj, _keys in mapper.aggregate(order)}


def updates_after(order: Order, known: dict[int, tuple[object, tuple[object, ...]]]) -> dict:
    changes = mapper.Changes()
    for m, obj, keys in mapper.aggregate(order):
        changes.update(m, obj, keys, known[id(obj)][1])
    return {(table.name, columns): rows for (table, columns), rows in changes.updates.items()}


def test_a_new_order_is_one_row_per_object_parents_first_with_its_owners_keys() -> None:
    order, created = invoiced_and_paid()

    changes = mapper.new_order_rows(order, created)

    tables = [(table.name, len(rows)) for table, rows in changes.in_table_order()]
    assert tables == [
        ("orders", 1),
        ("invoices", 1),
        ("journal_entries", 2),
        ("payments", 1),
        ("positions", 2),
        ("invoice_versions", 1),
        ("journal_lines", 5),
    ]
    rows = dict(changes.in_table_order())
    position = rows[mapper.POSITION.table][1]
    assert (position["business_code"], position["order_reference"]) == ("1000", "ORD1")
    assert (position["item_ref"], position["unit_gross"]) == (2, 2380)
    version = rows[mapper.VERSION.table][0]
    assert (version["business_code"], version["invoice_reference"], version["gross"]) == (
        "1000",
        "INV1",
        3570,
    )
    assert order.created_at is not None  # type: ignore[attr-defined]  # set with the row


def test_a_loaded_order_writes_only_the_columns_that_changed() -> None:
    order, _created = invoiced_and_paid()
    known = loaded(order)

    order.header["orderNote"] = "changed in place"
    order.cancel("C1", None, [], date(2024, 6, 12), None)  # books nothing, bumps the version

    updates = updates_after(order, known)
    assert list(updates) == [("orders", ("version", "header"))]
    [row] = updates[("orders", ("version", "header"))]
    assert row["key_order_reference"] == "ORD1"
    assert row["header"]["orderNote"] == "changed in place"


def test_an_issued_version_is_written_only_as_nullified() -> None:
    order, _created = invoiced_and_paid()
    known = loaded(order)
    invoice = order.invoices[0]
    version = invoice.current

    version.gross = 1  # an issued document's amounts are never rewritten
    version.status, version.nullified_by = NULLIFIED, "CN-INV1-1"

    updates = updates_after(order, known)
    assert list(updates) == [("invoice_versions", ("status", "nullified_by"))]
    [row] = updates[("invoice_versions", ("status", "nullified_by"))]
    assert (row["key_invoice_reference"], row["key_version"]) == ("INV1", 1)
    assert "gross" not in row


def test_an_unchanged_order_writes_nothing() -> None:
    order, _created = invoiced_and_paid()
    assert updates_after(order, loaded(order)) == {}


def test_a_refund_s_account_is_stored_in_the_body_s_words_and_read_back() -> None:
    refund = Refund(500, "return R1", BankAccount("DE02 1203 0000 0000 2020 51", owner="M. M."))
    keys = {"business_code": "1000", "order_reference": "ORD1"}

    row = mapper.REFUND.row(refund, keys)
    loaded = mapper.REFUND.build(row[name] for name in mapper.REFUND.attributes)
    before, read_back = mapper.REFUND.state(loaded), loaded.bank_details
    loaded.bank_details = BankAccount("DE02100500000054540402")
    changes = mapper.Changes()
    changes.update(mapper.REFUND, loaded, keys, before)

    assert row["bank_details"] == {"iban": "DE02 1203 0000 0000 2020 51", "accountOwner": "M. M."}
    assert read_back == refund.bank_details
    [(columns, [params])] = [(c, rows) for (_t, c), rows in changes.updates.items()]
    assert columns == ("bank_details",)
    assert params["bank_details"] == {"iban": "DE02100500000054540402"}
