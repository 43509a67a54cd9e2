"""Batch tax correction jobs over HTTP (issue 6): queue one, then watch its progress.

`accounting worker` processes the jobs; these endpoints only queue and read them. Both need a
staff key: a VAT-rate change touches every invoice of a business.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response, current_app, g, url_for
from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import Session, sessionmaker

from app.api import jsonio, views
from app.api import schemas as s
from app.api.presenters import timestamp
from app.domain.errors import field_errors
from app.domain.money import bp_to_rate, rate_to_bp
from app.domain.tax_change import MODES, TaxChange
from app.service import commands
from app.service import tax_correction as tc

PREFIX = views.PREFIX + "/tax-corrections"
LOCATION = {"Location": {"description": "The job's own URL.", "schema": {"type": "string"}}}


blp = views.business_blueprint("tax_corrections", PREFIX, "Batch tax corrections", staff_only=True)


def _sessions() -> sessionmaker[Session]:
    return current_app.extensions["accounting"].session_factory


# --- bodies ------------------------------------------------------------------------------


class TaxCorrectionSchema(s.PeriodSchema):
    country = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))
    from_ = s.LenientDate(required=True, data_key="from")
    to = s.LenientDate(required=True)
    vatType = fields.String(required=True, validate=validate.OneOf(("NORMAL", "REDUCED")))
    fromRate = s.Number(required=True, minimum=Decimal(0), maximum=Decimal(100))
    toRate = s.Number(required=True, minimum=Decimal(0), maximum=Decimal(100))
    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    dryRun = fields.Boolean(load_default=False)


class ChangeSchema(Schema):
    country = fields.String(required=True)
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    vatType = fields.String(required=True)
    fromRate = fields.Decimal(as_string=False, required=True)
    toRate = fields.Decimal(as_string=False, required=True)
    mode = fields.String(required=True)


class CountsSchema(Schema):
    pending = fields.Integer(required=True)
    corrected = fields.Integer(required=True)
    wouldCorrect = fields.Integer(required=True)
    blocked = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class ProgressSchema(Schema):
    processed = fields.Integer(required=True)
    total = fields.Integer(required=True, allow_none=True)
    percent = fields.Decimal(as_string=False, required=True, allow_none=True)


class ProblemItemSchema(Schema):
    invoiceReference = fields.String(required=True)
    orderReference = fields.String(required=True)
    status = fields.String(required=True)
    code = fields.String(required=True, allow_none=True)


class JobSchema(Schema):
    jobId = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["queued", "running", "completed"]})
    dryRun = fields.Boolean(required=True)
    change = fields.Nested(ChangeSchema, required=True)
    counts = fields.Nested(CountsSchema, required=True)
    progress = fields.Nested(ProgressSchema, required=True)
    problems = fields.List(
        fields.Nested(ProblemItemSchema),
        required=True,
        metadata={"description": f"blocked and failed invoices, the first {tc.PROBLEMS_SHOWN}"},
    )
    createdAt = fields.DateTime(required=True)
    startedAt = fields.DateTime(required=True, allow_none=True)
    finishedAt = fields.DateTime(required=True, allow_none=True)


class QueuedJobSchema(JobSchema, s.WriteResponseSchema):
    pass


# --- endpoints ---------------------------------------------------------------------------


def _rate(value: Any, name: str) -> int:
    if problems := commands.percent_errors(value, name):
        raise field_errors(*problems)
    return rate_to_bp(value)


def _present(report: dict[str, Any]) -> dict[str, Any]:
    job: tc.Job = report["job"]
    change, counts, total = job.change, report["counts"], report["total"]
    processed = report["processed"]
    percent = None
    if total is not None:
        percent = round(Decimal(100 * processed) / total, 1) if total else Decimal(100)
    return {
        "jobId": job.job_id,
        "status": report["status"],
        "dryRun": job.dry_run,
        "change": {
            "country": change.country,
            "from": change.start,
            "to": change.end,
            "vatType": change.vat_type,
            "fromRate": bp_to_rate(change.from_rate_bp),
            "toRate": bp_to_rate(change.to_rate_bp),
            "mode": change.mode,
        },
        "counts": {
            "pending": counts[tc.PENDING],
            "corrected": counts[tc.CORRECTED],
            "wouldCorrect": counts[tc.WOULD_CORRECT],
            "blocked": counts[tc.BLOCKED],
            "unchanged": counts[tc.UNCHANGED],
            "failed": counts[tc.FAILED],
        },
        "progress": {"processed": processed, "total": total, "percent": percent},
        "problems": [
            {
                "invoiceReference": p["invoice_reference"],
                "orderReference": p["order_reference"],
                "status": p["status"],
                "code": p["problem_code"],
            }
            for p in report["problems"]
        ],
        "createdAt": timestamp(report["created_at"]),
        "startedAt": timestamp(report["started_at"]),
        "finishedAt": timestamp(report["finished_at"]),
    }


@blp.route("")
class TaxCorrections(MethodView):
    @blp.arguments(TaxCorrectionSchema())
    @blp.response(202, QueuedJobSchema, headers=LOCATION)
    @views.problems_documented(blp, views.STAFF_WRITE_ERRORS)
    def post(self, body: dict[str, Any], businessCode: str) -> Response:
        """Queue a VAT-rate change for every invoice of a period; a worker carries it out.

        keep-gross keeps prices and splits net and VAT anew; keep-net keeps each unit's net,
        so gross follows the rate (decreases only) and overpayments are refunded. Invoices
        with returns, goodwills or open positions are skipped and listed with their problem.
        """
        change = TaxChange(
            country=body["country"],
            vat_type=body["vatType"],
            from_rate_bp=_rate(body["fromRate"], "fromRate"),
            to_rate_bp=_rate(body["toRate"], "toRate"),
            mode=body["mode"],
            start=body["from_"],
            end=body["to"],
        )

        answer, replayed = tc.create_job(
            _sessions(),
            businessCode,
            change,
            body["dryRun"],
            g.principal.prefix,
            lambda report: {"internalRequestId": g.request_id, **_present(report)},
            views.idempotency(),  # the same key and request fingerprint as every other write
        )
        response = Response(jsonio.dumps(answer), status=202, mimetype="application/json")
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = url_for(
            ".TaxCorrection", businessCode=businessCode, jobId=answer["jobId"]
        )
        return response


@blp.route("/<string(maxlength=36):jobId>")
class TaxCorrection(MethodView):
    @blp.response(200, JobSchema)
    @views.problems_documented(blp, views.STAFF_READ_ERRORS)
    def get(self, businessCode: str, jobId: str) -> Response:
        """A job's status, counts per outcome, progress and the invoices it could not correct."""
        return views.json_response(_present(tc.job_report(_sessions(), businessCode, jobId)))
