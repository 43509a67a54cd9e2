"""The request schemas' fields refuse exactly what marshmallow's own fields refuse, with the
same messages (app/api/fields.py runs the validators without building an `And` per value)."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import Schema, ValidationError, validate
from marshmallow import fields as marshmallow_fields

from app.api import fields


def _even(value: int) -> None:
    if value % 2:
        raise ValidationError("Must be even.")


def _schema(module: Any) -> Schema:
    class Body(Schema):
        email = module.Email(validate=validate.Length(max=12))
        count = module.Integer(validate=[validate.Range(min=0), _even])
        name = module.String(validate=validate.Length(max=3))
        note = module.String()

    return Body()


def _errors(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        schema.load(data)
    except ValidationError as error:
        assert isinstance(error.messages, dict)
        return error.messages
    return {}


@pytest.mark.parametrize(
    "data",
    [
        {"email": "a@b.de", "count": 4, "name": "abc", "note": "anything"},
        {"email": "not-an-address-and-long"},  # both of its validators refuse it
        {"email": "a@example.com"},  # only the length refuses it
        {"count": -3},  # both refuse: negative and odd
        {"count": 3},  # only the custom one refuses
        {"name": "abcd", "note": 5},
    ],
)
def test_the_same_errors_as_marshmallow_fields(data: dict[str, Any]) -> None:
    assert _errors(_schema(fields), data) == _errors(_schema(marshmallow_fields), data)


def test_every_refusal_of_a_field_is_reported_together() -> None:
    errors = _errors(_schema(fields), {"count": -3, "email": "not-an-address-and-long"})

    assert errors["count"] == ["Must be greater than or equal to 0.", "Must be even."]
    assert len(errors["email"]) == 2


def test_valid_values_load() -> None:
    loaded = _schema(fields).load({"email": "a@b.de", "count": 4, "name": "abc"})

    assert loaded == {"email": "a@b.de", "count": 4, "name": "abc"}
