"""Refund payouts over HTTP, for staff keys: confirm, fail or retry one refund.

Credit-transfer files are exported with `accounting refunds export`; these endpoints close the
refunds a bank or provider reported on, as `accounting refunds confirm|fail|retry` do.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from marshmallow import fields, post_load, validate

from app.adapters import billing
from app.api import schemas as s
from app.api import views
from app.api.presenters import Presenter
from app.service.refunds import Answering, RefundPayouts

PREFIX = views.PREFIX + "/refunds"
REFUND = "/<string(maxlength=36):refundId>"
WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503)


blp = views.business_blueprint(
    "refund_payouts", PREFIX, "Refund payouts (staff keys)", staff_only=True
)


class ConfirmationSchema(s.StrictSchema):
    confirmedDate = s.LenientDate(
        metadata={"description": "When the payout arrived (the booking date); today if omitted."}
    )

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"when": data.get("confirmedDate")}


class FailureSchema(s.StrictSchema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Why the payout failed, e.g. the bank's return reason."},
    )
    failedDate = s.LenientDate(
        metadata={"description": "When the payout came back (the booking date); today if omitted."}
    )

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"reason": data["reason"], "when": data.get("failedDate")}


class RetrySchema(s.StrictSchema):
    bankDetails = fields.Nested(
        s.BankDetailsSchema,
        metadata={"description": "Where the next payout goes; the refund's own if omitted."},
    )

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"bank_details": billing.account(data.get("bankDetails"))}


class RefundWrittenSchema(s.WriteResponseSchema):
    orderReference = fields.String(required=True)
    refund = fields.Nested(s.RefundSchema, required=True)


def _payouts() -> RefundPayouts:
    return RefundPayouts(current_app.extensions["accounting"].session_factory)


REFUND_WRITTEN = views.written(
    lambda order, refund: {
        "orderReference": order.order_reference,
        "refund": Presenter(order).refund(refund),
    }
)
errors_documented = views.problems_documented(blp, WRITE_ERRORS)


def _answering() -> Answering:
    return Answering(views.idempotency(), views.if_match(), REFUND_WRITTEN)


@blp.route(REFUND + "/confirmation")
class Confirmation(MethodView):
    @blp.arguments(ConfirmationSchema())
    @blp.response(200, RefundWrittenSchema)
    @errors_documented
    def post(self, command: dict[str, Any], businessCode: str, refundId: str) -> Response:
        """Confirm a refund's payout arrived: completed, final; books the money as gone."""
        outcome = _payouts().confirm(businessCode, refundId, command["when"], _answering())
        return views.answer(outcome)


@blp.route(REFUND + "/failure")
class Failure(MethodView):
    @blp.arguments(FailureSchema())
    @blp.response(200, RefundWrittenSchema)
    @errors_documented
    def post(self, command: dict[str, Any], businessCode: str, refundId: str) -> Response:
        """Record that a refund's payout failed: owed again until retried."""
        reason, when = command["reason"], command["when"]
        outcome = _payouts().fail(businessCode, refundId, reason, when, _answering())
        return views.answer(outcome)


@blp.route(REFUND + "/retry")
class Retry(MethodView):
    @blp.arguments(RetrySchema())
    @blp.response(200, RefundWrittenSchema)
    @errors_documented
    def post(self, command: dict[str, Any], businessCode: str, refundId: str) -> Response:
        """Owe a failed refund again, to new bank details if given; the next payout pays it."""
        outcome = _payouts().retry(businessCode, refundId, command["bank_details"], _answering())
        return views.answer(outcome)
