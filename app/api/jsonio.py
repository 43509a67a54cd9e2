"""Flask and webargs reading and writing JSON with exact decimals."""

from __future__ import annotations

import json
import re
from typing import Any

from flask.json.provider import JSONProvider
from marshmallow import ValidationError
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


MAX_DEPTH = 32  # objects and arrays within each other; a real body needs fewer than 10


class DecimalParser(FlaskParser):
    """webargs parser reading bodies with exact decimals, refusing what no database can hold."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        try:
            text = data.decode("utf-8")
            body = loads(text)
        except UnicodeDecodeError as error:
            # Not "" as the document: webargs would read that as no body at all.
            raise json.JSONDecodeError(f"not UTF-8: {error.reason}", "<bytes>", 0) from error
        except json.JSONDecodeError:
            raise
        except RecursionError as error:
            raise ValidationError(f"Nested deeper than {MAX_DEPTH} levels.") from error
        except ValueError as error:  # an integer of more than 4300 digits
            raise ValidationError("A number has too many digits.") from error
        problems = text_problems(body, text)
        if problems:
            raise ValidationError(problems)
        return body


# In JSON text, a NUL or a lone surrogate can only be written as a \u escape (raw control
# characters are not JSON, and bytes that decode as UTF-8 hold no surrogate).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def text_problems(body: Any, text: str) -> dict[Any, Any]:
    """Where the body holds text no database stores, or nests too deeply: marshmallow-style
    messages by field path (the offending text itself is never echoed). A body whose JSON
    `text` has no suspect escape and too few brackets to nest deeply is passed without
    walking it."""
    if _plainly_fine(text):
        return {}
    messages: dict[Any, Any] = {}

    def report(path: tuple[Any, ...], message: str) -> None:
        node = messages
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1] if path else "_schema", []).append(message)

    stack: list[tuple[tuple[Any, ...], Any]] = [((), body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                report(path, problem)
        elif isinstance(value, dict | list):
            if len(path) >= MAX_DEPTH:
                report(path, f"Nested deeper than {MAX_DEPTH} levels.")
                continue
            if isinstance(value, dict):
                bad_keys = [_text_problem(k) for k in value if _text_problem(k)]
                if bad_keys:
                    report((*path, "_schema"), f"A field name is not valid text: {bad_keys[0]}")
                    continue
                stack.extend(((*path, k), v) for k, v in value.items())
            else:
                stack.extend(((*path, i), v) for i, v in enumerate(value))
    return messages


def _plainly_fine(text: str) -> bool:
    return text.count("{") + text.count("[") < MAX_DEPTH and not _SUSPECT_ESCAPE.search(text)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Not valid text: it contains a NUL character."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Not valid text: it contains a lone UTF-16 surrogate."
    return None
