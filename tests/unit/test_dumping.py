"""The compiled dump (app/api/dumping.py) writes what marshmallow's dump writes.

Objects are made by hypothesis from each answer schema's own fields: plain dictionaries with
values of the field's type or of another, keys left out, nulls, nested objects and lists of
them, and objects that are not dictionaries at all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields, post_dump

from app.api import schemas
from app.api.dumping import compile_dumper

ANSWERS = sorted(
    (
        value
        for value in vars(schemas).values()
        if isinstance(value, type) and issubclass(value, schemas.ResponseSchema)
    ),
    key=lambda schema: schema.__name__,
)

_ANY = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.dates()
)


def _value(field: fields.Field, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(field, fields.Nested):
        return st.none() | _object(field.schema, depth + 1)
    if isinstance(field, fields.List):
        return st.none() | st.lists(_value(field.inner, depth), max_size=2)
    typed: st.SearchStrategy[Any]
    if isinstance(field, fields.Decimal):
        typed = st.decimals(allow_nan=False, allow_infinity=False) | st.integers()
    elif isinstance(field, fields.Integer):
        typed = st.integers()
    elif isinstance(field, fields.DateTime):
        typed = st.datetimes() | st.datetimes(timezones=st.just(UTC))
    elif isinstance(field, fields.Date):
        typed = st.dates()
    elif isinstance(field, fields.Dict):
        typed = st.dictionaries(st.text(max_size=5), _ANY, max_size=2)
    else:
        typed = st.text(max_size=10)
    return st.none() | typed


def _object(schema: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
    if depth > 3:
        return st.none()
    entries = {name: _value(field, depth) for name, field in schema.dump_fields.items()}
    return st.fixed_dictionaries({}, optional=entries) | st.fixed_dictionaries(entries)


def _outcome(dump: Any, obj: Any) -> tuple[str, str]:
    try:
        return "dumped", repr(dump(obj))  # the same values, types and order
    except Exception as error:  # compared, not swallowed
        return "raised", type(error).__name__


@pytest.mark.parametrize("schema_class", ANSWERS, ids=lambda schema: schema.__name__)
def test_every_answer_schema_is_compiled(schema_class: type[Schema]) -> None:
    assert compile_dumper(schema_class()) is not None


@pytest.mark.parametrize("schema_class", ANSWERS, ids=lambda schema: schema.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_answer_is_dumped_as_marshmallow_dumps_it(
    schema_class: type[Schema], data: st.DataObject
) -> None:
    schema = schema_class()
    obj = data.draw(_object(schema))
    dump = compile_dumper(schema)
    assert dump is not None

    assert _outcome(dump, obj) == _outcome(lambda o: Schema.dump(schema, o), obj)


class _Row:
    """Not a dictionary: marshmallow reads its attributes."""

    def __init__(self) -> None:
        self.gross, self.vat = Decimal("11.90"), Decimal("1.90")


def test_what_is_not_a_dictionary_is_dumped_by_marshmallow() -> None:
    schema = schemas.TaxRowSchema()
    row = _Row()

    assert (
        schema.dump(row)
        == Schema.dump(schema, row)
        == {"gross": Decimal("11.90"), "vat": Decimal("1.90")}
    )


def test_a_key_the_dictionary_lacks_is_looked_up_as_marshmallow_does() -> None:
    class Counted(schemas.ResponseSchema):
        items = fields.Integer()  # missing from a dictionary, marshmallow finds dict.items
        when = fields.Date()

    schema = Counted()
    marshmallow = lambda obj: Schema.dump(schema, obj)  # noqa: E731

    assert _outcome(schema.dump, {"when": date(2024, 6, 1)}) == ("raised", "TypeError")
    assert _outcome(marshmallow, {"when": date(2024, 6, 1)}) == ("raised", "TypeError")
    assert schema.dump({"items": 3}) == marshmallow({"items": 3}) == {"items": 3}


def test_a_schema_with_a_dump_hook_is_left_to_marshmallow() -> None:
    class Hooked(schemas.ResponseSchema):
        at = fields.DateTime()

        @post_dump
        def _mark(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return {**data, "marked": True}

    schema = Hooked()

    assert compile_dumper(schema) is None
    assert schema.dump({"at": datetime(2024, 6, 1, tzinfo=UTC)}) == {
        "at": "2024-06-01T00:00:00+00:00",
        "marked": True,
    }

    class Holder(schemas.ResponseSchema):
        hooked = fields.Nested(Hooked)
        many = fields.List(fields.Nested(Hooked))

    holder = Holder()
    obj = {"hooked": {"at": datetime(2024, 6, 1, tzinfo=UTC)}, "many": [{}]}

    assert compile_dumper(holder) is not None  # the nested schema alone is marshmallow's
    assert holder.dump(obj) == Schema.dump(holder, obj)
    assert holder.dump(obj)["many"] == [{"marked": True}]
