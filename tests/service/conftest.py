"""The service layer over an in-memory unit of work: the use cases' own logic (idempotency,
the order lock first, commit or roll back, what is stored), fast and without a database.

As cosmicpython's fakes: a repository that keeps aggregates in a dict and hands out copies, so
a use case that does not commit leaves nothing behind, exactly as a rolled-back transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import pytest

from app.adapters.idempotency import StoredAnswer
from app.adapters.repository import Correcting, OutboxEvent
from app.domain import ledger, model
from app.service.orders import OrderService

T = TypeVar("T")


@dataclass
class Books:
    """What the fake database holds: orders, the documents and events of their changes."""

    orders: dict[tuple[str, str], model.Order] = field(default_factory=dict)
    created: dict[tuple[str, str], list[object]] = field(default_factory=dict)
    events: list[OutboxEvent] = field(default_factory=list)
    answers: dict[tuple[str, str], StoredAnswer] = field(default_factory=dict)
    commits: int = 0


class FakeOrders:
    """The order repository's interface over Books; every load is a copy."""

    def __init__(self, books: Books, pending: Books):
        self.books, self.pending = books, pending

    def lock(
        self,
        business: str,
        order_reference: str,
        history: Any = False,
        correcting: Correcting | None = None,
    ) -> model.Order | None:
        return copy.deepcopy(self.books.orders.get((business, order_reference)))

    def get(self, business: str, order_reference: str, history: Any = False) -> model.Order | None:
        return self.lock(business, order_reference)

    def exists(self, business: str, order_reference: str) -> bool:
        return (business, order_reference) in self.books.orders

    def invoice_owner(self, business: str, invoice_reference: str) -> str | None:
        return next(
            (
                ref
                for (code, ref), order in self.books.orders.items()
                if code == business and order.invoice(invoice_reference) is not None
            ),
            None,
        )

    def _documents(self, business: str) -> Iterator[object]:
        for (code, _), created in self.books.created.items():
            if code == business:
                yield from created

    def return_reference_taken(self, business: str, reference: str) -> bool:
        return any(
            isinstance(d, model.Credit) and d.reference == reference and d.kind == model.RETURN
            for d in self._documents(business)
        )

    def goodwill_reference_taken(self, business: str, reference: str) -> bool:
        return any(
            (isinstance(d, model.Credit) and d.kind == model.GOODWILL and d.reference == reference)
            for d in self._documents(business)
        ) or any(
            cn.reference == reference
            for (code, _), order in self.books.orders.items()
            if code == business
            for invoice in order.invoices
            for cn in invoice.credit_notes
        )

    def add(self, order: model.Order, events: Sequence[OutboxEvent] = ()) -> None:
        self.store(order, model.Effects(), events)

    def store(
        self, order: model.Order, effects: model.Effects, events: Sequence[OutboxEvent] = ()
    ) -> None:
        key = (order.business_code, order.order_reference)
        self.pending.orders[key] = copy.deepcopy(order)
        self.pending.created.setdefault(key, []).extend(copy.deepcopy(effects.created))
        self.pending.events.extend(events)

    def refunds(self, business: str, order_reference: str) -> list[model.Refund]:
        created = self.books.created.get((business, order_reference), [])
        return [d for d in created if isinstance(d, model.Refund)]

    def journal(self, business: str, order_reference: str) -> list[ledger.JournalEntry]:
        created = self.books.created.get((business, order_reference), [])
        return [d for d in created if isinstance(d, ledger.JournalEntry)]

    def tax_report(self, business: str, start: date, end: date) -> list[dict[str, Any]]:
        raise NotImplementedError("the tax report is a query: the integration tier tests it")


class FakeIdempotency:
    def __init__(self, books: Books, pending: Books):
        self.books, self.pending = books, pending

    def try_guard(self, business: str, key: str) -> bool:
        return True  # one use case at a time here: nothing else holds a key

    def find(self, business: str, key: str) -> StoredAnswer | None:
        return self.books.answers.get((business, key))

    def save(
        self, business: str, key: str, request_hash: str, body: dict[str, Any], version: int | None
    ) -> None:
        self.pending.answers[(business, key)] = StoredAnswer(request_hash, body, version)


class FakeUnitOfWork:
    """Changes go to `pending` and reach the books only on commit."""

    def __init__(self, books: Books):
        self.books, self.pending = books, Books()
        self.orders = FakeOrders(books, self.pending)
        self.idempotency = FakeIdempotency(books, self.pending)

    def commit(self) -> None:
        self.books.orders.update(self.pending.orders)
        for key, created in self.pending.created.items():
            self.books.created.setdefault(key, []).extend(created)
        self.books.events.extend(self.pending.events)
        self.books.answers.update(self.pending.answers)
        self.books.commits += 1
        self.pending.__init__()  # type: ignore[misc]

    def rollback(self) -> None:
        self.pending.__init__()  # type: ignore[misc]


class FakeOrderService(OrderService):
    """The real use cases, each in a fresh fake unit of work over shared books."""

    def __init__(self, books: Books):
        self.books = books

    def run(self, use_case: Callable[[Any], T], snapshot: bool = False) -> T:
        return use_case(FakeUnitOfWork(self.books))


@pytest.fixture
def books() -> Books:
    return Books()


@pytest.fixture
def service(books: Books) -> FakeOrderService:
    return FakeOrderService(books)
