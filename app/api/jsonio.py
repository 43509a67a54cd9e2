"""JSON in and out with exact decimals: numbers are read as Decimal and written as numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import simplejson
from flask.json.provider import JSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number", name, 0)


def loads(data: str | bytes) -> Any:
    """Parse JSON, every fractional number as an exact Decimal."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)


def dumps(obj: Any, **kwargs: Any) -> str:
    return simplejson.dumps(obj, use_decimal=True, ensure_ascii=False, **kwargs)


class DecimalJSONProvider(JSONProvider):
    """Flask's JSON: Decimals stay exact on the wire."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.pop("default", None)
        return dumps(obj, default=_default, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class DecimalParser(FlaskParser):
    """webargs parser reading bodies with exact decimals."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return loads(req.get_data(cache=True))
        except UnicodeDecodeError as error:
            raise json.JSONDecodeError(str(error), "", 0) from error
