"""Rows to domain objects and back: the explicit data mapper of the order aggregate.

The domain classes are plain Python; nothing instruments them. Each class has one table whose
non-key columns are attributes of the same name. The keys an object does not carry itself
(the business and order of a position, the invoice of a version) come from its owner. What a
table keeps in the body's words, a mapping reads into the domain's types: `loaded` completes a
loaded object (an order's declaration country and date, from its header as sent), `converted`
turns a column into a domain value and back (a refund's bank account).

A loaded object is remembered with the values of the columns a later write may change; storing
compares them and writes an UPDATE of the changed columns only, or an INSERT for an object that
was never loaded. Issued documents (versions, credit notes, credits, payments, journal entries)
have no such columns, except a version's status and nullifying credit note: the mapper cannot
rewrite an issued document.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Table, and_, bindparam, update

from app import jsoncodec
from app.adapters import billing, schema
from app.domain import ledger, model

_ORDER_KEYS = ("business_code", "order_reference")
_INVOICE_KEYS = ("business_code", "invoice_reference")


def _tuple_getter(
    getter: Callable[..., Callable[[Any], Any]], names: tuple[str, ...]
) -> Callable[[Any], tuple[Any, ...]]:
    """`operator.attrgetter` or `itemgetter` of these names, always answering a tuple (the
    operator's own answers a bare value for one name)."""
    if not names:
        return lambda _: ()
    get = getter(*names)
    return get if len(names) > 1 else lambda source: (get(source),)


@dataclass(frozen=True)
class Mapping:
    """One domain class on its table."""

    cls: type[Any]
    table: Table
    owner_keys: tuple[str, ...] = ()  # key columns the owner supplies
    mutable: tuple[str, ...] = ()  # columns a later write may change
    # Completes a loaded object from what its columns keep in the body's words (a JSON header).
    loaded: Callable[[Any], None] | None = None
    # Attributes of a domain type whose column stores them in the body's words: per column,
    # (to the stored form, from it).
    converted: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = field(
        default_factory=dict, compare=False
    )

    @functools.cached_property
    def attributes(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns if c.name not in self.owner_keys)

    @functools.cached_property
    def columns(self) -> tuple[Any, ...]:
        return tuple(self.table.c[name] for name in self.attributes)

    @functools.cached_property
    def _json(self) -> tuple[int, ...]:
        """The positions of the JSON columns among the mutable ones."""
        return tuple(
            i for i, n in enumerate(self.mutable) if isinstance(self.table.c[n].type, JSON)
        )

    @functools.cached_property
    def _mutable_of(self) -> Callable[[object], tuple[Any, ...]]:
        return _tuple_getter(operator.attrgetter, self.mutable)

    @functools.cached_property
    def _attributes_of(self) -> Callable[[object], tuple[Any, ...]]:
        return _tuple_getter(operator.attrgetter, self.attributes)

    @functools.cached_property
    def _owner_keys_of(self) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        return _tuple_getter(operator.itemgetter, self.owner_keys)

    @functools.cached_property
    def _row_columns(self) -> tuple[str, ...]:
        return self.owner_keys + self.attributes

    @functools.cached_property
    def _created(self) -> bool:
        return "created_at" in self.attributes

    @functools.cached_property
    def key_params(self) -> tuple[tuple[str, str], ...]:
        """The primary key as `update_statement` takes it: (parameter, column) pairs."""
        return tuple((f"key_{c.name}", c.name) for c in self.table.primary_key)

    def build(self, values: Iterable[Any]) -> Any:
        """An object from its attribute columns' values, in the order of `columns`."""
        obj = object.__new__(self.cls)
        obj.__dict__.update(zip(self.attributes, values, strict=True))
        if self.converted:
            for name, (_, load) in self.converted.items():
                obj.__dict__[name] = load(obj.__dict__[name])
        if self.loaded is not None:
            self.loaded(obj)
        return obj

    def _stored(self, names: tuple[str, ...], values: tuple[Any, ...]) -> tuple[Any, ...]:
        """These attributes' values as their columns store them."""
        return tuple(
            self.converted[n][0](v) if n in self.converted else v
            for n, v in zip(names, values, strict=True)
        )

    def stored_mutable(self, obj: object) -> tuple[Any, ...]:
        """The values of the mutable columns as stored."""
        values = self._mutable_of(obj)
        return self._stored(self.mutable, values) if self.converted else values

    def state(self, obj: object) -> tuple[Any, ...]:
        """The values of the mutable columns, a JSON column's as its JSON text, so a later
        change in place shows."""
        return self.state_of(self.stored_mutable(obj))

    def state_of(self, stored: tuple[Any, ...]) -> tuple[Any, ...]:
        """The state of the mutable columns' values as stored (see `state`)."""
        if not self._json:
            return stored
        texts = list(stored)
        for i in self._json:
            texts[i] = jsoncodec.dumps(texts[i])
        return tuple(texts)

    def row(self, obj: object, keys: dict[str, Any]) -> dict[str, Any]:
        """The row to insert; a new row's created_at is set on the object too."""
        if self._created and getattr(obj, "created_at", None) is None:
            obj.created_at = datetime.now(UTC)  # type: ignore[attr-defined]
        values = self._attributes_of(obj)
        if self.converted:
            values = self._stored(self.attributes, values)
        return dict(zip(self._row_columns, self._owner_keys_of(keys) + values, strict=True))


def _order_facts(order: model.Order) -> None:
    """The header's facts the rules read, typed, from the header as stored (as sent)."""
    order.declaration_country = str(order.header["vatDeclarationCountry"])
    order.order_date = billing.stored_date(order.header.get("orderDate"))


def _version_header(version: model.InvoiceVersion) -> None:
    """Versions issued before 2026-12-04 also stored the order's customer number and currency
    in their header snapshot; the order has both, and a version compares without them."""
    if version.header:
        version.header = {
            k: v for k, v in version.header.items() if k not in ("customerNumber", "currency")
        }


ORDER = Mapping(
    model.Order,
    schema.orders,
    mutable=(
        "version",
        "paid_total",
        "refunded_total",
        "credited_total",
        "header",
        "refund_paid_total",
    ),
    loaded=_order_facts,
)
POSITION = Mapping(
    model.Position,
    schema.positions,
    _ORDER_KEYS,
    mutable=tuple(
        c.name for c in schema.positions.columns if c.name not in (*_ORDER_KEYS, "item_ref")
    ),
)
INVOICE = Mapping(model.Invoice, schema.invoices, _ORDER_KEYS, mutable=("current_version",))
VERSION = Mapping(
    model.InvoiceVersion,
    schema.invoice_versions,
    _INVOICE_KEYS,
    mutable=("status", "nullified_by"),
    loaded=_version_header,
)
CREDIT_NOTE = Mapping(model.CreditNote, schema.credit_notes, _INVOICE_KEYS)
CREDIT = Mapping(model.Credit, schema.credits, _ORDER_KEYS)
CANCELLATION = Mapping(model.Cancellation, schema.cancellations, _ORDER_KEYS)
PAYMENT = Mapping(model.Payment, schema.payments, _ORDER_KEYS)
# A refund changes only as it is paid out (app/service/refunds.py); its bank account is stored
# as the body sent it.
REFUND = Mapping(
    model.Refund,
    schema.refunds,
    _ORDER_KEYS,
    mutable=("status", "bank_details", "attempt", "payout_reference", "failure_reason"),
    converted={"bank_details": (billing.stored_account, billing.account)},
)
ENTRY = Mapping(ledger.JournalEntry, schema.journal_entries)
LINE = Mapping(ledger.JournalLine, schema.journal_lines, ("business_code", "entry_id"))

# The documents a business event creates (Effects.created), by class.
DOCUMENTS = {m.cls: m for m in (CREDIT, CANCELLATION, PAYMENT, REFUND)}


@functools.cache
def update_statement(table: Table, columns: tuple[str, ...]) -> Any:
    """UPDATE of some columns of one row by its primary key, built once per column set."""
    key = and_(*(c == bindparam(f"key_{c.name}") for c in table.primary_key.columns))
    return update(table).where(key).values({name: bindparam(name) for name in columns})


@dataclass
class Changes:
    """The rows one store writes: inserts per table, updates per table and column set."""

    inserts: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    updates: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = field(default_factory=dict)

    def insert(self, mapping: Mapping, obj: object, keys: dict[str, Any]) -> None:
        self.inserts.setdefault(mapping.table, []).append(mapping.row(obj, keys))

    def update(
        self, mapping: Mapping, obj: object, keys: dict[str, Any], before: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        """Note the changed columns of a loaded object; returns its state now."""
        stored = mapping.stored_mutable(obj)
        now = mapping.state_of(stored)
        if now != before:
            changed = tuple(
                n for n, a, b in zip(mapping.mutable, before, now, strict=True) if a != b
            )
            params = {param: _key(column, obj, keys) for param, column in mapping.key_params}
            values = zip(mapping.mutable, stored, strict=True)
            params.update((n, value) for n, value in values if n in changed)
            self.updates.setdefault((mapping.table, changed), []).append(params)
        return now

    def documents(self, order: model.Order, created: Iterable[object]) -> None:
        """The documents and journal entries a business event created."""
        keys = order_keys(order)
        for item in created:
            if isinstance(item, ledger.JournalEntry):
                self.insert(ENTRY, item, {})
                lines = {"business_code": item.business_code, "entry_id": item.entry_id}
                for line in item.lines:
                    self.insert(LINE, line, lines)
            else:
                self.insert(DOCUMENTS[type(item)], item, keys)

    def in_table_order(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        """Inserts parents first, as the foreign keys need."""
        return sorted(self.inserts.items(), key=lambda item: _PARENTS_FIRST[item[0]])


_PARENTS_FIRST = {table: n for n, table in enumerate(schema.metadata.sorted_tables)}


def _key(name: str, obj: object, keys: dict[str, Any]) -> Any:
    return keys[name] if name in keys else getattr(obj, name)


def order_keys(order: model.Order) -> dict[str, Any]:
    """The keys an order gives the objects it owns."""
    return {"business_code": order.business_code, "order_reference": order.order_reference}


def aggregate(order: model.Order) -> Iterator[tuple[Mapping, object, dict[str, Any]]]:
    """Every object of the order aggregate with its mapping and the keys its owner supplies."""
    yield ORDER, order, {}
    keys = order_keys(order)
    for p in order.positions:
        yield POSITION, p, keys
    for invoice in order.invoices:
        yield INVOICE, invoice, keys
        of_invoice = {
            "business_code": order.business_code,
            "invoice_reference": invoice.invoice_reference,
        }
        for v in invoice.versions:
            yield VERSION, v, of_invoice
        for cn in invoice.credit_notes:
            yield CREDIT_NOTE, cn, of_invoice


def new_order_rows(order: model.Order, created: Iterable[object] = ()) -> Changes:
    """Every row of an order never stored before, with the documents of its events."""
    changes = Changes()
    for mapping, obj, keys in aggregate(order):
        changes.insert(mapping, obj, keys)
    changes.documents(order, created)
    return changes
