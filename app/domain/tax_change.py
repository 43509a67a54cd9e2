"""A VAT-rate change applied to one invoice: the restated order a correction needs (issue 6).

Batch tax corrections do not book anything themselves. For each invoice they restate the
order as a client of the PUT would, with the changed lines at the new rate, and hand that to
`Order.correct_invoice`: the same rules, documents and ledger bookings as any correction.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.domain.errors import FieldError, StateConflict, field_errors
from app.domain.model import (
    Invoice,
    InvoiceSpec,
    InvoiceVersion,
    ItemSpec,
    Order,
    OrderHeader,
    OrderIdentity,
)
from app.domain.money import RATE_SCALE, round_half_up
from app.domain.tax import VAT_TYPES, ZERO_RATE_TYPES

KEEP_GROSS, KEEP_NET = "keep-gross", "keep-net"
MODES = (KEEP_GROSS, KEEP_NET)
HUNDRED = 100 * RATE_SCALE  # 100 % in hundredths of a percent


@dataclass(frozen=True)
class TaxChange:
    """One rate of one VAT type, declared in one country, changed for invoices of a period.

    `keep-gross`: prices stay, net and VAT are split anew. `keep-net`: each unit's net stays
    and its gross follows the new rate, so only a decrease is possible (gross never rises).
    """

    country: str
    vat_type: str
    from_rate_bp: int
    to_rate_bp: int
    mode: str
    start: date
    end: date

    def check(self) -> None:
        """Refuse a change that could not be applied to any invoice, naming every field."""
        errors = []
        if not re.fullmatch(r"[A-Z]{2}", self.country):
            errors.append(FieldError("country", "invalid", "an ISO 3166 code, like DE"))
        if self.mode not in MODES:
            errors.append(FieldError("mode", "invalid", f"one of {', '.join(MODES)}"))
        if self.vat_type not in VAT_TYPES or self.vat_type in ZERO_RATE_TYPES:
            errors.append(
                FieldError("vat_type", "invalid", "a rate can change for NORMAL or REDUCED only")
            )
        for name, rate in (("from_rate_bp", self.from_rate_bp), ("to_rate_bp", self.to_rate_bp)):
            if not 0 <= rate <= HUNDRED:
                errors.append(FieldError(name, "invalid", "a rate between 0 and 100"))
        if self.start > self.end:
            errors.append(FieldError("end", "invalid", "must not be before the first day"))
        if self.from_rate_bp == self.to_rate_bp:
            errors.append(
                FieldError("to_rate_bp", "rate-unchanged", "must differ from the rate before")
            )
        elif self.mode == KEEP_NET and self.to_rate_bp > self.from_rate_bp:
            errors.append(
                FieldError(
                    "to_rate_bp",
                    "rate-increase-forbidden",
                    "keep-net would raise gross prices, and gross may never increase: "
                    "use keep-gross for a rate increase",
                )
            )
        if errors:
            raise field_errors(*errors)

    def matches(self, vat_type: str, rate_bp: int) -> bool:
        return vat_type == self.vat_type and rate_bp == self.from_rate_bp

    def applies_to(self, version: InvoiceVersion) -> bool:
        """Whether this version is one the change selects (a corrected one no longer is)."""
        return (
            version.declaration_country == self.country
            and self.start <= version.invoice_date <= self.end
            and any(self.matches(ln["vat_type"], ln["rate_bp"]) for ln in version.lines)
        )

    def unit_gross(self, unit_gross: int) -> int:
        """A changed line's new unit price, in minor units."""
        if self.mode == KEEP_GROSS:
            return unit_gross
        # The unit net is unit_gross x 100 / (100 + from); kept exact, so rounding happens
        # once, half up, on the new gross.
        exact = Decimal(unit_gross * (HUNDRED + self.to_rate_bp)) / (HUNDRED + self.from_rate_bp)
        return round_half_up(exact)


@dataclass(frozen=True)
class Restatement:
    """What a client would send in the PUT, already as domain specs."""

    spec: InvoiceSpec
    header: OrderHeader
    items: list[ItemSpec]
    body_refs: OrderIdentity


def restate(order: Order, invoice: Invoice, change: TaxChange) -> Restatement:
    """The order as it now reads, with this invoice's matching lines at the new rate.

    The invoice keeps its date, due date and fields, so the new version is booked in the same
    period as the one it replaces; the header is the order's, as a PUT would restate it.
    """
    current = invoice.current
    if order.declaration_country != current.declaration_country:
        raise StateConflict(
            f"the order now declares VAT in {order.declaration_country}, the invoice in "
            f"{current.declaration_country}: correct it on its own",
            [
                FieldError(
                    "order.declaration_country",
                    "declaration-country-changed",
                    f"the invoice was declared in {current.declaration_country}",
                )
            ],
            code="declaration-country-changed",
        )
    on_invoice = set(current.item_refs)
    items = []
    for position in order.positions:
        spec = position.spec()
        if position.item_ref in on_invoice and change.matches(spec.vat_type, spec.rate_bp):
            spec = dataclasses.replace(
                spec, rate_bp=change.to_rate_bp, unit_gross=change.unit_gross(spec.unit_gross)
            )
        items.append(spec)
    invoice_spec = InvoiceSpec(
        invoice_reference=invoice.invoice_reference,
        invoice_date=current.invoice_date,
        due_date=current.due_date,
        item_refs=tuple(current.item_refs),
        fields=dict(current.fields),
    )
    return Restatement(invoice_spec, order.restated_header(), items, order.identity())
