"""Money in minor units, rounding half up, and the per-rate split of gross (SPEC section 4)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.money import (
    bp_to_rate,
    decimals_of,
    exponent,
    milli_to_quantity,
    quantity_to_milli,
    rate_to_bp,
    round_half_up,
    to_major,
    to_minor,
)
from app.domain.tax import (
    TaxAmount,
    TaxKey,
    line_gross,
    split_by_rate,
    split_cumulatively,
    unit_vat_exact,
    vat_of_gross,
)

# --- minor units per currency ----------------------------------------------------------


@pytest.mark.parametrize(("currency", "places"), [("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_each_currency_has_its_own_number_of_decimals(currency: str, places: int) -> None:
    assert exponent(currency) == places


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("11.90"), "EUR", 1190),
        (Decimal("0.01"), "EUR", 1),
        (Decimal("1500"), "JPY", 1500),
        (Decimal("1.234"), "KWD", 1234),
        (Decimal("-5.00"), "EUR", -500),
    ],
)
def test_amounts_are_held_in_minor_units_of_their_currency(
    amount: Decimal, currency: str, minor: int
) -> None:
    assert to_minor(amount, currency) == minor
    assert to_major(minor, currency) == amount


def test_major_units_read_back_with_the_currency_s_decimals() -> None:
    assert str(to_major(1190, "EUR")) == "11.90"
    assert str(to_major(1500, "JPY")) == "1500"
    assert str(to_major(1234, "KWD")) == "1.234"


@pytest.mark.parametrize(
    ("value", "places"),
    [(Decimal("11.90"), 1), (Decimal("11.9"), 1), (Decimal("11.905"), 3), (Decimal(12), 0)],
)
def test_trailing_zeros_do_not_count_as_decimals(value: Decimal, places: int) -> None:
    assert decimals_of(value) == places


# --- rounding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Decimal("2.5"), 3),
        (Decimal("2.49"), 2),
        (Decimal("3.5"), 4),
        (Decimal("-2.5"), -3),
        (Decimal("-2.49"), -2),
        (Decimal("-0.5"), -1),
    ],
)
def test_rounding_is_half_up_away_from_zero_also_for_negative_amounts(
    value: Decimal, rounded: int
) -> None:
    assert round_half_up(value) == rounded


# --- line gross ------------------------------------------------------------------------


def test_line_gross_is_unit_price_times_quantity() -> None:
    assert line_gross(1190, quantity_to_milli(Decimal(3))) == 3570


def test_line_gross_of_a_fractional_quantity_is_rounded_half_up_once() -> None:
    # 3.33 x 1.5 = 4.995 -> 5.00; 19.99 x 0.333 = 6.65667 -> 6.66
    assert line_gross(333, quantity_to_milli(Decimal("1.5"))) == 500
    assert line_gross(1999, quantity_to_milli(Decimal("0.333"))) == 666


def test_a_discount_line_rounds_half_away_from_zero() -> None:
    # -3.33 x 1.5 = -4.995 -> -5.00: a discount mirrors the article it reduces
    assert line_gross(-333, quantity_to_milli(Decimal("1.5"))) == -500


def test_quantities_and_rates_are_held_as_exact_integers() -> None:
    assert quantity_to_milli(Decimal("2.5")) == 2500
    assert milli_to_quantity(2500) == Decimal("2.5")
    assert rate_to_bp(Decimal("5.5")) == 550
    assert bp_to_rate(550) == Decimal("5.5")
    assert bp_to_rate(1900) == Decimal(19)


# --- the per-rate split ----------------------------------------------------------------

NORMAL_DE = TaxKey("DE", "NORMAL", 1900)
REDUCED_DE = TaxKey("DE", "REDUCED", 700)


def test_vat_of_gross_is_gross_times_rate_over_100_plus_rate() -> None:
    assert vat_of_gross(1190, 1900) == 190
    assert vat_of_gross(1070, 700) == 70
    assert vat_of_gross(1000, 0) == 0


def test_lines_are_grouped_by_vat_type_and_rate() -> None:
    taxes = split_by_rate(
        "DE", [("NORMAL", 1900, 1190), ("REDUCED", 700, 1070), ("NORMAL", 1900, 2380)]
    )
    assert taxes == [
        TaxAmount(NORMAL_DE, net=3000, vat=570),
        TaxAmount(REDUCED_DE, net=1000, vat=70),
    ]


def test_vat_is_rounded_once_per_group_not_per_line() -> None:
    # Each 10.00 line holds 1.5966 VAT (1.60 if rounded alone, 3.20 for both);
    # the group of 20.00 holds 3.1933 -> 3.19.
    lines = [("NORMAL", 1900, 1000), ("NORMAL", 1900, 1000)]
    per_line = sum(vat_of_gross(gross, rate) for _type, rate, gross in lines)
    (group,) = split_by_rate("DE", lines)
    assert per_line == 320
    assert group == TaxAmount(NORMAL_DE, net=1681, vat=319)


def test_net_is_gross_less_vat_so_the_group_adds_up_to_its_gross() -> None:
    (group,) = split_by_rate("DE", [("NORMAL", 1900, 999), ("NORMAL", 1900, 1)])
    assert group.gross == 1000
    assert group.net + group.vat == 1000


def test_a_discount_line_reduces_its_group() -> None:
    (group,) = split_by_rate("DE", [("NORMAL", 1900, 2380), ("NORMAL", 1900, -1190)])
    assert group == TaxAmount(NORMAL_DE, net=1000, vat=190)


def test_groups_carry_the_declaration_country() -> None:
    (group,) = split_by_rate("AT", [("NORMAL", 2000, 1200)])
    assert group == TaxAmount(TaxKey("AT", "NORMAL", 2000), net=1000, vat=200)


# --- credits split cumulatively --------------------------------------------------------


def test_three_credits_of_a_third_each_add_up_to_the_vat_of_the_whole() -> None:
    # 9.99 at 19 % holds 1.595 VAT -> 1.60; a third (3.33) holds 0.5317 -> 0.53, and three
    # thirds split one by one would take back 1.59, leaving a cent booked.
    credited, vats = 0, []
    for _ in range(3):
        (credit,) = split_cumulatively([(NORMAL_DE, credited, 333)])
        vats.append(credit.vat)
        credited += credit.gross
    assert vats == [53, 53, 54]
    assert (sum(vats), credited) == (vat_of_gross(999, 1900), 999)
    assert 3 * vat_of_gross(333, 1900) == 159


def test_a_first_credit_is_split_as_the_group_alone() -> None:
    first = split_cumulatively([(NORMAL_DE, 0, 1190), (REDUCED_DE, 0, 1070)])
    assert first == split_by_rate("DE", [("NORMAL", 1900, 1190), ("REDUCED", 700, 1070)])


def test_a_credit_s_vat_is_what_its_group_holds_less_what_was_credited_before() -> None:
    (credit,) = split_cumulatively([(NORMAL_DE, 1000, 1000)])
    assert credit == TaxAmount(NORMAL_DE, net=1681 - 840, vat=319 - 160)


def test_groups_of_one_key_from_several_invoices_are_split_apart_and_summed() -> None:
    (credit,) = split_cumulatively([(NORMAL_DE, 333, 333), (NORMAL_DE, 666, 333)])
    assert credit.vat == (vat_of_gross(666, 1900) - 53) + (160 - 106)
    assert credit == TaxAmount(NORMAL_DE, net=666 - 107, vat=107)


def test_a_discount_credited_back_lowers_its_group_s_vat() -> None:
    (credit,) = split_cumulatively([(NORMAL_DE, 2380, -1190)])
    assert credit == TaxAmount(NORMAL_DE, net=-1000, vat=-190)


# --- unit VAT as a client computes it --------------------------------------------------


def test_unit_vat_exact_is_not_rounded() -> None:
    assert unit_vat_exact(1190, 1900) == Decimal(190)
    assert unit_vat_exact(1000, 1900) == Decimal(1000 * 1900) / Decimal(11900)
    assert Decimal("159.66") < unit_vat_exact(1000, 1900) < Decimal("159.67")


def test_unit_vat_exact_of_a_zero_rate_is_zero() -> None:
    assert unit_vat_exact(1190, 0) == 0
