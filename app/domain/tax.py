"""Line amounts and the per-rate split of gross into net and VAT (SPEC section 4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from app.domain.money import QUANTITY_SCALE, RATE_SCALE, round_half_up

VAT_TYPES = ("NORMAL", "REDUCED", "TAXLESS", "REVERSE")
ZERO_RATE_TYPES = ("TAXLESS", "REVERSE")


@dataclass(frozen=True, order=True)
class TaxKey:
    """Where VAT is declared and at which type and rate."""

    country: str
    vat_type: str
    rate_bp: int


@dataclass(frozen=True)
class TaxAmount:
    """Net, VAT and gross of one tax group, in minor units."""

    key: TaxKey
    net: int
    vat: int

    @property
    def gross(self) -> int:
        return self.net + self.vat


def line_gross(unit_gross: int, quantity_milli: int) -> int:
    """Gross of a line: unit price times quantity, rounded half up once."""
    return round_half_up(Decimal(unit_gross * quantity_milli) / QUANTITY_SCALE)


def vat_of_gross(gross: int, rate_bp: int) -> int:
    """VAT contained in a gross amount at a rate: gross x rate / (100 + rate), rounded."""
    return round_half_up(unit_vat_exact(gross, rate_bp))


def split_by_rate(country: str, lines: Iterable[tuple[str, int, int]]) -> list[TaxAmount]:
    """Group (vat_type, rate_bp, gross) lines and split each group's gross once."""
    groups: dict[TaxKey, int] = {}
    for vat_type, rate_bp, gross in lines:
        key = TaxKey(country, vat_type, rate_bp)
        groups[key] = groups.get(key, 0) + gross
    result = []
    for key in sorted(groups):
        vat = vat_of_gross(groups[key], key.rate_bp)
        result.append(TaxAmount(key, groups[key] - vat, vat))
    return result


def split_cumulatively(groups: Iterable[tuple[TaxKey, int, int]]) -> list[TaxAmount]:
    """Split credited gross by (key, gross credited before, gross now) groups: the VAT of each
    is the VAT of everything credited in its group so far less the VAT of what was before.

    So the credits of a whole group add up to exactly the VAT it was invoiced with, as
    `line_gross` of cumulated quantities adds partial returns up to exactly their line.
    Groups of one key (from several invoices) are summed after their split.
    """
    totals: dict[TaxKey, tuple[int, int]] = {}
    for key, before, gross in groups:
        vat = vat_of_gross(before + gross, key.rate_bp) - vat_of_gross(before, key.rate_bp)
        summed_gross, summed_vat = totals.get(key, (0, 0))
        totals[key] = (summed_gross + gross, summed_vat + vat)
    return [TaxAmount(key, gross - vat, vat) for key, (gross, vat) in sorted(totals.items())]


def unit_vat_exact(unit_gross: int, rate_bp: int) -> Decimal:
    """Exact VAT of one unit in minor units, before rounding."""
    return Decimal(unit_gross * rate_bp) / (100 * RATE_SCALE + rate_bp)


def unit_vat_disagrees(sent: int, unit_gross: int, rate_bp: int) -> int | None:
    """The unit VAT that price and rate give, when `sent` is more than one minor unit off
    it (one unit of tolerance: clients round the unit VAT their own way); else None."""
    expected = unit_vat_exact(unit_gross, rate_bp)
    return round_half_up(expected) if abs(sent - expected) > 1 else None
