"""The one place where errors become RFC 9457 problem+json (SPEC section 8)."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from flask import Flask, Response, g, make_response
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException

from app.api import jsonio
from app.domain.errors import (
    DomainError,
    FieldError,
    NotFound,
    RuleViolation,
    StaleVersion,
    StateConflict,
    describe,
)
from app.service.unit_of_work import Busy, DatabaseUnavailable, RequestInFlight, unavailable

log = logging.getLogger("app.errors")

PROBLEM = "application/problem+json"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class RateLimited(DomainError):
    code = "rate-limited"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class PreconditionRequired(DomainError):
    code = "precondition-malformed"


STATUS: list[tuple[type[DomainError], int]] = [
    (RuleViolation, 422),
    (StateConflict, 409),
    (NotFound, 404),
    (StaleVersion, 412),
    (PreconditionRequired, 400),
    (Busy, 503),
    (DatabaseUnavailable, 503),
    (Unauthorized, 401),
    (Forbidden, 403),
    (RateLimited, 429),
]

HTTP_CODES = {
    400: "malformed-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "rate-limited",
}

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# The domain and the use cases name a refused value in their own words, by its path in the
# command (`order.items[1].unit_gross`); the body names it so (`order.items[1].grossUnitPrice`).
# A name not listed here is the body's already.
WIRE_NAMES = {
    "item_ref": "orderItemReference",
    "quantity_milli": "quantity",
    "unit_gross": "grossUnitPrice",
    "unit_vat": "vatAmount",
    "vat_percent": "vatPercent",
    "rate_bp": "vatPercent",
    "vat_type": "vatType",
    "vat_id": "billToAddress.taxIdentificationNumber",
    "declaration_country": "vatDeclarationCountry",
    "customer_number": "customerNumber",
    "order_reference": "orderReference",
    "invoice_reference": "invoiceReference",
    "invoice_date": "invoiceDate",
    "due_date": "dueDate",
    "credit_note_reference": "goodwillReference",
    "return_reference": "returnReference",
    "goodwill_reference": "goodwillReference",
    "amount": "authorizedAmount",
    "from_rate_bp": "fromRate",
    "to_rate_bp": "toRate",
    "end": "to",
    "event_types": "eventTypes",
}
_NAME = re.compile(r"\w+")


def wire_path(path: str) -> str:
    """A field path in the domain's words as the request body spells it."""
    return _NAME.sub(lambda name: WIRE_NAMES.get(name[0], name[0]), path)


def _on_the_wire(error: DomainError) -> tuple[str, list[FieldError]]:
    """The error's detail and field problems, every field named as the body names it."""
    errors = [dataclasses.replace(e, field=wire_path(e.field)) for e in error.errors]
    # A detail that only lists the field problems lists them by their wire names too.
    detail = describe(errors) if error.detail == describe(error.errors) else error.detail
    return detail, errors


def problem(
    status: int,
    code: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response carrying the request id."""
    body: dict[str, Any] = {
        "type": f"https://errors.accounting.example/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "requestId": g.get("request_id", ""),
        "errors": [{"field": e.field, "code": e.code, "message": e.message} for e in errors or []],
    }
    response = make_response(jsonio.dumps(body), status)
    response.mimetype = PROBLEM
    response.headers.update(headers)
    return response


def flatten(messages: Any, path: str = "") -> list[FieldError]:
    """marshmallow's nested error dict to one FieldError per field path."""
    if isinstance(messages, dict):
        result = []
        for key, value in messages.items():
            if key == "_schema":
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            result.extend(flatten(value, child))
        return result
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [FieldError(path or "body", _field_code(m), m) for m in messages]
    if isinstance(messages, list):
        return [e for m in messages for e in flatten(m, path)]
    return [FieldError(path or "body", _field_code(str(messages)), str(messages))]


def _field_code(message: str) -> str:
    lowered = message.lower()
    for needle, code in (
        ("unknown field", "unknown-field"),
        ("out of range: dates", "date-out-of-range"),
        ("not money", "currency-not-money"),
        ("more than once", "duplicate-position"),
        ("missing data", "required"),
        ("not a valid", "invalid"),
        ("must be one of", "not-allowed"),
        ("decimals", "too-many-decimals"),
        ("length", "invalid-length"),
    ):
        if needle in lowered:
            return code
    return "invalid"


def database_unavailable(error: BaseException) -> Response:
    """503 database-unavailable with Retry-After, for a failure of the database itself."""
    log.warning("database unavailable", extra={"error": type(error).__name__})
    return problem(
        503,
        DatabaseUnavailable.code,
        "the database is unavailable; retry shortly",
        headers={"Retry-After": "1"},
    )


def _domain_status(error: DomainError) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 422


def register(app: Flask) -> None:
    """Install the handlers; the catch-all answers a plain 500 and logs the trace."""

    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> Response:
        status = _domain_status(error)
        headers = {}
        if isinstance(error, Busy | RequestInFlight | DatabaseUnavailable):
            headers["Retry-After"] = "1"
        if isinstance(error, RateLimited):
            headers["Retry-After"] = str(error.retry_after)
        detail, errors = _on_the_wire(error)
        return problem(status, error.code, detail, errors, headers)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if status == 400 and messages and "json" in messages:
            return problem(400, "malformed-json", "the body is not valid JSON")
        if messages:
            # webargs nests the errors under the location ("json", "query").
            errors = [e for location in messages.values() for e in flatten(location)]
            return problem(status, HTTP_CODES.get(status, "invalid"), describe(errors), errors)
        headers = {}
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return problem(
            status,
            HTTP_CODES.get(status, f"http-{status}"),
            error.description or TITLES.get(status, "Error"),
            headers=headers,
        )

    @app.errorhandler(DBAPIError)
    @app.errorhandler(SQLAlchemyTimeoutError)
    def _database(error: SQLAlchemyError) -> Response:
        # Outside a use case (a key's lookup): the database failing is a 503, never a 500.
        return database_unavailable(error) if unavailable(error) else _unexpected(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error", extra={"error": type(error).__name__})
        return problem(500, "internal-error", "an unexpected error occurred; it has been logged")
