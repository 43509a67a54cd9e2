"""Check an HTTP answer against the committed openapi.yaml: status, headers, media type, body.

Used by the end-to-end tier (every response of every test) and the contract tier. A response to
an operation the document does not describe (an unknown route, a method a path does not have)
must still be an RFC 9457 problem matching the document's Problem schema.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from openapi_core import Config, OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.test import TestResponse

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi.yaml"
API_PREFIX = "/accounting/"


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return loaded


@cache
def contract() -> OpenAPI:
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(document(), config=config)


@cache
def problem_validator() -> Draft202012Validator:
    """The Problem schema, its references resolved within openapi.yaml's components."""
    components = document()["components"]
    return Draft202012Validator({**components["schemas"]["Problem"], "components": components})


def violations(
    method: str,
    path: str,
    query: dict[str, Any],
    status: int,
    headers: dict[str, str],
    body: bytes,
) -> list[str]:
    """Every way this answer departs from openapi.yaml; empty when it conforms."""
    content_type = headers.get("Content-Type", "")
    request = MockRequest("http://localhost", method, path, args=query)
    response = MockResponse(body, status, headers=headers, content_type=content_type)
    try:
        contract().validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        pass  # not an operation of the document: checked below
    except OpenAPIError as error:
        return [_explain(error)]
    else:
        return []
    if status < 400:
        if path.startswith(API_PREFIX):
            return [f"an operation missing from openapi.yaml answered {status}"]
        return []  # health, metrics, the explorer: not part of the API document
    if not content_type.startswith("application/problem+json"):
        return [f"{status} is not problem+json but {content_type!r}"]
    return [
        f"{'.'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
        for e in problem_validator().iter_errors(json.loads(body))
    ]


def _explain(error: Exception) -> str:
    causes = []
    seen: BaseException | None = error
    while seen is not None:
        details = getattr(seen, "schema_errors", None)
        if details:
            causes.extend(
                f"{'.'.join(map(str, d.absolute_path)) or 'body'}: {d.message}" for d in details
            )
        seen = seen.__cause__
    return f"{type(error).__name__}: {error}" + (f" ({'; '.join(causes)})" if causes else "")


def assert_conforms(response: TestResponse) -> None:
    """Fail naming every departure of a Flask test client's response from openapi.yaml."""
    request = response.request
    found = violations(
        request.method,
        request.path,
        request.args.to_dict(flat=True),
        response.status_code,
        dict(response.headers),
        response.get_data(),
    )
    assert not found, (
        f"{request.method} {request.path} answered {response.status_code}, "
        f"outside openapi.yaml:\n  " + "\n  ".join(found)
    )
