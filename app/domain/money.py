"""Money in integer minor units; decimals parsed exactly and rounded half up once."""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision

QUANTITY_SCALE = 1000  # quantities are stored in thousandths (at most 3 decimals)
RATE_SCALE = 100  # VAT rates are stored in hundredths of a percent (19 % -> 1900)
# The gross of an order's positions, added without their sign, is at most this many minor
# units: every amount stored for the order (a line, a tax group, an invoice, a journal line)
# stays near a millionth of the largest BIGINT (9.2 x 10^18), sums over orders included.
MAX_ORDER_GROSS = 10**13


@functools.lru_cache(maxsize=512)  # ISO 4217 has about 180 codes; requests are checked first
def exponent(currency: str) -> int:
    """Number of decimals the currency has."""
    return int(get_currency_precision(currency))


def decimals_of(value: Decimal) -> int:
    """How many decimals a number carries (trailing zeros do not count).

    Read from the digits themselves: normalize() would round to the context's 28 digits and
    flush 1e-999999999 to 0, so such amounts would pass as having no decimals at all.
    """
    _, digits, exp = value.as_tuple()
    if not isinstance(exp, int) or not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exp + trailing_zeros))


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact major-unit amount to minor units; the caller has checked the decimals."""
    return round_half_up(amount * (10 ** exponent(currency)))


def to_major(minor: int, currency: str) -> Decimal:
    """Minor units back to a major-unit Decimal (e.g. 1190 EUR -> 11.90)."""
    return Decimal(minor).scaleb(-exponent(currency))


def round_half_up(value: Decimal) -> int:
    """Round a fractional number of minor units to a whole one, half away from zero."""
    return int(value.to_integral_value(ROUND_HALF_UP))


def quantity_to_milli(quantity: Decimal) -> int:
    """2.5 -> 2500."""
    return int(quantity * QUANTITY_SCALE)


def milli_to_quantity(milli: int) -> Decimal:
    """2500 -> 2.5."""
    return (Decimal(milli) / QUANTITY_SCALE).normalize()


def rate_to_bp(percent: Decimal) -> int:
    """19 -> 1900, 5.5 -> 550."""
    return int(percent * RATE_SCALE)


def bp_to_rate(bp: int) -> Decimal:
    """1900 -> 19, 550 -> 5.5."""
    value = Decimal(bp) / RATE_SCALE
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
