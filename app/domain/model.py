"""The order aggregate: positions, invoices with versions, credits, payments and refunds.

Every method that changes an order checks its rules first, then changes state and returns the
documents and journal entries it created. The service layer persists them in one transaction,
after it has taken the order's lock.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.domain import ledger
from app.domain.bank_account import BankAccount
from app.domain.errors import FieldError, RuleViolation, StateConflict, field_errors
from app.domain.money import MAX_ORDER_GROSS, bp_to_rate, to_major
from app.domain.tax import (
    TaxAmount,
    TaxKey,
    line_gross,
    split_by_rate,
    split_cumulatively,
    unit_vat_disagrees,
)
from app.domain.vatid import is_valid_eu_vat_id

OPEN, INVOICED, CANCELLED = "open", "invoiced", "cancelled"
ISSUED, NULLIFIED = "issued", "nullified"
RETURN, GOODWILL = "return", "goodwill"
PENDING, IN_PAYOUT, COMPLETED, FAILED = "pending", "in_payout", "completed", "failed"
REFUND_STATUSES = (PENDING, IN_PAYOUT, COMPLETED, FAILED)
BANK_TRANSFER, ORIGINAL_METHOD = "bank-transfer", "original-method"
# The journal entries of a refund's payout, each with the refund's id as its reference.
PAYOUT_KINDS = {IN_PAYOUT: "refund-payout", COMPLETED: "refund-paid", FAILED: "refund-failed"}
# Position types whose price may be below zero: what they take off the order.
NEGATIVE_PRICE_TYPES = ("DISCOUNT", "DISCOUNT_FOR_SUBSCRIPTION_ORDER")


@dataclass(frozen=True)
class ItemSpec:
    """A position as the client describes it (amounts already in minor units)."""

    item_ref: int
    quantity_milli: int
    unit_gross: int
    rate_bp: int
    vat_type: str
    position_type: str
    product_id: str | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InvoiceSpec:
    """The invoice document fields a client sends."""

    invoice_reference: str
    invoice_date: date
    due_date: date | None
    item_refs: tuple[int, ...]
    fields: dict[str, Any] = field(default_factory=dict)  # dispatchDate, carrier, ... as JSON


@dataclass(frozen=True)
class OrderHeader:
    """An order's header: what the rules read of it, typed, and the whole of it as sent, which
    the order keeps (for its answers and documents) but never reads."""

    declaration_country: str
    order_date: date | None
    as_sent: dict[str, Any] = field(default_factory=dict)  # JSON-ready


@dataclass(frozen=True)
class CreditItem:
    """A returned or goodwilled position as the client sends it, amounts in minor units.

    A return credits the position's booked figures; a goodwill credits quantity x unit_gross
    at the position's VAT type and rate. The other figures, when sent, must agree with the
    position: they are checked, never booked.
    """

    item_ref: int
    quantity_milli: int
    unit_gross: int | None = None
    unit_vat: int | None = None
    rate_bp: int | None = None
    vat_type: str | None = None


@dataclass(frozen=True)
class OrderIdentity:
    """What a correction restates about the order itself: checked, never changed."""

    order_reference: str
    currency: str
    customer_number: str | None = None


@dataclass
class Effects:
    """What one business event created: its document reference, new rows, the refund if any."""

    reference: str = ""
    created: list[object] = field(default_factory=list)
    refund: Refund | None = None

    def add(self, *items: object) -> None:
        self.created.extend(items)


def taxes_to_json(taxes: list[TaxAmount]) -> list[dict[str, Any]]:
    return [
        {
            "country": t.key.country,
            "vat_type": t.key.vat_type,
            "rate_bp": t.key.rate_bp,
            "net": t.net,
            "vat": t.vat,
        }
        for t in taxes
    ]


def taxes_from_json(rows: list[dict[str, Any]]) -> list[TaxAmount]:
    return [
        TaxAmount(TaxKey(r["country"], r["vat_type"], r["rate_bp"]), r["net"], r["vat"])
        for r in rows
    ]


class Position:
    """One line of an order; in exactly one state: open, invoiced or cancelled."""

    def __init__(self, spec: ItemSpec):
        self.item_ref = spec.item_ref
        self.state = OPEN
        self.invoice_reference: str | None = None
        self.returned_milli = 0
        self.goodwill_amount = 0
        self.apply(spec)

    def apply(self, spec: ItemSpec) -> None:
        """Take the client's description of this position as its current reading."""
        self.product_id = spec.product_id
        self.description = spec.description
        self.quantity_milli = spec.quantity_milli
        self.unit_gross = spec.unit_gross
        self.rate_bp = spec.rate_bp
        self.vat_type = spec.vat_type
        self.position_type = spec.position_type
        self.extra = dict(spec.extra)

    def spec(self) -> ItemSpec:
        return ItemSpec(
            self.item_ref,
            self.quantity_milli,
            self.unit_gross,
            self.rate_bp,
            self.vat_type,
            self.position_type,
            self.product_id,
            self.description,
            dict(self.extra or {}),
        )

    @property
    def gross(self) -> int:
        return line_gross(self.unit_gross, self.quantity_milli)

    @property
    def remaining(self) -> int:
        """Gross not yet credited by returns or goodwills."""
        returned = line_gross(self.unit_gross, self.returned_milli)
        return self.gross - returned - self.goodwill_amount

    @property
    def credited(self) -> int:
        """Gross the returns and goodwills credited on this position so far.

        A return never credits more than is left (`return_items`), so once `remaining` has
        passed zero the whole gross is credited.
        """
        left = self.remaining
        left = max(left, 0) if self.gross >= 0 else min(left, 0)
        return self.gross - left

    def document_line(self) -> dict[str, Any]:
        """The line an issued document carries for this position (immutable once issued)."""
        return {
            "item_ref": self.item_ref,
            "product_id": self.product_id,
            "description": self.description,
            "quantity_milli": self.quantity_milli,
            "unit_gross": self.unit_gross,
            "rate_bp": self.rate_bp,
            "vat_type": self.vat_type,
            "position_type": self.position_type,
            "gross": self.gross,
        }


class _Taxed:
    taxes: list[dict[str, Any]]  # as taxes_to_json stores them

    def tax_amounts(self) -> list[TaxAmount]:
        return taxes_from_json(self.taxes)


def _totals(taxes: list[TaxAmount]) -> tuple[int, int, int]:
    net = sum(t.net for t in taxes)
    vat = sum(t.vat for t in taxes)
    return net + vat, net, vat


class InvoiceVersion(_Taxed):
    """One issued version of an invoice: never modified, except for being nullified."""

    def __init__(
        self,
        version: int,
        spec: InvoiceSpec,
        header: dict[str, Any],
        country: str,
        lines: list[dict[str, Any]],
    ):
        taxes = split_by_rate(
            country, ((ln["vat_type"], ln["rate_bp"], ln["gross"]) for ln in lines)
        )
        self.version = version
        self.status = ISSUED
        self.invoice_date = spec.invoice_date
        self.due_date = spec.due_date
        self.fields = dict(spec.fields)
        self.header = header
        self.declaration_country = country
        self.lines = lines
        self.taxes = taxes_to_json(taxes)
        self.gross, self.net, self.vat = _totals(taxes)
        self.nullified_by: str | None = None

    @property
    def item_refs(self) -> list[int]:
        return [line["item_ref"] for line in self.lines]

    def content(self) -> tuple[Any, ...]:
        """What makes two versions the same document (for idempotent corrections)."""
        return (
            self.invoice_date,
            self.due_date,
            self.fields,
            self.header,
            self.declaration_country,
            self.lines,
        )


class CreditNote(_Taxed):
    """Nullifies one invoice version line by line (the automatic goodwill of a correction)."""

    def __init__(self, reference: str, nullified: InvoiceVersion, document_date: date):
        self.reference = reference
        self.nullifies_version = nullified.version
        self.document_date = document_date
        self.lines = nullified.lines
        self.taxes = nullified.taxes
        self.gross, self.net, self.vat = nullified.gross, nullified.net, nullified.vat


class Invoice:
    """An invoice reference with its history of versions and credit notes.

    A loaded invoice holds at least its current version; its earlier versions and credit
    notes only when the use case reads them (a write never does). A credit note's reference is
    therefore also checked against the database before it is stored.
    """

    def __init__(self, invoice_reference: str, first: InvoiceVersion):
        self.invoice_reference = invoice_reference
        self.current_version = first.version
        self.versions = [first]
        self.credit_notes: list[CreditNote] = []

    @property
    def current(self) -> InvoiceVersion:
        return next(v for v in self.versions if v.version == self.current_version)


class Credit(_Taxed):
    """A return or a goodwill: credits gross on invoiced positions.

    Its taxes are worked out by the order (`Order._credit_taxes`): they depend on what was
    credited before.
    """

    def __init__(
        self,
        kind: str,
        reference: str,
        reason: str | None,
        document_date: date,
        lines: list[dict[str, Any]],
        taxes: list[TaxAmount],
        invoice_reference: str | None = None,
        credit_date: date | None = None,
    ):
        self.kind = kind
        self.reference = reference
        self.reason = reason
        self.document_date = document_date
        self.invoice_reference = invoice_reference
        self.credit_date = credit_date
        self.lines = lines
        self.taxes = taxes_to_json(taxes)
        self.gross, self.net, self.vat = _totals(taxes)


@dataclass(eq=False)
class Cancellation:
    """Whole open positions that will never be invoiced."""

    reference: str
    reason: str | None
    item_refs: list[int]
    document_date: date
    invoice_reference: str | None = None


class Payment:
    """Money received for an order."""

    def __init__(self, amount: int, provider: str | None, reference: str | None, when: date):
        self.payment_id = str(uuid.uuid4())
        self.amount = amount
        self.provider = provider
        self.reference = reference
        self.payment_date = when


class Refund:
    """Money owed back to the customer, paid out later: pending, then in payout, then
    completed or failed. A failed refund is owed again and may be retried (pending anew);
    a completed one is final, so a refund is paid at most once.

    A refund with bank details goes by credit transfer to them; one without, to the original
    payment method through a payment provider.
    """

    def __init__(self, amount: int, cause: str, bank_details: BankAccount | None):
        self.refund_id = str(uuid.uuid4())
        self.amount = amount
        self.status = PENDING
        self.cause = cause
        self.bank_details = bank_details
        self.attempt = 0  # payouts started
        self.payout_reference: str | None = None  # the export or the provider's reference
        self.failure_reason: str | None = None

    @property
    def method(self) -> str:
        return BANK_TRANSFER if self.bank_details else ORIGINAL_METHOD

    @property
    def paid_from(self) -> str:
        return ledger.BANK if self.method == BANK_TRANSFER else ledger.PAYMENT_CLEARING

    def _require(self, status: str, doing: str) -> None:
        if self.status != status:
            raise StateConflict(
                f"refund {self.refund_id} is {self.status}; it must be {status} to be {doing}",
                [FieldError("refund", f"refund-not-{status.replace('_', '-')}", self.status)],
                code=f"refund-not-{status.replace('_', '-')}",
            )

    def start_payout(self, reference: str) -> list[ledger.JournalLine | None]:
        """Hand the refund over to a bank file or a provider."""
        self._require(PENDING, "paid out")
        self.status, self.payout_reference, self.failure_reason = IN_PAYOUT, reference, None
        self.attempt += 1
        return ledger.payout_lines(self.amount)

    def complete(self) -> list[ledger.JournalLine | None]:
        """The bank or provider confirmed the payout: final."""
        self._require(IN_PAYOUT, "confirmed")
        self.status = COMPLETED
        return ledger.payout_completed_lines(self.amount, self.paid_from)

    def fail(self, reason: str) -> list[ledger.JournalLine | None]:
        """The payout came back: the refund is owed again."""
        self._require(IN_PAYOUT, "failed")
        self.status, self.failure_reason = FAILED, reason
        return ledger.payout_failed_lines(self.amount)

    def retry(self, bank_details: BankAccount | None) -> None:
        """Owe a failed refund anew, to new bank details if given; it books nothing (the
        failure already put the amount back on refunds payable)."""
        self._require(FAILED, "retried")
        self.status = PENDING
        if bank_details is not None:
            self.bank_details = bank_details


@dataclass(frozen=True)
class CorrectionResult:
    """What a correction did (or, on a dry run, would do)."""

    invoice_reference: str
    changed: bool
    before: InvoiceVersion
    after: InvoiceVersion
    credit_note: CreditNote | None
    refund: Refund | None


def _positions_error(code: str, detail: str, field_name: str, refs: list[int]) -> StateConflict:
    errors = [FieldError(field_name, code, f"position {ref}") for ref in refs]
    return StateConflict(f"{detail}: {', '.join(map(str, refs))}", errors, code=code)


def credit_note_prefix(invoice_reference: str) -> str:
    """A correction's credit note is by default this, then the nullified version's number."""
    return f"CN-{invoice_reference}-"


def position_amount_errors(spec: ItemSpec, currency: str, path: str) -> list[FieldError]:
    """A price below zero only on a line that takes something off the order (a discount),
    and a line's gross within what an order may hold."""
    if spec.unit_gross < 0 and spec.position_type not in NEGATIVE_PRICE_TYPES:
        allowed = " and ".join(NEGATIVE_PRICE_TYPES)
        message = f"only {allowed} lines may have a price below zero"
        return [FieldError(f"{path}.unit_gross", "negative-price", message)]
    if abs(line_gross(spec.unit_gross, spec.quantity_milli)) > MAX_ORDER_GROSS:
        limit = to_major(MAX_ORDER_GROSS, currency)
        message = f"price x quantity may be at most {limit} {currency}"
        return [FieldError(f"{path}.unit_gross", "amount-too-large", message)]
    return []


def order_amount_errors(items: list[ItemSpec], currency: str, path: str) -> list[FieldError]:
    """The gross of all positions, added without their sign, within what an order may hold."""
    total = sum(abs(line_gross(s.unit_gross, s.quantity_milli)) for s in items)
    if total <= MAX_ORDER_GROSS:
        return []
    limit = to_major(MAX_ORDER_GROSS, currency)
    message = f"the positions' gross, discounts counted as positive, may be at most {limit}"
    return [FieldError(path, "amount-too-large", f"{message} {currency}")]


def invoice_date_errors(
    spec: InvoiceSpec, order_date: date | None, prefix: str
) -> list[FieldError]:
    """An invoice is dated on or after its order, and due on or after its own date."""
    errors = []
    if order_date is not None and spec.invoice_date < order_date:
        errors.append(
            FieldError(
                f"{prefix}invoice_date",
                "invoice-date-before-order-date",
                f"the order is dated {order_date.isoformat()}",
            )
        )
    if spec.due_date is not None and spec.due_date < spec.invoice_date:
        errors.append(
            FieldError(
                f"{prefix}due_date",
                "due-date-before-invoice-date",
                f"the invoice is dated {spec.invoice_date.isoformat()}",
            )
        )
    return errors


class Order:
    """The aggregate: every rule about positions, documents and money of one order."""

    def __init__(
        self,
        business_code: str,
        order_reference: str,
        customer_number: str,
        currency: str,
        header: OrderHeader,
        items: list[ItemSpec],
    ):
        self.business_code = business_code
        self.order_reference = order_reference
        self.customer_number = customer_number
        self.currency = currency
        self._restate(header)
        self.version = 1
        self.paid_total = 0
        self.refunded_total = 0
        self.credited_total = 0
        self.refund_paid_total = 0
        self.positions = [Position(spec) for spec in items]
        self.invoices: list[Invoice] = []
        if self.gross_total < 0:
            raise field_errors(self._negative_total("items", "the order", self.gross_total))

    # --- reading -------------------------------------------------------------------------

    def restated_header(self) -> OrderHeader:
        """The header as a correction restating the order unchanged would send it."""
        return OrderHeader(self.declaration_country, self.order_date, dict(self.header))

    def position(self, item_ref: int) -> Position | None:
        return next((p for p in self.positions if p.item_ref == item_ref), None)

    def invoice(self, invoice_reference: str) -> Invoice | None:
        return next((i for i in self.invoices if i.invoice_reference == invoice_reference), None)

    @property
    def gross_total(self) -> int:
        """Positions not cancelled, at their current prices."""
        return sum(p.gross for p in self.positions if p.state != CANCELLED)

    @property
    def invoiced_total(self) -> int:
        return sum(i.current.gross for i in self.invoices)

    @property
    def cancelled_total(self) -> int:
        return sum(p.gross for p in self.positions if p.state == CANCELLED)

    @property
    def balance(self) -> int:
        """What the customer still owes (never negative: overpayments are refunded at once)."""
        return self.gross_total - self.credited_total - self.paid_total + self.refunded_total

    # --- helpers -------------------------------------------------------------------------

    def _entry(
        self, kind: str, reference: str, when: date, lines: list[Any]
    ) -> ledger.JournalEntry:
        return ledger.JournalEntry(
            self.business_code, self.order_reference, kind, reference, when, lines
        )

    def _known_positions(
        self, refs: list[int], state: str, code: str, detail: str
    ) -> list[Position]:
        """The positions these refs name, all known and all in this state, else refused:
        unknown ones first, then those in another state."""
        missing = [
            FieldError(
                f"items[{i}].item_ref",
                "unknown-position",
                f"order {self.order_reference} has no position {ref}",
            )
            for i, ref in enumerate(refs)
            if self.position(ref) is None
        ]
        _refuse(*missing)
        positions = [p for ref in refs if (p := self.position(ref)) is not None]
        not_in_state = [p.item_ref for p in positions if p.state != state]
        if not_in_state:
            raise _positions_error(code, detail, "items", not_in_state)
        return positions

    def _settle_overpayment(
        self, cause: str, bank_details: BankAccount | None, effects: Effects, when: date
    ) -> None:
        """Refund whatever was paid beyond what the order is now worth, exactly once."""
        overpaid = -self.balance
        refundable = self.paid_total - self.refunded_total
        amount = min(overpaid, refundable)
        if amount <= 0:
            return
        refund = Refund(amount, cause, bank_details)
        self.refunded_total += amount
        effects.refund = refund
        effects.add(
            refund, self._entry("refund", refund.refund_id, when, ledger.refund_lines(amount))
        )

    def _restate(self, header: OrderHeader) -> None:
        """Take the header as created or as a correction restates it."""
        self.header = dict(header.as_sent)
        self.declaration_country = header.declaration_country
        self.order_date = header.order_date

    def _touch(self) -> None:
        self.version += 1

    def _negative_total(self, field_name: str, what: str, gross: int) -> FieldError:
        """Discounts may reduce an order or an invoice to nothing, never below."""
        worth = to_major(gross, self.currency)
        return FieldError(field_name, "negative-total", f"{what} would be worth {worth}")

    # --- use cases -----------------------------------------------------------------------

    def create_invoice(self, spec: InvoiceSpec) -> tuple[Invoice, Effects]:
        """Invoice whole open positions, each at most once."""
        if self.invoice(spec.invoice_reference) is not None:
            raise StateConflict(
                f"invoice {spec.invoice_reference} already exists", code="invoice-exists"
            )
        _refuse(*invoice_date_errors(spec, self.order_date, ""))
        positions = self._known_positions(
            list(spec.item_refs),
            OPEN,
            "position-not-open",
            "positions already invoiced or cancelled",
        )
        gross = sum(p.gross for p in positions)
        if gross < 0:
            raise field_errors(self._negative_total("items", "the invoice", gross))
        for p in positions:
            p.state = INVOICED
            p.invoice_reference = spec.invoice_reference
        version = InvoiceVersion(
            1,
            spec,
            dict(self.header),
            self.declaration_country,
            [p.document_line() for p in positions],
        )
        invoice = Invoice(spec.invoice_reference, version)
        self.invoices.append(invoice)
        self._touch()
        effects = Effects(spec.invoice_reference)
        effects.add(
            self._entry(
                "invoice",
                spec.invoice_reference,
                spec.invoice_date,
                ledger.sale_lines(version.tax_amounts()),
            )
        )
        return invoice, effects

    def cancel(
        self,
        reference: str,
        reason: str | None,
        item_refs: list[int],
        when: date,
        bank_details: BankAccount | None,
        invoice_reference: str | None = None,
    ) -> Effects:
        """Cancel whole open positions; refund if more was paid than the order is now worth."""
        positions = self._known_positions(
            item_refs, OPEN, "position-not-open", "only open positions can be cancelled"
        )
        left = self.gross_total - sum(p.gross for p in positions)
        if left < 0:
            raise field_errors(self._negative_total("items", "the order", left))
        for p in positions:
            p.state = CANCELLED
        effects = Effects(reference)
        effects.add(Cancellation(reference, reason, item_refs, when, invoice_reference))
        self._settle_overpayment(f"cancellation {reference}", bank_details, effects, when)
        self._touch()
        return effects

    def _tax_group(self, position: Position) -> tuple[str, TaxKey]:
        """The invoice of an invoiced position and its tax key there."""
        reference = position.invoice_reference or ""
        invoice = self.invoice(reference)
        country = invoice.current.declaration_country if invoice else self.declaration_country
        return reference, TaxKey(country, position.vat_type, position.rate_bp)

    def _credited_before(self, positions: list[Position]) -> dict[tuple[str, TaxKey], int]:
        """Gross credited so far in each tax group of an invoice these positions are in."""
        before = dict.fromkeys((self._tax_group(p) for p in positions), 0)
        for p in self.positions:
            if p.state == INVOICED and (p.returned_milli or p.goodwill_amount):
                group = self._tax_group(p)
                if group in before:
                    before[group] += p.credited
        return before

    @staticmethod
    def _credit_taxes(
        before: dict[tuple[str, TaxKey], int], lines: list[tuple[tuple[str, TaxKey], int]]
    ) -> list[TaxAmount]:
        """A credit's net and VAT, split cumulatively per tax group of its invoices.

        A credit's VAT in a group is the VAT of everything credited in it so far less the VAT
        credited before: a group credited in full, by any mix of returns and goodwills, takes
        back exactly the VAT its invoice booked, not a cent more or less.
        """
        grosses: dict[tuple[str, TaxKey], int] = {}
        for group, gross in lines:
            grosses[group] = grosses.get(group, 0) + gross
        return split_cumulatively(
            (group[1], before.get(group, 0), gross) for group, gross in grosses.items()
        )

    def _book_credit(self, credit: Credit, bank_details: BankAccount | None) -> Effects:
        self.credited_total += credit.gross
        effects = Effects(credit.reference)
        effects.add(
            credit,
            self._entry(
                credit.kind,
                credit.reference,
                credit.document_date,
                ledger.sale_lines(credit.tax_amounts(), sign=-1),
            ),
        )
        self._settle_overpayment(
            f"{credit.kind} {credit.reference}", bank_details, effects, credit.document_date
        )
        self._touch()
        return effects

    def _positions_to_credit(
        self, items: list[CreditItem], invoice_reference: str | None, price_is_the_positions: bool
    ) -> list[Position]:
        """The invoiced positions a return or goodwill names. What it names besides quantities
        must agree with them as invoiced: their invoice, VAT type and rate, unit VAT and (for
        a return) price."""
        positions = self._known_positions(
            [item.item_ref for item in items],
            INVOICED,
            "position-not-invoiced",
            "only invoiced positions can be credited",
        )
        errors = []
        if invoice_reference is not None and self.invoice(invoice_reference) is None:
            errors.append(
                FieldError(
                    "invoice_reference",
                    "unknown-invoice",
                    f"order {self.order_reference} has no invoice {invoice_reference}",
                )
            )
            invoice_reference = None
        for i, (p, item) in enumerate(zip(positions, items, strict=True)):
            errors.extend(
                self._credit_item_errors(
                    f"items[{i}]", p, item, invoice_reference, price_is_the_positions
                )
            )
        _refuse(*errors)
        return positions

    def _credit_item_errors(
        self,
        path: str,
        p: Position,
        item: CreditItem,
        invoice_reference: str | None,
        price_is_the_positions: bool,
    ) -> list[FieldError]:
        major = functools.partial(to_major, currency=self.currency)
        checks = [
            (
                invoice_reference is not None and p.invoice_reference != invoice_reference,
                "item_ref",
                "not-on-invoice",
                f"position {p.item_ref} is on invoice {p.invoice_reference}",
            ),
            (
                item.vat_type is not None and item.vat_type != p.vat_type,
                "vat_type",
                "vat-type-mismatch",
                f"position {p.item_ref} was invoiced as {p.vat_type}",
            ),
            (
                item.rate_bp is not None and item.rate_bp != p.rate_bp,
                "rate_bp",
                "vat-percent-mismatch",
                f"position {p.item_ref} was invoiced at {bp_to_rate(p.rate_bp)} %",
            ),
            (
                price_is_the_positions
                and item.unit_gross is not None
                and item.unit_gross != p.unit_gross,
                "unit_gross",
                "price-mismatch",
                f"position {p.item_ref} was invoiced at {major(p.unit_gross)}",
            ),
        ]
        errors = [
            FieldError(f"{path}.{name}", code, message)
            for failed, name, code, message in checks
            if failed
        ]
        if item.unit_vat is not None:
            unit_gross = p.unit_gross if item.unit_gross is None else item.unit_gross
            expected = unit_vat_disagrees(item.unit_vat, unit_gross, p.rate_bp)
            if expected is not None:
                message = f"sent {major(item.unit_vat)}, but price and rate give {major(expected)}"
                errors.append(FieldError(f"{path}.unit_vat", "vat-amount-mismatch", message))
        return errors

    def return_items(
        self,
        reference: str,
        reason: str | None,
        items: list[CreditItem],
        when: date,
        bank_details: BankAccount | None,
        invoice_reference: str | None = None,
    ) -> Effects:
        """Take back whole or partial quantities of invoiced positions at their booked figures."""
        positions = self._positions_to_credit(items, invoice_reference, price_is_the_positions=True)
        errors = [
            FieldError(
                f"items[{i}].quantity_milli",
                "return-exceeds-invoiced",
                f"position {p.item_ref}: {p.quantity_milli - p.returned_milli} left to return",
            )
            for i, (p, item) in enumerate(zip(positions, items, strict=True))
            if p.returned_milli + item.quantity_milli > p.quantity_milli
        ]
        if errors:
            raise StateConflict(
                "returned quantity would exceed invoiced quantity",
                errors,
                code="return-exceeds-invoiced",
            )
        credited_before = self._credited_before(positions)
        lines, credited = [], []
        for p, item in zip(positions, items, strict=True):
            qty = item.quantity_milli
            before = line_gross(p.unit_gross, p.returned_milli)
            after = line_gross(p.unit_gross, p.returned_milli + qty)
            share, left = after - before, p.remaining
            # A goodwill may already have credited part of the position: never credit twice,
            # and never credit back what is already gone (left may have passed zero). A
            # discount line's share is negative: limit it toward zero, not away from it.
            gross = max(0, min(share, left)) if share >= 0 else min(0, max(share, left))
            credited.append((self._tax_group(p), gross))
            p.returned_milli += qty
            lines.append({**p.document_line(), "quantity_milli": qty, "gross": gross})
        taxes = self._credit_taxes(credited_before, credited)
        credit = Credit(RETURN, reference, reason, when, lines, taxes, invoice_reference)
        return self._book_credit(credit, bank_details)

    def grant_goodwill(
        self,
        reference: str,
        reason: str | None,
        items: list[CreditItem],
        when: date,
        bank_details: BankAccount | None,
        invoice_reference: str | None = None,
        credit_date: date | None = None,
    ) -> Effects:
        """Credit quantity x unit price on invoiced positions at their VAT type and rate,
        never more than is left of each."""
        positions = self._positions_to_credit(
            items, invoice_reference, price_is_the_positions=False
        )
        amounts = [line_gross(item.unit_gross or 0, item.quantity_milli) for item in items]
        errors = [
            FieldError(
                f"items[{i}].unit_gross",
                "goodwill-exceeds-remaining",
                f"position {p.item_ref}: at most {to_major(p.remaining, self.currency)} left",
            )
            for i, (p, amount) in enumerate(zip(positions, amounts, strict=True))
            if amount > p.remaining
        ]
        if errors:
            raise StateConflict(
                "goodwill would exceed what is left of the position",
                errors,
                code="goodwill-exceeds-remaining",
            )
        credited_before = self._credited_before(positions)
        lines, credited = [], []
        for p, amount in zip(positions, amounts, strict=True):
            credited.append((self._tax_group(p), amount))
            p.goodwill_amount += amount
            lines.append({**p.document_line(), "gross": amount})
        taxes = self._credit_taxes(credited_before, credited)
        credit = Credit(
            GOODWILL, reference, reason, when, lines, taxes, invoice_reference, credit_date
        )
        return self._book_credit(credit, bank_details)

    def receive_payment(
        self, amount: int | None, provider: str | None, reference: str | None, when: date
    ) -> tuple[Payment, Effects]:
        """Book money received; without an amount, everything that is open."""
        open_amount = self.balance
        if amount is None:
            if open_amount <= 0:
                raise StateConflict("nothing is open on this order", code="nothing-to-pay")
            amount = open_amount
        if amount > open_amount:
            raise StateConflict(
                f"payment of {amount} exceeds the open balance of {open_amount}",
                [
                    FieldError(
                        "amount",
                        "payment-exceeds-balance",
                        f"at most {to_major(open_amount, self.currency)}",
                    )
                ],
                code="payment-exceeds-balance",
            )
        payment = Payment(amount, provider, reference, when)
        self.paid_total += amount
        self._touch()
        effects = Effects(payment.payment_id)
        effects.add(
            payment,
            self._entry(
                "payment", reference or payment.payment_id, when, ledger.payment_lines(amount)
            ),
        )
        return payment, effects

    # --- refund payouts ------------------------------------------------------------------

    def start_refund_payout(self, refund: Refund, reference: str, when: date) -> Effects:
        """Hand one of this order's refunds to a bank file or a provider (`reference`)."""
        return self._refund_step(refund, refund.start_payout(reference), IN_PAYOUT, when)

    def complete_refund(self, refund: Refund, when: date) -> Effects:
        """The payout of one of this order's refunds is confirmed: the money left."""
        effects = self._refund_step(refund, refund.complete(), COMPLETED, when)
        self.refund_paid_total += refund.amount
        return effects

    def fail_refund(self, refund: Refund, reason: str, when: date) -> Effects:
        """The payout of one of this order's refunds failed: it is owed again."""
        return self._refund_step(refund, refund.fail(reason), FAILED, when)

    def retry_refund(self, refund: Refund, bank_details: BankAccount | None) -> Effects:
        """A failed refund is pending again, to new bank details if given."""
        refund.retry(bank_details)
        self._touch()
        return Effects(refund.refund_id)

    def _refund_step(
        self, refund: Refund, lines: list[ledger.JournalLine | None], status: str, when: date
    ) -> Effects:
        self._touch()
        effects = Effects(refund.refund_id)
        effects.add(self._entry(PAYOUT_KINDS[status], refund.refund_id, when, lines))
        return effects

    # --- the correction ------------------------------------------------------------------

    def identity(self) -> OrderIdentity:
        """What identifies this order, as a correction restates it."""
        return OrderIdentity(self.order_reference, self.currency, self.customer_number)

    def correct_invoice(
        self,
        invoice_reference: str,
        spec: InvoiceSpec,
        header: OrderHeader,
        items: list[ItemSpec],
        identity: OrderIdentity,
        credit_note_reference: str | None,
    ) -> tuple[CorrectionResult, Effects]:
        """Nullify the current version with a credit note and issue the next one (SPEC 6)."""
        invoice = self.invoice(invoice_reference)
        if invoice is None:
            raise StateConflict("no such invoice", code="not-found")
        self._check_correction(invoice, spec, header, items, identity)
        current = invoice.current
        proposed = self._next_version(current, spec, header, items)
        self._check_corrected_totals(current, proposed)
        if proposed.content() == current.content():
            unchanged = CorrectionResult(invoice_reference, False, current, current, None, None)
            return unchanged, Effects()
        reference = (
            credit_note_reference or f"{credit_note_prefix(invoice_reference)}{current.version}"
        )
        if any(cn.reference == reference for cn in invoice.credit_notes):
            raise StateConflict(
                f"credit note {reference} already exists",
                [FieldError("credit_note_reference", "reference-taken", reference)],
                code="reference-taken",
            )
        return self._reissue(invoice, proposed, reference, header, items)

    def _next_version(
        self,
        current: InvoiceVersion,
        spec: InvoiceSpec,
        header: OrderHeader,
        items: list[ItemSpec],
    ) -> InvoiceVersion:
        """The version a correction would issue: the invoice's positions as restated."""
        restated = {s.item_ref: s for s in items}
        on_invoice = set(current.item_refs)
        lines = [
            Position(restated[p.item_ref]).document_line()
            for p in self.positions
            if p.item_ref in on_invoice
        ]
        return InvoiceVersion(
            current.version + 1, spec, dict(header.as_sent), header.declaration_country, lines
        )

    def _check_corrected_totals(self, current: InvoiceVersion, proposed: InvoiceVersion) -> None:
        """The invoice's gross never increases; neither the order nor the invoice goes below
        zero."""
        if proposed.gross > current.gross:
            raise field_errors(
                FieldError("invoice", "gross-price-increase", "the invoice total may not increase")
            )
        order_gross = self.gross_total - current.gross + proposed.gross
        _refuse(
            *(
                self._negative_total(name, what, gross)
                for name, what, gross in (
                    ("order.items", "the order", order_gross),
                    ("invoice.items", "the invoice", proposed.gross),
                )
                if gross < 0
            )
        )

    def _reissue(
        self,
        invoice: Invoice,
        proposed: InvoiceVersion,
        reference: str,
        header: OrderHeader,
        items: list[ItemSpec],
    ) -> tuple[CorrectionResult, Effects]:
        """Nullify the current version by credit note `reference` and issue `proposed`: the
        positions and header as restated, both documents booked, any overpayment refunded."""
        current, when = invoice.current, proposed.invoice_date
        credit_note = CreditNote(reference, current, when)
        current.status, current.nullified_by = NULLIFIED, reference
        invoice.credit_notes.append(credit_note)
        invoice.versions.append(proposed)
        invoice.current_version = proposed.version
        restated, on_invoice = {s.item_ref: s for s in items}, set(current.item_refs)
        for p in self.positions:
            if p.item_ref in on_invoice:
                p.apply(restated[p.item_ref])
        self._restate(header)
        effects = Effects()
        effects.add(
            self._entry(
                "credit-note", reference, when, ledger.sale_lines(current.tax_amounts(), sign=-1)
            ),
            self._entry(
                "invoice",
                invoice.invoice_reference,
                when,
                ledger.sale_lines(proposed.tax_amounts()),
            ),
        )
        cause = f"correction {invoice.invoice_reference} v{proposed.version}"
        self._settle_overpayment(cause, None, effects, when)
        self._touch()
        result = CorrectionResult(
            invoice.invoice_reference, True, current, proposed, credit_note, effects.refund
        )
        return result, effects

    def _check_correction(
        self,
        invoice: Invoice,
        spec: InvoiceSpec,
        header: OrderHeader,
        items: list[ItemSpec],
        identity: OrderIdentity,
    ) -> None:
        """Rules of SPEC section 6, in the order a client would want to hear them."""
        self._check_customer_unchanged(identity)
        _refuse(
            *self._reference_errors(invoice, spec, identity),
            *self._currency_errors(identity),
            *invoice_date_errors(spec, header.order_date or self.order_date, "invoice."),
        )
        self._check_settled()
        self._check_nothing_credited(invoice.current)
        _refuse(*self._position_set_errors(invoice.current, spec, items))
        _refuse(*self._restated_position_errors(invoice.current, items))

    def _check_customer_unchanged(self, identity: OrderIdentity) -> None:
        if identity.customer_number not in (None, self.customer_number):
            raise field_errors(
                FieldError(
                    "order.customer_number",
                    "customer-change-forbidden",
                    "the customer of an order cannot change",
                )
            )

    def _reference_errors(
        self, invoice: Invoice, spec: InvoiceSpec, identity: OrderIdentity
    ) -> list[FieldError]:
        """The restated order and invoice name the ones the correction addresses."""
        errors = []
        if identity.order_reference != self.order_reference:
            message = f"must equal the path: {self.order_reference}"
            errors.append(FieldError("order.order_reference", "reference-mismatch", message))
        if spec.invoice_reference != invoice.invoice_reference:
            message = f"must equal the path: {invoice.invoice_reference}"
            errors.append(FieldError("invoice.invoice_reference", "reference-mismatch", message))
        return errors

    def _currency_errors(self, identity: OrderIdentity) -> list[FieldError]:
        if identity.currency == self.currency:
            return []
        message = f"the order is in {self.currency}"
        return [FieldError("order.currency", "currency-change-forbidden", message)]

    def _check_settled(self) -> None:
        """An order is corrected once no position is open: invoiced or cancelled, each."""
        open_refs = [p.item_ref for p in self.positions if p.state == OPEN]
        if open_refs:
            raise _positions_error(
                "order-not-settled", "positions still open", "order.items", open_refs
            )

    def _check_nothing_credited(self, current: InvoiceVersion) -> None:
        """A return or goodwill credited the booked figures: those positions stay as booked."""
        on_invoice = [p for ref in current.item_refs if (p := self.position(ref)) is not None]
        returned = [p.item_ref for p in on_invoice if p.returned_milli]
        if returned:
            raise _positions_error(
                "position-returned", "positions were returned", "invoice.items", returned
            )
        goodwilled = [p.item_ref for p in on_invoice if p.goodwill_amount]
        if goodwilled:
            raise _positions_error(
                "position-goodwilled", "positions received a goodwill", "invoice.items", goodwilled
            )

    def _position_set_errors(
        self, current: InvoiceVersion, spec: InvoiceSpec, items: list[ItemSpec]
    ) -> list[FieldError]:
        """The invoice keeps its positions and the order restates every one of its own."""
        errors = []
        on_invoice = sorted(current.item_refs)
        if sorted(spec.item_refs) != on_invoice:
            message = f"the invoice holds positions {on_invoice}"
            errors.append(FieldError("invoice.items", "invoice-positions-changed", message))
        order_refs = sorted(p.item_ref for p in self.positions)
        if sorted(s.item_ref for s in items) != order_refs:
            message = f"the order holds positions {order_refs}"
            errors.append(FieldError("order.items", "order-positions-changed", message))
        return errors

    def _restated_position_errors(
        self, current: InvoiceVersion, items: list[ItemSpec]
    ) -> list[FieldError]:
        """Each restated position's first problem: its quantity changed, it is not on this
        invoice and changed at all, or its unit price rose."""
        positions = {p.item_ref: p for p in self.positions}
        on_invoice = set(current.item_refs)
        errors = []
        for i, sent in enumerate(items):
            position, path = positions[sent.item_ref], f"order.items[{i}]"
            if sent.quantity_milli != position.quantity_milli:
                message = "quantities cannot change"
                errors.append(
                    FieldError(f"{path}.quantity_milli", "quantity-change-forbidden", message)
                )
            elif sent.item_ref not in on_invoice and sent != position.spec():
                message = "positions not on this invoice must be sent unchanged"
                errors.append(FieldError(path, "position-change-forbidden", message))
            elif sent.unit_gross > position.unit_gross:
                message = f"may not rise above {position.unit_gross} minor units"
                errors.append(FieldError(f"{path}.unit_gross", "gross-price-increase", message))
        return errors


def _refuse(*errors: FieldError) -> None:
    """Every field problem at once, if there is any."""
    if errors:
        raise field_errors(*errors)


def check_reverse_charge(items: list[ItemSpec], vat_id: str | None, path: str) -> None:
    """Reverse charge needs a valid EU VAT ID of the customer."""
    if any(s.vat_type == "REVERSE" for s in items) and not is_valid_eu_vat_id(vat_id):
        raise RuleViolation(
            "reverse charge needs a valid EU VAT ID of the customer",
            [FieldError(path, "invalid-vat-id", "not a valid EU VAT identification number")],
            code="invalid-vat-id",
        )
