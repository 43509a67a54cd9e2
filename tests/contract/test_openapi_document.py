"""openapi.yaml: generated from the endpoints' own schemas, committed, served, and complete.

Merchants code against this file, so it must be exactly what the code does: a test fails when
the committed file differs from what the code generates, and every answer of the end-to-end
and contract tiers is checked against it (tests/contract/openapi_check.py).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from app import jsoncodec
from app.api import examples
from app.api.docs import spec_yaml
from app.api.openapi_cli import openapi
from tests.contract.openapi_check import SPEC, violations
from tests.e2e.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
WRITES = ("post", "put", "patch")
EVERY_ERROR = {"401", "404", "429"}
WRITE_ERRORS = {"400", "401", "404", "413", "415", "422", "429"}
DOCUMENT_TYPES = ["application/pdf", "application/xml"]
CORRECTION = (
    "/accounting/v1/businesses/{businessCode}/customers/{customerNumber}"
    "/orders/{orderReference}/invoices/{invoiceReference}"
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return loaded


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    ]


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A $ref'd component, or the node itself."""
    ref = node.get("$ref")
    if not ref:
        return node
    found: Any = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    result: dict[str, Any] = found
    return result


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema validator resolving #/components/... within openapi.yaml."""
    return Draft202012Validator({**schema, "components": document["components"]})


# --- generated, committed, served ------------------------------------------------------


def test_the_committed_openapi_yaml_is_what_the_code_generates(app: Flask) -> None:
    committed = SPEC.read_text(encoding="utf-8")

    generated = spec_yaml(app)

    assert committed == generated, (
        "openapi.yaml is out of date: run `python -m app.api.openapi_cli` (`accounting openapi`)"
    )


def test_openapi_yaml_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    validate(document)

    assert document["openapi"] == "3.1.0"


def test_the_service_serves_the_committed_document_without_a_key(client: FlaskClient) -> None:
    response = client.get("/openapi.yaml")

    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.get_data(as_text=True) == SPEC.read_text(encoding="utf-8")


def test_the_command_reports_a_stale_document_and_rewrites_it(tmp_path: Path) -> None:
    target = tmp_path / "openapi.yaml"
    target.write_text("openapi: 3.1.0\n", encoding="utf-8")
    runner = CliRunner()

    stale = runner.invoke(openapi, ["--output", str(target), "--check"])
    written = runner.invoke(openapi, ["--output", str(target)])
    fresh = runner.invoke(openapi, ["--output", str(target), "--check"])

    assert stale.exit_code == 1
    assert "out of date" in stale.output
    assert written.exit_code == 0
    assert target.read_text(encoding="utf-8") == SPEC.read_text(encoding="utf-8")
    assert fresh.exit_code == 0


# --- every operation documented --------------------------------------------------------


def test_every_operation_answers_its_errors_as_problem_json(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert "default" not in responses, (method, path)
        assert set(responses) >= EVERY_ERROR, (method, path)
        for status, response in responses.items():
            document = path.endswith("/document")  # a PDF or its e-invoice, by Accept
            if status == "304":
                assert document and "content" not in response, (method, path, status)
                continue
            content = response["content"]
            if status.startswith("2"):
                media_types = DOCUMENT_TYPES if document else ["application/json"]
                assert list(content) == media_types, (method, path, status)
            else:
                assert list(content) == ["application/problem+json"], (method, path, status)
                problem = content["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}
            assert response["description"], (method, path, status)


def test_every_write_documents_the_body_errors(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if method in WRITES:
            assert set(operation["responses"]) >= WRITE_ERRORS, (method, path)


def test_every_operation_needs_a_key_in_either_header(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes["subscriptionKey"] == {
        **schemes["subscriptionKey"],
        "type": "apiKey",
        "in": "header",
        "name": "X-Subscription-Key",
    }
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"subscriptionKey": []}, {"bearerAuth": []}]
    assert all("security" not in operation for _, _, operation in operations(document))


def test_every_write_takes_an_idempotency_key_a_request_id_and_if_match(
    document: dict[str, Any],
) -> None:
    expected = [
        {"$ref": "#/components/parameters/IdempotencyKey"},
        {"$ref": "#/components/parameters/RequestId"},
        {"$ref": "#/components/parameters/IfMatch"},
    ]
    names = {
        name: document["components"]["parameters"][name]["name"]
        for name in ("IdempotencyKey", "RequestId", "IfMatch")
    }

    for path, method, operation in operations(document):
        if method in WRITES:
            assert all(p in operation["parameters"] for p in expected), (method, path)
    assert names == {
        "IdempotencyKey": "Idempotency-Key",
        "RequestId": "X-Request-ID",
        "IfMatch": "If-Match",
    }


def test_reads_of_an_order_and_of_an_invoice_answer_their_etag(document: dict[str, Any]) -> None:
    order = (
        "/accounting/v1/businesses/{businessCode}/customers/{customerNumber}"
        "/orders/{orderReference}"
    )

    for path in (order, CORRECTION):
        headers = document["paths"][path]["get"]["responses"]["200"]["headers"]
        assert headers["ETag"]["required"] is True


def test_every_answer_carries_its_request_id_and_a_refusal_to_retry_says_when(
    document: dict[str, Any],
) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            headers = response["headers"]
            assert headers["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}
            if status in ("429", "503"):
                assert headers["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
            if method in WRITES and status.startswith("2"):
                assert "Idempotent-Replayed" in headers, (method, path)
    assert document["components"]["headers"]["X-Request-ID"]["required"] is True


def test_the_path_parameters_are_explained_with_the_seeds_values(
    document: dict[str, Any],
) -> None:
    parameters = {
        p["name"]: p
        for item in document["paths"].values()
        for p in item.get("parameters", [])
        if p["in"] == "path"
    }

    assert {name: p["example"] for name, p in parameters.items() if name != "jobId"} == {
        "businessCode": "1000",
        "customerNumber": "TFI2021072801",
        "orderReference": "ODE12345678901",
        "invoiceReference": "IDE12345678901",
        "refundId": "0f5b8e2c-3d4a-4b6e-9c71-2a8d5e6f7a90",
        "webhookId": "6c1d2b9e-7f3a-4e5d-8b2c-1a9f0e4d3c7b",
        "version": 2,
        "creditNoteReference": "GDE12345678901",
    }
    assert "customer identifier" in parameters["customerNumber"]["description"]


# --- examples ----------------------------------------------------------------------------


def test_the_correction_example_is_the_seed_001_sample(document: dict[str, Any]) -> None:
    fixture = ROOT / "tests" / "fixtures" / "seed_001_update_invoice.json"
    seed = jsoncodec.loads(fixture.read_text(encoding="utf-8"))
    put = document["paths"][CORRECTION]["put"]

    example = resolve(
        document, put["requestBody"]["content"]["application/json"]["examples"]["seed001"]
    )

    assert seed == examples.CORRECTION
    assert jsoncodec.loads(json.dumps(example["value"])) == seed


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    for path, method, operation in operations(document):
        bodies = [
            (content, "request")
            for content in operation.get("requestBody", {}).get("content", {}).values()
        ] + [
            (content, status)
            for status, response in operation["responses"].items()
            for content in response.get("content", {}).values()
        ]
        for content, where in bodies:
            for name, example in content.get("examples", {}).items():
                value = resolve(document, example)["value"]
                errors = list(schema_validator(document, content["schema"]).iter_errors(value))
                assert not errors, (method, path, where, name, [e.message for e in errors])
                checked += 1

    assert checked >= 10


def test_the_seed_001_correction_answers_as_its_example_shows(api: Api) -> None:
    """The documented answer is the service's: the customer moved, version 2 goes to the new
    address with the same amounts, the credit note nullifies version 1, nothing is refunded."""
    before_the_move = {**examples.ORDER, "billToAddress": {**examples.BILL_TO, "street": "X"}}
    assert api.create_order(before_the_move).status_code == 200
    assert api.invoice(examples.ORDER_REFERENCE, examples.INVOICE).status_code == 200

    response = api.correct(
        examples.ORDER_REFERENCE, examples.INVOICE_REFERENCE, examples.CORRECTION
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["internalRequestId"] == response.headers["X-Request-ID"]
    documented = jsoncodec.loads(jsoncodec.dumps(examples.CORRECTION_RESPONSE))
    assert {**body, "internalRequestId": examples.REQUEST_ID} == documented
    assert body["after"]["grossTotal"] == Decimal("11.90")


# --- the checker has teeth -----------------------------------------------------------------


ORDER_PATH = "/accounting/v1/businesses/1000/customers/C1/orders/O1"
ORDER_BODY = {
    "orderReference": "O1",
    "customerNumber": "C1",
    "currency": "EUR",
    "version": 1,
    "positions": [],
    "totals": dict.fromkeys(
        (
            "gross",
            "invoiced",
            "cancelled",
            "credited",
            "paid",
            "refunded",
            "balance",
            "refundsPaidOut",
        ),
        0,
    ),
}
HEADERS = {
    "Content-Type": "application/json",
    "X-Request-ID": "7e95eef5-bb98-4b72-b637-59e0dd891a34",
    "ETag": '"1"',
}


def check(
    body: Any, status: int = 200, headers: dict[str, str] | None = None, method: str = "GET"
) -> list[str]:
    raw = json.dumps(body).encode()
    return violations(method, ORDER_PATH, {}, status, headers or HEADERS, raw)


def test_the_checker_passes_an_order_as_documented() -> None:
    assert check(ORDER_BODY) == []


@pytest.mark.parametrize(
    ("body", "status", "headers", "method"),
    [
        ({**ORDER_BODY, "internalNote": "x"}, 200, HEADERS, "GET"),
        ({k: v for k, v in ORDER_BODY.items() if k != "version"}, 200, HEADERS, "GET"),
        ({**ORDER_BODY, "version": "1"}, 200, HEADERS, "GET"),
        (ORDER_BODY, 200, {k: v for k, v in HEADERS.items() if k != "ETag"}, "GET"),
        (ORDER_BODY, 200, {k: v for k, v in HEADERS.items() if k != "X-Request-ID"}, "GET"),
        (ORDER_BODY, 200, {**HEADERS, "Content-Type": "text/html"}, "GET"),
        (ORDER_BODY, 500, HEADERS, "GET"),
        ({"detail": "gone"}, 404, {**HEADERS, "Content-Type": "application/problem+json"}, "GET"),
        ({"detail": "no"}, 405, {**HEADERS, "Content-Type": "application/problem+json"}, "DELETE"),
        (ORDER_BODY, 200, HEADERS, "DELETE"),
    ],
    ids=[
        "an undocumented field",
        "a missing field",
        "a field of another type",
        "a missing ETag",
        "a missing X-Request-ID",
        "another media type",
        "an undocumented status",
        "a problem without its fields",
        "a 405 that is no problem",
        "an undocumented operation that succeeds",
    ],
)
def test_the_checker_refuses(body: Any, status: int, headers: dict[str, str], method: str) -> None:
    assert check(body, status, headers, method)
