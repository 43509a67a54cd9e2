"""event feed and webhooks: feed positions on the outbox, webhook endpoints and deliveries

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Keep every migration backward compatible with the code still running: add before you use,
stop using before you drop. Every table's keys start with business_code.

The outbox gains `seq` (the order rows were inserted in, filled by the database: a sequence's
default on PostgreSQL, a trigger copying the rowid on SQLite) and `position` (the event's place
in its business's feed, given after commit; NULL until then). Code that does not know them
keeps inserting as before. The two webhook tables are new.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _outbox_columns() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE outbox_seq AS BIGINT")
        # Existing rows are numbered too (a volatile default fills them in).
        op.add_column(
            "outbox",
            sa.Column("seq", sa.BigInteger(), server_default=sa.text("nextval('outbox_seq')")),
        )
        op.execute("ALTER SEQUENCE outbox_seq OWNED BY outbox.seq")
        op.add_column("outbox", sa.Column("position", sa.BigInteger(), nullable=True))
    else:
        with op.batch_alter_table("outbox") as batch_op:
            batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
            batch_op.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
        op.execute("UPDATE outbox SET seq = rowid")
        op.execute(
            "CREATE TRIGGER outbox_seq AFTER INSERT ON outbox FOR EACH ROW WHEN NEW.seq IS NULL"
            " BEGIN UPDATE outbox SET seq = NEW.rowid WHERE rowid = NEW.rowid; END"
        )
    op.create_index(
        "uq_outbox_position", "outbox", ["business_code", "position"], unique=True
    )
    op.create_index(
        "ix_outbox_unnumbered",
        "outbox",
        ["business_code", "seq"],
        unique=False,
        postgresql_where=sa.text("position IS NULL"),
        sqlite_where=sa.text("position IS NULL"),
    )


def upgrade() -> None:
    _outbox_columns()
    op.create_table(
        "webhook_endpoints",
        sa.Column("business_code", sa.String(16), nullable=False),
        sa.Column("endpoint_id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status in ('active', 'disabled')", name=op.f("ck_webhook_endpoints_status")
        ),
        sa.PrimaryKeyConstraint(
            "business_code", "endpoint_id", name=op.f("pk_webhook_endpoints")
        ),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("business_code", sa.String(16), nullable=False),
        sa.Column("endpoint_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status in ('delivered', 'failing', 'abandoned', 'replay')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["business_code", "endpoint_id"],
            ["webhook_endpoints.business_code", "webhook_endpoints.endpoint_id"],
            name="fk_webhook_deliveries_endpoint",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "business_code", "endpoint_id", "event_id", name=op.f("pk_webhook_deliveries")
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_replay",
        "webhook_deliveries",
        ["business_code", "endpoint_id", "status", "position"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_replay", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_outbox_unnumbered", table_name="outbox")
    op.drop_index("uq_outbox_position", table_name="outbox")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("outbox", "position")
        op.drop_column("outbox", "seq")  # drops the sequence it owns
    else:
        op.execute("DROP TRIGGER IF EXISTS outbox_seq")
        with op.batch_alter_table("outbox") as batch_op:
            batch_op.drop_column("position")
            batch_op.drop_column("seq")
