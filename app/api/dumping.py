"""An answer's dump without marshmallow's machinery, for the answers the service renders.

The counterpart of app/api/loading.py. marshmallow dumps an object field by field through an
accessor that tries `obj[key]`, then `getattr`, a `serialize` that looks up a default, and a
`dump` per nested object that looks for hooks: for a correction's answer, most of the dump.
The service renders its answers as plain dictionaries (app/api/presenters.py).

`compile_dumper(schema)` reads a schema once and returns a function that dumps such a
dictionary with the same parts: each field's own `_serialize`, the same defaults, the same
keys. A key the dictionary lacks is looked up as marshmallow looks it up; an object that is
not a plain dictionary is dumped by marshmallow itself. A schema using options not read here
(dump hooks, `many`, an accessor or a field's value lookup of its own) gets no compiled dump.
tests/unit/test_dumping.py compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from marshmallow import Schema, fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import get_value, missing

Dumper = Callable[[Any], Any]
Serializer = Callable[[Any, str, Any], Any]


def compile_dumper(schema: Schema) -> Dumper | None:
    """The dump of `schema`, or None when it uses options not read here."""
    hooks = schema._hooks  # marshmallow's record of the schema's decorated methods
    if schema.many or hooks[PRE_DUMP] or hooks[POST_DUMP]:
        return None
    if type(schema).get_attribute is not Schema.get_attribute:
        return None
    plan = []
    for name, field in schema.dump_fields.items():
        serialize = _serializer(field)
        if serialize is None:
            return None
        lookup = field.attribute if field.attribute is not None else name
        key = field.data_key if field.data_key is not None else name
        plain = "." not in lookup
        plan.append((name, key, lookup, plain, field.dump_default, serialize))
    marshmallow_dump = partial(Schema.dump, schema)  # not an override: marshmallow's own

    def dump(obj: Any) -> Any:
        if type(obj) is not dict:
            return marshmallow_dump(obj)
        result = {}
        for name, key, lookup, plain, default, serialize in plan:
            value = obj.get(lookup, missing) if plain else missing
            if value is missing:
                value = get_value(obj, lookup, missing)  # marshmallow's lookup, getattr too
                if value is missing:
                    value = default() if callable(default) else default
                    if value is missing:
                        continue
            result[key] = serialize(value, name, obj)
        return result

    return dump


def _serializer(field: fields.Field) -> Serializer | None:
    """A looked-up value to its dumped form, as `field.serialize` makes it."""
    if (
        not field._CHECK_ATTRIBUTE
        or type(field).serialize is not fields.Field.serialize
        or type(field).get_value is not fields.Field.get_value
    ):
        return None
    return _nested_dump(field) or field._serialize  # what field.serialize calls


def _nested_dump(field: fields.Field) -> Serializer | None:
    """The compiled dump of a nested object or of a list of them; None for any other field,
    and for nested objects whose schema has no compiled dump."""
    if isinstance(field, fields.List) and type(field)._serialize is fields.List._serialize:
        each = _nested_dump(field.inner)
        if each is None:
            return None

        def dump_list(value: Any, attr: str, obj: Any) -> Any:
            return None if value is None else [each(item, attr, obj) for item in value]

        return dump_list
    if (
        isinstance(field, fields.Nested)
        and not field.many
        and type(field)._serialize is fields.Nested._serialize
    ):
        nested = compile_dumper(field.schema)
        if nested is None:
            return None

        def dump_nested(value: Any, attr: str, obj: Any) -> Any:
            return None if value is None else nested(value)

        return dump_nested
    return None
