"""JSON with exact decimals, for the wire and for JSON columns alike."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
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
# What orjson cannot write (integers beyond 64 bits, keys that are not strings), in the same
# compact form.
_COMPACT = simplejson.JSONEncoder(default=_default, separators=(",", ":"), **_OPTIONS)


# A dataclass is an error here as with simplejson, not an object.
_ORJSON = orjson.OPT_PASSTHROUGH_DATACLASS


def _exact(value: Any) -> Any:
    """orjson's fallback: a Decimal as its own digits, a JSON number written as is."""
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    return _default(value)


def loads(data: str | bytes) -> Any:
    """Parse JSON, every fractional number as an exact Decimal; NaN and Infinity refused."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return _DECODER.decode(text)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Decimals as JSON numbers (never through float), dates as ISO strings; compact.

    orjson writes it, ten times as fast as simplejson for the JSON columns a write stores;
    with options (a canonical form: sorted keys), simplejson does, spaced as before, so a
    digest over it does not change."""
    if not kwargs:
        try:
            return orjson.dumps(obj, default=_exact, option=_ORJSON).decode()
        except orjson.JSONEncodeError:
            return _COMPACT.encode(obj)
    kwargs.setdefault("default", _default)
    return simplejson.dumps(obj, **_OPTIONS, **kwargs)
