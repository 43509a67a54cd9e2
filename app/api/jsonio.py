"""Flask and webargs reading and writing JSON with exact decimals."""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import JSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from app.jsoncodec import dumps, loads

__all__ = ["DecimalJSONProvider", "DecimalParser", "dumps", "loads"]


class DecimalJSONProvider(JSONProvider):
    """Flask's JSON: Decimals stay exact on the wire."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.pop("default", None)
        return dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class DecimalParser(FlaskParser):
    """webargs parser reading bodies with exact decimals."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return loads(req.get_data(cache=True))
        except UnicodeDecodeError as error:
            raise json.JSONDecodeError(str(error), "", 0) from error
