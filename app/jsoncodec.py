"""JSON with exact decimals, for the wire and for JSON columns alike."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import simplejson


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number", name, 0)


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Built once: json.loads and simplejson.dumps build a new decoder or encoder on every call
# that passes options, and these run several times per request (body, JSON columns, answer).
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constants)
# No namedtuple is ever encoded (tuples are arrays): without this, simplejson asks every
# object and array it meets for an `_asdict` method, an AttributeError each time.
_OPTIONS: dict[str, Any] = {
    "use_decimal": True,
    "ensure_ascii": False,
    "namedtuple_as_object": False,
}
_ENCODER = simplejson.JSONEncoder(default=_default, **_OPTIONS)


def loads(data: str | bytes) -> Any:
    """Parse JSON, every fractional number as an exact Decimal; NaN and Infinity refused."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return _DECODER.decode(text)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Decimals as JSON numbers (never through float), dates as ISO strings."""
    if not kwargs:
        return _ENCODER.encode(obj)
    kwargs.setdefault("default", _default)
    return simplejson.dumps(obj, **_OPTIONS, **kwargs)
