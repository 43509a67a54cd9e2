"""Business facts that refuse a request; the API layer turns them into problem+json."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one value of a request, named by its path in the use case's input in
    the domain's own names (`order.items[1].unit_gross`); the API names it as the body does."""

    field: str
    code: str
    message: str


class DomainError(Exception):
    """A request the business rules refuse."""

    code = "rule-violation"

    def __init__(
        self, detail: str, errors: list[FieldError] | None = None, code: str | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        if code:
            self.code = code


class RuleViolation(DomainError):
    """The request itself breaks a rule (HTTP 422)."""


class StateConflict(DomainError):
    """The request does not fit the current state of the order (HTTP 409)."""

    code = "state-conflict"


class NotFound(DomainError):
    """Nothing of that reference exists for this business and customer (HTTP 404)."""

    code = "not-found"


class StaleVersion(DomainError):
    """The client's If-Match names an older version (HTTP 412)."""

    code = "precondition-failed"


def describe(errors: Iterable[FieldError]) -> str:
    """The detail of a refusal that is nothing but field problems."""
    return "; ".join(f"{e.field}: {e.message}" for e in errors)


def field_errors(*errors: FieldError) -> RuleViolation:
    """A 422 listing every field problem at once."""
    code = errors[0].code if len({e.code for e in errors}) == 1 else "validation-failed"
    return RuleViolation(describe(errors), list(errors), code=code)
