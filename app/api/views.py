"""The HTTP endpoints: parse, call one use case, present. Nothing else happens here."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import jsonio
from app.api import schemas as s
from app.api.auth import require_business, require_staff
from app.api.errors import PreconditionRequired
from app.api.jsonio import DecimalParser
from app.api.presenters import Presenter, tax_report
from app.domain.errors import FieldError, field_errors
from app.domain.model import InvoiceSpec
from app.service.commands import (
    Cancel,
    CorrectInvoice,
    CreateOrder,
    GrantGoodwill,
    ReceivePayment,
    ReturnItems,
)
from app.service.orders import Context, Idempotency, OrderService, Outcome, Present

PREFIX = "/accounting/v1/businesses/<string(maxlength=16):businessCode>"
ORDERS = "/customers/<string(maxlength=30):customerNumber>/orders"
ORDER = ORDERS + "/<string(maxlength=16):orderReference>"
ERRORS = (400, 401, 404, 409, 412, 413, 415, 422, 429, 503)
# The staff-only endpoints' problems (tax correction jobs, webhook deliveries and replays).
STAFF_READ_ERRORS = (400, 401, 403, 404, 422, 429, 503)
STAFF_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
_PARAMETER = re.compile(r"^<(?:[^:>]*:)?(\w+)>$")  # a rule's segment naming a path parameter


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = DecimalParser()


def business_blueprint(
    name: str, prefix: str, description: str, staff_only: bool = False
) -> ApiBlueprint:
    """A blueprint under a business's path: every request needs a key holding that business
    (a staff key when `staff_only`), and a path that is not UTF-8 is refused by name."""
    made = ApiBlueprint(name, __name__, url_prefix=prefix, description=description)

    @made.before_request
    def _authorize() -> None:
        principal = require_business((request.view_args or {}).get("businessCode", ""))
        if staff_only:
            require_staff(principal)
        g.principal = principal

    made.before_request(refuse_undecodable_path)
    return made


def _raw_path(environ: Mapping[str, Any]) -> bytes:
    """The path's bytes as the client sent them, percent escapes decoded.

    PATH_INFO holds them read as latin-1 (PEP 3333), but some servers and werkzeug's test
    client decode it with replacement characters first; the request line itself, where the
    server passes it on (RAW_URI, REQUEST_URI), is the first source.
    """
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        path = uri.split("?", 1)[0] if uri.startswith("/") else urlsplit(uri).path
        try:
            return unquote_to_bytes(path.encode("latin-1"))
        except UnicodeEncodeError:
            pass  # not the request line's bytes: PATH_INFO then
    return str(environ.get("PATH_INFO", "")).encode("latin-1", "replace")


def _not_utf8(segment: bytes) -> bool:
    try:
        segment.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def refuse_undecodable_path() -> None:
    """A path parameter whose bytes are not UTF-8 is a 422 naming it (`invalid-utf8`).

    werkzeug reads such bytes as replacement characters, so different byte strings would name
    one and the same order. Runs after the key is authorized for the business: a business the
    key does not hold stays a 404 whatever its path.
    """
    raw = _raw_path(request.environ)
    if not _not_utf8(raw):
        return
    rule = request.url_rule.rule.split("/") if request.url_rule is not None else []
    # The rule matched PATH_INFO, which ends the path; a mount point (SCRIPT_NAME) may lead.
    named = [
        match.group(1)
        for template, segment in zip(reversed(rule), reversed(raw.split(b"/")), strict=False)
        if (match := _PARAMETER.match(template)) and _not_utf8(segment)
    ]
    if not named:
        values = (request.view_args or {}).items()
        named = [name for name, value in values if "\ufffd" in str(value)] or ["path"]
    raise field_errors(
        *(FieldError(name, "invalid-utf8", "not valid UTF-8 text") for name in reversed(named))
    )


blp = business_blueprint("accounting", PREFIX, "Orders and invoices")


def service() -> OrderService:
    result: OrderService = current_app.extensions["accounting"].orders
    return result


def located(businessCode: str, customerNumber: str, orderReference: str, **_: Any) -> Context:
    """The order addressed by the path."""
    return Context(businessCode, customerNumber, orderReference)


def context(businessCode: str, customerNumber: str, orderReference: str, **_: Any) -> Context:
    """The order addressed by the path, with the client's If-Match and idempotency key."""
    return Context(
        businessCode, customerNumber, orderReference, if_match=if_match(), idempotency=idempotency()
    )


def if_match() -> int | None:
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 9:
        raise PreconditionRequired(f'If-Match must be an ETag from a read, like "3"; got {value}')
    return int(tag)


def idempotency() -> Idempotency | None:
    """Idempotency-Key, or else X-Request-ID, with a fingerprint of the request it names."""
    # Both headers are checked when sent, whichever is the key (openapi.yaml's pattern).
    malformed = [
        FieldError(name, "invalid", "1-128 printable ASCII characters")
        for name in ("Idempotency-Key", "X-Request-ID")
        if (value := request.headers.get(name)) is not None
        and not (1 <= len(value) <= 128 and value.isascii() and value.isprintable())
    ]
    if malformed:
        raise field_errors(*malformed)
    header = "Idempotency-Key" if "Idempotency-Key" in request.headers else "X-Request-ID"
    key = request.headers.get(header)
    if key is None:
        return None
    body = jsonio.loads(request.get_data(cache=True) or b"null")
    fingerprint = f"{request.method} {request.path}?{request.query_string.decode()} "
    digest = hashlib.sha256((fingerprint + jsonio.dumps(body, sort_keys=True)).encode())
    return Idempotency(key, digest.hexdigest())


def json_response(body: dict[str, Any]) -> Response:
    """A presenter's body as sent: its shape is openapi.yaml's, which the contract tests check
    on every answer."""
    return Response(jsonio.dumps(body), mimetype="application/json")


def answer(outcome: Outcome) -> Response:
    """The write's stored body as sent the first time; replays say so."""
    response = json_response(outcome.body)
    if outcome.version is not None:
        g.etag = outcome.version
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def written(render: Callable[[Any, Any], dict[str, Any]]) -> Present:
    """A write's answer: its internalRequestId, then what `render` makes of the order and the
    use case's result."""
    return lambda order, result: {"internalRequestId": g.request_id, **render(order, result)}


# What the server itself answers for any path before the app sees the request (app/server.py):
# a malformed request, a request line or headers too long.
SERVER_REFUSALS = (400, 414, 431)


def problems_documented(blueprint: Blueprint, statuses: tuple[int, ...]) -> Any:
    """Document problem+json answers for these statuses, and the server's own refusals, on a
    view."""

    def document(func: Any) -> Any:
        for status in sorted({*statuses, *SERVER_REFUSALS}):
            func = blueprint.alt_response(
                status, schema=s.ProblemSchema, content_type="application/problem+json"
            )(func)
        return func

    return document


errors_documented = problems_documented(blp, ERRORS)


EVENT = written(lambda order, effects: Presenter(order).event(effects))
ORDER_WRITTEN = written(lambda order, _: Presenter(order).order_body())
INVOICE_WRITTEN = written(lambda order, invoice: Presenter(order).invoice(invoice))


@blp.route(ORDERS)
class Orders(MethodView):
    @blp.arguments(s.OrderSchema())
    @blp.response(200, s.OrderResponseSchema)
    @errors_documented
    def post(self, command: CreateOrder, **path: str) -> Response:
        """Create an order: positions as sent; nothing is booked yet."""
        ctx = context(**path, orderReference=command.order_reference)
        return answer(service().create_order(ctx, command, ORDER_WRITTEN))


@blp.route(ORDER)
class OrderResource(MethodView):
    @blp.response(200, s.OrderBodySchema)
    @errors_documented
    def get(self, **path: str) -> Response:
        """Read an order: positions with their states, and its totals."""
        order = service().get_order(located(**path))
        g.etag = order.version
        return json_response(Presenter(order).order_body())


@blp.route(ORDER + "/invoices")
class Invoices(MethodView):
    @blp.arguments(s.CreateInvoiceSchema())
    @blp.response(200, s.InvoiceResponseSchema)
    @errors_documented
    def post(self, spec: InvoiceSpec, **path: str) -> Response:
        """Invoice whole open positions; books receivable against revenue and VAT."""
        return answer(service().create_invoice(context(**path), spec, INVOICE_WRITTEN))


@blp.route(ORDER + "/invoices/<string(maxlength=30):invoiceReference>")
class InvoiceResource(MethodView):
    @blp.response(200, s.InvoiceBodySchema)
    @errors_documented
    def get(self, invoiceReference: str, **path: str) -> Response:
        """Read an invoice with every version and credit note."""
        order, invoice = service().get_invoice(located(**path), invoiceReference)
        g.etag = order.version
        return json_response(Presenter(order).invoice(invoice))

    @blp.arguments(s.CorrectionQuerySchema(), location="query")
    @blp.arguments(s.CorrectionSchema())
    @blp.response(200, s.CorrectionResponseSchema)
    @errors_documented
    def put(
        self, query: dict[str, Any], command: CorrectInvoice, invoiceReference: str, **path: str
    ) -> Response:
        """Correct an issued invoice: credit note, new version, tax rebooking, refund."""
        dry_run = query["dryRun"]
        outcome = service().correct_invoice(
            context(**path),
            invoiceReference,
            command,
            written(lambda order, result: Presenter(order).correction(result, dry_run)),
            dry_run,
        )
        return answer(outcome)

    post = put


@blp.route(ORDER + "/cancellations")
class Cancellations(MethodView):
    @blp.arguments(s.CancellationSchema())
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, command: Cancel, **path: str) -> Response:
        """Cancel whole open positions; refunds what was paid for them, if anything."""
        return answer(service().cancel(context(**path), command, EVENT))


@blp.route(ORDER + "/returns")
class Returns(MethodView):
    @blp.arguments(s.ReturnSchema())
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, command: ReturnItems, **path: str) -> Response:
        """Return whole or partial quantities of invoiced positions."""
        return answer(service().return_items(context(**path), command, EVENT))


@blp.route(ORDER + "/goodwills")
class Goodwills(MethodView):
    @blp.arguments(s.GoodwillSchema())
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, command: GrantGoodwill, **path: str) -> Response:
        """Credit a gross amount on invoiced positions."""
        return answer(service().grant_goodwill(context(**path), command, EVENT))


@blp.route(ORDER + "/payments")
class Payments(MethodView):
    @blp.arguments(s.PaymentSchema())
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, command: ReceivePayment, **path: str) -> Response:
        """Book a payment; without an amount, everything that is open."""
        return answer(service().receive_payment(context(**path), command, EVENT))


@blp.route(ORDER + "/refunds")
class Refunds(MethodView):
    @blp.response(200, s.RefundsResponseSchema)
    @errors_documented
    def get(self, **path: str) -> Response:
        """Refunds of an order, oldest first."""
        order, refunds = service().refunds(located(**path))
        presenter = Presenter(order)
        return json_response({"refunds": [presenter.refund(r) for r in refunds]})


@blp.route(ORDER + "/journal")
class Journal(MethodView):
    @blp.response(200, s.JournalResponseSchema)
    @errors_documented
    def get(self, **path: str) -> Response:
        """The ledger entries booked for an order."""
        order, entries = service().journal(located(**path))
        presenter = Presenter(order)
        return json_response({"entries": [presenter.journal_entry(e) for e in entries]})


@blp.route("/tax-report")
class TaxReport(MethodView):
    @blp.arguments(s.TaxReportQuerySchema(), location="query")
    @blp.response(200, s.TaxReportResponseSchema)
    @errors_documented
    def get(self, query: dict[str, Any], businessCode: str) -> Response:
        """VAT booked in a period by declaration country, VAT type and rate."""
        start, end = query["from_"], query["to"]
        return json_response(tax_report(start, end, service().tax_report(businessCode, start, end)))


def add_etag(response: Response) -> Response:
    if g.get("etag") is not None and response.status_code < 300:
        response.headers["ETag"] = f'"{g.etag}"'
    return response
