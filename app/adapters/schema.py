"""The tables (the domain itself knows no SQL; app/adapters/mapper.py maps rows onto it).

Every table carries business_code, and every primary, unique and foreign key starts with it
(SPEC section 10), so the schema can be distributed by business_code later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

from app.domain.model import REFUND_STATUSES

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# A client's goodwillReference has at most 30 characters; the generated CN-{invoice}-{version}
# of a 30-character invoice reference needs more.
CREDIT_NOTE_REFERENCE_LENGTH = 48


def _business() -> Column[str]:
    return Column("business_code", String(16), primary_key=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _created() -> Column[datetime]:
    # Set by Python so a new row's timestamp is readable without another query.
    return Column("created_at", DateTime(timezone=True), nullable=False, default=utc_now)


def _fk(
    table: str, name: str, column: str, target: str, ondelete: str | None = None
) -> ForeignKeyConstraint:
    """fk_{table}_{name}: (business_code, column) referring to the same columns of target."""
    return ForeignKeyConstraint(
        ["business_code", column],
        [f"{target}.business_code", f"{target}.{column}"],
        name=f"fk_{table}_{name}",
        ondelete=ondelete,
    )


def _order_fk(table: str) -> ForeignKeyConstraint:
    return _fk(table, "order", "order_reference", "orders")


api_keys = Table(
    "api_keys",
    metadata,
    _business(),
    Column("key_id", String(36), primary_key=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("role", String(16), nullable=False),
    Column("name", String(100)),
    _created(),
    Column("revoked_at", DateTime(timezone=True)),
    CheckConstraint("role in ('merchant', 'staff')", name="role"),
    Index("ix_api_keys_key_hash", "key_hash"),
    Index("ix_api_keys_prefix", "prefix"),
)

orders = Table(
    "orders",
    metadata,
    _business(),
    Column("order_reference", String(16), primary_key=True),
    Column("customer_number", String(30), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("version", Integer, nullable=False),
    Column("paid_total", BigInteger, nullable=False),
    Column("refunded_total", BigInteger, nullable=False),
    Column("credited_total", BigInteger, nullable=False),
    Column("header", JSON, nullable=False),
    _created(),
    # Refunds whose payout was confirmed (refunded_total counts them once created).
    Column("refund_paid_total", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("refunded_total <= paid_total", name="refunds_within_payments"),
)

positions = Table(
    "positions",
    metadata,
    _business(),
    Column("order_reference", String(16), primary_key=True),
    Column("item_ref", Integer, primary_key=True),
    Column("state", String(10), nullable=False),
    Column("invoice_reference", String(30)),
    Column("product_id", String(100)),
    Column("description", String(255)),
    Column("quantity_milli", BigInteger, nullable=False),
    Column("unit_gross", BigInteger, nullable=False),
    Column("rate_bp", Integer, nullable=False),
    Column("vat_type", String(10), nullable=False),
    Column("position_type", String(40), nullable=False),
    Column("returned_milli", BigInteger, nullable=False),
    Column("goodwill_amount", BigInteger, nullable=False),
    Column("extra", JSON, nullable=False),
    _order_fk("positions"),
    CheckConstraint("state in ('open', 'invoiced', 'cancelled')", name="state"),
    CheckConstraint("returned_milli <= quantity_milli", name="returns_within_quantity"),
)

invoices = Table(
    "invoices",
    metadata,
    _business(),
    Column("invoice_reference", String(30), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("current_version", Integer, nullable=False),
    _created(),
    _order_fk("invoices"),
    Index("ix_invoices_order", "business_code", "order_reference"),
)

invoice_versions = Table(
    "invoice_versions",
    metadata,
    _business(),
    Column("invoice_reference", String(30), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("status", String(10), nullable=False),
    Column("invoice_date", Date, nullable=False),
    Column("due_date", Date),
    Column("declaration_country", String(2), nullable=False),
    Column("gross", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("vat", BigInteger, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("header", JSON, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("taxes", JSON, nullable=False),
    Column("nullified_by", String(CREDIT_NOTE_REFERENCE_LENGTH)),
    _created(),
    _fk("invoice_versions", "invoice", "invoice_reference", "invoices"),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    _business(),
    Column("reference", String(CREDIT_NOTE_REFERENCE_LENGTH), primary_key=True),
    Column("invoice_reference", String(30), nullable=False),
    Column("nullifies_version", Integer, nullable=False),
    Column("document_date", Date, nullable=False),
    Column("gross", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("vat", BigInteger, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("taxes", JSON, nullable=False),
    _created(),
    _fk("credit_notes", "invoice", "invoice_reference", "invoices"),
    ForeignKeyConstraint(
        ["business_code", "invoice_reference", "nullifies_version"],
        [
            "invoice_versions.business_code",
            "invoice_versions.invoice_reference",
            "invoice_versions.version",
        ],
        name="fk_credit_notes_version",
    ),
    # One credit note per nullified version: a version can be nullified only once.
    Index(
        "uq_credit_notes_version",
        "business_code",
        "invoice_reference",
        "nullifies_version",
        unique=True,
    ),
)

credits = Table(
    "credits",
    metadata,
    _business(),
    Column("kind", String(10), primary_key=True),
    Column("reference", String(30), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("reason", String(40)),
    Column("document_date", Date, nullable=False),
    Column("gross", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("vat", BigInteger, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("taxes", JSON, nullable=False),
    _created(),
    Column("invoice_reference", String(30)),
    Column("credit_date", Date),
    _order_fk("credits"),
    CheckConstraint("kind in ('return', 'goodwill')", name="kind"),
    Index("ix_credits_order", "business_code", "order_reference"),
)

cancellations = Table(
    "cancellations",
    metadata,
    _business(),
    Column("reference", String(30), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("reason", String(40)),
    Column("item_refs", JSON, nullable=False),
    Column("document_date", Date, nullable=False),
    _created(),
    Column("invoice_reference", String(30)),
    _order_fk("cancellations"),
)

payments = Table(
    "payments",
    metadata,
    _business(),
    Column("payment_id", String(36), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("provider", String(40)),
    Column("reference", String(64)),
    Column("payment_date", Date, nullable=False),
    _created(),
    _order_fk("payments"),
    CheckConstraint("amount > 0", name="positive"),
    Index("ix_payments_order", "business_code", "order_reference"),
)

refunds = Table(
    "refunds",
    metadata,
    _business(),
    Column("refund_id", String(36), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),
    Column("cause", String(80), nullable=False),
    Column("bank_details", JSON),
    _created(),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("payout_reference", String(64)),
    Column("failure_reason", String(200)),
    _order_fk("refunds"),
    CheckConstraint("amount > 0", name="positive"),
    CheckConstraint(f"status in {REFUND_STATUSES}", name="status"),
    Index("ix_refunds_order", "business_code", "order_reference"),
    Index("ix_refunds_status", "business_code", "status"),
)

# A credit-transfer file of refunds (pain.001), kept as written; its items name each refund's
# payout attempt once, so no attempt is ever in two files.
refund_exports = Table(
    "refund_exports",
    metadata,
    _business(),
    Column("export_id", String(36), primary_key=True),
    Column("format", String(20), nullable=False),
    Column("message_id", String(35), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("count", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("document", LargeBinary, nullable=False),
    _created(),
)

refund_export_items = Table(
    "refund_export_items",
    metadata,
    _business(),
    Column("refund_id", String(36), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("export_id", String(36), nullable=False),
    Column("order_reference", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    _fk("refund_export_items", "export", "export_id", "refund_exports"),
    _fk("refund_export_items", "refund", "refund_id", "refunds"),
    Index("ix_refund_export_items_export", "business_code", "export_id"),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    _business(),
    Column("entry_id", String(36), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("document_reference", String(64), nullable=False),
    Column("document_date", Date, nullable=False),
    _created(),
    _order_fk("journal_entries"),
    Index("ix_journal_entries_order", "business_code", "order_reference"),
    Index("ix_journal_entries_date", "business_code", "document_date"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    _business(),
    Column("entry_id", String(36), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("account", String(30), nullable=False),
    Column("tax_country", String(2)),
    Column("vat_type", String(10)),
    Column("rate_bp", Integer),
    Column("debit", BigInteger, nullable=False),
    Column("credit", BigInteger, nullable=False),
    _fk("journal_lines", "entry", "entry_id", "journal_entries"),
    CheckConstraint("debit >= 0 and credit >= 0 and (debit = 0 or credit = 0)", name="one_side"),
)

# Requests answered under an Idempotency-Key / X-Request-ID, replayed on a retry.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _business(),
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response_body", JSON),
    Column("response_headers", JSON),
    _created(),
)

# Every business change also writes an event here in the same transaction; the feed and the
# webhooks read it (app/adapters/events.py). `seq` numbers the rows as they are inserted (the
# database fills it: a sequence on PostgreSQL, the rowid on SQLite, migration 0007);
# `position` is the event's place in its business's feed, given only once its transaction has
# committed, so a cursor never passes an event committed late.
outbox = Table(
    "outbox",
    metadata,
    _business(),
    Column("event_id", String(36), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("topic", String(40), nullable=False),
    Column("payload", JSON, nullable=False),
    _created(),
    Column("seq", BigInteger),
    Column("position", BigInteger),
    Index("ix_outbox_created", "business_code", "created_at"),
    Index("uq_outbox_position", "business_code", "position", unique=True),
    # What the numbering looks for: committed events without a position (few at any time).
    Index(
        "ix_outbox_unnumbered",
        "business_code",
        "seq",
        postgresql_where=text("position IS NULL"),
        sqlite_where=text("position IS NULL"),
    ),
)

# A merchant's webhook subscription: where its business's events go, which types, the secret
# they are signed with, and how far delivery has come (`cursor`: the feed position delivered
# through). Deliveries to one endpoint go in feed order, one at a time.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _business(),
    Column("endpoint_id", String(36), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", JSON),
    Column("secret", String(100), nullable=False),
    Column("status", String(10), nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("failing_since", DateTime(timezone=True)),
    Column("disabled_reason", String(300)),
    _created(),
    CheckConstraint("status in ('active', 'disabled')", name="status"),
)

# Each event tried at an endpoint: attempts, outcome, last error (for staff), and replays asked.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _business(),
    Column("endpoint_id", String(36), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("topic", String(40), nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", String(300)),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("latency_ms", Integer),
    _fk("webhook_deliveries", "endpoint", "endpoint_id", "webhook_endpoints", "CASCADE"),
    CheckConstraint("status in ('delivered', 'failing', 'abandoned', 'replay')", name="status"),
    Index("ix_webhook_deliveries_replay", "business_code", "endpoint_id", "status", "position"),
)

# Batch tax corrections (issue 6): a job is one VAT-rate change over a period; its items are
# the invoices it selected, each claimed and corrected in its own transaction.
tax_correction_jobs = Table(
    "tax_correction_jobs",
    metadata,
    _business(),
    Column("job_id", String(36), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("country", String(2), nullable=False),
    Column("vat_type", String(10), nullable=False),
    Column("from_rate_bp", Integer, nullable=False),
    Column("to_rate_bp", Integer, nullable=False),
    Column("period_from", Date, nullable=False),
    Column("period_to", Date, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("total", Integer),
    Column("requested_by", String(16)),
    _created(),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint("status in ('queued', 'running', 'completed')", name="status"),
    Index("ix_tax_correction_jobs_status", "status", "created_at"),
)

tax_correction_items = Table(
    "tax_correction_items",
    metadata,
    _business(),
    Column("job_id", String(36), primary_key=True),
    Column("invoice_reference", String(30), primary_key=True),
    Column("order_reference", String(16), nullable=False),
    Column("status", String(14), nullable=False),
    Column("problem_code", String(40)),
    Column("currency", String(3)),
    Column("old_gross", BigInteger),
    Column("old_net", BigInteger),
    Column("old_vat", BigInteger),
    Column("new_gross", BigInteger),
    Column("new_net", BigInteger),
    Column("new_vat", BigInteger),
    Column("refund", BigInteger),
    Column("worker", String(64)),
    Column("processed_at", DateTime(timezone=True)),
    _fk("tax_correction_items", "job", "job_id", "tax_correction_jobs"),
    _fk("tax_correction_items", "invoice", "invoice_reference", "invoices"),
    CheckConstraint(
        "status in ('pending', 'corrected', 'would-correct', 'blocked', 'unchanged', 'failed')",
        name="status",
    ),
    # Workers claim pending items in invoice order from a cursor: one index range scan each.
    Index(
        "ix_tax_correction_items_claim", "business_code", "job_id", "status", "invoice_reference"
    ),
)
