"""The HTTP endpoints: parse, call one use case, present. Nothing else happens here."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import schemas as s
from app.api.auth import require_business
from app.api.errors import PreconditionRequired
from app.api.jsonio import DecimalParser
from app.api.presenters import Presenter
from app.domain.money import bp_to_rate, to_major
from app.service.orders import Context, OrderService

PREFIX = "/accounting/v1/businesses/<string(maxlength=16):business>"
ORDER = "/customers/<string(maxlength=30):customer>/orders/<string(maxlength=16):order_ref>"
ERRORS = (400, 401, 404, 409, 412, 413, 415, 422, 429, 503)


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = DecimalParser()


blp = ApiBlueprint("accounting", __name__, url_prefix=PREFIX, description="Orders and invoices")


@blp.before_request
def _authorize() -> None:
    g.principal = require_business((request.view_args or {}).get("business", ""))


def service() -> OrderService:
    result: OrderService = current_app.extensions["accounting"].orders
    return result


def context(business: str, customer: str, order_ref: str) -> Context:
    """The order addressed by the path, with the client's If-Match if any."""
    return Context(business, customer, order_ref, if_match=_if_match())


def _if_match() -> int | None:
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 9:
        raise PreconditionRequired(f'If-Match must be an ETag from a read, like "3"; got {value}')
    return int(tag)


def written(body: dict[str, Any], version: int | None = None) -> dict[str, Any]:
    """Every write answers with internalRequestId; the order's new version is the ETag."""
    if version is not None:
        g.etag = version
    return {"internalRequestId": g.request_id, **body}


def errors_documented(func: Any) -> Any:
    for status in ERRORS:
        func = blp.alt_response(
            status, schema=s.ProblemSchema, content_type="application/problem+json"
        )(func)
    return func


@blp.route("/customers/<string(maxlength=30):customer>/orders")
class Orders(MethodView):
    @blp.arguments(s.OrderSchema)
    @blp.response(200, s.OrderResponseSchema)
    @errors_documented
    def post(self, body: dict[str, Any], business: str, customer: str) -> dict[str, Any]:
        """Create an order: positions as sent; nothing is booked yet."""
        order = service().create_order(business, customer, body)
        return written(Presenter(order).order_body(), order.version)


@blp.route(ORDER)
class OrderResource(MethodView):
    @blp.response(200, s.OrderBodySchema)
    @errors_documented
    def get(self, business: str, customer: str, order_ref: str) -> dict[str, Any]:
        """Read an order: positions with their states, and its totals."""
        order = service().get_order(Context(business, customer, order_ref))
        g.etag = order.version
        return Presenter(order).order_body()


@blp.route(ORDER + "/invoices")
class Invoices(MethodView):
    @blp.arguments(s.CreateInvoiceSchema)
    @blp.response(200, s.InvoiceResponseSchema)
    @errors_documented
    def post(self, body: dict[str, Any], business: str, customer: str, order_ref: str) -> Any:
        """Invoice whole open positions; books receivable against revenue and VAT."""
        ctx = context(business, customer, order_ref)
        service().create_invoice(ctx, body)
        order, invoice = service().get_invoice(
            Context(business, customer, order_ref), body["invoiceReference"]
        )
        return written(Presenter(order).invoice(invoice), order.version)


@blp.route(ORDER + "/invoices/<string(maxlength=30):invoice_ref>")
class InvoiceResource(MethodView):
    @blp.response(200, s.InvoiceBodySchema)
    @errors_documented
    def get(self, business: str, customer: str, order_ref: str, invoice_ref: str) -> Any:
        """Read an invoice with every version and credit note."""
        order, invoice = service().get_invoice(Context(business, customer, order_ref), invoice_ref)
        g.etag = order.version
        return Presenter(order).invoice(invoice)

    @blp.arguments(s.CorrectionQuerySchema, location="query")
    @blp.arguments(s.CorrectionSchema)
    @blp.response(200, s.CorrectionResponseSchema)
    @errors_documented
    def put(
        self,
        query: dict[str, Any],
        body: dict[str, Any],
        business: str,
        customer: str,
        order_ref: str,
        invoice_ref: str,
    ) -> Any:
        """Correct an issued invoice: credit note, new version, tax rebooking, refund."""
        ctx = context(business, customer, order_ref)
        result = service().correct_invoice(ctx, invoice_ref, body, query["dryRun"])
        order, _ = service().get_invoice(Context(business, customer, order_ref), invoice_ref)
        presenter = Presenter(order)
        return written(presenter.correction(result, query["dryRun"]), order.version)

    post = put


def _event(effects: Any, reference: str, business: str, customer: str, order_ref: str) -> Any:
    order = service().get_order(Context(business, customer, order_ref))
    presenter = Presenter(order)
    body = {
        "reference": reference,
        "order": presenter.order_body(),
        "refund": presenter.refund(effects.refund),
    }
    return written(body, order.version)


@blp.route(ORDER + "/cancellations")
class Cancellations(MethodView):
    @blp.arguments(s.CancellationSchema)
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, body: dict[str, Any], business: str, customer: str, order_ref: str) -> Any:
        """Cancel whole open positions; refunds what was paid for them, if anything."""
        reference, effects = service().cancel(context(business, customer, order_ref), body)
        return _event(effects, reference, business, customer, order_ref)


@blp.route(ORDER + "/returns")
class Returns(MethodView):
    @blp.arguments(s.ReturnSchema)
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, body: dict[str, Any], business: str, customer: str, order_ref: str) -> Any:
        """Return whole or partial quantities of invoiced positions."""
        effects = service().return_items(context(business, customer, order_ref), body)
        return _event(effects, body["returnReference"], business, customer, order_ref)


@blp.route(ORDER + "/goodwills")
class Goodwills(MethodView):
    @blp.arguments(s.GoodwillSchema)
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, body: dict[str, Any], business: str, customer: str, order_ref: str) -> Any:
        """Credit a gross amount on invoiced positions."""
        effects = service().grant_goodwill(context(business, customer, order_ref), body)
        return _event(effects, body["goodwillReference"], business, customer, order_ref)


@blp.route(ORDER + "/payments")
class Payments(MethodView):
    @blp.arguments(s.PaymentSchema)
    @blp.response(200, s.EventResponseSchema)
    @errors_documented
    def post(self, body: dict[str, Any], business: str, customer: str, order_ref: str) -> Any:
        """Book a payment; without an amount, everything that is open."""
        payment = service().receive_payment(context(business, customer, order_ref), body)
        order = service().get_order(Context(business, customer, order_ref))
        body = {
            "reference": payment.payment_id,
            "order": Presenter(order).order_body(),
            "refund": None,
        }
        return written(body, order.version)


@blp.route(ORDER + "/refunds")
class Refunds(MethodView):
    @blp.response(200, s.RefundsResponseSchema)
    @errors_documented
    def get(self, business: str, customer: str, order_ref: str) -> Any:
        """Refunds of an order, oldest first."""
        order, refunds = service().refunds(Context(business, customer, order_ref))
        presenter = Presenter(order)
        return {"refunds": [presenter.refund(r) for r in refunds]}


@blp.route(ORDER + "/journal")
class Journal(MethodView):
    @blp.response(200, s.JournalResponseSchema)
    @errors_documented
    def get(self, business: str, customer: str, order_ref: str) -> Any:
        """The ledger entries booked for an order."""
        order, entries = service().journal(Context(business, customer, order_ref))
        presenter = Presenter(order)
        return {"entries": [presenter.journal_entry(e) for e in entries]}


@blp.route("/tax-report")
class TaxReport(MethodView):
    @blp.arguments(s.TaxReportQuerySchema, location="query")
    @blp.response(200, s.TaxReportResponseSchema)
    @errors_documented
    def get(self, query: dict[str, Any], business: str) -> Any:
        """VAT booked in a period by declaration country, VAT type and rate."""
        rows = service().tax_report(business, query["from_"], query["to"])
        return {
            "from_": query["from_"],
            "to": query["to"],
            "rows": [
                {
                    "currency": r["currency"],
                    "declarationCountry": r["country"],
                    "vatType": r["vat_type"],
                    "vatPercent": bp_to_rate(r["rate_bp"]),
                    "net": to_major(r["net"], r["currency"]),
                    "vat": to_major(r["vat"], r["currency"]),
                    "gross": to_major(r["net"] + r["vat"], r["currency"]),
                }
                for r in rows
            ],
        }


def add_etag(response: Response) -> Response:
    if g.get("etag") is not None and response.status_code < 300:
        response.headers["ETag"] = f'"{g.etag}"'
    return response
