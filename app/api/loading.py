"""A request body's load without marshmallow's machinery, for bodies marshmallow accepts.

marshmallow loads a body field by field through layers made for every option it has (partial
loads, `many`, error stores, dotted attributes, hooks of every kind), and a correction's body
has 88 fields in 11 nested schemas: that machinery is most of the PUT's load, which is the
largest part of its Python time.

`compile_loader(schema)` reads a schema once and returns a function doing the same load with
the same parts: each field's own `_deserialize` and validators, the schema's own
`validates_schema` methods. It stops at the first thing that is not plainly valid (a missing
required field, a null, an unknown key, a value a field refuses, a type that is not JSON's)
by raising `Unsure`, and the caller then runs marshmallow's load, which says what is wrong
and how, exactly as before. So marshmallow alone decides every error, and the fast path only
ever answers bodies marshmallow accepts, with the same result (tests/unit/test_loading.py
compares the two on valid bodies and on thousands of broken ones).

A schema using options this does not read (hooks other than `validates_schema`, `many`,
`partial`, unknown fields other than refused, dotted attributes, a field's own pre- or
post-load functions) gets no compiled load: `compile_loader` returns None and marshmallow
loads it alone, also where it is nested in a compiled one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.error_store import ErrorStore
from marshmallow.utils import missing

Loader = Callable[[Any], dict[str, Any]]
Converter = Callable[[Any, Any], Any]


class Unsure(Exception):
    """The value is not plainly valid: marshmallow's load decides."""


def compile_loader(schema: Schema) -> Loader | None:
    """The load of `schema` for the bodies it accepts, or None when it uses options not read
    here. The returned function raises `Unsure` for every body it does not vouch for."""
    hooks = schema._hooks  # marshmallow's record of the schema's decorated methods
    if (
        schema.many
        or schema.partial
        or schema.unknown != RAISE
        or hooks[PRE_LOAD]
        or hooks[POST_LOAD]
        or hooks[VALIDATES]
    ):
        return None
    plan = []
    for name, field in schema.load_fields.items():
        attribute = field.attribute or name
        key = field.data_key if field.data_key is not None else name
        convert = _converter(field, key)
        if convert is None or "." in attribute:
            return None
        plan.append((key, attribute, field.required, field.allow_none, field.load_default, convert))
    known = frozenset(key for key, *_ in plan)
    schema_validators = bool(hooks[VALIDATES_SCHEMA])

    def load(data: Any) -> dict[str, Any]:
        if type(data) is not dict or not known.issuperset(data):
            raise Unsure
        result = {}
        for key, attribute, required, allow_none, default, convert in plan:
            value = data.get(key, missing)
            if value is missing:
                if required:
                    raise Unsure
                if default is not missing:
                    result[attribute] = default() if callable(default) else default
            elif value is None:
                if not allow_none:
                    raise Unsure
                result[attribute] = None
            else:
                result[attribute] = convert(value, data)
        if schema_validators:
            _validate_schema(schema, result, data)
        return result

    return load


def _validate_schema(schema: Schema, result: dict[str, Any], data: Any) -> None:
    # The same two calls marshmallow's load makes, after fields without errors.
    errors = ErrorStore()
    for pass_collection in (True, False):
        schema._invoke_schema_validators(
            error_store=errors,
            pass_collection=pass_collection,
            data=result,
            original_data=data,
            many=False,
            partial=None,
            unknown=RAISE,
            field_errors=False,
        )
    if errors.errors:
        raise Unsure


def _converter(field: fields.Field, key: str | None) -> Converter | None:
    """A present, non-null value (at `key` in the body `data`) to its loaded form, as
    `field.deserialize(value, key, data)` makes it."""
    if field.pre_load or field.post_load:
        return None
    convert = _direct(field) or _deserializer(field, key)
    validators = tuple(field.validators)
    if not validators:
        return convert

    def validated(value: Any, data: Any) -> Any:
        output = convert(value, data)
        try:
            for validator in validators:
                validator(output)
        except ValidationError as error:
            raise Unsure from error
        return output

    return validated


def _direct(field: fields.Field) -> Converter | None:
    """Nested objects and lists through their compiled loads, strings as they are; None for
    any other field, and where a nested schema has no compiled load."""
    if type(field) is fields.Nested and not field.many and field.unknown in (None, RAISE):
        nested = compile_loader(field.schema)
        if nested is None:
            return None

        def load_nested(value: Any, data: Any) -> Any:
            if type(value) is not dict:
                raise Unsure
            return nested(value)

        return load_nested
    if type(field) is fields.List:
        element = _converter(field.inner, None)
        if element is None:
            return None
        null_allowed = field.inner.allow_none

        def load_list(value: Any, data: Any) -> Any:
            if type(value) is not list:
                raise Unsure
            out: list[Any] = []
            for each in value:
                if each is None:
                    if not null_allowed:
                        raise Unsure
                    out.append(None)
                else:
                    out.append(element(each, None))
            return out

        return load_list
    if type(field) in (fields.String, fields.Email):

        def load_string(value: Any, data: Any) -> Any:
            if type(value) is not str:
                raise Unsure  # bytes, or not a string at all
            return value

        return load_string
    return None


def _deserializer(field: fields.Field, key: str | None) -> Converter:
    deserialize = field._deserialize  # what field.deserialize calls

    def convert(value: Any, data: Any) -> Any:
        try:
            return deserialize(value, key, data)
        except ValidationError as error:
            raise Unsure from error

    return convert
