"""JSON text for the wire and the JSON columns: exact decimals, one compact form whichever
encoder writes it, and the canonical form of request digests unchanged."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from app import jsoncodec

DOCUMENT: dict[str, Any] = {
    "amount": Decimal("1.50"),
    "tiny": Decimal("0.0000000000000000000000000000001"),
    "day": date(2024, 6, 1),
    "at": datetime(2024, 6, 1, 12, 30, 5, 123456, tzinfo=UTC),
    "text": 'Müller "Blumen" \\ \n\t\x01 \u2028 ✓',
    "items": [1, None, True, False, (2, 3), {"nested": []}],
}


def test_decimals_keep_their_digits() -> None:
    text = jsoncodec.dumps(DOCUMENT)

    assert '"amount":1.50' in text
    back = jsoncodec.loads(text)
    assert str(back["amount"]) == "1.50"
    assert back["tiny"] == Decimal("0.0000000000000000000000000000001")


def test_dates_are_iso_strings() -> None:
    back = jsoncodec.loads(jsoncodec.dumps(DOCUMENT))

    assert back["day"] == "2024-06-01"
    assert back["at"] == "2024-06-01T12:30:05.123456+00:00"


def test_both_encoders_write_the_same_text() -> None:
    assert jsoncodec.dumps(DOCUMENT) == jsoncodec._COMPACT.encode(DOCUMENT)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"n": 10**30}, '{"n":1000000000000000000000000000000}'),
        ({"n": -(2**64)}, '{"n":-18446744073709551616}'),
        ({1: "a"}, '{"1":"a"}'),
    ],
    ids=["beyond 64 bits", "below -2**63", "a key that is not a string"],
)
def test_what_the_fast_encoder_cannot_write_is_written_all_the_same(
    value: dict[Any, Any], text: str
) -> None:
    assert jsoncodec.dumps(value) == text


def test_objects_without_a_json_form_are_refused() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    with pytest.raises(TypeError):
        jsoncodec.dumps({"point": Point(1)})
    with pytest.raises(TypeError):
        jsoncodec.dumps({"set": {1}})


def test_the_canonical_form_of_a_digest_is_unchanged() -> None:
    # Idempotency keys stored earlier hold digests over this form; it must not move.
    text = jsoncodec.dumps({"b": [1, 2], "a": Decimal("2.0")}, sort_keys=True)

    assert text == '{"a": 2.0, "b": [1, 2]}'
