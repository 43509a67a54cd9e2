"""The event feed and webhook subscriptions over HTTP (docs/api.md, "Events").

Merchant and staff keys read their businesses' feed and manage their webhooks; deliveries and
replays are for staff keys.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import Response, current_app, g
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.adapters.event_data import TYPES, event_type
from app.adapters.events import Endpoint
from app.api import schemas as s
from app.api import views
from app.api.auth import require_staff
from app.api.presenters import timestamp
from app.service.webhooks import Webhooks

WEBHOOK = "/webhooks/<string(maxlength=36):webhookId>"
READ_ERRORS = (400, 401, 404, 422, 429, 503)
WRITE_ERRORS = (400, 401, 404, 409, 413, 415, 422, 429, 503)
MAX_FEED_PAGE = 1000


blp = views.business_blueprint("events", views.PREFIX, "Events: the feed and webhooks")


def _webhooks() -> Webhooks:
    return Webhooks(current_app.extensions["accounting"].session_factory)


class FeedQuerySchema(s.StrictSchema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "The cursor: `next` of the previous page; 0 from the start."},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_FEED_PAGE))
    types = fields.String(
        metadata={"description": "Comma-separated event types; all when omitted."},
        validate=validate.Length(min=1, max=1000),
    )


class FeedEventSchema(Schema):
    id = fields.String(required=True, metadata={"description": "Also the webhook-id."})
    type = fields.String(required=True)
    businessCode = fields.String(required=True)
    occurredAt = fields.DateTime(required=True)
    data = fields.Dict(required=True, metadata={"description": "Per type: docs/api.md."})


class FeedSchema(Schema):
    events = fields.List(fields.Nested(FeedEventSchema), required=True)
    next = fields.Integer(required=True, metadata={"description": "Send as `after` next time."})


class SubscribeSchema(s.StrictSchema):
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "https:// (http:// only to 127.0.0.1, ::1 or localhost)."},
    )
    eventTypes = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        validate=validate.Length(min=1, max=len(TYPES)),
        metadata={"description": "The types to send; every type when omitted."},
    )


class WebhookSchema(Schema):
    id = fields.String(required=True)
    url = fields.String(required=True)
    eventTypes = fields.List(fields.String(), allow_none=True, required=True)
    status = fields.String(required=True, validate=validate.OneOf(("active", "disabled")))
    disabledReason = fields.String(allow_none=True, required=True)
    deliveredThrough = fields.Integer(
        required=True, metadata={"description": "The feed position delivered up to."}
    )
    nextAttemptAt = fields.DateTime(allow_none=True, required=True)
    failingSince = fields.DateTime(allow_none=True, required=True)
    createdAt = fields.DateTime(required=True)


class CreatedWebhookSchema(WebhookSchema):
    internalRequestId = fields.String(required=True)
    secret = fields.String(
        required=True,
        metadata={"description": "The signing secret (whsec_...), answered this once."},
    )


class WebhooksSchema(Schema):
    webhooks = fields.List(fields.Nested(WebhookSchema), required=True)


class DeliverySchema(Schema):
    eventId = fields.String(required=True)
    type = fields.String(required=True)
    position = fields.Integer(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(("delivered", "failing", "abandoned", "replay"))
    )
    attempts = fields.Integer(required=True)
    lastStatusCode = fields.Integer(allow_none=True, required=True)
    lastError = fields.String(allow_none=True, required=True)
    firstAttemptAt = fields.DateTime(allow_none=True, required=True)
    lastAttemptAt = fields.DateTime(allow_none=True, required=True)
    deliveredAt = fields.DateTime(allow_none=True, required=True)
    latencyMs = fields.Integer(allow_none=True, required=True)


class DeliveriesSchema(Schema):
    webhook = fields.Nested(WebhookSchema, required=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)


class DeliveriesQuerySchema(s.StrictSchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ReplaySchema(s.StrictSchema):
    eventId = fields.String(validate=validate.Length(min=1, max=36))
    from_ = s.LenientDate(data_key="from")
    to = s.LenientDate()

    @validates_schema
    def _one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        period = "from_" in data or "to" in data
        if ("eventId" in data) == period:
            raise ValidationError("Send eventId, or from and to.", "eventId")
        if period and not ("from_" in data and "to" in data):
            raise ValidationError("Send from and to together.", "to")
        if period and data["from_"] > data["to"]:
            raise ValidationError("Must not be before from.", "to")


class ReplayedSchema(s.WriteResponseSchema):
    replayed = fields.Integer(required=True, metadata={"description": "Events to send again."})


def _webhook(ep: Endpoint) -> dict[str, Any]:
    return {
        "id": ep.endpoint_id,
        "url": ep.url,
        "eventTypes": ep.event_types,
        "status": ep.status,
        "disabledReason": ep.disabled_reason,
        "deliveredThrough": ep.cursor,
        "nextAttemptAt": timestamp(ep.next_attempt_at),
        "failingSince": timestamp(ep.failing_since),
        "createdAt": timestamp(ep.created_at),
    }


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventId": row["event_id"],
        "type": event_type(row["topic"]),
        "position": row["position"],
        "status": row["status"],
        "attempts": row["attempts"],
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "firstAttemptAt": timestamp(row["first_attempt_at"]),
        "lastAttemptAt": timestamp(row["last_attempt_at"]),
        "deliveredAt": timestamp(row["delivered_at"]),
        "latencyMs": row["latency_ms"],
    }


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(FeedQuerySchema(), location="query")
    @blp.response(200, FeedSchema)
    @views.problems_documented(blp, READ_ERRORS)
    def get(self, query: dict[str, Any], businessCode: str) -> Response:
        """The business's events after a cursor, in commit order; poll with `next`."""
        types = query.get("types")
        wanted = [t.strip() for t in types.split(",") if t.strip()] if types else None
        events, cursor = _webhooks().feed(businessCode, query["after"], query["limit"], wanted)
        return views.json_response({"events": events, "next": cursor})


@blp.route("/webhooks")
class WebhookList(MethodView):
    @blp.arguments(SubscribeSchema())
    @blp.response(200, CreatedWebhookSchema)
    @views.problems_documented(blp, WRITE_ERRORS)
    def post(self, body: dict[str, Any], businessCode: str) -> Response:
        """Subscribe a URL to the business's events; the signing secret is answered once."""
        outcome = _webhooks().subscribe(
            businessCode,
            body["url"],
            body.get("eventTypes"),
            views.idempotency(),
            lambda ep, secret: {
                "internalRequestId": g.request_id,
                **_webhook(ep),
                "secret": secret,
            },
        )
        return views.answer(outcome)

    @blp.response(200, WebhooksSchema)
    @views.problems_documented(blp, READ_ERRORS)
    def get(self, businessCode: str) -> Response:
        """The business's webhooks (never their secrets)."""
        found = _webhooks().endpoints(businessCode)
        return views.json_response({"webhooks": [_webhook(ep) for ep in found]})


@blp.route(WEBHOOK)
class WebhookResource(MethodView):
    @blp.response(200, WebhookSchema)
    @views.problems_documented(blp, READ_ERRORS)
    def get(self, businessCode: str, webhookId: str) -> Response:
        """One webhook: its status, and why it was disabled if it was."""
        return views.json_response(_webhook(_webhooks().endpoint(businessCode, webhookId)))

    @blp.response(200, WebhookSchema)
    @views.problems_documented(blp, READ_ERRORS)
    def delete(self, businessCode: str, webhookId: str) -> Response:
        """Unsubscribe: nothing more is sent to it; answers the webhook as it was."""
        return views.json_response(_webhook(_webhooks().unsubscribe(businessCode, webhookId)))


@blp.route(WEBHOOK + "/deliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveriesQuerySchema(), location="query")
    @blp.response(200, DeliveriesSchema)
    @views.problems_documented(blp, views.STAFF_READ_ERRORS)
    def get(self, query: dict[str, Any], businessCode: str, webhookId: str) -> Response:
        """A webhook's latest deliveries: attempts, status, last error (staff keys)."""
        require_staff(g.principal)
        ep, rows = _webhooks().deliveries(businessCode, webhookId, query["limit"])
        return views.json_response(
            {"webhook": _webhook(ep), "deliveries": [_delivery(r) for r in rows]}
        )


@blp.route(WEBHOOK + "/replay")
class Replay(MethodView):
    @blp.arguments(ReplaySchema())
    @blp.response(200, ReplayedSchema)
    @views.problems_documented(blp, views.STAFF_WRITE_ERRORS)
    def post(self, body: dict[str, Any], businessCode: str, webhookId: str) -> Response:
        """Send one event, or every event of a period (days, UTC), again (staff keys); a
        webhook disabled after failures is enabled again."""
        require_staff(g.principal)
        period = None
        if "from_" in body:
            start = datetime.combine(body["from_"], time(), UTC)
            end = datetime.combine(body["to"], time(), UTC) + timedelta(days=1)
            period = (start, end)
        outcome = _webhooks().replay(
            businessCode,
            webhookId,
            body.get("eventId"),
            period,
            views.idempotency(),
            lambda replayed: {"internalRequestId": g.request_id, "replayed": replayed},
        )
        return views.answer(outcome)
