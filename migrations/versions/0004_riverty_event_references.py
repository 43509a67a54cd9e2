"""the invoice reference of cancellations, returns and goodwills, and a goodwill's credit date

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

Riverty's cancellation, return and goodwill bodies may name the invoice they refer to, and a
goodwill its credit date; both are recorded with the document. Nullable columns added at the
end: backward compatible with the code still running.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credits") as batch_op:
        batch_op.add_column(sa.Column("invoice_reference", sa.String(30), nullable=True))
        batch_op.add_column(sa.Column("credit_date", sa.Date(), nullable=True))
    with op.batch_alter_table("cancellations") as batch_op:
        batch_op.add_column(sa.Column("invoice_reference", sa.String(30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cancellations") as batch_op:
        batch_op.drop_column("invoice_reference")
    with op.batch_alter_table("credits") as batch_op:
        batch_op.drop_column("credit_date")
        batch_op.drop_column("invoice_reference")
