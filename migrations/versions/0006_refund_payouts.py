"""refund payouts: refund states, credit-transfer files and the refunds each file holds

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Keep every migration backward compatible with the code still running: add before you use,
stop using before you drop. Every table's keys start with business_code.

A refund is pending, in payout, completed or failed. New columns have defaults (a refund never
paid out: attempt 0; an order with no confirmed refund: 0), the status check only widens, and
the two tables are new: code that does not know them keeps running.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status in ('pending', 'completed', 'failed')"
NEW_STATUSES = "status in ('pending', 'in_payout', 'completed', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(
            sa.Column("refund_paid_total", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.add_column(
            sa.Column("attempt", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("payout_reference", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("failure_reason", sa.String(200), nullable=True))
        batch_op.drop_constraint(op.f("ck_refunds_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_refunds_status"), sa.text(NEW_STATUSES))
        batch_op.create_index("ix_refunds_status", ["business_code", "status"], unique=False)
    op.create_table(
        "refund_exports",
        sa.Column("business_code", sa.String(16), nullable=False),
        sa.Column("export_id", sa.String(36), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(35), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("business_code", "export_id", name=op.f("pk_refund_exports")),
    )
    op.create_table(
        "refund_export_items",
        sa.Column("business_code", sa.String(16), nullable=False),
        sa.Column("refund_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.String(36), nullable=False),
        sa.Column("order_reference", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_code", "export_id"],
            ["refund_exports.business_code", "refund_exports.export_id"],
            name="fk_refund_export_items_export",
        ),
        sa.ForeignKeyConstraint(
            ["business_code", "refund_id"],
            ["refunds.business_code", "refunds.refund_id"],
            name="fk_refund_export_items_refund",
        ),
        sa.PrimaryKeyConstraint(
            "business_code", "refund_id", "attempt", name=op.f("pk_refund_export_items")
        ),
    )
    with op.batch_alter_table("refund_export_items") as batch_op:
        batch_op.create_index(
            "ix_refund_export_items_export", ["business_code", "export_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("refund_export_items") as batch_op:
        batch_op.drop_index("ix_refund_export_items_export")
    op.drop_table("refund_export_items")
    op.drop_table("refund_exports")
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.drop_index("ix_refunds_status")
        batch_op.drop_constraint(op.f("ck_refunds_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_refunds_status"), sa.text(OLD_STATUSES))
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("payout_reference")
        batch_op.drop_column("attempt")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("refund_paid_total")
