"""The code's shape: rules in short functions, and no library internals anywhere in app/."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
MAX_LINES = 60

# What the libraries keep to themselves: it changes in any release, without notice.
INTERNALS = {
    "marshmallow": re.compile(
        r"^marshmallow\.(decorators|error_store)(\.|$)|(^|\.)(ErrorStore|_hooks)$"
    ),
    "psycopg": re.compile(
        r"^psycopg(\.\w+)*\._|^psycopg\.generators(\.|$)|(^|\.)adapt\.Transformer$"
        r"|(^|\.)(pgconn|send_query\w*)$"
    ),
    "limits": re.compile(r"^limits(\.\w+)*\._|_MemoryStorage"),
    "flask-smorest": re.compile(r"^flask_smorest(\.\w+)*\._|(^|\.)_apidoc$"),
}


def long_functions(path: Path) -> Iterator[str]:
    """Functions longer than MAX_LINES, from `def` to their last line, docstring included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES:
                yield f"{path.relative_to(APP.parent)}:{node.lineno} {node.name}: {lines} lines"


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def references(source: str) -> Iterator[tuple[int, str]]:
    """Every name the code reaches, with its line: what it imports, dotted attributes, names,
    what it defines, and strings that are one name (as getattr takes them)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Attribute):
            yield node.lineno, _dotted(node)
        elif isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.lineno, node.name
        elif isinstance(node, ast.Constant) and str(node.value).isidentifier():
            yield node.lineno, str(node.value)


def internals_reached(source: str) -> list[tuple[int, str, str]]:
    """(line, library, name) for every internal of a library the source reaches."""
    found = {
        (line, library, name)
        for line, name in references(source)
        for library, pattern in INTERNALS.items()
        if pattern.search(name)
    }
    return sorted(found)


@pytest.mark.parametrize("layer", ["domain", "service"])
def test_no_function_of_the_domain_or_the_service_is_longer_than_60_lines(layer: str) -> None:
    found = [f for path in sorted((APP / layer).rglob("*.py")) for f in long_functions(path)]
    message = "split these into functions named for what they decide:\n" + "\n".join(found)
    assert found == [], message


def test_the_app_reaches_no_internals_of_its_libraries() -> None:
    found = [
        f"{path.relative_to(APP.parent)}:{line} {library}: {name}"
        for path in sorted(APP.rglob("*.py"))
        for line, library, name in internals_reached(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use the libraries' public API instead:\n" + "\n".join(found)


SAMPLE = """
from marshmallow.decorators import POST_LOAD
from marshmallow.error_store import ErrorStore
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import send as _flush
from psycopg import _encodings
from flask_smorest.utils import _unpack
import limits._version

hooks = schema._hooks
raw.pgconn.send_query_params(sql, params)
view._apidoc = documented._apidoc

class Storage:
    def _MemoryStorage__schedule_expiry(self):
        self._MemoryStorage__expire_events()

conn = getattr(raw, "pgconn")
"""


def test_each_kind_of_internal_is_named_with_its_line() -> None:
    found = internals_reached(SAMPLE)
    assert {(line, library) for line, library, _name in found} == {
        (2, "marshmallow"),
        (3, "marshmallow"),
        (4, "psycopg"),
        (5, "psycopg"),
        (6, "psycopg"),
        (7, "flask-smorest"),
        (8, "limits"),
        (10, "marshmallow"),
        (11, "psycopg"),
        (12, "flask-smorest"),
        (15, "limits"),
        (16, "limits"),
        (18, "psycopg"),
    }


def test_public_names_that_look_alike_are_not_internals() -> None:
    source = (
        "from marshmallow import post_load, validates_schema\n"
        "from psycopg.adapt import PyFormat\n"
        "from limits import storage, strategies\n"
        "def _request_hooks(app): ...\n"
        "from flask_smorest import Blueprint\n"
    )
    assert internals_reached(source) == []


# A name as the request body spells it (`billToAddress`): the API maps bodies to commands and
# presents results, adapters read and write what is stored in the body's words
# (docs/decisions.md, "What is stored in the body's words").
WIRE_NAME = re.compile(r"^[a-z]+[A-Z][A-Za-z]*$")


def wire_names(source: str) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and WIRE_NAME.match(node.value)
    }


@pytest.mark.parametrize("layer", ["domain", "service"])
def test_the_domain_and_the_service_spell_no_wire_name(layer: str) -> None:
    found = {
        f"{path.relative_to(APP)}: {name}"
        for path in sorted((APP / layer).rglob("*.py"))
        for name in wire_names(path.read_text(encoding="utf-8"))
    }
    assert found == set(), "map these at the API or in an adapter:\n" + "\n".join(sorted(found))


def test_wire_names_are_told_from_the_domain_s_words() -> None:
    source = 'a = {"billToAddress": x, "item_ref": 1, "NORMAL": 2}\nf(h.get("accountOwner"))\n'
    assert wire_names(source) == {"billToAddress", "accountOwner"}
