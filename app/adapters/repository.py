"""Loading and storing orders and their documents; every query is scoped by business code.

Core statements only (the mapping of rows onto the domain classes is app/adapters/mapper.py);
the statements of the hot paths are built once per process, so SQLAlchemy neither rebuilds
them nor recomputes their cache keys on every request.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, String, Table, and_, bindparam, case, cast, exists, func, select

from app.adapters import mapper, schema
from app.adapters.batch import Immediate, Query
from app.adapters.mapper import CREDIT_NOTE, ENTRY, INVOICE, LINE, ORDER, POSITION, REFUND, VERSION
from app.domain import ledger, model
from app.domain.model import Effects

# What a load brings of each invoice's history: False, the current version only (enough for
# every rule, the correction's included); True, every version and credit note of every invoice
# (`accounting verify`); an invoice reference, the whole history of that invoice (to show it).
History = bool | str


def _of(column: Any, name: str, many: bool) -> Any:
    return column.in_(bindparam(name, expanding=True)) if many else column == bindparam(name)


@functools.cache
def _orders_query(many: bool, lock: bool) -> Any:
    t = schema.orders
    query = select(*ORDER.columns).where(
        t.c.business_code == bindparam("business"), _of(t.c.order_reference, "refs", many)
    )
    return query.with_for_update() if lock else query


@functools.cache
def _positions_query(many: bool) -> Any:
    t = schema.positions
    return (
        select(*POSITION.columns, t.c.order_reference)
        .where(t.c.business_code == bindparam("business"), _of(t.c.order_reference, "refs", many))
        .order_by(t.c.order_reference, t.c.item_ref)
    )


@functools.cache
def _invoices_query(many: bool) -> Any:
    """Each invoice with its current version, in one row."""
    i, v = schema.invoices, schema.invoice_versions
    current = and_(
        v.c.business_code == i.c.business_code,
        v.c.invoice_reference == i.c.invoice_reference,
        v.c.version == i.c.current_version,
    )
    return (
        select(*INVOICE.columns, *VERSION.columns, i.c.order_reference)
        .select_from(i.join(v, current))
        .where(i.c.business_code == bindparam("business"), _of(i.c.order_reference, "refs", many))
        .order_by(i.c.order_reference, i.c.invoice_reference)
    )


@functools.cache
def _history_query(mapping: mapper.Mapping, order_by: str, many: bool) -> Any:
    """Versions or credit notes of some invoices."""
    t = mapping.table
    return (
        select(*mapping.columns, t.c.invoice_reference)
        .where(
            t.c.business_code == bindparam("business"),
            _of(t.c.invoice_reference, "invoices", many),
        )
        .order_by(t.c.invoice_reference, t.c[order_by])
    )


def _reference_taken(business: Any, reference: Any) -> Any:
    """Is the reference taken by a credit note or by a goodwill? (They share references.)"""
    notes, credits = schema.credit_notes, schema.credits
    note = select(notes.c.reference).where(
        (notes.c.business_code == business) & (notes.c.reference == reference)
    )
    goodwill = select(credits.c.reference).where(
        (credits.c.business_code == business)
        & (credits.c.reference == reference)
        & (credits.c.kind == model.GOODWILL)
    )
    return exists(note) | exists(goodwill)


@functools.cache
def _goodwill_reference_query() -> Any:
    business, reference = bindparam("business", type_=String), bindparam("reference", type_=String)
    return select(_reference_taken(business, reference))


@functools.cache
def _correction_reference_query() -> Any:
    """The credit-note reference a correction of one invoice will take (the client's, else
    model.credit_note_prefix and the invoice's current version), and whether it is taken."""
    invoices = schema.invoices
    business = bindparam("business", type_=String)
    version = (
        select(invoices.c.current_version)
        .where(invoices.c.business_code == business)
        .where(invoices.c.invoice_reference == bindparam("invoice", type_=String))
        .scalar_subquery()
    )
    default = bindparam("prefix", type_=String) + cast(version, String)
    # Worked out once (a CTE), and read by the lookups as a subquery of its own: they then
    # compare with a fixed value as the plain reference check does (an index scan, or on a
    # table still small when the plan was made, a scan that compares cheaply).
    candidate = select(
        func.coalesce(bindparam("given", type_=String), default).label("reference")
    ).cte("credit_note_reference")
    reference = select(candidate.c.reference).scalar_subquery()
    return select(reference, _reference_taken(business, reference))


@functools.cache
def _lookup(table: Table, wanted: str, key: str) -> Any:
    """The `wanted` column of the business's row whose `key` column holds :key."""
    return select(table.c[wanted]).where(
        table.c.business_code == bindparam("business"), table.c[key] == bindparam("key")
    )


@functools.cache
def _return_reference_query() -> Any:
    credits = schema.credits
    return _lookup(credits, "reference", "reference").where(credits.c.kind == model.RETURN)


@functools.cache
def _owing_orders_query() -> Any:
    """Orders holding a pending refund, their rows locked; an order another transaction
    holds is skipped (it is in that one's payout, or its write may add a refund later)."""
    o, r = schema.orders, schema.refunds
    pending = select(r.c.refund_id).where(
        r.c.business_code == o.c.business_code,
        r.c.order_reference == o.c.order_reference,
        r.c.status == model.PENDING,
    )
    return (
        select(*ORDER.columns)
        .where(o.c.business_code == bindparam("business"), exists(pending))
        .order_by(o.c.order_reference)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


@functools.cache
def _refunds_query(many: bool) -> Any:
    """Refunds of some orders, oldest first within each order."""
    t = schema.refunds
    return (
        select(*REFUND.columns, t.c.order_reference)
        .where(t.c.business_code == bindparam("business"), _of(t.c.order_reference, "refs", many))
        .order_by(t.c.order_reference, t.c.created_at, t.c.refund_id)
    )


@functools.cache
def _journal_queries(many: bool) -> tuple[Any, Any]:
    """The journal entries of some orders, in the order booked (those booked together by their
    documents' dates, then ids), and their lines."""
    e, ln = schema.journal_entries, schema.journal_lines
    of_orders = (e.c.business_code == bindparam("business")) & _of(
        e.c.order_reference, "refs", many
    )
    booked = (e.c.created_at, e.c.document_date, e.c.entry_id)
    entries = select(*ENTRY.columns).where(of_orders).order_by(*booked)
    lines = (
        select(*LINE.columns, ln.c.entry_id)
        .join(e, (e.c.business_code == ln.c.business_code) & (e.c.entry_id == ln.c.entry_id))
        .where(of_orders)
        .order_by(ln.c.entry_id, ln.c.line_no)
    )
    return entries, lines


@functools.cache
def _tax_report_query() -> Any:
    """Net and VAT booked per currency, declaration country, VAT type and rate in a period."""
    lines, entries, orders = schema.journal_lines, schema.journal_entries, schema.orders
    signed = lines.c.credit - lines.c.debit
    net = func.sum(case((lines.c.account == ledger.REVENUE, signed), else_=0))
    vat = func.sum(case((lines.c.account == ledger.VAT_PAYABLE, signed), else_=0))
    return (
        select(orders.c.currency, lines.c.tax_country, lines.c.vat_type, lines.c.rate_bp, net, vat)
        .join(
            entries,
            (entries.c.business_code == lines.c.business_code)
            & (entries.c.entry_id == lines.c.entry_id),
        )
        .join(
            orders,
            (orders.c.business_code == entries.c.business_code)
            & (orders.c.order_reference == entries.c.order_reference),
        )
        .where(lines.c.business_code == bindparam("business"))
        .where(entries.c.document_date.between(bindparam("start"), bindparam("end")))
        .where(lines.c.tax_country.is_not(None))
        .group_by(orders.c.currency, lines.c.tax_country, lines.c.vat_type, lines.c.rate_bp)
        .order_by(orders.c.currency, lines.c.tax_country, lines.c.vat_type, lines.c.rate_bp)
    )


@dataclass(frozen=True)
class Correcting:
    """The invoice a write will correct and the credit-note reference the client gave, if
    any: loading its order also checks the reference the credit note will take."""

    invoice_reference: str
    credit_note_reference: str | None = None


@dataclass(frozen=True)
class OutboxEvent:
    """What a business change tells the outside, written in the same transaction."""

    topic: str
    payload: dict[str, Any]


class OrderRepository:
    """The order aggregate and what hangs off it."""

    def __init__(self, connection: Connection, statements: Immediate | None = None):
        # A unit of work's way to the database (app/adapters/batch.py); else SQLAlchemy's.
        self.statements = statements or Immediate(connection)
        # id(object) -> (object, its mutable columns as loaded or last stored)
        self._known: dict[int, tuple[object, tuple[Any, ...]]] = {}
        # (business, reference) -> taken?, checked while loading an order to correct
        self._references_checked: dict[tuple[str, str], bool] = {}

    # --- loading -------------------------------------------------------------------------

    def lock(
        self,
        business: str,
        order_reference: str,
        history: History = False,
        correcting: Correcting | None = None,
    ) -> model.Order | None:
        """Take the order's row lock first, in its own statement, then load the aggregate.

        No write reads an invoice's earlier versions, so by default none is loaded: the cost
        of a write does not grow with the order's history. When `correcting` an invoice, the
        credit-note reference the correction will take is checked under the same lock, in
        the same round trip (see goodwill_reference_taken).
        """
        return self._one(business, order_reference, history, lock=True, correcting=correcting)

    def get(
        self, business: str, order_reference: str, history: History = False
    ) -> model.Order | None:
        return self._one(business, order_reference, history, lock=False)

    def get_many(self, business: str, references: list[str]) -> list[model.Order]:
        """Orders with every invoice's whole history (for checking them all)."""
        return self._load(business, references, True, lock=False)

    def _one(
        self,
        business: str,
        order_reference: str,
        history: History,
        lock: bool,
        correcting: Correcting | None = None,
    ) -> model.Order | None:
        orders = self._load(business, order_reference, history, lock, correcting)
        return orders[0] if orders else None

    def _load(
        self,
        business: str,
        refs: str | list[str],
        history: History,
        lock: bool,
        correcting: Correcting | None = None,
    ) -> list[model.Order]:
        many = isinstance(refs, list)
        params: dict[str, Any] = {"business": business, "refs": refs}
        queries: list[Query] = [
            (_orders_query(many, lock), params),
            (_positions_query(many), params),
            (_invoices_query(many), params),
        ]
        if correcting is not None:
            check: dict[str, Any] = {
                "business": business,
                "invoice": correcting.invoice_reference,
                "given": correcting.credit_note_reference,
                "prefix": model.credit_note_prefix(correcting.invoice_reference),
            }
            queries.append((_correction_reference_query(), check))
        results = self._statements_for(many).rows(*queries)
        if correcting is not None:
            for reference, taken in results[3]:
                self._references_checked[business, reference] = bool(taken)
        orders = {order.order_reference: order for order in map(self._bare_order, results[0])}
        if not orders:
            return []
        for row in results[1]:
            orders[row[-1]].positions.append(self._remember(POSITION, POSITION.build(row[:-1])))
        split = len(INVOICE.attributes)
        invoices: dict[str, model.Invoice] = {}
        for row in results[2]:
            invoice = self._remember(INVOICE, INVOICE.build(row[:split]))
            invoice.versions = [self._remember(VERSION, VERSION.build(row[split:-1]))]
            invoice.credit_notes = []
            orders[row[-1]].invoices.append(invoice)
            invoices[invoice.invoice_reference] = invoice
        if history is True:
            self._load_history(business, invoices, list(invoices))
        elif history:
            invoice = invoices.get(history)
            # An invoice at version 1 was never corrected: its only version is loaded, and
            # it has no credit note (every correction adds exactly one credit note and one
            # version, `accounting verify` checks it).
            if invoice is not None and invoice.current_version > 1:
                self._load_history(business, invoices, history)
        return list(orders.values())

    def _load_history(
        self, business: str, invoices: dict[str, model.Invoice], references: str | list[str]
    ) -> None:
        """The versions and credit notes of one invoice, or of a list of them."""
        many = isinstance(references, list)
        params = {"business": business, "invoices": references}
        versions, notes = self._statements_for(many).rows(
            (_history_query(VERSION, "version", many), params),
            (_history_query(CREDIT_NOTE, "nullifies_version", many), params),
        )
        for reference in references if isinstance(references, list) else [references]:
            invoices[reference].versions = []
        for row in versions:
            version = self._remember(VERSION, VERSION.build(row[:-1]))
            invoices[row[-1]].versions.append(version)
        for row in notes:
            note = self._remember(CREDIT_NOTE, CREDIT_NOTE.build(row[:-1]))
            invoices[row[-1]].credit_notes.append(note)

    def _bare_order(self, row: Sequence[Any]) -> model.Order:
        """An order's row, without positions or invoices (yet)."""
        order: model.Order = self._remember(ORDER, ORDER.build(row))
        order.positions, order.invoices = [], []
        return order

    def _remember(self, mapping: mapper.Mapping, obj: Any) -> Any:
        self._known[id(obj)] = (obj, mapping.state(obj))
        return obj

    def _statements_for(self, many: bool) -> Immediate:
        """A list of references expands into the SQL, so it goes through SQLAlchemy."""
        return self.statements.immediate() if many else self.statements

    def _rows(self, query: Any, **params: Any) -> Sequence[Sequence[Any]]:
        return self.statements.rows((query, params))[0]

    def _value(self, table: Table, wanted: str, key: str, business: str, value: str) -> Any:
        """One column of the business's row whose `key` is `value`; None when there is none."""
        rows = self._rows(_lookup(table, wanted, key), business=business, key=value)
        return rows[0][0] if rows else None

    def lock_orders_owing_refunds(self, business: str, limit: int) -> list[model.Order]:
        """Lock up to `limit` orders holding a pending refund, skipping those another
        transaction holds; each is its row only (no positions, no invoices): a refund's
        payout changes nothing else of its order."""
        rows = self._rows(_owing_orders_query(), business=business, limit=limit)
        return [self._bare_order(row) for row in rows]

    def refunds_of(self, business: str, references: list[str]) -> dict[str, list[model.Refund]]:
        """The refunds of these orders, oldest first, to change under their orders' locks."""
        found: dict[str, list[model.Refund]] = {ref: [] for ref in references}
        if not references:
            return found
        query = (_refunds_query(True), {"business": business, "refs": references})
        for row in self.statements.immediate().rows(query)[0]:
            found[row[-1]].append(self._remember(REFUND, REFUND.build(row[:-1])))
        return found

    def refund_owner(self, business: str, refund_id: str) -> str | None:
        """The order a refund belongs to."""
        return self._value(schema.refunds, "order_reference", "refund_id", business, refund_id)

    # --- storing -------------------------------------------------------------------------

    def export_document(self, business: str, export_id: str) -> bytes | None:
        """A credit-transfer file as it was written."""
        document = self._value(schema.refund_exports, "document", "export_id", business, export_id)
        return None if document is None else bytes(document)

    def add_export(self, export: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """Record a credit-transfer file and the refund payouts it holds."""
        self.statements.insert(schema.refund_exports, [export])
        self.statements.insert(schema.refund_export_items, items)

    def add(self, order: model.Order, events: Sequence[OutboxEvent] = ()) -> None:
        """Record a new order (its positions, nothing invoiced yet)."""
        self.store(order, Effects(), events)

    def store(
        self,
        order: model.Order,
        effects: Effects,
        events: Sequence[OutboxEvent] = (),
        refunds: Sequence[model.Refund] = (),
    ) -> None:
        """Write what a business event changed and created: the aggregate's new and changed
        rows, the loaded refunds it changed, the documents, payments, refunds and journal
        entries in effects, and the events for the outbox (in the order told). On PostgreSQL
        the rows go with the COMMIT (app/adapters/batch.py)."""
        changes = mapper.Changes()
        loaded_refunds = ((REFUND, r, mapper.order_keys(order)) for r in refunds)
        for mapping, obj, keys in (*mapper.aggregate(order), *loaded_refunds):
            known = self._known.get(id(obj))
            if known is None:
                changes.insert(mapping, obj, keys)
                self._remember(mapping, obj)
            else:
                self._known[id(obj)] = (obj, changes.update(mapping, obj, keys, known[1]))
        changes.documents(order, effects.created)
        if events:
            now = datetime.now(UTC)
            changes.inserts.setdefault(schema.outbox, []).extend(
                {
                    "business_code": order.business_code,
                    "event_id": str(uuid.uuid4()),
                    "order_reference": order.order_reference,
                    "topic": event.topic,
                    "payload": event.payload,
                    "created_at": now,
                }
                for event in events
            )
        for table, rows in changes.in_table_order():
            self.statements.insert(table, rows)
        for (table, columns), rows in changes.updates.items():
            self.statements.update(mapper.update_statement(table, columns), rows)

    def exists(self, business: str, order_reference: str) -> bool:
        found = self._value(
            schema.orders, "order_reference", "order_reference", business, order_reference
        )
        return found is not None

    def invoice_owner(self, business: str, invoice_reference: str) -> str | None:
        """The order an invoice reference belongs to, if it is taken in this business."""
        return self._value(
            schema.invoices, "order_reference", "invoice_reference", business, invoice_reference
        )

    def return_reference_taken(self, business: str, reference: str) -> bool:
        """Whether a return of this business already has the reference."""
        return bool(self._rows(_return_reference_query(), business=business, key=reference))

    def goodwill_reference_taken(self, business: str, reference: str) -> bool:
        """Goodwills and correction credit notes (automatic goodwills) share references.

        The answer for a correction's credit note was read with its order, under the order's
        lock (`lock(correcting=...)`); it is used once, for the write that follows.
        """
        checked = self._references_checked.pop((business, reference), None)
        if checked is not None:
            return checked
        rows = self._rows(_goodwill_reference_query(), business=business, reference=reference)
        return bool(rows[0][0])

    def refunds(self, business: str, order_reference: str) -> list[model.Refund]:
        rows = self._rows(_refunds_query(False), business=business, refs=order_reference)
        return [REFUND.build(row[:-1]) for row in rows]

    def journal(self, business: str, order_reference: str) -> list[ledger.JournalEntry]:
        return self.journals(business, order_reference)[order_reference]

    def journals(
        self, business: str, references: str | list[str]
    ) -> dict[str, list[ledger.JournalEntry]]:
        """The journal entries of one order or of a list of them, with their lines, by order
        (see _journal_queries for their order)."""
        many = isinstance(references, list)
        params = {"business": business, "refs": references}
        entry_rows, line_rows = self._statements_for(many).rows(
            *((query, params) for query in _journal_queries(many))
        )
        refs = references if isinstance(references, list) else [references]
        found: dict[str, list[ledger.JournalEntry]] = {ref: [] for ref in refs}
        by_id: dict[str, ledger.JournalEntry] = {}
        for row in entry_rows:
            entry = ENTRY.build(row)
            entry.lines = []
            by_id[entry.entry_id] = entry
            found[entry.order_reference].append(entry)
        for row in line_rows:
            by_id[row[-1]].lines.append(LINE.build(row[:-1]))
        return found

    def tax_report(self, business: str, start: date, end: date) -> list[dict[str, Any]]:
        """Net and VAT booked per declaration country, VAT type and rate in the period."""
        rows = self._rows(_tax_report_query(), business=business, start=start, end=end)
        return [
            {
                "currency": r[0],
                "country": r[1],
                "vat_type": r[2],
                "rate_bp": r[3],
                "net": int(r[4]),
                "vat": int(r[5]),
            }
            for r in rows
        ]
